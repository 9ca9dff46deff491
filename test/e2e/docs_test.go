package e2e

// Docs that cannot drift: README.md and docs/*.md are read as the test data of this file.
//
//   - Every `slipstream ...` command in a ```sh block, in a command synopsis (a ``` block line
//     starting with "slipstream "), or in an inline code span is checked against the real
//     command: the command must exist and each --flag must be in its --help. A flag renamed
//     without its docs fails here.
//   - Every ```toml block is loaded by the real loader: config.Parse, Normalize, Validate. A
//     block preceded by <!-- fragment --> need only parse.
//   - A ```sh block preceded by <!-- runnable --> is run, line by line, in a temporary
//     directory of its file: `slipstream serve ...` runs in-process (listening on free ports,
//     which the following lines get in place of 6432, 3307 and 9432; the next serve line of the
//     file replaces it), `export` lines set the environment, and every other line runs in bash
//     and must exit 0. A ```toml block preceded by <!-- runnable file=NAME --> is written to
//     NAME in that directory first.
//
// New files under docs/ are picked up as they come.

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/slipstream-proxy/slipstream/cmd/slipstream/cli"
	"github.com/slipstream-proxy/slipstream/config"
)

// docBlock is one fenced block of a markdown file.
type docBlock struct {
	file   string
	line   int    // of the opening fence
	lang   string // "sh", "toml", "" ...
	marker string // the <!-- ... --> comment right before the fence, without its delimiters
	text   string
}

var (
	fenceRe   = regexp.MustCompile("^```\\s*(\\w*)")
	markerRe  = regexp.MustCompile(`^<!--\s*(.*?)\s*-->\s*$`)
	inlineRe  = regexp.MustCompile("`(slipstream [^`]+)`")
	helpFlag  = regexp.MustCompile(`(?m)^\s+--?([a-z][a-z0-9-]*)`)
	docFlagRe = regexp.MustCompile(`^--?([a-z][a-z0-9-]*)(=.*)?$`)
	wordRe    = regexp.MustCompile(`^[a-z][a-z-]*$`)
	// anyDatabaseLine is a connection string serve prints, the MySQL side of an embedded
	// database's included.
	anyDatabaseLine = regexp.MustCompile(`(?m)^database \S+(?: \(mysql\))?: (\S+)$`)
	envName         = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	synFlagRe       = regexp.MustCompile(`(?:^|[\s\[])(--?[a-z][a-z0-9-]*)`)
)

// docFiles are README.md and docs/*.md, relative to this package.
func docFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{"../../README.md"}, files...)
}

// readBlocks returns the fenced blocks of a markdown file, and its inline `slipstream ...`
// code spans outside them (as blocks of lang "inline").
func readBlocks(t *testing.T, path string) []docBlock {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(path, "../../")
	var blocks []docBlock
	var cur *docBlock
	marker := ""
	for i, line := range strings.Split(string(data), "\n") {
		if cur != nil {
			if strings.HasPrefix(strings.TrimSpace(line), "```") {
				blocks = append(blocks, *cur)
				cur = nil
				continue
			}
			cur.text += line + "\n"
			continue
		}
		if m := fenceRe.FindStringSubmatch(strings.TrimSpace(line)); m != nil {
			cur = &docBlock{file: name, line: i + 1, lang: m[1], marker: marker}
			marker = ""
			continue
		}
		if m := markerRe.FindStringSubmatch(strings.TrimSpace(line)); m != nil {
			marker = m[1]
			continue
		}
		if strings.TrimSpace(line) != "" {
			marker = ""
		}
		for _, m := range inlineRe.FindAllStringSubmatch(line, -1) {
			blocks = append(blocks, docBlock{file: name, line: i + 1, lang: "inline", text: m[1]})
		}
	}
	if cur != nil {
		t.Errorf("%s:%d: a ``` block is never closed", name, cur.line)
	}
	return blocks
}

