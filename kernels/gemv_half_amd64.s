//go:build !noasm

#include "textflag.h"

// Fused dot kernels of the skinny product against f16 and bf16 weights
// (gemv_half.go, gemv_half_amd64.go). A group of four weight rows is
// walked 32 columns (one 64-byte line per row) at a time: each row's
// values are widened to float32 in registers (VCVTPH2PS; bfloat16 by a
// zero-extend and shift) and multiplied into two zmm accumulators per
// row, which are added at the end of the group.
//
// Registers: R8..R11 the four rows at the current column, R13 the
// group's first row, R14 ldw, R15 4·ldw (the next group, prefetched line
// by line into L2: the hardware prefetchers do not follow the jump to a
// new group's rows), SI out, DI a, CX the columns left, DX the groups
// left; Z0..Z3 and Z4..Z7 the rows' accumulators, Z16/Z17 a, Z20..Z27 the
// widened rows.

#define GROUPSTART \
	MOVQ out+0(FP), SI  \
	MOVQ w+8(FP), R13   \
	MOVQ ldw+16(FP), R14 \
	LEAQ (R14*4), R15   \
	MOVQ ng+24(FP), DX

#define LOADGROUP \
	MOVQ   R13, R8          \
	LEAQ   (R13)(R14*1), R9 \
	LEAQ   (R9)(R14*1), R10 \
	LEAQ   (R10)(R14*1), R11 \
	MOVQ   a+32(FP), DI     \
	MOVQ   k+40(FP), CX     \
	VXORPS Z0, Z0, Z0       \
	VXORPS Z1, Z1, Z1       \
	VXORPS Z2, Z2, Z2       \
	VXORPS Z3, Z3, Z3       \
	VXORPS Z4, Z4, Z4       \
	VXORPS Z5, Z5, Z5       \
	VXORPS Z6, Z6, Z6       \
	VXORPS Z7, Z7, Z7

// FMAROWS multiplies the widened rows (Z20..Z27) with a (Z16, Z17), asks
// for the next group's lines and steps 32 columns on.
#define FMAROWS \
	VFMADD231PS Z16, Z20, Z0 \
	VFMADD231PS Z17, Z21, Z4 \
	VFMADD231PS Z16, Z22, Z1 \
	VFMADD231PS Z17, Z23, Z5 \
	VFMADD231PS Z16, Z24, Z2 \
	VFMADD231PS Z17, Z25, Z6 \
	VFMADD231PS Z16, Z26, Z3 \
	VFMADD231PS Z17, Z27, Z7 \
	PREFETCHT1  (R8)(R15*1)  \
	PREFETCHT1  (R9)(R15*1)  \
	PREFETCHT1  (R10)(R15*1) \
	PREFETCHT1  (R11)(R15*1) \
	ADDQ        $64, R8      \
	ADDQ        $64, R9      \
	ADDQ        $64, R10     \
	ADDQ        $64, R11     \
	ADDQ        $128, DI     \
	SUBQ        $32, CX

// HSUM512TO128(z, y, x) folds a zmm accumulator to 4 lanes in its xmm.
#define HSUM512TO128(z, y, x) \
	VEXTRACTF64X4 $1, z, Y16 \
	VADDPS        Y16, y, y  \
	VEXTRACTF32X4 $1, y, X16 \
	VADDPS        X16, x, x

// NEXTGROUP adds the four rows' sums to out[0..3] and moves to the next
// group.
#define NEXTGROUP \
	VADDPS  Z4, Z0, Z0        \
	VADDPS  Z5, Z1, Z1        \
	VADDPS  Z6, Z2, Z2        \
	VADDPS  Z7, Z3, Z3        \
	HSUM512TO128(Z0, Y0, X0)  \
	HSUM512TO128(Z1, Y1, X1)  \
	HSUM512TO128(Z2, Y2, X2)  \
	HSUM512TO128(Z3, Y3, X3)  \
	VHADDPS X1, X0, X0        \
	VHADDPS X3, X2, X2        \
	VHADDPS X2, X0, X0        \
	VADDPS  (SI), X0, X0      \
	VMOVUPS X0, (SI)          \
	ADDQ    $16, SI           \
	ADDQ    R15, R13          \
	DECQ    DX

// func f16DotAVX512(out *float32, w *byte, ldw, ng int, a *float32, k int)
TEXT ·f16DotAVX512(SB), NOSPLIT, $0-48
	GROUPSTART

f16_group:
	LOADGROUP

f16_loop:
	VMOVUPS   (DI), Z16
	VMOVUPS   64(DI), Z17
	VCVTPH2PS (R8), Z20
	VCVTPH2PS 32(R8), Z21
	VCVTPH2PS (R9), Z22
	VCVTPH2PS 32(R9), Z23
	VCVTPH2PS (R10), Z24
	VCVTPH2PS 32(R10), Z25
	VCVTPH2PS (R11), Z26
	VCVTPH2PS 32(R11), Z27
	FMAROWS
	JNZ       f16_loop
	NEXTGROUP
	JNZ       f16_group
	VZEROUPPER
	RET

// BF16WIDEN(m, z) widens the 16 bfloat16 values at m to float32 in z.
#define BF16WIDEN(m, z) \
	VPMOVZXWD m, z       \
	VPSLLD    $16, z, z

// func bf16DotAVX512(out *float32, w *byte, ldw, ng int, a *float32, k int)
TEXT ·bf16DotAVX512(SB), NOSPLIT, $0-48
	GROUPSTART

