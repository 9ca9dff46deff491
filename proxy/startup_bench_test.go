package proxy

import (
	"context"
	"crypto/pbkdf2"
	"crypto/sha256"
	"errors"
	"log/slog"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/slipstream-proxy/slipstream/link"
	"github.com/slipstream-proxy/slipstream/protocol/pgwire"
)

// idleTransport answers every session's startup from a fixed profile and opens streams that
// never carry a unit: what the edge does for a new client up to ReadyForQuery, without a pool.
type idleTransport struct{}

func (idleTransport) Profile(context.Context, string) (link.Profile, error) {
	return link.Profile{Parameters: map[string]string{"server_version": "15.0", "client_encoding": "UTF8",
		"DateStyle": "ISO, MDY", "TimeZone": "UTC", "integer_datetimes": "on", "standard_conforming_strings": "on"}}, nil
}

func (idleTransport) Open(context.Context, string, map[string]string) (link.Stream, error) {
	return idleStream{}, nil
}

type idleStream struct{}

func (idleStream) Send(_ context.Context, frames []byte) error {
	if len(frames) > 0 && frames[0] == 'X' {
		return link.ErrTerminated
	}
	return errors.New("idle stream: no units")
}
func (idleStream) Recv(context.Context, []byte) ([]byte, error) {
	return nil, errors.New("idle stream")
}
func (idleStream) Pending() bool                { return false }
func (idleStream) Pinned() bool                 { return false }
func (idleStream) Caps() link.Caps              { return link.Caps{} }
func (idleStream) Skip([]byte)                  {}
func (idleStream) Cancel(context.Context) error { return nil }
func (idleStream) Close() error                 { return nil }

// BenchmarkPGNewConnection times what a new connection costs a pgx client of an edge on
// loopback, from connect to ReadyForQuery and Terminate, with no pool behind the edge: the
// setup part of `bench latency`'s new-connection series. "client PBKDF2" is the part of it
// that is the client's own: pgx salting the password, 4096 rounds, as it does for any
// SCRAM-SHA-256 server, PostgreSQL included. The "after idle" runs wait 20 ms between
// connections, as `bench latency` does (there, for a WAN round trip), so that each one wakes
// an idle client and edge; they report the median in µs-p50, which is the figure to compare.
//
//	go test ./proxy -run '^$' -bench PGNewConnection
func BenchmarkPGNewConnection(b *testing.B) {
	for _, auth := range []pgwire.AuthMethod{pgwire.AuthSCRAM, pgwire.AuthTrust} {
		for _, idle := range []time.Duration{0, 20 * time.Millisecond} {
			name := string(auth)
			if idle > 0 {
				name += " after idle"
			}
			b.Run(name, func(b *testing.B) { benchmarkPGConnect(b, auth, idle) })
		}
	}
	b.Run("client PBKDF2", func(b *testing.B) {
		salt := make([]byte, 16)
		for b.Loop() {
			if _, err := pbkdf2.Key(sha256.New, "app-secret", salt, 4096, sha256.Size); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func benchmarkPGConnect(b *testing.B, auth pgwire.AuthMethod, idle time.Duration) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s := New(Config{
		Databases: []Database{{Name: "app", User: "app", Password: "app-secret", Auth: auth}},
		Transport: idleTransport{},
		Logger:    slog.New(slog.DiscardHandler),
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	defer func() { cancel(); <-done }()
	cfg, err := pgx.ParseConfig("postgres://app:app-secret@" + ln.Addr().String() + "/app?sslmode=disable")
	if err != nil {
		b.Fatal(err)
	}
	var took []time.Duration
	for b.Loop() {
		if idle > 0 {
			b.StopTimer()
			time.Sleep(idle)
			b.StartTimer()
		}
		start := time.Now()
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(start))
		c.Close(ctx)
	}
	if idle > 0 {
		slices.Sort(took)
		b.ReportMetric(float64(took[len(took)/2].Microseconds()), "µs-p50")
	}
}
