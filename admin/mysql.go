package admin

import (
	"context"
	"io"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/slipstream-proxy/slipstream/protocol/mysqlwire"
)

// mysqlFace writes the console's answers as MySQL packets: result sets in the text protocol
// (every column a string or an integer), OK and ERR packets.
type mysqlFace struct {
	caps  uint32 // negotiated with the client
	ext   uint32 // MariaDB's extended capabilities negotiated with the client
	seq   byte   // the next packet's sequence id in the current command
	start byte   // the first answer packet's sequence id in the current command
}

// MySQL column types of the console's columns.
const (
	myVarString = mysql.MYSQL_TYPE_VAR_STRING
	myLongLong  = mysql.MYSQL_TYPE_LONGLONG
	myNewDec    = mysql.MYSQL_TYPE_NEWDECIMAL
	utf8General = 33
)

func (m *mysqlFace) packet(dst []byte, payload func([]byte) []byte) []byte {
	dst, h := mysqlwire.BeginPacket(dst, m.seq)
	m.seq++
	return mysqlwire.FinishPacket(payload(dst), h)
}

func appendLenencInt(dst []byte, n uint64) []byte {
	switch {
	case n < 251:
		return append(dst, byte(n))
	case n < 1<<16:
		return append(dst, 0xfc, byte(n), byte(n>>8))
	case n < 1<<24:
		return append(dst, 0xfd, byte(n), byte(n>>8), byte(n>>16))
	}
	return append(dst, 0xfe, byte(n), byte(n>>8), byte(n>>16), byte(n>>24), byte(n>>32), byte(n>>40), byte(n>>48), byte(n>>56))
}

func appendLenencString(dst []byte, s string) []byte {
	return append(appendLenencInt(dst, uint64(len(s))), s...)
}

// appendEnd appends what ends column definitions or rows: EOF, or with CLIENT_DEPRECATE_EOF an
// OK packet with the EOF header.
func (m *mysqlFace) appendEnd(dst []byte) []byte {
	return m.packet(dst, func(b []byte) []byte {
		b = append(b, 0xfe)
		if m.caps&mysql.CLIENT_DEPRECATE_EOF != 0 {
			b = append(b, 0, 0) // affected rows, last insert id
		}
		return append(b, byte(mysql.SERVER_STATUS_AUTOCOMMIT), 0, 0, 0) // status, warnings
	})
}

func (m *mysqlFace) appendResult(dst []byte, cs []col, rows [][]any) []byte {
	dst = m.packet(dst, func(b []byte) []byte { return appendLenencInt(b, uint64(len(cs))) })
	for _, c := range cs {
		typ, length := byte(myVarString), uint32(1024)
		switch c.oid {
		case oidInt4, oidInt8:
			typ, length = myLongLong, 20
		case oidNumeric:
			typ, length = myNewDec, 30
		}
		dst = m.packet(dst, func(b []byte) []byte {
			for _, s := range []string{"def", "", "", "", c.name, c.name} {
				b = appendLenencString(b, s)
			}
			if m.ext&mysqlwire.ExtExtendedMetadata != 0 {
				b = append(b, 0) // no extended type: an empty list
			}
			b = append(b, 0x0c, utf8General, 0, byte(length), byte(length>>8), byte(length>>16), byte(length>>24), typ, 0, 0, 0, 0, 0)
			return b
		})
	}
	if m.caps&mysql.CLIENT_DEPRECATE_EOF == 0 {
		dst = m.appendEnd(dst)
	}
	for _, r := range rows {
		dst = m.packet(dst, func(b []byte) []byte {
			for _, v := range r {
				if s, ok := text(v); ok {
					b = appendLenencString(b, s)
				} else {
					b = append(b, 0xfb)
				}
			}
			return b
		})
	}
	return m.appendEnd(dst)
}

func (m *mysqlFace) appendOK(dst []byte) []byte {
	dst = mysqlwire.AppendOK(dst, m.seq, mysql.SERVER_STATUS_AUTOCOMMIT)
	m.seq++
	return dst
}

// appendError appends an ERR packet as the command's whole answer.
func (m *mysqlFace) appendError(dst []byte, msg string) []byte {
	m.seq = m.start
	dst = mysqlwire.AppendError(dst, m.seq, mysqlwire.NewError(mysqlwire.ErUnknown, msg))
	m.seq++
	return dst
}

// ServeMySQL serves one MySQL console client, authenticated as user, after its handshake's
// OK: one command per COM_QUERY, in the same language as over PostgreSQL, until COM_QUIT.
func (c *Console) ServeMySQL(ctx context.Context, r *mysqlwire.Reader, w io.Writer, user string, caps, ext uint32) {
	face := &mysqlFace{caps: caps, ext: ext}
	sess := &consoleSession{c: c, user: user, isAdmin: c.admin(user), w: w, my: face}
	for ctx.Err() == nil {
		raw, err := r.ReadPacket()
		if err != nil {
			return
		}
		p := mysqlwire.Payload(raw)
		face.seq = mysqlwire.Seq(raw) + 1
		face.start = face.seq
		if len(p) == 0 {
			return
		}
		sess.buf = sess.buf[:0]
		switch p[0] {
		case mysql.COM_QUIT:
			return
		case mysql.COM_QUERY:
			q := string(p[1:])
			if !sess.query(ctx, strings.TrimSpace(q)) {
				return
			}
			continue
		case mysql.COM_PING, mysql.COM_INIT_DB, mysql.COM_RESET_CONNECTION:
			sess.buf = face.appendOK(sess.buf)
		default:
			sess.buf = face.appendError(sess.buf, "the admin console answers COM_QUERY only")
		}
		if _, err := w.Write(sess.buf); err != nil {
			return
		}
	}
}
