//go:build !noasm

#include "textflag.h"

// Fused dot kernels of the skinny product against Q8_0 and Q4_0 weights
// (gemv_q8.go, gemv_q8_amd64.go). Each takes groups of four weight rows and
// one activation row and steps one 32-block at a time, never storing a
// decoded weight:
//
//   - Q8_0 (q8_0DotAVX512, q8_0DotAVX2): the codes are widened to float32
//     in registers and multiplied with the float32 activations; the 32
//     products of a block are added in 16 (8) lanes, and the lanes, scaled
//     by the block's fp16 scale, to the row's lane accumulators (fused
//     multiply-adds).
//   - Q4_0 (q4_0DotVNNI, q4_0DotAVX2): the activation row is quantized to
//     int8 per 32-block; the nibbles times the activation codes are summed
//     in 8 int32 lanes (4 products each; VPDPBUSD, or VPMADDUBSW and
//     VPMADDWD), converted to float32 and added, scaled by the weight's
//     scale times the activation block's, to 8 float32 lane accumulators.
//
// The lanes are added at the end (NEXTGROUP).

DATA q8const<>+0(SB)/4, $0x0f0f0f0f // nibble mask
DATA q8const<>+4(SB)/4, $0x00010001 // int16 ones for VPMADDWD
DATA q8const<>+8(SB)/4, $8          // Q4_0 zero point
DATA q8const<>+12(SB)/4, $0x0000000f // dword nibble mask
GLOBL q8const<>(SB), RODATA|NOPTR, $16

// q4lev<>: float32(c − 8) for the Q4_0 codes c = 0…15, a VPERMPS table.
DATA q4lev<>+0(SB)/4, $-8.0
DATA q4lev<>+4(SB)/4, $-7.0
DATA q4lev<>+8(SB)/4, $-6.0
DATA q4lev<>+12(SB)/4, $-5.0
DATA q4lev<>+16(SB)/4, $-4.0
DATA q4lev<>+20(SB)/4, $-3.0
DATA q4lev<>+24(SB)/4, $-2.0
DATA q4lev<>+28(SB)/4, $-1.0
DATA q4lev<>+32(SB)/4, $0.0
DATA q4lev<>+36(SB)/4, $1.0
DATA q4lev<>+40(SB)/4, $2.0
DATA q4lev<>+44(SB)/4, $3.0
DATA q4lev<>+48(SB)/4, $4.0
DATA q4lev<>+52(SB)/4, $5.0
DATA q4lev<>+56(SB)/4, $6.0
DATA q4lev<>+60(SB)/4, $7.0
GLOBL q4lev<>(SB), RODATA|NOPTR, $64

// Registers shared by every kernel:
//   R8, R9, R10, R11  the current block of the group's four weight rows
//   R12 qa, DI corr (both at BX = 32·block), DX da (advanced by 4)
//   R13 the group's first row, R14 ldw, R15 4·ldw, SI out
//   Y0..Y3 the rows' accumulators, Y14 da broadcast, Y4..Y6 temporaries.

// SCALE(w, acc, p) adds p·(fp16 scale at (w)·da) to acc; p holds the
// block's int32 lane sums and is clobbered.
#define SCALE(w, acc, p) \
	VCVTDQ2PS    p, p          \
	VPBROADCASTW (w), X6 \
	VCVTPH2PS    X6, Y6        \
	VMULPS       Y14, Y6, Y6   \
	VFMADD231PS  Y6, p, acc

// Q4VNNI(w, acc): lanes = corr + Σ nibble·qa (elements 0..15 from the low
// nibbles, 16..31 from the high ones).
#define Q4VNNI(w, acc) \
	VMOVDQU     2(w), X4      \
	VPSRLW      $4, X4, X5          \
	VINSERTI128 $1, X5, Y4, Y4      \
	VPAND       Y15, Y4, Y4         \
	VMOVDQU     (DI)(BX*1), Y5      \
	VPDPBUSD    (R12)(BX*1), Y4, Y5 \
	SCALE(w, acc, Y5)