// TestDocsCommandsUseRealFlags checks every slipstream command in the docs against its --help.
func TestDocsCommandsUseRealFlags(t *testing.T) {
	helps := map[string]map[string]bool{} // command words -> its flags
	flagsOf := func(words []string) (map[string]bool, []string, error) {
		// The longest prefix of the words that is a command: the rest are arguments.
		for n := len(words); n >= 1; n-- {
			key := strings.Join(words[:n], " ")
			if f, ok := helps[key]; ok {
				return f, words[:n], nil
			}
			var out, errOut strings.Builder
			if cli.Run(context.Background(), append(append([]string{}, words[:n]...), "--help"), &out, &errOut) != 0 {
				continue
			}
			f := map[string]bool{"help": true, "h": true}
			for _, m := range helpFlag.FindAllStringSubmatch(out.String()+errOut.String(), -1) {
				f[m[1]] = true
			}
			helps[key] = f
			return f, words[:n], nil
		}
		return nil, nil, fmt.Errorf("no such command: slipstream %s", strings.Join(words, " "))
	}
	checked := 0
	for _, path := range docFiles(t) {
		for _, b := range readBlocks(t, path) {
			var cmds [][]string
			switch b.lang {
			case "sh", "bash", "shell":
				for _, l := range logicalLines(b.text) {
					for _, seg := range segments(shellWords(l)) {
						if args := slipstreamArgs(seg); args != nil {
							cmds = append(cmds, args)
						}
					}
				}
			case "", "inline":
				for _, l := range strings.Split(b.text, "\n") {
					if !strings.HasPrefix(l, "slipstream ") {
						continue
					}
					cmds = append(cmds, synopsisArgs(l))
				}
			}
			for _, args := range cmds {
				var words, flags []string
				for _, a := range args {
					if m := docFlagRe.FindStringSubmatch(a); m != nil {
						flags = append(flags, m[1])
					} else if len(flags) == 0 && wordRe.MatchString(a) {
						words = append(words, a)
					}
				}
				if len(words) == 0 {
					continue
				}
				known, cmd, err := flagsOf(words)
				if err != nil {
					t.Errorf("%s:%d: %v", b.file, b.line, err)
					continue
				}
				for _, f := range flags {
					if !known[f] {
						t.Errorf("%s:%d: slipstream %s has no flag --%s (see slipstream %s --help)", b.file, b.line, strings.Join(cmd, " "), f, strings.Join(cmd, " "))
					}
				}
				checked++
			}
		}
	}
	t.Logf("checked %d slipstream commands against their --help", checked)
	if checked < 10 {
		t.Errorf("checked only %d slipstream commands in the docs: is the parsing broken?", checked)
	}
}

// TestDocsTOMLLoads loads every TOML block of the docs with the real configuration loader.
func TestDocsTOMLLoads(t *testing.T) {
	n := 0
	for _, path := range docFiles(t) {
		for _, b := range readBlocks(t, path) {
			if b.lang != "toml" {
				continue
			}
			n++
			c, err := config.Parse([]byte(b.text))
			if err != nil {
				t.Errorf("%s:%d: the TOML block does not load: %v", b.file, b.line, err)
				continue
			}
			if b.marker == "fragment" {
				continue
			}
			c.Normalize()
			if err := c.Validate(); err != nil {
				t.Errorf("%s:%d: the TOML block is not a valid configuration (mark a partial one <!-- fragment -->): %v", b.file, b.line, err)
			}
		}
	}
	if n < 3 {
		t.Errorf("found only %d TOML blocks in the docs", n)
	}
}

// TestDocsRunnableBlocksRun runs the blocks marked <!-- runnable -->; see the file comment.
func TestDocsRunnableBlocksRun(t *testing.T) {
	for _, path := range docFiles(t) {
		var runnable []docBlock
		for _, b := range readBlocks(t, path) {
			if strings.HasPrefix(b.marker, "runnable") {
				runnable = append(runnable, b)
			}
		}
		if len(runnable) == 0 {
			continue
		}
		t.Run(strings.TrimPrefix(path, "../../"), func(t *testing.T) {
			r := &docRunner{t: t, dir: t.TempDir()}
			defer r.stop()
			for _, b := range runnable {
				r.block(b)
			}
		})
	}
}

