package pgtest

import "context"

// Restart stops the server and starts it again on the same port with the same data, for tests
// of what clients see across an origin restart.
func (s *Server) Restart(ctx context.Context) error { return s.proc.Restart(ctx) }
