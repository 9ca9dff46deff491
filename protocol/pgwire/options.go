package pgwire

import "strings"

// notSettings are the startup parameters that are not run-time settings.
var notSettings = map[string]bool{"user": true, "database": true, "replication": true, "options": true}

// StartupSettings returns the run-time settings a StartupMessage's parameters ask for, keyed by
// lower-case name, with PostgreSQL's precedence: the "-c name=value" and "--name=value" switches
// of the options parameter first, then the explicit parameters, which win over them
// (postgres.c, process_startup_options). user, database, replication, options and the
// protocol options (_pq_.*) are not settings.
func StartupSettings(params map[string]string) map[string]string {
	out := make(map[string]string)
	for k, v := range optionSwitches(params["options"]) {
		out[strings.ToLower(k)] = v
	}
	for k, v := range params {
		lk := strings.ToLower(k)
		if notSettings[lk] || strings.HasPrefix(lk, "_pq_.") {
			continue
		}
		out[lk] = v
	}
	return out
}

// optionSwitches reads "-c name=value" and "--name=value" from the options startup parameter,
// split as PostgreSQL splits it (pg_split_opts): on white space, a backslash taking the next
// character as it is.
func optionSwitches(options string) map[string]string {
	if options == "" {
		return nil
	}
	out := make(map[string]string)
	fields := splitOptions(options)
	for i := 0; i < len(fields); i++ {
		f := fields[i]
		switch {
		case f == "-c" && i+1 < len(fields):
			i++
			f = fields[i]
		case strings.HasPrefix(f, "-c"):
			f = f[2:]
		case strings.HasPrefix(f, "--"):
			f = f[2:]
		default:
			continue
		}
		if k, v, ok := strings.Cut(f, "="); ok {
			out[strings.ReplaceAll(k, "-", "_")] = v
		}
	}
	return out
}

// splitOptions splits on white space; a backslash escapes the next character.
func splitOptions(s string) []string {
	var fields []string
	var cur strings.Builder
	in := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			if in {
				fields = append(fields, cur.String())
				cur.Reset()
				in = false
			}
			continue
		case c == '\\' && i+1 < len(s):
			i++
			c = s[i]
		}
		cur.WriteByte(c)
		in = true
	}
	if in {
		fields = append(fields, cur.String())
	}
	return fields
}
