package cfapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// Entry is one store (a D1 database, a KV namespace) in a Catalog, with what its list file says
// of it. A backend's entry is a pointer to a struct whose exported fields are the list file's
// JSON; the methods reach what the catalog needs without knowing the struct.
type Entry interface {
	comparable
	// EntryID is the identifier the API addresses it by (D1's UUID, KV's ID), unique.
	EntryID() string
	// EntryName is the name SQL clients connect to (D1's name, KV's title), unique.
	EntryName() string
	// Configured reports whether it comes from the configuration file: served, but neither
	// renamed nor deleted through the API, and not in the list file.
	Configured() bool
	// Open opens its store at path, under its name.
	Open(path string) error
	// Close closes its store, if open.
	Close()
}

// Kind describes the stores a Catalog holds.
type Kind[E Entry] struct {
	// Dir holds the stores created through the API and their list; "" refuses creation.
	Dir string
	// Prefix starts the errors of Load: "d1", "kv".
	Prefix string
	// ListFile is the list's name in Dir; Ext ends a store's file name after its ID.
	ListFile, Ext string
	// NameFirst makes Lookup try names before IDs (D1's order); else IDs first (KV's).
	NameFirst bool
	// Attach, when set, starts serving an opened entry to SQL clients under its name; an error
	// fails the creation. Detach, when set, stops serving a name.
	Attach func(e E) error
	Detach func(name string)
	// The errors Create and Remove report, in the backend's words.
	ErrNoCreate, ErrTaken, ErrConfigured error
}

// ErrStorage is a failure to write the data directory; the API reports it as it is.
var ErrStorage = errors.New("the data directory could not be written")

// Catalog is the set of stores a REST API manages: the configured ones, and those created
// through the API, which live in Dir as ID+Ext and are listed in Dir/ListFile, so that they
// are served again after a restart. A created store whose name a configured one now has is not
// served, but kept in the list (and on disk) for when the configuration changes again. All
// methods are safe for concurrent use.
type Catalog[E Entry] struct {
	kind Kind[E]

	mu      sync.Mutex
	entries []E // served, in no order
	hidden  []E // created, but shadowed by a configured store of their name
}

// NewCatalog returns an empty catalog.
func NewCatalog[E Entry](kind Kind[E]) *Catalog[E] { return &Catalog[E]{kind: kind} }

// Path is where an entry created through the API keeps its store.
func (c *Catalog[E]) Path(id string) string { return filepath.Join(c.kind.Dir, id+c.kind.Ext) }

// Add adds a configured entry, whose store is open.
func (c *Catalog[E]) Add(e E) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries = append(c.entries, e)
}

// Load opens and attaches the entries created through the API in an earlier run; valid checks
// each as the list file has it.
func (c *Catalog[E]) Load(valid func(E) bool) error {
	if c.kind.Dir == "" {
		return nil
	}
	file := filepath.Join(c.kind.Dir, c.kind.ListFile)
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: catalog: %w", c.kind.Prefix, err)
	}
	var list []E
	if err := json.Unmarshal(b, &list); err != nil {
		return fmt.Errorf("%s: catalog %s: %w", c.kind.Prefix, file, err)
	}
	for _, e := range list {
		if !valid(e) {
			return fmt.Errorf("%s: catalog %s: bad entry %q", c.kind.Prefix, file, e.EntryName())
		}
		c.mu.Lock()
		_, taken := c.LookupLocked(e.EntryName())
		if taken {
			c.hidden = append(c.hidden, e)
		}
		c.mu.Unlock()
		if taken {
			continue
		}
		if err := e.Open(c.Path(e.EntryID())); err != nil {
			return err
		}
		if c.kind.Attach != nil {
			if err := c.kind.Attach(e); err != nil {
				e.Close()
				return fmt.Errorf("%s: %s: %w", c.kind.Prefix, e.EntryName(), err)
			}
		}
		c.mu.Lock()
		c.entries = append(c.entries, e)
		c.mu.Unlock()
	}
	return nil
}

// Lookup finds an entry by ID or name.
func (c *Catalog[E]) Lookup(id string) (E, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.LookupLocked(id)
}

// LookupLocked is Lookup inside With.
func (c *Catalog[E]) LookupLocked(id string) (E, bool) {
	byName := func(e E) bool { return e.EntryName() == id }
	byID := func(e E) bool { return e.EntryID() == id }
	first, then := byID, byName
	if c.kind.NameFirst {
		first, then = byName, byID
	}
	for _, match := range []func(E) bool{first, then} {
		if i := slices.IndexFunc(c.entries, match); i >= 0 {
			return c.entries[i], true
		}
	}
	var none E
	return none, false
}

// Each calls f for every entry, with the catalog locked (f reads what renames and updates
// change safely).
func (c *Catalog[E]) Each(f func(E)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.entries {
		f(e)
	}
}

// With runs f with the catalog locked; f calls save to write the list after a change.
func (c *Catalog[E]) With(f func(save func() error) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return f(c.saveLocked)
}

// Create opens a new entry's store in Dir, attaches it and adds it to the list. The caller
// has checked its name and given it a fresh ID.
func (c *Catalog[E]) Create(e E) error {
	if c.kind.Dir == "" {
		return c.kind.ErrNoCreate
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, taken := c.LookupLocked(e.EntryName()); taken {
		return c.kind.ErrTaken
	}
	path := c.Path(e.EntryID())
	if err := e.Open(path); err != nil {
		return fmt.Errorf("%w: %w", ErrStorage, err)
	}
	if c.kind.Attach != nil {
		if err := c.kind.Attach(e); err != nil {
			e.Close()
			removeFiles(path)
			return err
		}
	}
	c.entries = append(c.entries, e)
	if err := c.saveLocked(); err != nil {
		c.entries = c.entries[:len(c.entries)-1]
		if c.kind.Detach != nil {
			c.kind.Detach(e.EntryName())
		}
		e.Close()
		removeFiles(path)
		return fmt.Errorf("%w: %w", ErrStorage, err)
	}
	return nil
}

// Remove detaches, closes and deletes an entry created through the API.
func (c *Catalog[E]) Remove(e E) error {
	if e.Configured() {
		return c.kind.ErrConfigured
	}
	c.mu.Lock()
	i := slices.Index(c.entries, e)
	if i < 0 {
		c.mu.Unlock()
		return nil // removed meanwhile
	}
	c.entries = slices.Delete(c.entries, i, i+1)
	if err := c.saveLocked(); err != nil {
		c.entries = slices.Insert(c.entries, i, e)
		c.mu.Unlock()
		return fmt.Errorf("%w: %w", ErrStorage, err)
	}
	name := e.EntryName()
	c.mu.Unlock()
	if c.kind.Detach != nil {
		c.kind.Detach(name)
	}
	e.Close()
	removeFiles(c.Path(e.EntryID()))
	return nil
}

// saveLocked writes the list of created entries, by ID, atomically; c.mu is held.
func (c *Catalog[E]) saveLocked() error {
	list := slices.Clone(c.hidden)
	for _, e := range c.entries {
		if !e.Configured() {
			list = append(list, e)
		}
	}
	slices.SortFunc(list, func(a, b E) int { return strings.Compare(a.EntryID(), b.EntryID()) })
	b, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return err
	}
	return WriteFileAtomic(filepath.Join(c.kind.Dir, c.kind.ListFile), b)
}

// Close closes the stores created through the API or loaded from Dir; the configured ones are
// their opener's to close.
func (c *Catalog[E]) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.entries {
		if !e.Configured() {
			e.Close()
		}
	}
}

// removeFiles deletes a SQLite database and its WAL and shared-memory files.
func removeFiles(path string) {
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(path + suffix)
	}
}
