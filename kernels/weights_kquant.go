package kernels

import "encoding/binary"

// ggml's K-quant super-block types (GGUF-LLAMACPP.md §3): each row of a
// [n, k] weight is k/256 consecutive blocks of 256 values.
//
//	Q4_K 144 B: d fp16, dmin fp16, scales[12], qs[128]
//	            x = float32((d·sc_j)·q) − dmin·m_j, q a nibble, j = 32-value sub-block
//	Q5_K 176 B: d fp16, dmin fp16, scales[12], qh[32], qs[128]
//	            as Q4_K with 5-bit codes (the fifth bit in qh)
//	Q6_K 210 B: ql[128], qh[64], scales[16] int8, d fp16
//	            x = (d·scales[g])·(q − 32), q a 6-bit code, g = 16-value group
//
// The dequantized values are bit for bit those of quantize.DequantizeGGML
// (the tests check it): d·sc_j, dmin·m_j and d·scales[g] are one float32
// product per (sub-)block, the value one more (and a subtraction).

// kQK is the number of values of a K-quant super-block.
const kQK = 256

const (
	q4KBytes = 144
	q5KBytes = 176
	q6KBytes = 210
)

// Q4_KMatrix is an N×K weight in ggml's Q4_K format.
type Q4_KMatrix struct{ kquantMatrix }

// Q5_KMatrix is an N×K weight in ggml's Q5_K format.
type Q5_KMatrix struct{ kquantMatrix }

// NewQ4_KMatrix wraps data (n·k/256 blocks of 144 bytes) without copying
// it; k must be a multiple of 256.
func NewQ4_KMatrix(data []byte, n, k int) (*Q4_KMatrix, error) {
	g, err := newKQuantMatrix("Q4_K matrix", data, n, k, q4KBytes, q4KBlocks)
	if err != nil {
		return nil, err
	}
	return &Q4_KMatrix{g}, nil
}

// NewQ5_KMatrix wraps data (n·k/256 blocks of 176 bytes) without copying
// it; k must be a multiple of 256.
func NewQ5_KMatrix(data []byte, n, k int) (*Q5_KMatrix, error) {
	g, err := newKQuantMatrix("Q5_K matrix", data, n, k, q5KBytes, q5KBlocks)
	if err != nil {
		return nil, err
	}
	return &Q5_KMatrix{g}, nil
}

// Q6_KMatrix is an N×K weight in ggml's Q6_K format.
type Q6_KMatrix struct{ kquantMatrix }

// NewQ6_KMatrix wraps data (n·k/256 blocks of 210 bytes) without copying
// it; k must be a multiple of 256.
func NewQ6_KMatrix(data []byte, n, k int) (*Q6_KMatrix, error) {
	g, err := newKQuantMatrix("Q6_K matrix", data, n, k, q6KBytes, q6KBlocks)
	if err != nil {
		return nil, err
	}
	return &Q6_KMatrix{g}, nil
}

// kquantMatrix holds what the super-block types share.
type kquantMatrix struct {
	data       []byte
	n, k       int
	rowBytes   int
	blockBytes int
	blocks     func(dst []float32, src []byte, lvl feature) // whole blocks
}

func newKQuantMatrix(what string, data []byte, n, k, blockBytes int, blocks func([]float32, []byte, feature)) (kquantMatrix, error) {
	if _, err := checkDims(what, n, k); err != nil {
		return kquantMatrix{}, err
	}
	if k%kQK != 0 {
		return kquantMatrix{}, sizeError(what, "K (a multiple of 256)", k, k&^(kQK-1))
	}
	rb := k / kQK * blockBytes
	if n != 0 && rb > maxInt/n || len(data) != n*rb {
		return kquantMatrix{}, sizeError(what, "data", len(data), n*rb)
	}
	return kquantMatrix{data: data, n: n, k: k, rowBytes: rb, blockBytes: blockBytes, blocks: blocks}, nil
}

// Rows returns N.
func (m *kquantMatrix) Rows() int { return m.n }

// Cols returns K.
func (m *kquantMatrix) Cols() int { return m.k }

// StoredBytes returns the size of the blocks.
func (m *kquantMatrix) StoredBytes() int { return len(m.data) }

// Tile writes B[n0:n1, k0:k1] to dst, row-major with stride k1-k0.
func (m *Q4_KMatrix) Tile(dst []float32, n0, n1, k0, k1 int) { tileRows(m, dst, n0, n1, k0, k1) }

