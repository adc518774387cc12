package postgres

// LoseSessionAfterLogRow makes the next session that handles a DDL log row
// end right after it, before its transaction's commit, as a lost
// connection would (once); the returned func puts things back.
func LoseSessionAfterLogRow(lost error) (restore func()) {
	once := false
	afterLogRow = func() error {
		if once {
			return nil
		}
		once = true
		return lost
	}
	return func() { afterLogRow = nil }
}
