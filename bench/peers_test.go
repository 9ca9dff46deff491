package bench

import (
	"net"
	"os"
	"testing"

	"github.com/slipstream-proxy/slipstream/internal/pgtest"
)

// A peer whose port another process took between choosing and binding it is started again
// on another port (CI saw pgpool-II lose that race once).
func TestAPeerThatLosesItsPortIsStartedOnAnother(t *testing.T) {
	for _, name := range []string{PgBouncer, Pgpool} {
		t.Run(name, func(t *testing.T) {
			if _, err := os.Stat(peerBinary[name]); err != nil {
				t.Skipf("%s is not installed (./scripts/test.sh installs it)", name)
			}
			srv, err := pgtest.Start(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Stop()
			taken, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer taken.Close()
			picks := 0
			peerAddr = func() (string, error) {
				picks++
				if picks == 1 {
					return taken.Addr().String(), nil
				}
				return freeAddr("tcp")
			}
			defer func() { peerAddr = func() (string, error) { return freeAddr("tcp") } }()

			ps, err := StartPeers(t.Context(), srv.URL(pgtest.AppUser, pgtest.AppPassword, pgtest.AppDB), []string{name})
			if err != nil {
				t.Fatal(err)
			}
			defer ps.Close()
			if picks != 2 {
				t.Errorf("%d addresses picked, want the taken one and then another", picks)
			}
			s, err := connectTo(t, ps.URLs[name])
			if err != nil {
				t.Fatal(err)
			}
			defer s.close()
			if err := s.query(t.Context(), "SELECT 1"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func connectTo(t *testing.T, rawURL string) (session, error) {
	c, err := newConnector(rawURL)
	if err != nil {
		return nil, err
	}
	return c.connect(t.Context())
}
