package mysqlpool

import (
	"context"
	"encoding/binary"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"
	"github.com/slipstream-proxy/slipstream/internal/mytest"
)

var srv *mytest.Server

func TestMain(m *testing.M) { os.Exit(mytest.Main(m, &srv)) }

// clientCaps are what go-sql-driver/mysql negotiates, give or take.
const clientCaps = mysql.CLIENT_PROTOCOL_41 | mysql.CLIENT_SECURE_CONNECTION | mysql.CLIENT_LONG_PASSWORD |
	mysql.CLIENT_TRANSACTIONS | mysql.CLIENT_MULTI_RESULTS | mysql.CLIENT_PS_MULTI_RESULTS |
	mysql.CLIENT_PLUGIN_AUTH | mysql.CLIENT_MULTI_STATEMENTS

func newPool(t testing.TB, cfg Config) *Pool {
	t.Helper()
	cfg.Name = "app"
	if cfg.Origin == "" {
		cfg.Origin = srv.URL(mytest.AppUser, mytest.AppPassword, mytest.AppDB)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// client drives a Session the way the edge does, with raw packets.
type testClient struct {
	t testing.TB
	s *Session
}

func open(t testing.TB, p *Pool, caps uint32) *testClient {
	t.Helper()
	s := p.NewSession(context.Background(), map[string]string{
		"user": mytest.AppUser, "database": "", // as the edge opens sessions: in the origin's database
		"capabilities": strconv.FormatUint(uint64(caps), 10), "collation": "45",
	})
	t.Cleanup(func() { s.Close() })
	return &testClient{t: t, s: s}
}

func packet(seq byte, payload []byte) []byte {
	b := []byte{byte(len(payload)), byte(len(payload) >> 8), byte(len(payload) >> 16), seq}
	return append(b, payload...)
}

func cmdPacket(code byte, body []byte) []byte { return packet(0, append([]byte{code}, body...)) }

// roundTrip sends frames and returns the response's packet payloads.
func (c *testClient) roundTrip(frames []byte) ([][]byte, error) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.s.Send(ctx, frames); err != nil {
		return nil, err
	}
	var buf []byte
	for c.s.Pending() {
		var err error
		if buf, err = c.s.Recv(ctx, buf); err != nil {
			return nil, err
		}
	}
	return split(c.t, buf), nil
}

func split(t testing.TB, b []byte) [][]byte {
	var out [][]byte
	var want byte
	for len(b) > 0 {
		n := int(b[0]) | int(b[1])<<8 | int(b[2])<<16
		if len(out) == 0 {
			want = b[3] // 1, or more after a command of several packets
		}
		if b[3] != want {
			t.Errorf("packet %d has sequence id %d, want %d", len(out), b[3], want)
		}
		want = b[3] + 1
		out = append(out, b[4:4+n])
		b = b[4+n:]
	}
	return out
}

func (c *testClient) mustRT(frames []byte) [][]byte {
	c.t.Helper()
	pk, err := c.roundTrip(frames)
	if err != nil {
		c.t.Fatal(err)
	}
	return pk
}

func (c *testClient) exec(sql string) [][]byte {
	c.t.Helper()
	pk := c.mustRT(cmdPacket(mysql.COM_QUERY, []byte(sql)))
	if len(pk) > 0 && pk[0][0] == hdrERR {
		c.t.Fatalf("%s: %s", sql, errText(pk[0]))
	}
	return pk
}

func errText(p []byte) string {
	if len(p) < 9 || p[0] != hdrERR {
		return "(not an error)"
	}
	return strconv.Itoa(int(binary.LittleEndian.Uint16(p[1:]))) + " " + string(p[9:])
}

// rows returns the text rows of a one-result-set response.
func (c *testClient) rows(sql string) [][]string {
	c.t.Helper()
	return textRows(c.t, c.exec(sql), c.s.deprecateEOF)
}

func textRows(t testing.TB, pk [][]byte, deprecateEOF bool) [][]string {
	t.Helper()
	if len(pk) == 0 || pk[0][0] == hdrOK || pk[0][0] == hdrERR {
		t.Fatalf("want a result set, got %q", pk)
	}
	n, _ := lenenc(pk[0])
	i := 1 + int(n)
	if !deprecateEOF {
		i++
	}
	var out [][]string
	for ; i < len(pk) && pk[i][0] != hdrEOF; i++ {
		var row []string
		b := pk[i]
		for len(b) > 0 {
			v, m := lenencString(b)
			if v == nil && m == 1 {
				row = append(row, "NULL")
			} else {
				row = append(row, string(v))
			}
			b = b[m:]
		}
		out = append(out, row)
	}
	return out
}

func (c *testClient) value(sql string) string {
	c.t.Helper()
	r := c.rows(sql)
	if len(r) != 1 || len(r[0]) != 1 {
		c.t.Fatalf("%s: got %q, want one value", sql, r)
	}
	return r[0][0]
}

// prepare returns the statement id the session handed out.
func (c *testClient) prepare(sql string) uint32 {
	c.t.Helper()
	pk := c.mustRT(cmdPacket(mysql.COM_STMT_PREPARE, []byte(sql)))
	if pk[0][0] != hdrOK {
		c.t.Fatalf("prepare %s: %s", sql, errText(pk[0]))
	}
	return binary.LittleEndian.Uint32(pk[0][1:])
}

// execute runs statement id with string parameters (sent typed, new-params-bound when bind).
func executePacket(id uint32, cursor byte, bind bool, params ...string) []byte {
	b := binary.LittleEndian.AppendUint32(nil, id)
	b = append(b, cursor, 1, 0, 0, 0)
	if len(params) > 0 {
		b = append(b, make([]byte, (len(params)+7)/8)...)
		if bind {
			b = append(b, 1)
			for range params {
				b = append(b, mysql.MYSQL_TYPE_VAR_STRING, 0)
			}
		} else {
			b = append(b, 0)
		}
		for _, p := range params {
			b = appendLenenc(b, uint64(len(p)))
			b = append(b, p...)
		}
	}
	return cmdPacket(mysql.COM_STMT_EXECUTE, b)
}
