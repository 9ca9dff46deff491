package tunnel

// SentBytes returns how many bytes of answers the pool end has written to its streams.
func SentBytes(s *Server) int64 { return s.sent.Load() }

// AcceptedConns returns how many connections from pools a listening Client has accepted.
func AcceptedConns(c *Client) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.conns)
}
