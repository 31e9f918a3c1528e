//go:build !noasm

#include "textflag.h"

// Byte distance between the rows of a packed A panel (see gemm_avx512_amd64.s).
#define ASTR 1088

// maskTab: eight all-ones lanes then eight zero lanes; the 8 lanes at
// maskTab+4*(8-n) enable the first n.
DATA maskTab<>+0(SB)/4, $0xffffffff
DATA maskTab<>+4(SB)/4, $0xffffffff
DATA maskTab<>+8(SB)/4, $0xffffffff
DATA maskTab<>+12(SB)/4, $0xffffffff
DATA maskTab<>+16(SB)/4, $0xffffffff
DATA maskTab<>+20(SB)/4, $0xffffffff
DATA maskTab<>+24(SB)/4, $0xffffffff
DATA maskTab<>+28(SB)/4, $0xffffffff
DATA maskTab<>+32(SB)/4, $0
DATA maskTab<>+36(SB)/4, $0
DATA maskTab<>+40(SB)/4, $0
DATA maskTab<>+44(SB)/4, $0
DATA maskTab<>+48(SB)/4, $0
DATA maskTab<>+52(SB)/4, $0
DATA maskTab<>+56(SB)/4, $0
DATA maskTab<>+60(SB)/4, $0
GLOBL maskTab<>(SB), RODATA|NOPTR, $64

// KSTEP2_n does one k step of the n×16 micro-kernel: C[r][0:16] += A[r][k] ·
// B[k][0:16] for r < n. Y0, Y1 hold the B row, Y2 and Y3 the broadcasts,
// Y4..Y15 the accumulators (row r in Y(4+2r), Y(5+2r)).
#define KSTEP2_6(AO, BO) \
	VMOVUPS BO(BX), Y0; \
	VMOVUPS BO+32(BX), Y1; \
	VBROADCASTSS AO(AX), Y2; \
	VFMADD231PS Y0, Y2, Y4; \
	VFMADD231PS Y1, Y2, Y5; \
	VBROADCASTSS AO+1*ASTR(AX), Y3; \
	VFMADD231PS Y0, Y3, Y6; \
	VFMADD231PS Y1, Y3, Y7; \
	VBROADCASTSS AO+2*ASTR(AX), Y2; \
	VFMADD231PS Y0, Y2, Y8; \
	VFMADD231PS Y1, Y2, Y9; \
	VBROADCASTSS AO+3*ASTR(AX), Y3; \
	VFMADD231PS Y0, Y3, Y10; \
	VFMADD231PS Y1, Y3, Y11; \
	VBROADCASTSS AO+4*ASTR(AX), Y2; \
	VFMADD231PS Y0, Y2, Y12; \
	VFMADD231PS Y1, Y2, Y13; \
	VBROADCASTSS AO+5*ASTR(AX), Y3; \
	VFMADD231PS Y0, Y3, Y14; \
	VFMADD231PS Y1, Y3, Y15

#define KSTEP2_4(AO, BO) \
	VMOVUPS BO(BX), Y0; \
	VMOVUPS BO+32(BX), Y1; \
	VBROADCASTSS AO(AX), Y2; \
	VFMADD231PS Y0, Y2, Y4; \
	VFMADD231PS Y1, Y2, Y5; \
	VBROADCASTSS AO+1*ASTR(AX), Y3; \
	VFMADD231PS Y0, Y3, Y6; \
	VFMADD231PS Y1, Y3, Y7; \
	VBROADCASTSS AO+2*ASTR(AX), Y2; \
	VFMADD231PS Y0, Y2, Y8; \
	VFMADD231PS Y1, Y2, Y9; \
	VBROADCASTSS AO+3*ASTR(AX), Y3; \
	VFMADD231PS Y0, Y3, Y10; \
	VFMADD231PS Y1, Y3, Y11

