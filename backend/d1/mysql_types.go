package d1

import (
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/slipstream-proxy/slipstream/backend/mysqlserver"

	"github.com/slipstream-proxy/slipstream/backend/pgserver"
)

// mysqlType is the MySQL column type for a column this package types as oid (types.go):
// INTEGER (and BOOLEAN, which MySQL keeps as an integer) LONGLONG, REAL DOUBLE, TEXT
// VAR_STRING in utf8mb4, BLOB BLOB in the binary character set. A column of no fixed type
// whose first value is NULL is text: any value a later row holds reads as text.
func mysqlType(oid uint32) byte {
	switch oid {
	case pgserver.OIDInt8, pgserver.OIDBool:
		return mysqlserver.TypeLongLong
	case pgserver.OIDFloat8:
		return mysqlserver.TypeDouble
	case pgserver.OIDBytea:
		return mysqlserver.TypeBlob
	}
	return mysqlserver.TypeVarString
}

// appendMySQLValue appends column i of the current row. In the text protocol a value is
// written as its storage class reads; in the binary one it is converted to the column's type
// the way SQLite converts (CAST semantics), since the type fixes the encoding.
func appendMySQLValue(w *mysqlserver.Results, st *stmt, i int, typ byte) {
	class := st.columnType(i)
	if class == sqlNull {
		w.Null()
		return
	}
	if w.Binary() {
		switch typ {
		case mysqlserver.TypeLongLong:
			w.Int(st.columnInt64(i))
		case mysqlserver.TypeDouble:
			w.Float(st.columnDouble(i))
		case mysqlserver.TypeBlob:
			w.Bytes(st.columnBlob(i))
		default:
			w.Bytes(st.columnText(i))
		}
		return
	}
	switch class {
	case sqlInteger:
		w.Int(st.columnInt64(i))
	case sqlFloat:
		w.Float(st.columnDouble(i))
	case sqlBlob:
		w.Bytes(st.columnBlob(i))
	default:
		w.Bytes(st.columnText(i))
	}
}

// bindMySQL binds a COM_STMT_EXECUTE argument as go-mysql decodes it. Bytes go in as a BLOB
// where the parameter meets a BLOB column or isn't UTF-8, and as text (converted by the
// inferred type, then by SQLite's column affinity) otherwise.
func bindMySQL(st *stmt, i int, oid uint32, v any) error {
	switch v := v.(type) {
	case nil:
		return st.bindNull(i)
	case int8:
		return st.bindInt64(i, int64(v))
	case int16:
		return st.bindInt64(i, int64(v))
	case int32:
		return st.bindInt64(i, int64(v))
	case int64:
		return st.bindInt64(i, v)
	case uint8:
		return st.bindInt64(i, int64(v))
	case uint16:
		return st.bindInt64(i, int64(v))
	case uint32:
		return st.bindInt64(i, int64(v))
	case uint64:
		if v > math.MaxInt64 {
			return st.bindText(i, strconv.AppendUint(nil, v, 10)) // beyond INTEGER: SQLite makes it REAL
		}
		return st.bindInt64(i, int64(v))
	case float32:
		return st.bindDouble(i, float64(v))
	case float64:
		return st.bindDouble(i, v)
	case mysql.TypedBytes:
		switch v.Type {
		case mysql.MYSQL_TYPE_TINY_BLOB, mysql.MYSQL_TYPE_MEDIUM_BLOB, mysql.MYSQL_TYPE_LONG_BLOB, mysql.MYSQL_TYPE_BLOB:
			return st.bindBlob(i, v.Bytes)
		}
		return bindMySQLBytes(st, i, oid, v.Bytes)
	case []byte:
		return bindMySQLBytes(st, i, oid, v)
	}
	return notSupported("a parameter of this type")
}

func bindMySQLBytes(st *stmt, i int, oid uint32, b []byte) error {
	if oid == pgserver.OIDBytea || !utf8.Valid(b) {
		return st.bindBlob(i, b)
	}
	return bindParam(st, i, oid, false, b)
}
