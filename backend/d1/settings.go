package d1

import (
	"strings"
)

// The session statements PostgreSQL clients send that SQLite lacks, as D1 reads them; package
// pgserver keeps the settings they change.

// parseSet reads SET [SESSION | LOCAL] name {TO | =} value[, ...] | SET TIME ZONE value.
// SET LOCAL is treated as SET SESSION: D1 keeps no per-transaction settings.
func parseSet(sql string) (name, value string, ok bool) {
	ts := tokens(sql)
	k := 1
	if k < len(ts) && (ts[k].is(sql, "SESSION") || ts[k].is(sql, "LOCAL")) {
		k++
	}
	if k+1 < len(ts) && ts[k].is(sql, "TIME") && ts[k+1].is(sql, "ZONE") {
		name = "TimeZone"
		k += 2
	} else {
		if k >= len(ts) || (ts[k].kind != tkWord && ts[k].kind != tkQuoted) {
			return "", "", false
		}
		name = unquoteIdent(ts[k].text(sql))
		k++
		for k+1 < len(ts) && ts[k].kind == tkPunct && ts[k].text(sql) == "." { // custom.name
			name += "." + unquoteIdent(ts[k+1].text(sql))
			k += 2
		}
		if k >= len(ts) || !(ts[k].is(sql, "TO") || ts[k].kind == tkPunct && ts[k].text(sql) == "=") {
			return "", "", false
		}
		k++
	}
	if k >= len(ts) {
		return "", "", false
	}
	if k == len(ts)-1 && ts[k].is(sql, "DEFAULT") {
		return name, "\x00default", true
	}
	var parts []string
	for ; k < len(ts); k++ {
		t := ts[k]
		switch {
		case t.kind == tkPunct && t.text(sql) == ",":
			continue
		case t.kind == tkString:
			parts = append(parts, unquoteString(t.text(sql)))
		case t.kind == tkPunct && t.text(sql) == "-" && k+1 < len(ts):
			parts = append(parts, "-"+ts[k+1].text(sql))
			k++
		default:
			parts = append(parts, unquoteIdent(t.text(sql)))
		}
	}
	return name, strings.Join(parts, ", "), true
}

func unquoteIdent(s string) string {
	if len(s) >= 2 && (s[0] == '"' || s[0] == '`') {
		return strings.ReplaceAll(s[1:len(s)-1], s[:1]+s[:1], s[:1])
	}
	if len(s) >= 2 && s[0] == '[' {
		return s[1 : len(s)-1]
	}
	return s
}

func unquoteString(s string) string {
	if len(s) >= 2 && s[0] == '\'' {
		return strings.ReplaceAll(s[1:len(s)-1], "''", "'")
	}
	return s
}

// parseSetConfig reads SELECT [pg_catalog.]set_config('name', 'value', is_local)[, ...], the form
// the pool replays session settings in, and returns the (name, value) pairs.
func parseSetConfig(sql string) (pairs [][2]string, ok bool) {
	ts := tokens(sql)
	p := func(k int, s string) bool { return k < len(ts) && ts[k].kind == tkPunct && ts[k].text(sql) == s }
	k := 1
	for {
		if k+1 < len(ts) && ts[k].is(sql, "pg_catalog") && p(k+1, ".") {
			k += 2
		}
		if !(k+7 < len(ts) && ts[k].is(sql, "set_config") && p(k+1, "(") && ts[k+2].kind == tkString &&
			p(k+3, ",") && ts[k+4].kind == tkString && p(k+5, ",") && ts[k+6].kind == tkWord && p(k+7, ")")) {
			return nil, false
		}
		pairs = append(pairs, [2]string{unquoteString(ts[k+2].text(sql)), unquoteString(ts[k+4].text(sql))})
		k += 8
		if k == len(ts) {
			return pairs, true
		}
		if !p(k, ",") {
			return nil, false
		}
		k++
	}
}
