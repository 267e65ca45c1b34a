package expr

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-dev/sluice/internal/sql"
)

// Time zone: every timestamp is UTC (Spark's session time zone fixed to
// UTC). Timestamps are int64 microseconds since the epoch, dates int32
// days since the epoch.

const (
	usPerSec = int64(1e6)
	usPerDay = 86400 * usPerSec
)

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// tsToDate is the UTC day of a timestamp.
func tsToDate(us int64) int32 { return int32(floorDiv(us, usPerDay)) }

func dateToTS(d int32) int64 { return int64(d) * usPerDay }

func usTime(us int64) time.Time { return time.UnixMicro(us).UTC() }

// civil converts a date to days since the epoch; ok is false for an
// invalid date (February 30th).
func civil(y, m, d int) (int32, bool) {
	if m < 1 || m > 12 || d < 1 || d > 31 {
		return 0, false
	}
	t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
	if t.Day() != d {
		return 0, false
	}
	return int32(floorDiv(t.Unix(), 86400)), true
}

// digits reads 1 to max decimal digits at s[i:].
func digits(s string, i, min, max int) (v, j int, ok bool) {
	j = i
	for j < len(s) && j-i < max && s[j] >= '0' && s[j] <= '9' {
		v = v*10 + int(s[j]-'0')
		j++
	}
	return v, j, j-i >= min
}

// parseTimestamp parses the ISO-8601 / RFC 3339 forms Spark accepts when
// casting text to TIMESTAMP: yyyy-MM-dd, then optionally [T ]HH:mm[:ss[.f]]
// and a zone (Z, UTC, +hh, +hh:mm, +hhmm); no zone means UTC. Surrounding
// spaces are ignored. It does not allocate.
func parseTimestamp(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	y, i, ok := digits(s, 0, 4, 4)
	if !ok || i >= len(s) || s[i] != '-' {
		return 0, false
	}
	m, i, ok := digits(s, i+1, 1, 2)
	if !ok || i >= len(s) || s[i] != '-' {
		return 0, false
	}
	d, i, ok := digits(s, i+1, 1, 2)
	if !ok {
		return 0, false
	}
	days, ok := civil(y, m, d)
	if !ok {
		return 0, false
	}
	us := dateToTS(days)
	if i == len(s) {
		return us, true
	}
	if s[i] != 'T' && s[i] != ' ' {
		return 0, false
	}
	i++
	var hh, mm, ss int
	if hh, i, ok = digits(s, i, 1, 2); !ok || hh > 23 {
		return 0, false
	}
	if i < len(s) && s[i] == ':' {
		if mm, i, ok = digits(s, i+1, 2, 2); !ok || mm > 59 {
			return 0, false
		}
		if i < len(s) && s[i] == ':' {
			if ss, i, ok = digits(s, i+1, 2, 2); !ok || ss > 59 {
				return 0, false
			}
			if i < len(s) && s[i] == '.' {
				j := i + 1
				frac, scale := int64(0), int64(1e6)
				for j < len(s) && s[j] >= '0' && s[j] <= '9' {
					if scale > 1 {
						scale /= 10
						frac += int64(s[j]-'0') * scale
					}
					j++
				}
				if j == i+1 {
					return 0, false
				}
				us += frac
				i = j
			}
		}
	} else if i == len(s) { // "2024-01-01 12" is not a timestamp
		return 0, false
	}
	us += int64(hh*3600+mm*60+ss) * usPerSec
	if i < len(s) && s[i] == ' ' {
		i++
	}
	off, ok := parseZone(s[i:])
	if !ok {
		return 0, false
	}
	return us - off*usPerSec, true
}

