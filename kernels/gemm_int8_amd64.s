//go:build !noasm

#include "textflag.h"

// The int8 GEMM of MatMulT against Q4_0 and Q8_0 weights on AVX512-VNNI
// (gemm_int8.go): packQ4_0PanelVNNI and packQ8_0PanelVNNI lay 16 weight
// rows out for VPDPBUSD, int8Kern8x16VNNI multiplies them with 8 packed
// activation rows.

DATA i8const<>+0(SB)/4, $0x0f0f0f0f
DATA i8const<>+4(SB)/4, $0x80808080
GLOBL i8const<>(SB), RODATA|NOPTR, $8

// The packers load lane l of register q with the 16 code bytes of row 4l+q
// (rows ldb = R8 apart from SI; R9 = 3·ldb, R10 = 4·ldb), so that a 4×4
// dword transpose in each lane leaves row c's dword t at dword c of
// register t. Q8_0 does it twice (bytes 0–15 and 16–31 of the codes) and
// adds 128 (VPXORD 0x80) to make the codes unsigned; Q4_0 splits the
// nibbles (values 0–15 low, 16–31 high).

// func packQ4_0PanelVNNI(dst *byte, src *byte, ldb int, nb int, offs *[16]int32)
TEXT ·packQ4_0PanelVNNI(SB), NOSPLIT, $0-40
	MOVQ         dst+0(FP), DI
	MOVQ         src+8(FP), SI
	MOVQ         ldb+16(FP), R8
	MOVQ         nb+24(FP), CX
	MOVQ         offs+32(FP), AX
	VMOVDQU32    (AX), Z31              // row offsets for the scale gather
	VPBROADCASTD i8const<>+0(SB), Z30
	LEAQ         (R8)(R8*2), R9
	LEAQ         (R8*4), R10

packQ4_0PanelVNNI_loop:
	MOVQ         SI, R11
	VMOVDQU      2(R11), X0
	ADDQ         R10, R11
	VINSERTI32X4 $1, 2(R11), Z0, Z0
	ADDQ         R10, R11
	VINSERTI32X4 $2, 2(R11), Z0, Z0
	ADDQ         R10, R11
	VINSERTI32X4 $3, 2(R11), Z0, Z0
	LEAQ         (SI)(R8*1), R11
	VMOVDQU      2(R11), X1
	ADDQ         R10, R11
	VINSERTI32X4 $1, 2(R11), Z1, Z1
	ADDQ         R10, R11
	VINSERTI32X4 $2, 2(R11), Z1, Z1
	ADDQ         R10, R11
	VINSERTI32X4 $3, 2(R11), Z1, Z1
	LEAQ         (SI)(R8*2), R11
	VMOVDQU      2(R11), X2
	ADDQ         R10, R11
	VINSERTI32X4 $1, 2(R11), Z2, Z2
	ADDQ         R10, R11
	VINSERTI32X4 $2, 2(R11), Z2, Z2
	ADDQ         R10, R11
	VINSERTI32X4 $3, 2(R11), Z2, Z2
	LEAQ         (SI)(R9*1), R11
	VMOVDQU      2(R11), X3
	ADDQ         R10, R11
	VINSERTI32X4 $1, 2(R11), Z3, Z3
	ADDQ         R10, R11
	VINSERTI32X4 $2, 2(R11), Z3, Z3
	ADDQ         R10, R11
	VINSERTI32X4 $3, 2(R11), Z3, Z3
	// 4×4 dword transposes in each lane: then lane l of register t holds
	// row 4l+q's dword t at dword q, i.e. row c at dword c.
	VPUNPCKLDQ   Z1, Z0, Z4
	VPUNPCKHDQ   Z1, Z0, Z5
	VPUNPCKLDQ   Z3, Z2, Z6
	VPUNPCKHDQ   Z3, Z2, Z7
	VPUNPCKLQDQ  Z6, Z4, Z0
	VPUNPCKHQDQ  Z6, Z4, Z1
	VPUNPCKLQDQ  Z7, Z5, Z2
	VPUNPCKHQDQ  Z7, Z5, Z3
	VPANDD       Z30, Z0, Z8
	VPSRLW       $4, Z0, Z9
	VPANDD       Z30, Z9, Z9
	VMOVDQU32    Z8, 0(DI)
	VMOVDQU32    Z9, 256(DI)
	VPANDD       Z30, Z1, Z8
	VPSRLW       $4, Z1, Z9
	VPANDD       Z30, Z9, Z9
	VMOVDQU32    Z8, 64(DI)
	VMOVDQU32    Z9, 320(DI)
	VPANDD       Z30, Z2, Z8
	VPSRLW       $4, Z2, Z9
	VPANDD       Z30, Z9, Z9
	VMOVDQU32    Z8, 128(DI)
	VMOVDQU32    Z9, 384(DI)
	VPANDD       Z30, Z3, Z8
	VPSRLW       $4, Z3, Z9
	VPANDD       Z30, Z9, Z9
	VMOVDQU32    Z8, 192(DI)
	VMOVDQU32    Z9, 448(DI)
	// The scales: the dwords at the rows' block starts, low halves, widened.
	KXNORW       K0, K0, K1
	VPGATHERDD   (SI)(Z31*1), K1, Z12
	VPMOVDW      Z12, Y12
	VCVTPH2PS    Y12, Z12
	VMOVUPS      Z12, 512(DI)
	ADDQ         $18, SI
	ADDQ         $576, DI
	DECQ         CX
	JNZ          packQ4_0PanelVNNI_loop
	VZEROUPPER
	RET

