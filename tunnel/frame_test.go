package tunnel

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/slipstream-proxy/slipstream/link"
)

func TestErrorFramesKeepTheSentinels(t *testing.T) {
	for _, sentinel := range []error{link.ErrOriginLost, link.ErrQueueTimeout, link.ErrTerminated} {
		frame := appendError(nil, fmt.Errorf("pool: %w", sentinel))
		typ, payload, err := readFrame(bytes.NewReader(frame), nil)
		if err != nil || typ != frameError {
			t.Fatalf("readFrame: %q, %v", typ, err)
		}
		if got := decodeError(payload); !errors.Is(got, sentinel) {
			t.Errorf("%v came out as %v", sentinel, got)
		}
	}
	// What the edge has no sentinel for still ends the session as a lost origin.
	if got := decodeError(appendError(nil, errors.New("disk full"))[headerLen:]); !errors.Is(got, link.ErrOriginLost) {
		t.Errorf("an unknown error came out as %v, want ErrOriginLost", got)
	}
}

func TestAnOriginsRefusalCrossesTheTunnelAsItself(t *testing.T) {
	for _, r := range []link.Refusal{link.OriginLoginRefused, link.OriginNoDatabase, link.OriginUnreachable} {
		sent := fmt.Errorf("pool: connect to origin: %w", link.NewOriginError(r, `password authentication failed for user "app"`, "SQLSTATE 28P01", nil))
		got := decodeError(appendError(nil, sent)[headerLen:])
		var oe *link.OriginError
		if !errors.As(got, &oe) || oe.Refusal != r || oe.Detail != `password authentication failed for user "app"` || oe.Code != "SQLSTATE 28P01" {
			t.Errorf("refusal %d came out as %v", r, got)
		}
		if !errors.Is(got, link.ErrOriginLost) {
			t.Errorf("refusal %d came out as %v: want it to be an ErrOriginLost too, as before", r, got)
		}
	}
	if got := decodeError([]byte{codeOrigin}); !errors.Is(got, link.ErrOriginLost) {
		t.Errorf("a short origin error frame came out as %v, want ErrOriginLost", got)
	}
}

func TestAFrameOverItsLimitIsRefusedBeforeItsPayloadIsRead(t *testing.T) {
	frame := appendHeader(nil, frameOpen, maxSmall+1)
	if _, _, err := readFrame(bytes.NewReader(frame), nil); !errors.Is(err, errBadFrame) {
		t.Errorf("readFrame: %v, want errBadFrame", err)
	}
	// A large announced batch that never arrives costs at most growStep of buffer.
	_, buf, err := readFrame(bytes.NewReader(appendHeader(nil, frameBatch, maxBatch)), nil)
	if err == nil || cap(buf) > growStep {
		t.Errorf("readFrame of a truncated batch: cap %d, %v; want an error and at most %d bytes", cap(buf), err, growStep)
	}
}

func TestProfilesAndOpensRoundTrip(t *testing.T) {
	p := link.Profile{Parameters: map[string]string{"server_version": "15.4", "TimeZone": "UTC"}, Volatility: map[string]byte{"now": 's', "random": 'v'},
		OriginLatency: 3 * time.Millisecond,
		Related: link.Related{Groups: [][]string{{"t", "v"}, {"p", "p1", "p2"}}, AnyTable: []string{"audited"},
			Writers: map[string][]string{"bump": {"t", "t_id_seq"}, "anything": {"*"}}}}
	b := appendProfile(nil, p)
	got, err := parseProfile(b)
	if err != nil || !maps.Equal(got.Parameters, p.Parameters) || !maps.Equal(got.Volatility, p.Volatility) ||
		got.OriginLatency != p.OriginLatency || !reflect.DeepEqual(got.Related, p.Related) {
		t.Errorf("profile round trip: %+v, %v", got, err)
	}
	for cut := 1; cut < 12; cut++ {
		if _, err := parseProfile(b[:len(b)-cut]); err == nil {
			t.Errorf("a profile cut %d bytes short was taken", cut)
		}
	}
	params := map[string]string{"user": "app", "application_name": "x"}
	db, gotParams, err := parseOpen(appendOpen(nil, "app", params))
	if err != nil || db != "app" || !maps.Equal(gotParams, params) {
		t.Errorf("open round trip: %q %v %v", db, gotParams, err)
	}
}

func FuzzReadFrame(f *testing.F) {
	f.Add(appendFrame(nil, frameData, []byte{flagPending, 'Z', 0, 0, 0, 5, 'I'}))
	f.Add(appendError(nil, link.ErrOriginLost))
	f.Add(appendHeader(nil, frameBatch, 1<<30))
	f.Fuzz(func(t *testing.T, b []byte) {
		typ, payload, err := readFrame(bytes.NewReader(b), nil)
		if err == nil && len(payload) > limitOf(typ) {
			t.Fatalf("a %d-byte payload passed the limit of frame %q", len(payload), typ)
		}
	})
}

