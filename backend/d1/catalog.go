package d1

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

	"github.com/slipstream-proxy/slipstream/backend/cfapi"
)

// Catalog is the set of D1 databases that the HTTP API manages: the configured ones, and those
// created through the API, which live in the catalog's directory as UUID.sqlite and are listed
// in its databases.json, so that they are served again after a restart. A database is found by
// its name or its UUID, as Cloudflare's API addresses it. A configured database's UUID is
// derived from its name, so that it is the same on every start.
//
// Attach and Detach connect the catalog to whatever serves databases to clients: a database
// created here is attached before the API answers, so that it is usable at once over SQL, and
// detached before it is deleted. All methods are safe for concurrent use.
type Catalog struct {
	cfg CatalogConfig

	mu     sync.Mutex
	byName map[string]*catalogEntry
	hidden []*catalogEntry // created, but shadowed by a configured database of their name
}

// CatalogConfig configures a Catalog.
type CatalogConfig struct {
	// Dir holds the databases created through the API and their list; "" refuses creation.
	Dir string
	// Attach, when set, starts serving a database created through the API (or reopened from
	// Dir on Load) under name; an error fails the creation and closes db. Its text reaches the
	// API client, so it says why in words a user can act on and holds no secret.
	Attach func(name string, db *DB) error
	// Detach, when set, stops serving name before the database is closed and deleted.
	Detach func(name string)
}

// catalogEntry is one database and what the API says about it.
type catalogEntry struct {
	UUID            string    `json:"uuid"`
	Name            string    `json:"name"`
	CreatedAt       time.Time `json:"created_at"`
	ReadReplication string    `json:"read_replication"` // "disabled" or "auto"

	db         *DB
	configured bool // from the configuration file: not deleted through the API
}

// NewCatalog returns an empty catalog.
func NewCatalog(cfg CatalogConfig) *Catalog {
	return &Catalog{cfg: cfg, byName: map[string]*catalogEntry{}}
}

// Add adds a configured database, which the API serves but does not delete.
func (c *Catalog) Add(name string, db *DB) {
	created := time.Now().UTC()
	if fi, err := os.Stat(db.path); err == nil {
		created = fi.ModTime().UTC()
	}
	db.SetName(name)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.byName[name] = &catalogEntry{UUID: derivedUUID(name), Name: name, CreatedAt: created, ReadReplication: "disabled", db: db, configured: true}
}

