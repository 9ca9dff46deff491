package link

import "context"

// Edges are the other edges of a session's pool end: those that a write of the session must
// reach before its answer reaches the client, since they may hold cached reads of what it
// wrote. The transport that carries a session across the network gives them to the session's
// origin in the context it opens the session with (WithEdges); an in-process transport has
// none, since its edge is the only one.
type Edges interface {
	// Invalidate has every other edge drop its cached reads of tables of db (all of db's when
	// all is set), and returns once each has acknowledged or has been cut off for not doing so
	// in time.
	Invalidate(db string, tables []string, all bool)
}

type edgesKey struct{}

// WithEdges returns ctx carrying the other edges of the session about to be opened with it.
func WithEdges(ctx context.Context, e Edges) context.Context {
	return context.WithValue(ctx, edgesKey{}, e)
}

// EdgesOf returns the other edges ctx carries, or nil.
func EdgesOf(ctx context.Context) Edges {
	e, _ := ctx.Value(edgesKey{}).(Edges)
	return e
}
