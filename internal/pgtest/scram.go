package pgtest

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
)

// SCRAMClientKey returns the ClientKey of password under a SCRAM-SHA-256 verifier's salt and
// iteration count (pg_shadow.passwd): what a proxy recovers from a client's SCRAM proof, which
// tests look for where it must not be (a log) or log in with.
func SCRAMClientKey(verifier, password string) ([]byte, error) {
	rest, ok := strings.CutPrefix(verifier, "SCRAM-SHA-256$")
	iter, rest, _ := strings.Cut(rest, ":")
	salt64, _, _ := strings.Cut(rest, "$")
	n, err := strconv.Atoi(iter)
	salt, err2 := base64.StdEncoding.DecodeString(salt64)
	if !ok || err != nil || err2 != nil {
		return nil, errors.New("pgtest: not a SCRAM-SHA-256 verifier")
	}
	salted, err := pbkdf2.Key(sha256.New, password, salt, n, sha256.Size)
	if err != nil {
		return nil, err
	}
	mac := hmac.New(sha256.New, salted)
	mac.Write([]byte("Client Key"))
	return mac.Sum(nil), nil
}
