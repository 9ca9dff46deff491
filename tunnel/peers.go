package tunnel

import "time"

// Peer is the far end of one tunnel connection, as the admin console's SHOW TUNNELS shows it.
type Peer struct {
	// Addr is its UDP address.
	Addr string
	// RTT is QUIC's smoothed round-trip time to it.
	RTT time.Duration
	// Sessions are the client sessions open over the connection (counted at the pool end).
	Sessions int
	// Up says the connection is alive.
	Up bool
}

// Peer returns the pool the client is connected to now; Up is false when there is none.
func (c *Client) Peer() Peer {
	c.mu.Lock()
	conn := c.conn
	c.mu.Unlock()
	if conn == nil {
		return Peer{}
	}
	return Peer{Addr: conn.RemoteAddr().String(), RTT: conn.ConnectionStats().SmoothedRTT, Up: conn.Context().Err() == nil}
}

// Edges returns the edges connected to the pool end now, each with its open sessions.
func (s *Server) Edges() []Peer {
	s.mu.Lock()
	conns := make([]*serverConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	out := make([]Peer, 0, len(conns))
	for _, c := range conns {
		c.mu.Lock()
		n := len(c.sessions)
		c.mu.Unlock()
		out = append(out, Peer{Addr: c.conn.RemoteAddr().String(), RTT: c.conn.ConnectionStats().SmoothedRTT, Sessions: n,
			Up: c.conn.Context().Err() == nil})
	}
	return out
}
