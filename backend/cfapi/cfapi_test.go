package cfapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestAuthenticate(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	tests := []struct {
		name, token, header string
		want                int
	}{
		{"the right token passes", "s3cret", "Bearer s3cret", http.StatusTeapot},
		{"the scheme is case-insensitive", "s3cret", "bearer s3cret", http.StatusTeapot},
		{"a wrong token is refused", "s3cret", "Bearer nope", http.StatusUnauthorized},
		{"no header is refused", "s3cret", "", http.StatusUnauthorized},
		{"basic auth is refused", "s3cret", "Basic czNjcmV0", http.StatusUnauthorized},
		{"an empty token disables the API", "", "Bearer ", http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("GET", "/x", nil)
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			Authenticate(tt.token, "D1", ok).ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Errorf("status %d, want %d", rec.Code, tt.want)
			}
			if rec.Code != http.StatusTeapot {
				var env struct {
					Success bool
					Errors  []struct{ Code int }
				}
				if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil || env.Success || len(env.Errors) != 1 || env.Errors[0].Code != CodeAuth {
					t.Errorf("body %s is not the error envelope with code %d", rec.Body, CodeAuth)
				}
			}
		})
	}
}