// docRunner runs one file's runnable blocks in order.
type docRunner struct {
	t     *testing.T
	dir   string
	serve *instance // the serve started last, if any
	ports map[string]string
}

func (r *docRunner) stop() {
	if r.serve != nil {
		if code := r.serve.Stop(); code != 0 {
			r.t.Errorf("slipstream serve exited %d; stderr:\n%s", code, r.serve.stderr.String())
		}
		r.serve = nil
	}
}

func (r *docRunner) block(b docBlock) {
	t := r.t
	if b.lang == "toml" {
		name, ok := strings.CutPrefix(b.marker, "runnable file=")
		if !ok || strings.ContainsAny(name, "/\\") {
			t.Fatalf("%s:%d: a runnable TOML block needs <!-- runnable file=NAME -->", b.file, b.line)
		}
		if err := os.WriteFile(filepath.Join(r.dir, name), []byte(b.text), 0o600); err != nil {
			t.Fatal(err)
		}
		return
	}
	for _, line := range logicalLines(b.text) {
		words := shellWords(line)
		if len(words) > 0 && words[len(words)-1] == "&" {
			words = words[:len(words)-1]
		}
		if args := slipstreamArgs(words); len(args) > 0 && args[0] == "serve" && len(segments(words)) == 1 {
			r.startServe(b, args[1:])
			continue
		}
		if len(words) > 1 && words[0] == "export" {
			for _, kv := range words[1:] {
				k, _, ok := strings.Cut(kv, "=")
				if !ok || !envName.MatchString(k) {
					continue
				}
				out, err := exec.Command("bash", "-ec", line+"\nprintf %s \"$"+k+"\"").Output()
				if err != nil {
					t.Fatalf("%s:%d: %s: %v", b.file, b.line, line, err)
				}
				t.Setenv(k, string(out))
			}
			continue
		}
		r.shell(b, line)
	}
}

// startServe runs `slipstream serve ARGS` in-process on free ports, replacing the last one.
func (r *docRunner) startServe(b docBlock, args []string) {
	r.stop()
	for i := range args {
		if i > 0 && args[i-1] == "--config" && !filepath.IsAbs(args[i]) {
			args[i] = filepath.Join(r.dir, args[i])
		}
	}
	// runServeFor adds free listen ports and a data directory.
	in := runServeFor(r.t, serveDatabase(args), args)
	r.serve = in
	r.ports = map[string]string{}
	for _, d := range anyDatabaseLine.FindAllStringSubmatch(in.stdout.String(), -1) {
		if strings.HasPrefix(d[1], "postgres://") {
			r.ports["6432"] = portOf(d[1])
		} else if strings.HasPrefix(d[1], "mysql://") {
			r.ports["3307"] = portOf(d[1])
		}
	}
	_, r.ports["9432"], _ = net.SplitHostPort(in.HTTP)
	r.t.Logf("%s:%d: slipstream serve %s: ports %v", b.file, b.line, strings.Join(args, " "), r.ports)
}

// serveDatabase is the name of the first database `slipstream serve ARGS` serves.
func serveDatabase(args []string) string {
	for i := 1; i < len(args); i++ {
		switch args[i-1] {
		case "--origin":
			name, u := config.SplitOriginFlag(args[i])
			if name == "" {
				o, _ := config.ParseOrigin(u)
				name = o.Database
			}
			return name
		case "--config":
			if c, err := config.Load(args[i]); err == nil && len(c.Databases) > 0 {
				c.Normalize()
				return c.Databases[0].Name
			}
		}
	}
	return "main" // the embedded default
}

func portOf(u string) string {
	rest := u[strings.Index(u, "@")+1:]
	hostport, _, _ := strings.Cut(rest, "/")
	_, port, _ := net.SplitHostPort(hostport)
	return port
}

