package bench

import "testing"

func TestProtocolOfFollowsTheScheme(t *testing.T) {
	for raw, want := range map[string]string{
		"postgres://a:b@h/db":   Postgres,
		"postgresql://h/db":     Postgres,
		"MySQL://a:b@h:3306/db": MySQL,
		"sqlite://x":            "",
		"host=h user=a":         "",
	} {
		got, err := ProtocolOf(raw)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("ProtocolOf(%q) = %q, %v; want %q", raw, got, err, want)
		}
	}
}

func TestMySQLURLBecomesTheDriversConfig(t *testing.T) {
	cfg, err := mysqlConfig("mysql://app:p%40ss@db.example.com/shop?tls=skip-verify&charset=utf8mb4")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.User != "app" || cfg.Passwd != "p@ss" || cfg.Addr != "db.example.com:3306" || cfg.DBName != "shop" ||
		cfg.TLSConfig != "skip-verify" || cfg.Params["charset"] != "utf8mb4" {
		t.Errorf("got user %q passwd %q addr %q db %q tls %q params %v", cfg.User, cfg.Passwd, cfg.Addr, cfg.DBName, cfg.TLSConfig, cfg.Params)
	}
}
