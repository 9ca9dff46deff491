package classify

import "testing"

func TestCacheableAsksTheOracle(t *testing.T) {
	oracle := func(v Volatility) func(string) (Volatility, bool) {
		return func(name string) (Volatility, bool) { return v, name == "app.slugify" }
	}
	call := Classify(`SELECT app.slugify($1)`)
	plain := Classify(`SELECT id FROM users`)
	tests := []struct {
		name string
		s    Statement
		vol  func(string) (Volatility, bool)
		ok   bool
		why  string
	}{
		{"a function the oracle calls immutable is cacheable", call, oracle(Immutable), true, ""},
		{"a function the oracle calls stable is not", call, oracle(Stable), false, "volatile"},
		{"a function the oracle calls volatile is not", call, oracle(Volatile), false, "volatile"},
		{"a function the oracle doesn't know is volatile", call, BuiltinVolatility, false, "volatile"},
		{"without an oracle every function is volatile", call, nil, false, "volatile"},
		{"without an oracle a read without functions is cacheable", plain, nil, true, ""},
		{"the zero Statement is not a query", Statement{}, BuiltinVolatility, false, "notaquery"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if ok, why := tc.s.Cacheable(tc.vol); ok != tc.ok || why != tc.why {
				t.Errorf("Cacheable = %v, %q, want %v, %q", ok, why, tc.ok, tc.why)
			}
		})
	}
}

func TestIsTemp(t *testing.T) {
	for name, want := range map[string]bool{
		"pg_temp.t": true, "pg_temp_3.t": true, "db.pg_temp.t": true,
		"t": false, "public.t": false, "pg_temp": false, "public.pg_temp_t": false,
	} {
		if isTemp(name) != want {
			t.Errorf("isTemp(%q) = %v, want %v", name, !want, want)
		}
	}
}