// Tile writes B[n0:n1, k0:k1] to dst, row-major with stride k1-k0.
func (m *Q5_KMatrix) Tile(dst []float32, n0, n1, k0, k1 int) { tileRows(m, dst, n0, n1, k0, k1) }

// Tile writes B[n0:n1, k0:k1] to dst, row-major with stride k1-k0.
func (m *Q6_KMatrix) Tile(dst []float32, n0, n1, k0, k1 int) { tileRows(m, dst, n0, n1, k0, k1) }

func (m *kquantMatrix) rowSpan(r, k0, k1 int) []byte {
	return m.data[r*m.rowBytes+k0/kQK*m.blockBytes : r*m.rowBytes+(k1+kQK-1)/kQK*m.blockBytes]
}

// decodeRow decodes elements [k0, k1) of row r: whole blocks straight into
// dst, a block cut by k0 or k1 through a buffer.
func (m *kquantMatrix) decodeRow(dst []float32, r, k0, k1 int, lvl feature) {
	row := m.data[r*m.rowBytes : (r+1)*m.rowBytes]
	bb := m.blockBytes
	dst = dst[:k1-k0]
	for k0 < k1 {
		b := k0 / kQK
		off := k0 - b*kQK
		if nb := (k1 - k0) / kQK; off == 0 && nb > 0 {
			m.blocks(dst[:nb*kQK], row[b*bb:(b+nb)*bb], lvl)
			dst = dst[nb*kQK:]
			k0 += nb * kQK
			continue
		}
		var tmp [kQK]float32
		m.blocks(tmp[:], row[b*bb:(b+1)*bb], lvl)
		c := copy(dst, tmp[off:])
		dst = dst[c:]
		k0 += c
	}
}

// Byte-lane masks of the SWAR decoders (eight codes in a uint64).
const (
	kLanes0F = 0x0F0F0F0F0F0F0F0F
	kLanes03 = 0x0303030303030303
	kLanes0C = 0x0C0C0C0C0C0C0C0C
	kLanes30 = 0x3030303030303030
)

// q6KBlocksGeneric decodes len(dst)/256 Q6_K blocks. In half h (values
// 128h…128h+127) value l+32c (c < 4, l < 32) has the code
//
//	q = (c&1 ? ql[64h+32+l] : ql[64h+l]) >> (c&2 ? 4 : 0) & 15 | (qh[32h+l] >> 2c & 3) << 4
//
// and the group 8h + 2c + l/16: dst = ds[group]·float32(q − 32) with
// ds[g] = d·float32(int8(scales[g])). Eight codes are unpacked at a time.
func q6KBlocksGeneric(dst []float32, src []byte) {
	for ; len(dst) >= kQK; dst, src = dst[kQK:], src[q6KBytes:] {
		b := (*[q6KBytes]byte)(src)
		d := ggmlScale(b[208:])
		var ds [16]float32
		for g := range ds {
			ds[g] = d * float32(int8(b[192+g]))
		}
		for h := range 2 {
			ql := (*[64]byte)(b[64*h:])
			qh := (*[32]byte)(b[128+32*h:])
			y := (*[128]float32)(dst[128*h:])
			for l := 0; l < 32; l += 8 {
				g := 8*h + l/16
				lo := binary.LittleEndian.Uint64(ql[l:])
				hi := binary.LittleEndian.Uint64(ql[32+l:])
				hb := binary.LittleEndian.Uint64(qh[l:])
				q6Put((*[8]float32)(y[l:]), ds[g], lo&kLanes0F|(hb&kLanes03)<<4)
				q6Put((*[8]float32)(y[32+l:]), ds[g+2], hi&kLanes0F|(hb&kLanes0C)<<2)
				q6Put((*[8]float32)(y[64+l:]), ds[g+4], lo>>4&kLanes0F|hb&kLanes30)
				q6Put((*[8]float32)(y[96+l:]), ds[g+6], hi>>4&kLanes0F|hb>>2&kLanes30)
			}
		}
	}
}

// kLevel[q] is float32(q) for the codes (the Q6_K decoder indexes it at
// q, and subtracts nothing: kLevel6 is float32(q − 32)).
var (
	kLevel = func() (t [64]float32) {
		for i := range t {
			t[i] = float32(i)
		}
		return t
	}()
	kLevel6 = func() (t [64]float32) {
		for i := range t {
			t[i] = float32(i - 32)
		}
		return t
	}()
)

