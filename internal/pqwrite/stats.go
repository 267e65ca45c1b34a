package pqwrite

import (
	"bytes"
	"encoding/binary"
	"math"

	"github.com/apache/arrow-go/v18/parquet/metadata"
)

// stats are the minimum, maximum and null count of a page or a column
// chunk, kept in the leaf's physical type as arrow-go's statistics keep
// them: floats ignore NaN, a zero minimum is -0 and a zero maximum +0,
// false < true, byte arrays compare as unsigned bytes.
type stats struct {
	has   bool // min and max are set
	nulls int64
	imin  int64 // int32, int64; bool as 0/1
	imax  int64
	fmin  float64 // float32, float64
	fmax  float64
	bmin  []byte // byte arrays; they point into the batch until copied
	bmax  []byte
}

func (s *stats) reset() { *s = stats{} }

func (s *stats) int(v int64) {
	if !s.has {
		s.has, s.imin, s.imax = true, v, v
		return
	}
	if v < s.imin {
		s.imin = v
	} else if v > s.imax {
		s.imax = v
	}
}

func (s *stats) float(v float64) {
	if math.IsNaN(v) {
		return
	}
	if !s.has {
		s.has, s.fmin, s.fmax = true, v, v
		return
	}
	if v < s.fmin {
		s.fmin = v
	} else if v > s.fmax {
		s.fmax = v
	}
}

func (s *stats) bytes(v []byte) {
	if !s.has {
		s.has, s.bmin, s.bmax = true, v, v
		return
	}
	// Go's string comparison is memcmp, unsigned bytes: Parquet's order
	// for byte arrays.
	if string(v) < string(s.bmin) {
		s.bmin = v
	} else if string(v) > string(s.bmax) {
		s.bmax = v
	}
}

// merge folds page statistics p into chunk statistics s.
func (s *stats) merge(p *stats, k kind) {
	s.nulls += p.nulls
	if !p.has {
		return
	}
	switch k {
	case kindFloat32, kindFloat64:
		s.float(p.fmin)
		s.float(p.fmax)
	case kindBytes:
		s.bytes(p.bmin)
		s.bytes(p.bmax)
	default:
		s.int(p.imin)
		s.int(p.imax)
	}
}

// encode returns s as Parquet encodes statistics: min and max PLAIN
// encoded (byte arrays without their length), dropped when longer than
// maxSize. own copies byte arrays, which otherwise point into the batch.
func (s *stats) encode(k kind, signed bool, maxSize int, own bool) metadata.EncodedStatistics {
	var e metadata.EncodedStatistics
	e.SetNullCount(s.nulls)
	if s.has {
		var lo, hi []byte
		switch k {
		case kindBool:
			lo, hi = []byte{byte(s.imin)}, []byte{byte(s.imax)}
		case kindInt32:
			lo = binary.LittleEndian.AppendUint32(nil, uint32(int32(s.imin)))
			hi = binary.LittleEndian.AppendUint32(nil, uint32(int32(s.imax)))
		case kindInt64:
			lo = binary.LittleEndian.AppendUint64(nil, uint64(s.imin))
			hi = binary.LittleEndian.AppendUint64(nil, uint64(s.imax))
		case kindFloat32:
			lo = binary.LittleEndian.AppendUint32(nil, math.Float32bits(float32(zeroSign(s.fmin, true))))
			hi = binary.LittleEndian.AppendUint32(nil, math.Float32bits(float32(zeroSign(s.fmax, false))))
		case kindFloat64:
			lo = binary.LittleEndian.AppendUint64(nil, math.Float64bits(zeroSign(s.fmin, true)))
			hi = binary.LittleEndian.AppendUint64(nil, math.Float64bits(zeroSign(s.fmax, false)))
		case kindBytes:
			lo, hi = s.bmin, s.bmax
			if own {
				lo, hi = bytes.Clone(lo), bytes.Clone(hi)
			}
			// An empty value is a bound too: nil would not be
			// written. (arrow-go's writer leaves empty bounds out on
			// some paths.)
			if lo == nil {
				lo = []byte{}
			}
			if hi == nil {
				hi = []byte{}
			}
		}
		e.SetMin(lo)
		e.SetMax(hi)
	}
	e.ApplyStatSizeLimits(maxSize)
	e.Signed = signed
	return e
}

// zeroSign makes a zero minimum -0 and a zero maximum +0, so that the
// bounds hold whichever zero the data has.
func zeroSign(v float64, isMin bool) float64 {
	if v != 0 {
		return v
	}
	if isMin {
		return math.Copysign(0, -1)
	}
	return 0
}
