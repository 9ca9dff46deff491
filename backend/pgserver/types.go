package pgserver

import "github.com/jackc/pgx/v5/pgproto3"

// PostgreSQL type OIDs the backends speak.
const (
	OIDUnknown     = 0 // unspecified: the client picks the type from its own value
	OIDBool        = 16
	OIDBytea       = 17
	OIDName        = 19
	OIDInt8        = 20
	OIDInt2        = 21
	OIDInt4        = 23
	OIDText        = 25
	OIDJSON        = 114
	OIDFloat4      = 700
	OIDFloat8      = 701
	OIDUnknownLit  = 705 // an untyped literal
	OIDBPChar      = 1042
	OIDVarchar     = 1043
	OIDDate        = 1082
	OIDTimestamp   = 1114
	OIDTimestamptz = 1184
	OIDUUID        = 2950
	OIDJSONB       = 3802
)

// TypeSize is pg_type.typlen of a type: its fixed size in bytes, or -1 for a variable one.
func TypeSize(oid uint32) int16 {
	switch oid {
	case OIDInt8, OIDFloat8:
		return 8
	case OIDBool:
		return 1
	}
	return -1
}

// Field describes a result column of type oid in the given format.
func Field(name string, oid uint32, format int16) pgproto3.FieldDescription {
	return pgproto3.FieldDescription{
		Name:         []byte(name),
		DataTypeOID:  oid,
		DataTypeSize: TypeSize(oid),
		TypeModifier: -1,
		Format:       format,
	}
}

// TextFields describes columns of text, as a session statement returns them (SHOW, set_config).
func TextFields(names ...string) []pgproto3.FieldDescription {
	fields := make([]pgproto3.FieldDescription, len(names))
	for i, n := range names {
		fields[i] = Field(n, OIDText, 0)
	}
	return fields
}

// FormatAt is the format code for column or parameter i: Bind gives none (all text), one (for
// all) or one each.
func FormatAt(formats []int16, i int) int16 {
	switch len(formats) {
	case 0:
		return 0
	case 1:
		return formats[0]
	}
	return formats[i]
}
