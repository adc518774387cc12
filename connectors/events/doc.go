// Package events turns ferry's changes into Debezium-compatible change
// events (JSON, without schemas) for the message-bus destinations (nats,
// kafka): one message per change, keyed by the row's primary key, on a
// topic or subject per table. docs/connectors.md documents the mapping.
package events
