package kv

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/slipstream-proxy/slipstream/backend/cfapi"
)

// Catalog is the set of KV namespaces that the REST API manages: the configured ones, and those
// created through the API, which live in the catalog's directory as ID.kv and are listed (with
// their titles) in its namespaces.json, so that they are served again after a restart. A
// namespace is found by its ID, as Cloudflare's API addresses it, or by its title, which is also
// the database name SQL clients connect to. A configured namespace's ID is derived from its
// name, so that it is the same on every start.
//
// Attach and Detach connect the catalog to whatever serves namespaces to SQL clients: a
// namespace created (or renamed) here is attached under its title before the API answers, and
// detached before it is deleted or renamed. All methods are safe for concurrent use.
type Catalog struct {
	cfg CatalogConfig
	cat *cfapi.Catalog[*catalogEntry]
}

// CatalogConfig configures a Catalog.
type CatalogConfig struct {
	// Dir holds the namespaces created through the API and their list; "" refuses creation.
	Dir string
	// Attach, when set, starts serving ns to SQL clients under title; an error fails the
	// creation or rename. Its text reaches the API client, so it says why in words a user can
	// act on and holds no secret.
	Attach func(title string, ns *Namespace) error
	// Detach, when set, stops serving title.
	Detach func(title string)
}

// catalogEntry is one namespace and what the API says about it; its exported fields are
// namespaces.json's.
type catalogEntry struct {
	ID        string    `json:"id"`
	Title     string    `json:"title"`
	CreatedAt time.Time `json:"created_at"`

	ns         *Namespace
	configured bool
}

func (e *catalogEntry) EntryID() string   { return e.ID }
func (e *catalogEntry) EntryName() string { return e.Title }
func (e *catalogEntry) Configured() bool  { return e.configured }

func (e *catalogEntry) Open(path string) error {
	ns, err := Open(path)
	if err != nil {
		return err
	}
	ns.SetName(e.Title)
	e.ns = ns
	return nil
}

func (e *catalogEntry) Close() {
	if e.ns != nil {
		e.ns.Close()
	}
}

// NewCatalog returns an empty catalog.
func NewCatalog(cfg CatalogConfig) *Catalog {
	kind := cfapi.Kind[*catalogEntry]{
		Dir: cfg.Dir, Prefix: "kv", ListFile: "namespaces.json", Ext: ".kv",
		Detach:        cfg.Detach,
		ErrNoCreate:   errNoCreate,
		ErrTaken:      errTitleTaken,
		ErrConfigured: errConfigured,
	}
	if cfg.Attach != nil {
		kind.Attach = func(e *catalogEntry) error { return cfg.Attach(e.Title, e.ns) }
	}
	return &Catalog{cfg: cfg, cat: cfapi.NewCatalog(kind)}
}

// Add adds a configured namespace, which the API serves but neither renames nor deletes.
func (c *Catalog) Add(name string, ns *Namespace) {
	sum := sha256.Sum256([]byte("slipstream kv namespace " + name))
	ns.SetName(name)
	c.cat.Add(&catalogEntry{ID: hex.EncodeToString(sum[:16]), Title: name, ns: ns, configured: true})
}

// Load opens and attaches the namespaces created through the API in an earlier run. One whose
// title a configured namespace now has is not served, but kept in the list (and on disk) for
// when the configuration changes again.
func (c *Catalog) Load() error {
	return c.cat.Load(func(e *catalogEntry) bool { return validID(e.ID) && validTitle(e.Title) == nil })
}

// lookup finds a namespace by ID or title.
func (c *Catalog) lookup(id string) (*catalogEntry, bool) { return c.cat.Lookup(id) }

// list returns every namespace, ordered by "id" or "title" (the default), descending if desc.
func (c *Catalog) list(order string, desc bool) []catalogEntry {
	var out []catalogEntry
	c.cat.Each(func(e *catalogEntry) { out = append(out, *e) })
	slices.SortFunc(out, func(a, b catalogEntry) int {
		n := strings.Compare(a.Title, b.Title)
		if order == "id" || n == 0 {
			n = strings.Compare(a.ID, b.ID)
		}
		if desc {
			return -n
		}
		return n
	})
	return out
}

// Errors of create, rename and remove, which the API reports as they are.
var (
	errNoCreate   = errors.New("creating namespaces is not enabled: there is no data directory")
	errTitleTaken = errors.New("a namespace with this account ID and title already exists")
	errConfigured = errors.New("the namespace is in the configuration file: change it there")
	errStorage    = cfapi.ErrStorage
)

// validTitle checks a title, which is also a database name for SQL clients.
func validTitle(t string) error {
	switch {
	case t == "":
		return errors.New("title is required")
	case len(t) > 512:
		return errors.New("title is longer than 512 bytes")
	case strings.ContainsFunc(t, func(r rune) bool { return unicode.IsControl(r) || r == '#' }):
		return errors.New("a title can't hold control characters or '#'")
	}
	return nil
}

func validID(id string) bool {
	b, err := hex.DecodeString(id)
	return err == nil && len(b) == 16 && strings.ToLower(id) == id
}

// create makes a new namespace in Dir, attaches it and adds it to the list.
func (c *Catalog) create(title string) (catalogEntry, error) {
	if c.cfg.Dir == "" {
		return catalogEntry{}, errNoCreate
	}
	if err := validTitle(title); err != nil {
		return catalogEntry{}, err
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	e := &catalogEntry{ID: hex.EncodeToString(b[:]), Title: title, CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}
	if err := c.cat.Create(e); err != nil {
		return catalogEntry{}, err
	}
	return c.snapshot(e), nil
}

// rename gives a namespace created through the API a new title, under which SQL clients reach
// it from then on.
func (c *Catalog) rename(e *catalogEntry, title string) (cur catalogEntry, err error) {
	if err := validTitle(title); err != nil {
		return catalogEntry{}, err
	}
	err = c.cat.With(func(save func() error) error {
		if e.Title == title {
			cur = *e
			return nil
		}
		if e.configured {
			return errConfigured
		}
		if _, taken := c.cat.LookupLocked(title); taken {
			return errTitleTaken
		}
		old := e.Title
		e.ns.SetName(title)
		if c.cfg.Attach != nil {
			if err := c.cfg.Attach(title, e.ns); err != nil {
				e.ns.SetName(old)
				return err
			}
		}
		e.Title = title
		if err := save(); err != nil {
			e.Title = old
			e.ns.SetName(old)
			if c.cfg.Detach != nil {
				c.cfg.Detach(title)
			}
			return fmt.Errorf("%w: %w", errStorage, err)
		}
		if c.cfg.Detach != nil {
			c.cfg.Detach(old)
		}
		cur = *e
		return nil
	})
	return cur, err
}

// remove detaches, closes and deletes a namespace created through the API.
func (c *Catalog) remove(e *catalogEntry) error { return c.cat.Remove(e) }

// snapshot is e as it stands, read under the lock that renames and updates take.
func (c *Catalog) snapshot(e *catalogEntry) (cur catalogEntry) {
	c.cat.With(func(func() error) error { cur = *e; return nil })
	return cur
}

// Close closes the namespaces created through the API or loaded from Dir; the configured ones
// are their opener's to close.
func (c *Catalog) Close() { c.cat.Close() }