// func packQ8_0PanelVNNI(dst *byte, src *byte, ldb int, nb int, offs *[16]int32)
TEXT ·packQ8_0PanelVNNI(SB), NOSPLIT, $0-40
	MOVQ         dst+0(FP), DI
	MOVQ         src+8(FP), SI
	MOVQ         ldb+16(FP), R8
	MOVQ         nb+24(FP), CX
	MOVQ         offs+32(FP), AX
	VMOVDQU32    (AX), Z31              // row offsets for the scale gather
	VPBROADCASTD i8const<>+4(SB), Z30
	LEAQ         (R8)(R8*2), R9
	LEAQ         (R8*4), R10

packQ8_0PanelVNNI_loop:
	MOVQ         SI, R11
	VMOVDQU      2(R11), X0
	ADDQ         R10, R11
	VINSERTI32X4 $1, 2(R11), Z0, Z0
	ADDQ         R10, R11
	VINSERTI32X4 $2, 2(R11), Z0, Z0
	ADDQ         R10, R11
	VINSERTI32X4 $3, 2(R11), Z0, Z0
	LEAQ         (SI)(R8*1), R11
	VMOVDQU      2(R11), X1
	ADDQ         R10, R11
	VINSERTI32X4 $1, 2(R11), Z1, Z1
	ADDQ         R10, R11
	VINSERTI32X4 $2, 2(R11), Z1, Z1
	ADDQ         R10, R11
	VINSERTI32X4 $3, 2(R11), Z1, Z1
	LEAQ         (SI)(R8*2), R11
	VMOVDQU      2(R11), X2
	ADDQ         R10, R11
	VINSERTI32X4 $1, 2(R11), Z2, Z2
	ADDQ         R10, R11
	VINSERTI32X4 $2, 2(R11), Z2, Z2
	ADDQ         R10, R11
	VINSERTI32X4 $3, 2(R11), Z2, Z2
	LEAQ         (SI)(R9*1), R11
	VMOVDQU      2(R11), X3
	ADDQ         R10, R11
	VINSERTI32X4 $1, 2(R11), Z3, Z3
	ADDQ         R10, R11
	VINSERTI32X4 $2, 2(R11), Z3, Z3
	ADDQ         R10, R11
	VINSERTI32X4 $3, 2(R11), Z3, Z3
	MOVQ         SI, R11
	VMOVDQU      18(R11), X8
	ADDQ         R10, R11
	VINSERTI32X4 $1, 18(R11), Z8, Z8
	ADDQ         R10, R11
	VINSERTI32X4 $2, 18(R11), Z8, Z8
	ADDQ         R10, R11
	VINSERTI32X4 $3, 18(R11), Z8, Z8
	LEAQ         (SI)(R8*1), R11
	VMOVDQU      18(R11), X9
	ADDQ         R10, R11
	VINSERTI32X4 $1, 18(R11), Z9, Z9
	ADDQ         R10, R11
	VINSERTI32X4 $2, 18(R11), Z9, Z9
	ADDQ         R10, R11
	VINSERTI32X4 $3, 18(R11), Z9, Z9
	LEAQ         (SI)(R8*2), R11
	VMOVDQU      18(R11), X10
	ADDQ         R10, R11
	VINSERTI32X4 $1, 18(R11), Z10, Z10
	ADDQ         R10, R11
	VINSERTI32X4 $2, 18(R11), Z10, Z10
	ADDQ         R10, R11
	VINSERTI32X4 $3, 18(R11), Z10, Z10
	LEAQ         (SI)(R9*1), R11
	VMOVDQU      18(R11), X11
	ADDQ         R10, R11
	VINSERTI32X4 $1, 18(R11), Z11, Z11
	ADDQ         R10, R11
	VINSERTI32X4 $2, 18(R11), Z11, Z11
	ADDQ         R10, R11
	VINSERTI32X4 $3, 18(R11), Z11, Z11
	// 4×4 dword transposes in each lane: then lane l of register t holds
	// row 4l+q's dword t at dword q, i.e. row c at dword c.
	VPUNPCKLDQ   Z1, Z0, Z4
	VPUNPCKHDQ   Z1, Z0, Z5
	VPUNPCKLDQ   Z3, Z2, Z6
	VPUNPCKHDQ   Z3, Z2, Z7
	VPUNPCKLQDQ  Z6, Z4, Z0
	VPUNPCKHQDQ  Z6, Z4, Z1
	VPUNPCKLQDQ  Z7, Z5, Z2
	VPUNPCKHQDQ  Z7, Z5, Z3
	VPUNPCKLDQ   Z9, Z8, Z4
	VPUNPCKHDQ   Z9, Z8, Z5
	VPUNPCKLDQ   Z11, Z10, Z6
	VPUNPCKHDQ   Z11, Z10, Z7
	VPUNPCKLQDQ  Z6, Z4, Z8
	VPUNPCKHQDQ  Z6, Z4, Z9
	VPUNPCKLQDQ  Z7, Z5, Z10
	VPUNPCKHQDQ  Z7, Z5, Z11
	VPXORD       Z30, Z0, Z0
	VMOVDQU32    Z0, 0(DI)
	VPXORD       Z30, Z1, Z1
	VMOVDQU32    Z1, 64(DI)
	VPXORD       Z30, Z2, Z2
	VMOVDQU32    Z2, 128(DI)
	VPXORD       Z30, Z3, Z3
	VMOVDQU32    Z3, 192(DI)
	VPXORD       Z30, Z8, Z8
	VMOVDQU32    Z8, 256(DI)
	VPXORD       Z30, Z9, Z9
	VMOVDQU32    Z9, 320(DI)
	VPXORD       Z30, Z10, Z10
	VMOVDQU32    Z10, 384(DI)
	VPXORD       Z30, Z11, Z11
	VMOVDQU32    Z11, 448(DI)
	// The scales: the dwords at the rows' block starts, low halves, widened.
	KXNORW       K0, K0, K1
	VPGATHERDD   (SI)(Z31*1), K1, Z12
	VPMOVDW      Z12, Y12
	VCVTPH2PS    Y12, Z12
	VMOVUPS      Z12, 512(DI)
	ADDQ         $34, SI
	ADDQ         $576, DI
	DECQ         CX
	JNZ          packQ8_0PanelVNNI_loop
	VZEROUPPER
	RET

