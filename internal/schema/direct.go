package schema

import "math"

// The direct path of [Decoder.AppendColumn]: one pass over the record that
// checks syntax and schema and appends the values to the column as it
// meets them, instead of recording them on the tape and replaying it. A
// record that fails part way is cut off the column again (column.truncate)
// and decoded once more on the tape path, which finds the precise error;
// so is a record with a repeated key (the last one wins there). Records
// that pass are most records, and for them the replay is saved.

// directOK reports whether AppendColumn may take the direct path for s:
// the compiled schema checks everything (no full validator runs after the
// decoder), and no object has more fields than a uint64 has bits.
func (s *Schema) directOK() bool {
	var walk func(n *node) bool
	walk = func(n *node) bool {
		switch n.kind {
		case kindList:
			return walk(n.elem)
		case kindStruct:
			if len(n.fields) > 64 {
				return false
			}
			for _, f := range n.fields {
				if !walk(f.node) {
					return false
				}
			}
		}
		return true
	}
	return s.full == nil && walk(s.root)
}

// direct decodes the value at d.i for c's node, which sits at nesting
// depth, appending it to c. It reports false at the first syntax error,
// schema violation or repeated key, leaving c with a partial row that
// column.truncate removes.
func (d *Decoder) direct(c *column, depth int) bool {
	n := c.n
	b, i := d.b, d.i
	if i >= len(b) || depth > maxDepth {
		return false
	}
	ch := b[i]
	if ch == 'n' {
		if !n.nullable || len(b)-i < 4 || string(b[i:i+4]) != "null" {
			return false
		}
		d.i = i + 4
		c.appendNull()
		return true
	}
	switch n.kind {
	case kindString, kindTimestamp, kindDate:
		if ch != '"' {
			return false
		}
		s, _, ok := d.str() // an escaped string is in d.buf, copied at once
		if !ok {
			return false
		}
		switch n.kind {
		case kindString:
			c.appendString(s)
			d.buf = d.buf[:0]
			return true
		case kindTimestamp:
			us, reason := d.dates.dateTime(s)
			if reason != "" {
				return false
			}
			c.w8 = append(c.w8, us)
		default:
			days, reason := d.dates.date(s)
			if reason != "" {
				return false
			}
			c.w4 = append(c.w4, days)
		}
		d.buf = d.buf[:0]
	case kindInt, kindFloat:
		if ch != '-' && (ch < '0' || ch > '9') {
			return false
		}
		end, msg := scanNumber(b, i)
		if msg != "" {
			return false
		}
		text := b2s(b[i:end])
		if n.kind == kindInt {
			v, r := parseInt(text)
			if r != numOK {
				return false
			}
			c.w8 = append(c.w8, v)
		} else {
			f, ok := parseFloat(text)
			if !ok {
				return false
			}
			c.w8 = append(c.w8, int64(math.Float64bits(f)))
		}
		d.i = end
	case kindBool:
		switch {
		case ch == 't' && len(b)-i >= 4 && string(b[i:i+4]) == "true":
			c.appendBool(true)
			d.i = i + 4
		case ch == 'f' && len(b)-i >= 5 && string(b[i:i+5]) == "false":
			c.appendBool(false)
			d.i = i + 5
		default:
			return false
		}
	case kindJSON:
		if n.accept == acceptObject && ch != '{' || n.accept == acceptArray && ch != '[' {
			return false
		}
		end, err := scanValue(b, i, depth)
		if err != nil {
			return false
		}
		c.appendString(b[i:end])
		d.i = end
		return true
	case kindList:
		if ch != '[' || !d.directList(c, depth) {
			return false
		}
	case kindStruct:
		if ch != '{' || !d.directObject(c, depth) {
			return false
		}
	default: // kindNull only holds null
		return false
	}
	c.valued()
	return true
}

