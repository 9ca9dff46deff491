package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
)

// ReadSecretFiles fills APIToken from APITokenFile and each database's Password from its
// PasswordFile, as mounted Kubernetes secrets and systemd credentials provide them. A
// database whose origin URL has no password gets the file's as the origin's password too.
// Call it before Normalize, which takes the origin's password as the default of Password.
// Errors name the setting and the file, never the contents.
func (c *Config) ReadSecretFiles() error {
	var problems []error
	if c.APITokenFile != "" {
		if c.APIToken != "" {
			problems = append(problems, errors.New("api_token and api_token_file are both set: keep one"))
		} else if tok, err := readSecret(c.APITokenFile); err != nil {
			problems = append(problems, fmt.Errorf("api_token_file: %w", err))
		} else {
			c.APIToken = tok
		}
	}
	for i := range c.Databases {
		d := &c.Databases[i]
		if d.PasswordFile == "" {
			continue
		}
		label := d.effectiveName()
		if d.Password != "" {
			problems = append(problems, fmt.Errorf("database %q: password and password_file are both set: keep one", label))
			continue
		}
		pw, err := readSecret(d.PasswordFile)
		if err != nil {
			problems = append(problems, fmt.Errorf("database %q: password_file: %w", label, err))
			continue
		}
		d.Password = pw
		d.Origin = withOriginPassword(d.Origin, pw)
	}
	return errors.Join(problems...)
}

// readSecret reads a secret file, without its trailing newline.
func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err // a *PathError: names the file, not the contents
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}

// withOriginPassword puts password into an origin URL that has a user but no password; any
// other origin is returned as it is.
func withOriginPassword(origin, password string) string {
	u, err := url.Parse(origin)
	if err != nil || u.User == nil || u.Scheme == "" {
		return origin
	}
	if _, has := u.User.Password(); has {
		return origin
	}
	u.User = url.UserPassword(u.User.Username(), password)
	return u.String()
}
