package tunnel

// SentBytes returns how many bytes of answers the pool end has written to its streams.
func SentBytes(s *Server) int64 { return s.sent.Load() }