// func int8Kern8x16VNNI(c *float32, ldc int, a *byte, b *byte, nb int, rows int, mask uint16, accum bool)
//
// For r < rows and the columns j of mask, with A packed by packInt8Rows
// (8 rows; per block 320 bytes: codes qa[8][32], da[8], corr[8]) and B by
// a pack*PanelVNNI (per block 576 bytes: u[8][16][4], the codes as
// unsigned bytes, then dw[16]):
//
//	s = corr[r] + Σ_g Σ_t u[g][j][t]·qa[r][4g+t]     (VPDPBUSD, exact)
//	acc[r][j] += float32(s) · (dw[j]·da[r])          per block, fused multiply-add
//	c[r*ldc+j] = acc[r][j]  (or += with accum)
TEXT ·int8Kern8x16VNNI(SB), NOSPLIT, $0-51
	MOVQ   a+16(FP), SI
	MOVQ   b+24(FP), DI
	MOVQ   nb+32(FP), CX
	VXORPS Z0, Z0, Z0
	VXORPS Z1, Z1, Z1
	VXORPS Z2, Z2, Z2
	VXORPS Z3, Z3, Z3
	VXORPS Z4, Z4, Z4
	VXORPS Z5, Z5, Z5
	VXORPS Z6, Z6, Z6
	VXORPS Z7, Z7, Z7

