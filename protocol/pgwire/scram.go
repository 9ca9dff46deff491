package pgwire

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/text/secure/precis"
)

// SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL runs it. We offer only SCRAM-SHA-256,
// never SCRAM-SHA-256-PLUS, so there is no channel binding. The exchange:
//
//	server: AuthenticationSASL         "SCRAM-SHA-256"
//	client: SASLInitialResponse        n,,n=,r=<client nonce>
//	server: AuthenticationSASLContinue r=<client nonce><server nonce>,s=<salt>,i=4096
//	client: SASLResponse               c=biws,r=<both nonces>,p=<proof>
//	server: AuthenticationSASLFinal    v=<server signature>
const (
	scramMechanism  = "SCRAM-SHA-256"
	scramIterations = 4096 // PostgreSQL's default scram_iterations
	scramSaltLen    = 16
	scramNonceLen   = 18 // random bytes in the server's nonce, as PostgreSQL
)

// scramKeys is what PostgreSQL stores for a SCRAM password: the salt and the two keys derived
// from the salted password. Deriving them costs 4096 HMAC rounds, so once they have verified a
// client they are kept per (user, password) for the life of the process, each entry with its
// own random salt.
type scramKeys struct {
	id        [sha256.Size]byte // the cache key
	salt      string            // base64, as sent
	storedKey [sha256.Size]byte
	serverKey [sha256.Size]byte
}

// The cache is keyed by an HMAC of user and password under a per-process random key, so it
// holds no password and no offline-guessable digest of one. Only keys that verified a client
// enter it, so failed logins (wrong passwords, or a caller's challenge with a random password
// for an unknown user) cannot fill it. It is bounded because users and passwords come from
// configuration, which may be reloaded: past the bound, keys are derived on every login.
var (
	scramCache     sync.Map // [sha256.Size]byte → *scramKeys
	scramCacheLen  atomic.Int32
	scramCacheSalt = randomBytes(32)
)

const scramCacheMax = 256

// scramKeysFor returns the cached keys for user and password, or derives new ones.
func scramKeysFor(user, password string) (*scramKeys, error) {
	mac := hmac.New(sha256.New, scramCacheSalt)
	mac.Write([]byte(user))
	mac.Write([]byte{0}) // a user name holds no NUL: it came from a C string
	mac.Write([]byte(password))
	var id [sha256.Size]byte
	mac.Sum(id[:0])
	if k, ok := scramCache.Load(id); ok {
		return k.(*scramKeys), nil
	}
	k, err := deriveSCRAMKeys(password)
	if err != nil {
		return nil, err
	}
	k.id = id
	return k, nil
}

// PrepareSCRAM derives and caches the SCRAM keys of configured credentials ahead of the first
// login, so that a burst of clients logging in at once does not derive them once each.
func PrepareSCRAM(user, password string) error {
	k, err := scramKeysFor(user, password)
	if err != nil {
		return err
	}
	rememberSCRAMKeys(k)
	return nil
}

// rememberSCRAMKeys caches keys that have just verified a client.
func rememberSCRAMKeys(k *scramKeys) {
	if scramCacheLen.Load() >= scramCacheMax {
		return
	}
	if _, loaded := scramCache.LoadOrStore(k.id, k); !loaded {
		scramCacheLen.Add(1)
	}
}

func deriveSCRAMKeys(password string) (*scramKeys, error) {
	salt := randomBytes(scramSaltLen)
	salted, err := pbkdf2.Key(sha256.New, saslPrep(password), salt, scramIterations, sha256.Size)
	if err != nil {
		return nil, fmt.Errorf("pgwire: derive scram keys: %w", err)
	}
	k := &scramKeys{salt: base64.StdEncoding.EncodeToString(salt)}
	k.storedKey = sha256.Sum256(hmacSHA256(salted, "Client Key"))
	copy(k.serverKey[:], hmacSHA256(salted, "Server Key"))
	return k, nil
}

// saslPrep normalizes a password as SASLprep does (RFC 4013) before hashing, as PostgreSQL and
// pgconn do; like them it falls back to the raw password when normalization refuses it.
func saslPrep(password string) string {
	if p, err := precis.OpaqueString.String(password); err == nil {
		return p
	}
	return password
}

func hmacSHA256(key []byte, msg string) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(msg))
	return mac.Sum(nil)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b) // never fails since Go 1.24
	return b
}

func authSCRAM(w io.Writer, r *Reader, user, password string) error {
	// Keys are derived (or found in the cache) only once the client has chosen the mechanism.
	keys := func() (*scramKeys, int, error) {
		k, err := scramKeysFor(user, password)
		return k, scramIterations, err
	}
	k, _, err := scramExchange(w, r, user, keys)
	if err == nil {
		rememberSCRAMKeys(k)
	}
	return err
}

