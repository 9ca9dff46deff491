package e2e

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/slipstream-proxy/slipstream/internal/pgdiff"
	"github.com/slipstream-proxy/slipstream/internal/pgtest"
)

// FuzzPipelines generates message sequences (pgdiff.Generate: Parse, Bind, Describe, Execute
// with row limits, Close, Sync, Flush, simple queries, COPY) and checks that `slipstream
// serve` answers each exactly as PostgreSQL does. Its seed corpus (testdata/fuzz/FuzzPipelines
// and the seeds below) runs in every `go test`; a long run, each input pgdiff.GeneratedMessages
// (200) messages, 1,000 inputs 200,000 messages, counted in the file SLIPSTREAM_FUZZ_TALLY names:
//
//	SLIPSTREAM_FUZZ_TALLY=/tmp/pg.tally go test ./test/e2e -timeout 0 -run '^$' \
//	    -fuzz FuzzPipelines -fuzztime 1000x -parallel 1
//	awk '{n += $2} END {print NR " scripts, " n " messages, no difference"}' /tmp/pg.tally
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
		fuzzTally(t, "serve", got.Sent())
	})
}

// fuzzTally appends "target messages" to the file SLIPSTREAM_FUZZ_TALLY names, for a script
// that answered as the database did: fuzz workers are processes of their own, whose logs the
// fuzzing engine does not show, and a long run's report counts the messages compared.
func fuzzTally(t *testing.T, target string, messages int) {
	name := os.Getenv("SLIPSTREAM_FUZZ_TALLY")
	if name == "" {
		return
	}
	f, err := os.OpenFile(name, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := fmt.Fprintf(f, "%s %d\n", target, messages); err != nil {
		t.Fatal(err)
	}
}
