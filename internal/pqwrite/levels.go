package pqwrite

import "encoding/binary"

// appendLevels appends lv, definition levels of bit width w (1..8), to dst
// in Parquet's RLE/bit-packed hybrid encoding: runs of eight or more equal
// levels as RLE runs, the rest bit-packed in groups of eight (the last
// group padded with zeros, which readers ignore: the page header gives the
// count).
func appendLevels(dst []byte, lv []uint8, w int) []byte {
	n := len(lv)
	lit := 0 // start of the levels not yet encoded, all shorter runs
	for i := 0; i < n; {
		v := lv[i]
		j := i + 1
		for j < n && lv[j] == v {
			j++
		}
		run := j - i
		if run < 8 {
			i = j
			continue
		}
		// Complete the pending literals to a multiple of eight with
		// levels of this run, if enough of it stays to be a run.
		if p := i - lit; p > 0 {
			k := (8 - p%8) % 8
			if run-k < 8 {
				i = j
				continue
			}
			dst = appendBitPacked(dst, lv[lit:i+k], w)
			i += k
		}
		dst = binary.AppendUvarint(dst, uint64(j-i)<<1)
		dst = append(dst, v)
		i, lit = j, j
	}
	if lit < n {
		dst = appendBitPacked(dst, lv[lit:], w)
	}
	return dst
}

// maxGroups bounds the groups of eight in one bit-packed run (504 values),
// as parquet-mr's writer does, for readers that expect no more.
const maxGroups = 63

// appendBitPacked appends lv as bit-packed runs of width w, padding the
// last group of eight with zeros.
func appendBitPacked(dst []byte, lv []uint8, w int) []byte {
	for len(lv) > 0 {
		n := min(len(lv), maxGroups*8)
		groups := (n + 7) / 8
		dst = binary.AppendUvarint(dst, uint64(groups)<<1|1)
		var acc uint64
		bits := 0
		for i := range groups * 8 {
			var v uint8
			if i < n {
				v = lv[i]
			}
			acc |= uint64(v) << bits
			bits += w
			for bits >= 8 {
				dst = append(dst, byte(acc))
				acc >>= 8
				bits -= 8
			}
		}
		// groups*8*w is a multiple of 8: no bits are left over.
		lv = lv[n:]
	}
	return dst
}

// appendRun appends n levels all equal to v (width w ≤ 8) as one RLE run.
func appendRun(dst []byte, n int, v uint8) []byte {
	dst = binary.AppendUvarint(dst, uint64(n)<<1)
	return append(dst, v)
}