// scramExchange runs the server side of SCRAM-SHA-256 with the keys and iteration count that
// keys returns and, once the client's proof matches them, returns them and the ClientKey
// recovered from the proof (ClientProof XOR ClientSignature), which is what a proxy logs in
// to the origin with on the client's behalf. A wrong proof is authFailed(user).
func scramExchange(w io.Writer, r *Reader, user string, keys func() (*scramKeys, int, error)) (*scramKeys, []byte, error) {
	// The mechanism list: C strings ended by an empty one.
	if err := writeAuth(w, authSASL, []byte(scramMechanism+"\x00\x00")); err != nil {
		return nil, nil, err
	}
	body, err := readAuthResponse(r)
	if err != nil {
		return nil, nil, err
	}
	first, err := parseSASLInitialResponse(body)
	if err != nil {
		return nil, nil, err
	}
	k, iterations, err := keys()
	if err != nil {
		return nil, nil, err
	}
	nonce := first.nonce + base64.StdEncoding.EncodeToString(randomBytes(scramNonceLen))
	serverFirst := "r=" + nonce + ",s=" + k.salt + ",i=" + strconv.Itoa(iterations)
	if err := writeAuth(w, authSASLContinue, []byte(serverFirst)); err != nil {
		return nil, nil, err
	}

	body, err = readAuthResponse(r)
	if err != nil {
		return nil, nil, err
	}
	final, err := parseClientFinal(string(body), first.gs2Header, nonce)
	if err != nil {
		return nil, nil, err
	}
	authMessage := first.bare + "," + serverFirst + "," + final.withoutProof
	clientKey := hmacSHA256(k.storedKey[:], authMessage)
	for i := range clientKey {
		clientKey[i] ^= final.proof[i] // ClientSignature XOR ClientProof
	}
	if storedKey := sha256.Sum256(clientKey); !hmac.Equal(storedKey[:], k.storedKey[:]) {
		return nil, nil, authFailed(user)
	}
	serverSignature := hmacSHA256(k.serverKey[:], authMessage)
	if err := writeAuth(w, authSASLFinal, []byte("v="+base64.StdEncoding.EncodeToString(serverSignature))); err != nil {
		return nil, nil, err
	}
	return k, clientKey, nil
}

func malformedSCRAM(detail string) *Error {
	e := Fatal(ProtocolViolation, "malformed SCRAM message")
	e.Detail = detail
	return e
}

type clientFirst struct {
	gs2Header string // "n,," or "y,,"
	bare      string // client-first-message-bare, part of the signed AuthMessage
	nonce     string
}

// parseSASLInitialResponse reads the mechanism and the client-first-message:
// gs2-header ("n,," or "y,,") then n=<user>,r=<nonce>[,extensions]. The user name in it is
// ignored, as PostgreSQL does: the one from the StartupMessage counts.
func parseSASLInitialResponse(body []byte) (clientFirst, error) {
	mech, rest, ok := cutCString(body)
	if !ok || mech != scramMechanism {
		return clientFirst{}, Fatal(ProtocolViolation, "client selected an invalid SASL authentication mechanism")
	}
	if len(rest) < 4 {
		return clientFirst{}, malformedSCRAM("Missing initial response.")
	}
	n := int32(binary.BigEndian.Uint32(rest))
	rest = rest[4:]
	if n < 0 || int(n) != len(rest) {
		return clientFirst{}, malformedSCRAM("Missing or malformed initial response.")
	}
	msg := string(rest)

	switch {
	case strings.HasPrefix(msg, "n,"), strings.HasPrefix(msg, "y,"):
		// "y": the client could bind but believes we can't, which is true: no PLUS offered.
	case strings.HasPrefix(msg, "p="):
		return clientFirst{}, malformedSCRAM("The client selected SCRAM-SHA-256 without channel binding, " +
			"but the SCRAM message includes channel binding data.")
	default:
		return clientFirst{}, malformedSCRAM("Unexpected channel-binding flag in client-first-message.")
	}
	if strings.HasPrefix(msg[2:], "a=") {
		return clientFirst{}, Fatal(FeatureNotSupported, "client uses authorization identity, but it is not supported")
	}
	if !strings.HasPrefix(msg[2:], ",") {
		return clientFirst{}, malformedSCRAM("Unexpected attribute in client-first-message.")
	}
	cf := clientFirst{gs2Header: msg[:3], bare: msg[3:]}
	if strings.HasPrefix(cf.bare, "m=") {
		return clientFirst{}, Fatal(FeatureNotSupported, "client requires an unsupported SCRAM extension")
	}
	name, attrs, _ := strings.Cut(cf.bare, ",")
	nonce, _, _ := strings.Cut(attrs, ",")
	if !strings.HasPrefix(name, "n=") || !strings.HasPrefix(nonce, "r=") || !printableNonce(nonce[2:]) {
		return clientFirst{}, malformedSCRAM("Malformed client-first-message.")
	}
	cf.nonce = nonce[2:]
	return cf, nil
}

// printableNonce reports whether s is a valid nonce: printable ASCII except ','.
func printableNonce(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e || s[i] == ',' {
			return false
		}
	}
	return s != ""
}

type clientFinal struct {
	withoutProof string // client-final-message-without-proof, part of the signed AuthMessage
	proof        []byte // sha256.Size bytes
}

// parseClientFinal reads c=<gs2 header, base64>,r=<nonce>[,extensions],p=<proof> and checks
// the header and nonce against the ones from the first round.
func parseClientFinal(msg, gs2Header, nonce string) (clientFinal, error) {
	i := strings.LastIndex(msg, ",p=")
	if i < 0 {
		return clientFinal{}, malformedSCRAM("Could not find proof in client-final-message.")
	}
	f := clientFinal{withoutProof: msg[:i]}
	proof, err := base64.StdEncoding.DecodeString(msg[i+3:])
	if err != nil || len(proof) != sha256.Size {
		return clientFinal{}, malformedSCRAM("Malformed proof in client-final-message.")
	}
	f.proof = proof

	cbind, attrs, _ := strings.Cut(f.withoutProof, ",")
	gotNonce, _, _ := strings.Cut(attrs, ",")
	if !strings.HasPrefix(cbind, "c=") || !strings.HasPrefix(gotNonce, "r=") {
		return clientFinal{}, malformedSCRAM("Malformed client-final-message.")
	}
	if header, err := base64.StdEncoding.DecodeString(cbind[2:]); err != nil || string(header) != gs2Header {
		return clientFinal{}, Fatal(ProtocolViolation, "SCRAM channel binding check failed")
	}
	if gotNonce[2:] != nonce {
		return clientFinal{}, malformedSCRAM("Nonce does not match.")
	}
	return f, nil
}