#define KSTEP2_2(AO, BO) \
	VMOVUPS BO(BX), Y0; \
	VMOVUPS BO+32(BX), Y1; \
	VBROADCASTSS AO(AX), Y2; \
	VFMADD231PS Y0, Y2, Y4; \
	VFMADD231PS Y1, Y2, Y5; \
	VBROADCASTSS AO+1*ASTR(AX), Y3; \
	VFMADD231PS Y0, Y3, Y6; \
	VFMADD231PS Y1, Y3, Y7

#define KSTEP2_1(AO, BO) \
	VMOVUPS BO(BX), Y0; \
	VMOVUPS BO+32(BX), Y1; \
	VBROADCASTSS AO(AX), Y2; \
	VFMADD231PS Y0, Y2, Y4; \
	VFMADD231PS Y1, Y2, Y5

// STOREROW2 adds row r of C (through R9, column masks Y0, Y1) to its
// accumulators and writes them back; SETROW2 only writes. Both step R9 and
// leave when R10 rows are done.
#define STOREROW2(A0, A1) \
	VMASKMOVPS (R9), Y0, Y2; \
	VMASKMOVPS 32(R9), Y1, Y3; \
	VADDPS Y2, A0, A0; \
	VADDPS Y3, A1, A1; \
	VMASKMOVPS A0, Y0, (R9); \
	VMASKMOVPS A1, Y1, 32(R9); \
	ADDQ R8, R9; \
	DECQ R10; \
	JZ   done

#define SETROW2(A0, A1) \
	VMASKMOVPS A0, Y0, (R9); \
	VMASKMOVPS A1, Y1, 32(R9); \
	ADDQ R8, R9; \
	DECQ R10; \
	JZ   done

// func sgemmKern6x16(kc int, a, b, c []float32, ldc, mr, nc int, accum bool)
TEXT ·sgemmKern6x16(SB), NOSPLIT, $0-105
	MOVQ a_base+8(FP), AX
	MOVQ b_base+32(FP), BX
	MOVQ c_base+56(FP), DX
	MOVQ ldc+80(FP), R8
	SHLQ $2, R8

	MOVQ DX, R9
	PREFETCHT0 (R9)
	PREFETCHT0 63(R9)
	ADDQ R8, R9
	PREFETCHT0 (R9)
	PREFETCHT0 63(R9)
	ADDQ R8, R9
	PREFETCHT0 (R9)
	PREFETCHT0 63(R9)
	ADDQ R8, R9
	PREFETCHT0 (R9)
	PREFETCHT0 63(R9)
	ADDQ R8, R9
	PREFETCHT0 (R9)
	PREFETCHT0 63(R9)
	ADDQ R8, R9
	PREFETCHT0 (R9)
	PREFETCHT0 63(R9)
	ADDQ R8, R9
	VPXOR Y4, Y4, Y4
	VPXOR Y5, Y5, Y5
	VPXOR Y6, Y6, Y6
	VPXOR Y7, Y7, Y7
	VPXOR Y8, Y8, Y8
	VPXOR Y9, Y9, Y9
	VPXOR Y10, Y10, Y10
	VPXOR Y11, Y11, Y11
	VPXOR Y12, Y12, Y12
	VPXOR Y13, Y13, Y13
	VPXOR Y14, Y14, Y14
	VPXOR Y15, Y15, Y15

	MOVQ kc+0(FP), CX
	SUBQ $4, CX
	JL   tail

loop4:
	KSTEP2_6(0, 0)
	KSTEP2_6(4, 64)
	KSTEP2_6(8, 128)
	KSTEP2_6(12, 192)
	ADDQ $16, AX
	ADDQ $256, BX
	SUBQ $4, CX
	JGE  loop4

tail:
	ADDQ $4, CX
	JZ   store

loop1:
	KSTEP2_6(0, 0)
	ADDQ $4, AX
	ADDQ $64, BX
	DECQ CX
	JNZ  loop1

store:
	// Y0, Y1: masks of the valid columns in each half of the tile.
	MOVQ nc+96(FP), CX
	MOVQ CX, R12
	CMPQ R12, $8
	JLE  lo
	MOVQ $8, R12

