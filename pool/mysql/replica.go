package mysqlpool

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Replica reads. A pool whose origin has read replicas (a PlanetScale branch with
// replica_reads: a second, replica credential) is given a second Pool of connections to them
// (SetReplica). Before each command the edge says whether it is a read it would cache (outside
// a transaction, reading with immutable functions only) and whether it writes (Route). Such a
// read, from a session that holds no connection and has not written for ReadYourWrites, leases
// a connection of the replica pool; everything else, and every read of a session that wrote a
// moment ago, goes to the primary. The replica connection goes back to its own pool after the
// read, like any lease; a connection the session still holds on a replica (for a question about
// the read's warnings) is handed back before a command that is not such a read. A replica that
// can't be reached sends the read to the primary.
//
// The session's state (database, settings, prepared statements) is made on a replica
// connection as on any other (sync, prepared); the replica pool shares the primary's statement
// counts, so a statement no client uses is closed on replica connections too.

// Replica is what SetReplica gives a pool: its replicas' pool and how long a session that wrote
// reads from the primary.
type Replica struct {
	// Pool holds the connections to the replicas: a Pool of its own (New), with the replica
	// credential, whose sessions are never opened; the primary's sessions lease from it.
	Pool *Pool
	// ReadYourWrites is how long after a write (the end of its statement, or of the
	// transaction's commit) the session's reads go to the primary; 0 means 2s.
	ReadYourWrites time.Duration
	// Metrics, when set, counts where reads went.
	Metrics *ReplicaMetrics
}

// DefaultReadYourWrites is Replica.ReadYourWrites when not set.
const DefaultReadYourWrites = 2 * time.Second

// ReplicaMetrics counts the reads the edge would cache, by where the pool sent them.
type ReplicaMetrics struct {
	reads *prometheus.CounterVec
}

// NewReplicaMetrics creates the metrics and registers them with reg (nil: not registered).
func NewReplicaMetrics(reg prometheus.Registerer) *ReplicaMetrics {
	m := &ReplicaMetrics{reads: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "slipstream_replica_reads_total",
		Help: "Reads outside a transaction that could go to a replica, by database and where the pool sent them: replica, or primary (the session wrote within read_your_writes, held a primary connection, or the replica could not be reached).",
	}, []string{"db", "to"})}
	if reg != nil {
		reg.MustRegister(m.reads)
	}
	return m
}

func (m *ReplicaMetrics) count(db, to string) {
	if m != nil {
		m.reads.WithLabelValues(db, to).Inc()
	}
}

// replicaOf is the Replica of a pool, once set.
type replicaOf struct{ atomic.Pointer[Replica] }

// SetReplica gives p its replicas: reads the edge routes (Session.Route) lease connections of
// r.Pool from then on. The replica pool shares p's statement counts: give it a pool that has
// served nothing yet. It may be called while p serves (a reload): each session's next lease
// sees it. Close does not close r.Pool.
func (p *Pool) SetReplica(r Replica) {
	if r.ReadYourWrites <= 0 {
		r.ReadYourWrites = DefaultReadYourWrites
	}
	r.Pool.stmts = p.stmts
	p.replica.Store(&r)
}

// ClearReplica takes the replica pool rp away from p, if it is p's: every lease from then on is
// the primary's, and a session holding a connection of rp hands it back before its next
// command (leaveReplica). The caller closes rp.
func (p *Pool) ClearReplica(rp *Pool) {
	if r := p.replica.Load(); r != nil && r.Pool == rp {
		p.replica.CompareAndSwap(r, nil)
	}
}

// routing is a session's part in replica reads, guarded by the session's mutex.
type routing struct {
	read    bool      // the command sent next is a read the edge would cache
	write   bool      // the command sent next writes, or ends a transaction that wrote
	wroteAt time.Time // when the session's last write ended
}

// Route says what the command sent next is: a read the edge would cache (outside a
// transaction), or one that writes, or belongs to a transaction that wrote. Commands sent
// without a Route before them go to the primary. It does nothing for a pool without replicas.
func (s *Session) Route(read, write bool) {
	if s.p.replica.Load() == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.route.read, s.route.write = read && !write, write
	if write {
		s.route.wroteAt = time.Now()
	}
}

// routeEnded notes the end of the command in flight: a write's end starts the session's
// read-your-writes time again. s.mu is held.
func (s *Session) routeEnded() {
	if s.route.write {
		s.route.wroteAt = time.Now()
	}
}

// lessor is the pool the session's next lease comes from: the replica pool for a routed read
// of a session that has not written for ReadYourWrites, else the primary. It consumes the
// read's routing and counts where the read went.
func (s *Session) lessor() (*Pool, *Replica) {
	r := s.p.replica.Load()
	if r == nil {
		return s.p, nil
	}
	s.mu.Lock()
	read := s.route.read
	s.route.read = false
	recent := !s.route.wroteAt.IsZero() && time.Since(s.route.wroteAt) < r.ReadYourWrites
	s.mu.Unlock()
	if !read {
		return s.p, nil
	}
	if recent {
		r.Metrics.count(s.p.cfg.Name, "primary")
		return s.p, nil
	}
	return r.Pool, r
}

// acquireRouted leases a connection for the session's next command from lessor's pool; a read
// whose replica can't be reached goes to the primary.
func (s *Session) acquireRouted(ctx context.Context) (*originConn, error) {
	from, r := s.lessor()
	c, err := from.acquire(ctx, s.key)
	if r == nil {
		return c, err
	}
	if err == nil {
		r.Metrics.count(s.p.cfg.Name, "replica")
		return c, nil
	}
	if ctx.Err() != nil {
		return nil, err
	}
	// Closed too: a reload took the replicas away (ClearReplica) while the read was routed.
	s.log.Warn("a replica read goes to the primary: no replica connection", "err", safeError(err))
	r.Metrics.count(s.p.cfg.Name, "primary")
	return s.p.acquire(ctx, s.key)
}

// leaveReplica hands back a replica connection the session still holds (kept for a question
// about its read's warnings) when the command sent next is not a routed read: nothing but
// such reads may reach a replica. A routed read never opens a transaction or pins the session;
// a connection with an open cursor stays, for the cursor's fetches.
func (s *Session) leaveReplica() {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.conn
	if c == nil || c.home == nil || c.home == s.p || s.cursors > 0 || s.pinned != "" || s.xa {
		return
	}
	if r := s.p.replica.Load(); s.route.read && r != nil && r.Pool == c.home {
		return // a routed read, on a replica the pool still reads from (not one a reload took away)
	}
	if c.status&statusInTrans != 0 || c.status&statusAutocommit == 0 {
		return
	}
	s.holdNext, s.holdTx = false, false
	if s.holdTimer != nil {
		s.holdTimer.Stop()
	}
	if len(s.vars) > 0 {
		if s.readBack(c); s.pinned != "" {
			return
		}
	}
	if c.dirty && !c.broken {
		c.sendReset()
	}
	s.conn = nil
	s.p.release(c)
}