// q6Put writes s·float32(q − 32) for the eight 6-bit codes in the bytes of v.
func q6Put(y *[8]float32, s float32, v uint64) {
	y[0] = s * kLevel6[v&63]
	y[1] = s * kLevel6[v>>8&63]
	y[2] = s * kLevel6[v>>16&63]
	y[3] = s * kLevel6[v>>24&63]
	y[4] = s * kLevel6[v>>32&63]
	y[5] = s * kLevel6[v>>40&63]
	y[6] = s * kLevel6[v>>48&63]
	y[7] = s * kLevel6[v>>56&63]
}

// kScales unpacks the eight 6-bit scales and mins of a Q4_K/Q5_K block
// (scales[12] at b[4:16]) and returns d·sc_j and dmin·m_j:
//
//	j < 4: sc = scales[j]&63, m = scales[j+4]&63
//	j ≥ 4: sc = scales[j+4]&15 | scales[j−4]>>6<<4, m = scales[j+4]>>4 | scales[j]>>6<<4
func kScales(b []byte) (ds, dm [8]float32) {
	d, dmin := ggmlScale(b[0:]), ggmlScale(b[2:])
	sc := (*[12]byte)(b[4:])
	for j := range 4 {
		ds[j] = d * float32(sc[j]&63)
		dm[j] = dmin * float32(sc[j+4]&63)
		ds[j+4] = d * float32(sc[j+8]&15|sc[j]>>6<<4)
		dm[j+4] = dmin * float32(sc[j+8]>>4|sc[j+4]>>6<<4)
	}
	return ds, dm
}

// kPut writes float32(d·q) − dm for the eight codes q < 64 in the bytes of v.
func kPut(y *[8]float32, d, dm float32, v uint64) {
	y[0] = float32(d*kLevel[v&63]) - dm
	y[1] = float32(d*kLevel[v>>8&63]) - dm
	y[2] = float32(d*kLevel[v>>16&63]) - dm
	y[3] = float32(d*kLevel[v>>24&63]) - dm
	y[4] = float32(d*kLevel[v>>32&63]) - dm
	y[5] = float32(d*kLevel[v>>40&63]) - dm
	y[6] = float32(d*kLevel[v>>48&63]) - dm
	y[7] = float32(d*kLevel[v>>56&63]) - dm
}

// q4KBlocksGeneric decodes len(dst)/256 Q4_K blocks: qs group g (32 bytes)
// holds values 64g…64g+31 (sub-block 2g) in its low nibbles and
// 64g+32…64g+63 (sub-block 2g+1) in its high nibbles.
func q4KBlocksGeneric(dst []float32, src []byte) {
	for ; len(dst) >= kQK; dst, src = dst[kQK:], src[q4KBytes:] {
		b := (*[q4KBytes]byte)(src)
		ds, dm := kScales(b[:])
		for g := range 4 {
			qs := (*[32]byte)(b[16+32*g:])
			y := (*[64]float32)(dst[64*g:])
			for l := 0; l < 32; l += 8 {
				v := binary.LittleEndian.Uint64(qs[l:])
				kPut((*[8]float32)(y[l:]), ds[2*g], dm[2*g], v&kLanes0F)
				kPut((*[8]float32)(y[32+l:]), ds[2*g+1], dm[2*g+1], v>>4&kLanes0F)
			}
		}
	}
}

// q5KBlocksGeneric decodes len(dst)/256 Q5_K blocks: Q4_K's nibbles (qs at
// 48) with the fifth bit of value 64g+l in qh[l] bit 2g and of 64g+32+l in
// bit 2g+1.
func q5KBlocksGeneric(dst []float32, src []byte) {
	const lanes01 = 0x0101010101010101
	for ; len(dst) >= kQK; dst, src = dst[kQK:], src[q5KBytes:] {
		b := (*[q5KBytes]byte)(src)
		ds, dm := kScales(b[:])
		qh := (*[32]byte)(b[16:])
		for g := range 4 {
			qs := (*[32]byte)(b[48+32*g:])
			y := (*[64]float32)(dst[64*g:])
			for l := 0; l < 32; l += 8 {
				v := binary.LittleEndian.Uint64(qs[l:])
				h := binary.LittleEndian.Uint64(qh[l:]) >> (2 * g)
				kPut((*[8]float32)(y[l:]), ds[2*g], dm[2*g], v&kLanes0F|(h&lanes01)<<4)
				kPut((*[8]float32)(y[32+l:]), ds[2*g+1], dm[2*g+1], v>>4&kLanes0F|(h>>1&lanes01)<<4)
			}
		}
	}
}