lo:
	SUBQ R12, CX
	LEAQ maskTab<>(SB), R13
	MOVQ $8, R14
	SUBQ R12, R14
	VMOVDQU (R13)(R14*4), Y0
	MOVQ $8, R14
	SUBQ CX, R14
	VMOVDQU (R13)(R14*4), Y1

	MOVQ DX, R9
	MOVQ mr+88(FP), R10
	MOVBLZX accum+104(FP), R11
	TESTQ R11, R11
	JZ   set
	STOREROW2(Y4, Y5)
	STOREROW2(Y6, Y7)
	STOREROW2(Y8, Y9)
	STOREROW2(Y10, Y11)
	STOREROW2(Y12, Y13)
	STOREROW2(Y14, Y15)
	JMP done

set:
	SETROW2(Y4, Y5)
	SETROW2(Y6, Y7)
	SETROW2(Y8, Y9)
	SETROW2(Y10, Y11)
	SETROW2(Y12, Y13)
	SETROW2(Y14, Y15)

done:
	VZEROUPPER
	RET

// func sgemmKern4x16(kc int, a, b, c []float32, ldc, mr, nc int, accum bool)
TEXT ·sgemmKern4x16(SB), NOSPLIT, $0-105
	MOVQ a_base+8(FP), AX
	MOVQ b_base+32(FP), BX
	MOVQ c_base+56(FP), DX
	MOVQ ldc+80(FP), R8
	SHLQ $2, R8

	MOVQ DX, R9
	PREFETCHT0 (R9)
	PREFETCHT0 63(R9)
	ADDQ R8, R9
	PREFETCHT0 (R9)
	PREFETCHT0 63(R9)
	ADDQ R8, R9
	PREFETCHT0 (R9)
	PREFETCHT0 63(R9)
	ADDQ R8, R9
	PREFETCHT0 (R9)
	PREFETCHT0 63(R9)
	ADDQ R8, R9
	VPXOR Y4, Y4, Y4
	VPXOR Y5, Y5, Y5
	VPXOR Y6, Y6, Y6
	VPXOR Y7, Y7, Y7
	VPXOR Y8, Y8, Y8
	VPXOR Y9, Y9, Y9
	VPXOR Y10, Y10, Y10
	VPXOR Y11, Y11, Y11

	MOVQ kc+0(FP), CX
	SUBQ $4, CX
	JL   tail

loop4:
	KSTEP2_4(0, 0)
	KSTEP2_4(4, 64)
	KSTEP2_4(8, 128)
	KSTEP2_4(12, 192)
	ADDQ $16, AX
	ADDQ $256, BX
	SUBQ $4, CX
	JGE  loop4

tail:
	ADDQ $4, CX
	JZ   store

loop1:
	KSTEP2_4(0, 0)
	ADDQ $4, AX
	ADDQ $64, BX
	DECQ CX
	JNZ  loop1

store:
	// Y0, Y1: masks of the valid columns in each half of the tile.
	MOVQ nc+96(FP), CX
	MOVQ CX, R12
	CMPQ R12, $8
	JLE  lo
	MOVQ $8, R12

lo:
	SUBQ R12, CX
	LEAQ maskTab<>(SB), R13
	MOVQ $8, R14
	SUBQ R12, R14
	VMOVDQU (R13)(R14*4), Y0
	MOVQ $8, R14
	SUBQ CX, R14
	VMOVDQU (R13)(R14*4), Y1

	MOVQ DX, R9
	MOVQ mr+88(FP), R10
	MOVBLZX accum+104(FP), R11
	TESTQ R11, R11
	JZ   set
	STOREROW2(Y4, Y5)
	STOREROW2(Y6, Y7)
	STOREROW2(Y8, Y9)
	STOREROW2(Y10, Y11)
	JMP done

set:
	SETROW2(Y4, Y5)
	SETROW2(Y6, Y7)
	SETROW2(Y8, Y9)
	SETROW2(Y10, Y11)

