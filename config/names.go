package config

import "strings"

// SplitOriginFlag splits the value of an --origin flag, [NAME=]URL, into the database's name
// (empty when the value has none) and the origin URL. NAME= is recognised only before the
// URL's "://", so that a query such as ?sslmode=require stays part of the URL.
func SplitOriginFlag(v string) (name, origin string) {
	scheme := strings.Index(v, "://")
	eq := strings.IndexByte(v, '=')
	if eq < 0 || (scheme >= 0 && eq > scheme) {
		return "", v
	}
	return v[:eq], v[eq+1:]
}

// protocols reports which client listeners serve d: a MySQL database only MySQL clients, an
// embedded one both, any other only PostgreSQL clients. Two databases may share a name when
// no listener serves both of them.
func (d Database) protocols() (pg, mysql bool) {
	switch {
	case d.Embedded():
		return true, true
	case d.Kind == KindMySQL:
		return false, true
	case d.Kind == "":
		// Not normalized yet (MergeOrigins): the origin's scheme says.
		o, _ := ParseOrigin(d.Origin)
		return o.Scheme != "mysql", o.Scheme == "mysql"
	}
	return true, false
}

// sharesListener reports whether a client listener serves both d and e.
func (d Database) sharesListener(e Database) bool {
	dpg, dmy := d.protocols()
	epg, emy := e.protocols()
	return dpg && epg || dmy && emy
}

// TunnelName is the name an edge and its pool know database d by: its Name, except for a MySQL
// database that shares its name with a database PostgreSQL clients reach, which is NAME#mysql
// (the name the MySQL side of an embedded database has too). d must be one of c.Databases, and
// c normalized.
func (c Config) TunnelName(d Database) string {
	if d.Kind != KindMySQL {
		return d.Name
	}
	for _, e := range c.Databases {
		if e.Name == d.Name && e.Kind != KindMySQL {
			return d.Name + "#mysql"
		}
	}
	return d.Name
}
