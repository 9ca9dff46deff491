package mysqlwire

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
	driver "github.com/go-sql-driver/mysql"
)

func TestHandshakeReadsBackAsWritten(t *testing.T) {
	for _, h := range []Handshake{
		{ServerVersion: "10.11.6-MariaDB", ConnID: 42, Capabilities: ourCaps, Collation: 45,
			Status: mysql.SERVER_STATUS_AUTOCOMMIT, AuthPlugin: NativePassword},
		{ServerVersion: "5.5.5-10.11.6-MariaDB-log", ConnID: 1 << 30, Capabilities: ourCaps | mysql.CLIENT_SSL,
			ExtCapabilities: ExtExtendedMetadata, Collation: 8, Status: 0x4002, AuthPlugin: CachingSHA2Password},
	} {
		if err := fillSalt(&h.Salt); err != nil {
			t.Fatal(err)
		}
		got, err := ParseHandshake(Payload(h.Append(nil)))
		want := h
		if h.ExtCapabilities != 0 {
			want.Capabilities &^= mysql.CLIENT_LONG_PASSWORD // as Append sends it
		}
		if err != nil || got != want {
			t.Errorf("ParseHandshake(Append(%+v)) = %+v, %v", h, got, err)
		}
	}
	for _, bad := range [][]byte{nil, {9}, {10, 'x'}, {10, 'v', 0, 1, 2}} {
		if _, err := ParseHandshake(bad); !errors.Is(err, ErrBadGreeting) {
			t.Errorf("ParseHandshake(%q) = %v, want ErrBadGreeting", bad, err)
		}
	}
}

func TestResponseReadsBackAsWritten(t *testing.T) {
	base := mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_SECURE_CONNECTION | mysql.CLIENT_PLUGIN_AUTH | mysql.CLIENT_LONG_PASSWORD
	for _, r := range []Response{
		{Capabilities: base, Collation: 45, User: "app", AuthData: bytes.Repeat([]byte{7}, 20), Database: "app",
			AuthPlugin: NativePassword, Attrs: map[string]string{"_client_name": "slipstream", "k": strings.Repeat("v", 300)}},
		{Capabilities: base &^ mysql.CLIENT_LONG_PASSWORD, ExtCapabilities: ExtExtendedMetadata, Collation: 255,
			User: "role", AuthData: bytes.Repeat([]byte{1}, 300), AuthPlugin: CachingSHA2Password},
		{Capabilities: base | mysql.CLIENT_SSL, Collation: 45, SSLRequest: true},
	} {
		got, err := ParseResponse(Payload(r.Append(nil, 1)))
		if err != nil {
			t.Fatalf("ParseResponse(Append(%+v)): %v", r, err)
		}
		if got.User != r.User || !bytes.Equal(got.AuthData, r.AuthData) || got.Database != r.Database ||
			got.SSLRequest != r.SSLRequest || got.Collation != r.Collation || got.ExtCapabilities != r.ExtCapabilities ||
			(!r.SSLRequest && got.AuthPlugin != r.AuthPlugin) || !maps.Equal(got.Attrs, r.Attrs) ||
			got.Capabilities&r.Capabilities != r.Capabilities {
			t.Errorf("ParseResponse(Append(%+v)) = %+v", r, got)
		}
	}
}

