package mysqlpool

import "encoding/binary"

// translate rewrites the packet just read (its payload at dst[at:]) from the connection's
// end-of-block format to the client's, when only one of them took CLIENT_DEPRECATE_EOF: EOF
// packets after column definitions are dropped or added, final EOF and OK packets converted,
// and the sequence ids after renumbered. before and afterDefs are the parser's state before the
// packet. It returns dst and the packet's payload offset (len(dst) when it was dropped).
func (s *Session) translate(c *originConn, dst []byte, at int, before parseState, afterDefs bool) ([]byte, int) {
	p := &s.parse
	pl := dst[at:]
	switch {
	case !c.deprecateEOF && (before == sColumnEOF || before == sParamEOF || before == sPrepColEOF):
		// An EOF after definitions, which the client does not expect, unless it says a cursor
		// opened: then it is the OK that ends the answer.
		if p.cursor && p.done() {
			dst = eofToOK(dst, at)
			break
		}
		s.shift--
		return dst[:at-4], len(dst[:at-4])
	case c.deprecateEOF && before == sRows && afterDefs && p.kind != rFieldList && p.kind != rFetch:
		// The first packet after column definitions: the client expects an EOF first, or, for
		// a cursor, instead of the OK that says so.
		if p.cursor && p.done() {
			dst = okToEOF(dst, at)
			break
		}
		pk := append([]byte(nil), dst[at-4:]...)
		dst = appendEOF(dst[:at-4], pk[3]+s.shift, s.eofStatus(c))
		s.shift++
		at = len(dst) + 4
		dst = append(dst, pk...)
		if !p.failed && (p.done() || p.st == sFirst) {
			dst = okToEOF(dst, at) // the end of an empty result
		}
	case before == sRows && p.st != sRows && !p.failed && len(pl) > 0 && pl[0] == hdrEOF:
		// The end of rows (or of COM_FIELD_LIST's definitions).
		if c.deprecateEOF {
			dst = okToEOF(dst, at)
		} else {
			dst = eofToOK(dst, at)
		}
	}
	dst[at-1] += s.shift
	if c.deprecateEOF && p.kind == rPrepare && (before == sParams && p.st != sParams || before == sPrepCols && p.done()) {
		// The end of a prepare answer's parameter or column definitions.
		dst = appendEOF(dst, dst[at-1]+1, s.eofStatus(c))
		s.shift++
	}
	return dst, at
}

// eofStatus is the status an EOF after definitions carries: the session's as it stands, with
// SERVER_MORE_RESULTS_EXISTS while more statements of the query are to come.
func (s *Session) eofStatus(c *originConn) uint16 {
	st := c.status
	if s.parse.hasStatus {
		st = s.parse.status
	}
	st &^= 0x0010 | 0x0020 | statusMoreResults | statusCursor | statusLastRowSent // per statement
	if s.parse.kind == rQuery && s.parse.results+1 < len(s.effects) {
		st |= statusMoreResults
	}
	return st
}

// appendEOF appends an EOF packet with sequence id seq.
func appendEOF(dst []byte, seq byte, status uint16) []byte {
	dst, h := beginPacket(dst, seq)
	dst = append(dst, hdrEOF, 0, 0)
	dst = binary.LittleEndian.AppendUint16(dst, status)
	return finishPacket(dst, h)
}

// okToEOF rewrites the OK packet (0xfe header) at dst[at:], the last packet in dst, as an EOF.
func okToEOF(dst []byte, at int) []byte {
	st, _ := okStatus(dst[at:])
	var warnings uint16
	if pl := dst[at:]; len(pl) >= 2 {
		_, n1 := lenenc(pl[1:])
		_, n2 := lenenc(pl[1+n1:])
		if o := 1 + n1 + n2 + 2; n1 > 0 && n2 > 0 && len(pl) >= o+2 {
			warnings = binary.LittleEndian.Uint16(pl[o:])
		}
	}
	dst = append(dst[:at], hdrEOF)
	dst = binary.LittleEndian.AppendUint16(dst, warnings)
	dst = binary.LittleEndian.AppendUint16(dst, st)
	return finishPacket(dst, at-4)
}

// eofToOK rewrites the EOF packet at dst[at:], the last packet in dst, as an OK with the 0xfe
// header.
func eofToOK(dst []byte, at int) []byte {
	st, _ := okStatus(dst[at:])
	var warnings uint16
	if pl := dst[at:]; len(pl) >= 3 {
		warnings = binary.LittleEndian.Uint16(pl[1:])
	}
	dst = append(dst[:at], hdrEOF, 0, 0)
	dst = binary.LittleEndian.AppendUint16(dst, st)
	dst = binary.LittleEndian.AppendUint16(dst, warnings)
	return finishPacket(dst, at-4)
}
