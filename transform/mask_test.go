package transform

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/ferrydb/ferry/model"
)

// salt is the tests' hash salt.
const salt = "pepper"

// hmacHex is what mask=hash gives for text, computed as a user would.
func hmacHex(text string) string {
	h := hmac.New(sha256.New, []byte(salt))
	h.Write([]byte(text))
	return hex.EncodeToString(h.Sum(nil))[:32]
}

func TestMaskValues(t *testing.T) {
	m := newMasker([]byte(salt))
	text := model.Type{Kind: model.KindText}
	dec := model.Type{Kind: model.KindDecimal}
	i64 := model.Type{Kind: model.KindInt64}
	cases := []struct {
		name string
		mask mask
		typ  model.Type
		in   any
		want any
	}{
		{"hash text is HMAC of its bytes", mask{kind: maskHash}, text, "alice@example.com", hmacHex("alice@example.com")},
		{"hash int is HMAC of its text", mask{kind: maskHash}, i64, int64(42), hmacHex("42")},
		{"hash decimal normalized", mask{kind: maskHash}, dec, "1.50", hmacHex("1.5")},
		{"hash NULL", mask{kind: maskHash}, text, nil, nil},
		{"hash Unchanged", mask{kind: maskHash}, text, model.Unchanged, model.Unchanged},
		{"last4", mask{kind: maskLast, n: 4}, text, "4111111111111111", "************1111"},
		{"last4 unicode by rune", mask{kind: maskLast, n: 4}, text, "Jürgen Müßig", "********üßig"},
		{"last2 emoji", mask{kind: maskLast, n: 2}, text, "a😀b😀", "**b😀"},
		{"last4 short kept", mask{kind: maskLast, n: 4}, text, "abc", "abc"},
		{"last4 exact kept", mask{kind: maskLast, n: 4}, text, "abcd", "abcd"},
		{"last1 int", mask{kind: maskLast, n: 1}, i64, int64(-123), "***3"},
		{"last NULL", mask{kind: maskLast, n: 4}, text, nil, nil},
		{"last Unchanged", mask{kind: maskLast, n: 4}, text, model.Unchanged, model.Unchanged},
		{"redact text", mask{kind: maskRedact}, text, "secret", "[redacted]"},
		{"redact int", mask{kind: maskRedact}, i64, int64(5), nil},
		{"redact NULL", mask{kind: maskRedact}, text, nil, nil},
		{"redact Unchanged", mask{kind: maskRedact}, text, model.Unchanged, model.Unchanged},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := m.apply(c.mask, c.typ, c.in)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("%s of %v = %v, want %v", c.mask, c.in, got, c.want)
			}
		})
	}
	if a, b := m.hash("x"), newMasker([]byte("other")).hash("x"); a == b {
		t.Error("two salts give the same hash")
	}
	if _, err := m.apply(mask{kind: maskHash}, i64, "not an int"); err != nil {
		t.Errorf("a string under an int column: %v", err)
	}
	if _, err := m.apply(mask{kind: maskHash}, i64, 3.5); err == nil {
		t.Error("a float64 under an int column hashed without error")
	}
}
