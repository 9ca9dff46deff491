package pgdiff

import (
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"
)

// GeneratedMessages is how many frontend messages Generate makes of any input: a fuzz run of N
// inputs sends N × GeneratedMessages messages to each server (plus the table it starts with
// and the closing Sync; Transcript.Sent counts them). It is long because what a run costs is
// mostly its start (a schema, a connection, a login): 200 messages take about twice as long
// as 20. An input read to its end wraps around, so the script of a short input repeats it with
// the state the first pass left.
const GeneratedMessages = 200

// fuzzQueries are the statements generated messages carry: reads, writes, errors of every
// kind, transaction control, settings, SQL prepared statements, DDL that makes a prepared
// statement stale, COPY out. Each is deterministic on a fresh schema holding table t.
var fuzzQueries = []string{
	"SELECT 1",
	"SELECT $1::int + 1",
	"SELECT generate_series(1, 3) AS n",
	"SELECT 1/0",
	"SELEC 1",
	"",
	"INSERT INTO t VALUES ($1::int, 'x')",
	"SELECT count(*) FROM t",
	"BEGIN",
	"COMMIT",
	"ROLLBACK",
	"SET application_name = 'fz'",
	"SHOW application_name",
	"SELECT * FROM t ORDER BY id",
	"PREPARE q AS SELECT 2",
	"EXECUTE q",
	"DEALLOCATE q",
	"ALTER TABLE t ADD COLUMN c%d int",
	"SELECT 1; SELECT 1/0; SELECT 2",
	"DECLARE c CURSOR FOR SELECT generate_series(1, 4)",
	"COPY (SELECT 1, 'a') TO STDOUT",
	"SAVEPOINT sp",
	"DEALLOCATE ALL",
}

// Generate makes a script of GeneratedMessages frontend messages from fuzz input data, from a
// small grammar of valid-ish messages: Parse, Bind, Describe, Execute (with row limits), Close
// of a few statement and portal names, Sync, Flush, simple queries and COPY FROM STDIN with
// its data. The input is read byte by byte, wrapping around; empty input is all zeros.
func Generate(data []byte) *Script {
	g := &generator{s: &Script{Name: "generated", Params: map[string]string{}}, params: map[string]int{}}
	g.add(&pgproto3.Query{String: "CREATE TABLE t (id int, v text)"})
	g.data = data
	for g.n < GeneratedMessages {
		g.op()
	}
	return g.s
}

type generator struct {
	s      *Script
	data   []byte
	pos    int
	n      int            // messages generated
	params map[string]int // parameters of the statement last parsed under each name
	ddl    int            // ALTER TABLE statements so far, for fresh column names
}

// next returns the next input byte.
func (g *generator) next() int {
	if len(g.data) == 0 {
		g.pos++
		return 0
	}
	b := g.data[g.pos%len(g.data)]
	g.pos++
	return int(b)
}

func (g *generator) pick(choices ...string) string { return choices[g.next()%len(choices)] }

func (g *generator) query() string {
	q := fuzzQueries[g.next()%len(fuzzQueries)]
	if strings.Contains(q, "%d") {
		g.ddl++
		q = fmt.Sprintf(q, g.ddl)
	}
	return q
}

// add appends one message, with the text a script line would have.
func (g *generator) add(m pgproto3.FrontendMessage) {
	text := fmt.Sprintf("%T %+v", m, m)
	g.s.Steps = append(g.s.Steps, Step{Line: len(g.s.Steps) + 1, Text: strings.TrimPrefix(text, "*pgproto3."), Msg: m})
}

// op generates one production of the grammar.
func (g *generator) op() {
	stmt := g.pick("", "s1", "s2")
	portal := g.pick("", "p1")
	switch g.next() % 11 {
	case 0, 1:
		q := g.query()
		g.params[stmt] = strings.Count(q, "$1")
		g.add(&pgproto3.Parse{Name: stmt, Query: q})
	case 2, 3:
		b := &pgproto3.Bind{DestinationPortal: portal, PreparedStatement: stmt}
		for range g.params[stmt] {
			b.Parameters = append(b.Parameters, []byte(g.pick("1", "41", "x")))
		}
		g.add(b)
	case 4:
		g.add(&pgproto3.Describe{ObjectType: g.pick("S", "P")[0], Name: g.pick(stmt, portal)})
	case 5, 6:
		g.add(&pgproto3.Execute{Portal: portal, MaxRows: uint32(g.next() % 3)})
	case 7:
		typ := g.pick("S", "P")
		name := stmt
		if typ == "P" {
			name = portal
		}
		g.add(&pgproto3.Close{ObjectType: typ[0], Name: name})
	case 8:
		g.add(&pgproto3.Sync{})
	case 9:
		g.add(&pgproto3.Flush{})
	case 10:
		if g.next()%4 == 0 && g.n+3 <= GeneratedMessages {
			g.copyIn()
			return
		}
		g.add(&pgproto3.Query{String: g.query()})
	}
	g.n++
}

// copyIn generates a whole COPY FROM STDIN: the query, its data, its end. PostgreSQL ignores
// Sync and Flush in copy-in mode, so nothing else may come between.
func (g *generator) copyIn() {
	g.add(&pgproto3.Query{String: "COPY t FROM STDIN"})
	g.add(&pgproto3.CopyData{Data: []byte(g.pick("1\ta\n", "2\tb\n3\tc\n", "x\ty\n"))})
	if g.next()%5 == 0 {
		g.add(&pgproto3.CopyFail{Message: "no"})
	} else {
		g.add(&pgproto3.CopyDone{})
	}
	g.n += 3
}
