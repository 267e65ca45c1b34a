package agg

import (
	"math"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// aggCol is one aggregate's state for every group slot, in flat slices
// indexed by slot. Which slices are used depends on the function:
//
//	Count, CountStar      n
//	CountDistinct         di (vInt, vFloat as normalised bits) or ds (vStr)
//	Sum                   n (non-null inputs), i or f
//	Avg                   n, f
//	Min, Max              n (non-null inputs), i, f or s
//	First, Last           n (1 once set), null, seq (arrival), i, f or s
type aggCol struct {
	spec Spec
	vk   valKind

	n    []int64
	i    []int64
	f    []float64
	s    []string
	null []bool
	seq  []int64
	di   []map[int64]struct{}
	ds   []map[string]struct{}

	// per-batch input, set by bind
	in aggInput
}

// aggInput is one Add call's argument column for an aggregate.
type aggInput struct {
	ints   []int64
	floats []float64
	strs   *array.String
	arr    arrow.Array // for null checks by First/Last; nil if no nulls
	use    []bool      // valid and passing the filter; nil means every row
	pass   []bool      // passing the filter; nil means every row
	ibuf   []int64
	ubuf   []bool
	pbuf   []bool
}

func newAggCol(s Spec) *aggCol {
	c := &aggCol{spec: s}
	if s.Func != CountStar {
		c.vk = valKindOf(s.Type)
	}
	return c
}

// grow appends one zeroed slot.
func (c *aggCol) grow() {
	c.n = append(c.n, 0)
	switch c.spec.Func {
	case CountDistinct:
		if c.vk == vStr {
			c.ds = append(c.ds, nil)
		} else {
			c.di = append(c.di, nil)
		}
		return
	case Avg:
		c.f = append(c.f, 0)
		return
	case Count, CountStar:
		return
	case First, Last:
		c.null = append(c.null, false)
		c.seq = append(c.seq, 0)
	}
	switch c.vk {
	case vInt:
		c.i = append(c.i, 0)
	case vFloat:
		c.f = append(c.f, 0)
	case vStr:
		c.s = append(c.s, "")
	}
}

// reset zeroes slot g.
func (c *aggCol) reset(g int32) {
	c.n[g] = 0
	if c.di != nil {
		c.di[g] = nil
	}
	if c.ds != nil {
		c.ds[g] = nil
	}
	if c.i != nil {
		c.i[g] = 0
	}
	if c.f != nil {
		c.f[g] = 0
	}
	if c.s != nil {
		c.s[g] = ""
	}
	if c.null != nil {
		c.null[g] = false
		c.seq[g] = 0
	}
}

// bind prepares the per-batch input from arg and filter (either may be nil).
func (c *aggCol) bind(arg, filter arrow.Array, n int) {
	in := &c.in
	in.ints, in.floats, in.strs, in.arr, in.use, in.pass = nil, nil, nil, nil, nil, nil
	if filter != nil {
		fb := filter.(*array.Boolean)
		p := grow(&in.pbuf, n)
		if fb.NullN() == 0 {
			for r := range p {
				p[r] = fb.Value(r)
			}
		} else {
			for r := range p {
				p[r] = fb.IsValid(r) && fb.Value(r)
			}
		}
		in.pass = p
	}
	if c.spec.Func == CountStar {
		in.use = in.pass
		return
	}
	switch c.vk {
	case vInt:
		in.ints = intValues(arg, &in.ibuf)
	case vFloat:
		in.floats = arg.(*array.Float64).Float64Values()
	case vStr:
		in.strs = arg.(*array.String)
	}
	if arg.NullN() > 0 {
		in.arr = arg
		u := grow(&in.ubuf, n)
		for r := range u {
			u[r] = arg.IsValid(r) && (in.pass == nil || in.pass[r])
		}
		in.use = u
	} else {
		in.use = in.pass
	}
}

// floatGreater orders floats as Spark does: NaN above everything.
func floatGreater(a, b float64) bool {
	if a != a {
		return b == b
	}
	if b != b {
		return false
	}
	return a > b
}

// update applies rows[k] to slots[k] for every k. seqBase is the arrival
// number of row 0 of the batch.
func (c *aggCol) update(rows, slots []int32, seqBase int64) {
	in := &c.in
	use := in.use
	n := c.n
	switch c.spec.Func {
	case Count, CountStar:
		if use == nil {
			for _, g := range slots {
				n[g]++
			}
			return
		}
		for k, r := range rows {
			if use[r] {
				n[slots[k]]++
			}
		}
	case CountDistinct:
		for k, r := range rows {
			if use != nil && !use[r] {
				continue
			}
			g := slots[k]
			switch c.vk {
			case vInt:
				c.addDistinctInt(g, in.ints[r])
			case vFloat:
				c.addDistinctInt(g, int64(math.Float64bits(normFloat(in.floats[r]))))
			case vStr:
				m := c.ds[g]
				if m == nil {
					m = map[string]struct{}{}
					c.ds[g] = m
				}
				if v := in.strs.Value(int(r)); !hasKey(m, v) {
					m[strings.Clone(v)] = struct{}{}
				}
			}
		}
	case Sum, Avg:
		for k, r := range rows {
			if use != nil && !use[r] {
				continue
			}
			g := slots[k]
			n[g]++
			switch {
			case c.vk == vFloat:
				c.f[g] += in.floats[r]
			case c.spec.Func == Avg:
				c.f[g] += float64(in.ints[r])
			default:
				c.i[g] += in.ints[r]
			}
		}
	case Min, Max:
		isMax := c.spec.Func == Max
		switch c.vk {
		case vInt:
			vals, cur := in.ints, c.i
			if isMax && use == nil {
				for k, r := range rows {
					g := slots[k]
					if v := vals[r]; n[g] == 0 || v > cur[g] {
						cur[g] = v
					}
					n[g]++
				}
				return
			}
			for k, r := range rows {
				if use != nil && !use[r] {
					continue
				}
				g := slots[k]
				v := vals[r]
				if n[g] == 0 || (isMax && v > cur[g]) || (!isMax && v < cur[g]) {
					cur[g] = v
				}
				n[g]++
			}
		case vFloat:
			for k, r := range rows {
				if use != nil && !use[r] {
					continue
				}
				g := slots[k]
				v := in.floats[r]
				if n[g] == 0 || (isMax && floatGreater(v, c.f[g])) || (!isMax && floatGreater(c.f[g], v)) {
					c.f[g] = v
				}
				n[g]++
			}
		case vStr:
			for k, r := range rows {
				if use != nil && !use[r] {
					continue
				}
				g := slots[k]
				v := in.strs.Value(int(r))
				if n[g] == 0 || (isMax && v > c.s[g]) || (!isMax && v < c.s[g]) {
					c.s[g] = strings.Clone(v)
				}
				n[g]++
			}
		}
	case First, Last:
		isFirst := c.spec.Func == First
		for k, r := range rows {
			if in.pass != nil && !in.pass[r] {
				continue
			}
			g := slots[k]
			seq := seqBase + int64(r)
			if n[g] != 0 && (isFirst && seq >= c.seq[g] || !isFirst && seq <= c.seq[g]) {
				continue
			}
			n[g] = 1
			c.seq[g] = seq
			isNull := in.arr != nil && in.arr.IsNull(int(r))
			c.null[g] = isNull
			c.setValue(g, r, isNull)
		}
	}
}

func hasKey[K comparable](m map[K]struct{}, k K) bool {
	_, ok := m[k]
	return ok
}

func (c *aggCol) addDistinctInt(g int32, v int64) {
	m := c.di[g]
	if m == nil {
		m = map[int64]struct{}{}
		c.di[g] = m
	}
	m[v] = struct{}{}
}

func (c *aggCol) setValue(g, r int32, isNull bool) {
	switch c.vk {
	case vInt:
		c.i[g] = 0
		if !isNull {
			c.i[g] = c.in.ints[r]
		}
	case vFloat:
		c.f[g] = 0
		if !isNull {
			c.f[g] = c.in.floats[r]
		}
	case vStr:
		c.s[g] = ""
		if !isNull {
			c.s[g] = strings.Clone(c.in.strs.Value(int(r)))
		}
	}
}

// merge folds slot src into slot dst (session merging).
func (c *aggCol) merge(dst, src int32) {
	n := c.n
	switch c.spec.Func {
	case Count, CountStar:
		n[dst] += n[src]
	case CountDistinct:
		if c.vk == vStr {
			if c.ds[dst] == nil {
				c.ds[dst], c.ds[src] = c.ds[src], nil
				return
			}
			for v := range c.ds[src] {
				c.ds[dst][v] = struct{}{}
			}
		} else {
			if c.di[dst] == nil {
				c.di[dst], c.di[src] = c.di[src], nil
				return
			}
			for v := range c.di[src] {
				c.di[dst][v] = struct{}{}
			}
		}
	case Sum, Avg:
		n[dst] += n[src]
		if c.vk == vFloat || c.spec.Func == Avg {
			c.f[dst] += c.f[src]
		} else {
			c.i[dst] += c.i[src]
		}
	case Min, Max:
		if n[src] == 0 {
			return
		}
		isMax := c.spec.Func == Max
		take := n[dst] == 0
		if !take {
			switch c.vk {
			case vInt:
				take = isMax && c.i[src] > c.i[dst] || !isMax && c.i[src] < c.i[dst]
			case vFloat:
				take = isMax && floatGreater(c.f[src], c.f[dst]) || !isMax && floatGreater(c.f[dst], c.f[src])
			case vStr:
				take = isMax && c.s[src] > c.s[dst] || !isMax && c.s[src] < c.s[dst]
			}
		}
		if take {
			c.copyValue(dst, src)
		}
		n[dst] += n[src]
	case First, Last:
		if n[src] == 0 {
			return
		}
		if n[dst] == 0 || c.spec.Func == First && c.seq[src] < c.seq[dst] || c.spec.Func == Last && c.seq[src] > c.seq[dst] {
			n[dst] = 1
			c.seq[dst] = c.seq[src]
			c.null[dst] = c.null[src]
			c.copyValue(dst, src)
		}
	}
}

func (c *aggCol) copyValue(dst, src int32) {
	switch c.vk {
	case vInt:
		c.i[dst] = c.i[src]
	case vFloat:
		c.f[dst] = c.f[src]
	case vStr:
		c.s[dst] = c.s[src]
	}
}

// isNullAt reports whether the output of slot g is null.
func (c *aggCol) isNullAt(g int32) bool {
	switch c.spec.Func {
	case Count, CountStar, CountDistinct:
		return false
	case First, Last:
		return c.n[g] == 0 || c.null[g]
	}
	return c.n[g] == 0
}

// build returns the output column for slots.
func (c *aggCol) build(mem memory.Allocator, slots []int32) arrow.Array {
	switch c.spec.Func {
	case Count, CountStar, CountDistinct:
		b := array.NewInt64Builder(mem)
		defer b.Release()
		b.Reserve(len(slots))
		for _, g := range slots {
			switch {
			case c.spec.Func != CountDistinct:
				b.UnsafeAppend(c.n[g])
			case c.vk == vStr:
				b.UnsafeAppend(int64(len(c.ds[g])))
			default:
				b.UnsafeAppend(int64(len(c.di[g])))
			}
		}
		return b.NewArray()
	case Avg:
		b := array.NewFloat64Builder(mem)
		defer b.Release()
		b.Reserve(len(slots))
		for _, g := range slots {
			if c.n[g] == 0 {
				b.UnsafeAppendBoolToBitmap(false)
			} else {
				b.UnsafeAppend(c.f[g] / float64(c.n[g]))
			}
		}
		return b.NewArray()
	}
	typ := c.spec.outType()
	b := array.NewBuilder(mem, typ)
	defer b.Release()
	b.Reserve(len(slots))
	for _, g := range slots {
		if c.isNullAt(g) {
			b.AppendNull()
			continue
		}
		switch c.vk {
		case vInt:
			appendInt(b, c.i[g])
		case vFloat:
			b.(*array.Float64Builder).Append(c.f[g])
		case vStr:
			b.(*array.StringBuilder).Append(c.s[g])
		}
	}
	return b.NewArray()
}

// appendInt appends v to an integer-like builder.
func appendInt(b array.Builder, v int64) {
	switch b := b.(type) {
	case *array.Int64Builder:
		b.Append(v)
	case *array.Int32Builder:
		b.Append(int32(v))
	case *array.TimestampBuilder:
		b.Append(arrow.Timestamp(v))
	case *array.Date32Builder:
		b.Append(arrow.Date32(v))
	case *array.BooleanBuilder:
		b.Append(v != 0)
	}
}

// varBytes is the approximate heap memory slot g holds beyond fixed slices.
func (c *aggCol) varBytes(g int32) int64 {
	var n int64
	if c.s != nil {
		n += int64(len(c.s[g]))
	}
	if c.di != nil && c.di[g] != nil {
		n += 48 + 16*int64(len(c.di[g]))
	}
	if c.ds != nil && c.ds[g] != nil {
		n += 48
		for v := range c.ds[g] {
			n += 24 + int64(len(v))
		}
	}
	return n
}

// fixedBytes is the size of one slot in c's slices.
func (c *aggCol) fixedBytes() int64 {
	n := int64(8)
	if c.i != nil {
		n += 8
	}
	if c.f != nil {
		n += 8
	}
	if c.s != nil {
		n += 16
	}
	if c.null != nil {
		n += 9
	}
	if c.di != nil || c.ds != nil {
		n += 8
	}
	return n
}
