//go:build !noasm

#include "textflag.h"

// Fused dot kernels of the skinny product against bitsandbytes 4-bit
// weights (gemv_4bit.go, gemv_4bit_amd64.go). The activations are split
// once per chunk into even and odd elements (fourBitSplitAVX512), so that
// 16 code bytes widened to dwords (VPMOVZXBD) index the 16-entry table
// directly for the odd elements (VPERMPS reads only an index's low four
// bits: the low nibble) and after a shift by 4 for the even ones. The
// table values times the activations are summed in 16 lanes per block, and
// the lanes, scaled by the block's absmax, added to the row's lane
// accumulator (fused multiply-adds); the lanes are added at the end of a
// group of four rows.

// fbsplit<>: VPERMT2PS indices of the even, then the odd, elements of 32.
DATA fbsplit<>+0(SB)/4, $0
DATA fbsplit<>+4(SB)/4, $2
DATA fbsplit<>+8(SB)/4, $4
DATA fbsplit<>+12(SB)/4, $6
DATA fbsplit<>+16(SB)/4, $8
DATA fbsplit<>+20(SB)/4, $10
DATA fbsplit<>+24(SB)/4, $12
DATA fbsplit<>+28(SB)/4, $14
DATA fbsplit<>+32(SB)/4, $16
DATA fbsplit<>+36(SB)/4, $18
DATA fbsplit<>+40(SB)/4, $20
DATA fbsplit<>+44(SB)/4, $22
DATA fbsplit<>+48(SB)/4, $24
DATA fbsplit<>+52(SB)/4, $26
DATA fbsplit<>+56(SB)/4, $28
DATA fbsplit<>+60(SB)/4, $30
DATA fbsplit<>+64(SB)/4, $1
DATA fbsplit<>+68(SB)/4, $3
DATA fbsplit<>+72(SB)/4, $5
DATA fbsplit<>+76(SB)/4, $7
DATA fbsplit<>+80(SB)/4, $9
DATA fbsplit<>+84(SB)/4, $11
DATA fbsplit<>+88(SB)/4, $13
DATA fbsplit<>+92(SB)/4, $15
DATA fbsplit<>+96(SB)/4, $17
DATA fbsplit<>+100(SB)/4, $19
DATA fbsplit<>+104(SB)/4, $21
DATA fbsplit<>+108(SB)/4, $23
DATA fbsplit<>+112(SB)/4, $25
DATA fbsplit<>+116(SB)/4, $27
DATA fbsplit<>+120(SB)/4, $29
DATA fbsplit<>+124(SB)/4, $31
GLOBL fbsplit<>(SB), RODATA|NOPTR, $128

// func fourBitSplitAVX512(dst, src *float32, n int)
TEXT ·fourBitSplitAVX512(SB), NOSPLIT, $0-24
	MOVQ      dst+0(FP), DI
	MOVQ      src+8(FP), SI
	MOVQ      n+16(FP), CX
	SHRQ      $5, CX
	VMOVDQU32 fbsplit<>+0(SB), Z30
	VMOVDQU32 fbsplit<>+64(SB), Z31

fbs_loop:
	VMOVUPS   (SI), Z0
	VMOVUPS   64(SI), Z1
	VMOVAPS   Z0, Z2
	VPERMT2PS Z1, Z30, Z0
	VPERMT2PS Z1, Z31, Z2
	VMOVUPS   Z0, (DI)
	VMOVUPS   Z2, 64(DI)
	ADDQ      $128, SI
	ADDQ      $128, DI
	DECQ      CX
	JNZ       fbs_loop
	VZEROUPPER
	RET

// Registers of fourBitDotAVX512:
//   R8, R9, R10, R11  the group's four rows at the current 16 code bytes
//   R12 the split activations at the same columns, R13 the group's first
//   row, R14 ldw, R15 4·ldw, DX the absmax of the group's first row at the
//   current segment, AX lds·4, DI 3·lds·4, CX segments left, BX 32-element
//   steps left in the segment.
//   Z31 the table, Z0..Z3 the rows' accumulators, Z8..Z11 their segment
//   sums, Z6 and Z7 the even and odd activations, Z4, Z5, Z12 temporaries.

// FBSTEP(w, sum) adds the 32 products of the 16 code bytes at (w) with
// Z6, Z7 to sum.
#define FBSTEP(w, sum) \
	VPMOVZXBD   (w), Z4     \
	VPSRLD      $4, Z4, Z5  \
	VPERMPS     Z31, Z4, Z4 \
	VPERMPS     Z31, Z5, Z5 \
	VFMADD231PS Z6, Z5, sum \
	VFMADD231PS Z7, Z4, sum

// FBSCALE(s, sum, acc) adds sum·(absmax at s) to acc.
#define FBSCALE(s, sum, acc) \
	VBROADCASTSS s, Z12 \
	VFMADD231PS  Z12, sum, acc

