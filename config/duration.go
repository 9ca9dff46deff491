package config

import (
	"fmt"
	"time"
)

// Duration is a time.Duration written in TOML as a string such as "30s", "10m" or "1h30m".
type Duration struct{ time.Duration }

// UnmarshalText parses a duration in time.ParseDuration's syntax. A bare number has no unit
// and is refused rather than guessed as seconds or nanoseconds.
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := time.ParseDuration(string(text))
	if err != nil {
		return fmt.Errorf("invalid duration %q: want a number with a unit, such as \"30s\", \"10m\" or \"1h\"", text)
	}
	d.Duration = v
	return nil
}
