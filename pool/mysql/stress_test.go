package mysqlpool

import (
	"context"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/go-mysql-org/go-mysql/mysql"
)

func TestManySessionsOnFewConnectionsKeepTheirOwnState(t *testing.T) {
	p := newPool(t, Config{MaxConns: 4})
	setup := open(t, p, clientCaps)
	setup.exec("CREATE TABLE IF NOT EXISTS t_many (s int, i int)")
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := open(t, p, clientCaps|uint32(i%2)*mysql.CLIENT_DEPRECATE_EOF)
			me := strconv.Itoa(i)
			c.exec("SET @me = " + me)
			if i%3 == 0 {
				c.exec("SET time_zone = '+0" + strconv.Itoa(i%10) + ":00'")
			}
			if i%5 == 0 {
				c.exec("SELECT @computed := " + me + " * 2")
			}
			for j := range 15 {
				if got := c.value("SELECT @me"); got != me {
					t.Errorf("session %s sees @me = %s", me, got)
					return
				}
				if i%3 == 0 {
					if got := c.value("SELECT @@time_zone"); got != "+0"+strconv.Itoa(i%10)+":00" {
						t.Errorf("session %s sees time_zone %s", me, got)
					}
				} else if got := c.value("SELECT @@time_zone"); got != "SYSTEM" {
					t.Errorf("session %s sees another's time_zone %s", me, got)
				}
				if i%5 == 0 {
					if got := c.value("SELECT @computed"); got != strconv.Itoa(2*i) {
						t.Errorf("session %s sees @computed = %s", me, got)
					}
				} else if got := c.value("SELECT @computed"); got != "NULL" {
					t.Errorf("session %s sees another's @computed = %s", me, got)
				}
				if j%4 == 0 {
					c.exec("BEGIN")
					c.exec("INSERT INTO t_many VALUES (" + me + ", " + strconv.Itoa(j) + ")")
					if got := c.value("SELECT COUNT(*) FROM t_many WHERE s = " + me); got == "0" {
						t.Errorf("session %s does not see its own insert", me)
					}
					c.exec("COMMIT")
				}
			}
		}()
	}
	wg.Wait()
	if s := p.Stats(); s.InUse+s.Idle > 4 {
		t.Errorf("stats %+v, want at most 4 connections", s)
	}
}

func TestSendAndRecvOnTwoGoroutines(t *testing.T) {
	p := newPool(t, Config{MaxConns: 1})
	c := open(t, p, clientCaps|mysql.CLIENT_DEPRECATE_EOF)
	ctx := context.Background()
	got := make(chan string, 1)
	go func() {
		var buf []byte
		for {
			var err error
			buf, err = c.s.Recv(ctx, buf)
			if err != nil {
				got <- err.Error()
				return
			}
			if !c.s.Pending() && strings.Contains(string(buf), "done") {
				got <- "ok"
				return
			}
		}
	}()
	for i := range 20 {
		if err := c.s.Send(ctx, cmdPacket(mysql.COM_QUERY, []byte("SELECT "+strconv.Itoa(i)))); err != nil {
			t.Fatal(err)
		}
		for c.s.Pending() {
			// The receiving goroutine drains; wait for it the way an edge's pump would.
			runtimeGosched()
		}
	}
	if err := c.s.Send(ctx, cmdPacket(mysql.COM_QUERY, []byte("SELECT 'done'"))); err != nil {
		t.Fatal(err)
	}
	if r := <-got; r != "ok" {
		t.Fatal(r)
	}
}

func TestOriginURLTLSPreferredFallsBackWhenTheOriginHasNone(t *testing.T) {
	p := newPool(t, Config{Origin: srv.URL("app", "app-secret", "app") + "?tls=preferred"})
	c := open(t, p, clientCaps)
	if got := c.value("SELECT 1"); got != "1" {
		t.Errorf("got %q", got)
	}
	p = newPool(t, Config{Origin: srv.URL("app", "app-secret", "app") + "?tls=true"})
	c = open(t, p, clientCaps)
	pk := c.mustRT(cmdPacket(mysql.COM_QUERY, []byte("SELECT 1")))
	if pk[0][0] != hdrERR {
		t.Errorf("tls=true against an origin without TLS: %q, want an ERR", pk)
	}
	if _, err := New(Config{Origin: "mysql://u:secret@h/db?tls=maybe"}); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("bad tls value: %v", err)
	}
}

func runtimeGosched() { runtime.Gosched() }