// Q4AVX2(w, acc): lanes = corr + Σ nibble·qa (pairs at most 2·15·127, no
// saturation); Y13 holds qa, Y12 int16 ones.
#define Q4AVX2(w, acc) \
	VMOVDQU     2(w), X4  \
	VPSRLW      $4, X4, X5      \
	VINSERTI128 $1, X5, Y4, Y4  \
	VPAND       Y15, Y4, Y4     \
	VPMADDUBSW  Y13, Y4, Y4     \
	VPMADDWD    Y12, Y4, Y4     \
	VPADDD      (DI)(BX*1), Y4, Y4 \
	SCALE(w, acc, Y4)

// PREFETCH4 asks for the next group's rows at the same block, into L2:
// the hardware prefetchers alone, which do not know that the next group
// starts four rows on, leave the loop waiting on memory at each new group
// (streaming a 1B model's Q8_0 rows, 7 GB/s on one core without it, 12
// with it).
#define PREFETCH4 \
	PREFETCHT1 (R8)(R15*1)  \
	PREFETCHT1 (R9)(R15*1)  \
	PREFETCHT1 (R10)(R15*1) \
	PREFETCHT1 (R11)(R15*1)

// The row groups: R13 walks the groups (4 rows, ldw bytes apart, 4·ldw
// per group), SI the outputs (4 float32 per group); ng+24(FP) counts down.
#define GROUPSTART \
	MOVQ   out+0(FP), SI  \
	MOVQ   w+8(FP), R13   \
	MOVQ   ldw+16(FP), R14 \
	LEAQ   (R14*4), R15

#define LOADGROUP \
	MOVQ   R13, R8        \
	LEAQ   (R13)(R14*1), R9 \
	LEAQ   (R9)(R14*1), R10 \
	LEAQ   (R10)(R14*1), R11 \
	MOVQ   qa+32(FP), R12 \
	MOVQ   da+40(FP), DX  \
	MOVQ   corr+48(FP), DI \
	MOVQ   nb+56(FP), CX  \
	XORQ   BX, BX         \
	VXORPS Y0, Y0, Y0     \
	VXORPS Y1, Y1, Y1     \
	VXORPS Y2, Y2, Y2     \
	VXORPS Y3, Y3, Y3

// NEXTGROUP adds the lanes of Y0..Y3 to out[0..3] and moves to the next
// group, jumping to label while groups remain.
#define NEXTGROUP(label) \
	VEXTRACTF128 $1, Y0, X4    \
	VADDPS       X4, X0, X0    \
	VEXTRACTF128 $1, Y1, X4    \
	VADDPS       X4, X1, X1    \
	VEXTRACTF128 $1, Y2, X4    \
	VADDPS       X4, X2, X2    \
	VEXTRACTF128 $1, Y3, X4    \
	VADDPS       X4, X3, X3    \
	VHADDPS      X1, X0, X0    \
	VHADDPS      X3, X2, X2    \
	VHADDPS      X2, X0, X0    \
	VADDPS       (SI), X0, X0  \
	VMOVUPS      X0, (SI)      \
	ADDQ         $16, SI       \
	LEAQ         (R13)(R15*1), R13 \
	DECQ         ng+24(FP)     \
	JNZ          label         \
	VZEROUPPER

// The float32 kernels for Q8_0. Registers as above, but R12 walks the
// float32 activations (BX = 128·block), and the accumulators are Z0..Z3
// (AVX-512) or Y0..Y3 (AVX2).

#define LOADGROUPF32 \
	MOVQ   R13, R8          \
	LEAQ   (R13)(R14*1), R9 \
	LEAQ   (R9)(R14*1), R10 \
	LEAQ   (R10)(R14*1), R11 \
	MOVQ   a+32(FP), R12    \
	MOVQ   nb+40(FP), CX    \
	XORQ   BX, BX           \
	VXORPS Z0, Z0, Z0       \
	VXORPS Z1, Z1, Z1       \
	VXORPS Z2, Z2, Z2       \
	VXORPS Z3, Z3, Z3