done:
	VZEROUPPER
	RET

// func sgemmKern2x16(kc int, a, b, c []float32, ldc, mr, nc int, accum bool)
TEXT ·sgemmKern2x16(SB), NOSPLIT, $0-105
	MOVQ a_base+8(FP), AX
	MOVQ b_base+32(FP), BX
	MOVQ c_base+56(FP), DX
	MOVQ ldc+80(FP), R8
	SHLQ $2, R8

	MOVQ DX, R9
	PREFETCHT0 (R9)
	PREFETCHT0 63(R9)
	ADDQ R8, R9
	PREFETCHT0 (R9)
	PREFETCHT0 63(R9)
	ADDQ R8, R9
	VPXOR Y4, Y4, Y4
	VPXOR Y5, Y5, Y5
	VPXOR Y6, Y6, Y6
	VPXOR Y7, Y7, Y7

	MOVQ kc+0(FP), CX
	SUBQ $4, CX
	JL   tail

loop4:
	KSTEP2_2(0, 0)
	KSTEP2_2(4, 64)
	KSTEP2_2(8, 128)
	KSTEP2_2(12, 192)
	ADDQ $16, AX
	ADDQ $256, BX
	SUBQ $4, CX
	JGE  loop4

tail:
	ADDQ $4, CX
	JZ   store

loop1:
	KSTEP2_2(0, 0)
	ADDQ $4, AX
	ADDQ $64, BX
	DECQ CX
	JNZ  loop1

store:
	// Y0, Y1: masks of the valid columns in each half of the tile.
	MOVQ nc+96(FP), CX
	MOVQ CX, R12
	CMPQ R12, $8
	JLE  lo
	MOVQ $8, R12

lo:
	SUBQ R12, CX
	LEAQ maskTab<>(SB), R13
	MOVQ $8, R14
	SUBQ R12, R14
	VMOVDQU (R13)(R14*4), Y0
	MOVQ $8, R14
	SUBQ CX, R14
	VMOVDQU (R13)(R14*4), Y1

	MOVQ DX, R9
	MOVQ mr+88(FP), R10
	MOVBLZX accum+104(FP), R11
	TESTQ R11, R11
	JZ   set
	STOREROW2(Y4, Y5)
	STOREROW2(Y6, Y7)
	JMP done

set:
	SETROW2(Y4, Y5)
	SETROW2(Y6, Y7)

done:
	VZEROUPPER
	RET

// func sgemmKern1x16(kc int, a, b, c []float32, ldc, mr, nc int, accum bool)
TEXT ·sgemmKern1x16(SB), NOSPLIT, $0-105
	MOVQ a_base+8(FP), AX
	MOVQ b_base+32(FP), BX
	MOVQ c_base+56(FP), DX
	MOVQ ldc+80(FP), R8
	SHLQ $2, R8

	MOVQ DX, R9
	PREFETCHT0 (R9)
	PREFETCHT0 63(R9)
	ADDQ R8, R9
	VPXOR Y4, Y4, Y4
	VPXOR Y5, Y5, Y5

	MOVQ kc+0(FP), CX
	SUBQ $4, CX
	JL   tail

loop4:
	KSTEP2_1(0, 0)
	KSTEP2_1(4, 64)
	KSTEP2_1(8, 128)
	KSTEP2_1(12, 192)
	ADDQ $16, AX
	ADDQ $256, BX
	SUBQ $4, CX
	JGE  loop4

tail:
	ADDQ $4, CX
	JZ   store

loop1:
	KSTEP2_1(0, 0)
	ADDQ $4, AX
	ADDQ $64, BX
	DECQ CX
	JNZ  loop1

store:
	// Y0, Y1: masks of the valid columns in each half of the tile.
	MOVQ nc+96(FP), CX
	MOVQ CX, R12
	CMPQ R12, $8
	JLE  lo
	MOVQ $8, R12

