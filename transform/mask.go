package transform

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/ferrydb/ferry/model"
)

type maskKind uint8

const (
	maskNone maskKind = iota
	maskRedact
	maskHash
	maskLast
)

// mask is one mask=... rule's what: redact, hash, or lastN (n).
type mask struct {
	kind maskKind
	n    int
}

func (m mask) String() string {
	switch m.kind {
	case maskRedact:
		return "redact"
	case maskHash:
		return "hash"
	case maskLast:
		return "last" + strconv.Itoa(m.n)
	}
	return "none"
}

func parseMask(s string) (mask, error) {
	switch s = strings.ToLower(s); s {
	case "redact":
		return mask{kind: maskRedact}, nil
	case "hash":
		return mask{kind: maskHash}, nil
	}
	if digits, ok := strings.CutPrefix(s, "last"); ok {
		n, err := strconv.Atoi(digits)
		if err != nil || n < 1 {
			return mask{}, fmt.Errorf("%q: N of lastN must be a whole number >= 1", s)
		}
		return mask{kind: maskLast, n: n}, nil
	}
	return mask{}, fmt.Errorf("unknown mask %q", s)
}

// redacted is what a redacted text value becomes.
const redacted = "[redacted]"

// hashHexLen is how many hex digits of the HMAC a hashed value keeps: 128
// bits, where two distinct keys colliding is not a practical concern, in
// half the width of the whole digest.
const hashHexLen = 32

// masker applies masks to values; it holds the salt's HMAC states, reused
// across values since building one costs more than hashing a short value.
type masker struct {
	salt []byte
	pool sync.Pool
}

func newMasker(salt []byte) *masker {
	m := &masker{salt: salt}
	m.pool.New = func() any { return &hasher{h: hmac.New(sha256.New, m.salt)} }
	return m
}

// apply masks v, a value of type t. NULL and Unchanged stay as they are.
func (m *masker) apply(mk mask, t model.Type, v any) (any, error) {
	if v == nil || model.IsUnchanged(v) {
		return v, nil
	}
	switch mk.kind {
	case maskRedact:
		if t.Kind == model.KindText {
			return redacted, nil
		}
		return nil, nil
	case maskHash:
		text, err := valueText(t, v)
		if err != nil {
			return nil, err
		}
		return m.hash(text), nil
	case maskLast:
		text, err := valueText(t, v)
		if err != nil {
			return nil, err
		}
		return keepLast(text, mk.n), nil
	}
	return v, nil
}

// hasher is an HMAC state with its buffers, so that hashing a value
// allocates only the hash's text.
type hasher struct {
	h   hash.Hash
	in  []byte
	sum []byte
	hex [2 * sha256.Size]byte
}

func (m *masker) hash(text string) string {
	h := m.pool.Get().(*hasher)
	h.h.Reset()
	h.in = append(h.in[:0], text...)
	h.h.Write(h.in)
	h.sum = h.h.Sum(h.sum[:0])
	hex.Encode(h.hex[:], h.sum)
	out := string(h.hex[:hashHexLen])
	m.pool.Put(h)
	return out
}

// valueText is the text a mask works on: ferry's text form of the value,
// with a decimal normalized so that equal numbers mask alike.
func valueText(t model.Type, v any) (string, error) {
	if s, ok := v.(string); ok {
		if t.Kind == model.KindDecimal {
			return model.NormalizeDecimal(s), nil
		}
		return s, nil
	}
	if err := checkGoType(t, v); err != nil {
		return "", err
	}
	return model.FormatText(t, v)
}

// checkGoType guards FormatText, which assumes each kind's Go type.
func checkGoType(t model.Type, v any) error {
	_, err := model.AppendCanonical(nil, t, v)
	return err
}

// keepLast replaces every rune of s but the last n with '*'.
func keepLast(s string, n int) string {
	count := utf8.RuneCountInString(s)
	if count <= n {
		return s
	}
	hide := count - n
	var b strings.Builder
	b.Grow(hide + len(s))
	i := 0
	for pos := range s {
		if i == hide {
			b.WriteString(s[pos:])
			break
		}
		b.WriteByte('*')
		i++
	}
	return b.String()
}
