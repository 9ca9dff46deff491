package pgwire

import (
	"crypto/md5"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net"
	"testing"
	"time"
)

// scramVerifier is what PostgreSQL stores for password: SCRAM-SHA-256$4096:salt$StoredKey:ServerKey.
func scramVerifier(t *testing.T, password string) string {
	t.Helper()
	salt := []byte("sixteen byte slt")
	salted, err := pbkdf2.Key(sha256.New, password, salt, 4096, sha256.Size)
	if err != nil {
		t.Fatal(err)
	}
	stored := sha256.Sum256(hmacSHA256(salted, "Client Key"))
	enc := base64.StdEncoding.EncodeToString
	return "SCRAM-SHA-256$4096:" + enc(salt) + "$" + enc(stored[:]) + ":" + enc(hmacSHA256(salted, "Server Key"))
}

// loginAgainst runs AuthenticateRole for user against v on one end of a pipe and, on the
// other, a client that logs in with client (SCRAM) or answers md5 with md5Password. It returns
// the server's ClientKey and error, and the client's error.
func loginAgainst(t *testing.T, user string, v Verifier, client *SCRAMClient, md5Password string) ([]byte, error, error) {
	t.Helper()
	sc, cc := net.Pipe()
	defer sc.Close()
	defer cc.Close()
	sc.SetDeadline(time.Now().Add(10 * time.Second))
	cc.SetDeadline(time.Now().Add(10 * time.Second))
	type result struct {
		key []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		key, err := AuthenticateRole(sc, NewReader(sc, 1<<16), user, v, AuthSCRAM, false)
		if err == nil {
			_, err = sc.Write(AppendAuthenticationOK(nil))
		}
		sc.Close()
		done <- result{key, err}
	}()
	cerr := func() error {
		r := NewReader(cc, 1<<16)
		for {
			typ, body, err := r.ReadMessage()
			if err != nil {
				return err
			}
			if typ != 'R' || len(body) < 4 {
				return errors.New("refused")
			}
			var reply []byte
			switch code := binary.BigEndian.Uint32(body); code {
			case authOK:
				return nil
			case authMD5Password:
				reply = append(md5Response(user, md5Password, [4]byte(body[4:8])), 0)
			case authSASL:
				reply = client.AppendInitialResponse(nil)
			case authSASLContinue:
				final, err := client.Final(string(body[4:]))
				if err != nil {
					return err
				}
				reply = []byte(final)
			case authSASLFinal:
				if err := client.Verify(string(body[4:])); err != nil {
					return err
				}
				continue
			}
			if _, err := cc.Write(AppendFrame(nil, 'p', reply)); err != nil {
				return err
			}
		}
	}()
	cc.Close()
	res := <-done
	return res.key, res.err, cerr
}

func TestSCRAMPassThroughLogsInWithTheClientKeyTheProofRevealed(t *testing.T) {
	v := ParseVerifier(scramVerifier(t, "role-secret"))
	if v.Kind != VerifierSCRAM {
		t.Fatalf("kind %d, want SCRAM", v.Kind)
	}
	// The client knows the password.
	withPassword, err := NewSCRAMClient(Verifier{Kind: VerifierPlain, secret: "role-secret"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	key, serr, cerr := loginAgainst(t, "alice", v, withPassword, "")
	if serr != nil || cerr != nil || !v.ValidClientKey(key) {
		t.Fatalf("password login: server %v, client %v, ClientKey valid %v", serr, cerr, v.ValidClientKey(key))
	}
	// The proxy logs in again, as the client, with the ClientKey alone, and checks the server.
	withKey, err := NewSCRAMClient(v, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, serr, cerr := loginAgainst(t, "alice", v, withKey, ""); serr != nil || cerr != nil {
		t.Fatalf("ClientKey login: server %v, client %v", serr, cerr)
	}
	if _, err := NewSCRAMClient(v, make([]byte, sha256.Size)); err == nil {
		t.Error("NewSCRAMClient took a ClientKey that is not the verifier's")
	}
}

func TestAuthenticateRoleRefusesAsPostgreSQLDoes(t *testing.T) {
	wrong, err := NewSCRAMClient(Verifier{Kind: VerifierPlain, secret: "not-it"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	md5sum := md5.Sum([]byte("md5-secret" + "bob"))
	for _, c := range []struct {
		name     string
		verifier string
		md5pw    string
	}{
		{"a wrong password", scramVerifier(t, "role-secret"), ""},
		{"a role without a password, or no such role", "", ""},
		{"a wrong md5 password", "md5" + hex.EncodeToString(md5sum[:]), "not-it"},
	} {
		t.Run(c.name, func(t *testing.T) {
			key, serr, _ := loginAgainst(t, "bob", ParseVerifier(c.verifier), wrong, c.md5pw)
			var pe *Error
			if !errors.As(serr, &pe) || pe.Code != InvalidPassword || pe.Message != `password authentication failed for user "bob"` || key != nil {
				t.Errorf("got %v (key %v), want 28P01 password authentication failed for user \"bob\"", serr, key != nil)
			}
		})
	}
	t.Run("the right md5 password", func(t *testing.T) {
		if _, serr, cerr := loginAgainst(t, "bob", ParseVerifier("md5"+hex.EncodeToString(md5sum[:])), nil, "md5-secret"); serr != nil || cerr != nil {
			t.Errorf("server %v, client %v", serr, cerr)
		}
	})
}

func TestParseVerifierTellsTheKindsApart(t *testing.T) {
	for _, c := range []struct {
		in   string
		want VerifierKind
	}{
		{"", VerifierNone},
		{scramVerifier(t, "x"), VerifierSCRAM},
		{"SCRAM-SHA-256$4096:c2FsdA==$broken", VerifierNone},
		{"SCRAM-SHA-256$0:c2FsdA==$AAAA:AAAA", VerifierNone},
		{"md5" + hex.EncodeToString(make([]byte, 16)), VerifierMD5},
		{"md5notahash", VerifierPlain},
		{"plain password", VerifierPlain},
	} {
		if got := ParseVerifier(c.in).Kind; got != c.want {
			t.Errorf("ParseVerifier(%.24q) = %d, want %d", c.in, got, c.want)
		}
	}
}

// FuzzParseVerifier: any stored text parses without a panic, and only a well-formed SCRAM
// verifier gives a SCRAM one, whose keys a ClientKey can be checked against.
func FuzzParseVerifier(f *testing.F) {
	f.Add("SCRAM-SHA-256$4096:c2l4dGVlbiBieXRlIHNsdA==$47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")
	f.Add("md5" + "0123456789abcdef0123456789abcdef")
	f.Fuzz(func(t *testing.T, s string) {
		v := ParseVerifier(s)
		if v.Kind == VerifierSCRAM && (v.iterations < 1 || v.ValidClientKey(nil)) {
			t.Errorf("SCRAM verifier with %d iterations, or a nil ClientKey valid", v.iterations)
		}
		if v.Kind == VerifierPlain && v.Password() != s {
			t.Errorf("plaintext verifier lost its password")
		}
	})
}