// parseZone parses "", Z, UTC, GMT, +hh, +hh:mm, +hhmm (and the same with
// a UTC/GMT prefix) into an offset in seconds.
func parseZone(z string) (int64, bool) {
	switch z {
	case "", "Z", "UTC", "GMT", "z":
		return 0, true
	}
	if strings.HasPrefix(z, "UTC") || strings.HasPrefix(z, "GMT") {
		z = z[3:]
	}
	if len(z) < 2 || z[0] != '+' && z[0] != '-' {
		return 0, false
	}
	sign := int64(1)
	if z[0] == '-' {
		sign = -1
	}
	h, i, ok := digits(z, 1, 1, 2)
	if !ok || h > 18 {
		return 0, false
	}
	m := 0
	if i < len(z) && z[i] == ':' {
		i++
	}
	if i < len(z) {
		if m, i, ok = digits(z, i, 2, 2); !ok || m > 59 {
			return 0, false
		}
	}
	if i != len(z) {
		return 0, false
	}
	return sign * int64(h*3600+m*60), true
}

// parseDate parses yyyy-MM-dd, ignoring a time part after it.
func parseDate(s string) (int32, bool) {
	s = strings.TrimSpace(s)
	y, i, ok := digits(s, 0, 4, 4)
	if !ok || i >= len(s) || s[i] != '-' {
		return 0, false
	}
	m, i, ok := digits(s, i+1, 1, 2)
	if !ok || i >= len(s) || s[i] != '-' {
		return 0, false
	}
	d, i, ok := digits(s, i+1, 1, 2)
	if !ok || i < len(s) && s[i] != ' ' && s[i] != 'T' {
		return 0, false
	}
	return civil(y, m, d)
}

func appendInt(dst []byte, v, width int) []byte {
	if v < 0 {
		dst = append(dst, '-')
		v = -v
	}
	var buf [20]byte
	i := len(buf)
	for v > 0 || i == len(buf) {
		i--
		buf[i] = byte('0' + v%10)
		v /= 10
	}
	for k := len(buf) - i; k < width; k++ {
		dst = append(dst, '0')
	}
	return append(dst, buf[i:]...)
}

// appendTimestamp formats as Spark casts a TIMESTAMP to STRING:
// yyyy-MM-dd HH:mm:ss, with the fraction of a second only when it is not
// zero and without trailing zeros.
func appendTimestamp(dst []byte, us int64) []byte {
	days := floorDiv(us, usPerDay)
	rem := us - days*usPerDay
	dst = appendDate(dst, int32(days))
	secs := int(rem / usPerSec)
	frac := int(rem % usPerSec)
	dst = append(dst, ' ')
	dst = appendInt(dst, secs/3600, 2)
	dst = append(dst, ':')
	dst = appendInt(dst, secs/60%60, 2)
	dst = append(dst, ':')
	dst = appendInt(dst, secs%60, 2)
	if frac != 0 {
		dst = append(dst, '.')
		w := 6
		for frac%10 == 0 {
			frac /= 10
			w--
		}
		dst = appendInt(dst, frac, w)
	}
	return dst
}

func appendDate(dst []byte, days int32) []byte {
	y, m, d := time.Unix(int64(days)*86400, 0).UTC().Date()
	dst = appendInt(dst, y, 4)
	dst = append(dst, '-')
	dst = appendInt(dst, int(m), 2)
	dst = append(dst, '-')
	return appendInt(dst, d, 2)
}

// ---- Spark datetime patterns

type patKind uint8

const (
	pLit patKind = iota
	pYear
	pMonth
	pMonthName
	pDay
	pDayOfYear
	pHour24
	pHour12
	pMinute
	pSecond
	pFraction
	pAmPm
	pOffset  // X, XX, XXX, x..., Z
	pZoneID  // z, VV: formats as UTC
	pDayName // E, EEE, EEEE
)

type patTok struct {
	kind  patKind
	count int    // letters repeated
	lit   string // pLit; pOffset: the letter
}

