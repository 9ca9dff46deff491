package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Origin is a parsed origin URL: where the pool connects, and as whom.
type Origin struct {
	Scheme   string     // "postgres", "postgresql" or "mysql", as written
	Host     string     // host name or IP address, without IPv6 brackets
	Port     int        // 5432 (mysql: 3306) when the URL names none
	User     string     // unescaped
	Password string     // unescaped; empty when the URL has none
	Database string     // unescaped path without its leading slash
	Query    url.Values // libpq parameters such as sslmode, as given; empty when the URL has none
}

const (
	defaultPGPort    = 5432
	defaultMySQLPort = 3306
)

// sslModes are libpq's sslmode values. Checking them here turns a typo into a startup error
// instead of a connection failure at the first query.
var sslModes = []string{"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}

// mysqlTLSModes are the tls values of a mysql:// origin, as go-sql-driver/mysql takes them.
var mysqlTLSModes = []string{"true", "false", "skip-verify", "preferred"}

// ParseOrigin parses a postgres:// or postgresql:// URL, as libpq and pgx accept it, or a
// mysql:// URL (mysql://USER:PASSWORD@HOST:PORT/DB?tls=true|false|skip-verify|preferred), with
// the user, host and database in their URL places. It reports every problem together
// (errors.Join), each starting with "origin", and no message holds the password. When a
// postgres URL parses but is incomplete, the returned Origin still carries the parts it has,
// so that Normalize can derive defaults and Validate can name the database.
func ParseOrigin(raw string) (Origin, error) {
	if raw == "" {
		return Origin{}, errors.New("origin is empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return Origin{}, urlError(raw, err)
	}
	// Without the right scheme the other parts mean nothing (a "host=h password=x" string
	// parses as a path), so none of them is returned or checked.
	switch u.Scheme {
	case "postgres", "postgresql", "mysql":
	case SchemePlanetScale:
		ps, err := ParsePlanetScaleOrigin(raw)
		return Origin{Scheme: SchemePlanetScale, Host: ps.Org, Database: ps.Database}, err
	case "":
		return Origin{}, errors.New("origin has no scheme: want postgres://USER:PASSWORD@HOST:PORT/DATABASE")
	default:
		return Origin{}, fmt.Errorf("origin scheme %q is not supported: use postgres://, postgresql:// or mysql://", u.Scheme)
	}
	if u.Opaque != "" {
		// "postgres:app@host/db": the opaque part may hold a password, so it is not shown.
		return Origin{}, errors.New("origin is not a URL with an authority: want postgres://USER:PASSWORD@HOST:PORT/DATABASE")
	}
	var problems []error

	o := Origin{
		Scheme:   u.Scheme,
		Host:     u.Hostname(),
		Port:     defaultPGPort,
		Database: strings.TrimPrefix(u.Path, "/"),
	}
	if o.Scheme == "mysql" {
		o.Port = defaultMySQLPort
	}
	if u.User != nil {
		o.User = u.User.Username()
		o.Password, _ = u.User.Password()
	}
	if o.User == "" {
		problems = append(problems, errors.New("origin has no user: want postgres://USER:PASSWORD@HOST:PORT/DATABASE"))
	}
	if o.Host == "" {
		problems = append(problems, errors.New("origin has no host"))
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			problems = append(problems, fmt.Errorf("origin port %s is out of range 1-65535", p))
		} else {
			o.Port = n
		}
	}
	if o.Database == "" {
		problems = append(problems, errors.New("origin has no database: add it as the URL path, /DATABASE"))
	}
	// The query may hold password=, so a malformed one is reported without its text.
	if o.Query, err = url.ParseQuery(u.RawQuery); err != nil {
		problems = append(problems, errors.New("origin query is not valid URL encoding"))
	}
	if mode, ok := o.Query["sslmode"]; ok && o.Scheme != "mysql" && !slices.Contains(sslModes, mode[0]) {
		problems = append(problems, fmt.Errorf("origin sslmode %q is not one of %s", mode[0], strings.Join(sslModes, ", ")))
	}
	if mode, ok := o.Query["tls"]; ok && o.Scheme == "mysql" && !slices.Contains(mysqlTLSModes, mode[0]) {
		problems = append(problems, fmt.Errorf("origin tls %q is not one of %s", mode[0], strings.Join(mysqlTLSModes, ", ")))
	}
	return o, errors.Join(problems...)
}

// urlError explains a url.Parse failure. net/url quotes pieces of the input, and a password
// with an unescaped '/' or '@' ends up in those pieces ("invalid port \":s3cret\""), so the
// details are kept only for URLs with nothing to hide.
func urlError(raw string, err error) error {
	if RedactURL(raw) != raw {
		return errors.New("origin is not a valid URL: percent-encode special characters in the user name and password (@ is %40, / is %2F, : is %3A)")
	}
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	return fmt.Errorf("origin is not a valid URL: %v", err)
}

// String returns the origin as a URL with the password replaced by "xxxxx".
func (o Origin) String() string {
	u := url.URL{Scheme: o.Scheme, Host: net.JoinHostPort(o.Host, strconv.Itoa(o.Port)), Path: "/" + o.Database, RawQuery: o.Query.Encode()}
	switch {
	case o.Password != "":
		u.User = url.UserPassword(o.User, redacted)
	case o.User != "":
		u.User = url.User(o.User)
	}
	return RedactURL(u.String())
}

const redacted = "xxxxx"

// passwordParam matches password= and sslpassword= in a URL query or a key=value connection
// string, up to the end of the value (a quoted value, or up to whitespace or '&').
var passwordParam = regexp.MustCompile(`(?i)(password\s*=\s*)('[^']*'|[^\s&]*)`)

// RedactURL returns a connection URL fit to print: the password in the user info and any
// password= or sslpassword= parameter are replaced by "xxxxx". A string that does not parse
// as a URL is redacted conservatively: everything between the first ':' after "://" and the
// last '@' goes, even if that hides more than the password.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" || !strings.Contains(raw, "://") {
		return redactUnparsed(raw)
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), redacted)
	}
	u.RawQuery = passwordParam.ReplaceAllString(u.RawQuery, "${1}"+redacted)
	return u.String()
}