// Load opens and attaches the databases created through the API in an earlier run. A name that
// is configured now wins over a created database of that name, which is then not served but
// kept in the list (and on disk) for when the configuration changes again.
func (c *Catalog) Load() error {
	if c.cfg.Dir == "" {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(c.cfg.Dir, listFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("d1: catalog: %w", err)
	}
	var list []*catalogEntry
	if err := json.Unmarshal(b, &list); err != nil {
		return fmt.Errorf("d1: catalog %s: %w", filepath.Join(c.cfg.Dir, listFile), err)
	}
	for _, e := range list {
		if !validName(e.Name) || !validUUID(e.UUID) {
			return fmt.Errorf("d1: catalog %s: bad entry %q", filepath.Join(c.cfg.Dir, listFile), e.Name)
		}
		c.mu.Lock()
		_, taken := c.byName[e.Name]
		if taken {
			c.hidden = append(c.hidden, e)
		}
		c.mu.Unlock()
		if taken {
			continue
		}
		db, err := Open(c.path(e.UUID))
		if err != nil {
			return err
		}
		db.SetName(e.Name)
		if c.cfg.Attach != nil {
			if err := c.cfg.Attach(e.Name, db); err != nil {
				db.Close()
				return fmt.Errorf("d1: database %s: %w", e.Name, err)
			}
		}
		e.db = db
		c.mu.Lock()
		c.byName[e.Name] = e
		c.mu.Unlock()
	}
	return nil
}

// listFile is the list of created databases in Dir.
const listFile = "databases.json"

func (c *Catalog) path(uuid string) string { return filepath.Join(c.cfg.Dir, uuid+".sqlite") }

// lookup finds a database by name or UUID.
func (c *Catalog) lookup(id string) (*catalogEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byName[id]; ok {
		return e, true
	}
	for _, e := range c.byName {
		if e.UUID == id {
			return e, true
		}
	}
	return nil, false
}

// list returns the databases whose name contains name (all for ""), by name.
func (c *Catalog) list(name string) []catalogEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []catalogEntry
	for _, e := range c.byName {
		if strings.Contains(e.Name, name) {
			out = append(out, *e)
		}
	}
	slices.SortFunc(out, func(a, b catalogEntry) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Errors of create and remove, which the API reports as they are.
var (
	errNoCreate   = errors.New("creating databases is not enabled: there is no data directory")
	errBadName    = errors.New("a database name is 1 to 64 letters, digits, '-' or '_'")
	errNameTaken  = errors.New("a database with that name already exists")
	errConfigured = errors.New("the database is in the configuration file: remove it there")
	errStorage    = errors.New("the data directory could not be written")
)

// create makes a new database in Dir, attaches it and adds it to the list.
func (c *Catalog) create(name string) (catalogEntry, error) {
	if c.cfg.Dir == "" {
		return catalogEntry{}, errNoCreate
	}
	if !validName(name) {
		return catalogEntry{}, errBadName
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, taken := c.byName[name]; taken {
		return catalogEntry{}, errNameTaken
	}
	e := &catalogEntry{UUID: randomUUID(), Name: name, CreatedAt: time.Now().UTC().Truncate(time.Millisecond), ReadReplication: "disabled"}
	db, err := Open(c.path(e.UUID))
	if err != nil {
		return catalogEntry{}, fmt.Errorf("%w: %w", errStorage, err)
	}
	db.SetName(name)
	if c.cfg.Attach != nil {
		if err := c.cfg.Attach(name, db); err != nil {
			db.Close()
			removeFiles(c.path(e.UUID))
			return catalogEntry{}, err
		}
	}
	e.db = db
	c.byName[name] = e
	if err := c.saveLocked(); err != nil {
		delete(c.byName, name)
		if c.cfg.Detach != nil {
			c.cfg.Detach(name)
		}
		db.Close()
		removeFiles(c.path(e.UUID))
		return catalogEntry{}, fmt.Errorf("%w: %w", errStorage, err)
	}
	return *e, nil
}

// remove detaches, closes and deletes a database created through the API.
func (c *Catalog) remove(e *catalogEntry) error {
	if e.configured {
		return errConfigured
	}
	c.mu.Lock()
	if c.byName[e.Name] != e {
		c.mu.Unlock()
		return nil // removed meanwhile
	}
	delete(c.byName, e.Name)
	err := c.saveLocked()
	if err != nil {
		c.byName[e.Name] = e
	}
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("%w: %w", errStorage, err)
	}
	if c.cfg.Detach != nil {
		c.cfg.Detach(e.Name)
	}
	e.db.Close()
	removeFiles(c.path(e.UUID))
	return nil
}

// setReplication records a database's read replication mode.
func (c *Catalog) setReplication(e *catalogEntry, mode string) (catalogEntry, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e.ReadReplication = mode
	if e.configured {
		return *e, nil
	}
	return *e, c.saveLocked()
}

// saveLocked writes the list of created databases, atomically; c.mu is held.
func (c *Catalog) saveLocked() error {
	list := slices.Clone(c.hidden)
	for _, e := range c.byName {
		if !e.configured {
			list = append(list, e)
		}
	}
	slices.SortFunc(list, func(a, b *catalogEntry) int { return strings.Compare(a.Name, b.Name) })
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

func validName(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

func validUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if r != '-' {
				return false
			}
		} else if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}

// randomUUID is a version 4 UUID.
func randomUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return formatUUID(b, 4)
}

// derivedUUID is a version 5-style UUID (SHA-256 rather than SHA-1) of a configured name.
func derivedUUID(name string) string {
	sum := sha256.Sum256([]byte("slipstream d1 database " + name))
	return formatUUID([16]byte(sum[:16]), 5)
}

func formatUUID(b [16]byte, version byte) string {
	b[6] = b[6]&0x0f | version<<4
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// snapshot is e as it stands, read under the lock that renames and updates take.
func (c *Catalog) snapshot(e *catalogEntry) catalogEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return *e
}

// Close closes the databases created through the API or loaded from Dir; the configured ones
// are their opener's to close.
func (c *Catalog) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.byName {
		if !e.configured && e.db != nil {
			e.db.Close()
		}
	}
}