// directList decodes the array at d.i into list column c, but for the
// row's validity.
func (d *Decoder) directList(c *column, depth int) bool {
	b := d.b
	d.i = skipWS(b, d.i+1)
	if d.i < len(b) && b[d.i] == ']' {
		d.i++
	} else {
		for {
			if !d.direct(c.elem, depth+1) {
				return false
			}
			d.i = skipWS(b, d.i)
			if d.i >= len(b) {
				return false
			}
			if b[d.i] == ',' {
				d.i = skipWS(b, d.i+1)
				continue
			}
			if b[d.i] != ']' {
				return false
			}
			d.i++
			break
		}
	}
	c.w4 = append(c.w4, int32(c.elem.length))
	return true
}

// directObject decodes the object at d.i into struct column c, but for the
// row's validity. It reads keys as [Decoder.object] does.
func (d *Decoder) directObject(c *column, depth int) bool {
	n := c.n
	b := d.b
	i := skipWS(b, d.i+1)
	next := 0 // the field expected next
	k := 0    // the position of the key in the object
	var seen uint64
	if len(d.shapes) <= n.id {
		d.shapes = make([]shape, d.s.objs)
	}
	sh := &d.shapes[n.id]
	if i < len(b) && b[i] == '}' {
		i++
	} else {
		for {
			if i >= len(b) || b[i] != '"' {
				return false
			}
			f, j, vio := d.objectKey(n, sh, next, k, i)
			if vio != nil {
				return false
			}
			i = j
			k++
			if f >= 0 {
				if seen&(1<<f) != 0 {
					return false // a repeated key: the tape path keeps the last
				}
				seen |= 1 << f
				next = f + 1
				d.i = i
				if !d.direct(&c.fields[f], depth+1) {
					return false
				}
				i = d.i
			} else {
				end, err := scanValue(b, i, depth+1)
				if err != nil {
					return false
				}
				i = end
			}
			i = skipWS(b, i)
			if i >= len(b) {
				return false
			}
			if b[i] == ',' {
				i = skipWS(b, i+1)
				continue
			}
			if b[i] != '}' {
				return false
			}
			i++
			break
		}
	}
	d.i = i
	for _, f := range n.required {
		if seen&(1<<f) == 0 {
			return false
		}
	}
	if all := uint64(1)<<len(c.fields) - 1; seen != all {
		for f := range c.fields {
			if seen&(1<<f) == 0 {
				c.fields[f].appendNull()
			}
		}
	}
	return true
}

// truncate cuts c back to rows rows, removing what a record that failed
// part way appended to it and its children (which a struct's children may
// hold one more row of than the struct, and a list's element column
// elements of the row being decoded).
func (c *column) truncate(rows int) {
	switch c.n.kind {
	case kindStruct:
		for f := range c.fields {
			c.fields[f].truncate(rows)
		}
	case kindList:
		c.elem.truncate(int(c.w4[rows]))
	}
	if c.length <= rows {
		return
	}
	if c.valid != nil {
		for i := rows; i < c.length; i++ {
			if c.valid[i>>3]&(1<<(i&7)) == 0 {
				c.nulls--
			}
		}
		c.valid = cutBits(c.valid, rows)
	} else if c.n.kind == kindNull {
		c.nulls -= c.length - rows
	}
	switch c.n.kind {
	case kindInt, kindFloat, kindTimestamp:
		c.w8 = c.w8[:rows]
	case kindDate:
		c.w4 = c.w4[:rows]
	case kindBool:
		c.data = cutBits(c.data, rows)
	case kindPlain, kindString, kindJSON:
		c.data = c.data[:c.w4[rows]]
		c.w4 = c.w4[:rows+1]
	case kindList:
		c.w4 = c.w4[:rows+1]
	}
	c.length = rows
}

// cutBits cuts bitmap b to n bits, clearing the rest of its last byte:
// appends set bits without clearing them.
func cutBits(b []byte, n int) []byte {
	b = b[:min(len(b), (n+7)/8)]
	if r := n & 7; r != 0 && len(b) > 0 {
		b[len(b)-1] &= byte(1)<<r - 1
	}
	return b
}
