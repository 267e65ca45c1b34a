package schema

import (
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// Reference: RFC 3339 section 5.6 (date-time, full-date).
func TestParseDateTime(t *testing.T) {
	ref := reference(t, `{"type":"string","format":"date-time"}`)
	tests := map[string]struct {
		in   string
		want string // as time.RFC3339Nano in UTC; "" means rejected
	}{
		"UTC":                   {"2024-05-01T12:30:45Z", "2024-05-01T12:30:45Z"},
		"lower-case t and z":    {"2024-05-01t12:30:45z", "2024-05-01T12:30:45Z"},
		"positive offset":       {"2024-05-01T01:30:45+02:00", "2024-04-30T23:30:45Z"},
		"negative offset":       {"2024-12-31T23:30:00-01:30", "2025-01-01T01:00:00Z"},
		"fraction":              {"2024-05-01T12:30:45.5Z", "2024-05-01T12:30:45.5Z"},
		"microseconds":          {"2024-05-01T12:30:45.123456Z", "2024-05-01T12:30:45.123456Z"},
		"nanoseconds truncated": {"2024-05-01T12:30:45.123456789Z", "2024-05-01T12:30:45.123456Z"},
		"leap day":              {"2024-02-29T00:00:00Z", "2024-02-29T00:00:00Z"},
		"before 1970":           {"1969-12-31T23:59:59.999999Z", "1969-12-31T23:59:59.999999Z"},
		"year 0":                {"0000-01-01T00:00:00Z", "0000-01-01T00:00:00Z"},
		"leap second":           {"2016-12-31T23:59:60Z", "2017-01-01T00:00:00Z"},
		"leap second in +01:00": {"2017-01-01T00:59:60+01:00", "2017-01-01T00:00:00Z"},
		"leap second not 23:59": {"2016-12-31T12:59:60Z", ""},
		"not a leap day":        {"2023-02-29T00:00:00Z", ""},
		"April 31":              {"2024-04-31T00:00:00Z", ""},
		"month 13":              {"2024-13-01T00:00:00Z", ""},
		"hour 24":               {"2024-05-01T24:00:00Z", ""},
		"minute 60":             {"2024-05-01T23:60:00Z", ""},
		"no offset":             {"2024-05-01T12:30:45", ""},
		"space separator":       {"2024-05-01 12:30:45Z", ""},
		"offset without colon":  {"2024-05-01T12:30:45+0200", ""},
		"offset hour 24":        {"2024-05-01T12:30:45+24:00", ""},
		"empty fraction":        {"2024-05-01T12:30:45.Z", ""},
		"date only":             {"2024-05-01", ""},
		"short year":            {"204-05-01T12:30:45Z", ""},
		"letters":               {"2024-0a-01T12:30:45Z", ""},
		"trailing junk":         {"2024-05-01T12:30:45Zx", ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			us, reason := parseDateTime([]byte(tc.in))
			refOK, _ := refAccepts(ref, []byte(strconv.Quote(tc.in)))
			if (reason == "") != refOK {
				t.Errorf("accepted = %v (%s), reference accepted = %v", reason == "", reason, refOK)
			}
			if tc.want == "" {
				if reason == "" {
					t.Errorf("accepted as %d, want rejected", us)
				}
				return
			}
			if reason != "" {
				t.Fatalf("rejected: %s", reason)
			}
			if got := time.UnixMicro(us).UTC().Format(time.RFC3339Nano); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

// TestParseDateTimeAgainstTime compares with the standard library over a
// range of instants and offsets.
func TestParseDateTimeAgainstTime(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		tm := time.Unix(r.Int64N(253402300799+62135596800)-62135596800, r.Int64N(1e9)).UTC() // years 0001..9999
		off := (r.IntN(47)-23)*3600 + r.IntN(4)*15*60
		loc := time.FixedZone("", off)
		s := tm.In(loc).Format("2006-01-02T15:04:05.999999999Z07:00")
		us, reason := parseDateTime([]byte(s))
		if reason != "" {
			t.Fatalf("%s: %s", s, reason)
		}
		if want := tm.Truncate(time.Microsecond).UnixMicro(); us != want {
			t.Fatalf("%s: got %d, want %d", s, us, want)
		}
	}
}

func TestParseDate(t *testing.T) {
	for in, want := range map[string]string{
		"1970-01-01": "1970-01-01", "2024-02-29": "2024-02-29", "1900-02-28": "1900-02-28", "2000-02-29": "2000-02-29",
		"0000-01-01": "0000-01-01", "9999-12-31": "9999-12-31",
		"1900-02-29": "", "2024-00-10": "", "2024-01-00": "", "2024-1-01": "", "2024-01-01T": "", "24-01-01": "",
	} {
		t.Run(in, func(t *testing.T) {
			days, reason := parseDate([]byte(in))
			if want == "" {
				if reason == "" {
					t.Errorf("accepted as day %d", days)
				}
				return
			}
			if reason != "" {
				t.Fatalf("rejected: %s", reason)
			}
			if got := time.Unix(int64(days)*86400, 0).UTC().Format("2006-01-02"); got != want {
				t.Errorf("got %s", got)
			}
		})
	}
}

// TestDateMemo checks that a decoder's date memo changes no outcome,
// whatever was parsed before.
func TestDateMemo(t *testing.T) {
	in := []string{"2024-02-29", "2023-02-29", "2024-02-29T00:00:00Z", "2023-02-29T00:00:00Z", "2024-02-29T23:59:60Z",
		"2024-02-29T12:00:00.5+01:00", "2024-02-29X12:00:00Z", "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
		"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00T00:00:00Z", "1970-01-01", "1970-01-01T00:00:00Z", ""}
	for _, a := range in {
		for _, b := range in {
			for _, aTime := range []bool{false, true} {
				var m dateMemo
				if aTime {
					m.dateTime([]byte(a))
				} else {
					m.date([]byte(a))
				}
				if got, want := fmt.Sprint(m.date([]byte(b))), fmt.Sprint(parseDate([]byte(b))); got != want {
					t.Errorf("after %q: date(%q) = %s, want %s", a, b, got, want)
				}
				if got, want := fmt.Sprint(m.dateTime([]byte(b))), fmt.Sprint(parseDateTime([]byte(b))); got != want {
					t.Errorf("after %q: dateTime(%q) = %s, want %s", a, b, got, want)
				}
			}
		}
	}
}

// TestParseInt compares with exact rational arithmetic, which is how the
// reference validator decides whether a number is an integer.
func TestParseInt(t *testing.T) {
	cases := []string{
		"0", "-0", "7", "-7", "10", "1.0", "1.5", "1e2", "1E+2", "1e-2", "100e-2", "150e-2", "0.0", "0e5", "-0.0e-3",
		"9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
		"92233720368547758070e-1", "92233720368547758080e-1", "9.223372036854775807e18", "9.223372036854775808e18",
		"18446744073709551615", "18446744073709551616", "99999999999999999999", "1e18", "1e19", "1e400", "1e-400",
		"0.000000000000000000000000000000001e33", "12345678901234567890123e-4", "1.00000000000000000000001",
		"1000000000000000000000000000000000000000000000000000e-51",
	}
	if _, res := parseInt("1e999999999999999999999"); res != numOutOfRange {
		t.Errorf("huge exponent: got %d, want out of range", res)
	}
	if _, res := parseInt("1e-999999999999999999999"); res != numNotInteger {
		t.Errorf("huge negative exponent: got %d, want not an integer", res)
	}
	r := rand.New(rand.NewPCG(5, 6))
	for range 20000 {
		var sb strings.Builder
		if r.IntN(2) == 0 {
			sb.WriteByte('-')
		}
		sb.WriteString(strconv.FormatUint(r.Uint64()>>r.IntN(64), 10))
		if r.IntN(2) == 0 {
			sb.WriteByte('.')
			sb.WriteString(strings.Repeat("0", r.IntN(3)))
			sb.WriteString(strconv.Itoa(r.IntN(100)))
		}
		if r.IntN(2) == 0 {
			fmt.Fprintf(&sb, "e%d", r.IntN(41)-20)
		}
		cases = append(cases, sb.String())
	}
	for _, s := range cases {
		got, res := parseInt(s)
		rat, ok := new(big.Rat).SetString(s)
		if !ok {
			t.Fatalf("big.Rat cannot parse %q", s)
		}
		switch {
		case !rat.IsInt():
			if res != numNotInteger {
				t.Errorf("%s: got (%d, %d), want not an integer", s, got, res)
			}
		case !rat.Num().IsInt64():
			if res != numOutOfRange {
				t.Errorf("%s: got (%d, %d), want out of range", s, got, res)
			}
		default:
			if res != numOK || got != rat.Num().Int64() {
				t.Errorf("%s: got (%d, %d), want %d", s, got, res, rat.Num().Int64())
			}
		}
	}
}

func TestScanJSON(t *testing.T) {
	tests := map[string]struct {
		in  string
		err string // "" when valid
	}{
		"object":            {`{"a":[1,-2.5e+3,true,false,null,"x"],"b":{}}`, ""},
		"whitespace":        {" \t\r\n[ 1 , 2 ] \n", ""},
		"escapes":           {`"\" \\ \/ \b \f \n \r \t \u00e9 \ud83d\ude00"`, ""},
		"deep but allowed":  {strings.Repeat("[", 299) + strings.Repeat("]", 299), ""},
		"too deep":          {strings.Repeat("[", 300) + strings.Repeat("]", 300), "invalid JSON at byte 299: nesting deeper than 299"},
		"leading zero":      {`01`, "invalid JSON at byte 1: unexpected '1' after top-level value"},
		"bare fraction":     {`1.`, "invalid JSON at byte 2: invalid number: expected digit after decimal point"},
		"plus sign":         {`+1`, "invalid JSON at byte 0: unexpected '+' looking for beginning of value"},
		"bad exponent":      {`1e`, "invalid JSON at byte 2: invalid number: expected digit in exponent"},
		"Infinity":          {`[Infinity]`, "invalid JSON at byte 1: unexpected 'I' looking for beginning of value"},
		"trailing comma":    {`[1,]`, "invalid JSON at byte 3: unexpected ']' looking for beginning of value"},
		"missing colon":     {`{"a" 1}`, "invalid JSON at byte 5: unexpected '1' after object key, expected ':'"},
		"unquoted key":      {`{a:1}`, "invalid JSON at byte 1: unexpected 'a' looking for beginning of object key"},
		"bad literal":       {`tru`, "invalid JSON at byte 0: invalid literal, expected true"},
		"bad escape":        {`"\x"`, "invalid JSON at byte 1: invalid escape sequence in string"},
		"short u escape":    {`"\u12"`, `invalid JSON at byte 1: invalid \u escape`},
		"lone low":          {`"\udc00"`, `invalid JSON at byte 1: lone UTF-16 surrogate in \u escape`},
		"high then letter":  {`"\ud800\u0041"`, `invalid JSON at byte 1: lone UTF-16 surrogate in \u escape`},
		"unterminated":      {`"abc`, "invalid JSON at byte 4: unterminated string"},
		"raw newline":       {"\"a\nb\"", "invalid JSON at byte 2: control character 0x0a in string"},
		"surrogate in UTF8": {"\"\xed\xa0\x80\"", "invalid JSON at byte 1: invalid UTF-8 in string"},
		"two values":        {`{} {}`, "invalid JSON at byte 3: unexpected '{' after top-level value"},
		"empty":             {``, "invalid JSON at byte 0: unexpected end of input"},
		"unclosed object":   {`{"a":1`, "invalid JSON at byte 6: unexpected end of input"},
		"binary":            {"\x00", "invalid JSON at byte 0: unexpected byte 0x00 looking for beginning of value"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := scanJSON([]byte(tc.in))
			switch {
			case tc.err == "" && err != nil:
				t.Errorf("rejected: %v", err)
			case tc.err != "" && err == nil:
				t.Errorf("accepted")
			case tc.err != "" && err.Error() != tc.err:
				t.Errorf("error:\n got %v\nwant %s", err, tc.err)
			}
		})
	}
}

// TestParseFloat checks the fast path against strconv.ParseFloat, bit for bit.
func TestParseFloat(t *testing.T) {
	cases := []string{"0", "-0", "-0.0", "1", "249.99", "0.1", "0.3", "123456789012345", "1234567890123456",
		"0.000000000000001", "9007199254740993", "1.7976931348623157e308", "1e400", "-1e400", "4.9e-324", "1e-400"}
	r := rand.New(rand.NewPCG(7, 8))
	for range 50000 {
		cases = append(cases, strconv.FormatFloat((r.Float64()-0.5)*math.Pow(10, float64(r.IntN(30)-10)), 'f', r.IntN(12), 64))
	}
	for _, s := range cases {
		want, err := strconv.ParseFloat(s, 64)
		got, ok := parseFloat(s)
		if err != nil && math.IsInf(want, 0) {
			if ok {
				t.Errorf("%s: got %v, want out of range", s, got)
			}
			continue
		}
		if !ok || math.Float64bits(got) != math.Float64bits(want) {
			t.Errorf("%s: got %v (%v), want %v", s, got, ok, want)
		}
	}
}

func TestValidUTF8(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	alphabet := []byte("ab\x00\x7f\x80\xbf\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xed\xa0\xff")
	for range 20000 {
		b := make([]byte, r.IntN(20))
		for i := range b {
			if r.IntN(4) == 0 {
				b[i] = alphabet[r.IntN(len(alphabet))]
			} else {
				b[i] = 'a' + byte(r.IntN(26))
			}
		}
		if got, want := validUTF8(b), utf8.Valid(b); got != want {
			t.Fatalf("validUTF8(%q) = %v, want %v", b, got, want)
		}
	}
}
