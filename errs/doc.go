// Package errs holds what every part of ferry shares about failures and
// secrets, apart from the connector contract: the kinds of error the engine
// and the CLI act on (ConfigError, exit code 2; an outage, Unavailable, which
// the engine rides out; BrokenConnection), and the one way secrets are kept
// out of what ferry shows (Redact for a URL, Scrubber for any text,
// Shown for a URL in a message).
package errs
