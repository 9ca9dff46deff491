package pool

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/slipstream-proxy/slipstream/link"
)

func TestARefusedLeaseTellsTheClientTheOriginsMeaning(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string // the SQLSTATE field of the ErrorResponse
	}{
		{"a refused login", link.NewOriginError(link.OriginLoginRefused, `password authentication failed for user "app"`, "SQLSTATE 28P01", nil), "C28P01"},
		{"no such database", link.NewOriginError(link.OriginNoDatabase, `database "x" does not exist`, "SQLSTATE 3D000", nil), "C3D000"},
		{"an unreachable origin", link.NewOriginError(link.OriginUnreachable, "cannot connect to 127.0.0.1:1: connection refused", "", nil), "C08006"},
		{"any other failure", errors.New("boom"), "C08006"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entries := (&Session{}).refuse(nil, 'Q', fmt.Errorf("pool: connect to origin: %w", tt.err))
			if len(entries) < 2 || !bytes.Contains(entries[0].reply, []byte(tt.want+"\x00")) {
				t.Fatalf("refuse answered %d entries, the first %q: want %s", len(entries), entries[0].reply, tt.want)
			}
			var oe *link.OriginError
			if errors.As(tt.err, &oe) && !bytes.Contains(entries[0].reply, []byte(oe.Detail)) {
				t.Errorf("refuse answered %q: want the origin's message %q in it", entries[0].reply, oe.Detail)
			}
		})
	}
}
