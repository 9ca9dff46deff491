package mysqlserver

import (
	"encoding/binary"
	"math"
	"strconv"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// Column types a backend gives its result columns.
const (
	TypeLongLong  = mysql.MYSQL_TYPE_LONGLONG   // INTEGER
	TypeDouble    = mysql.MYSQL_TYPE_DOUBLE     // REAL
	TypeVarString = mysql.MYSQL_TYPE_VAR_STRING // TEXT, utf8mb4
	TypeBlob      = mysql.MYSQL_TYPE_BLOB       // BLOB, binary
)

const (
	collationUTF8MB4 = 45 // utf8mb4_general_ci
	collationBinary  = 63
)

// Column is one result column.
type Column struct {
	Name  string
	Table string // "" for an expression
	Type  byte   // one of the Type constants
}

// definition encodes the column definition packet (Protocol::ColumnDefinition41).
func (c Column) definition(schema string) []byte {
	f := mysql.Field{
		Schema:   []byte(schema),
		Table:    []byte(c.Table),
		OrgTable: []byte(c.Table),
		Name:     []byte(c.Name),
		OrgName:  []byte(c.Name),
		Type:     c.Type,
		Charset:  collationBinary,
	}
	if c.Table == "" {
		f.Schema = nil
	}
	switch c.Type {
	case TypeLongLong:
		f.ColumnLength, f.Flag = 20, mysql.BINARY_FLAG|mysql.NUM_FLAG
	case TypeDouble:
		f.ColumnLength, f.Flag, f.Decimal = 22, mysql.BINARY_FLAG|mysql.NUM_FLAG, 31 // NOT_FIXED_DEC
	case TypeVarString:
		f.ColumnLength, f.Charset = 4*65535, collationUTF8MB4
	case TypeBlob:
		f.ColumnLength, f.Flag = 1<<32-1, mysql.BINARY_FLAG|mysql.BLOB_FLAG
	}
	return f.Dump()
}

// Results writes a statement's result set to the client as the statement runs, in the text
// protocol (COM_QUERY) or the binary one (COM_STMT_EXECUTE): Columns once, then per row
// BeginRow, one value call per column, EndRow. A statement without a result set calls OK
// instead. Rows go out as they are made (the connection buffers and flushes them in chunks), so
// a large result streams and a slow client slows the statement, not memory.
type Results struct {
	s      *session
	binary bool

	cols    []Column
	started bool // Columns was sent
	ok      mysql.Result
	row     []byte
	col     int      // the column the next value is for
	num     [32]byte // a number's text, on its way into row
}

// Binary reports whether rows go out in the binary protocol.
func (w *Results) Binary() bool { return w.binary }

// OK reports a statement that returns no rows: the rows it changed and the id it inserted.
func (w *Results) OK(affected, lastInsertID uint64) {
	w.ok.AffectedRows, w.ok.InsertId = affected, lastInsertID
}

// Columns sends the result set's column definitions.
func (w *Results) Columns(cols []Column) error {
	w.cols, w.started = cols, true
	data := append(make([]byte, 4, 64), mysql.PutLengthEncodedInt(uint64(len(cols)))...)
	if err := w.s.c.WritePacket(data); err != nil {
		return err
	}
	for _, c := range cols {
		if err := w.s.c.WritePacket(append(make([]byte, 4, 64), c.definition(w.s.cfg.Database)...)); err != nil {
			return err
		}
	}
	return w.s.writeEOF()
}

// BeginRow starts a row.
func (w *Results) BeginRow() {
	w.row = append(w.row[:0], 0, 0, 0, 0)
	w.col = 0
	if w.binary {
		w.row = append(w.row, 0)
		for range (len(w.cols) + 7 + 2) / 8 {
			w.row = append(w.row, 0) // the NULL bitmap, offset by 2 bits
		}
	}
}

// Null appends a NULL.
func (w *Results) Null() {
	if w.binary {
		bit := w.col + 2
		w.row[5+bit/8] |= 1 << (bit % 8)
	} else {
		w.row = append(w.row, 0xfb)
	}
	w.col++
}

// Int appends an integer; in the binary protocol it is converted to the column's type.
func (w *Results) Int(v int64) {
	if !w.binary {
		w.row = appendLenEncString(w.row, strconv.AppendInt(w.scratch(), v, 10))
		w.col++
		return
	}
	switch w.cols[w.col].Type {
	case TypeDouble:
		w.Float(float64(v))
		return
	case TypeVarString, TypeBlob:
		w.row = appendLenEncString(w.row, strconv.AppendInt(w.scratch(), v, 10))
	case TypeLongLong:
		w.row = binary.LittleEndian.AppendUint64(w.row, uint64(v))
	}
	w.col++
}

// Float appends a floating-point number; in the binary protocol it is converted to the
// column's type.
func (w *Results) Float(v float64) {
	if !w.binary {
		w.row = appendLenEncString(w.row, strconv.AppendFloat(w.scratch(), v, 'g', -1, 64))
		w.col++
		return
	}
	switch w.cols[w.col].Type {
	case TypeLongLong:
		w.Int(int64(v))
		return
	case TypeVarString, TypeBlob:
		w.row = appendLenEncString(w.row, strconv.AppendFloat(w.scratch(), v, 'g', -1, 64))
	case TypeDouble:
		w.row = binary.LittleEndian.AppendUint64(w.row, math.Float64bits(v))
	}
	w.col++
}

// Bytes appends text or bytes. The backend converts values of a numeric column with Int or
// Float; Bytes on one reads the text as a number, as a cast would.
func (w *Results) Bytes(b []byte) {
	if w.binary {
		switch w.cols[w.col].Type {
		case TypeLongLong:
			n, _ := strconv.ParseInt(string(b), 10, 64)
			w.Int(n)
			return
		case TypeDouble:
			f, _ := strconv.ParseFloat(string(b), 64)
			w.Float(f)
			return
		}
	}
	w.row = appendLenEncString(w.row, b)
	w.col++
}

// EndRow sends the row.
func (w *Results) EndRow() error {
	for w.col < len(w.cols) {
		w.Null() // a backend that gave fewer values than columns: the rest are NULL
	}
	return w.s.c.WritePacket(w.row)
}

func (w *Results) scratch() []byte { return w.num[:0] }

func appendLenEncString(dst, b []byte) []byte {
	dst = appendLenEncInt(dst, uint64(len(b)))
	return append(dst, b...)
}

func appendLenEncInt(dst []byte, n uint64) []byte {
	switch {
	case n < 251:
		return append(dst, byte(n))
	case n < 1<<16:
		return append(dst, 0xfc, byte(n), byte(n>>8))
	case n < 1<<24:
		return append(dst, 0xfd, byte(n), byte(n>>8), byte(n>>16))
	}
	return binary.LittleEndian.AppendUint64(append(dst, 0xfe), n)
}
