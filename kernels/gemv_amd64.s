//go:build !noasm

#include "textflag.h"

// Weight decoders and the skinny-product dot kernels (gemv_amd64.go).
// Every dequantized value is one float32 product (two for int8 rows),
// exactly as the pure-Go references compute it.

DATA wconst<>+0(SB)/4, $15          // nibble mask
DATA wconst<>+4(SB)/4, $8           // Q4_0 zero point
DATA wconst<>+8(SB)/4, $0x3c010204  // float32(1/127)
GLOBL wconst<>(SB), RODATA|NOPTR, $12

// GGMLSCALE(reg, xreg) broadcasts the fp16 block scale at (SI) as float32.
#define GGMLSCALE(reg, xreg) \
	MOVWLZX      (SI), AX \
	VMOVD        AX, xreg \
	VCVTPH2PS    xreg, xreg \
	VBROADCASTSS xreg, reg

// func q8_0DecodeAVX512(dst *float32, src *byte, nb int)
TEXT ·q8_0DecodeAVX512(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ nb+16(FP), CX

q8z_loop:
	GGMLSCALE(Z0, X0)
	VPMOVSXBD 2(SI), Z1
	VPMOVSXBD 18(SI), Z2
	VCVTDQ2PS Z1, Z1
	VCVTDQ2PS Z2, Z2
	VMULPS    Z0, Z1, Z1
	VMULPS    Z0, Z2, Z2
	VMOVUPS   Z1, (DI)
	VMOVUPS   Z2, 64(DI)
	ADDQ      $34, SI
	ADDQ      $128, DI
	DECQ      CX
	JNZ       q8z_loop
	VZEROUPPER
	RET

// func q8_0DecodeAVX2(dst *float32, src *byte, nb int)
TEXT ·q8_0DecodeAVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ nb+16(FP), CX

q8y_loop:
	GGMLSCALE(Y0, X0)
	VPMOVSXBD 2(SI), Y1
	VPMOVSXBD 10(SI), Y2
	VPMOVSXBD 18(SI), Y3
	VPMOVSXBD 26(SI), Y4
	VCVTDQ2PS Y1, Y1
	VCVTDQ2PS Y2, Y2
	VCVTDQ2PS Y3, Y3
	VCVTDQ2PS Y4, Y4
	VMULPS    Y0, Y1, Y1
	VMULPS    Y0, Y2, Y2
	VMULPS    Y0, Y3, Y3
	VMULPS    Y0, Y4, Y4
	VMOVUPS   Y1, (DI)
	VMOVUPS   Y2, 32(DI)
	VMOVUPS   Y3, 64(DI)
	VMOVUPS   Y4, 96(DI)
	ADDQ      $34, SI
	ADDQ      $128, DI
	DECQ      CX
	JNZ       q8y_loop
	VZEROUPPER
	RET

// func q4_0DecodeAVX512(dst *float32, src *byte, nb int)
TEXT ·q4_0DecodeAVX512(SB), NOSPLIT, $0-24
	MOVQ         dst+0(FP), DI
	MOVQ         src+8(FP), SI
	MOVQ         nb+16(FP), CX
	VPBROADCASTD wconst<>+0(SB), Z14
	VPBROADCASTD wconst<>+4(SB), Z15

q4z_loop:
	GGMLSCALE(Z0, X0)
	VPMOVZXBD 2(SI), Z1
	VPSRLD    $4, Z1, Z2
	VPANDD    Z14, Z1, Z1
	VPSUBD    Z15, Z1, Z1
	VPSUBD    Z15, Z2, Z2
	VCVTDQ2PS Z1, Z1
	VCVTDQ2PS Z2, Z2
	VMULPS    Z0, Z1, Z1
	VMULPS    Z0, Z2, Z2
	VMOVUPS   Z1, (DI)
	VMOVUPS   Z2, 64(DI)
	ADDQ      $18, SI
	ADDQ      $128, DI
	DECQ      CX
	JNZ       q4z_loop
	VZEROUPPER
	RET

// func q4_0DecodeAVX2(dst *float32, src *byte, nb int)
TEXT ·q4_0DecodeAVX2(SB), NOSPLIT, $0-24
	MOVQ         dst+0(FP), DI
	MOVQ         src+8(FP), SI
	MOVQ         nb+16(FP), CX
	VPBROADCASTD wconst<>+0(SB), Y14
	VPBROADCASTD wconst<>+4(SB), Y15

q4y_loop:
	GGMLSCALE(Y0, X0)
	VPMOVZXBD 2(SI), Y1
	VPMOVZXBD 10(SI), Y2
	VPSRLD    $4, Y1, Y3
	VPSRLD    $4, Y2, Y4
	VPAND     Y14, Y1, Y1
	VPAND     Y14, Y2, Y2
	VPSUBD    Y15, Y1, Y1
	VPSUBD    Y15, Y2, Y2
	VPSUBD    Y15, Y3, Y3
	VPSUBD    Y15, Y4, Y4
	VCVTDQ2PS Y1, Y1
	VCVTDQ2PS Y2, Y2
	VCVTDQ2PS Y3, Y3
	VCVTDQ2PS Y4, Y4
	VMULPS    Y0, Y1, Y1
	VMULPS    Y0, Y2, Y2
	VMULPS    Y0, Y3, Y3
	VMULPS    Y0, Y4, Y4
	VMOVUPS   Y1, (DI)
	VMOVUPS   Y2, 32(DI)
	VMOVUPS   Y3, 64(DI)
	VMOVUPS   Y4, 96(DI)
	ADDQ      $18, SI
	ADDQ      $128, DI
	DECQ      CX
	JNZ       q4y_loop
	VZEROUPPER
	RET

// NIBBLEIDX(r, t) turns 8 bytes zero-extended to qwords in r into 16
// permutation indices: the low dword of each qword gets the high nibble
// (the even element), the high dword the byte itself (its low nibble is
// the odd element; VPERMPS reads only the low bits of an index).
#define NIBBLEIDX(r, t) \
	VPSRLQ $4, r, t  \
	VPSLLQ $32, r, r \
	VPORQ  t, r, r

// func fourBitDecodeAVX512(dst *float32, src *byte, absmax *float32, table *[16]float32, nb, bs int)
TEXT ·fourBitDecodeAVX512(SB), NOSPLIT, $0-48
	MOVQ    dst+0(FP), DI
	MOVQ    src+8(FP), SI
	MOVQ    absmax+16(FP), BX
	MOVQ    table+24(FP), DX
	MOVQ    nb+32(FP), CX
	MOVQ    bs+40(FP), R8
	SHRQ    $5, R8             // 16-byte steps per block
	VMOVUPS (DX), Z31

fbz_block:
	VBROADCASTSS (BX), Z30
	VMULPS       Z30, Z31, Z30 // lut[c] = table[c]·absmax
	MOVQ         R8, R9

fbz_inner:
	VPMOVZXBQ (SI), Z1
	VPMOVZXBQ 8(SI), Z2
	NIBBLEIDX(Z1, Z3)
	NIBBLEIDX(Z2, Z4)
	VPERMPS   Z30, Z1, Z1
	VPERMPS   Z30, Z2, Z2
	VMOVUPS   Z1, (DI)
	VMOVUPS   Z2, 64(DI)
	ADDQ      $16, SI
	ADDQ      $128, DI
	DECQ      R9
	JNZ       fbz_inner
	ADDQ      $4, BX
	DECQ      CX
	JNZ       fbz_block
	VZEROUPPER
	RET

// LOOKUP16(r, t, m, lo, hi) looks up the 8 indices of r (NIBBLEIDX on 4
// bytes) in the 16-entry table lo‖hi: two 8-entry VPERMPS, blended on bit 3.
#define LOOKUP16(r, t, m, lo, hi) \
	VPSRLQ    $4, r, t   \
	VPSLLQ    $32, r, r  \
	VPOR      t, r, r    \
	VPSLLD    $28, r, m  \
	VPERMPS   lo, r, t   \
	VPERMPS   hi, r, r   \
	VBLENDVPS m, r, t, r

// func fourBitDecodeAVX2(dst *float32, src *byte, absmax *float32, table *[16]float32, nb, bs int)
TEXT ·fourBitDecodeAVX2(SB), NOSPLIT, $0-48
	MOVQ    dst+0(FP), DI
	MOVQ    src+8(FP), SI
	MOVQ    absmax+16(FP), BX
	MOVQ    table+24(FP), DX
	MOVQ    nb+32(FP), CX
	MOVQ    bs+40(FP), R8
	SHRQ    $4, R8             // 8-byte steps per block
	VMOVUPS (DX), Y14
	VMOVUPS 32(DX), Y15

fby_block:
	VBROADCASTSS (BX), Y13
	VMULPS       Y13, Y14, Y11 // lut[0:8]
	VMULPS       Y13, Y15, Y12 // lut[8:16]
	MOVQ         R8, R9

fby_inner:
	VPMOVZXBQ (SI), Y1
	VPMOVZXBQ 4(SI), Y2
	LOOKUP16(Y1, Y3, Y4, Y11, Y12)
	LOOKUP16(Y2, Y5, Y6, Y11, Y12)
	VMOVUPS   Y1, (DI)
	VMOVUPS   Y2, 32(DI)
	ADDQ      $8, SI
	ADDQ      $64, DI
	DECQ      R9
	JNZ       fby_inner
	ADDQ      $4, BX
	DECQ      CX
	JNZ       fby_block
	VZEROUPPER
	RET

// func int8RowAVX512(dst *float32, src *byte, n int, scale float32)
TEXT ·int8RowAVX512(SB), NOSPLIT, $0-28
	MOVQ         dst+0(FP), DI
	MOVQ         src+8(FP), SI
	MOVQ         n+16(FP), CX
	VBROADCASTSS scale+24(FP), Z30
	VBROADCASTSS wconst<>+8(SB), Z31

i8z_loop:
	VPMOVSXBD (SI), Z1
	VCVTDQ2PS Z1, Z1
	VMULPS    Z30, Z1, Z1
	VMULPS    Z31, Z1, Z1
	VMOVUPS   Z1, (DI)
	ADDQ      $16, SI
	ADDQ      $64, DI
	SUBQ      $16, CX
	JNZ       i8z_loop
	VZEROUPPER
	RET

// func int8RowAVX2(dst *float32, src *byte, n int, scale float32)
TEXT ·int8RowAVX2(SB), NOSPLIT, $0-28
	MOVQ         dst+0(FP), DI
	MOVQ         src+8(FP), SI
	MOVQ         n+16(FP), CX
	VBROADCASTSS scale+24(FP), Y14
	VBROADCASTSS wconst<>+8(SB), Y15

i8y_loop:
	VPMOVSXBD (SI), Y1
	VCVTDQ2PS Y1, Y1
	VMULPS    Y14, Y1, Y1
	VMULPS    Y15, Y1, Y1
	VMOVUPS   Y1, (DI)
	ADDQ      $8, SI
	ADDQ      $32, DI
	SUBQ      $8, CX
	JNZ       i8y_loop
	VZEROUPPER
	RET

// TAILMASK sets K1 to the low CX bits (CX < 16). Clobbers AX.
#define TAILMASK \
	MOVL  $1, AX \
	SHLL  CX, AX \
	DECL  AX     \
	KMOVW AX, K1

// HSUM512TO128(z, y, x) folds a zmm accumulator to 4 lanes in its xmm.
#define HSUM512TO128(z, y, x) \
	VEXTRACTF64X4 $1, z, Y16 \
	VADDPS        Y16, y, y  \
	VEXTRACTF32X4 $1, y, X16 \
	VADDPS        X16, x, x

// HADD4(x0, x1, x2, x3) leaves the four horizontal sums in x0.
#define HADD4(x0, x1, x2, x3) \
	VHADDPS x1, x0, x0 \
	VHADDPS x3, x2, x2 \
	VHADDPS x2, x0, x0

// FMA4ROW(a, acc0..3) adds a·b_j (b_j in Z16..Z19) to the row's accumulators.
#define FMA4ROW(a, c0, c1, c2, c3) \
	VFMADD231PS Z16, a, c0 \
	VFMADD231PS Z17, a, c1 \
	VFMADD231PS Z18, a, c2 \
	VFMADD231PS Z19, a, c3

// func dot4x4AVX512(out *float32, a *float32, lda int, b *float32, ldb int, k int)
TEXT ·dot4x4AVX512(SB), NOSPLIT, $0-48
	MOVQ   out+0(FP), DX
	MOVQ   a+8(FP), SI
	MOVQ   lda+16(FP), R8
	MOVQ   b+24(FP), DI
	MOVQ   ldb+32(FP), R10
	MOVQ   k+40(FP), CX
	SHLQ   $2, R8
	LEAQ   (R8)(R8*2), R9
	SHLQ   $2, R10
	LEAQ   (R10)(R10*2), R11
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	VXORPS Z4, Z4, Z4
	VXORPS Z5, Z5, Z5
	VXORPS Z6, Z6, Z6
	VXORPS Z7, Z7, Z7
	VXORPS Z8, Z8, Z8
	VXORPS Z9, Z9, Z9
	VXORPS Z10, Z10, Z10
	VXORPS Z11, Z11, Z11
	VXORPS Z12, Z12, Z12
	VXORPS Z13, Z13, Z13
	VXORPS Z14, Z14, Z14
	VXORPS Z15, Z15, Z15

d44_loop:
	CMPQ    CX, $16
	JB      d44_tail
	VMOVUPS (DI), Z16
	VMOVUPS (DI)(R10*1), Z17
	VMOVUPS (DI)(R10*2), Z18
	VMOVUPS (DI)(R11*1), Z19
	VMOVUPS (SI), Z20
	VMOVUPS (SI)(R8*1), Z21
	VMOVUPS (SI)(R8*2), Z22
	VMOVUPS (SI)(R9*1), Z23
	FMA4ROW(Z20, Z0, Z1, Z2, Z3)
	FMA4ROW(Z21, Z4, Z5, Z6, Z7)
	FMA4ROW(Z22, Z8, Z9, Z10, Z11)
	FMA4ROW(Z23, Z12, Z13, Z14, Z15)
	ADDQ    $64, SI
	ADDQ    $64, DI
	SUBQ    $16, CX
	JMP     d44_loop

d44_tail:
	TESTQ     CX, CX
	JZ        d44_reduce
	TAILMASK
	VMOVUPS.Z (DI), K1, Z16
	VMOVUPS.Z (DI)(R10*1), K1, Z17
	VMOVUPS.Z (DI)(R10*2), K1, Z18
	VMOVUPS.Z (DI)(R11*1), K1, Z19
	VMOVUPS.Z (SI), K1, Z20
	VMOVUPS.Z (SI)(R8*1), K1, Z21
	VMOVUPS.Z (SI)(R8*2), K1, Z22
	VMOVUPS.Z (SI)(R9*1), K1, Z23
	FMA4ROW(Z20, Z0, Z1, Z2, Z3)
	FMA4ROW(Z21, Z4, Z5, Z6, Z7)
	FMA4ROW(Z22, Z8, Z9, Z10, Z11)
	FMA4ROW(Z23, Z12, Z13, Z14, Z15)

d44_reduce:
	HSUM512TO128(Z0, Y0, X0)
	HSUM512TO128(Z1, Y1, X1)
	HSUM512TO128(Z2, Y2, X2)
	HSUM512TO128(Z3, Y3, X3)
	HSUM512TO128(Z4, Y4, X4)
	HSUM512TO128(Z5, Y5, X5)
	HSUM512TO128(Z6, Y6, X6)
	HSUM512TO128(Z7, Y7, X7)
	HSUM512TO128(Z8, Y8, X8)
	HSUM512TO128(Z9, Y9, X9)
	HSUM512TO128(Z10, Y10, X10)
	HSUM512TO128(Z11, Y11, X11)
	HSUM512TO128(Z12, Y12, X12)
	HSUM512TO128(Z13, Y13, X13)
	HSUM512TO128(Z14, Y14, X14)
	HSUM512TO128(Z15, Y15, X15)
	HADD4(X0, X1, X2, X3)
	HADD4(X4, X5, X6, X7)
	HADD4(X8, X9, X10, X11)
	HADD4(X12, X13, X14, X15)
	VADDPS  (DX), X0, X0
	VADDPS  16(DX), X4, X4
	VADDPS  32(DX), X8, X8
	VADDPS  48(DX), X12, X12
	VMOVUPS X0, (DX)
	VMOVUPS X4, 16(DX)
	VMOVUPS X8, 32(DX)
	VMOVUPS X12, 48(DX)
	VZEROUPPER
	RET

// func dot1x4AVX512(out *float32, a *float32, b *float32, ldb int, k int)
TEXT ·dot1x4AVX512(SB), NOSPLIT, $0-40
	MOVQ   out+0(FP), DX
	MOVQ   a+8(FP), SI
	MOVQ   b+16(FP), DI
	MOVQ   ldb+24(FP), R10
	MOVQ   k+32(FP), CX
	SHLQ   $2, R10
	LEAQ   (R10)(R10*2), R11
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	VXORPS Z4, Z4, Z4
	VXORPS Z5, Z5, Z5
	VXORPS Z6, Z6, Z6
	VXORPS Z7, Z7, Z7

d14_loop32:
	CMPQ        CX, $32
	JB          d14_loop16
	VMOVUPS     (SI), Z20
	VMOVUPS     64(SI), Z21
	VFMADD231PS (DI), Z20, Z0
	VFMADD231PS 64(DI), Z21, Z4
	VFMADD231PS (DI)(R10*1), Z20, Z1
	VFMADD231PS 64(DI)(R10*1), Z21, Z5
	VFMADD231PS (DI)(R10*2), Z20, Z2
	VFMADD231PS 64(DI)(R10*2), Z21, Z6
	VFMADD231PS (DI)(R11*1), Z20, Z3
	VFMADD231PS 64(DI)(R11*1), Z21, Z7
	ADDQ        $128, SI
	ADDQ        $128, DI
	SUBQ        $32, CX
	JMP         d14_loop32

d14_loop16:
	CMPQ        CX, $16
	JB          d14_tail
	VMOVUPS     (SI), Z20
	VFMADD231PS (DI), Z20, Z0
	VFMADD231PS (DI)(R10*1), Z20, Z1
	VFMADD231PS (DI)(R10*2), Z20, Z2
	VFMADD231PS (DI)(R11*1), Z20, Z3
	ADDQ        $64, SI
	ADDQ        $64, DI
	SUBQ        $16, CX

d14_tail:
	TESTQ     CX, CX
	JZ        d14_reduce
	TAILMASK
	VMOVUPS.Z (SI), K1, Z20
	VMOVUPS.Z (DI), K1, Z16
	VMOVUPS.Z (DI)(R10*1), K1, Z17
	VMOVUPS.Z (DI)(R10*2), K1, Z18
	VMOVUPS.Z (DI)(R11*1), K1, Z19
	FMA4ROW(Z20, Z0, Z1, Z2, Z3)

d14_reduce:
	VADDPS  Z4, Z0, Z0
	VADDPS  Z5, Z1, Z1
	VADDPS  Z6, Z2, Z2
	VADDPS  Z7, Z3, Z3
	HSUM512TO128(Z0, Y0, X0)
	HSUM512TO128(Z1, Y1, X1)
	HSUM512TO128(Z2, Y2, X2)
	HSUM512TO128(Z3, Y3, X3)
	HADD4(X0, X1, X2, X3)
	VADDPS  (DX), X0, X0
	VMOVUPS X0, (DX)
	VZEROUPPER
	RET

// HSUM256TO128(y, x, t) folds a ymm accumulator to 4 lanes in its xmm.
#define HSUM256TO128(y, x, t) \
	VEXTRACTF128 $1, y, t \
	VADDPS       t, x, x

// func dot2x4AVX2(out *float32, a *float32, lda int, b *float32, ldb int, k int)
TEXT ·dot2x4AVX2(SB), NOSPLIT, $0-48
	MOVQ   out+0(FP), DX
	MOVQ   a+8(FP), SI
	MOVQ   lda+16(FP), R8
	MOVQ   b+24(FP), DI
	MOVQ   ldb+32(FP), R10
	MOVQ   k+40(FP), CX
	SHLQ   $2, R8
	SHLQ   $2, R10
	LEAQ   (R10)(R10*2), R11
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7

d24_loop:
	VMOVUPS     (SI), Y8
	VMOVUPS     (SI)(R8*1), Y9
	VMOVUPS     (DI), Y10
	VMOVUPS     (DI)(R10*1), Y11
	VMOVUPS     (DI)(R10*2), Y12
	VMOVUPS     (DI)(R11*1), Y13
	VFMADD231PS Y10, Y8, Y0
	VFMADD231PS Y11, Y8, Y1
	VFMADD231PS Y12, Y8, Y2
	VFMADD231PS Y13, Y8, Y3
	VFMADD231PS Y10, Y9, Y4
	VFMADD231PS Y11, Y9, Y5
	VFMADD231PS Y12, Y9, Y6
	VFMADD231PS Y13, Y9, Y7
	ADDQ        $32, SI
	ADDQ        $32, DI
	SUBQ        $8, CX
	JNZ         d24_loop

	HSUM256TO128(Y0, X0, X8)
	HSUM256TO128(Y1, X1, X8)
	HSUM256TO128(Y2, X2, X8)
	HSUM256TO128(Y3, X3, X8)
	HSUM256TO128(Y4, X4, X8)
	HSUM256TO128(Y5, X5, X8)
	HSUM256TO128(Y6, X6, X8)
	HSUM256TO128(Y7, X7, X8)
	HADD4(X0, X1, X2, X3)
	HADD4(X4, X5, X6, X7)
	VADDPS  (DX), X0, X0
	VADDPS  16(DX), X4, X4
	VMOVUPS X0, (DX)
	VMOVUPS X4, 16(DX)
	VZEROUPPER
	RET

// func dot1x4AVX2(out *float32, a *float32, b *float32, ldb int, k int)
TEXT ·dot1x4AVX2(SB), NOSPLIT, $0-40
	MOVQ   out+0(FP), DX
	MOVQ   a+8(FP), SI
	MOVQ   b+16(FP), DI
	MOVQ   ldb+24(FP), R10
	MOVQ   k+32(FP), CX
	SHLQ   $2, R10
	LEAQ   (R10)(R10*2), R11
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7

d14y_loop16:
	CMPQ        CX, $16
	JB          d14y_loop8
	VMOVUPS     (SI), Y8
	VMOVUPS     32(SI), Y9
	VFMADD231PS (DI), Y8, Y0
	VFMADD231PS 32(DI), Y9, Y4
	VFMADD231PS (DI)(R10*1), Y8, Y1
	VFMADD231PS 32(DI)(R10*1), Y9, Y5
	VFMADD231PS (DI)(R10*2), Y8, Y2
	VFMADD231PS 32(DI)(R10*2), Y9, Y6
	VFMADD231PS (DI)(R11*1), Y8, Y3
	VFMADD231PS 32(DI)(R11*1), Y9, Y7
	ADDQ        $64, SI
	ADDQ        $64, DI
	SUBQ        $16, CX
	JMP         d14y_loop16

d14y_loop8:
	TESTQ       CX, CX
	JZ          d14y_reduce
	VMOVUPS     (SI), Y8
	VFMADD231PS (DI), Y8, Y0
	VFMADD231PS (DI)(R10*1), Y8, Y1
	VFMADD231PS (DI)(R10*2), Y8, Y2
	VFMADD231PS (DI)(R11*1), Y8, Y3

d14y_reduce:
	VADDPS Y4, Y0, Y0
	VADDPS Y5, Y1, Y1
	VADDPS Y6, Y2, Y2
	VADDPS Y7, Y3, Y3
	HSUM256TO128(Y0, X0, X8)
	HSUM256TO128(Y1, X1, X8)
	HSUM256TO128(Y2, X2, X8)
	HSUM256TO128(Y3, X3, X8)
	HADD4(X0, X1, X2, X3)
	VADDPS  (DX), X0, X0
	VMOVUPS X0, (DX)
	VZEROUPPER
	RET
