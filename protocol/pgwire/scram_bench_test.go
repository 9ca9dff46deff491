package pgwire

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"net"
	"strings"
	"testing"
)

// BenchmarkSCRAMServer times the edge's side of one SCRAM-SHA-256 login, the three messages
// over a pipe, with a client that salts the password once and reuses it (the salt is the
// same every time, as a stored verifier's is): what the edge spends per new connection. The
// client's own PBKDF2 (BenchmarkSCRAMServer/client-pbkdf2) is paid by every client of any
// SCRAM-SHA-256 server with PostgreSQL's 4096 iterations, PostgreSQL included.
//
//	go test ./protocol/pgwire -run '^$' -bench SCRAMServer
func BenchmarkSCRAMServer(b *testing.B) {
	const user, password = "alice", "secret"
	if err := PrepareSCRAM(user, password); err != nil {
		b.Fatal(err)
	}
	var salted []byte // the client's, for the salt the edge sends
	b.Run("login", func(b *testing.B) {
		for b.Loop() {
			server, client := net.Pipe()
			done := make(chan error, 1)
			go func() {
				defer server.Close()
				done <- Authenticate(server, NewReader(server, 1<<16), AuthSCRAM, user, password, false)
			}()
			cr := NewReader(client, 1<<16)
			if _, _, err := cr.ReadMessage(); err != nil { // AuthenticationSASL
				b.Fatal(err)
			}
			const clientFirstBare = "n=,r=rOprNGfwEbeRWgbNEkqO"
			client.Write(saslInitialResponse(scramMechanism, "n,,"+clientFirstBare))
			_, body, err := cr.ReadMessage()
			if err != nil {
				b.Fatal(err)
			}
			serverFirst := string(body[4:])
			attrs := strings.Split(serverFirst, ",")
			nonce, saltB64 := attrs[0][2:], attrs[1][2:]
			if salted == nil {
				salt, _ := base64.StdEncoding.DecodeString(saltB64)
				salted, _ = pbkdf2.Key(sha256.New, password, salt, scramIterations, sha256.Size)
			}
			withoutProof := "c=biws,r=" + nonce
			authMessage := clientFirstBare + "," + serverFirst + "," + withoutProof
			clientKey := hmacSHA256(salted, "Client Key")
			storedKey := sha256.Sum256(clientKey)
			proof := hmacSHA256(storedKey[:], authMessage)
			for i := range proof {
				proof[i] ^= clientKey[i]
			}
			final := withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof)
			client.Write(AppendFrame(nil, 'p', []byte(final)))
			if _, body, err = cr.ReadMessage(); err != nil { // AuthenticationSASLFinal
				b.Fatal(err)
			}
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			serverKey := hmacSHA256(salted, "Server Key")
			if want := "v=" + base64.StdEncoding.EncodeToString(hmacSHA256(serverKey, authMessage)); !hmac.Equal(body[4:], []byte(want)) {
				b.Fatalf("server signature %q, want %q", body[4:], want)
			}
			client.Close()
		}
	})
	b.Run("client-pbkdf2", func(b *testing.B) {
		salt := randomBytes(scramSaltLen)
		for b.Loop() {
			if _, err := pbkdf2.Key(sha256.New, password, salt, scramIterations, sha256.Size); err != nil {
				b.Fatal(err)
			}
		}
	})
}
