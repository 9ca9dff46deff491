package d1

import (
	"context"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// encode concatenates frontend messages as they go on the wire.
func encode(msgs ...pgproto3.FrontendMessage) []byte {
	var b []byte
	for _, m := range msgs {
		var err error
		if b, err = m.Encode(b); err != nil {
			panic(err)
		}
	}
	return b
}

// FuzzSession feeds arbitrary bytes to a session after a valid startup: it must neither panic
// nor hang, whatever arrives.
func FuzzSession(f *testing.F) {
	f.Add(encode(&pgproto3.Query{String: "CREATE TABLE IF NOT EXISTS f (a INTEGER, b TEXT); INSERT INTO f VALUES (1, 'x'); SELECT * FROM f"}))
	f.Add(encode(&pgproto3.Parse{Name: "s", Query: "SELECT $1, $2 FROM f WHERE a = $1"},
		&pgproto3.Bind{PreparedStatement: "s", ParameterFormatCodes: []int16{1}, Parameters: [][]byte{{0, 0, 0, 0, 0, 0, 0, 1}, nil}, ResultFormatCodes: []int16{1}},
		&pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{MaxRows: 1}, &pgproto3.Execute{}, &pgproto3.Sync{}))
	f.Add(encode(&pgproto3.Query{String: "BEGIN"}, &pgproto3.Query{String: "SELEC"}, &pgproto3.Query{String: "ROLLBACK"}))
	f.Add(encode(&pgproto3.Query{String: "SET x = 1; SHOW x; RESET ALL; DISCARD ALL; DEALLOCATE ALL"}))
	f.Add(encode(&pgproto3.Bind{PreparedStatement: "nope"}, &pgproto3.Close{ObjectType: 'P'}, &pgproto3.Flush{}, &pgproto3.Sync{}))
	f.Add([]byte{'B', 0, 0, 0, 6, 'x', 0})
	f.Add([]byte{'Q', 0x7f, 0xff, 0xff, 0xff})
	f.Add([]byte{'P', 0, 0, 0, 12, 0, 'S', 'E', 'L', 0, 0, 2, 0, 0})

	db, err := Open(filepath.Join(f.TempDir(), "fuzz.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	startup := encodeStartup()

	f.Fuzz(func(t *testing.T, data []byte) {
		client, server := net.Pipe()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- db.ServeConn(ctx, server) }()
		go io.Copy(io.Discard, client)
		go func() {
			client.Write(startup)
			client.Write(data)
			client.Close() // EOF ends the session once it has read everything
		}()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatalf("session hangs on %q", data)
		}
	})
}

func encodeStartup() []byte {
	b, err := (&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber,
		Parameters: map[string]string{"user": "fuzz", "database": "main"}}).Encode(nil)
	if err != nil {
		panic(err)
	}
	return b
}
