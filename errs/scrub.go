package errs

import (
	"sort"
	"strings"
	"sync"
)

// minSecret is the shortest secret scrubbed from free text: replacing every
// "a" of a one-letter password would make messages unreadable. Redact still
// hides a short password in a connection string, where its place is known.
const minSecret = 3

// Scrubber removes secrets from text before it leaves ferry: error
// messages, log lines, the dashboard, telemetry spans, a workflow's
// history, errors a connector wraps. It is the one place that does; every
// other component holds a Scrubber or its Scrub method. Its methods may be
// called concurrently, and a nil Scrubber scrubs nothing.
type Scrubber struct {
	mu      sync.RWMutex
	secrets []string // longest first, so a secret is not cut by a shorter one inside it
}

// NewScrubber returns a Scrubber for the secrets of the connection strings.
func NewScrubber(conns ...string) *Scrubber {
	s := &Scrubber{}
	s.AddConn(conns...)
	return s
}

// AddConn adds the secrets of connection strings (URLs or keyword/value).
func (s *Scrubber) AddConn(conns ...string) {
	for _, c := range conns {
		s.AddSecret(Secrets(c)...)
	}
}

// AddSecret adds literal secrets (tokens, API keys).
func (s *Scrubber) AddSecret(secrets ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sec := range secrets {
		if len(sec) < minSecret || contains(s.secrets, sec) {
			continue
		}
		s.secrets = append(s.secrets, sec)
	}
	sort.SliceStable(s.secrets, func(i, j int) bool { return len(s.secrets[i]) > len(s.secrets[j]) })
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Scrub returns text with every secret replaced by "xxxxx".
func (s *Scrubber) Scrub(text string) string {
	if s == nil {
		return text
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, sec := range s.secrets {
		text = strings.ReplaceAll(text, sec, "xxxxx")
	}
	return text
}

// Err returns err with a scrubbed message; errors.Is and errors.As still see
// the original chain (SQLSTATEs, outages). nil stays nil, and an error with
// nothing to scrub is returned as it is.
func (s *Scrubber) Err(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	out := s.Scrub(msg)
	if out == msg {
		return err
	}
	return &scrubbedError{msg: out, err: err}
}

type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }
