package connector

import (
	"fmt"
	"net/url"
	"path/filepath"

	"github.com/ferrydb/ferry/errs"
)

// LocalFilePath is the absolute path of the database file a connector of
// one local file names in its URL: SCHEME:///absolute/path/FILE or
// SCHEME:relative/path/FILE (sqlite:///data/shop.db, duckdb:shop.duckdb).
// engine names the database in messages ("SQLite"); example is a file name
// for the fix ("file.db"); notFile says whether a path names something
// other than a file (":memory:"), which is refused.
func LocalFilePath(u *url.URL, engine, example string, notFile func(p string) bool) (string, error) {
	s := u.Scheme
	fix := fmt.Sprintf("use %s:///absolute/path/%s or %s:relative/path/%s", s, example, s, example)
	if len(u.Query()) > 0 {
		return "", errs.BadConfig(fmt.Sprintf("%s URL takes no parameters, got %q", s, u.RawQuery), fix)
	}
	var p string
	switch {
	case u.Opaque != "":
		var err error
		if p, err = url.PathUnescape(u.Opaque); err != nil {
			return "", &errs.ConfigError{Msg: fmt.Sprintf("%s URL path %q", s, u.Opaque), Fix: fix, Err: err}
		}
	case u.Host == "" || u.Host == "localhost":
		p = u.Path
	case u.Host == "." || u.Host == "..":
		p = u.Host + u.Path
	default:
		return "", errs.BadConfig(fmt.Sprintf("%s URL names host %q; %s files are local", s, u.Host, engine), fix)
	}
	if p == "" || p == "/" {
		return "", errs.BadConfig(fmt.Sprintf("%s URL has no file path", s), fix)
	}
	if notFile != nil && notFile(p) {
		return "", errs.BadConfig(fmt.Sprintf("%s URL path %q is not a file; ferry needs a database file", s, p), fix)
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", &errs.ConfigError{Msg: fmt.Sprintf("%s path %q", s, p), Fix: fix, Err: err}
	}
	return abs, nil
}
