package insight

import (
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	tidbparser "github.com/pingcap/tidb/pkg/parser"
)

// Protocols of Unit.Protocol.
const (
	Postgres = "postgres"
	MySQL    = "mysql"
)

// maxQueryText bounds the normalized text kept per shape.
const maxQueryText = 2000

// fingerprint returns the shape of query and its normalized text (constants replaced by
// placeholders). A query the parser refuses is its own shape, named by a hash of its text
// with its leading words as the text.
func fingerprint(protocol, query string) (fp, text string) {
	if protocol == MySQL {
		norm, digest := tidbparser.NormalizeDigest(query)
		return digest.String()[:16], clip(norm)
	}
	fp, err := pg_query.Fingerprint(query)
	if err != nil {
		return "unparsed-" + hashText(query), clip(query)
	}
	norm, err := pg_query.Normalize(query)
	if err != nil {
		norm = query
	}
	return fp, clip(strings.Join(strings.Fields(norm), " "))
}

func clip(s string) string {
	if len(s) <= maxQueryText {
		return s
	}
	cut := maxQueryText
	for cut > 0 && s[cut]&0xC0 == 0x80 { // not in the middle of a UTF-8 sequence
		cut--
	}
	return s[:cut] + "…"
}

// hashText is FNV-1a of s, in hex: a stable name for a query that does not parse.
func hashText(s string) string {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	const hexdigits = "0123456789abcdef"
	var b [16]byte
	for i := 15; i >= 0; i-- {
		b[i] = hexdigits[h&15]
		h >>= 4
	}
	return string(b[:])
}
