package connector

import "errors"

// ConfigError is a usage or configuration problem: a bad URL, an impossible
// pair of connectors, a filter that matches nothing. ferry exits with code 2
// for it, before anything is written.
type ConfigError struct {
	Msg string
	// Fix tells the user what to do, when known.
	Fix string
	Err error
}

func (e *ConfigError) Error() string {
	s := e.Msg
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	if e.Fix != "" {
		s += " (" + e.Fix + ")"
	}
	return s
}

func (e *ConfigError) Unwrap() error { return e.Err }

// IsConfigError reports whether err is, or wraps, a ConfigError.
func IsConfigError(err error) bool {
	var ce *ConfigError
	return errors.As(err, &ce)
}

// Configf builds a ConfigError.
func Configf(fix string, msg string) error { return &ConfigError{Msg: msg, Fix: fix} }