lo:
	SUBQ R12, CX
	LEAQ maskTab<>(SB), R13
	MOVQ $8, R14
	SUBQ R12, R14
	VMOVDQU (R13)(R14*4), Y0
	MOVQ $8, R14
	SUBQ CX, R14
	VMOVDQU (R13)(R14*4), Y1

	MOVQ DX, R9
	MOVQ mr+88(FP), R10
	MOVBLZX accum+104(FP), R11
	TESTQ R11, R11
	JZ   set
	STOREROW2(Y4, Y5)
	JMP done

set:
	SETROW2(Y4, Y5)

done:
	VZEROUPPER
	RET

#define LOADROW2(V) \
	VMASKMOVPS (R9), Y15, V; \
	ADDQ R8, R9; \
	DECQ R10; \
	JZ   loaded

#define PUTROW2(V) \
	VMASKMOVPS V, Y0, (DI); \
	ADDQ R11, DI; \
	DECQ R10; \
	JZ   stored

// func transposeAVX2(dst []float32, ldd int, src []float32, lds int, rows, cols int)
TEXT ·transposeAVX2(SB), NOSPLIT, $0-80
	MOVQ dst_base+0(FP), DI
	MOVQ ldd+24(FP), R11
	SHLQ $2, R11
	MOVQ src_base+32(FP), R9
	MOVQ lds+56(FP), R8
	SHLQ $2, R8
	LEAQ maskTab<>(SB), R13

	// Y15: the cols valid lanes of a source row.
	MOVQ $8, R14
	SUBQ cols+72(FP), R14
	VMOVDQU (R13)(R14*4), Y15
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3
	VPXOR Y4, Y4, Y4
	VPXOR Y5, Y5, Y5
	VPXOR Y6, Y6, Y6
	VPXOR Y7, Y7, Y7
	MOVQ rows+64(FP), R10
	LOADROW2(Y0)
	LOADROW2(Y1)
	LOADROW2(Y2)
	LOADROW2(Y3)
	LOADROW2(Y4)
	LOADROW2(Y5)
	LOADROW2(Y6)
	LOADROW2(Y7)

loaded:
	VUNPCKLPS Y1, Y0, Y8
	VUNPCKHPS Y1, Y0, Y9
	VUNPCKLPS Y3, Y2, Y10
	VUNPCKHPS Y3, Y2, Y11
	VUNPCKLPS Y5, Y4, Y12
	VUNPCKHPS Y5, Y4, Y13
	VUNPCKLPS Y7, Y6, Y14
	VUNPCKHPS Y7, Y6, Y15
	VUNPCKLPD Y10, Y8, Y0
	VUNPCKHPD Y10, Y8, Y1
	VUNPCKLPD Y11, Y9, Y2
	VUNPCKHPD Y11, Y9, Y3
	VUNPCKLPD Y14, Y12, Y4
	VUNPCKHPD Y14, Y12, Y5
	VUNPCKLPD Y15, Y13, Y6
	VUNPCKHPD Y15, Y13, Y7
	VPERM2F128 $0x20, Y4, Y0, Y8
	VPERM2F128 $0x31, Y4, Y0, Y12
	VPERM2F128 $0x20, Y5, Y1, Y9
	VPERM2F128 $0x31, Y5, Y1, Y13
	VPERM2F128 $0x20, Y6, Y2, Y10
	VPERM2F128 $0x31, Y6, Y2, Y14
	VPERM2F128 $0x20, Y7, Y3, Y11
	VPERM2F128 $0x31, Y7, Y3, Y15

	// Y0: the rows valid lanes of a destination row.
	MOVQ $8, R14
	SUBQ rows+64(FP), R14
	VMOVDQU (R13)(R14*4), Y0
	MOVQ cols+72(FP), R10
	PUTROW2(Y8)
	PUTROW2(Y9)
	PUTROW2(Y10)
	PUTROW2(Y11)
	PUTROW2(Y12)
	PUTROW2(Y13)
	PUTROW2(Y14)
	PUTROW2(Y15)

stored:
	VZEROUPPER
	RET