// Q8F32Z(w, acc): 16 lanes of q_j·a_j + q_{j+16}·a_{j+16}, times the scale.
#define Q8F32Z(w, acc) \
	VPMOVSXBD    2(w), Z4               \
	VPMOVSXBD    18(w), Z5              \
	VCVTDQ2PS    Z4, Z4                 \
	VCVTDQ2PS    Z5, Z5                 \
	VMULPS       (R12)(BX*1), Z4, Z4    \
	VFMADD231PS  64(R12)(BX*1), Z5, Z4  \
	VPBROADCASTW (w), Y6                \
	VCVTPH2PS    Y6, Z6                 \
	VFMADD231PS  Z6, Z4, acc

// ZTOX(z, y, x) folds a zmm accumulator to 4 lanes in its xmm.
#define ZTOX(z, y, x) \
	VEXTRACTF64X4 $1, z, Y4 \
	VADDPS        Y4, y, y  \
	VEXTRACTF128  $1, y, X4 \
	VADDPS        X4, x, x

// Q8F32Y(w, acc): 8 lanes of four products each, times the scale.
#define Q8F32Y(w, acc) \
	VPMOVSXBD    2(w), Y4               \
	VPMOVSXBD    10(w), Y5              \
	VPMOVSXBD    18(w), Y7              \
	VPMOVSXBD    26(w), Y8              \
	VCVTDQ2PS    Y4, Y4                 \
	VCVTDQ2PS    Y5, Y5                 \
	VCVTDQ2PS    Y7, Y7                 \
	VCVTDQ2PS    Y8, Y8                 \
	VMULPS       (R12)(BX*1), Y4, Y4    \
	VMULPS       32(R12)(BX*1), Y5, Y5  \
	VFMADD231PS  64(R12)(BX*1), Y7, Y4  \
	VFMADD231PS  96(R12)(BX*1), Y8, Y5  \
	VADDPS       Y5, Y4, Y4             \
	VPBROADCASTW (w), X6                \
	VCVTPH2PS    X6, Y6                 \
	VFMADD231PS  Y6, Y4, acc

// Q4F32Z(w, acc): Q8F32Z for Q4_0: the 16 code bytes widened to dwords
// index Z15 (float32(c − 8), VPERMPS reads the low four bits: the low
// nibble) directly, and after a shift by 4 (the high nibble).
#define Q4F32Z(w, acc) \
	VPMOVZXBD    2(w), Z4               \
	VPSRLD       $4, Z4, Z5             \
	VPERMPS      Z15, Z4, Z4            \
	VPERMPS      Z15, Z5, Z5            \
	VMULPS       (R12)(BX*1), Z4, Z4    \
	VFMADD231PS  64(R12)(BX*1), Z5, Z4  \
	VPBROADCASTW (w), Y6                \
	VCVTPH2PS    Y6, Z6                 \
	VFMADD231PS  Z6, Z4, acc

// Q4F32Y(w, acc): Q8F32Y for Q4_0: codes c − 8 as dwords, 8 at a time
// (Y14 = 15, Y13 = 8).
#define Q4F32Y(w, acc) \
	VPMOVZXBD    2(w), Y4               \
	VPMOVZXBD    10(w), Y5              \
	VPSRLD       $4, Y4, Y7             \
	VPSRLD       $4, Y5, Y8             \
	VPAND        Y14, Y4, Y4            \
	VPAND        Y14, Y5, Y5            \
	VPSUBD       Y13, Y4, Y4            \
	VPSUBD       Y13, Y5, Y5            \
	VPSUBD       Y13, Y7, Y7            \
	VPSUBD       Y13, Y8, Y8            \
	VCVTDQ2PS    Y4, Y4                 \
	VCVTDQ2PS    Y5, Y5                 \
	VCVTDQ2PS    Y7, Y7                 \
	VCVTDQ2PS    Y8, Y8                 \
	VMULPS       (R12)(BX*1), Y4, Y4    \
	VMULPS       32(R12)(BX*1), Y5, Y5  \
	VFMADD231PS  64(R12)(BX*1), Y7, Y4  \
	VFMADD231PS  96(R12)(BX*1), Y8, Y5  \
	VADDPS       Y5, Y4, Y4             \
	VPBROADCASTW (w), X6                \
	VCVTPH2PS    X6, Y6                 \
	VFMADD231PS  Y6, Y4, acc

