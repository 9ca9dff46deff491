package cli

import (
	"flag"
	"fmt"
	"strings"
)

// flagEnvName is the environment variable of a flag: SLIPSTREAM_ and the flag's name in
// capitals, - as _ (--pg-listen: SLIPSTREAM_PG_LISTEN).
func flagEnvName(flagName string) string {
	return "SLIPSTREAM_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// repeatable is a flag that may be given more than once (--origin, --pool, --dial-edge): its
// variable holds several values separated by white space.
type repeatable interface{ repeatable() }

func (*originFlags) repeatable() {}
func (*listFlag) repeatable()    {}
func (*poolFlags) repeatable()   {}

// flagsFromEnv sets each flag not given on the command line from its environment variable
// (flagEnvName), when that is set and not empty, as if it had been given: the container and
// systemd way of configuring. --config has its own variable, SLIPSTREAM_CONFIG, read as its
// default. A value the flag refuses is an error naming the variable (not the value, which
// may be a secret).
func flagsFromEnv(fs *flag.FlagSet, lookup func(string) (string, bool)) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || given[f.Name] || f.Name == "config" {
			return
		}
		v, ok := lookup(flagEnvName(f.Name))
		if !ok || v == "" {
			return
		}
		values := []string{v}
		if _, many := f.Value.(repeatable); many {
			values = strings.Fields(v)
		}
		for _, one := range values {
			if serr := fs.Set(f.Name, one); serr != nil {
				err = fmt.Errorf("%s: invalid value for --%s", flagEnvName(f.Name), f.Name)
				return
			}
		}
	})
	return err
}