bf16_group:
	LOADGROUP

bf16_loop:
	VMOVUPS (DI), Z16
	VMOVUPS 64(DI), Z17
	BF16WIDEN((R8), Z20)
	BF16WIDEN(32(R8), Z21)
	BF16WIDEN((R9), Z22)
	BF16WIDEN(32(R9), Z23)
	BF16WIDEN((R10), Z24)
	BF16WIDEN(32(R10), Z25)
	BF16WIDEN((R11), Z26)
	BF16WIDEN(32(R11), Z27)
	FMAROWS
	JNZ     bf16_loop
	NEXTGROUP
	JNZ     bf16_group
	VZEROUPPER
	RET

// The AVX2 kernels: 16 columns (32 bytes per row) per step, eight ymm
// accumulators (Y0..Y3 and Y4..Y7), a in Y8/Y9, the widened values in
// Y10/Y11. k is a positive multiple of 16.

#define LOADGROUPY \
	MOVQ   R13, R8          \
	LEAQ   (R13)(R14*1), R9 \
	LEAQ   (R9)(R14*1), R10 \
	LEAQ   (R10)(R14*1), R11 \
	MOVQ   a+32(FP), DI     \
	MOVQ   k+40(FP), CX     \
	VXORPS Y0, Y0, Y0       \
	VXORPS Y1, Y1, Y1       \
	VXORPS Y2, Y2, Y2       \
	VXORPS Y3, Y3, Y3       \
	VXORPS Y4, Y4, Y4       \
	VXORPS Y5, Y5, Y5       \
	VXORPS Y6, Y6, Y6       \
	VXORPS Y7, Y7, Y7

// F16ROWY(p, acc0, acc1) and BF16ROWY widen row p's 16 values and add
// their products with a to the row's accumulators.
#define F16ROWY(p, acc0, acc1) \
	VCVTPH2PS   (p), Y10      \
	VCVTPH2PS   16(p), Y11    \
	VFMADD231PS Y8, Y10, acc0 \
	VFMADD231PS Y9, Y11, acc1

#define BF16ROWY(p, acc0, acc1) \
	VPMOVZXWD   (p), Y10      \
	VPMOVZXWD   16(p), Y11    \
	VPSLLD      $16, Y10, Y10 \
	VPSLLD      $16, Y11, Y11 \
	VFMADD231PS Y8, Y10, acc0 \
	VFMADD231PS Y9, Y11, acc1

#define STEPY \
	PREFETCHT1 (R8)(R15*1)  \
	PREFETCHT1 (R9)(R15*1)  \
	PREFETCHT1 (R10)(R15*1) \
	PREFETCHT1 (R11)(R15*1) \
	ADDQ       $32, R8      \
	ADDQ       $32, R9      \
	ADDQ       $32, R10     \
	ADDQ       $32, R11     \
	ADDQ       $64, DI      \
	SUBQ       $16, CX

// NEXTGROUPY adds the four rows' sums to out[0..3] and moves to the next
// group.
#define NEXTGROUPY \
	VADDPS       Y4, Y0, Y0   \
	VADDPS       Y5, Y1, Y1   \
	VADDPS       Y6, Y2, Y2   \
	VADDPS       Y7, Y3, Y3   \
	VEXTRACTF128 $1, Y0, X10  \
	VADDPS       X10, X0, X0  \
	VEXTRACTF128 $1, Y1, X10  \
	VADDPS       X10, X1, X1  \
	VEXTRACTF128 $1, Y2, X10  \
	VADDPS       X10, X2, X2  \
	VEXTRACTF128 $1, Y3, X10  \
	VADDPS       X10, X3, X3  \
	VHADDPS      X1, X0, X0   \
	VHADDPS      X3, X2, X2   \
	VHADDPS      X2, X0, X0   \
	VADDPS       (SI), X0, X0 \
	VMOVUPS      X0, (SI)     \
	ADDQ         $16, SI      \
	ADDQ         R15, R13     \
	DECQ         DX

// func f16DotAVX2(out *float32, w *byte, ldw, ng int, a *float32, k int)
TEXT ·f16DotAVX2(SB), NOSPLIT, $0-48
	GROUPSTART

f16y_group:
	LOADGROUPY

f16y_loop:
	VMOVUPS (DI), Y8
	VMOVUPS 32(DI), Y9
	F16ROWY(R8, Y0, Y4)
	F16ROWY(R9, Y1, Y5)
	F16ROWY(R10, Y2, Y6)
	F16ROWY(R11, Y3, Y7)
	STEPY
	JNZ     f16y_loop
	NEXTGROUPY
	JNZ     f16y_group
	VZEROUPPER
	RET

// func bf16DotAVX2(out *float32, w *byte, ldw, ng int, a *float32, k int)
TEXT ·bf16DotAVX2(SB), NOSPLIT, $0-48
	GROUPSTART

bf16y_group:
	LOADGROUPY

bf16y_loop:
	VMOVUPS (DI), Y8
	VMOVUPS 32(DI), Y9
	BF16ROWY(R8, Y0, Y4)
	BF16ROWY(R9, Y1, Y5)
	BF16ROWY(R10, Y2, Y6)
	BF16ROWY(R11, Y3, Y7)
	STEPY
	JNZ     bf16y_loop
	NEXTGROUPY
	JNZ     bf16y_group
	VZEROUPPER
	RET