ik_loop:
	VMOVDQU32    0(DI), Z16
	VMOVDQU32    64(DI), Z17
	VMOVDQU32    128(DI), Z18
	VMOVDQU32    192(DI), Z19
	VMOVDQU32    256(DI), Z20
	VMOVDQU32    320(DI), Z21
	VMOVDQU32    384(DI), Z22
	VMOVDQU32    448(DI), Z23
	VMOVUPS      512(DI), Z24
	VPBROADCASTD 288(SI), Z8
	VPDPBUSD.BCST 0(SI), Z16, Z8
	VPDPBUSD.BCST 4(SI), Z17, Z8
	VPDPBUSD.BCST 8(SI), Z18, Z8
	VPDPBUSD.BCST 12(SI), Z19, Z8
	VPDPBUSD.BCST 16(SI), Z20, Z8
	VPDPBUSD.BCST 20(SI), Z21, Z8
	VPDPBUSD.BCST 24(SI), Z22, Z8
	VPDPBUSD.BCST 28(SI), Z23, Z8
	VCVTDQ2PS    Z8, Z8
	VMULPS.BCST  256(SI), Z24, Z25
	VFMADD231PS  Z25, Z8, Z0
	VPBROADCASTD 292(SI), Z9
	VPDPBUSD.BCST 32(SI), Z16, Z9
	VPDPBUSD.BCST 36(SI), Z17, Z9
	VPDPBUSD.BCST 40(SI), Z18, Z9
	VPDPBUSD.BCST 44(SI), Z19, Z9
	VPDPBUSD.BCST 48(SI), Z20, Z9
	VPDPBUSD.BCST 52(SI), Z21, Z9
	VPDPBUSD.BCST 56(SI), Z22, Z9
	VPDPBUSD.BCST 60(SI), Z23, Z9
	VCVTDQ2PS    Z9, Z9
	VMULPS.BCST  260(SI), Z24, Z25
	VFMADD231PS  Z25, Z9, Z1
	VPBROADCASTD 296(SI), Z10
	VPDPBUSD.BCST 64(SI), Z16, Z10
	VPDPBUSD.BCST 68(SI), Z17, Z10
	VPDPBUSD.BCST 72(SI), Z18, Z10
	VPDPBUSD.BCST 76(SI), Z19, Z10
	VPDPBUSD.BCST 80(SI), Z20, Z10
	VPDPBUSD.BCST 84(SI), Z21, Z10
	VPDPBUSD.BCST 88(SI), Z22, Z10
	VPDPBUSD.BCST 92(SI), Z23, Z10
	VCVTDQ2PS    Z10, Z10
	VMULPS.BCST  264(SI), Z24, Z25
	VFMADD231PS  Z25, Z10, Z2
	VPBROADCASTD 300(SI), Z11
	VPDPBUSD.BCST 96(SI), Z16, Z11
	VPDPBUSD.BCST 100(SI), Z17, Z11
	VPDPBUSD.BCST 104(SI), Z18, Z11
	VPDPBUSD.BCST 108(SI), Z19, Z11
	VPDPBUSD.BCST 112(SI), Z20, Z11
	VPDPBUSD.BCST 116(SI), Z21, Z11
	VPDPBUSD.BCST 120(SI), Z22, Z11
	VPDPBUSD.BCST 124(SI), Z23, Z11
	VCVTDQ2PS    Z11, Z11
	VMULPS.BCST  268(SI), Z24, Z25
	VFMADD231PS  Z25, Z11, Z3
	VPBROADCASTD 304(SI), Z12
	VPDPBUSD.BCST 128(SI), Z16, Z12
	VPDPBUSD.BCST 132(SI), Z17, Z12
	VPDPBUSD.BCST 136(SI), Z18, Z12
	VPDPBUSD.BCST 140(SI), Z19, Z12
	VPDPBUSD.BCST 144(SI), Z20, Z12
	VPDPBUSD.BCST 148(SI), Z21, Z12
	VPDPBUSD.BCST 152(SI), Z22, Z12
	VPDPBUSD.BCST 156(SI), Z23, Z12
	VCVTDQ2PS    Z12, Z12
	VMULPS.BCST  272(SI), Z24, Z25
	VFMADD231PS  Z25, Z12, Z4
	VPBROADCASTD 308(SI), Z13
	VPDPBUSD.BCST 160(SI), Z16, Z13
	VPDPBUSD.BCST 164(SI), Z17, Z13
	VPDPBUSD.BCST 168(SI), Z18, Z13
	VPDPBUSD.BCST 172(SI), Z19, Z13
	VPDPBUSD.BCST 176(SI), Z20, Z13
	VPDPBUSD.BCST 180(SI), Z21, Z13
	VPDPBUSD.BCST 184(SI), Z22, Z13
	VPDPBUSD.BCST 188(SI), Z23, Z13
	VCVTDQ2PS    Z13, Z13
	VMULPS.BCST  276(SI), Z24, Z25
	VFMADD231PS  Z25, Z13, Z5
	VPBROADCASTD 312(SI), Z14
	VPDPBUSD.BCST 192(SI), Z16, Z14
	VPDPBUSD.BCST 196(SI), Z17, Z14
	VPDPBUSD.BCST 200(SI), Z18, Z14
	VPDPBUSD.BCST 204(SI), Z19, Z14
	VPDPBUSD.BCST 208(SI), Z20, Z14
	VPDPBUSD.BCST 212(SI), Z21, Z14
	VPDPBUSD.BCST 216(SI), Z22, Z14
	VPDPBUSD.BCST 220(SI), Z23, Z14
	VCVTDQ2PS    Z14, Z14
	VMULPS.BCST  280(SI), Z24, Z25
	VFMADD231PS  Z25, Z14, Z6
	VPBROADCASTD 316(SI), Z15
	VPDPBUSD.BCST 224(SI), Z16, Z15
	VPDPBUSD.BCST 228(SI), Z17, Z15
	VPDPBUSD.BCST 232(SI), Z18, Z15
	VPDPBUSD.BCST 236(SI), Z19, Z15
	VPDPBUSD.BCST 240(SI), Z20, Z15
	VPDPBUSD.BCST 244(SI), Z21, Z15
	VPDPBUSD.BCST 248(SI), Z22, Z15
	VPDPBUSD.BCST 252(SI), Z23, Z15
	VCVTDQ2PS    Z15, Z15
	VMULPS.BCST  284(SI), Z24, Z25
	VFMADD231PS  Z25, Z15, Z7
	ADDQ         $320, SI
	ADDQ         $576, DI
	DECQ         CX
	JNZ          ik_loop

	// Store the rows, columns masked.
	MOVQ         c+0(FP), DI
	MOVQ         ldc+8(FP), DX
	SHLQ         $2, DX
	MOVQ         rows+40(FP), CX
	MOVWLZX      mask+48(FP), AX
	KMOVW        AX, K1
	MOVBLZX      accum+50(FP), AX
	TESTQ        AX, AX
	JZ           ik_st0
	VMOVUPS.Z    (DI), K1, Z25
	VADDPS       Z25, Z0, Z0
