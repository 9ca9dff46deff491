package pgwire

import (
	"maps"
	"testing"
)

func TestStartupSettingsCombineAsPostgreSQLDoes(t *testing.T) {
	tests := []struct {
		name   string
		params map[string]string
		want   map[string]string
	}{
		{"user, database and protocol options are not settings",
			map[string]string{"user": "u", "database": "d", "replication": "false", "_pq_.x": "1", "TimeZone": "UTC"},
			map[string]string{"timezone": "UTC"}},
		{"an explicit parameter wins over options",
			map[string]string{"options": "-c work_mem=3MB -capplication_name=a --statement-timeout=5", "application_name": "b"},
			map[string]string{"work_mem": "3MB", "application_name": "b", "statement_timeout": "5"}},
		{"a backslash keeps a space in a value",
			map[string]string{"options": `-c search_path=a,\ b`},
			map[string]string{"search_path": "a, b"}},
		{"an empty application name is a setting",
			map[string]string{"application_name": ""},
			map[string]string{"application_name": ""}},
	}
	for _, tt := range tests {
		if got := StartupSettings(tt.params); !maps.Equal(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}
