package admin

import (
	"strings"
)

// config is SHOW CONFIG: the running configuration's settings, with SET's values over them.
func (c *Console) config() [][]any {
	var rows [][]any
	for _, st := range c.settings() {
		c.mu.Lock()
		if v, ok := c.overrides[st.Key]; ok {
			st.Value = v
		}
		c.mu.Unlock()
		rows = append(rows, []any{st.Key, st.Value, st.Default, yesNo(st.Set != nil)})
	}
	return rows
}

func (c *Console) settings() []Setting {
	if c.cfg.Settings == nil {
		return nil
	}
	return c.cfg.Settings()
}

// set answers SET key = value (or SET key TO value), as PgBouncer's: the value may be quoted;
// a setting Slipstream cannot change while it runs gets an error that says so.
func (s *consoleSession) set(expr string) error {
	key, value, ok := strings.Cut(expr, "=")
	if f := strings.Fields(expr); !ok && len(f) == 3 && strings.EqualFold(f[1], "to") {
		key, value, ok = f[0], f[2], true
	}
	key = strings.ToLower(strings.TrimSpace(key))
	value = strings.TrimSpace(value)
	if len(value) >= 2 && value[0] == '\'' && value[len(value)-1] == '\'' {
		value = strings.ReplaceAll(value[1:len(value)-1], "''", "'")
	}
	if !ok || key == "" || value == "" {
		return consoleError("SET needs key = value")
	}
	for _, st := range s.c.settings() {
		if st.Key != key {
			continue
		}
		if st.Set == nil {
			return consoleError("config parameter " + key + " cannot be changed online; change the configuration file and RELOAD")
		}
		if err := st.Set(value); err != nil {
			return consoleError("SET " + key + ": " + err.Error())
		}
		s.c.mu.Lock()
		s.c.overrides[key] = value
		s.c.mu.Unlock()
		s.c.log.Info("admin console changed a setting until the next reload", "user", s.user, "key", key, "value", value)
		s.complete("SET")
		return nil
	}
	return consoleError("unknown config parameter: " + key)
}

// Reloaded forgets SET's values: the configuration read again is in force (the command
// applies it, SET's settings included).
func (c *Console) Reloaded() {
	c.mu.Lock()
	clear(c.overrides)
	c.mu.Unlock()
}