// shell runs one line in bash, with the serve's free ports in place of the default ones.
func (r *docRunner) shell(b docBlock, line string) {
	t := r.t
	for def, port := range r.ports {
		line = strings.ReplaceAll(line, "127.0.0.1:"+def, "127.0.0.1:"+port)
		line = strings.ReplaceAll(line, "-P "+def, "-P "+port)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-ec", line)
	cmd.Dir = r.dir
	out, err := cmd.CombinedOutput()
	t.Logf("%s:%d: $ %s\n%s", b.file, b.line, line, out)
	if err != nil {
		t.Errorf("%s:%d: %s: %v\n%s", b.file, b.line, line, err, out)
	}
}

// logicalLines joins a shell block's backslash continuations and drops comments and blank
// lines.
func logicalLines(text string) []string {
	var lines []string
	cur := ""
	for _, l := range strings.Split(text, "\n") {
		if strings.HasSuffix(l, "\\") {
			cur += strings.TrimSuffix(l, "\\") + " "
			continue
		}
		cur += l
		if s := strings.TrimSpace(stripComment(cur)); s != "" {
			lines = append(lines, s)
		}
		cur = ""
	}
	return lines
}

// stripComment drops a # comment that is outside quotes and starts a word.
func stripComment(l string) string {
	var quote byte
	for i := 0; i < len(l); i++ {
		switch c := l[i]; {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '#' && (i == 0 || l[i-1] == ' ' || l[i-1] == '\t'):
			return l[:i]
		}
	}
	return l
}

// shellWords splits a line into words as the shell would, without expansions: quotes are
// removed, and the operators | || & && ; are words of their own.
func shellWords(l string) []string {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote byte
	flush := func() {
		if inWord {
			words = append(words, cur.String())
		}
		cur.Reset()
		inWord = false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				cur.WriteByte(c)
			}
		case c == '\'' || c == '"':
			quote, inWord = c, true
		case c == ' ' || c == '\t':
			flush()
		case c == '|' || c == '&' || c == ';':
			flush()
			op := string(c)
			if i+1 < len(l) && (l[i+1] == '|' || l[i+1] == '&') && c != ';' {
				op += string(l[i+1])
				i++
			}
			words = append(words, op)
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	flush()
	return words
}

// segments splits words at the shell's operators.
func segments(words []string) [][]string {
	var segs [][]string
	var cur []string
	for _, w := range words {
		switch w {
		case "|", "||", "&", "&&", ";":
			if len(cur) > 0 {
				segs = append(segs, cur)
			}
			cur = nil
		default:
			cur = append(cur, w)
		}
	}
	if len(cur) > 0 {
		segs = append(segs, cur)
	}
	return segs
}

// slipstreamArgs returns the arguments of a command segment that runs slipstream (as
// `slipstream`, a path to it, or `go run ./cmd/slipstream`), after any VAR=value words; nil
// for any other command.
func slipstreamArgs(seg []string) []string {
	for len(seg) > 0 && strings.Contains(seg[0], "=") && !strings.HasPrefix(seg[0], "-") {
		seg = seg[1:]
	}
	switch {
	case len(seg) == 0:
		return nil
	case seg[0] == "slipstream" || strings.HasSuffix(seg[0], "/slipstream"):
		return seg[1:]
	case len(seg) >= 3 && seg[0] == "go" && seg[1] == "run" && strings.TrimSuffix(seg[2], "/") == "./cmd/slipstream":
		return seg[3:]
	}
	return nil
}

// synopsisArgs turns a synopsis line, `slipstream serve [--config FILE] [--origin URL]...`,
// into the command words (up to the first field that is not one, such as "|" or "[flags]")
// and the flags it names.
func synopsisArgs(l string) []string {
	var args []string
	for _, f := range strings.Fields(l)[1:] {
		if !wordRe.MatchString(f) {
			break
		}
		args = append(args, f)
	}
	for _, m := range synFlagRe.FindAllStringSubmatch(l, -1) {
		args = append(args, m[1])
	}
	return args
}
