package changes

import (
	"slices"
	"sync"
	"time"
)

// invalidation is one committed transaction's drop, or (with nothing to drop) a position the
// stream has reached, queued for the health's invalidator.
type invalidation struct {
	tables    []string
	all, drop bool // drop: tables (or all of the database) to invalidate
	at        txTimes
	reached   func() // then, the stream's position has passed it; may be nil
}

// invalidations is the queue between a stream and its Sink. The stream goes on reading while
// an invalidation is on its way (to every edge behind a tunnel, a round trip), and the
// transactions committed meanwhile go out as one invalidation next: a stream is not limited
// to one transaction per round trip. A position counts as reached (the slot confirmed, a
// probe passed) only once everything queued before it is invalidated.
type invalidations struct {
	mu      sync.Mutex
	idle    *sync.Cond // broadcast when the queue empties, or stops
	items   []invalidation
	busy    bool
	stopped bool
	wake    chan struct{}
}

func newInvalidations() *invalidations {
	q := &invalidations{wake: make(chan struct{}, 1)}
	q.idle = sync.NewCond(&q.mu)
	return q
}

func (q *invalidations) push(inv invalidation) {
	q.mu.Lock()
	q.items = append(q.items, inv)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take returns everything queued, or nil (and says the queue is idle) when nothing is.
func (q *invalidations) take() []invalidation {
	q.mu.Lock()
	defer q.mu.Unlock()
	batch := q.items
	q.items = nil
	q.busy = len(batch) > 0
	if !q.busy {
		q.idle.Broadcast()
	}
	return batch
}

// flush waits until everything queued so far is invalidated (or the queue stopped).
func (q *invalidations) flush() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for (len(q.items) > 0 || q.busy) && !q.stopped {
		q.idle.Wait()
	}
}

func (q *invalidations) stop() {
	q.mu.Lock()
	q.stopped = true
	q.idle.Broadcast()
	q.mu.Unlock()
}

// invalidator sends the queue's invalidations to the Sink, everything queued at a time as one,
// until stop.
func (h *health) invalidator() {
	defer h.wg.Done()
	for {
		select {
		case <-h.done:
			h.queue.stop()
			return
		case <-h.queue.wake:
		}
		for batch := h.queue.take(); batch != nil; batch = h.queue.take() {
			h.apply(batch)
		}
	}
}

// apply invalidates a batch at once, then records each transaction's lag and passes its
// positions, in order.
func (h *health) apply(batch []invalidation) {
	var tables []string
	all, drop := false, false
	for _, inv := range batch {
		if inv.drop {
			drop = true
			all = all || inv.all
			tables = append(tables, inv.tables...)
		}
	}
	if drop {
		if all {
			tables = nil
		} else {
			slices.Sort(tables)
			tables = slices.Compact(tables)
		}
		h.cfg.Sink.Invalidate(h.cfg.DB, tables, all)
	}
	for _, inv := range batch {
		if inv.drop {
			h.cfg.Metrics.invalidated(h.cfg.DB, inv.at, time.Now())
		}
		if inv.reached != nil {
			inv.reached()
		}
	}
}

// reached queues f, to run once everything queued before it is invalidated: the stream's
// position has passed it.
func (h *health) reached(f func()) {
	h.queue.push(invalidation{reached: f})
}