// F32GROUPEND adds the lanes of Z0..Z3 to out[0..3] and moves to the next
// group, jumping to label while groups remain.
#define F32GROUPEND(label) \
	ZTOX(Z0, Y0, X0)          \
	ZTOX(Z1, Y1, X1)          \
	ZTOX(Z2, Y2, X2)          \
	ZTOX(Z3, Y3, X3)          \
	VHADDPS X1, X0, X0        \
	VHADDPS X3, X2, X2        \
	VHADDPS X2, X0, X0        \
	VADDPS  (SI), X0, X0      \
	VMOVUPS X0, (SI)          \
	ADDQ    $16, SI           \
	LEAQ    (R13)(R15*1), R13 \
	DECQ    ng+24(FP)         \
	JNZ     label             \
	VZEROUPPER

#define LOADGROUPF32Y \
	MOVQ   R13, R8          \
	LEAQ   (R13)(R14*1), R9 \
	LEAQ   (R9)(R14*1), R10 \
	LEAQ   (R10)(R14*1), R11 \
	MOVQ   a+32(FP), R12    \
	MOVQ   nb+40(FP), CX    \
	XORQ   BX, BX           \
	VXORPS Y0, Y0, Y0       \
	VXORPS Y1, Y1, Y1       \
	VXORPS Y2, Y2, Y2       \
	VXORPS Y3, Y3, Y3

// func q4_0DotVNNI(out *float32, w *byte, ldw, ng int, qa *byte, da *float32, corr *int32, nb int)
TEXT ·q4_0DotVNNI(SB), NOSPLIT, $0-64
	VPBROADCASTD q8const<>+0(SB), Y15
	GROUPSTART

q4v_group:
	LOADGROUP

q4v_loop:
	VBROADCASTSS (DX), Y14
	PREFETCH4
	Q4VNNI(R8, Y0)
	Q4VNNI(R9, Y1)
	Q4VNNI(R10, Y2)
	Q4VNNI(R11, Y3)
	ADDQ $18, R8
	ADDQ $18, R9
	ADDQ $18, R10
	ADDQ $18, R11
	ADDQ $32, BX
	ADDQ $4, DX
	DECQ CX
	JNZ  q4v_loop
	NEXTGROUP(q4v_group)
	RET

// Q4PAIR(w, acc): two blocks (w and w+18) per step. Their 16 code bytes
// each, X_b ‖ X_b+1, and the same shifted right by 4, fill Z4 as
// X_b ‖ X_b+1 ‖ X_b>>4 ‖ X_b+1>>4, masked to nibbles: the int32 lanes
// 0–3 and 8–11 sum block b's products, 4–7 and 12–15 block b+1's (the
// activations' pair layout matches). The lanes are scaled by Z14 (the
// activation scales, per lane) times the weight scales d_b ×4 ‖ d_b+1 ×4
// ‖ d_b ×4 ‖ d_b+1 ×4, blended from two broadcasts.
#define Q4PAIR(w, acc) \
	VMOVDQU      2(w), X4            \
	VINSERTI128  $1, 20(w), Y4, Y4   \
	VPSRLW       $4, Y4, Y5          \
	VINSERTI64X4 $1, Y5, Z4, Z4      \
	VPANDD       Z15, Z4, Z4         \
	VMOVDQU32    (DI)(BX*1), Z5      \
	VPDPBUSD     (R12)(BX*1), Z4, Z5 \
	VCVTDQ2PS    Z5, Z5              \
	VPBROADCASTW (w), Y6             \
	VPBROADCASTW 18(w), Y7           \
	VPBLENDD     $0xCC, Y7, Y6, Y6   \
	VCVTPH2PS    Y6, Z6              \
	VMULPS       Z14, Z6, Z6         \
	VFMADD231PS  Z6, Z5, acc

