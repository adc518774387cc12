package connector

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/ferrydb/ferry/errs"
)

// Connections are named connection URLs, so a URL (and its password)
// need not be written on a command line, in a flow file or in Temporal:
// ferry sync @src @dst and a scale-out worker resolve names the same way.
type Connections struct {
	urls map[string]string
}

// ConnectionsFileEnv names the connections file when no
// --connections-file is given.
const ConnectionsFileEnv = "FERRY_CONNECTIONS_FILE"

// ConnectionEnvPrefix prefixes environment variables naming a connection:
// FERRY_CONNECTION_SRC=postgres://... defines "src".
const ConnectionEnvPrefix = "FERRY_CONNECTION_"

var connName = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

// LoadConnections merges, from lowest to highest precedence, a YAML file
// (a map of name to URL, such as a mounted Secret), the environment
// (FERRY_CONNECTION_<NAME>=URL, the name lower-cased) and NAME=URL flags.
func LoadConnections(file string, environ []string, flags []string) (*Connections, error) {
	c := &Connections{urls: map[string]string{}}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, errs.BadConfig(fmt.Sprintf("connections file: %v", err), "give a readable YAML file mapping names to URLs")
		}
		var m map[string]string
		dec := yaml.NewDecoder(bytes.NewReader(b))
		if err := dec.Decode(&m); err != nil && !errors.Is(err, io.EOF) {
			return nil, errs.BadConfig(fmt.Sprintf("connections file %s: not a map of name to URL", file), "the file maps names to URLs: \"src: postgres://user:pass@host/db\"")
		}
		for k, v := range m {
			if err := c.add(strings.ToLower(k), v, "connections file "+file); err != nil {
				return nil, err
			}
		}
	}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(k, ConnectionEnvPrefix) {
			continue
		}
		if err := c.add(strings.ToLower(strings.TrimPrefix(k, ConnectionEnvPrefix)), v, k); err != nil {
			return nil, err
		}
	}
	for _, f := range flags {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return nil, errs.BadConfig(fmt.Sprintf("--connection %q has no '='", errs.Redact(f)), "--connection NAME=URL, such as --connection src=postgres://user@host/db")
		}
		if err := c.add(k, v, "--connection "+k); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *Connections) add(name, url, where string) error {
	if !connName.MatchString(name) {
		return errs.BadConfig(fmt.Sprintf("%s: invalid connection name %q", where, name), "use lower-case letters, digits, '_', '.' and '-'")
	}
	if strings.TrimSpace(url) == "" {
		return errs.BadConfig(fmt.Sprintf("%s: connection %q has no URL", where, name), "give the connection's URL")
	}
	if _, _, err := ParseURL(url); err != nil {
		return fmt.Errorf("%s: connection %q: %w", where, name, err)
	}
	c.urls[name] = url
	return nil
}

// Names are the connection names, sorted.
func (c *Connections) Names() []string {
	var out []string
	for k := range c.urls {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Secrets are the passwords of every connection, to scrub from output.
func (c *Connections) Secrets() []string {
	var out []string
	for _, u := range c.urls {
		out = append(out, errs.Secrets(u)...)
	}
	return out
}

// Resolve returns the URL of a connection name; role ("source",
// "destination") makes the error say which one is missing.
func (c *Connections) Resolve(name, role string) (string, error) {
	if c == nil {
		return "", errs.BadConfig(fmt.Sprintf("%s connection %q: no connection is defined", role, name), "define it with "+ConnectionEnvPrefix+strings.ToUpper(name)+"=URL, in a connections file (--connections-file or $"+ConnectionsFileEnv+") or with --connection "+name+"=URL")
	}
	if u, ok := c.urls[strings.ToLower(name)]; ok {
		return u, nil
	}
	have := "none"
	if n := c.Names(); len(n) > 0 {
		have = strings.Join(n, ", ")
	}
	return "", errs.BadConfig(fmt.Sprintf("%s connection %q is not defined (defined: %s)", role, name, have), "define it (on every worker, in scale-out mode) with "+ConnectionEnvPrefix+strings.ToUpper(name)+"=URL, in the connections file (--connections-file or $"+ConnectionsFileEnv+") or with --connection "+name+"=URL")
}