// compilePattern compiles a Spark datetime pattern (a subset: y M d D H h
// m s S a X x Z z E, 'quoted text' and punctuation).
func compilePattern(p string) ([]patTok, error) {
	var toks []patTok
	for i := 0; i < len(p); {
		c := p[i]
		if c == '\'' {
			j := i + 1
			var lit strings.Builder
			for {
				if j >= len(p) {
					return nil, fmt.Errorf("unterminated quote in datetime pattern %q", p)
				}
				if p[j] == '\'' {
					if j+1 < len(p) && p[j+1] == '\'' {
						lit.WriteByte('\'')
						j += 2
						continue
					}
					break
				}
				lit.WriteByte(p[j])
				j++
			}
			if j == i+1 {
				lit.WriteByte('\'')
			}
			toks = append(toks, patTok{kind: pLit, lit: lit.String()})
			i = j + 1
			continue
		}
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			toks = append(toks, patTok{kind: pLit, lit: string(c)})
			i++
			continue
		}
		j := i
		for j < len(p) && p[j] == c {
			j++
		}
		n := j - i
		var k patKind
		switch c {
		case 'y', 'u':
			k = pYear
		case 'M', 'L':
			k = pMonth
			if n >= 3 {
				k = pMonthName
			}
		case 'd':
			k = pDay
		case 'D':
			k = pDayOfYear
		case 'H':
			k = pHour24
		case 'h':
			k = pHour12
		case 'm':
			k = pMinute
		case 's':
			k = pSecond
		case 'S':
			k = pFraction
		case 'a':
			k = pAmPm
		case 'X', 'x', 'Z':
			k = pOffset
		case 'z', 'V', 'O':
			k = pZoneID
		case 'E':
			k = pDayName
		default:
			return nil, fmt.Errorf("unsupported letter %q in datetime pattern %q; supported: y M d D H h m s S a X x Z z E", c, p)
		}
		toks = append(toks, patTok{kind: k, count: n, lit: string(c)})
		i = j
	}
	return toks, nil
}

// formatPattern appends us formatted with the compiled pattern.
func formatPattern(dst []byte, toks []patTok, us int64) []byte {
	t := usTime(us)
	for _, tk := range toks {
		switch tk.kind {
		case pLit:
			dst = append(dst, tk.lit...)
		case pYear:
			if tk.count == 2 {
				dst = appendInt(dst, t.Year()%100, 2)
			} else {
				dst = appendInt(dst, t.Year(), tk.count)
			}
		case pMonth:
			dst = appendInt(dst, int(t.Month()), tk.count)
		case pMonthName:
			name := t.Month().String()
			if tk.count == 3 {
				name = name[:3]
			}
			dst = append(dst, name...)
		case pDay:
			dst = appendInt(dst, t.Day(), tk.count)
		case pDayOfYear:
			dst = appendInt(dst, t.YearDay(), tk.count)
		case pHour24:
			dst = appendInt(dst, t.Hour(), tk.count)
		case pHour12:
			h := t.Hour() % 12
			if h == 0 {
				h = 12
			}
			dst = appendInt(dst, h, tk.count)
		case pMinute:
			dst = appendInt(dst, t.Minute(), tk.count)
		case pSecond:
			dst = appendInt(dst, t.Second(), tk.count)
		case pFraction:
			f := int(floorMod(us, usPerSec)) // microseconds
			w := tk.count
			switch {
			case w <= 6:
				for k := w; k < 6; k++ {
					f /= 10
				}
				dst = appendInt(dst, f, w)
			default:
				dst = appendInt(dst, f, 6)
				for k := 6; k < w; k++ {
					dst = append(dst, '0')
				}
			}
		case pAmPm:
			if t.Hour() < 12 {
				dst = append(dst, "AM"...)
			} else {
				dst = append(dst, "PM"...)
			}
		case pOffset:
			switch {
			case tk.lit == "Z" && tk.count < 4:
				dst = append(dst, "+0000"...)
			case tk.lit == "x":
				dst = append(dst, []string{"+00", "+0000", "+00:00"}[min(tk.count, 3)-1]...)
			default:
				dst = append(dst, 'Z')
			}
		case pZoneID:
			dst = append(dst, "UTC"...)
		case pDayName:
			name := t.Weekday().String()
			if tk.count < 4 {
				name = name[:3]
			}
			dst = append(dst, name...)
		}
	}
	return dst
}

