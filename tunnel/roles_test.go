package tunnel

import (
	"context"
	"errors"
	"testing"

	"github.com/slipstream-proxy/slipstream/link"
)

func TestRoleRequestsRoundTripAndMalformedOnesAreRefused(t *testing.T) {
	for _, c := range []struct {
		db, role string
		fresh    bool
	}{{"app", "reader", false}, {"app", "tenant_42", true}, {"", "", false}} {
		db, role, fresh, err := parseRoleRequest(appendRoleRequest(nil, c.db, c.role, c.fresh))
		if err != nil || db != c.db || role != c.role || fresh != c.fresh {
			t.Errorf("%+v came back as %q %q %v (%v)", c, db, role, fresh, err)
		}
	}
	for _, bad := range [][]byte{nil, []byte("app"), []byte("app\x00reader"), []byte("app\x00reader\x00"), []byte("app\x00reader\x00\x01\x01")} {
		if _, _, _, err := parseRoleRequest(bad); !errors.Is(err, errBadFrame) {
			t.Errorf("parseRoleRequest(%q) = %v, want errBadFrame", bad, err)
		}
	}
}

func TestLocalRefusesRoleLookupsOfADatabaseWithoutAnyRole(t *testing.T) {
	// An origin that serves sessions but cannot look roles up (never called here).
	type plainOrigin struct{ link.Origin }
	l := NewLocal(map[string]link.Origin{"app": plainOrigin{}})
	if _, err := l.Verifier(context.Background(), "app", "reader", false); err == nil {
		t.Error("a database without any_role answered a role lookup")
	}
	if _, err := l.Verifier(context.Background(), "nope", "reader", false); err == nil {
		t.Error("an unknown database answered a role lookup")
	}
}
