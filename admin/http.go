package admin

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/slipstream-proxy/slipstream/cache"
	"github.com/slipstream-proxy/slipstream/insight"
)

// PoolView is one pool in /api/overview.
type PoolView struct {
	Name     string `json:"name"`
	User     string `json:"user"`
	Protocol string `json:"protocol"`
	Clients  int    `json:"clients"`
	InUse    int    `json:"in_use"`
	Idle     int    `json:"idle"`
	Waiting  int    `json:"waiting"`
	Max      int    `json:"max"`
	Paused   bool   `json:"paused"`
	Disabled bool   `json:"disabled"`
}

// TunnelView is one tunnel in /api/overview.
type TunnelView struct {
	Pool      string  `json:"pool"`
	Region    string  `json:"region"`
	Transport string  `json:"transport"`
	Addr      string  `json:"addr"`
	RTTMs     float64 `json:"rtt_ms"`
	Up        bool    `json:"up"`
}

// Overview is /api/overview: what the dashboard draws.
type Overview struct {
	Version string    `json:"version"`
	Now     time.Time `json:"now"`
	Uptime  float64   `json:"uptime_s"`
	State   string    `json:"state"` // active, paused, suspended
	Clients int       `json:"clients"`
	Window  struct {
		UnitsPerSecond float64 `json:"units_per_s"`
		P50Ms          float64 `json:"p50_ms"`
		P99Ms          float64 `json:"p99_ms"`
		Hits           uint64  `json:"hits"`
		Cacheable      uint64  `json:"cacheable"`
	} `json:"window"` // the last 10 seconds
	Series    []insight.Point   `json:"series"`     // the last 60 seconds
	NotCached map[string]uint64 `json:"not_cached"` // the last 60 seconds' units by why they were not cached
	Pools     []PoolView        `json:"pools"`
	Top       []insight.Shape   `json:"top"`
	Tunnels   []TunnelView      `json:"tunnels"`
}

// Overview returns the dashboard's figures as of now.
func (c *Console) Overview(now time.Time) Overview {
	var o Overview
	o.Version, o.Now = c.cfg.Version, now
	o.Series, o.Top, o.Pools, o.Tunnels = []insight.Point{}, []insight.Shape{}, []PoolView{}, []TunnelView{}
	o.NotCached = map[string]uint64{}
	paused, suspended := c.state()
	o.State = "active"
	if suspended {
		o.State = "suspended"
	} else if paused {
		o.State = "paused"
	}
	if r := c.cfg.Insight; r != nil {
		o.Uptime = now.Sub(r.Since()).Seconds()
		ups, p50, p99 := r.Window(now, 10)
		o.Window.UnitsPerSecond, o.Window.P50Ms, o.Window.P99Ms = ups, ms(p50), ms(p99)
		o.Series = r.Series(now, 60)
		for i, p := range o.Series {
			if i >= len(o.Series)-10 {
				o.Window.Hits += p.Hits
				o.Window.Cacheable += p.Cacheable
			}
			for st, n := range p.Statuses {
				if st != cache.Hit && st != cache.Stale && st != cache.Miss {
					o.NotCached[string(st)] += n
				}
			}
		}
		o.Top = r.Shapes(10)
	}
	pools := c.entries()
	clients := c.clientsOf(pools)
	for _, n := range clients.byPool {
		o.Clients += n
	}
	for _, p := range pools {
		st := p.Pool.Stats()
		o.Pools = append(o.Pools, PoolView{Name: p.Name, User: p.user(), Protocol: p.Protocol, Clients: clients.of(p, pools), InUse: st.InUse,
			Idle: st.Idle, Waiting: st.Waiting, Max: p.Pool.MaxConns(), Paused: p.Pool.Paused(),
			Disabled: c.edge != nil && c.edge.Disabled(p.Database)})
	}
	if c.cfg.Tunnels != nil {
		for _, t := range c.cfg.Tunnels() {
			o.Tunnels = append(o.Tunnels, TunnelView{Pool: t.Pool, Region: t.Region, Transport: t.Transport, Addr: t.Addr,
				RTTMs: float64(t.RTT.Microseconds()) / 1000, Up: t.Up})
		}
	}
	return o
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Handle adds /api/overview and /api/queries (?limit=N, default all) to mux.
func (c *Console) Handle(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/overview", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, c.Overview(time.Now()))
	})
	mux.HandleFunc("GET /api/queries", func(w http.ResponseWriter, r *http.Request) {
		limit := 0
		if v := r.URL.Query().Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				http.Error(w, "limit: want a number of shapes", http.StatusBadRequest)
				return
			}
			limit = n
		}
		shapes := []insight.Shape{}
		if c.cfg.Insight != nil {
			shapes = c.cfg.Insight.Shapes(limit)
		}
		writeJSON(w, struct {
			Queries []insight.Shape `json:"queries"`
		}{shapes})
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(v)
}

// Protect wraps h: when open is false (the HTTP listener is not on loopback), the dashboard
// ("/"), /api/ and /debug/pprof/ need an admin or stats user's basic-auth credentials; the
// probes (/healthz) and /metrics stay open, as do the D1 and KV APIs, which have their token.
func (c *Console) Protect(h http.Handler, open bool) http.Handler {
	if open {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if p == "/" || strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/debug/pprof") {
			user, pass, ok := r.BasicAuth()
			if !ok || !c.checkHTTP(user, pass) {
				w.Header().Set("WWW-Authenticate", `Basic realm="slipstream", charset="UTF-8"`)
				http.Error(w, "admin credentials needed", http.StatusUnauthorized)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

func (c *Console) checkHTTP(user, pass string) bool {
	want, _, ok := c.Credentials(user)
	return ok && want != "" && subtle.ConstantTimeCompare([]byte(pass), []byte(want)) == 1
}