func floorMod(a, b int64) int64 { return a - floorDiv(a, b)*b }

var monthNames = [...]string{"january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"}

// parsePattern parses s with the compiled pattern; the whole of s must
// match. Missing fields default to 1970-01-01 00:00:00 UTC.
func parsePattern(toks []patTok, s string) (int64, bool) {
	y, mo, d, doy, h, mi, sec, frac := 1970, 1, 1, 0, 0, 0, 0, int64(0)
	pm, has12 := false, false
	off := int64(0)
	i := 0
	var ok bool
	for _, tk := range toks {
		switch tk.kind {
		case pLit:
			if !strings.HasPrefix(s[i:], tk.lit) {
				return 0, false
			}
			i += len(tk.lit)
		case pYear:
			switch tk.count {
			case 2:
				if y, i, ok = digits(s, i, 2, 2); !ok {
					return 0, false
				}
				y += 2000
			case 1:
				if y, i, ok = digits(s, i, 1, 9); !ok {
					return 0, false
				}
			default:
				if y, i, ok = digits(s, i, tk.count, max(tk.count, 4)); !ok {
					return 0, false
				}
			}
		case pMonthName:
			found := false
			for k, name := range monthNames {
				for _, cand := range []string{name, name[:3]} {
					if len(s)-i >= len(cand) && strings.EqualFold(s[i:i+len(cand)], cand) {
						mo, i, found = k+1, i+len(cand), true
						break
					}
				}
				if found {
					break
				}
			}
			if !found {
				return 0, false
			}
		case pDayName:
			j := i
			for j < len(s) && (s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z') {
				j++
			}
			if j == i {
				return 0, false
			}
			i = j
		case pMonth, pDay, pDayOfYear, pHour24, pHour12, pMinute, pSecond:
			lo, hi := tk.count, max(tk.count, 2)
			if tk.kind == pDayOfYear {
				hi = max(tk.count, 3)
			}
			var v int
			if v, i, ok = digits(s, i, lo, hi); !ok {
				return 0, false
			}
			switch tk.kind {
			case pMonth:
				mo = v
			case pDay:
				d = v
			case pDayOfYear:
				doy = v
			case pHour24:
				h = v
			case pHour12:
				h, has12 = v, true
			case pMinute:
				mi = v
			case pSecond:
				sec = v
			}
		case pFraction:
			j := i
			scale := usPerSec
			for j < len(s) && j-i < tk.count && s[j] >= '0' && s[j] <= '9' {
				scale /= 10
				frac += int64(s[j]-'0') * scale
				j++
			}
			if j == i || scale == 0 && j-i < tk.count && false {
				return 0, false
			}
			i = j
		case pAmPm:
			if len(s)-i < 2 {
				return 0, false
			}
			switch strings.ToUpper(s[i : i+2]) {
			case "AM":
			case "PM":
				pm = true
			default:
				return 0, false
			}
			i += 2
		case pOffset, pZoneID:
			j := i
			for j < len(s) && (s[j] == '+' || s[j] == '-' || s[j] == ':' || s[j] >= '0' && s[j] <= '9' || s[j] >= 'A' && s[j] <= 'Z') {
				j++
			}
			if off, ok = parseZone(s[i:j]); !ok {
				return 0, false
			}
			i = j
		}
	}
	if i != len(s) {
		return 0, false
	}
	if has12 {
		if h < 1 || h > 12 {
			return 0, false
		}
		h %= 12
		if pm {
			h += 12
		}
	}
	if h > 23 || mi > 59 || sec > 59 {
		return 0, false
	}
	var days int32
	if doy > 0 {
		start, _ := civil(y, 1, 1)
		days = start + int32(doy-1)
	} else if days, ok = civil(y, mo, d); !ok {
		return 0, false
	}
	return dateToTS(days) + int64(h*3600+mi*60+sec)*usPerSec + frac - off*usPerSec, true
}

