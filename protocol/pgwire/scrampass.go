package pgwire

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Logging in as any role of the origin without holding its password (PgBouncer's auth_query
// with SCRAM pass-through). The edge checks a client against the role's verifier, the
// password as the origin stores it (pg_authid.rolpassword), and keeps what the client's own
// proof reveals: for SCRAM the ClientKey (ClientProof XOR ClientSignature), which is enough to
// compute the proof of any later exchange with the same salt and iteration count, and so to
// log in to the origin as the role. An md5 verifier is itself what an md5 login needs, and a
// plaintext one is the password. None of them is ever written down.

// VerifierKind is how a role's password is stored.
type VerifierKind byte

// The kinds ParseVerifier tells apart.
const (
	VerifierNone  VerifierKind = iota // no password (NULL, or the role is unknown): every login fails
	VerifierSCRAM                     // SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>
	VerifierMD5                       // md5 followed by 32 hex digits: md5(password || user)
	VerifierPlain                     // anything else is the password itself
)

// Verifier is a role's stored password, parsed. Its zero value is VerifierNone.
type Verifier struct {
	Kind       VerifierKind
	keys       scramKeys // VerifierSCRAM: salt, StoredKey, ServerKey
	iterations int       // VerifierSCRAM
	secret     string    // VerifierMD5: the whole "md5..." text; VerifierPlain: the password
}

// ParseVerifier parses a rolpassword as PostgreSQL stores it; "" is VerifierNone. A value that
// looks like a SCRAM verifier but does not parse is VerifierNone too, as PostgreSQL then lets
// no password in.
func ParseVerifier(s string) Verifier {
	switch {
	case s == "":
		return Verifier{}
	case strings.HasPrefix(s, scramMechanism+"$"):
		v, ok := parseSCRAMVerifier(s[len(scramMechanism)+1:])
		if !ok {
			return Verifier{}
		}
		return v
	case len(s) == 35 && strings.HasPrefix(s, "md5") && isHex(s[3:]):
		return Verifier{Kind: VerifierMD5, secret: s}
	}
	return Verifier{Kind: VerifierPlain, secret: s}
}

// parseSCRAMVerifier parses <iterations>:<salt>$<StoredKey>:<ServerKey>.
func parseSCRAMVerifier(s string) (Verifier, bool) {
	params, keys, ok := strings.Cut(s, "$")
	iter, salt, ok2 := strings.Cut(params, ":")
	stored, server, ok3 := strings.Cut(keys, ":")
	if !ok || !ok2 || !ok3 {
		return Verifier{}, false
	}
	n, err := strconv.Atoi(iter)
	if err != nil || n < 1 {
		return Verifier{}, false
	}
	if _, err := base64.StdEncoding.DecodeString(salt); err != nil {
		return Verifier{}, false
	}
	v := Verifier{Kind: VerifierSCRAM, iterations: n, keys: scramKeys{salt: salt}}
	if !decodeKey(v.keys.storedKey[:], stored) || !decodeKey(v.keys.serverKey[:], server) {
		return Verifier{}, false
	}
	return v, true
}

func decodeKey(dst []byte, s string) bool {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != len(dst) {
		return false
	}
	copy(dst, b)
	return true
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}

// ValidClientKey reports whether key is the ClientKey of v, a SCRAM verifier: a key another
// process recovered from a client's proof is checked before it is used.
func (v Verifier) ValidClientKey(key []byte) bool {
	if v.Kind != VerifierSCRAM || len(key) != sha256.Size {
		return false
	}
	stored := sha256.Sum256(key)
	return hmac.Equal(stored[:], v.keys.storedKey[:])
}

// Password returns the password of a VerifierPlain, "" otherwise.
func (v Verifier) Password() string {
	if v.Kind == VerifierPlain {
		return v.secret
	}
	return ""
}

// AuthenticateRole runs the server side of password authentication against a role's verifier:
// SCRAM-SHA-256 for a SCRAM verifier (with its salt and iteration count, so that the client's
// proof yields the role's ClientKey, which it returns), md5 for an md5 verifier, and plain
// (method, as Authenticate runs it) for a plaintext one. With VerifierNone the client is
// challenged all the same and refused, so that an unknown role looks like a wrong password,
// as PostgreSQL words it. Errors are as Authenticate's.
func AuthenticateRole(rw io.ReadWriter, r *Reader, user string, v Verifier, plain AuthMethod, tlsConn bool) (clientKey []byte, err error) {
	switch v.Kind {
	case VerifierSCRAM:
		_, key, err := scramExchange(rw, r, user, func() (*scramKeys, int, error) { return &v.keys, v.iterations, nil })
		return key, err
	case VerifierMD5:
		return nil, authMD5Hash(rw, r, user, v.secret[3:])
	case VerifierPlain:
		if plain == AuthTrust {
			plain = AuthSCRAM
		}
		return nil, Authenticate(rw, r, plain, user, v.secret, tlsConn)
	}
	// Keys nobody can match: the exchange runs to its end and fails as a wrong password does.
	fake := scramKeys{salt: base64.StdEncoding.EncodeToString(randomBytes(scramSaltLen))}
	rand.Read(fake.storedKey[:])
	_, _, err = scramExchange(rw, r, user, func() (*scramKeys, int, error) { return &fake, scramIterations, nil })
	if err == nil {
		err = authFailed(user)
	}
	return nil, err
}

// authMD5Hash runs md5 authentication against the stored hash hex(md5(password || user)).
func authMD5Hash(w io.Writer, r *Reader, user, hash string) error {
	var salt [4]byte
	rand.Read(salt[:])
	if err := writeAuth(w, authMD5Password, salt[:]); err != nil {
		return err
	}
	got, err := readPassword(r)
	if err != nil {
		return err
	}
	if !hmac.Equal(got, MD5SaltedHash(hash, salt)) {
		return authFailed(user)
	}
	return nil
}

// MD5SaltedHash is the answer to AuthenticationMD5Password given the stored hash
// hex(md5(password || user)): "md5" + hex(md5(hash + salt)).
func MD5SaltedHash(hash string, salt [4]byte) []byte {
	h := md5.New()
	h.Write([]byte(hash))
	h.Write(salt[:])
	return hex.AppendEncode([]byte("md5"), h.Sum(nil))
}

// MD5Hash returns what an md5 login needs: hex(md5(password || user)), from an md5 verifier
// or a plaintext one; "" for the other kinds.
func (v Verifier) MD5Hash(user string) string {
	switch v.Kind {
	case VerifierMD5:
		return v.secret[3:]
	case VerifierPlain:
		sum := md5.Sum([]byte(v.secret + user))
		return hex.EncodeToString(sum[:])
	}
	return ""
}

// SCRAMClient is the client side of a SCRAM-SHA-256 login made with a ClientKey in place of
// the password: the pool's login to the origin as a role whose client proved itself at the
// edge. Use it once: First, then Final with the server's first message, then Verify with its
// final one.
type SCRAMClient struct {
	clientKey []byte
	serverKey []byte // nil until Final: from the verifier, or derived from a password
	password  string // set when there is no ClientKey but the plaintext password
	v         Verifier
	bare      string // client-first-message-bare
	nonce     string
	authMsg   string
}

// NewSCRAMClient returns a client that logs in with clientKey, checked against v's StoredKey,
// or, for a plaintext verifier, with the password.
func NewSCRAMClient(v Verifier, clientKey []byte) (*SCRAMClient, error) {
	c := &SCRAMClient{v: v}
	switch {
	case v.Kind == VerifierPlain:
		c.password = v.secret
	case v.ValidClientKey(clientKey):
		c.clientKey = clientKey
	default:
		return nil, fmt.Errorf("pgwire: no valid SCRAM client key for the role")
	}
	c.nonce = base64.RawStdEncoding.EncodeToString(randomBytes(scramNonceLen))
	c.bare = "n=,r=" + c.nonce
	return c, nil
}

// AppendInitialResponse appends the body of the SASLInitialResponse message.
func (c *SCRAMClient) AppendInitialResponse(dst []byte) []byte {
	msg := "n,," + c.bare
	dst = append(append(dst, scramMechanism...), 0)
	dst = append(dst, byte(len(msg)>>24), byte(len(msg)>>16), byte(len(msg)>>8), byte(len(msg)))
	return append(dst, msg...)
}

// Final takes the server-first-message and returns the client-final-message. A salt or
// iteration count other than the verifier's means the password changed since: the ClientKey
// no longer fits, and Final refuses.
func (c *SCRAMClient) Final(serverFirst string) (string, error) {
	var nonce, salt string
	iterations := 0
	for _, attr := range strings.Split(serverFirst, ",") {
		switch {
		case strings.HasPrefix(attr, "r="):
			nonce = attr[2:]
		case strings.HasPrefix(attr, "s="):
			salt = attr[2:]
		case strings.HasPrefix(attr, "i="):
			iterations, _ = strconv.Atoi(attr[2:])
		}
	}
	if !strings.HasPrefix(nonce, c.nonce) || len(nonce) == len(c.nonce) || iterations < 1 {
		return "", fmt.Errorf("pgwire: malformed SCRAM server-first-message")
	}
	if c.password != "" {
		rawSalt, err := base64.StdEncoding.DecodeString(salt)
		if err != nil {
			return "", fmt.Errorf("pgwire: malformed SCRAM salt")
		}
		salted, err := pbkdf2.Key(sha256.New, saslPrep(c.password), rawSalt, iterations, sha256.Size)
		if err != nil {
			return "", fmt.Errorf("pgwire: derive scram keys: %w", err)
		}
		c.clientKey, c.serverKey = hmacSHA256(salted, "Client Key"), hmacSHA256(salted, "Server Key")
	} else {
		if salt != c.v.keys.salt || iterations != c.v.iterations {
			return "", fmt.Errorf("pgwire: the origin's SCRAM salt is not the verifier's: the role's password changed")
		}
		c.serverKey = c.v.keys.serverKey[:]
	}
	withoutProof := "c=biws,r=" + nonce
	c.authMsg = c.bare + "," + serverFirst + "," + withoutProof
	stored := sha256.Sum256(c.clientKey)
	proof := hmacSHA256(stored[:], c.authMsg)
	for i := range proof {
		proof[i] ^= c.clientKey[i]
	}
	return withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof), nil
}

// Verify checks the server-final-message: the origin proves it knows the ServerKey too.
func (c *SCRAMClient) Verify(serverFinal string) error {
	want := "v=" + base64.StdEncoding.EncodeToString(hmacSHA256(c.serverKey, c.authMsg))
	if !hmac.Equal([]byte(serverFinal), []byte(want)) {
		return fmt.Errorf("pgwire: the origin's SCRAM server signature does not match")
	}
	return nil
}
