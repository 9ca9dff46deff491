package mysqlpool

import (
	"github.com/go-mysql-org/go-mysql/mysql"
)

// queryRows runs a text query on c, a connection no session holds, and returns its rows as
// text (NULL as ""), for the pool's own reads (the related relations, a role's verifier). An
// ERR from the origin comes back as *mysql.MyError and leaves c usable; any other error
// breaks c. One result set only; no packet of 16 MB or more.
func (c *originConn) queryRows(sql string) ([][]string, error) {
	if err := c.write(appendCommand(nil, mysql.COM_QUERY, []byte(sql))); err != nil {
		return nil, err
	}
	p, err := c.readPayload()
	if err != nil {
		return nil, err
	}
	switch p[0] {
	case hdrERR:
		return nil, parseMyError(p)
	case hdrOK:
		return nil, nil
	}
	ncol, n := lenenc(p)
	if n == 0 || ncol == 0 || ncol > 4096 {
		c.broken = true
		return nil, errMalformed
	}
	for range ncol { // the column definitions
		if _, err := c.readPayload(); err != nil {
			return nil, err
		}
	}
	if !c.deprecateEOF {
		if _, err := c.readPayload(); err != nil {
			return nil, err
		}
	}
	return c.readRows(int(ncol))
}

// readRows reads the text rows of a result set of ncol columns up to its end.
func (c *originConn) readRows(ncol int) ([][]string, error) {
	var rows [][]string
	for {
		p, err := c.readPayload()
		if err != nil {
			return nil, err
		}
		switch {
		case p[0] == hdrERR:
			return nil, parseMyError(p)
		case p[0] == hdrEOF && len(p) < maxPayload:
			if st, ok := okStatus(p); ok {
				c.status = st
			}
			return rows, nil
		}
		row := make([]string, ncol)
		for i := range row {
			v, n := lenencString(p)
			if n == 0 {
				c.broken = true
				return nil, errMalformed
			}
			row[i], p = string(v), p[n:]
		}
		rows = append(rows, row)
	}
}

// readPayload reads one packet's payload; an empty one is malformed.
func (c *originConn) readPayload() ([]byte, error) {
	b, at, err := c.readPacket(nil)
	if err == nil && len(b) == at {
		err = errMalformed
	}
	if err != nil {
		c.broken = true
		return nil, err
	}
	return b[at:], nil
}
