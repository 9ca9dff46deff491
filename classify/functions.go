package classify

import "strings"

// Volatility is a function's provolatile in pg_proc. The zero value is Volatile, so that a
// volatility nobody set never makes a result cacheable.
type Volatility uint8

const (
	Volatile  Volatility = iota // 'v': may return something else on every call, or have side effects
	Stable                      // 's': the same within one statement (now, current_setting, to_char)
	Immutable                   // 'i': the same for the same arguments, forever: only these are cache-safe
)

// String returns the word CREATE FUNCTION uses for v.
func (v Volatility) String() string {
	switch v {
	case Immutable:
		return "immutable"
	case Stable:
		return "stable"
	}
	return "volatile"
}

// BuiltinVolatility knows the volatility of common PostgreSQL built-in functions without asking
// a catalog, by name as Classify reports it (a "pg_catalog." prefix is allowed). It reports
// false for any other name, which Cacheable counts as volatile.
//
// The values are PostgreSQL 15's pg_proc.provolatile. Where overloads of one name differ, the
// most volatile wins, since a name alone doesn't pick the overload: length is stable because
// length(bytea, name) converts encodings, though length(text) is immutable.
func BuiltinVolatility(name string) (Volatility, bool) {
	v, ok := builtinVolatility[strings.TrimPrefix(name, "pg_catalog.")]
	return v, ok
}

var builtinVolatility = map[string]Volatility{
	// The clock. The SQL keywords are SQLValueFunctions, which PostgreSQL treats as stable.
	"now": Stable, "current_timestamp": Stable, "current_date": Stable, "current_time": Stable,
	"localtime": Stable, "localtimestamp": Stable, "statement_timestamp": Stable,
	"transaction_timestamp": Stable, "clock_timestamp": Volatile, "age": Stable,
	"date_trunc": Stable, "date_part": Stable, "extract": Stable, "to_char": Stable,
	"to_timestamp": Stable, "timezone": Stable,

	// Who and where: stable, and part of the cache key through the session anyway.
	"current_user": Stable, "current_role": Stable, "user": Stable, "session_user": Stable,
	"current_catalog": Stable, "current_schema": Stable, "current_database": Stable,
	"current_setting": Stable, "version": Stable,

	// Side effects or randomness. uuid_generate_v4 is uuid-ossp's, not core; system and
	// bernoulli are the TABLESAMPLE methods.
	"random": Volatile, "nextval": Volatile, "currval": Volatile, "setval": Volatile,
	"gen_random_uuid": Volatile, "uuid_generate_v4": Volatile, "pg_sleep": Volatile,
	"pg_notify": Volatile, "set_config": Volatile, "pg_advisory_lock": Volatile,
	"pg_advisory_xact_lock": Volatile, "pg_try_advisory_lock": Volatile,
	"system": Volatile, "bernoulli": Volatile,

	// Text. concat and format call output functions of any type: stable.
	"lower": Immutable, "upper": Immutable, "length": Stable, "char_length": Immutable,
	"concat": Stable, "format": Stable, "md5": Immutable, "substring": Immutable,
	"substr": Immutable, "btrim": Immutable, "ltrim": Immutable, "rtrim": Immutable,
	"replace": Immutable, "position": Immutable, "regexp_replace": Immutable,
	// The parser calls these for LIKE ... ESCAPE and SIMILAR TO, qualified with pg_catalog.
	"like_escape": Immutable, "similar_to_escape": Immutable,

	// Numbers, arrays, set-returning functions. generate_series has a timestamptz overload.
	"abs": Immutable, "round": Immutable, "floor": Immutable, "ceil": Immutable,
	"generate_series": Stable, "array_length": Immutable, "unnest": Immutable,

	// Aggregates and window functions.
	"count": Immutable, "sum": Immutable, "avg": Immutable, "min": Immutable, "max": Immutable,
	"array_agg": Immutable, "string_agg": Immutable, "row_number": Immutable, "rank": Immutable,
	"dense_rank": Immutable, "lag": Immutable,

	// JSON: building json from arbitrary types calls their output functions, so it is stable.
	"json_agg": Stable, "jsonb_agg": Stable, "json_build_object": Stable,
	"jsonb_build_object": Stable, "json_build_array": Stable, "jsonb_build_array": Stable,
	"to_json": Stable, "to_jsonb": Stable, "row_to_json": Stable, "json_object_agg": Stable,
	"jsonb_set": Immutable, "jsonb_array_elements": Immutable,
}

