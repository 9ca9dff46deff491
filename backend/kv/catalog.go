package kv

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
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

	mu     sync.Mutex
	byID   map[string]*catalogEntry
	hidden []*catalogEntry // created, but shadowed by a configured namespace of their title
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

type catalogEntry struct {
	ID        string    `json:"id"`
	Title     string    `json:"title"`
	CreatedAt time.Time `json:"created_at"`

	ns         *Namespace
	configured bool
}

// NewCatalog returns an empty catalog.
func NewCatalog(cfg CatalogConfig) *Catalog {
	return &Catalog{cfg: cfg, byID: map[string]*catalogEntry{}}
}

// Add adds a configured namespace, which the API serves but neither renames nor deletes.
func (c *Catalog) Add(name string, ns *Namespace) {
	sum := sha256.Sum256([]byte("slipstream kv namespace " + name))
	ns.SetName(name)
	c.mu.Lock()
	defer c.mu.Unlock()
	e := &catalogEntry{ID: hex.EncodeToString(sum[:16]), Title: name, ns: ns, configured: true}
	c.byID[e.ID] = e
}

const listFile = "namespaces.json"

func (c *Catalog) path(id string) string { return filepath.Join(c.cfg.Dir, id+".kv") }

// Load opens and attaches the namespaces created through the API in an earlier run. One whose
// title a configured namespace now has is not served, but kept in the list (and on disk) for
// when the configuration changes again.
func (c *Catalog) Load() error {
	if c.cfg.Dir == "" {
		return nil
	}
	file := filepath.Join(c.cfg.Dir, listFile)
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("kv: catalog: %w", err)
	}
	var list []*catalogEntry
	if err := json.Unmarshal(b, &list); err != nil {
		return fmt.Errorf("kv: catalog %s: %w", file, err)
	}
	for _, e := range list {
		if !validID(e.ID) || validTitle(e.Title) != nil {
			return fmt.Errorf("kv: catalog %s: bad entry %q", file, e.ID)
		}
		c.mu.Lock()
		_, taken := c.lookupLocked(e.Title)
		if taken {
			c.hidden = append(c.hidden, e)
		}
		c.mu.Unlock()
		if taken {
			continue
		}
		ns, err := Open(c.path(e.ID))
		if err != nil {
			return err
		}
		ns.SetName(e.Title)
		if c.cfg.Attach != nil {
			if err := c.cfg.Attach(e.Title, ns); err != nil {
				ns.Close()
				return fmt.Errorf("kv: namespace %s: %w", e.Title, err)
			}
		}
		e.ns = ns
		c.mu.Lock()
		c.byID[e.ID] = e
		c.mu.Unlock()
	}
	return nil
}

// lookup finds a namespace by ID or title.
func (c *Catalog) lookup(id string) (*catalogEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lookupLocked(id)
}

func (c *Catalog) lookupLocked(id string) (*catalogEntry, bool) {
	if e, ok := c.byID[id]; ok {
		return e, true
	}
	for _, e := range c.byID {
		if e.Title == id {
			return e, true
		}
	}
	return nil, false
}

// list returns every namespace, ordered by "id" or "title" (the default), descending if desc.
func (c *Catalog) list(order string, desc bool) []catalogEntry {
	c.mu.Lock()
	out := make([]catalogEntry, 0, len(c.byID))
	for _, e := range c.byID {
		out = append(out, *e)
	}
	c.mu.Unlock()
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
	errStorage    = errors.New("the data directory could not be written")
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
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, taken := c.lookupLocked(title); taken {
		return catalogEntry{}, errTitleTaken
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	e := &catalogEntry{ID: hex.EncodeToString(b[:]), Title: title, CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}
	ns, err := Open(c.path(e.ID))
	if err != nil {
		return catalogEntry{}, fmt.Errorf("%w: %w", errStorage, err)
	}
	ns.SetName(title)
	if c.cfg.Attach != nil {
		if err := c.cfg.Attach(title, ns); err != nil {
			ns.Close()
			removeFiles(c.path(e.ID))
			return catalogEntry{}, err
		}
	}
	e.ns = ns
	c.byID[e.ID] = e
	if err := c.saveLocked(); err != nil {
		delete(c.byID, e.ID)
		if c.cfg.Detach != nil {
			c.cfg.Detach(title)
		}
		ns.Close()
		removeFiles(c.path(e.ID))
		return catalogEntry{}, fmt.Errorf("%w: %w", errStorage, err)
	}
	return *e, nil
}

// rename gives a namespace created through the API a new title, under which SQL clients reach
// it from then on.
func (c *Catalog) rename(e *catalogEntry, title string) (catalogEntry, error) {
	if err := validTitle(title); err != nil {
		return catalogEntry{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.Title == title {
		return *e, nil
	}
	if e.configured {
		return catalogEntry{}, errConfigured
	}
	if _, taken := c.lookupLocked(title); taken {
		return catalogEntry{}, errTitleTaken
	}
	old := e.Title
	e.ns.SetName(title)
	if c.cfg.Attach != nil {
		if err := c.cfg.Attach(title, e.ns); err != nil {
			e.ns.SetName(old)
			return catalogEntry{}, err
		}
	}
	e.Title = title
	if err := c.saveLocked(); err != nil {
		e.Title = old
		e.ns.SetName(old)
		if c.cfg.Detach != nil {
			c.cfg.Detach(title)
		}
		return catalogEntry{}, fmt.Errorf("%w: %w", errStorage, err)
	}
	if c.cfg.Detach != nil {
		c.cfg.Detach(old)
	}
	return *e, nil
}

// remove detaches, closes and deletes a namespace created through the API.
func (c *Catalog) remove(e *catalogEntry) error {
	if e.configured {
		return errConfigured
	}
	c.mu.Lock()
	if c.byID[e.ID] != e {
		c.mu.Unlock()
		return nil // removed meanwhile
	}
	delete(c.byID, e.ID)
	if err := c.saveLocked(); err != nil {
		c.byID[e.ID] = e
		c.mu.Unlock()
		return fmt.Errorf("%w: %w", errStorage, err)
	}
	title := e.Title
	c.mu.Unlock()
	if c.cfg.Detach != nil {
		c.cfg.Detach(title)
	}
	e.ns.Close()
	removeFiles(c.path(e.ID))
	return nil
}

// saveLocked writes the list of created namespaces; c.mu is held.
func (c *Catalog) saveLocked() error {
	list := slices.Clone(c.hidden)
	for _, e := range c.byID {
		if !e.configured {
			list = append(list, e)
		}
	}
	slices.SortFunc(list, func(a, b *catalogEntry) int { return strings.Compare(a.ID, b.ID) })
	b, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return err
	}
	return cfapi.WriteFileAtomic(filepath.Join(c.cfg.Dir, listFile), b)
}

// removeFiles deletes a SQLite database and its WAL and shared-memory files.
func removeFiles(path string) {
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(path + suffix)
	}
}

// snapshot is e as it stands, read under the lock that renames and updates take.
func (c *Catalog) snapshot(e *catalogEntry) catalogEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return *e
}

// Close closes the namespaces created through the API or loaded from Dir; the configured ones
// are their opener's to close.
func (c *Catalog) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.byID {
		if !e.configured && e.ns != nil {
			e.ns.Close()
		}
	}
}
