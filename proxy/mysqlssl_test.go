package proxy

import (
	"testing"

	"github.com/slipstream-proxy/slipstream/internal/mytest"
	"github.com/slipstream-proxy/slipstream/protocol/mysqlwire"
)

// TestShowStatusReportsTheClientsOwnTLSSession: SHOW STATUS LIKE 'Ssl_%' answers about the
// client's connection to the edge, as MariaDB answers about a direct one: the TLS version and
// cipher the client negotiated, and empty values without TLS, whatever the origin connection
// uses.
func TestShowStatusReportsTheClientsOwnTLSSession(t *testing.T) {
	e := startMySQLEdge(t, Config{TLS: testTLS(t)}, appDB(mysqlwire.NativePassword))
	for _, tc := range []struct {
		params, version, cipher string
	}{
		{"&tls=skip-verify", "TLSv1.3", "TLS_AES_128_GCM_SHA256"},
		{"", "", ""},
	} {
		db := e.open(t, "edgeuser", "edge-pw", mytest.AppDB, tc.params)
		for _, q := range []string{"SHOW STATUS LIKE 'Ssl_%'", "show session status where Variable_name in ('Ssl_version', 'Ssl_cipher')"} {
			rows, err := db.QueryContext(ctx(t), q)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for rows.Next() {
				var k, v string
				if err := rows.Scan(&k, &v); err != nil {
					t.Fatal(err)
				}
				got[k] = v
			}
			rows.Close()
			if got["Ssl_version"] != tc.version || got["Ssl_cipher"] != tc.cipher {
				t.Errorf("%q over %q: Ssl_version %q, Ssl_cipher %q; want %q, %q", q, tc.params,
					got["Ssl_version"], got["Ssl_cipher"], tc.version, tc.cipher)
			}
		}
	}
}

func TestRewriteSSLStatusLeavesOtherPacketsAlone(t *testing.T) {
	row := func(seq byte, a, b string) []byte {
		p := append([]byte{byte(len(a))}, a...)
		p = append(append(p, byte(len(b))), b...)
		return mysqlwire.AppendPacket(nil, seq, p)
	}
	in := append(row(3, "Ssl_accepts", "0"), row(4, "Ssl_cipher", "")...)
	in = append(in, row(5, "Ssl_version", "TLSv1.2")...)
	out := rewriteSSLStatus(nil, in, "TLSv1.3", "X")
	want := append(row(3, "Ssl_accepts", "0"), row(4, "Ssl_cipher", "X")...)
	want = append(want, row(5, "Ssl_version", "TLSv1.3")...)
	if string(out) != string(want) {
		t.Errorf("got %q, want %q", out, want)
	}
	if rewriteSSLStatus(nil, row(1, "Ssl_cipher", "X"), "", "X") != nil {
		t.Error("an answer that needs no change was rebuilt")
	}
}
