package proxy

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"sync"
	"time"

	"github.com/slipstream-proxy/slipstream/protocol/pgwire"
)

// cancelKeys maps the BackendKeyData the edge handed out to live sessions. The keys are the
// edge's own, so a CancelRequest can only reach the session it was given to, and the session
// forwards it to whichever origin connection runs its query at that moment.
type cancelKeys struct {
	mu sync.Mutex
	m  map[pgwire.CancelKey]*session
}

// add registers sess under a fresh random key and returns the key.
func (k *cancelKeys) add(sess *session) pgwire.CancelKey {
	var b [8]byte
	k.mu.Lock()
	defer k.mu.Unlock()
	for {
		rand.Read(b[:])
		key := pgwire.CancelKey{PID: binary.BigEndian.Uint32(b[:4]) &^ (1 << 31), Secret: binary.BigEndian.Uint32(b[4:])}
		if _, taken := k.m[key]; !taken && key.PID != 0 {
			k.m[key] = sess
			return key
		}
	}
}

// put registers sess under a key it had in another process (a handed-over session); it
// reports false when the key is taken here.
func (k *cancelKeys) put(key pgwire.CancelKey, sess *session) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, taken := k.m[key]; taken {
		return false
	}
	k.m[key] = sess
	return true
}

// removeIf removes key if it is sess's.
func (k *cancelKeys) removeIf(key pgwire.CancelKey, sess *session) {
	k.mu.Lock()
	if k.m[key] == sess {
		delete(k.m, key)
	}
	k.mu.Unlock()
}

func (k *cancelKeys) get(key pgwire.CancelKey) *session {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.m[key]
}

// cancel handles a CancelRequest. As in PostgreSQL, nothing is answered either way.
func (s *Server) cancel(ctx context.Context, key pgwire.CancelKey) {
	sess := s.keys.get(key)
	if sess == nil {
		s.m.cancels.WithLabelValues("unknown_key").Inc()
		return
	}
	ctx, done := context.WithTimeout(ctx, 5*time.Second)
	defer done()
	if err := sess.current().Cancel(ctx); err != nil {
		s.m.cancels.WithLabelValues("failed").Inc()
		sess.log.Warn("cancel request failed", "err", err)
		return
	}
	s.m.cancels.WithLabelValues("sent").Inc()
}
