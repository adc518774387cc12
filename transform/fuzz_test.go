package transform

import (
	"testing"

	"github.com/ferrydb/ferry/errs"
)

// FuzzParse: whatever the user writes, Parse answers with rules or a
// configuration error, never a panic.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"users.email", "shop.users.email=hash", "users: active", "users.x = id + 1", "a.b=last4", "[.x", ":", "=", "t.c=last99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, spec := range []Spec{{Exclude: []string{s}}, {Rename: []string{s}}, {Mask: []string{s}, Salt: "x"}, {Filter: []string{s}}, {Compute: []string{s}}} {
			r, err := Parse(spec)
			if err != nil && !errs.IsConfigError(err) {
				t.Errorf("Parse(%+v): %v is not a configuration error", spec, err)
			}
			if err == nil {
				if _, err := r.For(users()); err != nil && !errs.IsConfigError(err) {
					t.Errorf("For(%+v): %v is not a configuration error", spec, err)
				}
			}
		}
	})
}

// FuzzRenameIdents: SQL text of any shape is scanned without a panic, and
// a rename rewrites the text exactly when the text names the column.
func FuzzRenameIdents(f *testing.F) {
	for _, s := range []string{`btree (email) WHERE (name <> 'email''s')`, `"Email"`, "lower((email)::text)", "`a``b`", `"unterminated`, "'open", "1e5email", "EMAIL"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		named := mentions(sql, map[string]bool{"email": true})
		got := renameIdents(sql, map[string]string{"email": "mail"})
		if changed := got != sql; changed != named {
			t.Errorf("%q names email: %v, yet renaming it gives %q", sql, named, got)
		}
	})
}
