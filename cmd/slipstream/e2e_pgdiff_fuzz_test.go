package main

import (
	"context"
	"testing"
	"time"

	"github.com/slipstream-proxy/slipstream/internal/pgdiff"
	"github.com/slipstream-proxy/slipstream/internal/pgtest"
)

// FuzzPipelines generates message sequences (pgdiff.Generate: Parse, Bind, Describe, Execute
// with row limits, Close, Sync, Flush, simple queries, COPY) and checks that `slipstream
// serve` answers each exactly as PostgreSQL does. Its seed corpus (testdata/fuzz/FuzzPipelines
// and the seeds below) runs in every `go test`; a long run, each input 20 messages:
//
//	go test ./cmd/slipstream -timeout 0 -run '^$' -fuzz FuzzPipelines -fuzztime 10000x -parallel 1
func FuzzPipelines(f *testing.F) {
	for _, seed := range []string{
		"", "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a",
		"\x00\x00\x00\x01\x02\x00\x05\x00\x00\x09\x05\x00\x00\x08",
		"\x01\x00\x00\x03\x03\x01\x02\x00\x00\x06\x01\x01\x08\x00\x00\x0a\x00\x0e\x00\x00\x0a\x00\x0f",
		"\x00\x00\x00\x11\x01\x00\x02\x00\x00\x05\x00\x00\x08\x00\x00\x0a\x00\x12",
	} {
		f.Add([]byte(seed))
	}
	inst := runServeFor(f, pgtest.AppDB, []string{"--origin", directURL()})
	url, direct := inst.plainURL(), directURL()
	f.Fuzz(func(t *testing.T, data []byte) {
		s := pgdiff.Generate(data)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		want, err := pgdiff.Run(ctx, pgdiff.Target{URL: direct, Direct: direct}, s)
		if err != nil {
			t.Fatal(err)
		}
		got, err := pgdiff.Run(ctx, pgdiff.Target{URL: url, Direct: direct}, s)
		if err != nil {
			t.Fatal(err)
		}
		if err := pgdiff.Compare(want, got); err != nil {
			t.Fatalf("%v\nPostgreSQL's whole transcript:\n%s", err, want)
		}
	})
}
