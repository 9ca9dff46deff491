package classify

import "testing"

func TestLastInsertIDQueriesAreRecognisedExactly(t *testing.T) {
	for q, want := range map[string]string{
		"SELECT LAST_INSERT_ID()":           "LAST_INSERT_ID()",
		" select last_insert_id( ) ; ":      "last_insert_id( )",
		"SELECT LAST_INSERT_ID() AS id":     "id",
		"SELECT LAST_INSERT_ID() `x y`":     "x y",
		"SELECT @@IDENTITY":                 "@@IDENTITY",
		"SELECT LAST_INSERT_ID(), 1":        "",
		"SELECT LAST_INSERT_ID(5)":          "",
		"SELECT LAST_INSERT_ID() FROM t":    "",
		"SELECT 1; SELECT LAST_INSERT_ID()": "",
	} {
		if got, ok := MySQLLastInsertIDQuery([]byte(q)); got != want || ok != (want != "") {
			t.Errorf("%q: %q %v, want %q", q, got, ok, want)
		}
	}
}
