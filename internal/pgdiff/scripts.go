package pgdiff

import (
	"embed"
	"path"
	"strings"
)

//go:embed scripts/*.pgs
var scriptFiles embed.FS

// Scripts returns the embedded scripts (scripts/*.pgs), in file name order, each named after
// its file without the extension.
func Scripts() ([]*Script, error) {
	entries, err := scriptFiles.ReadDir("scripts")
	if err != nil {
		return nil, err
	}
	var out []*Script
	for _, e := range entries {
		b, err := scriptFiles.ReadFile(path.Join("scripts", e.Name()))
		if err != nil {
			return nil, err
		}
		s, err := Parse(strings.TrimSuffix(e.Name(), ".pgs"), string(b))
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}
