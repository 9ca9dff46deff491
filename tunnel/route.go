package tunnel

import "fmt"

// Replica routing across the tunnel. The edge tells a MySQL session's pool end, before a
// command, whether it is a read the edge would cache that missed its cache, and whether it
// writes or belongs to a transaction that wrote (link.ReplicaRouter, as proxy's replicaRouter
// says it to an in-process pool). The clientStream keeps what it was told and sends it as a
// route frame in front of the command's batch; the pool end hands it to the session's
// link.ReplicaRouter (a pool with replicas: pool/mysql's Session.Route) before the batch. A
// batch without a route frame in front is neither: the pool end routes it to the primary, as
// it does anything the edge did not call a read. The pool applies read_your_writes itself,
// from the writes it is told of: the window is the pool's setting, where the replicas are.

// frameRoute, edge→pool before a batch of a MySQL session: one flags byte, routeRead and
// routeWrite. Sent only when a flag is set: most commands of a cached database are neither
// a missed read nor a write.
const frameRoute byte = 'N'

// Flags of a route frame.
const (
	routeRead  byte = 1 // a read the edge would cache, outside a transaction
	routeWrite byte = 2 // it writes, or ends a transaction that wrote
)

// routeFlags encodes a Route call.
func routeFlags(read, write bool) byte {
	var f byte
	if read {
		f |= routeRead
	}
	if write {
		f |= routeWrite
	}
	return f
}

// parseRoute decodes a route frame's payload.
func parseRoute(b []byte) (byte, error) {
	if len(b) != 1 || b[0]&^(routeRead|routeWrite) != 0 {
		return 0, fmt.Errorf("%w: route flags %x", errBadFrame, b)
	}
	return b[0], nil
}

// Route implements link.ReplicaRouter at the edge: what the command sent next is, carried to
// the pool end in a route frame in front of it (Send).
func (s *clientStream) Route(read, write bool) {
	s.wmu.Lock()
	s.route = routeFlags(read, write)
	s.wmu.Unlock()
}

// sendRoute writes the route frame of the batch about to be sent, if Route set a flag. s.wmu
// is held.
func (s *clientStream) sendRoute() error {
	if s.route == 0 {
		return nil
	}
	f := s.route
	s.route = 0
	return s.write(frameRoute, []byte{f})
}

// route hands a unit's routing to the session's pool side before its first batch: flags from
// the route frame in front of it, or none. A pool end without replicas has no ReplicaRouter.
func (ss *serverSession) route(flags byte) {
	if r := ss.ps.Caps().Replica; r != nil {
		r.Route(flags&routeRead != 0, flags&routeWrite != 0)
	}
}
