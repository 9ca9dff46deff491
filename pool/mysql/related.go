package mysqlpool

import (
	"errors"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/slipstream-proxy/slipstream/classify"
	"github.com/slipstream-proxy/slipstream/link"
	"github.com/slipstream-proxy/slipstream/pool"
)

// relatedSQL lists, in the connection's database, the relations whose rows change together, as
// package pool's relatedSQL does for PostgreSQL: each view with its definition ('v': the tables
// it reads are parsed out of it), each table with a table whose foreign keys cascade from it
// ('f': ON DELETE/UPDATE CASCADE, SET NULL, SET DEFAULT), and each table with a trigger ('t',
// paired with "*": a trigger may write any table).
const relatedSQL = `select TABLE_NAME, VIEW_DEFINITION, 'v' from information_schema.VIEWS
  where TABLE_SCHEMA = database()
union all
select REFERENCED_TABLE_NAME, TABLE_NAME, 'f' from information_schema.REFERENTIAL_CONSTRAINTS
  where CONSTRAINT_SCHEMA = database() and (DELETE_RULE in ('CASCADE', 'SET NULL', 'SET DEFAULT')
    or UPDATE_RULE in ('CASCADE', 'SET NULL', 'SET DEFAULT'))
union all
select EVENT_OBJECT_TABLE, '*', 't' from information_schema.TRIGGERS
  where TRIGGER_SCHEMA = database()`

// readRelated reads relatedSQL on c, a connection just opened. An origin that refuses it
// (D1's and KV's MySQL face, a user who may not read information_schema) gives the zero
// Related; the error is c's own failure, after which c is unusable.
func readRelated(c *originConn) (link.Related, error) {
	rows, err := c.queryRows(relatedSQL)
	if me := (*mysql.MyError)(nil); errors.As(err, &me) {
		return link.Related{}, nil
	}
	if err != nil {
		return link.Related{}, err
	}
	var pairs [][2]string
	for _, row := range rows {
		if len(row) < 3 {
			continue // not information_schema's answer (an origin that answers anything)
		}
		a, b, kind := row[0], row[1], row[2]
		a = strings.ToLower(a) // as classify.ClassifyMySQL names tables
		if kind != "v" {
			pairs = append(pairs, [2]string{a, strings.ToLower(b)})
			continue
		}
		// A view over a view pairs with it, and so joins the group of its tables.
		for _, t := range classify.ClassifyMySQL(b).Reads {
			if j := strings.LastIndexByte(t, '.'); j >= 0 {
				t = t[j+1:]
			}
			pairs = append(pairs, [2]string{a, t})
		}
	}
	return pool.GroupRelated(pairs), nil
}
