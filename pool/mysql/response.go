package mysqlpool

import "encoding/binary"

// respKind is the shape of the response a command draws.
type respKind uint8

const (
	rQuery     respKind = iota // OK, ERR, LOCAL INFILE request or text result sets (COM_QUERY)
	rExecute                   // OK, ERR or a binary result set, which may open a cursor
	rPrepare                   // COM_STMT_PREPARE_OK with parameter and column definitions, or ERR
	rFetch                     // binary rows of a cursor, then EOF, or ERR
	rFieldList                 // column definitions, then EOF, or ERR (COM_FIELD_LIST)
	rOne                       // one packet: OK, ERR, EOF or a string (COM_PING, COM_STATISTICS...)
)

// parseState says what the next packet of a response is.
type parseState uint8

const (
	sFirst      parseState = iota // first packet of a result: OK, ERR, 0xfb or a column count
	sColumns                      // n column definitions to go
	sColumnEOF                    // the EOF after column definitions (without CLIENT_DEPRECATE_EOF)
	sRows                         // rows until EOF/OK or ERR
	sParams                       // prepare: n parameter definitions to go
	sParamEOF                     // prepare: the EOF after them
	sPrepCols                     // prepare: n column definitions to go
	sPrepColEOF                   // prepare: the EOF after them
	sDone
)

// parser follows one response packet by packet, just enough to know where it ends and what it
// says about the session: status flags, cursors, prepared statement ids. It never decodes rows.
// A malformed response makes feed fail; the caller drops the connection.
type parser struct {
	kind         respKind
	deprecateEOF bool

	st        parseState
	n         uint64 // definitions left in this block
	cols      uint64 // prepare: column definitions after the parameters
	cont      bool   // the last packet was maxPayload long: this one continues it
	afterDefs bool   // sRows: no row seen yet since the column definitions

	status    uint16 // flags of the last OK or EOF
	warnings  uint16 // warning count of the last OK or EOF
	hasStatus bool
	results   int  // results that ended well (OK or a complete result set)
	failed    bool // ended with ERR
	cursor    bool // an execute opened a cursor
	lastRow   bool // a fetch exhausted the cursor
	infile    bool // the origin asks for the client's LOAD DATA LOCAL file

	insertID uint64 // the last id an OK packet reported generated, if any

	prepID     uint32 // COM_STMT_PREPARE_OK: the origin's statement id
	prepParams uint16
	prepCols   uint16
}

func (p *parser) reset(kind respKind, deprecateEOF bool) {
	*p = parser{kind: kind, deprecateEOF: deprecateEOF}
	switch kind {
	case rFetch, rFieldList:
		p.st = sRows
	}
}

func (p *parser) done() bool { return p.st == sDone }

// isEnd reports whether pl ends a run of rows or definitions: an EOF packet, or an OK packet
// with the EOF header under CLIENT_DEPRECATE_EOF.
func (p *parser) isEnd(pl []byte, physLen int) bool {
	if len(pl) == 0 || pl[0] != hdrEOF {
		return false
	}
	if p.deprecateEOF {
		return physLen < maxPayload
	}
	return len(pl) < 9
}

// feed takes the payload of the next physical packet. pl may be rewritten in place by the
// caller afterwards; feed keeps nothing of it.
func (p *parser) feed(pl []byte) error {
	cont := p.cont
	p.cont = len(pl) == maxPayload
	if cont {
		// The rest of a long row or long string: nothing to look at.
		if p.st != sRows && p.kind != rOne {
			return errMalformed
		}
		return nil
	}
	if p.cont && p.st != sRows {
		// Only rows (and one-packet answers) may be this long.
		if p.kind != rOne {
			return errMalformed
		}
	}
	if len(pl) == 0 {
		return errMalformed
	}
	switch p.st {
	case sFirst:
		return p.first(pl)
	case sColumns, sParams, sPrepCols:
		p.definition(pl)
		return nil
	case sColumnEOF, sParamEOF, sPrepColEOF:
		return p.definitionsEnd(pl)
	case sRows:
		return p.row(pl)
	}
	return errMalformed
}

// definition takes one column or parameter definition (or COM_FIELD_LIST's ERR).
func (p *parser) definition(pl []byte) {
	if pl[0] == hdrERR && p.st == sColumns && p.kind == rFieldList {
		p.failed, p.st = true, sDone
		return
	}
	p.n--
	if p.n > 0 {
		return
	}
	switch {
	case p.st == sColumns && p.deprecateEOF:
		p.st, p.afterDefs = sRows, true
	case p.st == sColumns:
		p.st = sColumnEOF
	case p.deprecateEOF:
		p.afterParams()
	case p.st == sParams:
		p.st = sParamEOF
	default:
		p.st = sPrepColEOF
	}
}

