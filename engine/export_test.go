package engine

import "time"

// SetRetryWaits shortens the backoff of an unavailable destination for a
// test and returns a function restoring it.
func SetRetryWaits(first, most time.Duration) func() {
	f, m := retryFirst, retryMax
	retryFirst, retryMax = first, most
	return func() { retryFirst, retryMax = f, m }
}

// SetCDCBytes lowers CDC's byte bounds (applyBatchBytes, flightBytes) for a
// test and returns a function restoring them.
func SetCDCBytes(batch, flight int64) func() {
	b, f := applyBatchBytes, flightBytes
	applyBatchBytes, flightBytes = batch, flight
	return func() { applyBatchBytes, flightBytes = b, f }
}