ik_st0:
	VMOVUPS      Z0, K1, (DI)
	DECQ         CX
	JZ           ik_done
	ADDQ         DX, DI
	TESTQ        AX, AX
	JZ           ik_st1
	VMOVUPS.Z    (DI), K1, Z25
	VADDPS       Z25, Z1, Z1
ik_st1:
	VMOVUPS      Z1, K1, (DI)
	DECQ         CX
	JZ           ik_done
	ADDQ         DX, DI
	TESTQ        AX, AX
	JZ           ik_st2
	VMOVUPS.Z    (DI), K1, Z25
	VADDPS       Z25, Z2, Z2
ik_st2:
	VMOVUPS      Z2, K1, (DI)
	DECQ         CX
	JZ           ik_done
	ADDQ         DX, DI
	TESTQ        AX, AX
	JZ           ik_st3
	VMOVUPS.Z    (DI), K1, Z25
	VADDPS       Z25, Z3, Z3
ik_st3:
	VMOVUPS      Z3, K1, (DI)
	DECQ         CX
	JZ           ik_done
	ADDQ         DX, DI
	TESTQ        AX, AX
	JZ           ik_st4
	VMOVUPS.Z    (DI), K1, Z25
	VADDPS       Z25, Z4, Z4
ik_st4:
	VMOVUPS      Z4, K1, (DI)
	DECQ         CX
	JZ           ik_done
	ADDQ         DX, DI
	TESTQ        AX, AX
	JZ           ik_st5
	VMOVUPS.Z    (DI), K1, Z25
	VADDPS       Z25, Z5, Z5
ik_st5:
	VMOVUPS      Z5, K1, (DI)
	DECQ         CX
	JZ           ik_done
	ADDQ         DX, DI
	TESTQ        AX, AX
	JZ           ik_st6
	VMOVUPS.Z    (DI), K1, Z25
	VADDPS       Z25, Z6, Z6
ik_st6:
	VMOVUPS      Z6, K1, (DI)
	DECQ         CX
	JZ           ik_done
	ADDQ         DX, DI
	TESTQ        AX, AX
	JZ           ik_st7
	VMOVUPS.Z    (DI), K1, Z25
	VADDPS       Z25, Z7, Z7
ik_st7:
	VMOVUPS      Z7, K1, (DI)
	DECQ         CX
	JZ           ik_done
	ADDQ         DX, DI
ik_done:
	VZEROUPPER
	RET
