package pgdiff

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"
)

// firstUserOID is where PostgreSQL starts numbering user objects (FirstNormalObjectId).
const firstUserOID = 16384

// describer turns backend messages into transcript lines, leaving out only the justified
// differences of the package documentation.
type describer struct {
	schema string // the run's own schema, printed as $SCHEMA
}

func (d describer) oid(o uint32) string {
	if o >= firstUserOID {
		return "user"
	}
	return strconv.FormatUint(uint64(o), 10)
}

func (d describer) str(s string) string {
	if d.schema != "" {
		s = strings.ReplaceAll(s, d.schema, "$SCHEMA")
	}
	return strconv.Quote(s)
}

// line describes one backend message.
func (d describer) line(m pgproto3.BackendMessage) string {
	switch m := m.(type) {
	case *pgproto3.ErrorResponse:
		return "ErrorResponse " + d.fields((*pgproto3.ErrorResponse)(m))
	case *pgproto3.NoticeResponse:
		return "NoticeResponse " + d.fields((*pgproto3.ErrorResponse)(m))
	case *pgproto3.RowDescription:
		var b strings.Builder
		b.WriteString("RowDescription")
		for _, f := range m.Fields {
			table := "0"
			if f.TableOID != 0 {
				table = "t"
			}
			fmt.Fprintf(&b, " [%s table=%s col=%d type=%s size=%d mod=%d fmt=%d]", d.str(string(f.Name)),
				table, f.TableAttributeNumber, d.oid(f.DataTypeOID), f.DataTypeSize, f.TypeModifier, f.Format)
		}
		return b.String()
	case *pgproto3.ParameterDescription:
		var b strings.Builder
		b.WriteString("ParameterDescription")
		for _, o := range m.ParameterOIDs {
			b.WriteString(" " + d.oid(o))
		}
		return b.String()
	case *pgproto3.DataRow:
		var b strings.Builder
		b.WriteString("DataRow")
		for _, v := range m.Values {
			if v == nil {
				b.WriteString(" NULL")
			} else {
				b.WriteString(" " + d.str(string(v)))
			}
		}
		return b.String()
	case *pgproto3.CommandComplete:
		return "CommandComplete " + d.str(string(m.CommandTag))
	case *pgproto3.ReadyForQuery:
		return "ReadyForQuery " + string(m.TxStatus)
	case *pgproto3.ParameterStatus:
		return "ParameterStatus " + m.Name + "=" + d.str(m.Value)
	case *pgproto3.CopyInResponse:
		return fmt.Sprintf("CopyInResponse fmt=%d cols=%v", m.OverallFormat, m.ColumnFormatCodes)
	case *pgproto3.CopyOutResponse:
		return fmt.Sprintf("CopyOutResponse fmt=%d cols=%v", m.OverallFormat, m.ColumnFormatCodes)
	case *pgproto3.CopyData:
		return "CopyData " + d.str(string(m.Data))
	case *pgproto3.NotificationResponse:
		return "NotificationResponse " + d.str(m.Channel) + " " + d.str(m.Payload)
	case *pgproto3.BackendKeyData:
		return "BackendKeyData"
	}
	name := fmt.Sprintf("%T", m)
	return name[strings.LastIndexByte(name, '.')+1:]
}

// fields describes an error or notice: every field but File, Line and Routine.
func (d describer) fields(e *pgproto3.ErrorResponse) string {
	var b strings.Builder
	add := func(k, v string) {
		if v != "" {
			b.WriteString(" " + k + "=" + d.str(v))
		}
	}
	b.WriteString(e.Severity + " " + e.Code)
	add("message", userOIDs(e.Message))
	add("detail", e.Detail)
	add("hint", e.Hint)
	if e.Position != 0 {
		fmt.Fprintf(&b, " position=%d", e.Position)
	}
	if e.InternalPosition != 0 {
		fmt.Fprintf(&b, " internal_position=%d", e.InternalPosition)
	}
	add("internal_query", e.InternalQuery)
	add("where", e.Where)
	add("schema", e.SchemaName)
	add("table", e.TableName)
	add("column", e.ColumnName)
	add("type", e.DataTypeName)
	add("constraint", e.ConstraintName)
	return strings.TrimPrefix(b.String(), " ")
}

var number = regexp.MustCompile(`\b[0-9]{5,10}\b`)

// userOIDs replaces the object identifiers of user objects in an error message (cache lookup
// failed for type 16457): each run creates its own.
func userOIDs(msg string) string {
	return number.ReplaceAllStringFunc(msg, func(n string) string {
		if v, err := strconv.ParseUint(n, 10, 32); err == nil && v >= firstUserOID {
			return "<user oid>"
		}
		return n
	})
}
