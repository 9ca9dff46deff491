package admin

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

func TestSetTakesPgBouncersSpellingsAndShowConfigShowsTheValueUntilReloaded(t *testing.T) {
	var got string
	c := New(Config{AdminUsers: []string{"ops"}, Settings: func() []Setting {
		return []Setting{
			{Key: "default_pool_size", Value: "20", Default: "20", Set: func(v string) error {
				if v == "0" {
					return errors.New("want 1 or more")
				}
				got = v
				return nil
			}},
			{Key: "listen_port", Value: "6432", Default: "6432"},
		}
	}})
	s := &consoleSession{c: c, user: "ops", isAdmin: true, w: &bytes.Buffer{}}
	for _, tc := range []struct {
		command, set, err string
	}{
		{"SET default_pool_size = 5", "5", ""},
		{"set DEFAULT_POOL_SIZE=6;", "6", ""},
		{"SET default_pool_size TO '7'", "7", ""},
		{"SET default_pool_size = 'it''s'", "it's", ""},
		{"SET default_pool_size = 0", "", "SET default_pool_size: want 1 or more"},
		{"SET listen_port = 1", "", "config parameter listen_port cannot be changed online"},
		{"SET nothing = 1", "", "unknown config parameter: nothing"},
		{"SET default_pool_size", "", "SET needs key = value"},
		{"SET default_pool_size = ", "", "SET needs key = value"},
	} {
		t.Run(tc.command, func(t *testing.T) {
			got = ""
			err := s.run(context.Background(), tc.command)
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("error %v, want %q", err, tc.err)
			}
			if got != tc.set {
				t.Errorf("set %q, want %q", got, tc.set)
			}
		})
	}
	value := func() string {
		for _, r := range c.config() {
			if r[0] == "default_pool_size" {
				if r[3] != "yes" {
					t.Errorf("default_pool_size changeable = %v", r[3])
				}
				return r[1].(string)
			}
		}
		return ""
	}
	if v := value(); v != "it's" {
		t.Errorf("SHOW CONFIG after SET: %q, want the last value set", v)
	}
	c.Reloaded()
	if v := value(); v != "20" {
		t.Errorf("SHOW CONFIG after a reload: %q, want the configuration's", v)
	}
}