func FuzzParseProfile(f *testing.F) {
	f.Add(appendProfile(nil, link.Profile{Parameters: map[string]string{"a": "b"}, Volatility: map[string]byte{"f": 'i'},
		Related: link.Related{Groups: [][]string{{"t", "v"}}, AnyTable: []string{"x"}, Writers: map[string][]string{"f": {"t"}}}}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		parseProfile(b)
		parseOpen(b)
	})
}

func TestInvalidationsRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		name    string
		tables  []string
		all     bool
		want    []string
		wantAll bool
	}{
		{"tables are kept in order", []string{"public.users", `"Orders"`}, false, []string{"public.users", `"Orders"`}, false},
		{"all needs no tables", []string{"users"}, true, nil, true},
		{"more tables than the limit become all", make([]string, maxTables+1), false, nil, true},
		{"a name with a NUL becomes all", []string{"a\x00b"}, false, nil, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			db, tables, all, err := parseInvalidate(appendInvalidate(nil, "app", appendWrites(nil, tt.tables, tt.all)))
			if err != nil || db != "app" || all != tt.wantAll || !slices.Equal(tables, tt.want) {
				t.Fatalf("got %q %q %v %v, want app %q %v", db, tables, all, err, tt.want, tt.wantAll)
			}
		})
	}
}

func TestMalformedInvalidationsAreRefused(t *testing.T) {
	for _, b := range [][]byte{nil, []byte("app"), []byte("app\x00"), []byte("app\x00\x02"), []byte("app\x00\x00users")} {
		if _, _, _, err := parseInvalidate(b); !errors.Is(err, errBadFrame) {
			t.Errorf("parseInvalidate(%q) = %v, want errBadFrame", b, err)
		}
	}
}

func FuzzParseInvalidate(f *testing.F) {
	f.Add(appendInvalidate(nil, "app", appendWrites(nil, []string{"users", "orders"}, false)))
	f.Add(appendInvalidate(nil, "app", appendWrites(nil, nil, true)))
	f.Add([]byte("app\x00\x03"))
	f.Fuzz(func(t *testing.T, b []byte) {
		db, tables, all, err := parseInvalidate(b)
		if err != nil {
			return
		}
		if len(tables) > maxTables {
			t.Fatalf("%d tables passed the limit", len(tables))
		}
		// What decodes encodes to what decodes the same, or to "all".
		db2, tables2, all2, err := parseInvalidate(appendInvalidate(nil, db, appendWrites(nil, tables, all)))
		if err != nil || db2 != db || all && !all2 || !all2 && !slices.Equal(tables, tables2) {
			t.Fatalf("%q %q %v decoded again as %q %q %v %v", db, tables, all, db2, tables2, all2, err)
		}
	})
}

func TestCacheHintsRoundTrip(t *testing.T) {
	b, ok := appendHint(nil, []byte("k\x00ey"), []string{"users", "public.orders"}, 90*time.Second, 15*time.Second)
	if !ok {
		t.Fatal("a hint of two tables was not encoded")
	}
	var h hint
	if err := parseHint(b, &h); err != nil {
		t.Fatal(err)
	}
	if string(h.key) != "k\x00ey" || !slices.Equal(h.tables, []string{"users", "public.orders"}) ||
		h.maxAge != 90*time.Second || h.swr != 15*time.Second {
		t.Errorf("decoded %q %q %v %v", h.key, h.tables, h.maxAge, h.swr)
	}
	// A hint must name every table the answer depends on, or not be sent.
	if _, ok := appendHint(nil, []byte("k"), make([]string, maxTables+1), time.Minute, 0); ok {
		t.Error("a hint of more tables than a frame carries was encoded")
	}
	if _, ok := appendHint(nil, []byte("k"), []string{"a\x00b"}, time.Minute, 0); ok {
		t.Error("a hint of a table name with a NUL was encoded")
	}
	for _, b := range [][]byte{nil, make([]byte, 9), append(make([]byte, 8), 0, 1, 'u'), make([]byte, 10)} {
		if err := parseHint(b, &h); !errors.Is(err, errBadFrame) {
			t.Errorf("parseHint(%q) = %v, want errBadFrame", b, err)
		}
	}
}

func FuzzParseHint(f *testing.F) {
	b, _ := appendHint(nil, []byte("key"), []string{"users"}, time.Minute, 0)
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		var h hint
		if err := parseHint(b, &h); err != nil {
			return
		}
		if len(h.tables) > maxTables {
			t.Fatalf("%d tables passed the limit", len(h.tables))
		}
	})
}