// funcCall records the name of the FuncCall object fc. Calls the parser made up for SQL
// syntax (EXTRACT, TRIM, SUBSTRING ... FROM, AT TIME ZONE) come qualified with pg_catalog,
// which the query didn't write: that prefix goes.
func (w *walker) funcCall(fc int32) {
	name := w.dottedName(w.t.member(fc, "funcname"))
	if name == "" {
		return
	}
	if w.t.text(fc, "funcformat") == "COERCE_SQL_SYNTAX" {
		name = strings.TrimPrefix(name, "pg_catalog.")
	}
	w.funcs = append(w.funcs, name)
	w.sequenceCall(fc, name)
}

// sqlValueFunctionNames names the SQL keywords that read the clock or the session, by op.
var sqlValueFunctionNames = map[string]string{
	"SVFOP_CURRENT_DATE":        "current_date",
	"SVFOP_CURRENT_TIME":        "current_time",
	"SVFOP_CURRENT_TIME_N":      "current_time",
	"SVFOP_CURRENT_TIMESTAMP":   "current_timestamp",
	"SVFOP_CURRENT_TIMESTAMP_N": "current_timestamp",
	"SVFOP_LOCALTIME":           "localtime",
	"SVFOP_LOCALTIME_N":         "localtime",
	"SVFOP_LOCALTIMESTAMP":      "localtimestamp",
	"SVFOP_LOCALTIMESTAMP_N":    "localtimestamp",
	"SVFOP_CURRENT_ROLE":        "current_role",
	"SVFOP_CURRENT_USER":        "current_user",
	"SVFOP_USER":                "user",
	"SVFOP_SESSION_USER":        "session_user",
	"SVFOP_CURRENT_CATALOG":     "current_catalog",
	"SVFOP_CURRENT_SCHEMA":      "current_schema",
}

// sqlValueFunctionName names op; an op this table doesn't know gets a name no oracle knows,
// which counts as volatile.
func sqlValueFunctionName(op string) string {
	if name, ok := sqlValueFunctionNames[op]; ok {
		return name
	}
	return "sqlvaluefunction"
}

// constant records a string literal that PostgreSQL's date/time input reads as the clock:
// 'now', 'today', 'tomorrow', 'yesterday', alone or in a longer input ('today 12:00'). Whether
// written as '...'::timestamptz, timestamp '...', or compared with a timestamp column, its value
// is fixed when the statement runs, like now().
func (w *walker) constant(body int32) {
	if s := w.t.text(w.t.member(body, "sval"), "sval"); s != "" && clockLiteral(s) {
		w.funcs = append(w.funcs, "now")
	}
}

// clockLiteral reports whether s holds one of the clock words as a word of its own. Longer
// strings are not date/time input.
func clockLiteral(s string) bool {
	if len(s) > 64 {
		return false
	}
	for start := 0; start < len(s); {
		end := start
		for end < len(s) && isLetter(s[end]) {
			end++
		}
		if end == start {
			start++
			continue
		}
		switch word := s[start:end]; {
		case strings.EqualFold(word, "now"), strings.EqualFold(word, "today"),
			strings.EqualFold(word, "tomorrow"), strings.EqualFold(word, "yesterday"):
			return true
		}
		start = end
	}
	return false
}

func isLetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

// tableSample records TABLESAMPLE's method (system, bernoulli) as a function call: it is one
// in pg_proc, volatile, and the rows it returns change on every run.
func (w *walker) tableSample(body int32) {
	if name := w.dottedName(w.t.member(body, "method")); name != "" {
		w.funcs = append(w.funcs, name)
	}
}

// sqlJSONFunction names the SQL/JSON syntax nodes after the functions they stand for, so that
// the volatility oracle can judge them. Those without a pg_proc function of their own get their
// keyword, which no oracle knows: they count as volatile. op is the node's op member, if any.
func sqlJSONFunction(typ, op string) string {
	switch typ {
	case "JsonObjectConstructor":
		return "json_build_object"
	case "JsonArrayConstructor", "JsonArrayQueryConstructor":
		return "json_build_array"
	case "JsonObjectAgg":
		return "json_object_agg"
	case "JsonArrayAgg":
		return "json_agg"
	case "JsonSerializeExpr":
		return "json_serialize"
	case "JsonScalarExpr":
		return "json_scalar"
	case "JsonParseExpr":
		return "json"
	case "JsonFuncExpr":
		switch op {
		case "JSON_EXISTS_OP":
			return "json_exists"
		case "JSON_VALUE_OP":
			return "json_value"
		}
		return "json_query"
	case "JsonTable":
		return "json_table"
	}
	return ""
}
