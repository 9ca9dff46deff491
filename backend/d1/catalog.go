package d1

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"slices"
	"strings"
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
	dir string
	cat *cfapi.Catalog[*catalogEntry]
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

// catalogEntry is one database and what the API says about it; its exported fields are
// databases.json's.
type catalogEntry struct {
	UUID            string    `json:"uuid"`
	Name            string    `json:"name"`
	CreatedAt       time.Time `json:"created_at"`
	ReadReplication string    `json:"read_replication"` // "disabled" or "auto"

	db         *DB
	configured bool // from the configuration file: not deleted through the API
}

func (e *catalogEntry) EntryID() string   { return e.UUID }
func (e *catalogEntry) EntryName() string { return e.Name }
func (e *catalogEntry) Configured() bool  { return e.configured }

func (e *catalogEntry) Open(path string) error {
	db, err := Open(path)
	if err != nil {
		return err
	}
	db.SetName(e.Name)
	e.db = db
	return nil
}

func (e *catalogEntry) Close() {
	if e.db != nil {
		e.db.Close()
	}
}

// NewCatalog returns an empty catalog.
func NewCatalog(cfg CatalogConfig) *Catalog {
	kind := cfapi.Kind[*catalogEntry]{
		Dir: cfg.Dir, Prefix: "d1", ListFile: "databases.json", Ext: ".sqlite", NameFirst: true,
		Detach:        cfg.Detach,
		ErrNoCreate:   errNoCreate,
		ErrTaken:      errNameTaken,
		ErrConfigured: errConfigured,
	}
	if cfg.Attach != nil {
		kind.Attach = func(e *catalogEntry) error { return cfg.Attach(e.Name, e.db) }
	}
	return &Catalog{dir: cfg.Dir, cat: cfapi.NewCatalog(kind)}
}

// Add adds a configured database, which the API serves but does not delete.
func (c *Catalog) Add(name string, db *DB) {
	created := time.Now().UTC()
	if fi, err := os.Stat(db.path); err == nil {
		created = fi.ModTime().UTC()
	}
	db.SetName(name)
	c.cat.Add(&catalogEntry{UUID: derivedUUID(name), Name: name, CreatedAt: created, ReadReplication: "disabled", db: db, configured: true})
}

// Load opens and attaches the databases created through the API in an earlier run. A name that
// is configured now wins over a created database of that name, which is then not served but
// kept in the list (and on disk) for when the configuration changes again.
func (c *Catalog) Load() error {
	return c.cat.Load(func(e *catalogEntry) bool { return validName(e.Name) && validUUID(e.UUID) })
}

// lookup finds a database by name or UUID.
func (c *Catalog) lookup(id string) (*catalogEntry, bool) { return c.cat.Lookup(id) }

// list returns the databases whose name contains name (all for ""), by name.
func (c *Catalog) list(name string) []catalogEntry {
	var out []catalogEntry
	c.cat.Each(func(e *catalogEntry) {
		if strings.Contains(e.Name, name) {
			out = append(out, *e)
		}
	})
	slices.SortFunc(out, func(a, b catalogEntry) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Errors of create and remove, which the API reports as they are.
var (
	errNoCreate   = errors.New("creating databases is not enabled: there is no data directory")
	errBadName    = errors.New("a database name is 1 to 64 letters, digits, '-' or '_'")
	errNameTaken  = errors.New("a database with that name already exists")
	errConfigured = errors.New("the database is in the configuration file: remove it there")
	errStorage    = cfapi.ErrStorage
)

// create makes a new database in Dir, attaches it and adds it to the list.
func (c *Catalog) create(name string) (catalogEntry, error) {
	if c.dir == "" {
		return catalogEntry{}, errNoCreate
	}
	if !validName(name) {
		return catalogEntry{}, errBadName
	}
	e := &catalogEntry{UUID: randomUUID(), Name: name, CreatedAt: time.Now().UTC().Truncate(time.Millisecond), ReadReplication: "disabled"}
	if err := c.cat.Create(e); err != nil {
		return catalogEntry{}, err
	}
	return c.snapshot(e), nil
}

// remove detaches, closes and deletes a database created through the API.
func (c *Catalog) remove(e *catalogEntry) error { return c.cat.Remove(e) }

// setReplication records a database's read replication mode.
func (c *Catalog) setReplication(e *catalogEntry, mode string) (cur catalogEntry, err error) {
	err = c.cat.With(func(save func() error) error {
		e.ReadReplication = mode
		cur = *e
		if e.configured {
			return nil
		}
		return save()
	})
	return cur, err
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
func (c *Catalog) snapshot(e *catalogEntry) (cur catalogEntry) {
	c.cat.With(func(func() error) error { cur = *e; return nil })
	return cur
}

// Close closes the databases created through the API or loaded from Dir; the configured ones
// are their opener's to close.
func (c *Catalog) Close() { c.cat.Close() }