// FBZTOX(z, y, x) folds a zmm accumulator to 4 lanes in its xmm.
#define FBZTOX(z, y, x) \
	VEXTRACTF64X4 $1, z, Y4 \
	VADDPS        Y4, y, y  \
	VEXTRACTF128  $1, y, X4 \
	VADDPS        X4, x, x

// func fourBitDotAVX512(out *float32, w *byte, ldw, ng int, a, absmax *float32, lds, nb, seg int, table *[16]float32)
TEXT ·fourBitDotAVX512(SB), NOSPLIT, $0-80
	MOVQ    table+72(FP), AX
	VMOVUPS (AX), Z31
	MOVQ    w+8(FP), R13
	MOVQ    ldw+16(FP), R14
	LEAQ    (R14*4), R15
	MOVQ    lds+48(FP), AX
	SHLQ    $2, AX
	LEAQ    (AX)(AX*2), DI

fbz_group:
	MOVQ   R13, R8
	LEAQ   (R13)(R14*1), R9
	LEAQ   (R9)(R14*1), R10
	LEAQ   (R10)(R14*1), R11
	MOVQ   a+32(FP), R12
	MOVQ   absmax+40(FP), DX
	MOVQ   nb+56(FP), CX
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3

fbz_seg:
	// The next group's rows at this segment, into L2: the hardware
	// prefetchers do not know that the next group starts four rows on.
	PREFETCHT1 (R8)(R15*1)
	PREFETCHT1 (R9)(R15*1)
	PREFETCHT1 (R10)(R15*1)
	PREFETCHT1 (R11)(R15*1)
	MOVQ       seg+64(FP), BX
	SHRQ       $5, BX
	VXORPS     Z8, Z8, Z8
	VXORPS     Z9, Z9, Z9
	VXORPS     Z10, Z10, Z10
	VXORPS     Z11, Z11, Z11

fbz_step:
	VMOVUPS (R12), Z6
	VMOVUPS 64(R12), Z7
	FBSTEP(R8, Z8)
	FBSTEP(R9, Z9)
	FBSTEP(R10, Z10)
	FBSTEP(R11, Z11)
	ADDQ    $16, R8
	ADDQ    $16, R9
	ADDQ    $16, R10
	ADDQ    $16, R11
	ADDQ    $128, R12
	DECQ    BX
	JNZ     fbz_step
	FBSCALE((DX), Z8, Z0)
	FBSCALE((DX)(AX*1), Z9, Z1)
	FBSCALE((DX)(AX*2), Z10, Z2)
	FBSCALE((DX)(DI*1), Z11, Z3)
	ADDQ    $4, DX
	DECQ    CX
	JNZ     fbz_seg

	FBZTOX(Z0, Y0, X0)
	FBZTOX(Z1, Y1, X1)
	FBZTOX(Z2, Y2, X2)
	FBZTOX(Z3, Y3, X3)
	VHADDPS X1, X0, X0
	VHADDPS X3, X2, X2
	VHADDPS X2, X0, X0
	MOVQ    out+0(FP), SI
	VADDPS  (SI), X0, X0
	VMOVUPS X0, (SI)
	ADDQ    $16, SI
	MOVQ    SI, out+0(FP)
	MOVQ    absmax+40(FP), DX
	LEAQ    (DX)(AX*4), DX
	MOVQ    DX, absmax+40(FP)
	LEAQ    (R13)(R15*1), R13
	DECQ    ng+24(FP)
	JNZ     fbz_group
	VZEROUPPER
	RET

// fbpairs<>: VPERMPS indices that gather the even elements of 8 into the
// low half, the odd ones into the high half.
DATA fbpairs<>+0(SB)/4, $0
DATA fbpairs<>+4(SB)/4, $2
DATA fbpairs<>+8(SB)/4, $4
DATA fbpairs<>+12(SB)/4, $6
DATA fbpairs<>+16(SB)/4, $1
DATA fbpairs<>+20(SB)/4, $3
DATA fbpairs<>+24(SB)/4, $5
DATA fbpairs<>+28(SB)/4, $7
GLOBL fbpairs<>(SB), RODATA|NOPTR, $32

// func fourBitSplitAVX2(dst, src *float32, n int)
TEXT ·fourBitSplitAVX2(SB), NOSPLIT, $0-24
	MOVQ    dst+0(FP), DI
	MOVQ    src+8(FP), SI
	MOVQ    n+16(FP), CX
	SHRQ    $5, CX
	VMOVDQU fbpairs<>(SB), Y15

fbsy_loop:
	VPERMPS    (SI), Y15, Y0
	VPERMPS    32(SI), Y15, Y1
	VPERMPS    64(SI), Y15, Y2
	VPERMPS    96(SI), Y15, Y3
	VPERM2F128 $0x20, Y1, Y0, Y4
	VPERM2F128 $0x31, Y1, Y0, Y5
	VPERM2F128 $0x20, Y3, Y2, Y6
	VPERM2F128 $0x31, Y3, Y2, Y7
	VMOVUPS    Y4, (DI)
	VMOVUPS    Y6, 32(DI)
	VMOVUPS    Y5, 64(DI)
	VMOVUPS    Y7, 96(DI)
	ADDQ       $128, SI
	ADDQ       $128, DI
	DECQ       CX
	JNZ        fbsy_loop
	VZEROUPPER
	RET

