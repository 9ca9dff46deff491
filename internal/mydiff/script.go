package mydiff

import (
	"bufio"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/go-mysql-org/go-mysql/mysql"
)

// Script is one protocol situation: the capabilities a client asks for at login and the
// commands it sends after.
type Script struct {
	Name  string
	Caps  uint64
	Steps []Step
}

// Step is one command of a script: a line of its text.
type Step struct {
	Line int
	Text string // the line as written, for reports
	Verb string
	Args []string
	// Pipelined steps (written with a leading "&") go out together with the next step that is
	// not; their answers are read after that write, in order.
	Pipelined bool
}

// DefaultCaps are the capabilities a script asks for unless its caps line says otherwise:
// those go-sql-driver/mysql asks for that shape answers.
const DefaultCaps = uint64(mysql.CLIENT_LONG_FLAG | mysql.CLIENT_MULTI_RESULTS | mysql.CLIENT_PS_MULTI_RESULTS)

// capNames are the capability names a caps line takes.
var capNames = map[string]uint64{
	"found_rows":        uint64(mysql.CLIENT_FOUND_ROWS),
	"long_flag":         uint64(mysql.CLIENT_LONG_FLAG),
	"ignore_space":      uint64(mysql.CLIENT_IGNORE_SPACE),
	"interactive":       uint64(mysql.CLIENT_INTERACTIVE),
	"multi_statements":  uint64(mysql.CLIENT_MULTI_STATEMENTS),
	"multi_results":     uint64(mysql.CLIENT_MULTI_RESULTS),
	"ps_multi_results":  uint64(mysql.CLIENT_PS_MULTI_RESULTS),
	"session_track":     uint64(mysql.CLIENT_SESSION_TRACK),
	"deprecate_eof":     uint64(mysql.CLIENT_DEPRECATE_EOF),
	"extended_metadata": ExtExtendedMetadata,
}

// verbs are the commands a script line may start with, and how many arguments each takes
// at least.
var verbs = map[string]int{
	"query": 0, "prepare": 2, "execute": 1, "fetch": 2, "close": 1, "reset": 1, "longdata": 3,
	"initdb": 1, "ping": 0, "fieldlist": 1, "setoption": 1, "resetconn": 0, "statistics": 0,
	"raw": 1, "quit": 0,
}

//go:embed scripts/*.txt
var scriptFiles embed.FS

