package planetscale

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DefaultBaseURL is the PlanetScale API that a Client talks to unless told otherwise.
const DefaultBaseURL = "https://api.planetscale.com/v1"

// Token is a PlanetScale service token: its id and its secret. String hides the secret.
type Token struct {
	ID, Secret string
}

// String names the token by its id only.
func (t Token) String() string { return "service token " + t.ID }

// LogValue keeps the secret out of structured logs.
func (t Token) LogValue() slog.Value { return slog.StringValue(t.String()) }

// ParseToken reads a token written as ID:SECRET, the form of the Authorization header and of a
// service_token_file (surrounding white space, such as a final newline, is ignored). Its
// errors never quote the text.
func ParseToken(s string) (Token, error) {
	id, secret, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok || id == "" || secret == "" || strings.ContainsAny(id+secret, " \t\r\n") {
		return Token{}, errors.New("planetscale: a service token is written ID:TOKEN on one line")
	}
	return Token{ID: id, Secret: secret}, nil
}

// Client calls the PlanetScale API with a service token. Its zero value is not usable; fill
// Token at least. It is safe for concurrent use.
type Client struct {
	// BaseURL is the API's root; empty means DefaultBaseURL. Tests point it at a fake.
	BaseURL string
	// Token authenticates every request (Authorization: ID:SECRET).
	Token Token
	// HTTP sends the requests; nil means a client with a 30 s timeout.
	HTTP *http.Client
	// Attempts bounds the tries of one request that gets 429 or a 5xx, or no answer at all;
	// 0 means 4.
	Attempts int
	// MaxWait bounds one wait between tries, including what a Retry-After asks; 0 means 30 s.
	MaxWait time.Duration
}

const (
	defaultAttempts = 4
	defaultMaxWait  = 30 * time.Second
	firstBackoff    = 250 * time.Millisecond
	maxBody         = 1 << 20 // the largest answer read
	perPage         = 100
)

var defaultHTTP = &http.Client{Timeout: 30 * time.Second}

// do sends a request with a JSON body (when in is not nil) and decodes a JSON answer into out
// (when not nil). 429 and 5xx answers and transport failures are retried with exponential
// backoff and full jitter, a Retry-After header deciding the wait when present; other failures
// return an *APIError at once.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	base := c.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	u := strings.TrimSuffix(base, "/") + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("planetscale: %s %s: %w", method, path, err)
		}
	}
	hc := c.HTTP
	if hc == nil {
		hc = defaultHTTP
	}
	attempts := c.Attempts
	if attempts <= 0 {
		attempts = defaultAttempts
	}
	maxWait := c.MaxWait
	if maxWait <= 0 {
		maxWait = defaultMaxWait
	}
	backoff := firstBackoff
	for try := 1; ; try++ {
		wait, err := c.once(ctx, hc, method, u, path, body, out)
		if err == nil || wait < 0 || try == attempts {
			return err
		}
		if wait == 0 {
			wait = rand.N(backoff) + time.Millisecond // full jitter
			backoff = min(2*backoff, maxWait)
		}
		t := time.NewTimer(min(wait, maxWait))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (gave up waiting to retry: %w)", err, ctx.Err())
		case <-t.C:
		}
	}
}

// once sends one request. On failure it also says whether to retry: wait < 0 means never, 0
// after a backoff, > 0 after that long (the answer's Retry-After).
func (c *Client) once(ctx context.Context, hc *http.Client, method, u, path string, body []byte, out any) (wait time.Duration, err error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return -1, fmt.Errorf("planetscale: %s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", c.Token.ID+":"+c.Token.Secret)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return -1, fmt.Errorf("planetscale: %s %s: %w", method, path, ctx.Err())
		}
		// *url.Error quotes the URL, which holds no secret (the token travels in a header).
		return 0, fmt.Errorf("planetscale: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return 0, fmt.Errorf("planetscale: %s %s: reading the answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		ae := &APIError{Method: method, Path: path, Status: resp.StatusCode}
		var eb struct{ Code, Message string }
		if json.Unmarshal(data, &eb) == nil && (eb.Code != "" || eb.Message != "") {
			ae.Code, ae.Message = eb.Code, eb.Message
		} else {
			ae.Message = strings.TrimSpace(string(data[:min(len(data), 200)]))
		}
		if !retryable(resp.StatusCode) {
			return -1, ae
		}
		return retryAfter(resp.Header.Get("Retry-After")), ae
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return 0, nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return -1, fmt.Errorf("planetscale: %s %s: the answer is not the JSON expected: %w", method, path, err)
	}
	return 0, nil
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date; 0 when absent or unreadable.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return max(time.Duration(n)*time.Second, time.Millisecond)
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), time.Millisecond)
	}
	return 0
}

// page is one page of a list answer.
type page[T any] struct {
	Data     []T  `json:"data"`
	NextPage *int `json:"next_page"`
}

// list fetches every page of a list endpoint, following next_page.
func list[T any](ctx context.Context, c *Client, path string) ([]T, error) {
	var all []T
	for n := 1; ; {
		var p page[T]
		q := url.Values{"page": {strconv.Itoa(n)}, "per_page": {strconv.Itoa(perPage)}}
		if err := c.do(ctx, http.MethodGet, path, q, nil, &p); err != nil {
			return nil, err
		}
		all = append(all, p.Data...)
		if p.NextPage == nil || *p.NextPage <= n {
			return all, nil
		}
		n = *p.NextPage
	}
}

// esc escapes one path segment.
func esc(s string) string { return url.PathEscape(s) }
