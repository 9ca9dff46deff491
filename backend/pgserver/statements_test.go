package pgserver

import (
	"fmt"
	"testing"
)

func TestSessionStatementsReadAsPostgresWritesThem(t *testing.T) {
	tests := []struct {
		sql  string
		want string // Verb Name Value Default Pairs, or "error"
	}{
		{`SET search_path TO public, "$user"`, `1 search_path "public, $user" false []`},
		{`set Session DateStyle = 'ISO, DMY'`, `1 datestyle "ISO, DMY" false []`},
		{`SET LOCAL statement_timeout = 5000`, `2 statement_timeout "5000" false []`},
		{`SET TIME ZONE 'Europe/Paris'`, `1 timezone "Europe/Paris" false []`},
		{`SET TIME ZONE LOCAL`, `1 timezone "" true []`},
		{`SET my.param = DEFAULT`, `1 my.param "" true []`},
		{`SET extra_float_digits = -1`, `1 extra_float_digits "-1" false []`},
		{`SET TRANSACTION READ ONLY`, `3  "" false []`},
		{`SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE`, `3  "" false []`},
		{`RESET ALL`, `4  "" false []`},
		{`RESET "Application_Name"`, `4 Application_Name "" false []`},
		{`SHOW ALL`, `5  "" false []`},
		{`show TIME ZONE`, `5 timezone "" false []`},
		{`SELECT pg_catalog.set_config('a','1',false),set_config('B','2',true)`, `6  "" false [[a 1] [b 2]]`},
		{`SET x`, "error"},
		{`SET x = $1`, "error"},
		{`SHOW`, "error"},
		{`SELECT set_config('a', $1, false)`, "error"},
		{`SELECT set_config('a', 'b', false) FROM t`, "error"},
	}
	for _, tt := range tests {
		t.Run(tt.sql, func(t *testing.T) {
			stmts, err := Lex(tt.sql)
			if err != nil || len(stmts) != 1 || !IsSession(stmts[0]) {
				t.Fatalf("Lex: %v, %d statements", err, len(stmts))
			}
			st, err := ParseSession(stmts[0])
			got := "error"
			if err == nil {
				got = fmt.Sprintf("%d %s %q %v %v", st.Verb, st.Name, st.Value, st.Default, st.Pairs)
			} else if _, ok := err.(*SessionError); !ok {
				t.Fatalf("error of type %T", err)
			}
			if got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestTheLexerRefusesWhatItCannotRead(t *testing.T) {
	for _, sql := range []string{`SELECT 'open`, `SELECT "open`, `SELECT /* open`, `SELECT /* /* */`} {
		if _, err := Lex(sql); err == nil {
			t.Errorf("Lex(%q) read it", sql)
		} else if _, ok := err.(*LexError); !ok {
			t.Errorf("Lex(%q): error of type %T", sql, err)
		}
	}
}
