package config

import (
	"regexp"
	"slices"
	"strings"
	"time"
)

// slotName is what PostgreSQL takes as a replication slot's name.
var slotName = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)

// Invalidation modes of Database.Invalidation.
const (
	InvalidationStream = "stream" // from the origin's change stream, and by max_age when it can't give one
	InvalidationTTL    = "ttl"    // by max_age only
)

// Stream is a database's change stream ([database.stream]), read by the pool when
// invalidation is "stream".
type Stream struct {
	Slot        string   `toml:"slot"`        // PostgreSQL: the replication slot, created if missing; empty: "slipstream_" + the database's name
	Publication string   `toml:"publication"` // PostgreSQL: the publication streamed, which must be FOR ALL TABLES (the operator makes it); empty: "slipstream"
	ServerID    uint32   `toml:"server_id"`   // MySQL: the replica server id the stream registers with; 0: one chosen at random at start
	MaxLag      Duration `toml:"max_lag"`     // a stream this far behind turns caching of the database off until it catches up; 0: 5s
}

// maxStreamAge is how long an answer may be served when a change stream invalidates it.
const maxStreamAge = 24 * time.Hour

// Streamed reports whether d's cached reads are invalidated from the origin's change stream:
// invalidation "stream", or empty for an origin server (kinds postgres and mysql). Embedded
// databases (d1, kv) have no stream to read: every write to them goes through Slipstream.
func (d Database) Streamed() bool {
	switch d.Invalidation {
	case InvalidationStream:
		return d.Kind == defaultKind || d.Kind == KindMySQL
	case "":
		// PlanetScale's databases (Vitess, PlanetScale Postgres) give no change stream to a
		// client with minted credentials: TTL without a warning.
		return d.Origin != "" && !strings.HasPrefix(d.Origin, "planetscale://") && (d.Kind == defaultKind || d.Kind == KindMySQL)
	}
	return false
}

// validateStream checks the invalidation settings; add records a problem.
func (d Database) validateStream(add func(string, ...any)) {
	// Embedded databases (d1, kv) have no stream to read: every write goes through Slipstream.
	if !slices.Contains([]string{"", InvalidationStream, InvalidationTTL}, d.Invalidation) {
		add("invalidation %q is not supported (supported: stream, ttl)", d.Invalidation)
	}
	limit := time.Hour
	if d.Streamed() {
		limit = maxStreamAge
	}
	if d.Caching.MaxAge.Duration > limit {
		add("caching.max_age is %s: at most %s (24h with invalidation = \"stream\")", d.Caching.MaxAge, limit)
	}
	if d.Stream.Slot != "" && !slotName.MatchString(d.Stream.Slot) {
		add("stream.slot %q is not a replication slot name: lower-case letters, digits and underscores, at most 63", d.Stream.Slot)
	}
	if d.Stream.MaxLag.Duration < 0 {
		add("stream.max_lag is %s: must not be negative", d.Stream.MaxLag)
	}
}
