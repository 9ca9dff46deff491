package proxy

import (
	"context"

	"github.com/slipstream-proxy/slipstream/link"
	"github.com/slipstream-proxy/slipstream/protocol/pgwire"
)

// Startup settings the edge cannot judge. PostgreSQL refuses an unknown startup parameter
// (42704) or a bad value (22023) with a FATAL right after authentication. The edge answers
// startup from the origin profile without a round trip (DESIGN.md invariant 5), which it keeps
// for the parameters drivers send at every connection (knownSettings); a client that sends any
// other setting waits for one round trip: the pool side applies the settings on an origin
// connection, and a refusal is the client's FATAL, in place of the session.

// knownSettings are the startup settings libpq, pgx, JDBC, Npgsql and node-postgres send, which
// the edge takes without asking the origin.
var knownSettings = map[string]bool{
	"application_name": true, "client_encoding": true, "datestyle": true, "timezone": true,
	"intervalstyle": true, "extra_float_digits": true, "search_path": true,
}

// needsCheck reports whether the client's startup settings hold one the edge cannot judge.
func needsCheck(params map[string]string) bool {
	for k, v := range pgwire.StartupSettings(params) {
		if !knownSettings[k] {
			return true
		}
		if _, ok := canonicalDateStyle(v, ""); k == "datestyle" && !ok {
			return true
		}
	}
	return false
}

// checkSettings has the pool side apply the session's settings with a trivial query and
// returns the origin's refusal, an ErrorResponse frame, if it refused them.
func checkSettings(ctx context.Context, stream link.Stream) ([]byte, error) {
	if err := stream.Send(ctx, pgwire.AppendFrame(nil, 'Q', []byte("SELECT 1\x00"))); err != nil {
		return nil, err
	}
	var resp []byte
	var err error
	for stream.Pending() {
		if resp, err = stream.Recv(ctx, resp); err != nil {
			break
		}
	}
	for rest := resp; len(rest) > 0; {
		f, next, ok := pgwire.NextFrame(rest)
		if !ok {
			break
		}
		if f.Type == 'E' {
			return f.Raw, nil
		}
		rest = next
	}
	return nil, err
}
