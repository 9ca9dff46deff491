package kv

import (
	"testing"

	"github.com/slipstream-proxy/slipstream/backend/pgserver"
)

// FuzzParseKV feeds the statement matcher arbitrary text: it must never panic, and what it
// matches must be well formed: parameters numbered within range and typed, operands present
// where the verb needs them, and LIKE patterns and literals resolvable without a panic.
func FuzzParseKV(f *testing.F) {
	for _, s := range []string{
		`SELECT key, value, metadata, expiration FROM kv WHERE key = $1`,
		`SELECT * FROM kv WHERE key LIKE 'p%' AND key > $2 ORDER BY key LIMIT 10`,
		`INSERT INTO kv (key, value, metadata, expiration_ttl) VALUES ($1, '\x00', '{}', -5), ('b', $2::bytea, NULL, (60))`,
		`DELETE FROM kv WHERE key = 'k';`,
		`RESET ALL;SELECT pg_catalog.set_config('a','b',false);SET x.y TO 'z'`,
		`SET TIME ZONE LOCAL; SHOW timezone; DISCARD ALL; DEALLOCATE PREPARE "s1"; COMMIT WORK`,
		`/* a /* nested */ comment */ SELECT "key" FROM public."kv" -- tail`,
		`SELECT key FROM kv WHERE key = 'unterminated`,
		`'`, `"`, `/*`, `$`, `$1`, `;;`, "\x00", `SELECT key FROM kv LIMIT -`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		sts, err := parseSQL(sql)
		if err != nil {
			return
		}
		for _, st := range sts {
			args := make(values, len(st.params))
			for i, oid := range st.params {
				if oid == pgserver.OIDUnknown || i >= maxParams {
					t.Fatalf("%q: parameter $%d is untyped", sql, i+1)
				}
				args[i] = arg{b: []byte("x%")}
			}
			switch st.verb {
			case vGet:
				if len(st.cols) == 0 {
					t.Fatalf("%q: a SELECT without columns", sql)
				}
				p := &portal{ps: &prepared{st: st}, args: args}
				_, _ = p.resolve()
			case vPut:
				for _, row := range st.rows {
					if len(row) != len(st.cols) {
						t.Fatalf("%q: a row of %d values for %d columns", sql, len(row), len(st.cols))
					}
					for i, c := range st.cols {
						switch c {
						case colKey:
							_, _, _ = args.text(row[i], "key")
						case colValue:
							_, _, _ = args.bytes(row[i])
						case colMetadata:
							_, _, _ = args.json(row[i])
						default:
							_, _, _ = args.integer(row[i])
						}
					}
				}
			case vDelete:
				if st.key.kind == opNone {
					t.Fatalf("%q: a DELETE without a key", sql)
				}
			}
		}
	})
}
