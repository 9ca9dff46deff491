package tunnel

import (
	"bytes"
	"errors"
	"testing"
)

func TestRouteFramesCarryReadAndWriteAndRefuseAnythingElse(t *testing.T) {
	for _, tc := range []struct {
		read, write bool
	}{{false, false}, {true, false}, {false, true}, {true, true}} {
		frame := appendFrame(nil, frameRoute, []byte{routeFlags(tc.read, tc.write)})
		typ, payload, err := readFrame(bytes.NewReader(frame), nil)
		if err != nil || typ != frameRoute {
			t.Fatalf("read back %q, %v", typ, err)
		}
		f, err := parseRoute(payload)
		if err != nil || (f&routeRead != 0) != tc.read || (f&routeWrite != 0) != tc.write {
			t.Errorf("Route(%t, %t): flags %b, %v", tc.read, tc.write, f, err)
		}
	}
	for _, bad := range [][]byte{nil, {}, {4}, {1, 2}, {0xff}} {
		if _, err := parseRoute(bad); !errors.Is(err, errBadFrame) {
			t.Errorf("parseRoute(%x): %v, want errBadFrame", bad, err)
		}
	}
}