func redactUnparsed(raw string) string {
	if scheme, rest, ok := strings.Cut(raw, "://"); ok {
		if at := strings.LastIndexByte(rest, '@'); at >= 0 {
			if colon := strings.IndexByte(rest[:at], ':'); colon >= 0 {
				rest = rest[:colon+1] + redacted + rest[at:]
			}
		}
		raw = scheme + "://" + rest
	} else if colon, at := strings.IndexByte(raw, ':'), strings.LastIndexByte(raw, '@'); colon >= 0 && colon < at {
		// "postgres:app:s3cret@host/db", an opaque URL.
		if c2 := strings.IndexByte(raw[colon+1:at], ':'); c2 >= 0 {
			raw = raw[:colon+1+c2+1] + redacted + raw[at:]
		}
	}
	return passwordParam.ReplaceAllString(raw, "${1}"+redacted)
}

// ConnString returns the drop-in connection string for clients of this database:
// postgres://USER:PASSWORD@HOST:PORT/NAME (mysql:// for kind mysql) with every part
// URL-escaped. Pass the listener's
// bound address (ln.Addr().String()); a wildcard host becomes loopback (0.0.0.0 or empty ->
// 127.0.0.1, :: -> [::1]). It has no sslmode: that is the client's choice. The result holds
// the client password: show it to the operator, never log it (RedactURL it for that).
func (d Database) ConnString(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil { // Validate refuses such a pg_listen; fall back to the default port
		_, port, _ = net.SplitHostPort(defaultPGListen)
		host = listen
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	scheme := "postgres"
	if d.Kind == KindMySQL {
		scheme = "mysql"
	}
	u := url.URL{
		Scheme:  scheme,
		Host:    net.JoinHostPort(host, port),
		Path:    "/" + d.Name,
		RawPath: "/" + url.PathEscape(d.Name),
	}
	if d.Password != "" {
		u.User = url.UserPassword(d.User, d.Password)
	} else {
		u.User = url.User(d.User)
	}
	return u.String()
}

// OriginURL returns the origin URL exactly as configured, password included: it is for
// connecting, never for printing (see RedactURL).
func (d Database) OriginURL() string { return d.Origin }