// func q4_0DotVNNIPairs(out *float32, w *byte, ldw, ng int, qa *byte, da *float32, corr *int32, nb int)
TEXT ·q4_0DotVNNIPairs(SB), NOSPLIT, $0-64
	VPBROADCASTD q8const<>+0(SB), Z15
	GROUPSTART

q4p_group:
	LOADGROUP

q4p_loop:
	VMOVUPS (DX)(BX*1), Z14
	PREFETCH4
	Q4PAIR(R8, Z0)
	Q4PAIR(R9, Z1)
	Q4PAIR(R10, Z2)
	Q4PAIR(R11, Z3)
	ADDQ $36, R8
	ADDQ $36, R9
	ADDQ $36, R10
	ADDQ $36, R11
	ADDQ $64, BX
	DECQ CX
	JNZ  q4p_loop
	F32GROUPEND(q4p_group)
	RET

// Q8PAIR(w, acc): blocks w and w+34, their 32 codes each filling Z4 in
// order, made unsigned (XOR 0x80 = code+128); lanes 0–7 sum block b's
// products, 8–15 block b+1's, scaled by Z14 (da_b ×8 ‖ da_b+1 ×8) times
// d_b ×8 ‖ d_b+1 ×8.
#define Q8PAIR(w, acc) \
	VMOVDQU      2(w), Y4            \
	VINSERTI64X4 $1, 36(w), Z4, Z4   \
	VPXORD       Z15, Z4, Z4         \
	VMOVDQU32    (DI)(BX*1), Z5      \
	VPDPBUSD     (R12)(BX*1), Z4, Z5 \
	VCVTDQ2PS    Z5, Z5              \
	VPBROADCASTW (w), Y6             \
	VPBROADCASTW 34(w), Y7           \
	VPBLENDD     $0xF0, Y7, Y6, Y6   \
	VCVTPH2PS    Y6, Z6              \
	VMULPS       Z14, Z6, Z6         \
	VFMADD231PS  Z6, Z5, acc

// func q8_0DotVNNIPairs(out *float32, w *byte, ldw, ng int, qa *byte, da *float32, corr *int32, nb int)
TEXT ·q8_0DotVNNIPairs(SB), NOSPLIT, $0-64
	MOVL         $0x80808080, AX
	VPBROADCASTD AX, Z15
	GROUPSTART

q8p_group:
	LOADGROUP

q8p_loop:
	VBROADCASTSS  (DX), Y14
	VBROADCASTSS  4(DX), Y13
	VINSERTF64X4  $1, Y13, Z14, Z14
	PREFETCH4
	Q8PAIR(R8, Z0)
	Q8PAIR(R9, Z1)
	Q8PAIR(R10, Z2)
	Q8PAIR(R11, Z3)
	ADDQ $68, R8
	ADDQ $68, R9
	ADDQ $68, R10
	ADDQ $68, R11
	ADDQ $64, BX
	ADDQ $8, DX
	DECQ CX
	JNZ  q8p_loop
	F32GROUPEND(q8p_group)
	RET

// func q4_0DotAVX2(out *float32, w *byte, ldw, ng int, qa *byte, da *float32, corr *int32, nb int)
TEXT ·q4_0DotAVX2(SB), NOSPLIT, $0-64
	VPBROADCASTD q8const<>+0(SB), Y15
	VPBROADCASTD q8const<>+4(SB), Y12
	GROUPSTART

q4y_group:
	LOADGROUP

