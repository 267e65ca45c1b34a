package schema

import (
	"math"
	"strconv"
	"unsafe"
)

// numResult classifies a JSON number for an "integer" column.
type numResult uint8

const (
	numOK         numResult = iota
	numNotInteger           // has a non-zero fractional part
	numOutOfRange           // an integer, but not in int64
)

// parseInt returns the value of a syntactically valid JSON number if it is an
// integer in the JSON Schema sense (any number whose fractional part is zero,
// so 1.0 and 1e2 qualify) and fits int64. The check is exact on the decimal
// text, like the reference validator's big.Rat test, not on a float64.
func parseInt(s string) (int64, numResult) {
	neg := len(s) > 0 && s[0] == '-'
	i := 0
	if neg {
		i = 1
	}
	// Fast path: plain digits.
	var u uint64
	j := i
	for ; j < len(s) && s[j] >= '0' && s[j] <= '9'; j++ {
		if u > (math.MaxUint64-9)/10 {
			break
		}
		u = u*10 + uint64(s[j]-'0')
	}
	if j == len(s) {
		return fromMagnitude(u, neg)
	}
	return parseIntSlow(s[i:], neg)
}

func fromMagnitude(u uint64, neg bool) (int64, numResult) {
	if neg {
		if u > 1<<63 {
			return 0, numOutOfRange
		}
		return -int64(u), numOK // -int64(1<<63) wraps to MinInt64, as wanted
	}
	if u > math.MaxInt64 {
		return 0, numOutOfRange
	}
	return int64(u), numOK
}

// parseIntSlow handles fractions, exponents and long digit strings. s has no
// sign.
func parseIntSlow(s string, neg bool) (int64, numResult) {
	// Split into the significant digits and the position of the decimal
	// point relative to them.
	var mant [20]byte // the first significant digits; more means out of range
	n := 0            // significant digits seen (may exceed len(mant))
	point := 0        // digits before the decimal point, counting only after the first non-zero
	lastNZ := 0       // n just after the last non-zero digit
	i := 0
	seenPoint := false
	for ; i < len(s); i++ {
		c := s[i]
		if c == '.' {
			seenPoint = true
			continue
		}
		if c < '0' || c > '9' {
			break
		}
		if n == 0 && c == '0' {
			if seenPoint {
				point--
			}
			continue
		}
		if n < len(mant) {
			mant[n] = c
		}
		n++
		if c != '0' {
			lastNZ = n
		}
		if !seenPoint {
			point++
		}
	}
	exp := 0
	if i < len(s) { // exponent
		i++
		eneg := false
		if s[i] == '+' || s[i] == '-' {
			eneg = s[i] == '-'
			i++
		}
		for ; i < len(s); i++ {
			if exp < 1e9 {
				exp = exp*10 + int(s[i]-'0')
			}
		}
		if eneg {
			exp = -exp
		}
	}
	if lastNZ == 0 {
		return 0, numOK // zero
	}
	point += exp
	if lastNZ > point {
		return 0, numNotInteger
	}
	if point > 19 { // 19 digits always fit uint64
		return 0, numOutOfRange
	}
	var u uint64
	for k := 0; k < point; k++ {
		d := uint64(0)
		if k < lastNZ {
			d = uint64(mant[k] - '0')
		}
		u = u*10 + d
	}
	return fromMagnitude(u, neg)
}

// pow10 holds the powers of ten that float64 represents exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// parseFloat parses a syntactically valid JSON number, correctly rounded
// like strconv.ParseFloat. ok is false when the magnitude overflows
// float64.
func parseFloat(s string) (float64, bool) {
	// Fast path (Clinger): at most 15 digits and no exponent, so the
	// mantissa and the power of ten are exact and one division rounds
	// correctly.
	var m uint64
	digits, frac := 0, -1
	neg := s[0] == '-'
	i := 0
	if neg {
		i = 1
	}
	for ; i < len(s); i++ {
		c := s[i]
		if c == '.' {
			frac = 0
			continue
		}
		if c < '0' || c > '9' || digits == 15 {
			break
		}
		m = m*10 + uint64(c-'0')
		digits++
		if frac >= 0 {
			frac++
		}
	}
	if i == len(s) {
		f := float64(m)
		if frac > 0 {
			f /= pow10[frac]
		}
		if neg {
			f = -f
		}
		return f, true
	}
	return parseFloatSlow(s)
}

func parseFloatSlow(s string) (float64, bool) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && (math.IsInf(f, 0) || math.IsNaN(f)) {
		return 0, false
	}
	return f, true
}

// b2s views b as a string without copying. The caller must not modify b
// while the string is in use.
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
