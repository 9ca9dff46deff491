package mysqlwire

import (
	"crypto/sha1"
	"crypto/subtle"
	"encoding/hex"
)

// mysql_native_password without the password: a server stores SHA1(SHA1(password)) (its
// verifier, "*" and 40 hex digits in mysql.user's authentication_string), and a client's
// scramble is SHA1(password) XOR SHA1(salt + SHA1(SHA1(password))). Whoever holds the verifier
// can therefore take SHA1(password) back out of one client's scramble (RecoverNativeHash), and
// check it: its SHA1 is the verifier. With SHA1(password) a new scramble for another salt can
// be made (NativeScramble) without the password itself, which is how the pool logs in to the
// origin as a role whose password Slipstream never held (ProxySQL does the same).

// NativeHashLen is the length of SHA1(password) and of the verifier SHA1(SHA1(password)).
const NativeHashLen = sha1.Size

// ParseNativeVerifier reads a mysql_native_password authentication_string ("*" and 40 hex
// digits) into SHA1(SHA1(password)); ok is false for anything else (another plugin's string,
// or "" for no password).
func ParseNativeVerifier(s string) (v []byte, ok bool) {
	if len(s) != 1+2*NativeHashLen || s[0] != '*' {
		return nil, false
	}
	v, err := hex.DecodeString(s[1:])
	if err != nil {
		return nil, false
	}
	return v, true
}

// NativeScramble is the mysql_native_password answer to salt from SHA1(password); empty for
// an empty hash (no password).
func NativeScramble(salt, hash []byte) []byte {
	if len(hash) == 0 {
		return nil
	}
	stage2 := sha1.Sum(hash)
	h := sha1.New()
	h.Write(salt)
	h.Write(stage2[:])
	out := h.Sum(nil)
	for i := range out {
		out[i] ^= hash[i]
	}
	return out
}

// RecoverNativeHash takes SHA1(password) out of a client's mysql_native_password scramble of
// salt, given the verifier SHA1(SHA1(password)); ok is false when the scramble was not made
// from the verifier's password.
func RecoverNativeHash(salt, scramble, verifier []byte) (hash []byte, ok bool) {
	if len(scramble) != NativeHashLen || len(verifier) != NativeHashLen {
		return nil, false
	}
	h := sha1.New()
	h.Write(salt)
	h.Write(verifier)
	hash = h.Sum(nil)
	for i := range hash {
		hash[i] ^= scramble[i]
	}
	check := sha1.Sum(hash)
	if subtle.ConstantTimeCompare(check[:], verifier) != 1 {
		return nil, false
	}
	return hash, true
}

// ValidNativeHash reports whether hash is SHA1(password) of verifier's password.
func ValidNativeHash(hash, verifier []byte) bool {
	if len(hash) != NativeHashLen || len(verifier) != NativeHashLen {
		return false
	}
	check := sha1.Sum(hash)
	return subtle.ConstantTimeCompare(check[:], verifier) == 1
}
