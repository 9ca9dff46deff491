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
	if len(args) > 1 && verb != "SET" && verb != "SHUTDOWN" {
		return consoleError("too many arguments to " + verb)
	}
	if ok, err := s.change(ctx, verb, args); ok {
		return err
	}
	return consoleError("invalid command '" + q + "', use SHOW HELP;")
}

// change runs a command that changes something (an admin's); ok is false when verb is none.
func (s *consoleSession) change(ctx context.Context, verb string, args []string) (ok bool, err error) {
	arg := ""
	if len(args) > 0 {
		arg = args[0]
	}
	switch verb {
	case "PAUSE":
		return true, s.eachPool(arg, "PAUSE", func(p PoolEntry) error { return p.Pool.Pause(ctx) })
	case "RESUME":
		s.c.setSuspended(false)
		return true, s.eachPool(arg, "RESUME", func(p PoolEntry) error { p.Pool.Resume(); return nil })
	case "SUSPEND":
		return true, s.suspend(ctx, arg)
	case "RECONNECT":
		return true, s.eachPool(arg, "RECONNECT", func(p PoolEntry) error { p.Pool.Reconnect(); return nil })
	case "WAIT_CLOSE":
		return true, s.eachPool(arg, "WAIT_CLOSE", func(p PoolEntry) error { return p.Pool.WaitClose(ctx) })
	case "DISABLE", "ENABLE":
		return true, s.disable(verb, arg)
	case "KILL":
		return true, s.kill(ctx, arg)
	case "KILL_CLIENT":
		return true, s.killClient(arg)
	case "RELOAD":
		return true, s.reload()
	case "SHUTDOWN":
		return true, s.shutdown(arg)
	case "SET":
		return true, s.set(strings.Join(args, " "))
	}
	return false, nil
}

// suspend is SUSPEND: every pool paused, and SHOW STATE says suspended until RESUME.
func (s *consoleSession) suspend(ctx context.Context, arg string) error {
	if arg != "" {
		return consoleError("SUSPEND takes no database")
	}
	if err := s.eachPool("", "SUSPEND", func(p PoolEntry) error { return p.Pool.Pause(ctx) }); err != nil {
		return err
	}
	s.c.setSuspended(true)
	return nil
}

func (c *Console) setSuspended(b bool) {
	c.mu.Lock()
	c.suspended = b
	c.mu.Unlock()
}

// disable is DISABLE db and ENABLE db: the edge refuses (or lets in again) the database's new
// clients.
func (s *consoleSession) disable(verb, db string) error {
	if db == "" {
		return consoleError(verb + " needs a database name")
	}
	if !s.c.known(db) {
		return consoleError("no such database: " + db)
	}
	if s.c.edge == nil {
		return consoleError(verb + " is the edge's: clients connect there (slipstream edge or serve)")
	}
	s.c.edge.Disable(db, verb == "DISABLE")
	s.complete(verb)
	return nil
}

// kill is PgBouncer's KILL [db]: drop the database's clients and server connections at once;
// new clients wait for RESUME.
func (s *consoleSession) kill(ctx context.Context, db string) error {
	if db != "" && !s.c.known(db) {
		return consoleError("no such database: " + db)
	}
	err := s.eachPool(db, "KILL", func(p PoolEntry) error {
		p.Pool.Reconnect()
		go p.Pool.Pause(context.WithoutCancel(ctx)) // holds new leases at once; returns as the killed sessions release
		return nil
	})
	if err != nil {
		return err
	}
	if s.c.edge != nil {
		s.c.edge.KillClients(db)
	}
	return nil
}

// killClient is KILL_CLIENT id: the client of that id (SHOW CLIENTS' id column) is ended.
func (s *consoleSession) killClient(arg string) error {
	id, err := strconv.ParseUint(arg, 10, 32)
	if err != nil {
		return consoleError("KILL_CLIENT needs a client id (the id column of SHOW CLIENTS)")
	}
	if s.c.edge == nil || !s.c.edge.KillClient(uint32(id)) {
		return consoleError("no such client: " + arg)
	}
	s.complete("KILL_CLIENT")
	return nil
}

// reload is RELOAD: the configuration read again, as SIGHUP.
func (s *consoleSession) reload() error {
	if s.c.cfg.Controller == nil {
		return consoleError("RELOAD is not available in this process")
	}
	if err := s.c.cfg.Controller.Reload(); err != nil {
		return consoleError("RELOAD failed: " + err.Error())
	}
	s.complete("RELOAD")
	return nil
}

// shutdown is SHUTDOWN [WAIT_FOR_SERVERS|WAIT_FOR_CLIENTS].
func (s *consoleSession) shutdown(arg string) error {
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
}

// eachPool runs f on the pools of database db (every pool when db is ""), then completes with
// tag. A pool listed while f ran (a role's first login: any_role) gets f too, in a second
// pass, so that PAUSE and RESUME leave no pool of db behind.
func (s *consoleSession) eachPool(db, tag string, f func(PoolEntry) error) error {
	done := map[[3]string]bool{} // by name, user and protocol
	for pass := range 2 {
		for _, p := range s.c.entries() {
			key := [3]string{p.Name, p.User, p.Protocol}
			if db != "" && p.Database != db && p.Name != db || done[key] {
				continue
			}
			done[key] = true
			if err := f(p); err != nil {
				return consoleError(tag + " " + p.Name + ": " + err.Error())
			}
		}
		if pass == 0 && db != "" && len(done) == 0 {
			return consoleError("no such database: " + db)
		}
	}
	s.complete(tag)
	return nil
}

// known reports whether db names a database or a pool.
func (c *Console) known(db string) bool {
	for _, p := range c.entries() {
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