// fourBitDotAVX2 uses the registers of fourBitDotAVX512 with ymm, except
// that the table is in Y14 (entries 0..7) and Y15 (8..15), and the
// activations are read from memory.

// FBHALF(w, off, even, odd, sum) adds the 16 products of the 8 code bytes
// at off(w) with the even activations at even(R12) and the odd ones at
// odd(R12) to sum. A 16-entry lookup is two 8-entry VPERMPS (which read an
// index's low three bits) blended on bit 3, moved to the sign.
#define FBHALF(w, off, even, odd, sum) \
	VPMOVZXBD   off(w), Y4        \
	VPSRLD      $4, Y4, Y5        \
	VPSLLD      $28, Y4, Y6       \
	VPERMPS     Y14, Y4, Y7       \
	VPERMPS     Y15, Y4, Y4       \
	VBLENDVPS   Y6, Y4, Y7, Y4    \
	VFMADD231PS odd(R12), Y4, sum \
	VPSLLD      $28, Y5, Y6       \
	VPERMPS     Y14, Y5, Y7       \
	VPERMPS     Y15, Y5, Y5       \
	VBLENDVPS   Y6, Y5, Y7, Y5    \
	VFMADD231PS even(R12), Y5, sum

#define FBSTEPY(w, sum) \
	FBHALF(w, 0, 0, 64, sum) \
	FBHALF(w, 8, 32, 96, sum)

// func fourBitDotAVX2(out *float32, w *byte, ldw, ng int, a, absmax *float32, lds, nb, seg int, table *[16]float32)
TEXT ·fourBitDotAVX2(SB), NOSPLIT, $0-80
	MOVQ    table+72(FP), AX
	VMOVUPS (AX), Y14
	VMOVUPS 32(AX), Y15
	MOVQ    w+8(FP), R13
	MOVQ    ldw+16(FP), R14
	LEAQ    (R14*4), R15
	MOVQ    lds+48(FP), AX
	SHLQ    $2, AX
	LEAQ    (AX)(AX*2), DI

fby_group:
	MOVQ   R13, R8
	LEAQ   (R13)(R14*1), R9
	LEAQ   (R9)(R14*1), R10
	LEAQ   (R10)(R14*1), R11
	MOVQ   a+32(FP), R12
	MOVQ   absmax+40(FP), DX
	MOVQ   nb+56(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

fby_seg:
	PREFETCHT1 (R8)(R15*1)
	PREFETCHT1 (R9)(R15*1)
	PREFETCHT1 (R10)(R15*1)
	PREFETCHT1 (R11)(R15*1)
	MOVQ       seg+64(FP), BX
	SHRQ       $5, BX
	VXORPS     Y8, Y8, Y8
	VXORPS     Y9, Y9, Y9
	VXORPS     Y10, Y10, Y10
	VXORPS     Y11, Y11, Y11

fby_step:
	FBSTEPY(R8, Y8)
	FBSTEPY(R9, Y9)
	FBSTEPY(R10, Y10)
	FBSTEPY(R11, Y11)
	ADDQ $16, R8
	ADDQ $16, R9
	ADDQ $16, R10
	ADDQ $16, R11
	ADDQ $128, R12
	DECQ BX
	JNZ  fby_step
	VBROADCASTSS (DX), Y12
	VFMADD231PS  Y12, Y8, Y0
	VBROADCASTSS (DX)(AX*1), Y12
	VFMADD231PS  Y12, Y9, Y1
	VBROADCASTSS (DX)(AX*2), Y12
	VFMADD231PS  Y12, Y10, Y2
	VBROADCASTSS (DX)(DI*1), Y12
	VFMADD231PS  Y12, Y11, Y3
	ADDQ         $4, DX
	DECQ         CX
	JNZ          fby_seg

	VEXTRACTF128 $1, Y0, X4
	VADDPS       X4, X0, X0
	VEXTRACTF128 $1, Y1, X4
	VADDPS       X4, X1, X1
	VEXTRACTF128 $1, Y2, X4
	VADDPS       X4, X2, X2
	VEXTRACTF128 $1, Y3, X4
	VADDPS       X4, X3, X3
	VHADDPS      X1, X0, X0
	VHADDPS      X3, X2, X2
	VHADDPS      X2, X0, X0
	MOVQ         out+0(FP), SI
	VADDPS       (SI), X0, X0
	VMOVUPS      X0, (SI)
	ADDQ         $16, SI
	MOVQ         SI, out+0(FP)
	MOVQ         absmax+40(FP), DX
	LEAQ         (DX)(AX*4), DX
	MOVQ         DX, absmax+40(FP)
	LEAQ         (R13)(R15*1), R13
	DECQ         ng+24(FP)
	JNZ          fby_group
	VZEROUPPER
	RET
