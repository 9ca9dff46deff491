package mydiff

import (
	"fmt"
	"strings"
)

// GeneratedSteps is the number of commands in every generated script, so that a fuzz run's
// size in commands is its executions times this (plus one login each). It is long because a
// script's login, on MariaDB and through each Slipstream, is most of what a short one costs;
// the input wraps around, so a short input's script repeats it on the state the first pass left.
const GeneratedSteps = 160

// FuzzSetup are the statements a generated script's database needs before it runs (made once,
// directly): a table the scripts only read.
var FuzzSetup = []string{
	"DROP TABLE IF EXISTS md_fzr",
	"CREATE TABLE md_fzr (id INT PRIMARY KEY, v VARCHAR(10), j JSON, d DECIMAL(6,2))",
	"INSERT INTO md_fzr VALUES (1, 'one', '[1]', 1.5), (2, 'two', NULL, NULL), (3, NULL, '{\"a\":3}', -3.25)",
}

// fuzzStmts are the statements generated scripts prepare, with their parameter counts. Writes
// go to a temporary table (each session's own, so that runs do not see each other's).
var fuzzStmts = []struct {
	sql    string
	params int
}{
	{"SELECT ?", 1},
	{"SELECT id, v, j, d FROM md_fzr WHERE id > ? ORDER BY id", 1},
	{"SELECT seq FROM seq_1_to_20 WHERE seq > ?", 1},
	{"SELEC ?", 1},
	{"INSERT INTO md_fzw (id, v) VALUES (?, ?)", 2},
	{"SELECT ?, ?, CONCAT(?, 'x')", 3},
	{"SELECT COUNT(*) FROM md_fzw", 0},
	{"UPDATE md_fzw SET v = ? WHERE id = 7", 1},
}

// fuzzQueries are COM_QUERY texts.
var fuzzQueries = []string{
	"SELECT 1",
	"SELECT id, v FROM md_fzr ORDER BY id",
	"SELECT * FROM md_fzr WHERE id = 2",
	"SELEC 1",
	"SELECT * FROM md_no_such_table",
	"BEGIN",
	"COMMIT",
	"ROLLBACK",
	"SET autocommit = 0",
	"SET autocommit = 1",
	"SET @fz = 5",
	"SELECT @fz",
	"SET time_zone = '+01:00'",
	"SELECT @@time_zone, @@sql_mode",
	"SET sql_mode = 'ANSI_QUOTES'",
	"SELECT CAST('1x' AS SIGNED)",
	"SHOW WARNINGS",
	"SELECT 1; SELECT 2",
	"CREATE TEMPORARY TABLE IF NOT EXISTS md_fzw (id INT PRIMARY KEY, v VARCHAR(10))",
	"INSERT INTO md_fzw VALUES (7, 'x')",
	"SELECT * FROM md_fzw ORDER BY id",
	"SELECT DATABASE()",
	"DO 1",
	"SELECT LAST_INSERT_ID()",
	"SELECT seq FROM seq_1_to_100",
	"UPDATE md_fzw SET v = 'y'",
}

// fuzzCaps are the capabilities a generated script may ask for.
var fuzzCaps = []string{"deprecate_eof", "multi_statements", "session_track", "found_rows", "extended_metadata"}

// fuzzArgs are execute arguments.
var fuzzArgs = []string{"1", "0", "-5", "'two'", "NULL", "2.5", "x'00ff'", "''", "'a b'", "20"}

// Generate turns fuzz input into a script of GeneratedSteps commands from a fixed vocabulary:
// queries, prepared statements (prepare, execute with or without types or a cursor, fetch,
// long data, reset, close, and MariaDB's prepare-and-execute in one write), COM_PING,
// COM_INIT_DB, COM_SET_OPTION, COM_RESET_CONNECTION and COM_FIELD_LIST. Every input makes a
// script; the same input makes the same one.
func Generate(data []byte) Script {
	pos := 0
	next := func() int {
		if len(data) == 0 {
			return 0
		}
		b := data[pos%len(data)]
		pos++
		return int(b)
	}
	var lines []string
	if len(data) > 0 {
		mask := next()
		var caps []string
		for i, c := range fuzzCaps {
			if mask&(1<<i) != 0 {
				caps = append(caps, "+"+c)
			}
		}
		if len(caps) > 0 {
			lines = append(lines, "caps "+strings.Join(caps, " "))
		}
	}
	capsLines := len(lines)
	prepared := map[int]int{} // statement name -> fuzzStmts index
	args := func(n int) string {
		var a []string
		for range n {
			a = append(a, fuzzArgs[next()%len(fuzzArgs)])
		}
		return strings.Join(a, " ")
	}
	for cmds := 0; cmds < GeneratedSteps; cmds = len(lines) - capsLines {
		op, name := next(), next()%3
		sn := fmt.Sprintf("s%d", name)
		switch op % 16 {
		case 0, 1, 2, 3:
			lines = append(lines, "query "+fuzzQueries[next()%len(fuzzQueries)])
		case 4, 5:
			i := next() % len(fuzzStmts)
			prepared[name] = i
			lines = append(lines, fmt.Sprintf("prepare %s %s", sn, fuzzStmts[i].sql))
		case 6, 7, 8:
			n := fuzzStmts[prepared[name]].params
			if next()%8 == 0 {
				n = next() % 4 // the wrong number of arguments, now and then
			}
			mode := []string{"", "cursor ", "nobind ", ""}[next()%4]
			lines = append(lines, fmt.Sprintf("execute %s %s%s", sn, mode, args(n)))
		case 9:
			lines = append(lines, fmt.Sprintf("fetch %s %d", sn, next()%5))
		case 10:
			lines = append(lines, "close "+sn)
		case 11:
			lines = append(lines, "reset "+sn)
		case 12:
			lines = append(lines, fmt.Sprintf("longdata %s %d chunk%d", sn, next()%3, next()))
		case 13:
			if cmds+2 > GeneratedSteps {
				lines = append(lines, "ping")
				break
			}
			i := next() % len(fuzzStmts)
			lines = append(lines, "& prepare p "+fuzzStmts[i].sql, "execute last "+args(fuzzStmts[i].params))
		case 14:
			lines = append(lines, []string{"ping", "initdb app", "initdb md_no_db", "setoption on", "setoption off",
				"resetconn", "fieldlist md_fzr", "fieldlist md_fzw"}[next()%8])
		case 15:
			lines = append(lines, "query SELECT id FROM md_fzr WHERE id = "+fuzzArgs[next()%len(fuzzArgs)])
		}
	}
	s, err := Parse("generated", strings.Join(lines, "\n"))
	if err != nil {
		panic(fmt.Sprintf("mydiff: a generated script does not parse: %v\n%s", err, strings.Join(lines, "\n")))
	}
	return s
}
