package errs

import (
	"fmt"
	"net/url"
	"os"
	"strings"
)

// PasswordFileParam is the URL parameter naming a file that holds the
// connection's password (password_file=/run/secrets/db), so the password
// is in neither the URL, the command line nor the flow's identity: only
// the file's path is.
const PasswordFileParam = "password_file"

// PasswordFile returns the path a connection string's password_file names,
// or "" when it names none. It reads URLs and PostgreSQL keyword/value
// strings.
func PasswordFile(raw string) string {
	if IsKeywordValue(raw) {
		pairs, _ := keywordValuePairs(raw)
		path := ""
		for _, p := range pairs {
			if strings.EqualFold(p.key, PasswordFileParam) {
				path = p.value // the last one wins, as for any keyword
			}
		}
		return path
	}
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Query().Get(PasswordFileParam)
}

// ReadPasswordFile reads a password file: its content without the
// surrounding whitespace (the newline an editor or echo adds). An empty
// file is an error: a connection without a password is written without
// password_file.
func ReadPasswordFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", &ConfigError{Msg: fmt.Sprintf("%s=%s: %v", PasswordFileParam, path, err), Fix: "give a file ferry can read that holds the password"}
	}
	p := strings.TrimSpace(string(b))
	if p == "" {
		return "", &ConfigError{Msg: fmt.Sprintf("%s=%s: the file is empty", PasswordFileParam, path), Fix: "write the password into the file, or leave password_file out"}
	}
	return p, nil
}

// fileSecret is the password a connection string's password_file holds,
// for Secrets; "" when it names none or the file cannot be read (opening
// the connection then reports why).
func fileSecret(raw string) string {
	path := PasswordFile(raw)
	if path == "" {
		return ""
	}
	p, err := ReadPasswordFile(path)
	if err != nil {
		return ""
	}
	return p
}
