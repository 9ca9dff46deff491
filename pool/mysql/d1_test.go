package mysqlpool

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-mysql-org/go-mysql/mysql"

	"github.com/slipstream-proxy/slipstream/backend/d1"
	"github.com/slipstream-proxy/slipstream/link"
)

// The embedded D1 database speaks MySQL over an in-memory pipe (Config.Dial).
func TestAnEmbeddedD1OriginThroughDial(t *testing.T) {
	db, err := d1.Open(filepath.Join(t.TempDir(), "main.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for _, caps := range []uint32{clientCaps, clientCaps | mysql.CLIENT_DEPRECATE_EOF} {
		p := newPool(t, Config{Origin: "mysql://slipstream@d1/main", Dial: db.DialMySQL, MaxConns: 1,
			QueueTimeout: 200 * time.Millisecond})
		a, b := open(t, p, caps), open(t, p, caps)
		a.exec("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v INTEGER)")
		a.exec("DELETE FROM kv")
		id := a.prepare("INSERT INTO kv VALUES (?, ?)")
		if pk := a.mustRT(executePacket(id, 0, true, "a", "1")); pk[0][0] != hdrOK {
			t.Fatalf("insert: %s", errText(pk[0]))
		}
		a.exec("BEGIN")
		a.exec("INSERT INTO kv VALUES ('b', 2)")
		if _, err := b.roundTrip(cmdPacket(mysql.COM_QUERY, []byte("SELECT 1"))); !errors.Is(err, link.ErrQueueTimeout) {
			t.Errorf("b during a's transaction: %v, want ErrQueueTimeout", err)
		}
		a.exec("ROLLBACK")
		if got := b.value("SELECT COUNT(*) FROM kv"); got != "1" {
			t.Errorf("b counts %s rows, want 1", got)
		}
		a.exec("SET @x = 5")
		if got := b.value("SELECT @x"); got != "NULL" {
			t.Errorf("b sees a's @x = %s", got)
		}
		if got := a.value("SELECT @x"); got != "5" {
			t.Errorf("a's @x = %s", got)
		}
	}
}
