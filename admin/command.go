package admin

import (
	"context"
	"strconv"
	"strings"
)

// pgbouncerVersion is the PgBouncer whose console this one speaks.
const pgbouncerVersion = "1.24.1"

// run runs one console command. A *pgwire.Error it returns goes to the client.
func (s *consoleSession) run(ctx context.Context, q string) error {
	q = strings.TrimSpace(q)
	q = strings.TrimSpace(strings.TrimSuffix(q, ";"))
	if q == "" {
		s.empty()
		return nil
	}
	if strings.Contains(q, ";") {
		return consoleError("only one command per query")
	}
	words := strings.Fields(q)
	verb := strings.ToUpper(words[0])
	args := words[1:]
	if verb == "SHOW" {
		if len(args) == 0 {
			return consoleError("SHOW needs an argument; try SHOW HELP")
		}
		return s.show(strings.ToUpper(args[0]), args[1:])
	}
	if verb == "SELECT" || verb == "SET" && len(args) > 0 && (strings.EqualFold(args[0], "application_name") || s.my != nil) {
		// Drivers and tools send these on connecting; PgBouncer answers them too.
		return s.harmless(verb, args)
	}
	if !s.isAdmin {
		return consoleError("admin access needed")
	}
	s.c.log.Info("admin console command", "user", s.user, "command", verb, "args", strings.Join(args, " "))
	arg := ""
	if len(args) > 0 {
		arg = args[0]
	}
	if len(args) > 1 && verb != "SET" && verb != "SHUTDOWN" {
		return consoleError("too many arguments to " + verb)
	}
	switch verb {
	case "PAUSE":
		return s.eachPool(arg, "PAUSE", func(p PoolEntry) error { return p.Pool.Pause(ctx) })
	case "RESUME":
		s.c.mu.Lock()
		s.c.suspended = false
		s.c.mu.Unlock()
		return s.eachPool(arg, "RESUME", func(p PoolEntry) error { p.Pool.Resume(); return nil })
	case "SUSPEND":
		if arg != "" {
			return consoleError("SUSPEND takes no database")
		}
		if err := s.eachPool("", "SUSPEND", func(p PoolEntry) error { return p.Pool.Pause(ctx) }); err != nil {
			return err
		}
		s.c.mu.Lock()
		s.c.suspended = true
		s.c.mu.Unlock()
		return nil
	case "RECONNECT":
		return s.eachPool(arg, "RECONNECT", func(p PoolEntry) error { p.Pool.Reconnect(); return nil })
	case "WAIT_CLOSE":
		return s.eachPool(arg, "WAIT_CLOSE", func(p PoolEntry) error { return p.Pool.WaitClose(ctx) })
	case "DISABLE", "ENABLE":
		if arg == "" {
			return consoleError(verb + " needs a database name")
		}
		if !s.c.known(arg) {
			return consoleError("no such database: " + arg)
		}
		if s.c.edge == nil {
			return consoleError(verb + " is the edge's: clients connect there (slipstream edge or serve)")
		}
		s.c.edge.Disable(arg, verb == "DISABLE")
		s.complete(verb)
		return nil
	case "KILL":
		// PgBouncer's KILL: drop the database's clients and server connections at once; new
		// clients wait for RESUME.
		if arg != "" && !s.c.known(arg) {
			return consoleError("no such database: " + arg)
		}
		err := s.eachPool(arg, "KILL", func(p PoolEntry) error {
			p.Pool.Reconnect()
			go p.Pool.Pause(context.WithoutCancel(ctx)) // holds new leases at once; returns as the killed sessions release
			return nil
		})
		if err != nil {
			return err
		}
		if s.c.edge != nil {
			s.c.edge.KillClients(arg)
		}
		return nil
	case "KILL_CLIENT":
		id, err := strconv.ParseUint(arg, 10, 32)
		if err != nil {
			return consoleError("KILL_CLIENT needs a client id (the id column of SHOW CLIENTS)")
		}
		if s.c.edge == nil || !s.c.edge.KillClient(uint32(id)) {
			return consoleError("no such client: " + arg)
		}
		s.complete("KILL_CLIENT")
		return nil
	case "RELOAD":
		if s.c.cfg.Controller == nil {
			return consoleError("RELOAD is not available in this process")
		}
		if err := s.c.cfg.Controller.Reload(); err != nil {
			return consoleError("RELOAD failed: " + err.Error())
		}
		s.complete("RELOAD")
		return nil
	case "SHUTDOWN":
		mode := ShutdownNow
		switch strings.ToUpper(arg) {
		case "":
		case string(ShutdownWaitForServers):
			mode = ShutdownWaitForServers
		case string(ShutdownWaitForClients):
			mode = ShutdownWaitForClients
		default:
			return consoleError("SHUTDOWN takes WAIT_FOR_SERVERS or WAIT_FOR_CLIENTS")
		}
		if s.c.cfg.Controller == nil {
			return consoleError("SHUTDOWN is not available in this process")
		}
		s.c.cfg.Controller.Shutdown(mode)
		s.complete("SHUTDOWN")
		return nil
	case "SET":
		return s.set(strings.Join(args, " "))
	}
	return consoleError("invalid command '" + q + "', use SHOW HELP;")
}

// eachPool runs f on the pools of database db (every pool when db is ""), then completes with
// tag.
func (s *consoleSession) eachPool(db, tag string, f func(PoolEntry) error) error {
	found := false
	for _, p := range s.c.cfg.Pools {
		if db != "" && p.Database != db && p.Name != db {
			continue
		}
		found = true
		if err := f(p); err != nil {
			return consoleError(tag + " " + p.Name + ": " + err.Error())
		}
	}
	if db != "" && !found {
		return consoleError("no such database: " + db)
	}
	s.complete(tag)
	return nil
}

// known reports whether db names a database or a pool.
func (c *Console) known(db string) bool {
	for _, p := range c.cfg.Pools {
		if p.Database == db || p.Name == db {
			return true
		}
	}
	return false
}

// harmless answers what drivers send on connecting (SET application_name, SELECT 1): an
// empty SET, or SELECT's single value as PgBouncer does not do but some health checks need.
func (s *consoleSession) harmless(verb string, args []string) error {
	if verb == "SET" {
		s.complete("SET")
		return nil
	}
	if len(args) >= 1 && strings.HasPrefix(strings.ToLower(args[0]), "@@version_comment") {
		// The mysql and mariadb command-line clients ask this on connecting.
		s.rows(cols("s", "@@version_comment"), [][]any{{"Slipstream admin console"}}, "SELECT 1")
		return nil
	}
	if len(args) == 1 && args[0] == "1" {
		s.rows(cols("i", "?column?"), [][]any{{1}}, "SELECT 1")
		return nil
	}
	return consoleError("invalid command 'SELECT " + strings.Join(args, " ") + "', use SHOW HELP;")
}
