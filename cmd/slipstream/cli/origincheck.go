package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/slipstream-proxy/slipstream/config"
	"github.com/slipstream-proxy/slipstream/link"
)

// originCheckTimeout bounds the check of one origin at start: an origin that has not answered
// by then is reported so, and the first client's session tries it again.
const originCheckTimeout = 10 * time.Second

// checkOrigins asks for each database's origin profile once, as a first client's session
// would (serve and pool connect to the origin; an edge asks its pool), and prints one line per
// database, in the configuration's order:
//
//	origin app: ok (server 15.10)
//	origin app: the origin refused Slipstream's login: password authentication failed for user "app" (SQLSTATE 28P01)
//
// A line never holds a password: an origin's refusal is its own message (link.OriginError),
// anything else the error's text, which names no connection string. Failures are logged too;
// the database is served all the same, and its clients get the origin's error until it is
// fixed. The lines start with "origin", never "database": scripts read those for connection
// strings.
func checkOrigins(ctx context.Context, stdout io.Writer, log *slog.Logger, cfg config.Config, t link.Transport) {
	lines := make([]string, len(cfg.Databases))
	var wg sync.WaitGroup
	for i, d := range cfg.Databases {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, originCheckTimeout)
			defer cancel()
			p, err := t.Profile(cctx, cfg.TunnelName(d))
			if err == nil {
				lines[i] = "ok"
				if v := p.Parameters["server_version"]; v != "" {
					lines[i] += " (server " + v + ")"
				}
				return
			}
			lines[i] = originProblem(err)
			log.Warn("origin check failed; clients get its error until it is fixed", "db", d.Name, "err", lines[i])
		})
	}
	wg.Wait()
	for i, d := range cfg.Databases {
		fmt.Fprintf(stdout, "origin %s: %s\n", d.Name, lines[i])
	}
}

// originProblem says why an origin check failed.
func originProblem(err error) string {
	var oe *link.OriginError
	switch {
	case errors.As(err, &oe):
		return oe.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("no answer within %s", originCheckTimeout)
	}
	return "not checked: " + err.Error()
}
