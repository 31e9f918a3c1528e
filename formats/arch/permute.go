package arch

import "fmt"

// QKRows is the Q/K row permutation of one tensor (GGUF-LLAMACPP.md §2.2):
// R rows in n heads of D = R/n rows each. llama.cpp's converter computes
//
//	W_gguf = W_hf.reshape(n, 2, D/2, C).swapaxes(1, 2).reshape(R, C)
//
// so GGUF row h·D + 2j + s holds HF row h·D + s·D/2 + j (j < D/2, s ∈ {0,1}).
// Row-wise, the same holds for a bias (C = 1).
type QKRows struct {
	rows, d int64
}

// NewQKRows checks that rows splits into n heads of an even number of rows.
func NewQKRows(rows, n int64) (QKRows, error) {
	if n <= 0 || rows <= 0 || rows%n != 0 || (rows/n)%2 != 0 {
		return QKRows{}, fmt.Errorf("arch: cannot permute %d rows in %d heads (need an even number of rows per head)", rows, n)
	}
	return QKRows{rows: rows, d: rows / n}, nil
}

// Rows is the row count.
func (q QKRows) Rows() int64 { return q.rows }

// HFRow is the Hugging Face row that GGUF row g holds (HF → GGUF reads
// source row HFRow(g) for output row g).
func (q QKRows) HFRow(g int64) int64 {
	h, r := g/q.d, g%q.d
	return h*q.d + (r%2)*(q.d/2) + r/2
}

// GGUFRow is the GGUF row that Hugging Face row x holds (GGUF → HF reads
// source row GGUFRow(x) for output row x): the inverse of HFRow.
func (q QKRows) GGUFRow(x int64) int64 {
	h, r := x/q.d, x%q.d
	half := q.d / 2
	return h*q.d + 2*(r%half) + r/half
}

// Heads returns the head count a permutation uses, given the model's
// head_count and head_count_kv.
func (p Permutation) Heads(nHead, nHeadKV int64) int64 {
	switch p {
	case PermuteHeads:
		return nHead
	case PermuteKVHeads:
		return nHeadKV
	}
	return 0
}
