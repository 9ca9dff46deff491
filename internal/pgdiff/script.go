package pgdiff

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/jackc/pgx/v5/pgproto3"
)

// Script is one protocol situation: the startup parameters of a connection and the frontend
// messages sent on it, in order.
//
// The text format has one step per line; blank lines and lines starting with # are ignored.
// Words are separated by spaces; a word holding spaces (or an empty name) is a Go string
// literal, "..." or `...`:
//
//	startup application_name=x "options=-c work_mem=64MB"   (before any message; optional)
//	Query "SELECT 1"
//	Parse s1 "SELECT $1::int" [23 ...]   (name, query, parameter type OIDs; "" is unnamed)
//	Bind p1 s1 ["42" NULL ...] [binary]  (portal, statement, text parameters; binary results)
//	Describe S s1 | Describe P p1
//	Execute p1 [max-rows]
//	Close S s1 | Close P p1
//	Sync | Flush | Terminate | CopyDone
//	CopyData "1\n2\n" | CopyFail "reason"
//	admin "ALTER TABLE t ADD c int"      (run on another connection, in the script's schema)
type Script struct {
	Name   string
	Params map[string]string // startup parameters besides user and database
	Steps  []Step
}

// Step is one line of a script: a frontend message, or SQL run on another connection.
type Step struct {
	Line  int
	Text  string
	Msg   pgproto3.FrontendMessage // nil for an admin step
	Admin string
}

// Parse reads a script in the text format.
func Parse(name, text string) (*Script, error) {
	s := &Script{Name: name, Params: map[string]string{}}
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		words, err := splitWords(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, i+1, err)
		}
		if words[0] == "startup" {
			if len(s.Steps) > 0 {
				return nil, fmt.Errorf("%s:%d: startup after the first message", name, i+1)
			}
			for _, kv := range words[1:] {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return nil, fmt.Errorf("%s:%d: startup parameter %q is not key=value", name, i+1, kv)
				}
				s.Params[k] = v
			}
			continue
		}
		st, err := parseStep(words)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, i+1, err)
		}
		st.Line, st.Text = i+1, line
		s.Steps = append(s.Steps, st)
	}
	return s, nil
}

// parseStep makes the step of one line's words.
func parseStep(w []string) (Step, error) {
	args := w[1:]
	need := func(min, max int) error {
		if len(args) < min || (max >= 0 && len(args) > max) {
			return fmt.Errorf("%s takes %d to %d arguments, not %d", w[0], min, max, len(args))
		}
		return nil
	}
	var m pgproto3.FrontendMessage
	var err error
	switch w[0] {
	case "admin":
		if err = need(1, 1); err == nil {
			return Step{Admin: args[0]}, nil
		}
	case "Query":
		if err = need(1, 1); err == nil {
			m = &pgproto3.Query{String: args[0]}
		}
	case "Parse":
		m, err = parseParse(args)
	case "Bind":
		m, err = parseBind(args)
	case "Describe", "Close":
		if err = need(2, 2); err == nil {
			if args[0] != "S" && args[0] != "P" {
				return Step{}, fmt.Errorf("%s of %q: want S or P", w[0], args[0])
			}
			if w[0] == "Describe" {
				m = &pgproto3.Describe{ObjectType: args[0][0], Name: args[1]}
			} else {
				m = &pgproto3.Close{ObjectType: args[0][0], Name: args[1]}
			}
		}
	case "Execute":
		if err = need(1, 2); err == nil {
			e := &pgproto3.Execute{Portal: args[0]}
			if len(args) == 2 {
				n, perr := strconv.ParseUint(args[1], 10, 32)
				if perr != nil {
					return Step{}, fmt.Errorf("Execute row limit %q: %w", args[1], perr)
				}
				e.MaxRows = uint32(n)
			}
			m = e
		}
	case "Sync", "Flush", "Terminate", "CopyDone":
		if err = need(0, 0); err == nil {
			m = map[string]pgproto3.FrontendMessage{"Sync": &pgproto3.Sync{}, "Flush": &pgproto3.Flush{},
				"Terminate": &pgproto3.Terminate{}, "CopyDone": &pgproto3.CopyDone{}}[w[0]]
		}
	case "CopyData":
		if err = need(1, 1); err == nil {
			m = &pgproto3.CopyData{Data: []byte(args[0])}
		}
	case "CopyFail":
		if err = need(1, 1); err == nil {
			m = &pgproto3.CopyFail{Message: args[0]}
		}
	default:
		return Step{}, fmt.Errorf("unknown step %q", w[0])
	}
	return Step{Msg: m}, err
}

func parseParse(args []string) (pgproto3.FrontendMessage, error) {
	if len(args) < 2 {
		return nil, fmt.Errorf("Parse takes a name and a query")
	}
	p := &pgproto3.Parse{Name: args[0], Query: args[1]}
	for _, a := range args[2:] {
		oid, err := strconv.ParseUint(a, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("Parse parameter type %q: %w", a, err)
		}
		p.ParameterOIDs = append(p.ParameterOIDs, uint32(oid))
	}
	return p, nil
}

func parseBind(args []string) (pgproto3.FrontendMessage, error) {
	if len(args) < 2 {
		return nil, fmt.Errorf("Bind takes a portal and a statement")
	}
	b := &pgproto3.Bind{DestinationPortal: args[0], PreparedStatement: args[1]}
	for _, a := range args[2:] {
		switch a {
		case "NULL":
			b.Parameters = append(b.Parameters, nil)
		case "binary":
			b.ResultFormatCodes = []int16{1}
		default:
			b.Parameters = append(b.Parameters, []byte(a))
		}
	}
	return b, nil
}

// splitWords splits a line into words: bare words, or Go string literals.
func splitWords(line string) ([]string, error) {
	var words []string
	for line = strings.TrimLeftFunc(line, unicode.IsSpace); line != ""; line = strings.TrimLeftFunc(line, unicode.IsSpace) {
		if line[0] != '"' && line[0] != '`' {
			end := strings.IndexFunc(line, unicode.IsSpace)
			if end < 0 {
				end = len(line)
			}
			w := line[:end]
			if k, v, ok := strings.Cut(w, "="); ok && v != "" && (v[0] == '"' || v[0] == '`') {
				// key="quoted value"
				lit, err := strconv.QuotedPrefix(line[len(k)+1:])
				if err != nil {
					return nil, fmt.Errorf("bad quoted value in %q: %w", line, err)
				}
				u, _ := strconv.Unquote(lit)
				words = append(words, k+"="+u)
				line = line[len(k)+1+len(lit):]
				continue
			}
			words = append(words, w)
			line = line[end:]
			continue
		}
		lit, err := strconv.QuotedPrefix(line)
		if err != nil {
			return nil, fmt.Errorf("bad string literal at %q: %w", line, err)
		}
		u, _ := strconv.Unquote(lit)
		words = append(words, u)
		line = line[len(lit):]
	}
	return words, nil
}
