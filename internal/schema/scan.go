package schema

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"unicode/utf8"
)

// maxDepth bounds nesting: a value may sit at most maxDepth deep, counting
// the top-level value as 1 (as fastjson.MaxDepth does), so at most
// maxDepth-1 containers are open.
const maxDepth = 300

// strSafe[c] is true for bytes that may appear unescaped in a JSON string and
// need no further checks: printable ASCII other than '"' and '\\'.
var strSafe = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// syntaxError is where and why a document is not strict JSON.
type syntaxError struct {
	off int
	msg string
}

func (e *syntaxError) Error() string { return fmt.Sprintf("invalid JSON at byte %d: %s", e.off, e.msg) }

// scanJSON checks that data is exactly one JSON value per RFC 8259, encoded
// as UTF-8, and returns nil or a *syntaxError. It also rejects \u escapes
// that encode a lone UTF-16 surrogate, which cannot be represented in UTF-8
// text. It does not allocate unless it fails.
func scanJSON(b []byte) *syntaxError {
	i, err := scanValue(b, skipWS(b, 0), 1)
	if err != nil {
		return err
	}
	if i = skipWS(b, i); i != len(b) {
		return &syntaxError{off: i, msg: "unexpected " + quoteAt(b, i) + " after top-level value"}
	}
	return nil
}

// scanValue checks the JSON value starting at b[i], which sits at nesting
// depth (the top-level value is at depth 1), and returns the offset just
// after it.
func scanValue(b []byte, i, depth int) (int, *syntaxError) {
	var inArray [(maxDepth + 63) / 64]uint64 // bit per open container
	open := 0                                // containers opened here
	n := len(b)
	var msg string

value:
	if i >= n {
		msg = "unexpected end of input"
		goto fail
	}
	switch c := b[i]; {
	case c == '{':
		if depth+open >= maxDepth {
			msg = fmt.Sprintf("nesting deeper than %d", maxDepth-1)
			goto fail
		}
		inArray[open/64] &^= 1 << (open % 64)
		open++
		i = skipWS(b, i+1)
		if i < n && b[i] == '}' {
			i++
			open--
			goto after
		}
		goto key
	case c == '[':
		if depth+open >= maxDepth {
			msg = fmt.Sprintf("nesting deeper than %d", maxDepth-1)
			goto fail
		}
		inArray[open/64] |= 1 << (open % 64)
		open++
		i = skipWS(b, i+1)
		if i < n && b[i] == ']' {
			i++
			open--
			goto after
		}
		goto value
	case c == '"':
		if i, msg = scanString(b, i+1); msg != "" {
			goto fail
		}
		goto after
	case c == 't':
		i, msg = scanLiteral(b, i, "true")
	case c == 'f':
		i, msg = scanLiteral(b, i, "false")
	case c == 'n':
		i, msg = scanLiteral(b, i, "null")
	case c == '-' || c >= '0' && c <= '9':
		i, msg = scanNumber(b, i)
	default:
		msg = "unexpected " + quoteAt(b, i) + " looking for beginning of value"
	}
	if msg != "" {
		goto fail
	}

after:
	if open == 0 {
		return i, nil
	}
	i = skipWS(b, i)
	if i >= n {
		msg = "unexpected end of input"
		goto fail
	}
	if inArray[(open-1)/64]&(1<<((open-1)%64)) != 0 {
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
			goto value
		case ']':
			i++
			open--
			goto after
		}
		msg = "unexpected " + quoteAt(b, i) + " after array element, expected ',' or ']'"
		goto fail
	}
	switch b[i] {
	case ',':
		i = skipWS(b, i+1)
		goto key
	case '}':
		i++
		open--
		goto after
	}
	msg = "unexpected " + quoteAt(b, i) + " after object value, expected ',' or '}'"
	goto fail

key:
	if i >= n || b[i] != '"' {
		msg = "unexpected " + quoteAt(b, i) + " looking for beginning of object key"
		goto fail
	}
	if i, msg = scanString(b, i+1); msg != "" {
		goto fail
	}
	i = skipWS(b, i)
	if i >= n || b[i] != ':' {
		msg = "unexpected " + quoteAt(b, i) + " after object key, expected ':'"
		goto fail
	}
	i = skipWS(b, i+1)
	goto value