// definitionsEnd takes the EOF after a block of definitions (without CLIENT_DEPRECATE_EOF).
func (p *parser) definitionsEnd(pl []byte) error {
	if !p.isEnd(pl, len(pl)) {
		if pl[0] == hdrERR {
			p.failed, p.st = true, sDone
			return nil
		}
		return errMalformed
	}
	st, ok := okStatus(pl)
	if !ok {
		return errMalformed
	}
	switch p.st {
	case sParamEOF:
		p.afterParams()
		return nil
	case sPrepColEOF:
		p.st = sDone
		return nil
	}
	p.setStatus(st, pl)
	if p.kind == rExecute && st&statusCursor != 0 {
		p.cursor, p.st = true, sDone
		p.results++
		return nil
	}
	p.st, p.afterDefs = sRows, true
	return nil
}

// row takes a row (or COM_FIELD_LIST's column definition), or the packet that ends the rows.
func (p *parser) row(pl []byte) error {
	after := p.afterDefs
	p.afterDefs = false
	if pl[0] == hdrERR && !p.cont {
		p.failed, p.st = true, sDone
		return nil
	}
	if !p.isEnd(pl, len(pl)) {
		return nil // a row, or a column definition for COM_FIELD_LIST
	}
	st, ok := okStatus(pl)
	if !ok {
		return errMalformed
	}
	p.setStatus(st, pl)
	p.results++
	switch {
	case p.kind == rExecute && after && st&statusCursor != 0:
		p.cursor, p.st = true, sDone
	case p.kind == rFetch:
		p.lastRow = st&statusLastRowSent != 0
		p.st = sDone
	case st&statusMoreResults != 0 && p.kind != rFieldList:
		p.st = sFirst
	default:
		p.st = sDone
	}
	return nil
}

// first handles the first packet of a result.
func (p *parser) first(pl []byte) error {
	switch p.kind {
	case rOne:
		if pl[0] == hdrOK || pl[0] == hdrEOF {
			if st, ok := okStatus(pl); ok {
				p.setStatus(st, pl)
			}
		}
		p.failed = pl[0] == hdrERR
		if !p.cont {
			p.st = sDone
		}
		return nil
	case rPrepare:
		switch {
		case pl[0] == hdrERR:
			p.failed, p.st = true, sDone
			return nil
		case pl[0] != hdrOK || len(pl) < 12:
			return errMalformed
		}
		p.prepID = binary.LittleEndian.Uint32(pl[1:])
		p.prepCols = binary.LittleEndian.Uint16(pl[5:])
		p.prepParams = binary.LittleEndian.Uint16(pl[7:])
		p.cols = uint64(p.prepCols)
		if p.prepParams > 0 {
			p.st, p.n = sParams, uint64(p.prepParams)
			return nil
		}
		p.afterParams()
		return nil
	}
	switch pl[0] {
	case hdrOK:
		st, ok := okStatus(pl)
		if !ok {
			return errMalformed
		}
		p.setStatus(st, pl)
		p.results++
		if _, n := lenenc(pl[1:]); n > 0 {
			if id, _ := lenenc(pl[1+n:]); id != 0 {
				p.insertID = id
			}
		}
		if st&statusMoreResults == 0 {
			p.st = sDone
		}
		return nil
	case hdrERR:
		p.failed, p.st = true, sDone
		return nil
	case hdrInfile:
		if p.kind != rQuery {
			return errMalformed
		}
		// The client sends its file next; the origin then answers with OK or ERR.
		p.infile = true
		return nil
	}
	n, size := lenenc(pl)
	if size == 0 || size != len(pl) || n == 0 || n > 4096 {
		return errMalformed
	}
	p.st, p.n = sColumns, n
	return nil
}

// afterParams moves a prepare response on to its column definitions, or ends it.
func (p *parser) afterParams() {
	if p.cols > 0 {
		p.st, p.n, p.cols = sPrepCols, p.cols, 0
		return
	}
	p.st = sDone
}

func (p *parser) setStatus(st uint16, pl []byte) {
	p.status, p.hasStatus, p.warnings = st, true, okWarnings(pl)
}
