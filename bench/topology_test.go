package bench

import "testing"

func TestClientURLAsksForTheEdgesTLSOrNone(t *testing.T) {
	for _, tc := range []struct {
		name, printed, protocol string
		tls                     bool
		want                    string
	}{
		{"postgres in plain TCP, as to a sidecar", "postgres://app:pw@127.0.0.1:6432/app", Postgres, false,
			"postgres://app:pw@127.0.0.1:6432/app?sslmode=disable"},
		{"postgres over TLS to a self-signed edge", "postgres://app:pw@127.0.0.1:6432/app", Postgres, true,
			"postgres://app:pw@127.0.0.1:6432/app?sslmode=require"},
		{"mysql in plain TCP, as to a sidecar", "mysql://app:pw@127.0.0.1:3307/app", MySQL, false,
			"mysql://app:pw@127.0.0.1:3307/app?tls=false"},
		{"mysql over TLS to a self-signed edge", "mysql://app:pw@127.0.0.1:3307/app", MySQL, true,
			"mysql://app:pw@127.0.0.1:3307/app?tls=skip-verify"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := clientURL(tc.printed, tc.protocol, tc.tls)
			if err != nil || got != tc.want {
				t.Errorf("clientURL = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