func TestNativeHashIsRecoveredOnlyFromTheRightPassword(t *testing.T) {
	stage1 := sha1.Sum([]byte("s3cret"))
	stage2 := sha1.Sum(stage1[:])
	text := "*" + strings.ToUpper(hex.EncodeToString(stage2[:])) // as MariaDB stores it
	v, ok := ParseNativeVerifier(text)
	if !ok || !bytes.Equal(v, stage2[:]) {
		t.Fatalf("ParseNativeVerifier(%q) = %x, %v", text, v, ok)
	}
	salt, other := []byte("abcdefghijklmnopqrst"), []byte("ABCDEFGHIJKLMNOPQRST")
	hash, ok := RecoverNativeHash(salt, mysql.CalcNativePassword(salt, []byte("s3cret")), v)
	if !ok || !bytes.Equal(hash, stage1[:]) || !ValidNativeHash(hash, v) {
		t.Fatalf("RecoverNativeHash of the right password: %x, %v", hash, ok)
	}
	if got, want := NativeScramble(other, hash), mysql.CalcNativePassword(other, []byte("s3cret")); !bytes.Equal(got, want) {
		t.Errorf("NativeScramble from the hash = %x, the password's scramble %x", got, want)
	}
	for _, c := range []struct {
		name     string
		scramble []byte
	}{
		{"a wrong password", mysql.CalcNativePassword(salt, []byte("nope"))},
		{"another salt", mysql.CalcNativePassword(other, []byte("s3cret"))},
		{"no password", nil},
		{"short", []byte{1, 2, 3}},
	} {
		if h, ok := RecoverNativeHash(salt, c.scramble, v); ok {
			t.Errorf("%s: recovered %x", c.name, h)
		}
	}
	for _, bad := range []string{"", "s3cret", "*" + strings.Repeat("g", 40), text[:40], "$A$005$caching"} {
		if _, ok := ParseNativeVerifier(bad); ok {
			t.Errorf("ParseNativeVerifier(%q) took it", bad)
		}
	}
}

// TestAnyRoleAccountChecksTheVerifier logs go-sql-driver/mysql in against a verifier (any_role):
// the right password is in and its SHA1 comes out; a wrong one, or another user, is 1045.
func TestAnyRoleAccountChecksTheVerifier(t *testing.T) {
	stage1 := sha1.Sum([]byte("s3cret"))
	stage2 := sha1.Sum(stage1[:])
	cfg := config(CachingSHA2Password, "", nil) // a role is switched to mysql_native_password
	cfg.Lookup = func(r *Response) (Account, error) {
		if r.User == "nobody" {
			return Account{User: r.User, AnyRole: true}, nil
		}
		return Account{User: r.User, AnyRole: true, Verifier: stage2[:]}, nil
	}
	var refused []string
	cfg.Refusing = func(e *Error, user string) { refused = append(refused, user) }
	addr, results := testServer(t, cfg)
	for _, c := range []struct {
		user, password string
		ok             bool
	}{{"reader", "s3cret", true}, {"reader", "nope", false}, {"nobody", "s3cret", false}} {
		err := ping(addr, c.user, c.password, "app", "")
		serverErr := <-results
		if c.ok {
			if err != nil || serverErr != nil {
				t.Errorf("%s: client %v, server %v", c.user, err, serverErr)
			}
			continue
		}
		var me *driver.MySQLError
		if !errors.As(err, &me) || me.Number != uint16(ErAccessDenied) ||
			!strings.HasPrefix(me.Message, "Access denied for user '"+c.user+"'@'127.0.0.1' (using password: YES)") {
			t.Errorf("%s with %q: %v, want 1045", c.user, c.password, err)
		}
	}
	if strings.Join(refused, ",") != "reader,nobody" {
		t.Errorf("Refusing saw %q, want reader,nobody", refused)
	}
}

func FuzzParseHandshake(f *testing.F) {
	h := Handshake{ServerVersion: "10.11.6-MariaDB", ConnID: 3, Capabilities: ourCaps, ExtCapabilities: ExtExtendedMetadata,
		Collation: 45, AuthPlugin: NativePassword}
	f.Add(Payload(h.Append(nil)))
	f.Fuzz(func(t *testing.T, p []byte) {
		h, err := ParseHandshake(p)
		if err != nil {
			return
		}
		if len(h.ServerVersion) > len(p) || len(h.AuthPlugin) > len(p) {
			t.Fatalf("parsed more than was there: %+v", h)
		}
	})
}

func FuzzParseAuthSwitch(f *testing.F) {
	f.Add([]byte("\xfemysql_native_password\x00abcdefghijklmnopqrst\x00"))
	f.Fuzz(func(t *testing.T, p []byte) {
		if sw, ok := ParseAuthSwitch(p); ok && len(sw.Plugin)+len(sw.Data) > len(p) {
			t.Fatalf("parsed more than was there: %+v", sw)
		}
	})
}