q4y_loop:
	VBROADCASTSS (DX), Y14
	PREFETCH4
	VMOVDQU      (R12)(BX*1), Y13
	Q4AVX2(R8, Y0)
	Q4AVX2(R9, Y1)
	Q4AVX2(R10, Y2)
	Q4AVX2(R11, Y3)
	ADDQ $18, R8
	ADDQ $18, R9
	ADDQ $18, R10
	ADDQ $18, R11
	ADDQ $32, BX
	ADDQ $4, DX
	DECQ CX
	JNZ  q4y_loop
	NEXTGROUP(q4y_group)
	RET

// func q8_0DotAVX512(out *float32, w *byte, ldw, ng int, a *float32, nb int)
TEXT ·q8_0DotAVX512(SB), NOSPLIT, $0-48
	GROUPSTART

q8z_group:
	LOADGROUPF32

q8z_loop:
	PREFETCH4
	Q8F32Z(R8, Z0)
	Q8F32Z(R9, Z1)
	Q8F32Z(R10, Z2)
	Q8F32Z(R11, Z3)
	ADDQ $34, R8
	ADDQ $34, R9
	ADDQ $34, R10
	ADDQ $34, R11
	ADDQ $128, BX
	DECQ CX
	JNZ  q8z_loop
	F32GROUPEND(q8z_group)
	RET

// func q8_0DotAVX2(out *float32, w *byte, ldw, ng int, a *float32, nb int)
TEXT ·q8_0DotAVX2(SB), NOSPLIT, $0-48
	GROUPSTART

q8y_group:
	LOADGROUPF32Y

q8y_loop:
	PREFETCH4
	Q8F32Y(R8, Y0)
	Q8F32Y(R9, Y1)
	Q8F32Y(R10, Y2)
	Q8F32Y(R11, Y3)
	ADDQ $34, R8
	ADDQ $34, R9
	ADDQ $34, R10
	ADDQ $34, R11
	ADDQ $128, BX
	DECQ CX
	JNZ  q8y_loop
	NEXTGROUP(q8y_group)
	RET

// func q4_0DotF32AVX512(out *float32, w *byte, ldw, ng int, a *float32, nb int)
TEXT ·q4_0DotF32AVX512(SB), NOSPLIT, $0-48
	VMOVUPS q4lev<>(SB), Z15
	GROUPSTART

q4z_group:
	LOADGROUPF32

q4z_loop:
	PREFETCH4
	Q4F32Z(R8, Z0)
	Q4F32Z(R9, Z1)
	Q4F32Z(R10, Z2)
	Q4F32Z(R11, Z3)
	ADDQ $18, R8
	ADDQ $18, R9
	ADDQ $18, R10
	ADDQ $18, R11
	ADDQ $128, BX
	DECQ CX
	JNZ  q4z_loop
	F32GROUPEND(q4z_group)
	RET

// func q4_0DotF32AVX2(out *float32, w *byte, ldw, ng int, a *float32, nb int)
TEXT ·q4_0DotF32AVX2(SB), NOSPLIT, $0-48
	VPBROADCASTD q8const<>+12(SB), Y14
	VPBROADCASTD q8const<>+8(SB), Y13
	GROUPSTART

q4yf_group:
	LOADGROUPF32Y

q4yf_loop:
	PREFETCH4
	Q4F32Y(R8, Y0)
	Q4F32Y(R9, Y1)
	Q4F32Y(R10, Y2)
	Q4F32Y(R11, Y3)
	ADDQ $18, R8
	ADDQ $18, R9
	ADDQ $18, R10
	ADDQ $18, R11
	ADDQ $128, BX
	DECQ CX
	JNZ  q4yf_loop
	NEXTGROUP(q4yf_group)
	RET

// func prefetchLines(p *byte, n int)
TEXT ·prefetchLines(SB), NOSPLIT, $0-16
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	LEAQ -1(SI)(CX*1), CX // the last byte
	ANDQ $-64, SI

pf_loop:
	PREFETCHT0 (SI)
	ADDQ       $64, SI
	CMPQ       SI, CX
	JLE        pf_loop
	RET
