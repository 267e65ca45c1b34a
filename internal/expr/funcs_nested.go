package expr

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"math"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Functions on arrays, maps and structs, and hashes.

func init() {
	register("size cardinality", 1, 1, bindSize)
	register("array_contains", 2, 2, bindArrayContains)
	register("element_at", 2, 2, func(f *fcall) (Expr, error) {
		return f.b.index(f.args[0], f.args[1], f.pos[1], true)
	})
	register("struct", 1, -1, bindStruct)
	register("named_struct", 2, -1, bindNamedStruct)
	register("array", 0, -1, bindArray)
	register("md5", 1, 1, digest(func() hash.Hash { return md5.New() }))
	register("sha1 sha", 1, 1, digest(func() hash.Hash { return sha1.New() }))
	register("sha2", 2, 2, bindSha2)
	register("hash", 1, -1, bindHash)
}

func bindSize(f *fcall) (Expr, error) {
	switch kindOf(f.args[0].Type()) {
	case kList, kMap, kNull:
	default:
		return nil, f.errorf(0, "needs an ARRAY or a MAP, got %s", typeName(f.args[0].Type()))
	}
	return f.done(tInt, func(ctx *Ctx, n int, as []arrow.Array) (arrow.Array, error) {
		db, out := allocI64(ctx.mem(), n)
		a, _ := as[0].(array.ListLike)
		for i := range n {
			if a == nil || a.IsNull(i) {
				out[i] = -1 // Spark's default (spark.sql.legacy.sizeOfNull)
				continue
			}
			start, end := a.ValueOffsets(i)
			out[i] = end - start
		}
		return makeArray(tInt, n, nil, db), nil
	})
}

func bindArrayContains(f *fcall) (Expr, error) {
	lt, ok := f.args[0].Type().(*arrow.ListType)
	if !ok {
		if kindOf(f.args[0].Type()) == kNull {
			return &constExpr{typ: tBool}, nil
		}
		return nil, f.errorf(0, "needs an ARRAY, got %s", typeName(f.args[0].Type()))
	}
	et := widenType(lt.Elem())
	if err := f.coerce(1, et); err != nil {
		return nil, err
	}
	return f.done(tBool, func(ctx *Ctx, n int, as []arrow.Array) (arrow.Array, error) {
		l := as[0].(*array.List)
		vals, err := castArray(ctx, l.ListValues(), et, false)
		if err != nil {
			return nil, err
		}
		defer vals.Release()
		x := as[1]
		return buildBool(ctx.mem(), n, func(i int) (bool, bool) {
			start, end := l.ValueOffsets(i)
			sawNull := false
			for j := start; j < end; j++ {
				if vals.IsNull(int(j)) {
					sawNull = true
				} else if compareAt(vals, int(j), x, i) == 0 {
					return true, true
				}
			}
			return false, !sawNull
		}, as...), nil
	})
}

func bindStruct(f *fcall) (Expr, error) {
	names := make([]string, len(f.args))
	for i, a := range f.args {
		switch a := a.(type) {
		case *colExpr:
			names[i] = a.name
			if j := lastDot(a.name); j >= 0 {
				names[i] = a.name[j+1:]
			}
		case *fieldExpr:
			names[i] = a.name
		default:
			names[i] = "col" + strconv.Itoa(i+1)
		}
	}
	return structOf(f, names, f.args)
}

func lastDot(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '.' {
			return i
		}
	}
	return -1
}

func bindNamedStruct(f *fcall) (Expr, error) {
	if len(f.args)%2 != 0 {
		return nil, f.errorf(-1, "takes name, value pairs; got %d arguments", len(f.args))
	}
	var names []string
	var vals []Expr
	for i := 0; i < len(f.args); i += 2 {
		s, ok, err := f.constString(i, "a field name")
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, f.errorf(i, "field names must not be NULL")
		}
		names = append(names, s)
		vals = append(vals, f.args[i+1])
	}
	return structOf(f, names, vals)
}

func structOf(f *fcall, names []string, vals []Expr) (Expr, error) {
	fields := make([]arrow.Field, len(vals))
	for i, v := range vals {
		t := v.Type()
		if kindOf(t) == kNull {
			t = tString
		}
		fields[i] = arrow.Field{Name: names[i], Type: t, Nullable: true}
	}
	t := arrow.StructOf(fields...)
	nonNull := make([]bool, len(f.args))
	for i := range f.args {
		nonNull[i] = !f.skip[i]
	}
	return f.done(t, func(ctx *Ctx, n int, as []arrow.Array) (arrow.Array, error) {
		var cols []arrow.Array
		for i, a := range as {
			if !nonNull[i] {
				continue
			}
			if kindOf(a.DataType()) == kNull {
				c := nullArray(ctx.mem(), tString, n)
				defer c.Release()
				a = c
			}
			cols = append(cols, a)
		}
		return array.NewStructArrayWithFields(cols, fields)
	})
}

