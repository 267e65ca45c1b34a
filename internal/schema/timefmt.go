package schema

// This file parses the JSON Schema formats "date-time" and "date"
// (RFC 3339 section 5.6) without allocating. It accepts exactly what
// santhosh-tekuri/jsonschema's format checks accept, except that every
// numeric field must be plain digits (that library lets strconv.Atoi accept
// "+1" as an hour).

// parseDate parses full-date (YYYY-MM-DD) and returns days since 1970-01-01.
func parseDate(s []byte) (days int32, reason string) {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return 0, "want YYYY-MM-DD"
	}
	y1, ok1 := digits2(s[0], s[1])
	y2, ok2 := digits2(s[2], s[3])
	m, ok3 := digits2(s[5], s[6])
	d, ok4 := digits2(s[8], s[9])
	y := y1*100 + y2
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return 0, "want YYYY-MM-DD"
	}
	if m < 1 || m > 12 {
		return 0, "month out of range"
	}
	if d < 1 || d > daysIn(m, y) {
		return 0, "day out of range"
	}
	return int32(daysFromCivil(y, m, d)), ""
}

// dateMemo remembers the last valid full-date parsed: the records of a
// stream mostly carry dates of the same day.
type dateMemo struct {
	text [10]byte
	days int32
	ok   bool // text and days are set
}

// date is parseDate, through the memo.
func (m *dateMemo) date(s []byte) (days int32, reason string) {
	if m.ok && len(s) == 10 && string(s) == string(m.text[:]) {
		return m.days, ""
	}
	days, reason = parseDate(s)
	if reason == "" {
		copy(m.text[:], s)
		m.days, m.ok = days, true
	}
	return days, reason
}

// parseDateTime parses date-time (e.g. 2024-05-01T12:30:00.25+02:00) and
// returns microseconds since the Unix epoch in UTC. Fractions finer than a
// microsecond are truncated. A leap second (:60, allowed only at 23:59 UTC)
// is counted as the first second of the next minute.
func parseDateTime(s []byte) (micros int64, reason string) {
	var m dateMemo
	return m.dateTime(s)
}

// dateTime is parseDateTime, with the date through the memo.
func (dm *dateMemo) dateTime(s []byte) (micros int64, reason string) {
	if len(s) < 20 {
		return 0, "want RFC 3339 date-time, e.g. 2024-05-01T12:30:00Z"
	}
	if s[10] != 'T' && s[10] != 't' {
		return 0, "want 'T' between date and time"
	}
	days, reason := dm.date(s[:10])
	if reason != "" {
		return 0, reason
	}
	t := s[11:]
	if len(t) < 9 || t[2] != ':' || t[5] != ':' {
		return 0, "want time as hh:mm:ss"
	}
	h, ok1 := digits2(t[0], t[1])
	m, ok2 := digits2(t[3], t[4])
	sec, ok3 := digits2(t[6], t[7])
	if !ok1 || !ok2 || !ok3 {
		return 0, "want time as hh:mm:ss"
	}
	if h > 23 || m > 59 || sec > 60 {
		return 0, "hour, minute or second out of range"
	}
	t = t[8:]
	var frac int64
	if len(t) > 0 && t[0] == '.' {
		n := 1
		for n < len(t) && t[n] >= '0' && t[n] <= '9' {
			if n <= 6 {
				frac = frac*10 + int64(t[n]-'0')
			}
			n++
		}
		if n == 1 {
			return 0, "no digits in second fraction"
		}
		for k := n; k <= 6; k++ {
			frac *= 10
		}
		t = t[n:]
	}
	var off int // offset east of UTC in minutes
	switch {
	case len(t) == 1 && (t[0] == 'Z' || t[0] == 'z'):
	case len(t) == 6 && (t[0] == '+' || t[0] == '-') && t[3] == ':':
		zh, ok1 := digits2(t[1], t[2])
		zm, ok2 := digits2(t[4], t[5])
		if !ok1 || !ok2 {
			return 0, "want offset as Z or ±hh:mm"
		}
		if zh > 23 || zm > 59 {
			return 0, "offset out of range"
		}
		off = zh*60 + zm
		if t[0] == '-' {
			off = -off
		}
	default:
		return 0, "want offset as Z or ±hh:mm"
	}
	if sec == 60 {
		utc := ((h*60+m-off)%1440 + 1440) % 1440
		if utc != 23*60+59 {
			return 0, "leap second not at 23:59 UTC"
		}
	}
	secs := int64(days)*86400 + int64(h*3600+m*60+sec) - int64(off)*60
	return secs*1_000_000 + frac, ""
}

// digits2 parses two ASCII digits.
func digits2(a, b byte) (int, bool) {
	a, b = a-'0', b-'0'
	return int(a)*10 + int(b), a <= 9 && b <= 9
}

func isLeap(y int) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

func daysIn(m, y int) int {
	switch m {
	case 2:
		if isLeap(y) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil returns days since 1970-01-01 in the proleptic Gregorian
// calendar (Howard Hinnant's algorithm).
func daysFromCivil(y, m, d int) int {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era--
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}
