//go:build !noasm

#include "textflag.h"

// The AMX-BF16 micro-kernel (gemm_amx.go, gemm_amx_amd64.go). The Go
// assembler has no AMX mnemonics, so the tile instructions are spelled out
// as bytes (VEX-encoded, map 0F38, W0, L0); each is named in the comment
// above it. Tiles: tmm0..tmm3 C (rows 0–15 × cols 0–15, 0–15 × 16–31,
// 16–31 × 0–15, 16–31 × 16–31), tmm4/tmm5 the two A tiles, tmm6/tmm7 the
// two B tiles of a 32-column block.
//
// Registers: DI cfg, SI a0, R8 a1, R9 B tile 0, R11 B tile 1, CX blocks
// left, DX the 64-byte tile row stride, R10 c.

// func amxKern32x32(cfg *byte, a0, a1, bp *byte, nkb int, c *float32)
TEXT ·amxKern32x32(SB), NOSPLIT, $0-48
	MOVQ cfg+0(FP), DI
	MOVQ a0+8(FP), SI
	MOVQ a1+16(FP), R8
	MOVQ bp+24(FP), R9
	MOVQ nkb+32(FP), CX
	MOVQ c+40(FP), R10
	LEAQ 1024(R9), R11
	MOVQ $64, DX

	// LDTILECFG (DI)
	BYTE $0xC4; BYTE $0xE2; BYTE $0x78; BYTE $0x49; BYTE $0x07
	// TILEZERO tmm0, tmm1, tmm2, tmm3
	BYTE $0xC4; BYTE $0xE2; BYTE $0x7B; BYTE $0x49; BYTE $0xC0
	BYTE $0xC4; BYTE $0xE2; BYTE $0x7B; BYTE $0x49; BYTE $0xC8
	BYTE $0xC4; BYTE $0xE2; BYTE $0x7B; BYTE $0x49; BYTE $0xD0
	BYTE $0xC4; BYTE $0xE2; BYTE $0x7B; BYTE $0x49; BYTE $0xD8

amx_loop:
	// TILELOADD tmm4, (SI)(DX*1)
	BYTE $0xC4; BYTE $0xE2; BYTE $0x7B; BYTE $0x4B; BYTE $0x24; BYTE $0x16
	// TILELOADD tmm6, (R9)(DX*1)
	BYTE $0xC4; BYTE $0xC2; BYTE $0x7B; BYTE $0x4B; BYTE $0x34; BYTE $0x11
	// TILELOADD tmm7, (R11)(DX*1)
	BYTE $0xC4; BYTE $0xC2; BYTE $0x7B; BYTE $0x4B; BYTE $0x3C; BYTE $0x13
	// TILELOADD tmm5, (R8)(DX*1)
	BYTE $0xC4; BYTE $0xC2; BYTE $0x7B; BYTE $0x4B; BYTE $0x2C; BYTE $0x10
	// TDPBF16PS tmm0, tmm4, tmm6
	BYTE $0xC4; BYTE $0xE2; BYTE $0x4A; BYTE $0x5C; BYTE $0xC4
	// TDPBF16PS tmm1, tmm4, tmm7
	BYTE $0xC4; BYTE $0xE2; BYTE $0x42; BYTE $0x5C; BYTE $0xCC
	// TDPBF16PS tmm2, tmm5, tmm6
	BYTE $0xC4; BYTE $0xE2; BYTE $0x4A; BYTE $0x5C; BYTE $0xD5
	// TDPBF16PS tmm3, tmm5, tmm7
	BYTE $0xC4; BYTE $0xE2; BYTE $0x42; BYTE $0x5C; BYTE $0xDD
	ADDQ $1024, SI
	ADDQ $1024, R8
	ADDQ $2048, R9
	ADDQ $2048, R11
	DECQ CX
	JNZ  amx_loop

	// C rows are 128 bytes apart.
	MOVQ $128, R11
	// TILESTORED (R10)(R11*1), tmm0
	BYTE $0xC4; BYTE $0x82; BYTE $0x7A; BYTE $0x4B; BYTE $0x04; BYTE $0x1A
	ADDQ $64, R10
	// TILESTORED (R10)(R11*1), tmm1
	BYTE $0xC4; BYTE $0x82; BYTE $0x7A; BYTE $0x4B; BYTE $0x0C; BYTE $0x1A
	ADDQ $1984, R10
	// TILESTORED (R10)(R11*1), tmm2
	BYTE $0xC4; BYTE $0x82; BYTE $0x7A; BYTE $0x4B; BYTE $0x14; BYTE $0x1A
	ADDQ $64, R10
	// TILESTORED (R10)(R11*1), tmm3
	BYTE $0xC4; BYTE $0x82; BYTE $0x7A; BYTE $0x4B; BYTE $0x1C; BYTE $0x1A
	// TILERELEASE
	BYTE $0xC4; BYTE $0xE2; BYTE $0x78; BYTE $0x49; BYTE $0xC0
	RET
