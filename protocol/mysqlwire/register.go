package mysqlwire

import "encoding/binary"

// ComRegisterStmt is no MySQL command: an edge sends it to a new pool side, among the commands
// it answered itself (link.Stream.Skip), for each statement its client prepared on the pool
// side the session moved from, so that the client's statement ids go on meaning the same
// statements. The pool side prepares them on the origin when they are next executed.
const ComRegisterStmt byte = 0xf0

// MaxRegisteredSQL bounds the text of a statement ComRegisterStmt carries: it fits one packet.
const MaxRegisteredSQL = 1 << 20

// AppendStmtRegistration appends a ComRegisterStmt packet: statement id, parameter count, the
// parameter types the pool side last saw (2 bytes each, empty if none), the database the
// statement was prepared in ("" the session's first) and its text.
//
//	cmd(1) id(4) params(2) len(types)(2) types len(db)(2) db sql
func AppendStmtRegistration(dst []byte, id uint32, params int, types []byte, db, sql string) []byte {
	dst, h := BeginPacket(dst, 0)
	dst = append(dst, ComRegisterStmt)
	dst = binary.LittleEndian.AppendUint32(dst, id)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(params))
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(types)))
	dst = append(dst, types...)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(db)))
	dst = append(append(dst, db...), sql...)
	return FinishPacket(dst, h)
}

// ParseStmtRegistration decodes the payload of a ComRegisterStmt packet after its command byte.
func ParseStmtRegistration(b []byte) (id uint32, params int, types []byte, db, sql string, ok bool) {
	if len(b) < 8 {
		return 0, 0, nil, "", "", false
	}
	id, params = binary.LittleEndian.Uint32(b), int(binary.LittleEndian.Uint16(b[4:]))
	n := int(binary.LittleEndian.Uint16(b[6:]))
	b = b[8:]
	if len(b) < n+2 || n != 0 && n != 2*params {
		return 0, 0, nil, "", "", false
	}
	types, b = b[:n:n], b[n:]
	m := int(binary.LittleEndian.Uint16(b))
	b = b[2:]
	if len(b) < m {
		return 0, 0, nil, "", "", false
	}
	return id, params, types, string(b[:m]), string(b[m:]), true
}