func bindArray(f *fcall) (Expr, error) {
	t := tNull
	if len(f.args) > 0 {
		var err error
		if t, err = f.unifyArgs(0, len(f.args)); err != nil {
			return nil, err
		}
	}
	if kindOf(t) == kNull {
		t = tString
		if err := f.coerceAll(0, t); err != nil {
			return nil, err
		}
	}
	lt := arrow.ListOf(t)
	return f.done(lt, func(ctx *Ctx, n int, as []arrow.Array) (arrow.Array, error) {
		k := len(as)
		idx := make([]int32, n*k)
		for i := range n {
			for j := range k {
				idx[i*k+j] = int32(j*n + i)
			}
		}
		var vals arrow.Array
		if k == 0 {
			vals = nullArray(ctx.mem(), t, 0)
		} else {
			all, err := array.Concatenate(as, ctx.mem())
			if err != nil {
				return nil, err
			}
			defer all.Release()
			if vals, err = takeRows(ctx, all, idx); err != nil {
				return nil, err
			}
		}
		defer vals.Release()
		ob, offs := allocI32(ctx.mem(), n+1)
		for i := range n + 1 {
			offs[i] = int32(i * k)
		}
		d := array.NewData(lt, n, []*memory.Buffer{nil, ob}, []arrow.ArrayData{vals.Data()}, 0, 0)
		ob.Release()
		defer d.Release()
		return array.MakeFromData(d), nil
	})
}

func digest(newHash func() hash.Hash) func(f *fcall) (Expr, error) {
	return func(f *fcall) (Expr, error) {
		if kindOf(f.args[0].Type()) != kBinary {
			if err := f.coerce(0, tString); err != nil {
				return nil, err
			}
		}
		return f.done(tString, hexDigest(newHash, 0))
	}
}

func hexDigest(newHash func() hash.Hash, arg int) evalFn {
	return func(ctx *Ctx, n int, as []arrow.Array) (arrow.Array, error) {
		h := newHash()
		g := strGetter(as[arg])
		var sum []byte
		return buildBytes(ctx.mem(), tString, n, func(i int, dst []byte) ([]byte, bool) {
			h.Reset()
			h.Write(unsafeBytes(g(i)))
			sum = h.Sum(sum[:0])
			return hex.AppendEncode(dst, sum), true
		}, as[arg]), nil
	}
}

func bindSha2(f *fcall) (Expr, error) {
	if kindOf(f.args[0].Type()) != kBinary {
		if err := f.coerce(0, tString); err != nil {
			return nil, err
		}
	}
	bits, ok, err := f.constInt(1, "the bit length")
	if err != nil || !ok {
		return &constExpr{typ: tString}, err
	}
	var nh func() hash.Hash
	switch bits {
	case 0, 256:
		nh = sha256.New
	case 224:
		nh = sha256.New224
	case 384:
		nh = sha512.New384
	case 512:
		nh = sha512.New
	default:
		return nil, f.errorf(1, "unsupported bit length %d; use 224, 256, 384 or 512", bits)
	}
	return f.done(tString, hexDigest(nh, 0))
}

// bindHash is hash(args...): a 32-bit FNV-1a hash of the arguments'
// values, stable across runs and machines (not Spark's Murmur3 values).
// NULL arguments are skipped, as Spark does; the result is never NULL.
func bindHash(f *fcall) (Expr, error) {
	for _, a := range f.args {
		switch kindOf(a.Type()) {
		case kStruct, kList, kMap, kOther:
			return nil, f.errorf(0, "cannot hash %s", typeName(a.Type()))
		}
	}
	return f.done(tInt, func(ctx *Ctx, n int, as []arrow.Array) (arrow.Array, error) {
		db, out := allocI64(ctx.mem(), n)
		var buf [8]byte
		for i := range n {
			h := uint32(2166136261)
			mix := func(b []byte) {
				for _, c := range b {
					h ^= uint32(c)
					h *= 16777619
				}
			}
			for _, a := range as {
				if a.IsNull(i) {
					continue
				}
				switch a := a.(type) {
				case *array.String:
					mix(unsafeBytes(a.Value(i)))
				case *array.Binary:
					mix(a.Value(i))
				case *array.Boolean:
					mix([]byte{b2u(a.Value(i))})
				case *array.Float64:
					binary.LittleEndian.PutUint64(buf[:], math.Float64bits(a.Value(i)))
					mix(buf[:])
				case *array.Date32:
					binary.LittleEndian.PutUint32(buf[:4], uint32(a.Value(i)))
					mix(buf[:4])
				default:
					if v, ok := scalarAt(a, i).(int64); ok {
						binary.LittleEndian.PutUint64(buf[:], uint64(v))
						mix(buf[:])
					}
				}
			}
			out[i] = int64(int32(h))
		}
		return makeArray(tInt, n, nil, db), nil
	})
}
