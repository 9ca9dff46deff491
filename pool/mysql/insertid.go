package mysqlpool

import (
	"bytes"
	"encoding/binary"
	"strconv"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// appendLastInsertIDBinary is appendLastInsertID in the binary protocol (COM_STMT_EXECUTE).
func appendLastInsertIDBinary(dst []byte, seq byte, name string, id uint64, status uint16, deprecateEOF, extMeta bool) []byte {
	return appendIDResult(dst, seq, name, status, deprecateEOF, extMeta, func(b []byte) []byte {
		return binary.LittleEndian.AppendUint64(append(b, 0, 0), id) // header, null bitmap, value
	})
}

// appendLastInsertID appends a text result set of one BIGINT UNSIGNED column named name and
// one row holding id, its packets numbered from seq, as the origin would send it: with
// extMeta (MariaDB's extended metadata negotiated) its column definition carries an empty
// extended type.
func appendLastInsertID(dst []byte, seq byte, name string, id uint64, status uint16, deprecateEOF, extMeta bool) []byte {
	return appendIDResult(dst, seq, name, status, deprecateEOF, extMeta, func(b []byte) []byte {
		v := strconv.FormatUint(id, 10)
		return append(appendLenenc(b, uint64(len(v))), v...)
	})
}

// appendIDResult appends a result set of one BIGINT UNSIGNED column and one row, which row
// appends.
func appendIDResult(dst []byte, seq byte, name string, status uint16, deprecateEOF, extMeta bool, row func([]byte) []byte) []byte {
	dst, at := beginPacket(dst, seq)
	dst = finishPacket(append(dst, 1), at)
	seq++

	dst, at = beginPacket(dst, seq)
	for _, s := range []string{"def", "", "", ""} { // catalog, schema, table, org_table
		dst = appendLenenc(dst, uint64(len(s)))
		dst = append(dst, s...)
	}
	dst = appendLenenc(dst, uint64(len(name)))
	dst = append(dst, name...)
	dst = append(dst, 0) // org_name
	if extMeta {
		dst = append(dst, 0) // no extended type
	}
	dst = append(dst, 0x0c) // length of the fixed fields
	dst = append(dst, 63, 0, 21, 0, 0, 0, mysql.MYSQL_TYPE_LONGLONG)
	flags := mysql.NOT_NULL_FLAG | mysql.UNSIGNED_FLAG | mysql.BINARY_FLAG
	dst = append(dst, byte(flags), byte(flags>>8), 0, 0, 0)
	dst = finishPacket(dst, at)
	seq++

	if !deprecateEOF {
		dst, at = beginPacket(dst, seq)
		dst = finishPacket(append(dst, hdrEOF, 0, 0, byte(status), byte(status>>8)), at)
		seq++
	}
	dst, at = beginPacket(dst, seq)
	dst = finishPacket(row(dst), at)
	seq++

	dst, at = beginPacket(dst, seq)
	if deprecateEOF {
		dst = append(dst, hdrEOF, 0, 0, byte(status), byte(status>>8), 0, 0)
	} else {
		dst = append(dst, hdrEOF, 0, 0, byte(status), byte(status>>8))
	}
	return finishPacket(dst, at)
}

// containsFold reports whether b holds upper, ignoring ASCII case.
func containsFold(b []byte, upper string) bool {
	u := []byte(upper)
	for i := 0; i+len(u) <= len(b); i++ {
		if bytes.EqualFold(b[i:i+len(u)], u) {
			return true
		}
	}
	return false
}
