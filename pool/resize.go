package pool

// SetMaxConns changes the bound on the origin connections, as a configuration reload does
// (n <= 0 means 20). Growing hands the new slots to clients waiting in line at once;
// shrinking closes idle connections above the new bound now and leased ones as they come
// back, so no client loses its connection in the middle of a transaction.
func (s *Slots[C, K]) SetMaxConns(n int) {
	if n <= 0 {
		n = 20
	}
	s.mu.Lock()
	s.cfg.MaxConns = n
	var closing []C
	for s.total > n && len(s.idle) > 0 {
		closing = append(closing, s.idle[0])
		s.idle = s.idle[1:]
		s.total--
	}
	for len(s.waiters) > 0 && s.total < n {
		s.handOverSlot()
	}
	s.mu.Unlock()
	for _, c := range closing {
		c.Close()
	}
}

// SetMaxConns changes the pool's bound on origin connections; see Slots.SetMaxConns.
func (p *Pool) SetMaxConns(n int) { p.slots.SetMaxConns(n) }

// CloseIdle closes the pool's idle connections (another role of the database needs room).
func (p *Pool) CloseIdle() { p.slots.CloseIdle() }