// truncTimestamp truncates to a date_trunc unit (already lower case and
// validated by truncUnit).
func truncTimestamp(unit string, us int64) int64 {
	switch unit {
	case "microsecond":
		return us
	case "millisecond":
		return floorDiv(us, 1000) * 1000
	case "second":
		return floorDiv(us, usPerSec) * usPerSec
	case "minute":
		return floorDiv(us, 60*usPerSec) * 60 * usPerSec
	case "hour":
		return floorDiv(us, 3600*usPerSec) * 3600 * usPerSec
	case "day":
		return floorDiv(us, usPerDay) * usPerDay
	case "week": // Monday
		days := floorDiv(us, usPerDay)
		return (days - floorMod(days+3, 7)) * usPerDay
	}
	t := usTime(us)
	y, m := t.Year(), t.Month()
	switch unit {
	case "quarter":
		m = (m-1)/3*3 + 1
	case "year":
		m = 1
	}
	return time.Date(y, m, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
}

// truncUnit normalises a date_trunc unit; ok is false for an unknown one.
func truncUnit(u string) (string, bool) {
	switch strings.ToLower(u) {
	case "year", "yyyy", "yy":
		return "year", true
	case "quarter":
		return "quarter", true
	case "month", "mon", "mm":
		return "month", true
	case "week":
		return "week", true
	case "day", "dd":
		return "day", true
	case "hour":
		return "hour", true
	case "minute":
		return "minute", true
	case "second":
		return "second", true
	case "millisecond":
		return "millisecond", true
	case "microsecond":
		return "microsecond", true
	}
	return "", false
}

// ---- intervals

// interval is a parsed interval: calendar months and an exact duration.
type interval struct {
	months int64
	us     int64
}

var errMonths = errors.New("month intervals are not supported in windows; use days")

var intervalUnitUS = map[string]int64{
	"week": 7 * usPerDay, "weeks": 7 * usPerDay, "w": 7 * usPerDay,
	"day": usPerDay, "days": usPerDay, "d": usPerDay,
	"hour": 3600 * usPerSec, "hours": 3600 * usPerSec, "h": 3600 * usPerSec, "hr": 3600 * usPerSec, "hrs": 3600 * usPerSec,
	"minute": 60 * usPerSec, "minutes": 60 * usPerSec, "min": 60 * usPerSec, "mins": 60 * usPerSec, "m": 60 * usPerSec,
	"second": usPerSec, "seconds": usPerSec, "sec": usPerSec, "secs": usPerSec, "s": usPerSec,
	"millisecond": 1000, "milliseconds": 1000, "ms": 1000,
	"microsecond": 1, "microseconds": 1, "us": 1,
}

var intervalUnitMonths = map[string]int64{
	"year": 12, "years": 12, "y": 12, "month": 1, "months": 1, "mon": 1, "mons": 1,
}

// parseIntervalText parses "1 hour 30 minutes", "-2 days", "interval 5
// minutes", "1.5 hours".
func parseIntervalText(s string) (interval, error) {
	f := strings.Fields(strings.ToLower(s))
	if len(f) > 0 && f[0] == "interval" {
		f = f[1:]
	}
	if len(f) == 0 {
		return interval{}, fmt.Errorf("empty interval %q; write e.g. '5 minutes'", s)
	}
	if len(f) == 1 { // Go style: 1h30m
		if d, err := time.ParseDuration(f[0]); err == nil {
			return interval{us: d.Microseconds()}, nil
		}
	}
	if len(f)%2 != 0 {
		return interval{}, fmt.Errorf("invalid interval %q: expected number-unit pairs such as '1 hour 30 minutes'", s)
	}
	var iv interval
	for i := 0; i < len(f); i += 2 {
		if err := iv.add(f[i], f[i+1], s); err != nil {
			return interval{}, err
		}
	}
	return iv, nil
}

func (iv *interval) add(num, unit, whole string) error {
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
		return fmt.Errorf("invalid interval %q: %q is not a number", whole, num)
	}
	unit = strings.ToLower(unit)
	if m, ok := intervalUnitMonths[unit]; ok {
		if v != math.Trunc(v) {
			return fmt.Errorf("invalid interval %q: %s must be a whole number", whole, unit)
		}
		iv.months += int64(v) * m
		return nil
	}
	u, ok := intervalUnitUS[unit]
	if !ok {
		return fmt.Errorf("invalid interval %q: unknown unit %q; use weeks, days, hours, minutes, seconds, milliseconds or microseconds", whole, unit)
	}
	if math.Abs(v*float64(u)) > math.MaxInt64/2 {
		return fmt.Errorf("invalid interval %q: too large", whole)
	}
	iv.us += int64(math.Round(v * float64(u)))
	return nil
}

