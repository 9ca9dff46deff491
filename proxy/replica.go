package proxy

import "github.com/slipstream-proxy/slipstream/cache"

// routeReplica tells a pool end that may send reads to a replica (link.Caps.Replica) what the
// command sent next is: a read the cache would keep that missed it, and whether the session's
// command or transaction writes.
func (sess *mysqlSession) routeReplica(p *myPlan) {
	r := sess.stream.Caps().Replica
	if r == nil {
		return
	}
	mc := sess.mc
	r.Route(p.query && p.status == cache.Miss, len(mc.written) > 0 || mc.writeAll)
}
