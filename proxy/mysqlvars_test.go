package proxy

import (
	"testing"

	"github.com/slipstream-proxy/slipstream/classify"
)

// Which statements setting session variables a session follows (keys, failover) rather than
// becoming uncached: none whose values another run of the same text could see differently.
func TestFollowableVars(t *testing.T) {
	for _, c := range []struct {
		sql  string
		want bool
	}{
		{"SET time_zone = '+01:00'", true},
		{"SET @@SESSION.sql_mode = CONCAT(REPLACE(@@sql_mode, 'STRICT_TRANS_TABLES', ''), ',NO_AUTO_VALUE_ON_ZERO')", true},
		{"SET time_zone = (SELECT tz FROM settings LIMIT 1)", false},
		{"SET @@session.rand_seed1 = RAND()", false},
		{"SET time_zone = 'UTC'; SET sql_mode = ''", false},
	} {
		if got := followableVars(classify.ClassifyMySQL(c.sql)); got != c.want {
			t.Errorf("%s: followable %v, want %v", c.sql, got, c.want)
		}
	}
}