// ParseInterval parses a Spark interval string such as '5 minutes',
// '10 seconds', '1 hour 30 minutes' or '2 days' (an optional leading
// "interval" and Go's "1h30m" are accepted too). Units: weeks, days,
// hours, minutes, seconds, milliseconds, microseconds, singular or
// plural. Months and years have no fixed length and are an error.
func ParseInterval(s string) (time.Duration, error) {
	iv, err := parseIntervalText(s)
	if err != nil {
		return 0, err
	}
	if iv.months != 0 {
		return 0, errMonths
	}
	return time.Duration(iv.us) * time.Microsecond, nil
}

// IntervalDuration is the length of an INTERVAL literal, for windows and
// watermark delays. Months and years are an error ("month intervals are
// not supported in windows; use days"); errors are *Error with the
// literal's position.
func IntervalDuration(lit *sql.IntervalLit) (time.Duration, error) {
	iv, err := intervalOf(lit)
	if err != nil {
		return 0, err
	}
	if iv.months != 0 {
		return 0, &Error{Pos: lit.Start, Msg: errMonths.Error()}
	}
	return time.Duration(iv.us) * time.Microsecond, nil
}

func intervalOf(lit *sql.IntervalLit) (interval, error) {
	var iv interval
	for _, p := range lit.Parts {
		var part interval
		if p.Unit == sql.UnitNone {
			var err error
			if part, err = parseIntervalText(p.Value); err != nil {
				return interval{}, &Error{Pos: p.Start, Msg: err.Error()}
			}
		} else if err := part.add(strings.TrimSpace(p.Value), strings.ToLower(p.Unit.String()), sql.Format(lit)); err != nil {
			return interval{}, &Error{Pos: p.Start, Msg: err.Error()}
		}
		if p.Neg {
			part.months, part.us = -part.months, -part.us
		}
		iv.months += part.months
		iv.us += part.us
	}
	return iv, nil
}

// formatInterval prints an interval as an INTERVAL literal's string.
func formatInterval(months, us int64) string {
	var parts []string
	if months != 0 {
		if months%12 == 0 {
			parts = append(parts, plural(months/12, "year"))
		} else {
			parts = append(parts, plural(months, "month"))
		}
	}
	neg := us < 0
	if neg {
		us = -us
	}
	sign := int64(1)
	if neg {
		sign = -1
	}
	for _, u := range []struct {
		n    int64
		name string
	}{{usPerDay, "day"}, {3600 * usPerSec, "hour"}, {60 * usPerSec, "minute"}, {usPerSec, "second"}, {1000, "millisecond"}, {1, "microsecond"}} {
		if us >= u.n {
			parts = append(parts, plural(sign*(us/u.n), u.name))
			us %= u.n
		}
	}
	if len(parts) == 0 {
		return "0 seconds"
	}
	return strings.Join(parts, " ")
}

func plural(n int64, unit string) string {
	if n == 1 || n == -1 {
		return strconv.FormatInt(n, 10) + " " + unit
	}
	return strconv.FormatInt(n, 10) + " " + unit + "s"
}