fail:
	return i, &syntaxError{off: i, msg: msg}
}

func skipWS(b []byte, i int) int {
	if i < len(b) && b[i] > ' ' { // the usual case: compact JSON
		return i
	}
	for i < len(b) {
		switch b[i] {
		case ' ', '\n', '\t', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// quoteAt describes the byte at offset i for error messages.
func quoteAt(b []byte, i int) string {
	if i >= len(b) {
		return "end of input"
	}
	c := b[i]
	if c >= 0x20 && c < 0x7f {
		return fmt.Sprintf("%q", rune(c))
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

func scanLiteral(b []byte, i int, lit string) (int, string) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return i, "invalid literal, expected " + lit
	}
	return i + len(lit), ""
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// special8 flags (with its high bit) every byte of the 8 in x, read little
// endian, that needs attention inside a string: a control character, '"',
// '\\' or a non-ASCII byte. Bytes above a flagged one may be flagged
// spuriously, but the lowest flag is exact.
func special8(x uint64) uint64 {
	ctl := (x - lsb*0x20) &^ x
	q := x ^ (lsb * '"')
	q = (q - lsb) &^ q
	bs := x ^ (lsb * '\\')
	bs = (bs - lsb) &^ bs
	return (ctl | q | bs | x) & msb
}

// scanString scans a string body from i (just after the opening quote) and
// returns the offset after the closing quote.
func scanString(b []byte, i int) (int, string) {
	for {
		i = skipPlain(b, i)
		if i >= len(b) {
			return i, "unterminated string"
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, ""
		case c == '\\':
			var msg string
			if i, msg = scanEscape(b, i); msg != "" {
				return i, msg
			}
		case c < 0x20:
			return i, fmt.Sprintf("control character 0x%02x in string", c)
		default: // non-ASCII
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size <= 1 {
				return i, "invalid UTF-8 in string"
			}
			i += size
		}
	}
}

// skipPlain returns the offset of the first byte at or after i that needs
// attention inside a string (see special8), or len(b).
func skipPlain(b []byte, i int) int {
	for i+8 <= len(b) {
		if m := special8(binary.LittleEndian.Uint64(b[i:])); m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
		i += 8
	}
	for i < len(b) && strSafe[b[i]] {
		i++
	}
	return i
}

// scanEscape consumes one escape sequence starting at the backslash at i.
func scanEscape(b []byte, i int) (int, string) {
	if i+1 >= len(b) {
		return i + 1, "unterminated string"
	}
	switch b[i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return i + 2, ""
	case 'u':
		r, ok := hex4(b, i+2)
		switch {
		case !ok:
			return i, `invalid \u escape`
		case r >= 0xDC00 && r <= 0xDFFF:
			return i, `lone UTF-16 surrogate in \u escape`
		case r >= 0xD800 && r <= 0xDBFF:
			if i+7 >= len(b) || b[i+6] != '\\' || b[i+7] != 'u' {
				return i, `lone UTF-16 surrogate in \u escape`
			}
			if r2, ok := hex4(b, i+8); !ok || r2 < 0xDC00 || r2 > 0xDFFF {
				return i, `lone UTF-16 surrogate in \u escape`
			}
			return i + 12, ""
		}
		return i + 6, ""
	}
	return i, "invalid escape sequence in string"
}

func hex4(b []byte, at int) (rune, bool) {
	if at+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[at : at+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// scanNumber consumes -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? at i.
func scanNumber(b []byte, i int) (int, string) {
	n := len(b)
	if b[i] == '-' {
		i++
	}
	switch {
	case i < n && b[i] == '0':
		i++
	case i < n && b[i] >= '1' && b[i] <= '9':
		i = skipDigits(b, i+1)
	default:
		return i, "invalid number: expected digit"
	}
	if i < n && b[i] == '.' {
		j := skipDigits(b, i+1)
		if j == i+1 {
			return j, "invalid number: expected digit after decimal point"
		}
		i = j
	}
	if i < n && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < n && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := skipDigits(b, i)
		if j == i {
			return j, "invalid number: expected digit in exponent"
		}
		i = j
	}
	return i, ""
}

func skipDigits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}