// Scripts returns the scripts in scripts/, in file name order.
func Scripts() ([]Script, error) {
	names, err := fs.Glob(scriptFiles, "scripts/*.txt")
	if err != nil {
		return nil, err
	}
	var out []Script
	for _, n := range names {
		b, err := scriptFiles.ReadFile(n)
		if err != nil {
			return nil, err
		}
		s, err := Parse(strings.TrimSuffix(path.Base(n), ".txt"), string(b))
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// Parse reads a script's text. Each line is a command (see the package documentation);
// blank lines and lines starting with # are skipped. {{repeat TEXT N}} in a line stands for
// TEXT N times.
func Parse(name, text string) (Script, error) {
	s := Script{Name: name, Caps: DefaultCaps}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		expanded, err := expand(line)
		if err != nil {
			return s, fmt.Errorf("mydiff: %s:%d: %w", name, n, err)
		}
		st := Step{Line: n, Text: line}
		if strings.HasPrefix(expanded, "&") {
			st.Pipelined = true
			expanded = strings.TrimSpace(expanded[1:])
		}
		verb, rest, _ := strings.Cut(expanded, " ")
		if verb == "caps" {
			for _, f := range strings.Fields(rest) {
				bit, ok := capNames[strings.TrimLeft(f, "+-")]
				if !ok || (f[0] != '+' && f[0] != '-') {
					return s, fmt.Errorf("mydiff: %s:%d: unknown capability %q (+name or -name)", name, n, f)
				}
				if f[0] == '+' {
					s.Caps |= bit
				} else {
					s.Caps &^= bit
				}
			}
			continue
		}
		least, ok := verbs[verb]
		if !ok {
			return s, fmt.Errorf("mydiff: %s:%d: unknown command %q", name, n, verb)
		}
		st.Verb = verb
		switch verb {
		case "query", "initdb":
			st.Args = []string{rest}
		case "prepare":
			nm, sql, _ := strings.Cut(rest, " ")
			st.Args = []string{nm, sql}
		case "longdata":
			f := strings.SplitN(rest, " ", 3)
			st.Args = f
		default:
			if st.Args, err = tokens(rest); err != nil {
				return s, fmt.Errorf("mydiff: %s:%d: %w", name, n, err)
			}
		}
		if len(st.Args) < least || least > 0 && st.Args[0] == "" {
			return s, fmt.Errorf("mydiff: %s:%d: %s takes %d arguments", name, n, verb, least)
		}
		s.Steps = append(s.Steps, st)
	}
	return s, sc.Err()
}

// expand replaces {{repeat TEXT N}}.
func expand(line string) (string, error) {
	for {
		i := strings.Index(line, "{{repeat ")
		if i < 0 {
			return line, nil
		}
		j := strings.Index(line[i:], "}}")
		if j < 0 {
			return "", fmt.Errorf("unterminated {{repeat")
		}
		body := line[i+len("{{repeat ") : i+j]
		k := strings.LastIndexByte(body, ' ')
		if k < 0 {
			return "", fmt.Errorf("{{repeat TEXT N}} needs a count")
		}
		count, err := strconv.Atoi(body[k+1:])
		if err != nil || count < 0 || count > 1<<20 {
			return "", fmt.Errorf("bad repeat count %q", body[k+1:])
		}
		text, err := strconv.Unquote(body[:k])
		if err != nil {
			text = body[:k]
		}
		line = line[:i] + strings.Repeat(text, count) + line[i+j+2:]
	}
}

// tokens splits arguments at spaces; 'single quoted' strings may hold spaces (” is a quote).
func tokens(s string) ([]string, error) {
	var out []string
	for {
		s = strings.TrimLeft(s, " ")
		if s == "" {
			return out, nil
		}
		if s[0] != '\'' && !strings.HasPrefix(s, "x'") {
			tok, rest, _ := strings.Cut(s, " ")
			out, s = append(out, tok), rest
			continue
		}
		start := strings.IndexByte(s, '\'')
		i := start + 1
		for ; ; i++ {
			if i >= len(s) {
				return nil, fmt.Errorf("unterminated string in %q", s)
			}
			if s[i] == '\'' {
				if i+1 < len(s) && s[i+1] == '\'' {
					i++
					continue
				}
				break
			}
		}
		out, s = append(out, s[:i+1]), s[i+1:]
	}
}

// param is one execute argument, typed as a driver would type a Go value.
type param struct {
	null  bool
	typ   byte
	value []byte // binary protocol encoding
}

// parseParams turns execute arguments into parameters. N*ARG repeats ARG N times.
func parseParams(args []string) ([]param, error) {
	var out []param
	for _, a := range args {
		count := 1
		if i := strings.IndexByte(a, '*'); i > 0 && a[0] != '\'' {
			n, err := strconv.Atoi(a[:i])
			if err != nil || n < 1 || n > 65535 {
				return nil, fmt.Errorf("bad repeat %q", a)
			}
			count, a = n, a[i+1:]
		}
		p, err := parseParam(a)
		if err != nil {
			return nil, err
		}
		for range count {
			out = append(out, p)
		}
	}
	return out, nil
}

func parseParam(a string) (param, error) {
	switch {
	case strings.EqualFold(a, "NULL"):
		return param{null: true, typ: mysql.MYSQL_TYPE_NULL}, nil
	case strings.HasPrefix(a, "x'") && strings.HasSuffix(a, "'"):
		b, err := hex.DecodeString(a[2 : len(a)-1])
		if err != nil {
			return param{}, fmt.Errorf("bad hex %q", a)
		}
		return param{typ: mysql.MYSQL_TYPE_BLOB, value: mysql.AppendLengthEncodedInteger(nil, uint64(len(b)))}.with(b), nil
	case strings.HasPrefix(a, "'") && strings.HasSuffix(a, "'") && len(a) >= 2:
		s := strings.ReplaceAll(a[1:len(a)-1], "''", "'")
		return param{typ: mysql.MYSQL_TYPE_VAR_STRING, value: mysql.AppendLengthEncodedInteger(nil, uint64(len(s)))}.with([]byte(s)), nil
	}
	if v, err := strconv.ParseInt(a, 10, 64); err == nil {
		return param{typ: mysql.MYSQL_TYPE_LONGLONG, value: le64(uint64(v))}, nil
	}
	if v, err := strconv.ParseFloat(a, 64); err == nil {
		return param{typ: mysql.MYSQL_TYPE_DOUBLE, value: le64(mathFloat64bits(v))}, nil
	}
	return param{}, fmt.Errorf("bad parameter %q (integer, float, 'string', x'hex' or NULL)", a)
}

func (p param) with(b []byte) param { p.value = append(p.value, b...); return p }
