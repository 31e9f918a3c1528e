//go:build !noasm

#include "textflag.h"

// Fused dot kernels of the skinny product against K-quant weights
// (gemv_kquant.go, gemv_kquant_amd64.go). Each takes four rows at a time
// and keeps two 16-lane accumulators per row, summed at the end of the
// group of rows; the next group's rows are prefetched (PREFETCHT1) at the
// block being read (the hardware prefetchers do not know that the next
// group starts four rows on). The values are the decoders' (see
// kquant_amd64.s) bit for bit:
//
//   - Q4_K, Q5_K: the eight scales and mins of a block, d·sc_j and
//     dmin·m_j, are unpacked as the decoders do and stored on the stack;
//     per sub-block the table float32(d·sc_j·q) − dmin·m_j of its 16
//     (Q5_K: 32) codes is built in a register (a product and a
//     subtraction per lane, as the decoders do per value) and indexed by
//     the codes widened to dwords (VPERMPS reads an index's low four bits,
//     VPERMI2PS its low five), then multiplied with the activations.
//   - Q6_K: the 256 codes of a block are assembled from ql and qh 64 at a
//     time (the halves of qh shifted per 256-bit lane), minus 32, stored on
//     the stack in value order, then widened, converted and multiplied by
//     d·scales[g] 16 at a time, as the decoder does.

// kqiota<>: float32 0…31 (Q4_K/Q5_K table arguments).
DATA kqiota<>+0(SB)/4, $0x00000000
DATA kqiota<>+4(SB)/4, $0x3f800000
DATA kqiota<>+8(SB)/4, $0x40000000
DATA kqiota<>+12(SB)/4, $0x40400000
DATA kqiota<>+16(SB)/4, $0x40800000
DATA kqiota<>+20(SB)/4, $0x40a00000
DATA kqiota<>+24(SB)/4, $0x40c00000
DATA kqiota<>+28(SB)/4, $0x40e00000
DATA kqiota<>+32(SB)/4, $0x41000000
DATA kqiota<>+36(SB)/4, $0x41100000
DATA kqiota<>+40(SB)/4, $0x41200000
DATA kqiota<>+44(SB)/4, $0x41300000
DATA kqiota<>+48(SB)/4, $0x41400000
DATA kqiota<>+52(SB)/4, $0x41500000
DATA kqiota<>+56(SB)/4, $0x41600000
DATA kqiota<>+60(SB)/4, $0x41700000
DATA kqiota<>+64(SB)/4, $0x41800000
DATA kqiota<>+68(SB)/4, $0x41880000
DATA kqiota<>+72(SB)/4, $0x41900000
DATA kqiota<>+76(SB)/4, $0x41980000
DATA kqiota<>+80(SB)/4, $0x41a00000
DATA kqiota<>+84(SB)/4, $0x41a80000
DATA kqiota<>+88(SB)/4, $0x41b00000
DATA kqiota<>+92(SB)/4, $0x41b80000
DATA kqiota<>+96(SB)/4, $0x41c00000
DATA kqiota<>+100(SB)/4, $0x41c80000
DATA kqiota<>+104(SB)/4, $0x41d00000
DATA kqiota<>+108(SB)/4, $0x41d80000
DATA kqiota<>+112(SB)/4, $0x41e00000
DATA kqiota<>+116(SB)/4, $0x41e80000
DATA kqiota<>+120(SB)/4, $0x41f00000
DATA kqiota<>+124(SB)/4, $0x41f80000
GLOBL kqiota<>(SB), RODATA|NOPTR, $128

// kqscidx<>: VPERMPS indices spreading (d, dmin) to d×8, dmin×8.
DATA kqscidx<>+0(SB)/4, $0
DATA kqscidx<>+4(SB)/4, $0
DATA kqscidx<>+8(SB)/4, $0
DATA kqscidx<>+12(SB)/4, $0
DATA kqscidx<>+16(SB)/4, $0
DATA kqscidx<>+20(SB)/4, $0
DATA kqscidx<>+24(SB)/4, $0
DATA kqscidx<>+28(SB)/4, $0
DATA kqscidx<>+32(SB)/4, $1
DATA kqscidx<>+36(SB)/4, $1
DATA kqscidx<>+40(SB)/4, $1
DATA kqscidx<>+44(SB)/4, $1
DATA kqscidx<>+48(SB)/4, $1
DATA kqscidx<>+52(SB)/4, $1
DATA kqscidx<>+56(SB)/4, $1
DATA kqscidx<>+60(SB)/4, $1
GLOBL kqscidx<>(SB), RODATA|NOPTR, $64

// kq6sl<>, kq6sr<>: VPSLLVW/VPSRLVW word counts that bring Q6_K's qh bits
// 2c, 2c+1 to bits 4, 5 of each byte: c = 0 and 1 (left 4, 2), c = 2 and 3
// (right 0, 2), one count per 256-bit lane.
DATA kq6sl<>+0(SB)/2, $4
DATA kq6sl<>+2(SB)/2, $4
DATA kq6sl<>+4(SB)/2, $4
DATA kq6sl<>+6(SB)/2, $4
DATA kq6sl<>+8(SB)/2, $4
DATA kq6sl<>+10(SB)/2, $4
DATA kq6sl<>+12(SB)/2, $4
DATA kq6sl<>+14(SB)/2, $4
DATA kq6sl<>+16(SB)/2, $4
DATA kq6sl<>+18(SB)/2, $4
DATA kq6sl<>+20(SB)/2, $4
DATA kq6sl<>+22(SB)/2, $4
DATA kq6sl<>+24(SB)/2, $4
DATA kq6sl<>+26(SB)/2, $4
DATA kq6sl<>+28(SB)/2, $4
DATA kq6sl<>+30(SB)/2, $4
DATA kq6sl<>+32(SB)/2, $2
DATA kq6sl<>+34(SB)/2, $2
DATA kq6sl<>+36(SB)/2, $2
DATA kq6sl<>+38(SB)/2, $2
DATA kq6sl<>+40(SB)/2, $2
DATA kq6sl<>+42(SB)/2, $2
DATA kq6sl<>+44(SB)/2, $2
DATA kq6sl<>+46(SB)/2, $2
DATA kq6sl<>+48(SB)/2, $2
DATA kq6sl<>+50(SB)/2, $2
DATA kq6sl<>+52(SB)/2, $2
DATA kq6sl<>+54(SB)/2, $2
DATA kq6sl<>+56(SB)/2, $2
DATA kq6sl<>+58(SB)/2, $2
DATA kq6sl<>+60(SB)/2, $2
DATA kq6sl<>+62(SB)/2, $2
GLOBL kq6sl<>(SB), RODATA|NOPTR, $64
DATA kq6sr<>+0(SB)/2, $0
DATA kq6sr<>+2(SB)/2, $0
DATA kq6sr<>+4(SB)/2, $0
DATA kq6sr<>+6(SB)/2, $0
DATA kq6sr<>+8(SB)/2, $0
DATA kq6sr<>+10(SB)/2, $0
DATA kq6sr<>+12(SB)/2, $0
DATA kq6sr<>+14(SB)/2, $0
DATA kq6sr<>+16(SB)/2, $0
DATA kq6sr<>+18(SB)/2, $0
DATA kq6sr<>+20(SB)/2, $0
DATA kq6sr<>+22(SB)/2, $0
DATA kq6sr<>+24(SB)/2, $0
DATA kq6sr<>+26(SB)/2, $0
DATA kq6sr<>+28(SB)/2, $0
DATA kq6sr<>+30(SB)/2, $0
DATA kq6sr<>+32(SB)/2, $2
DATA kq6sr<>+34(SB)/2, $2
DATA kq6sr<>+36(SB)/2, $2
DATA kq6sr<>+38(SB)/2, $2
DATA kq6sr<>+40(SB)/2, $2
DATA kq6sr<>+42(SB)/2, $2
DATA kq6sr<>+44(SB)/2, $2
DATA kq6sr<>+46(SB)/2, $2
DATA kq6sr<>+48(SB)/2, $2
DATA kq6sr<>+50(SB)/2, $2
DATA kq6sr<>+52(SB)/2, $2
DATA kq6sr<>+54(SB)/2, $2
DATA kq6sr<>+56(SB)/2, $2
DATA kq6sr<>+58(SB)/2, $2
DATA kq6sr<>+60(SB)/2, $2
DATA kq6sr<>+62(SB)/2, $2
GLOBL kq6sr<>(SB), RODATA|NOPTR, $64

DATA kqbytes<>+0(SB)/4, $0x0f0f0f0f // low nibbles
DATA kqbytes<>+4(SB)/4, $0x30303030 // Q6_K high bits, in place
DATA kqbytes<>+8(SB)/4, $0x20202020 // Q6_K zero point 32
DATA kqbytes<>+12(SB)/4, $0x0000000f // Q5_K: an index's low nibble
GLOBL kqbytes<>(SB), RODATA|NOPTR, $16

// Q4_K, registers: R8…R11 the group's four rows at the current block,
// R12 the activations there, R13 the group's first row, R14 ldw, R15 4·ldw,
// CX blocks left, BX the rows' scales (row t's d·sc at 64t, dmin·m at
// 64t+32). Z0…Z7 the accumulators (row t in Zt, Zt+4), Z8…Z11 the 64
// activations of a pair of sub-blocks, Z12, Z13 the pair's tables, Z14…Z17
// the codes, Z30 kqscidx, Z31 0…15.
// func q4KDotAVX512(out *float32, w *byte, ldw, ng int, a *float32, nb int)
TEXT ·q4KDotAVX512(SB), NOSPLIT, $256-48
	MOVQ            w+8(FP), R13
	MOVQ            ldw+16(FP), R14
	LEAQ            (R14*4), R15
	LEAQ            sc-256(SP), BX
	VMOVUPS         kqiota<>(SB), Z31
	VMOVDQU32       kqscidx<>(SB), Z30

q4kd_group:
	MOVQ            R13, R8
	LEAQ            (R13)(R14*1), R9
	LEAQ            (R9)(R14*1), R10
	LEAQ            (R10)(R14*1), R11
	MOVQ            a+32(FP), R12
	MOVQ            nb+40(FP), CX
	VXORPS          Z0, Z0, Z0
	VXORPS          Z1, Z1, Z1
	VXORPS          Z2, Z2, Z2
	VXORPS          Z3, Z3, Z3
	VXORPS          Z4, Z4, Z4
	VXORPS          Z5, Z5, Z5
	VXORPS          Z6, Z6, Z6
	VXORPS          Z7, Z7, Z7

q4kd_block:
	PREFETCHT1      (R8)(R15*1)
	PREFETCHT1      64(R8)(R15*1)
	PREFETCHT1      128(R8)(R15*1)
	PREFETCHT1      (R9)(R15*1)
	PREFETCHT1      64(R9)(R15*1)
	PREFETCHT1      128(R9)(R15*1)
	PREFETCHT1      (R10)(R15*1)
	PREFETCHT1      64(R10)(R15*1)
	PREFETCHT1      128(R10)(R15*1)
	PREFETCHT1      (R11)(R15*1)
	PREFETCHT1      64(R11)(R15*1)
	PREFETCHT1      128(R11)(R15*1)
	MOVL            4(R8), AX
	MOVL            8(R8), DX
	MOVL            12(R8), SI
	MOVL            AX, DI
	ANDL            $0x3f3f3f3f, DI
	VMOVD           DI, X12
	MOVL            SI, DI
	ANDL            $0x0f0f0f0f, DI
	SHRL            $2, AX
	ANDL            $0x30303030, AX
	ORL             AX, DI
	VPINSRD         $1, DI, X12, X12
	MOVL            DX, DI
	ANDL            $0x3f3f3f3f, DI
	VPINSRD         $2, DI, X12, X12
	SHRL            $4, SI
	ANDL            $0x0f0f0f0f, SI
	SHRL            $2, DX
	ANDL            $0x30303030, DX
	ORL             DX, SI
	VPINSRD         $3, SI, X12, X12
	VPMOVZXBD       X12, Z12
	VCVTDQ2PS       Z12, Z12
	VMOVD           (R8), X13
	VCVTPH2PS       X13, X13
	VPERMPS         Z13, Z30, Z13
	VMULPS          Z13, Z12, Z12
	VMOVUPS         Z12, 0(BX)
	MOVL            4(R9), AX
	MOVL            8(R9), DX
	MOVL            12(R9), SI
	MOVL            AX, DI
	ANDL            $0x3f3f3f3f, DI
	VMOVD           DI, X12
	MOVL            SI, DI
	ANDL            $0x0f0f0f0f, DI
	SHRL            $2, AX
	ANDL            $0x30303030, AX
	ORL             AX, DI
	VPINSRD         $1, DI, X12, X12
	MOVL            DX, DI
	ANDL            $0x3f3f3f3f, DI
	VPINSRD         $2, DI, X12, X12
	SHRL            $4, SI
	ANDL            $0x0f0f0f0f, SI
	SHRL            $2, DX
	ANDL            $0x30303030, DX
	ORL             DX, SI
	VPINSRD         $3, SI, X12, X12
	VPMOVZXBD       X12, Z12
	VCVTDQ2PS       Z12, Z12
	VMOVD           (R9), X13
	VCVTPH2PS       X13, X13
	VPERMPS         Z13, Z30, Z13
	VMULPS          Z13, Z12, Z12
	VMOVUPS         Z12, 64(BX)
	MOVL            4(R10), AX
	MOVL            8(R10), DX
	MOVL            12(R10), SI
	MOVL            AX, DI
	ANDL            $0x3f3f3f3f, DI
	VMOVD           DI, X12
	MOVL            SI, DI
	ANDL            $0x0f0f0f0f, DI
	SHRL            $2, AX
	ANDL            $0x30303030, AX
	ORL             AX, DI
	VPINSRD         $1, DI, X12, X12
	MOVL            DX, DI
	ANDL            $0x3f3f3f3f, DI
	VPINSRD         $2, DI, X12, X12
	SHRL            $4, SI
	ANDL            $0x0f0f0f0f, SI
	SHRL            $2, DX
	ANDL            $0x30303030, DX
	ORL             DX, SI
	VPINSRD         $3, SI, X12, X12
	VPMOVZXBD       X12, Z12
	VCVTDQ2PS       Z12, Z12
	VMOVD           (R10), X13
	VCVTPH2PS       X13, X13
	VPERMPS         Z13, Z30, Z13
	VMULPS          Z13, Z12, Z12
	VMOVUPS         Z12, 128(BX)
	MOVL            4(R11), AX
	MOVL            8(R11), DX
	MOVL            12(R11), SI
	MOVL            AX, DI
	ANDL            $0x3f3f3f3f, DI
	VMOVD           DI, X12
	MOVL            SI, DI
	ANDL            $0x0f0f0f0f, DI
	SHRL            $2, AX
	ANDL            $0x30303030, AX
	ORL             AX, DI
	VPINSRD         $1, DI, X12, X12
	MOVL            DX, DI
	ANDL            $0x3f3f3f3f, DI
	VPINSRD         $2, DI, X12, X12
	SHRL            $4, SI
	ANDL            $0x0f0f0f0f, SI
	SHRL            $2, DX
	ANDL            $0x30303030, DX
	ORL             DX, SI
	VPINSRD         $3, SI, X12, X12
	VPMOVZXBD       X12, Z12
	VCVTDQ2PS       Z12, Z12
	VMOVD           (R11), X13
	VCVTPH2PS       X13, X13
	VPERMPS         Z13, Z30, Z13
	VMULPS          Z13, Z12, Z12
	VMOVUPS         Z12, 192(BX)
	// Sub-blocks 0 and 1: qs bytes 0…31.
	VMOVUPS         0(R12), Z8
	VMOVUPS         64(R12), Z9
	VMOVUPS         128(R12), Z10
	VMOVUPS         192(R12), Z11
	VMULPS.BCST     0(BX), Z31, Z12
	VSUBPS.BCST     32(BX), Z12, Z12
	VMULPS.BCST     4(BX), Z31, Z13
	VSUBPS.BCST     36(BX), Z13, Z13
	VPMOVZXBD       16(R8), Z14
	VPMOVZXBD       32(R8), Z15
	VPSRLD          $4, Z14, Z16
	VPSRLD          $4, Z15, Z17
	VPERMPS         Z12, Z14, Z14
	VPERMPS         Z12, Z15, Z15
	VPERMPS         Z13, Z16, Z16
	VPERMPS         Z13, Z17, Z17
	VFMADD231PS     Z8, Z14, Z0
	VFMADD231PS     Z9, Z15, Z4
	VFMADD231PS     Z10, Z16, Z0
	VFMADD231PS     Z11, Z17, Z4
	VMULPS.BCST     64(BX), Z31, Z12
	VSUBPS.BCST     96(BX), Z12, Z12
	VMULPS.BCST     68(BX), Z31, Z13
	VSUBPS.BCST     100(BX), Z13, Z13
	VPMOVZXBD       16(R9), Z14
	VPMOVZXBD       32(R9), Z15
	VPSRLD          $4, Z14, Z16
	VPSRLD          $4, Z15, Z17
	VPERMPS         Z12, Z14, Z14
	VPERMPS         Z12, Z15, Z15
	VPERMPS         Z13, Z16, Z16
	VPERMPS         Z13, Z17, Z17
	VFMADD231PS     Z8, Z14, Z1
	VFMADD231PS     Z9, Z15, Z5
	VFMADD231PS     Z10, Z16, Z1
	VFMADD231PS     Z11, Z17, Z5
	VMULPS.BCST     128(BX), Z31, Z12
	VSUBPS.BCST     160(BX), Z12, Z12
	VMULPS.BCST     132(BX), Z31, Z13
	VSUBPS.BCST     164(BX), Z13, Z13
	VPMOVZXBD       16(R10), Z14
	VPMOVZXBD       32(R10), Z15
	VPSRLD          $4, Z14, Z16
	VPSRLD          $4, Z15, Z17
	VPERMPS         Z12, Z14, Z14
	VPERMPS         Z12, Z15, Z15
	VPERMPS         Z13, Z16, Z16
	VPERMPS         Z13, Z17, Z17
	VFMADD231PS     Z8, Z14, Z2
	VFMADD231PS     Z9, Z15, Z6
	VFMADD231PS     Z10, Z16, Z2
	VFMADD231PS     Z11, Z17, Z6
	VMULPS.BCST     192(BX), Z31, Z12
	VSUBPS.BCST     224(BX), Z12, Z12
	VMULPS.BCST     196(BX), Z31, Z13
	VSUBPS.BCST     228(BX), Z13, Z13
	VPMOVZXBD       16(R11), Z14
	VPMOVZXBD       32(R11), Z15
	VPSRLD          $4, Z14, Z16
	VPSRLD          $4, Z15, Z17
	VPERMPS         Z12, Z14, Z14
	VPERMPS         Z12, Z15, Z15
	VPERMPS         Z13, Z16, Z16
	VPERMPS         Z13, Z17, Z17
	VFMADD231PS     Z8, Z14, Z3
	VFMADD231PS     Z9, Z15, Z7
	VFMADD231PS     Z10, Z16, Z3
	VFMADD231PS     Z11, Z17, Z7
	// Sub-blocks 2 and 3: qs bytes 32…63.
	VMOVUPS         256(R12), Z8
	VMOVUPS         320(R12), Z9
	VMOVUPS         384(R12), Z10
	VMOVUPS         448(R12), Z11
	VMULPS.BCST     8(BX), Z31, Z12
	VSUBPS.BCST     40(BX), Z12, Z12
	VMULPS.BCST     12(BX), Z31, Z13
	VSUBPS.BCST     44(BX), Z13, Z13
	VPMOVZXBD       48(R8), Z14
	VPMOVZXBD       64(R8), Z15
	VPSRLD          $4, Z14, Z16
	VPSRLD          $4, Z15, Z17
	VPERMPS         Z12, Z14, Z14
	VPERMPS         Z12, Z15, Z15
	VPERMPS         Z13, Z16, Z16
	VPERMPS         Z13, Z17, Z17
	VFMADD231PS     Z8, Z14, Z0
	VFMADD231PS     Z9, Z15, Z4
	VFMADD231PS     Z10, Z16, Z0
	VFMADD231PS     Z11, Z17, Z4
	VMULPS.BCST     72(BX), Z31, Z12
	VSUBPS.BCST     104(BX), Z12, Z12
	VMULPS.BCST     76(BX), Z31, Z13
	VSUBPS.BCST     108(BX), Z13, Z13
	VPMOVZXBD       48(R9), Z14
	VPMOVZXBD       64(R9), Z15
	VPSRLD          $4, Z14, Z16
	VPSRLD          $4, Z15, Z17
	VPERMPS         Z12, Z14, Z14
	VPERMPS         Z12, Z15, Z15
	VPERMPS         Z13, Z16, Z16
	VPERMPS         Z13, Z17, Z17
	VFMADD231PS     Z8, Z14, Z1
	VFMADD231PS     Z9, Z15, Z5
	VFMADD231PS     Z10, Z16, Z1
	VFMADD231PS     Z11, Z17, Z5
	VMULPS.BCST     136(BX), Z31, Z12
	VSUBPS.BCST     168(BX), Z12, Z12
	VMULPS.BCST     140(BX), Z31, Z13
	VSUBPS.BCST     172(BX), Z13, Z13
	VPMOVZXBD       48(R10), Z14
	VPMOVZXBD       64(R10), Z15
	VPSRLD          $4, Z14, Z16
	VPSRLD          $4, Z15, Z17
	VPERMPS         Z12, Z14, Z14
	VPERMPS         Z12, Z15, Z15
	VPERMPS         Z13, Z16, Z16
	VPERMPS         Z13, Z17, Z17
	VFMADD231PS     Z8, Z14, Z2
	VFMADD231PS     Z9, Z15, Z6
	VFMADD231PS     Z10, Z16, Z2
	VFMADD231PS     Z11, Z17, Z6
	VMULPS.BCST     200(BX), Z31, Z12
	VSUBPS.BCST     232(BX), Z12, Z12
	VMULPS.BCST     204(BX), Z31, Z13
	VSUBPS.BCST     236(BX), Z13, Z13
	VPMOVZXBD       48(R11), Z14
	VPMOVZXBD       64(R11), Z15
	VPSRLD          $4, Z14, Z16
	VPSRLD          $4, Z15, Z17
	VPERMPS         Z12, Z14, Z14
	VPERMPS         Z12, Z15, Z15
	VPERMPS         Z13, Z16, Z16
	VPERMPS         Z13, Z17, Z17
	VFMADD231PS     Z8, Z14, Z3
	VFMADD231PS     Z9, Z15, Z7
	VFMADD231PS     Z10, Z16, Z3
	VFMADD231PS     Z11, Z17, Z7
	// Sub-blocks 4 and 5: qs bytes 64…95.
	VMOVUPS         512(R12), Z8
	VMOVUPS         576(R12), Z9
	VMOVUPS         640(R12), Z10
	VMOVUPS         704(R12), Z11
	VMULPS.BCST     16(BX), Z31, Z12
	VSUBPS.BCST     48(BX), Z12, Z12
	VMULPS.BCST     20(BX), Z31, Z13
	VSUBPS.BCST     52(BX), Z13, Z13
	VPMOVZXBD       80(R8), Z14
	VPMOVZXBD       96(R8), Z15
	VPSRLD          $4, Z14, Z16
	VPSRLD          $4, Z15, Z17
	VPERMPS         Z12, Z14, Z14
	VPERMPS         Z12, Z15, Z15
	VPERMPS         Z13, Z16, Z16
	VPERMPS         Z13, Z17, Z17
	VFMADD231PS     Z8, Z14, Z0
	VFMADD231PS     Z9, Z15, Z4
	VFMADD231PS     Z10, Z16, Z0
	VFMADD231PS     Z11, Z17, Z4
	VMULPS.BCST     80(BX), Z31, Z12
	VSUBPS.BCST     112(BX), Z12, Z12
	VMULPS.BCST     84(BX), Z31, Z13
	VSUBPS.BCST     116(BX), Z13, Z13
	VPMOVZXBD       80(R9), Z14
	VPMOVZXBD       96(R9), Z15
	VPSRLD          $4, Z14, Z16
	VPSRLD          $4, Z15, Z17
	VPERMPS         Z12, Z14, Z14
	VPERMPS         Z12, Z15, Z15
	VPERMPS         Z13, Z16, Z16
	VPERMPS         Z13, Z17, Z17
	VFMADD231PS     Z8, Z14, Z1
	VFMADD231PS     Z9, Z15, Z5
	VFMADD231PS     Z10, Z16, Z1
	VFMADD231PS     Z11, Z17, Z5
	VMULPS.BCST     144(BX), Z31, Z12
	VSUBPS.BCST     176(BX), Z12, Z12
	VMULPS.BCST     148(BX), Z31, Z13
	VSUBPS.BCST     180(BX), Z13, Z13
	VPMOVZXBD       80(R10), Z14
	VPMOVZXBD       96(R10), Z15
	VPSRLD          $4, Z14, Z16
	VPSRLD          $4, Z15, Z17
	VPERMPS         Z12, Z14, Z14
	VPERMPS         Z12, Z15, Z15
	VPERMPS         Z13, Z16, Z16
	VPERMPS         Z13, Z17, Z17
	VFMADD231PS     Z8, Z14, Z2
	VFMADD231PS     Z9, Z15, Z6
	VFMADD231PS     Z10, Z16, Z2
	VFMADD231PS     Z11, Z17, Z6
	VMULPS.BCST     208(BX), Z31, Z12
	VSUBPS.BCST     240(BX), Z12, Z12
	VMULPS.BCST     212(BX), Z31, Z13
	VSUBPS.BCST     244(BX), Z13, Z13
	VPMOVZXBD       80(R11), Z14
	VPMOVZXBD       96(R11), Z15
	VPSRLD          $4, Z14, Z16
	VPSRLD          $4, Z15, Z17
	VPERMPS         Z12, Z14, Z14
	VPERMPS         Z12, Z15, Z15
	VPERMPS         Z13, Z16, Z16
	VPERMPS         Z13, Z17, Z17
	VFMADD231PS     Z8, Z14, Z3
	VFMADD231PS     Z9, Z15, Z7
	VFMADD231PS     Z10, Z16, Z3
	VFMADD231PS     Z11, Z17, Z7
	// Sub-blocks 6 and 7: qs bytes 96…127.
	VMOVUPS         768(R12), Z8
	VMOVUPS         832(R12), Z9
	VMOVUPS         896(R12), Z10
	VMOVUPS         960(R12), Z11
	VMULPS.BCST     24(BX), Z31, Z12
	VSUBPS.BCST     56(BX), Z12, Z12
	VMULPS.BCST     28(BX), Z31, Z13
	VSUBPS.BCST     60(BX), Z13, Z13
	VPMOVZXBD       112(R8), Z14
	VPMOVZXBD       128(R8), Z15
	VPSRLD          $4, Z14, Z16
	VPSRLD          $4, Z15, Z17
	VPERMPS         Z12, Z14, Z14
	VPERMPS         Z12, Z15, Z15
	VPERMPS         Z13, Z16, Z16
	VPERMPS         Z13, Z17, Z17
	VFMADD231PS     Z8, Z14, Z0
	VFMADD231PS     Z9, Z15, Z4
	VFMADD231PS     Z10, Z16, Z0
	VFMADD231PS     Z11, Z17, Z4
	VMULPS.BCST     88(BX), Z31, Z12
	VSUBPS.BCST     120(BX), Z12, Z12
	VMULPS.BCST     92(BX), Z31, Z13
	VSUBPS.BCST     124(BX), Z13, Z13
	VPMOVZXBD       112(R9), Z14
	VPMOVZXBD       128(R9), Z15
	VPSRLD          $4, Z14, Z16
	VPSRLD          $4, Z15, Z17
	VPERMPS         Z12, Z14, Z14
	VPERMPS         Z12, Z15, Z15
	VPERMPS         Z13, Z16, Z16
	VPERMPS         Z13, Z17, Z17
	VFMADD231PS     Z8, Z14, Z1
	VFMADD231PS     Z9, Z15, Z5
	VFMADD231PS     Z10, Z16, Z1
	VFMADD231PS     Z11, Z17, Z5
	VMULPS.BCST     152(BX), Z31, Z12
	VSUBPS.BCST     184(BX), Z12, Z12
	VMULPS.BCST     156(BX), Z31, Z13
	VSUBPS.BCST     188(BX), Z13, Z13
	VPMOVZXBD       112(R10), Z14
	VPMOVZXBD       128(R10), Z15
	VPSRLD          $4, Z14, Z16
	VPSRLD          $4, Z15, Z17
	VPERMPS         Z12, Z14, Z14
	VPERMPS         Z12, Z15, Z15
	VPERMPS         Z13, Z16, Z16
	VPERMPS         Z13, Z17, Z17
	VFMADD231PS     Z8, Z14, Z2
	VFMADD231PS     Z9, Z15, Z6
	VFMADD231PS     Z10, Z16, Z2
	VFMADD231PS     Z11, Z17, Z6
	VMULPS.BCST     216(BX), Z31, Z12
	VSUBPS.BCST     248(BX), Z12, Z12
	VMULPS.BCST     220(BX), Z31, Z13
	VSUBPS.BCST     252(BX), Z13, Z13
	VPMOVZXBD       112(R11), Z14
	VPMOVZXBD       128(R11), Z15
	VPSRLD          $4, Z14, Z16
	VPSRLD          $4, Z15, Z17
	VPERMPS         Z12, Z14, Z14
	VPERMPS         Z12, Z15, Z15
	VPERMPS         Z13, Z16, Z16
	VPERMPS         Z13, Z17, Z17
	VFMADD231PS     Z8, Z14, Z3
	VFMADD231PS     Z9, Z15, Z7
	VFMADD231PS     Z10, Z16, Z3
	VFMADD231PS     Z11, Z17, Z7
	ADDQ            $144, R8
	ADDQ            $144, R9
	ADDQ            $144, R10
	ADDQ            $144, R11
	ADDQ            $1024, R12
	DECQ            CX
	JNZ             q4kd_block

	// The lanes of each row, added to out.
	VADDPS          Z4, Z0, Z0
	VADDPS          Z5, Z1, Z1
	VADDPS          Z6, Z2, Z2
	VADDPS          Z7, Z3, Z3
	VEXTRACTF64X4   $1, Z0, Y8
	VADDPS          Y8, Y0, Y0
	VEXTRACTF128    $1, Y0, X8
	VADDPS          X8, X0, X0
	VEXTRACTF64X4   $1, Z1, Y8
	VADDPS          Y8, Y1, Y1
	VEXTRACTF128    $1, Y1, X8
	VADDPS          X8, X1, X1
	VEXTRACTF64X4   $1, Z2, Y8
	VADDPS          Y8, Y2, Y2
	VEXTRACTF128    $1, Y2, X8
	VADDPS          X8, X2, X2
	VEXTRACTF64X4   $1, Z3, Y8
	VADDPS          Y8, Y3, Y3
	VEXTRACTF128    $1, Y3, X8
	VADDPS          X8, X3, X3
	VHADDPS         X1, X0, X0
	VHADDPS         X3, X2, X2
	VHADDPS         X2, X0, X0
	MOVQ            out+0(FP), SI
	VADDPS          (SI), X0, X0
	VMOVUPS         X0, (SI)
	ADDQ            $16, SI
	MOVQ            SI, out+0(FP)
	ADDQ            R15, R13
	DECQ            ng+24(FP)
	JNZ             q4kd_group
	VZEROUPPER
	RET

// Q5_K, registers as Q4_K's, except: one row at a time, its qh widened to
// dwords in Z8, Z9 (bytes 0…15, 16…31), the tables of a pair of sub-blocks
// in Z10, Z11 (codes 0…15, 16…31 of the first) and Z12, Z13, its codes in
// Z14, Z15, indices in Z16…Z19, Z29 15 per dword, Z28 16…31; the
// activations are memory operands.
// func q5KDotAVX512(out *float32, w *byte, ldw, ng int, a *float32, nb int)
TEXT ·q5KDotAVX512(SB), NOSPLIT, $256-48
	MOVQ            w+8(FP), R13
	MOVQ            ldw+16(FP), R14
	LEAQ            (R14*4), R15
	LEAQ            sc-256(SP), BX
	VMOVUPS         kqiota<>(SB), Z31
	VMOVUPS         kqiota<>+64(SB), Z28
	VMOVDQU32       kqscidx<>(SB), Z30
	VPBROADCASTD    kqbytes<>+12(SB), Z29

q5kd_group:
	MOVQ            R13, R8
	LEAQ            (R13)(R14*1), R9
	LEAQ            (R9)(R14*1), R10
	LEAQ            (R10)(R14*1), R11
	MOVQ            a+32(FP), R12
	MOVQ            nb+40(FP), CX
	VXORPS          Z0, Z0, Z0
	VXORPS          Z1, Z1, Z1
	VXORPS          Z2, Z2, Z2
	VXORPS          Z3, Z3, Z3
	VXORPS          Z4, Z4, Z4
	VXORPS          Z5, Z5, Z5
	VXORPS          Z6, Z6, Z6
	VXORPS          Z7, Z7, Z7

q5kd_block:
	PREFETCHT1      (R8)(R15*1)
	PREFETCHT1      64(R8)(R15*1)
	PREFETCHT1      128(R8)(R15*1)
	PREFETCHT1      (R9)(R15*1)
	PREFETCHT1      64(R9)(R15*1)
	PREFETCHT1      128(R9)(R15*1)
	PREFETCHT1      (R10)(R15*1)
	PREFETCHT1      64(R10)(R15*1)
	PREFETCHT1      128(R10)(R15*1)
	PREFETCHT1      (R11)(R15*1)
	PREFETCHT1      64(R11)(R15*1)
	PREFETCHT1      128(R11)(R15*1)
	MOVL            4(R8), AX
	MOVL            8(R8), DX
	MOVL            12(R8), SI
	MOVL            AX, DI
	ANDL            $0x3f3f3f3f, DI
	VMOVD           DI, X20
	MOVL            SI, DI
	ANDL            $0x0f0f0f0f, DI
	SHRL            $2, AX
	ANDL            $0x30303030, AX
	ORL             AX, DI
	VPINSRD         $1, DI, X20, X20
	MOVL            DX, DI
	ANDL            $0x3f3f3f3f, DI
	VPINSRD         $2, DI, X20, X20
	SHRL            $4, SI
	ANDL            $0x0f0f0f0f, SI
	SHRL            $2, DX
	ANDL            $0x30303030, DX
	ORL             DX, SI
	VPINSRD         $3, SI, X20, X20
	VPMOVZXBD       X20, Z20
	VCVTDQ2PS       Z20, Z20
	VMOVD           (R8), X21
	VCVTPH2PS       X21, X21
	VPERMPS         Z21, Z30, Z21
	VMULPS          Z21, Z20, Z20
	VMOVUPS         Z20, 0(BX)
	MOVL            4(R9), AX
	MOVL            8(R9), DX
	MOVL            12(R9), SI
	MOVL            AX, DI
	ANDL            $0x3f3f3f3f, DI
	VMOVD           DI, X20
	MOVL            SI, DI
	ANDL            $0x0f0f0f0f, DI
	SHRL            $2, AX
	ANDL            $0x30303030, AX
	ORL             AX, DI
	VPINSRD         $1, DI, X20, X20
	MOVL            DX, DI
	ANDL            $0x3f3f3f3f, DI
	VPINSRD         $2, DI, X20, X20
	SHRL            $4, SI
	ANDL            $0x0f0f0f0f, SI
	SHRL            $2, DX
	ANDL            $0x30303030, DX
	ORL             DX, SI
	VPINSRD         $3, SI, X20, X20
	VPMOVZXBD       X20, Z20
	VCVTDQ2PS       Z20, Z20
	VMOVD           (R9), X21
	VCVTPH2PS       X21, X21
	VPERMPS         Z21, Z30, Z21
	VMULPS          Z21, Z20, Z20
	VMOVUPS         Z20, 64(BX)
	MOVL            4(R10), AX
	MOVL            8(R10), DX
	MOVL            12(R10), SI
	MOVL            AX, DI
	ANDL            $0x3f3f3f3f, DI
	VMOVD           DI, X20
	MOVL            SI, DI
	ANDL            $0x0f0f0f0f, DI
	SHRL            $2, AX
	ANDL            $0x30303030, AX
	ORL             AX, DI
	VPINSRD         $1, DI, X20, X20
	MOVL            DX, DI
	ANDL            $0x3f3f3f3f, DI
	VPINSRD         $2, DI, X20, X20
	SHRL            $4, SI
	ANDL            $0x0f0f0f0f, SI
	SHRL            $2, DX
	ANDL            $0x30303030, DX
	ORL             DX, SI
	VPINSRD         $3, SI, X20, X20
	VPMOVZXBD       X20, Z20
	VCVTDQ2PS       Z20, Z20
	VMOVD           (R10), X21
	VCVTPH2PS       X21, X21
	VPERMPS         Z21, Z30, Z21
	VMULPS          Z21, Z20, Z20
	VMOVUPS         Z20, 128(BX)
	MOVL            4(R11), AX
	MOVL            8(R11), DX
	MOVL            12(R11), SI
	MOVL            AX, DI
	ANDL            $0x3f3f3f3f, DI
	VMOVD           DI, X20
	MOVL            SI, DI
	ANDL            $0x0f0f0f0f, DI
	SHRL            $2, AX
	ANDL            $0x30303030, AX
	ORL             AX, DI
	VPINSRD         $1, DI, X20, X20
	MOVL            DX, DI
	ANDL            $0x3f3f3f3f, DI
	VPINSRD         $2, DI, X20, X20
	SHRL            $4, SI
	ANDL            $0x0f0f0f0f, SI
	SHRL            $2, DX
	ANDL            $0x30303030, DX
	ORL             DX, SI
	VPINSRD         $3, SI, X20, X20
	VPMOVZXBD       X20, Z20
	VCVTDQ2PS       Z20, Z20
	VMOVD           (R11), X21
	VCVTPH2PS       X21, X21
	VPERMPS         Z21, Z30, Z21
	VMULPS          Z21, Z20, Z20
	VMOVUPS         Z20, 192(BX)
	// Row 0.
	VPMOVZXBD       16(R8), Z8
	VPMOVZXBD       32(R8), Z9
	VMULPS.BCST     0(BX), Z31, Z10
	VSUBPS.BCST     32(BX), Z10, Z10
	VMULPS.BCST     0(BX), Z28, Z11
	VSUBPS.BCST     32(BX), Z11, Z11
	VMULPS.BCST     4(BX), Z31, Z12
	VSUBPS.BCST     36(BX), Z12, Z12
	VMULPS.BCST     4(BX), Z28, Z13
	VSUBPS.BCST     36(BX), Z13, Z13
	VPMOVZXBD       48(R8), Z14
	VPMOVZXBD       64(R8), Z15
	VPSLLD          $4, Z8, Z16
	VPSLLD          $4, Z9, Z17
	VPSLLD          $3, Z8, Z18
	VPSLLD          $3, Z9, Z19
	VPSRLD          $4, Z14, Z22
	VPSRLD          $4, Z15, Z23
	VPTERNLOGD      $0xd8, Z29, Z14, Z16
	VPTERNLOGD      $0xd8, Z29, Z15, Z17
	VPTERNLOGD      $0xd8, Z29, Z22, Z18
	VPTERNLOGD      $0xd8, Z29, Z23, Z19
	VPERMI2PS       Z11, Z10, Z16
	VPERMI2PS       Z11, Z10, Z17
	VPERMI2PS       Z13, Z12, Z18
	VPERMI2PS       Z13, Z12, Z19
	VFMADD231PS     0(R12), Z16, Z0
	VFMADD231PS     64(R12), Z17, Z4
	VFMADD231PS     128(R12), Z18, Z0
	VFMADD231PS     192(R12), Z19, Z4
	VMULPS.BCST     8(BX), Z31, Z10
	VSUBPS.BCST     40(BX), Z10, Z10
	VMULPS.BCST     8(BX), Z28, Z11
	VSUBPS.BCST     40(BX), Z11, Z11
	VMULPS.BCST     12(BX), Z31, Z12
	VSUBPS.BCST     44(BX), Z12, Z12
	VMULPS.BCST     12(BX), Z28, Z13
	VSUBPS.BCST     44(BX), Z13, Z13
	VPMOVZXBD       80(R8), Z14
	VPMOVZXBD       96(R8), Z15
	VPSLLD          $2, Z8, Z16
	VPSLLD          $2, Z9, Z17
	VPSLLD          $1, Z8, Z18
	VPSLLD          $1, Z9, Z19
	VPSRLD          $4, Z14, Z22
	VPSRLD          $4, Z15, Z23
	VPTERNLOGD      $0xd8, Z29, Z14, Z16
	VPTERNLOGD      $0xd8, Z29, Z15, Z17
	VPTERNLOGD      $0xd8, Z29, Z22, Z18
	VPTERNLOGD      $0xd8, Z29, Z23, Z19
	VPERMI2PS       Z11, Z10, Z16
	VPERMI2PS       Z11, Z10, Z17
	VPERMI2PS       Z13, Z12, Z18
	VPERMI2PS       Z13, Z12, Z19
	VFMADD231PS     256(R12), Z16, Z0
	VFMADD231PS     320(R12), Z17, Z4
	VFMADD231PS     384(R12), Z18, Z0
	VFMADD231PS     448(R12), Z19, Z4
	VMULPS.BCST     16(BX), Z31, Z10
	VSUBPS.BCST     48(BX), Z10, Z10
	VMULPS.BCST     16(BX), Z28, Z11
	VSUBPS.BCST     48(BX), Z11, Z11
	VMULPS.BCST     20(BX), Z31, Z12
	VSUBPS.BCST     52(BX), Z12, Z12
	VMULPS.BCST     20(BX), Z28, Z13
	VSUBPS.BCST     52(BX), Z13, Z13
	VPMOVZXBD       112(R8), Z14
	VPMOVZXBD       128(R8), Z15
	VMOVDQA32       Z8, Z16
	VMOVDQA32       Z9, Z17
	VPSRLD          $1, Z8, Z18
	VPSRLD          $1, Z9, Z19
	VPSRLD          $4, Z14, Z22
	VPSRLD          $4, Z15, Z23
	VPTERNLOGD      $0xd8, Z29, Z14, Z16
	VPTERNLOGD      $0xd8, Z29, Z15, Z17
	VPTERNLOGD      $0xd8, Z29, Z22, Z18
	VPTERNLOGD      $0xd8, Z29, Z23, Z19
	VPERMI2PS       Z11, Z10, Z16
	VPERMI2PS       Z11, Z10, Z17
	VPERMI2PS       Z13, Z12, Z18
	VPERMI2PS       Z13, Z12, Z19
	VFMADD231PS     512(R12), Z16, Z0
	VFMADD231PS     576(R12), Z17, Z4
	VFMADD231PS     640(R12), Z18, Z0
	VFMADD231PS     704(R12), Z19, Z4
	VMULPS.BCST     24(BX), Z31, Z10
	VSUBPS.BCST     56(BX), Z10, Z10
	VMULPS.BCST     24(BX), Z28, Z11
	VSUBPS.BCST     56(BX), Z11, Z11
	VMULPS.BCST     28(BX), Z31, Z12
	VSUBPS.BCST     60(BX), Z12, Z12
	VMULPS.BCST     28(BX), Z28, Z13
	VSUBPS.BCST     60(BX), Z13, Z13
	VPMOVZXBD       144(R8), Z14
	VPMOVZXBD       160(R8), Z15
	VPSRLD          $2, Z8, Z16
	VPSRLD          $2, Z9, Z17
	VPSRLD          $3, Z8, Z18
	VPSRLD          $3, Z9, Z19
	VPSRLD          $4, Z14, Z22
	VPSRLD          $4, Z15, Z23
	VPTERNLOGD      $0xd8, Z29, Z14, Z16
	VPTERNLOGD      $0xd8, Z29, Z15, Z17
	VPTERNLOGD      $0xd8, Z29, Z22, Z18
	VPTERNLOGD      $0xd8, Z29, Z23, Z19
	VPERMI2PS       Z11, Z10, Z16
	VPERMI2PS       Z11, Z10, Z17
	VPERMI2PS       Z13, Z12, Z18
	VPERMI2PS       Z13, Z12, Z19
	VFMADD231PS     768(R12), Z16, Z0
	VFMADD231PS     832(R12), Z17, Z4
	VFMADD231PS     896(R12), Z18, Z0
	VFMADD231PS     960(R12), Z19, Z4
	// Row 1.
	VPMOVZXBD       16(R9), Z8
	VPMOVZXBD       32(R9), Z9
	VMULPS.BCST     64(BX), Z31, Z10
	VSUBPS.BCST     96(BX), Z10, Z10
	VMULPS.BCST     64(BX), Z28, Z11
	VSUBPS.BCST     96(BX), Z11, Z11
	VMULPS.BCST     68(BX), Z31, Z12
	VSUBPS.BCST     100(BX), Z12, Z12
	VMULPS.BCST     68(BX), Z28, Z13
	VSUBPS.BCST     100(BX), Z13, Z13
	VPMOVZXBD       48(R9), Z14
	VPMOVZXBD       64(R9), Z15
	VPSLLD          $4, Z8, Z16
	VPSLLD          $4, Z9, Z17
	VPSLLD          $3, Z8, Z18
	VPSLLD          $3, Z9, Z19
	VPSRLD          $4, Z14, Z22
	VPSRLD          $4, Z15, Z23
	VPTERNLOGD      $0xd8, Z29, Z14, Z16
	VPTERNLOGD      $0xd8, Z29, Z15, Z17
	VPTERNLOGD      $0xd8, Z29, Z22, Z18
	VPTERNLOGD      $0xd8, Z29, Z23, Z19
	VPERMI2PS       Z11, Z10, Z16
	VPERMI2PS       Z11, Z10, Z17
	VPERMI2PS       Z13, Z12, Z18
	VPERMI2PS       Z13, Z12, Z19
	VFMADD231PS     0(R12), Z16, Z1
	VFMADD231PS     64(R12), Z17, Z5
	VFMADD231PS     128(R12), Z18, Z1
	VFMADD231PS     192(R12), Z19, Z5
	VMULPS.BCST     72(BX), Z31, Z10
	VSUBPS.BCST     104(BX), Z10, Z10
	VMULPS.BCST     72(BX), Z28, Z11
	VSUBPS.BCST     104(BX), Z11, Z11
	VMULPS.BCST     76(BX), Z31, Z12
	VSUBPS.BCST     108(BX), Z12, Z12
	VMULPS.BCST     76(BX), Z28, Z13
	VSUBPS.BCST     108(BX), Z13, Z13
	VPMOVZXBD       80(R9), Z14
	VPMOVZXBD       96(R9), Z15
	VPSLLD          $2, Z8, Z16
	VPSLLD          $2, Z9, Z17
	VPSLLD          $1, Z8, Z18
	VPSLLD          $1, Z9, Z19
	VPSRLD          $4, Z14, Z22
	VPSRLD          $4, Z15, Z23
	VPTERNLOGD      $0xd8, Z29, Z14, Z16
	VPTERNLOGD      $0xd8, Z29, Z15, Z17
	VPTERNLOGD      $0xd8, Z29, Z22, Z18
	VPTERNLOGD      $0xd8, Z29, Z23, Z19
	VPERMI2PS       Z11, Z10, Z16
	VPERMI2PS       Z11, Z10, Z17
	VPERMI2PS       Z13, Z12, Z18
	VPERMI2PS       Z13, Z12, Z19
	VFMADD231PS     256(R12), Z16, Z1
	VFMADD231PS     320(R12), Z17, Z5
	VFMADD231PS     384(R12), Z18, Z1
	VFMADD231PS     448(R12), Z19, Z5
	VMULPS.BCST     80(BX), Z31, Z10
	VSUBPS.BCST     112(BX), Z10, Z10
	VMULPS.BCST     80(BX), Z28, Z11
	VSUBPS.BCST     112(BX), Z11, Z11
	VMULPS.BCST     84(BX), Z31, Z12
	VSUBPS.BCST     116(BX), Z12, Z12
	VMULPS.BCST     84(BX), Z28, Z13
	VSUBPS.BCST     116(BX), Z13, Z13
	VPMOVZXBD       112(R9), Z14
	VPMOVZXBD       128(R9), Z15
	VMOVDQA32       Z8, Z16
	VMOVDQA32       Z9, Z17
	VPSRLD          $1, Z8, Z18
	VPSRLD          $1, Z9, Z19
	VPSRLD          $4, Z14, Z22
	VPSRLD          $4, Z15, Z23
	VPTERNLOGD      $0xd8, Z29, Z14, Z16
	VPTERNLOGD      $0xd8, Z29, Z15, Z17
	VPTERNLOGD      $0xd8, Z29, Z22, Z18
	VPTERNLOGD      $0xd8, Z29, Z23, Z19
	VPERMI2PS       Z11, Z10, Z16
	VPERMI2PS       Z11, Z10, Z17
	VPERMI2PS       Z13, Z12, Z18
	VPERMI2PS       Z13, Z12, Z19
	VFMADD231PS     512(R12), Z16, Z1
	VFMADD231PS     576(R12), Z17, Z5
	VFMADD231PS     640(R12), Z18, Z1
	VFMADD231PS     704(R12), Z19, Z5
	VMULPS.BCST     88(BX), Z31, Z10
	VSUBPS.BCST     120(BX), Z10, Z10
	VMULPS.BCST     88(BX), Z28, Z11
	VSUBPS.BCST     120(BX), Z11, Z11
	VMULPS.BCST     92(BX), Z31, Z12
	VSUBPS.BCST     124(BX), Z12, Z12
	VMULPS.BCST     92(BX), Z28, Z13
	VSUBPS.BCST     124(BX), Z13, Z13
	VPMOVZXBD       144(R9), Z14
	VPMOVZXBD       160(R9), Z15
	VPSRLD          $2, Z8, Z16
	VPSRLD          $2, Z9, Z17
	VPSRLD          $3, Z8, Z18
	VPSRLD          $3, Z9, Z19
	VPSRLD          $4, Z14, Z22
	VPSRLD          $4, Z15, Z23
	VPTERNLOGD      $0xd8, Z29, Z14, Z16
	VPTERNLOGD      $0xd8, Z29, Z15, Z17
	VPTERNLOGD      $0xd8, Z29, Z22, Z18
	VPTERNLOGD      $0xd8, Z29, Z23, Z19
	VPERMI2PS       Z11, Z10, Z16
	VPERMI2PS       Z11, Z10, Z17
	VPERMI2PS       Z13, Z12, Z18
	VPERMI2PS       Z13, Z12, Z19
	VFMADD231PS     768(R12), Z16, Z1
	VFMADD231PS     832(R12), Z17, Z5
	VFMADD231PS     896(R12), Z18, Z1
	VFMADD231PS     960(R12), Z19, Z5
	// Row 2.
	VPMOVZXBD       16(R10), Z8
	VPMOVZXBD       32(R10), Z9
	VMULPS.BCST     128(BX), Z31, Z10
	VSUBPS.BCST     160(BX), Z10, Z10
	VMULPS.BCST     128(BX), Z28, Z11
	VSUBPS.BCST     160(BX), Z11, Z11
	VMULPS.BCST     132(BX), Z31, Z12
	VSUBPS.BCST     164(BX), Z12, Z12
	VMULPS.BCST     132(BX), Z28, Z13
	VSUBPS.BCST     164(BX), Z13, Z13
	VPMOVZXBD       48(R10), Z14
	VPMOVZXBD       64(R10), Z15
	VPSLLD          $4, Z8, Z16
	VPSLLD          $4, Z9, Z17
	VPSLLD          $3, Z8, Z18
	VPSLLD          $3, Z9, Z19
	VPSRLD          $4, Z14, Z22
	VPSRLD          $4, Z15, Z23
	VPTERNLOGD      $0xd8, Z29, Z14, Z16
	VPTERNLOGD      $0xd8, Z29, Z15, Z17
	VPTERNLOGD      $0xd8, Z29, Z22, Z18
	VPTERNLOGD      $0xd8, Z29, Z23, Z19
	VPERMI2PS       Z11, Z10, Z16
	VPERMI2PS       Z11, Z10, Z17
	VPERMI2PS       Z13, Z12, Z18
	VPERMI2PS       Z13, Z12, Z19
	VFMADD231PS     0(R12), Z16, Z2
	VFMADD231PS     64(R12), Z17, Z6
	VFMADD231PS     128(R12), Z18, Z2
	VFMADD231PS     192(R12), Z19, Z6
	VMULPS.BCST     136(BX), Z31, Z10
	VSUBPS.BCST     168(BX), Z10, Z10
	VMULPS.BCST     136(BX), Z28, Z11
	VSUBPS.BCST     168(BX), Z11, Z11
	VMULPS.BCST     140(BX), Z31, Z12
	VSUBPS.BCST     172(BX), Z12, Z12
	VMULPS.BCST     140(BX), Z28, Z13
	VSUBPS.BCST     172(BX), Z13, Z13
	VPMOVZXBD       80(R10), Z14
	VPMOVZXBD       96(R10), Z15
	VPSLLD          $2, Z8, Z16
	VPSLLD          $2, Z9, Z17
	VPSLLD          $1, Z8, Z18
	VPSLLD          $1, Z9, Z19
	VPSRLD          $4, Z14, Z22
	VPSRLD          $4, Z15, Z23
	VPTERNLOGD      $0xd8, Z29, Z14, Z16
	VPTERNLOGD      $0xd8, Z29, Z15, Z17
	VPTERNLOGD      $0xd8, Z29, Z22, Z18
	VPTERNLOGD      $0xd8, Z29, Z23, Z19
	VPERMI2PS       Z11, Z10, Z16
	VPERMI2PS       Z11, Z10, Z17
	VPERMI2PS       Z13, Z12, Z18
	VPERMI2PS       Z13, Z12, Z19
	VFMADD231PS     256(R12), Z16, Z2
	VFMADD231PS     320(R12), Z17, Z6
	VFMADD231PS     384(R12), Z18, Z2
	VFMADD231PS     448(R12), Z19, Z6
	VMULPS.BCST     144(BX), Z31, Z10
	VSUBPS.BCST     176(BX), Z10, Z10
	VMULPS.BCST     144(BX), Z28, Z11
	VSUBPS.BCST     176(BX), Z11, Z11
	VMULPS.BCST     148(BX), Z31, Z12
	VSUBPS.BCST     180(BX), Z12, Z12
	VMULPS.BCST     148(BX), Z28, Z13
	VSUBPS.BCST     180(BX), Z13, Z13
	VPMOVZXBD       112(R10), Z14
	VPMOVZXBD       128(R10), Z15
	VMOVDQA32       Z8, Z16
	VMOVDQA32       Z9, Z17
	VPSRLD          $1, Z8, Z18
	VPSRLD          $1, Z9, Z19
	VPSRLD          $4, Z14, Z22
	VPSRLD          $4, Z15, Z23
	VPTERNLOGD      $0xd8, Z29, Z14, Z16
	VPTERNLOGD      $0xd8, Z29, Z15, Z17
	VPTERNLOGD      $0xd8, Z29, Z22, Z18
	VPTERNLOGD      $0xd8, Z29, Z23, Z19
	VPERMI2PS       Z11, Z10, Z16
	VPERMI2PS       Z11, Z10, Z17
	VPERMI2PS       Z13, Z12, Z18
	VPERMI2PS       Z13, Z12, Z19
	VFMADD231PS     512(R12), Z16, Z2
	VFMADD231PS     576(R12), Z17, Z6
	VFMADD231PS     640(R12), Z18, Z2
	VFMADD231PS     704(R12), Z19, Z6
	VMULPS.BCST     152(BX), Z31, Z10
	VSUBPS.BCST     184(BX), Z10, Z10
	VMULPS.BCST     152(BX), Z28, Z11
	VSUBPS.BCST     184(BX), Z11, Z11
	VMULPS.BCST     156(BX), Z31, Z12
	VSUBPS.BCST     188(BX), Z12, Z12
	VMULPS.BCST     156(BX), Z28, Z13
	VSUBPS.BCST     188(BX), Z13, Z13
	VPMOVZXBD       144(R10), Z14
	VPMOVZXBD       160(R10), Z15
	VPSRLD          $2, Z8, Z16
	VPSRLD          $2, Z9, Z17
	VPSRLD          $3, Z8, Z18
	VPSRLD          $3, Z9, Z19
	VPSRLD          $4, Z14, Z22
	VPSRLD          $4, Z15, Z23
	VPTERNLOGD      $0xd8, Z29, Z14, Z16
	VPTERNLOGD      $0xd8, Z29, Z15, Z17
	VPTERNLOGD      $0xd8, Z29, Z22, Z18
	VPTERNLOGD      $0xd8, Z29, Z23, Z19
	VPERMI2PS       Z11, Z10, Z16
	VPERMI2PS       Z11, Z10, Z17
	VPERMI2PS       Z13, Z12, Z18
	VPERMI2PS       Z13, Z12, Z19
	VFMADD231PS     768(R12), Z16, Z2
	VFMADD231PS     832(R12), Z17, Z6
	VFMADD231PS     896(R12), Z18, Z2
	VFMADD231PS     960(R12), Z19, Z6
	// Row 3.
	VPMOVZXBD       16(R11), Z8
	VPMOVZXBD       32(R11), Z9
	VMULPS.BCST     192(BX), Z31, Z10
	VSUBPS.BCST     224(BX), Z10, Z10
	VMULPS.BCST     192(BX), Z28, Z11
	VSUBPS.BCST     224(BX), Z11, Z11
	VMULPS.BCST     196(BX), Z31, Z12
	VSUBPS.BCST     228(BX), Z12, Z12
	VMULPS.BCST     196(BX), Z28, Z13
	VSUBPS.BCST     228(BX), Z13, Z13
	VPMOVZXBD       48(R11), Z14
	VPMOVZXBD       64(R11), Z15
	VPSLLD          $4, Z8, Z16
	VPSLLD          $4, Z9, Z17
	VPSLLD          $3, Z8, Z18
	VPSLLD          $3, Z9, Z19
	VPSRLD          $4, Z14, Z22
	VPSRLD          $4, Z15, Z23
	VPTERNLOGD      $0xd8, Z29, Z14, Z16
	VPTERNLOGD      $0xd8, Z29, Z15, Z17
	VPTERNLOGD      $0xd8, Z29, Z22, Z18
	VPTERNLOGD      $0xd8, Z29, Z23, Z19
	VPERMI2PS       Z11, Z10, Z16
	VPERMI2PS       Z11, Z10, Z17
	VPERMI2PS       Z13, Z12, Z18
	VPERMI2PS       Z13, Z12, Z19
	VFMADD231PS     0(R12), Z16, Z3
	VFMADD231PS     64(R12), Z17, Z7
	VFMADD231PS     128(R12), Z18, Z3
	VFMADD231PS     192(R12), Z19, Z7
	VMULPS.BCST     200(BX), Z31, Z10
	VSUBPS.BCST     232(BX), Z10, Z10
	VMULPS.BCST     200(BX), Z28, Z11
	VSUBPS.BCST     232(BX), Z11, Z11
	VMULPS.BCST     204(BX), Z31, Z12
	VSUBPS.BCST     236(BX), Z12, Z12
	VMULPS.BCST     204(BX), Z28, Z13
	VSUBPS.BCST     236(BX), Z13, Z13
	VPMOVZXBD       80(R11), Z14
	VPMOVZXBD       96(R11), Z15
	VPSLLD          $2, Z8, Z16
	VPSLLD          $2, Z9, Z17
	VPSLLD          $1, Z8, Z18
	VPSLLD          $1, Z9, Z19
	VPSRLD          $4, Z14, Z22
	VPSRLD          $4, Z15, Z23
	VPTERNLOGD      $0xd8, Z29, Z14, Z16
	VPTERNLOGD      $0xd8, Z29, Z15, Z17
	VPTERNLOGD      $0xd8, Z29, Z22, Z18
	VPTERNLOGD      $0xd8, Z29, Z23, Z19
	VPERMI2PS       Z11, Z10, Z16
	VPERMI2PS       Z11, Z10, Z17
	VPERMI2PS       Z13, Z12, Z18
	VPERMI2PS       Z13, Z12, Z19
	VFMADD231PS     256(R12), Z16, Z3
	VFMADD231PS     320(R12), Z17, Z7
	VFMADD231PS     384(R12), Z18, Z3
	VFMADD231PS     448(R12), Z19, Z7
	VMULPS.BCST     208(BX), Z31, Z10
	VSUBPS.BCST     240(BX), Z10, Z10
	VMULPS.BCST     208(BX), Z28, Z11
	VSUBPS.BCST     240(BX), Z11, Z11
	VMULPS.BCST     212(BX), Z31, Z12
	VSUBPS.BCST     244(BX), Z12, Z12
	VMULPS.BCST     212(BX), Z28, Z13
	VSUBPS.BCST     244(BX), Z13, Z13
	VPMOVZXBD       112(R11), Z14
	VPMOVZXBD       128(R11), Z15
	VMOVDQA32       Z8, Z16
	VMOVDQA32       Z9, Z17
	VPSRLD          $1, Z8, Z18
	VPSRLD          $1, Z9, Z19
	VPSRLD          $4, Z14, Z22
	VPSRLD          $4, Z15, Z23
	VPTERNLOGD      $0xd8, Z29, Z14, Z16
	VPTERNLOGD      $0xd8, Z29, Z15, Z17
	VPTERNLOGD      $0xd8, Z29, Z22, Z18
	VPTERNLOGD      $0xd8, Z29, Z23, Z19
	VPERMI2PS       Z11, Z10, Z16
	VPERMI2PS       Z11, Z10, Z17
	VPERMI2PS       Z13, Z12, Z18
	VPERMI2PS       Z13, Z12, Z19
	VFMADD231PS     512(R12), Z16, Z3
	VFMADD231PS     576(R12), Z17, Z7
	VFMADD231PS     640(R12), Z18, Z3
	VFMADD231PS     704(R12), Z19, Z7
	VMULPS.BCST     216(BX), Z31, Z10
	VSUBPS.BCST     248(BX), Z10, Z10
	VMULPS.BCST     216(BX), Z28, Z11
	VSUBPS.BCST     248(BX), Z11, Z11
	VMULPS.BCST     220(BX), Z31, Z12
	VSUBPS.BCST     252(BX), Z12, Z12
	VMULPS.BCST     220(BX), Z28, Z13
	VSUBPS.BCST     252(BX), Z13, Z13
	VPMOVZXBD       144(R11), Z14
	VPMOVZXBD       160(R11), Z15
	VPSRLD          $2, Z8, Z16
	VPSRLD          $2, Z9, Z17
	VPSRLD          $3, Z8, Z18
	VPSRLD          $3, Z9, Z19
	VPSRLD          $4, Z14, Z22
	VPSRLD          $4, Z15, Z23
	VPTERNLOGD      $0xd8, Z29, Z14, Z16
	VPTERNLOGD      $0xd8, Z29, Z15, Z17
	VPTERNLOGD      $0xd8, Z29, Z22, Z18
	VPTERNLOGD      $0xd8, Z29, Z23, Z19
	VPERMI2PS       Z11, Z10, Z16
	VPERMI2PS       Z11, Z10, Z17
	VPERMI2PS       Z13, Z12, Z18
	VPERMI2PS       Z13, Z12, Z19
	VFMADD231PS     768(R12), Z16, Z3
	VFMADD231PS     832(R12), Z17, Z7
	VFMADD231PS     896(R12), Z18, Z3
	VFMADD231PS     960(R12), Z19, Z7
	ADDQ            $176, R8
	ADDQ            $176, R9
	ADDQ            $176, R10
	ADDQ            $176, R11
	ADDQ            $1024, R12
	DECQ            CX
	JNZ             q5kd_block

	// The lanes of each row, added to out.
	VADDPS          Z4, Z0, Z0
	VADDPS          Z5, Z1, Z1
	VADDPS          Z6, Z2, Z2
	VADDPS          Z7, Z3, Z3
	VEXTRACTF64X4   $1, Z0, Y8
	VADDPS          Y8, Y0, Y0
	VEXTRACTF128    $1, Y0, X8
	VADDPS          X8, X0, X0
	VEXTRACTF64X4   $1, Z1, Y8
	VADDPS          Y8, Y1, Y1
	VEXTRACTF128    $1, Y1, X8
	VADDPS          X8, X1, X1
	VEXTRACTF64X4   $1, Z2, Y8
	VADDPS          Y8, Y2, Y2
	VEXTRACTF128    $1, Y2, X8
	VADDPS          X8, X2, X2
	VEXTRACTF64X4   $1, Z3, Y8
	VADDPS          Y8, Y3, Y3
	VEXTRACTF128    $1, Y3, X8
	VADDPS          X8, X3, X3
	VHADDPS         X1, X0, X0
	VHADDPS         X3, X2, X2
	VHADDPS         X2, X0, X0
	MOVQ            out+0(FP), SI
	VADDPS          (SI), X0, X0
	VMOVUPS         X0, (SI)
	ADDQ            $16, SI
	MOVQ            SI, out+0(FP)
	ADDQ            R15, R13
	DECQ            ng+24(FP)
	JNZ             q5kd_group
	VZEROUPPER
	RET

// Q6_K, registers as Q4_K's, except: the block's 256 activations in
// Z16…Z31, one row at a time, BX (64-byte aligned) its codes minus 32 in
// value order at 0…255 and d·scales[g] at 256…319, Z8…Z12 temporaries,
// Z13 0x0f, Z14 0x30, Z15 0x20 per byte.
// func q6KDotAVX512(out *float32, w *byte, ldw, ng int, a *float32, nb int)
TEXT ·q6KDotAVX512(SB), NOSPLIT, $384-48
	MOVQ            w+8(FP), R13
	MOVQ            ldw+16(FP), R14
	LEAQ            (R14*4), R15
	LEAQ            buf-384(SP), BX
	ADDQ            $63, BX
	ANDQ            $~63, BX
	VPBROADCASTD    kqbytes<>+0(SB), Z13
	VPBROADCASTD    kqbytes<>+4(SB), Z14
	VPBROADCASTD    kqbytes<>+8(SB), Z15

q6kd_group:
	MOVQ            R13, R8
	LEAQ            (R13)(R14*1), R9
	LEAQ            (R9)(R14*1), R10
	LEAQ            (R10)(R14*1), R11
	MOVQ            a+32(FP), R12
	MOVQ            nb+40(FP), CX
	VXORPS          Z0, Z0, Z0
	VXORPS          Z1, Z1, Z1
	VXORPS          Z2, Z2, Z2
	VXORPS          Z3, Z3, Z3
	VXORPS          Z4, Z4, Z4
	VXORPS          Z5, Z5, Z5
	VXORPS          Z6, Z6, Z6
	VXORPS          Z7, Z7, Z7

q6kd_block:
	PREFETCHT1      (R8)(R15*1)
	PREFETCHT1      64(R8)(R15*1)
	PREFETCHT1      128(R8)(R15*1)
	PREFETCHT1      192(R8)(R15*1)
	PREFETCHT1      (R9)(R15*1)
	PREFETCHT1      64(R9)(R15*1)
	PREFETCHT1      128(R9)(R15*1)
	PREFETCHT1      192(R9)(R15*1)
	PREFETCHT1      (R10)(R15*1)
	PREFETCHT1      64(R10)(R15*1)
	PREFETCHT1      128(R10)(R15*1)
	PREFETCHT1      192(R10)(R15*1)
	PREFETCHT1      (R11)(R15*1)
	PREFETCHT1      64(R11)(R15*1)
	PREFETCHT1      128(R11)(R15*1)
	PREFETCHT1      192(R11)(R15*1)
	VMOVUPS         0(R12), Z16
	VMOVUPS         64(R12), Z17
	VMOVUPS         128(R12), Z18
	VMOVUPS         192(R12), Z19
	VMOVUPS         256(R12), Z20
	VMOVUPS         320(R12), Z21
	VMOVUPS         384(R12), Z22
	VMOVUPS         448(R12), Z23
	VMOVUPS         512(R12), Z24
	VMOVUPS         576(R12), Z25
	VMOVUPS         640(R12), Z26
	VMOVUPS         704(R12), Z27
	VMOVUPS         768(R12), Z28
	VMOVUPS         832(R12), Z29
	VMOVUPS         896(R12), Z30
	VMOVUPS         960(R12), Z31
	// Row 0.
	VPMOVSXBD       192(R8), Z8
	VCVTDQ2PS       Z8, Z8
	MOVWLZX         208(R8), AX
	VMOVD           AX, X9
	VCVTPH2PS       X9, X9
	VBROADCASTSS    X9, Z9
	VMULPS          Z9, Z8, Z8
	VMOVUPS         Z8, 256(BX)
	VMOVDQU64       0(R8), Z8
	VBROADCASTI64X4 128(R8), Z9
	VPSLLVW         kq6sl<>(SB), Z9, Z10
	VPSRLVW         kq6sr<>(SB), Z9, Z11
	VPSRLW          $4, Z8, Z9
	VPANDD          Z14, Z10, Z10
	VPANDD          Z14, Z11, Z11
	VPTERNLOGD      $0xf8, Z13, Z8, Z10
	VPTERNLOGD      $0xf8, Z13, Z9, Z11
	VPSUBB          Z15, Z10, Z10
	VPSUBB          Z15, Z11, Z11
	VMOVDQU64       Z10, 0(BX)
	VMOVDQU64       Z11, 64(BX)
	VMOVDQU64       64(R8), Z8
	VBROADCASTI64X4 160(R8), Z9
	VPSLLVW         kq6sl<>(SB), Z9, Z10
	VPSRLVW         kq6sr<>(SB), Z9, Z11
	VPSRLW          $4, Z8, Z9
	VPANDD          Z14, Z10, Z10
	VPANDD          Z14, Z11, Z11
	VPTERNLOGD      $0xf8, Z13, Z8, Z10
	VPTERNLOGD      $0xf8, Z13, Z9, Z11
	VPSUBB          Z15, Z10, Z10
	VPSUBB          Z15, Z11, Z11
	VMOVDQU64       Z10, 128(BX)
	VMOVDQU64       Z11, 192(BX)
	VPMOVSXBD       0(BX), Z8
	VCVTDQ2PS       Z8, Z8
	VMULPS.BCST     256(BX), Z8, Z8
	VFMADD231PS     Z16, Z8, Z0
	VPMOVSXBD       16(BX), Z9
	VCVTDQ2PS       Z9, Z9
	VMULPS.BCST     260(BX), Z9, Z9
	VFMADD231PS     Z17, Z9, Z4
	VPMOVSXBD       32(BX), Z10
	VCVTDQ2PS       Z10, Z10
	VMULPS.BCST     264(BX), Z10, Z10
	VFMADD231PS     Z18, Z10, Z0
	VPMOVSXBD       48(BX), Z11
	VCVTDQ2PS       Z11, Z11
	VMULPS.BCST     268(BX), Z11, Z11
	VFMADD231PS     Z19, Z11, Z4
	VPMOVSXBD       64(BX), Z8
	VCVTDQ2PS       Z8, Z8
	VMULPS.BCST     272(BX), Z8, Z8
	VFMADD231PS     Z20, Z8, Z0
	VPMOVSXBD       80(BX), Z9
	VCVTDQ2PS       Z9, Z9
	VMULPS.BCST     276(BX), Z9, Z9
	VFMADD231PS     Z21, Z9, Z4
	VPMOVSXBD       96(BX), Z10
	VCVTDQ2PS       Z10, Z10
	VMULPS.BCST     280(BX), Z10, Z10
	VFMADD231PS     Z22, Z10, Z0
	VPMOVSXBD       112(BX), Z11
	VCVTDQ2PS       Z11, Z11
	VMULPS.BCST     284(BX), Z11, Z11
	VFMADD231PS     Z23, Z11, Z4
	VPMOVSXBD       128(BX), Z8
	VCVTDQ2PS       Z8, Z8
	VMULPS.BCST     288(BX), Z8, Z8
	VFMADD231PS     Z24, Z8, Z0
	VPMOVSXBD       144(BX), Z9
	VCVTDQ2PS       Z9, Z9
	VMULPS.BCST     292(BX), Z9, Z9
	VFMADD231PS     Z25, Z9, Z4
	VPMOVSXBD       160(BX), Z10
	VCVTDQ2PS       Z10, Z10
	VMULPS.BCST     296(BX), Z10, Z10
	VFMADD231PS     Z26, Z10, Z0
	VPMOVSXBD       176(BX), Z11
	VCVTDQ2PS       Z11, Z11
	VMULPS.BCST     300(BX), Z11, Z11
	VFMADD231PS     Z27, Z11, Z4
	VPMOVSXBD       192(BX), Z8
	VCVTDQ2PS       Z8, Z8
	VMULPS.BCST     304(BX), Z8, Z8
	VFMADD231PS     Z28, Z8, Z0
	VPMOVSXBD       208(BX), Z9
	VCVTDQ2PS       Z9, Z9
	VMULPS.BCST     308(BX), Z9, Z9
	VFMADD231PS     Z29, Z9, Z4
	VPMOVSXBD       224(BX), Z10
	VCVTDQ2PS       Z10, Z10
	VMULPS.BCST     312(BX), Z10, Z10
	VFMADD231PS     Z30, Z10, Z0
	VPMOVSXBD       240(BX), Z11
	VCVTDQ2PS       Z11, Z11
	VMULPS.BCST     316(BX), Z11, Z11
	VFMADD231PS     Z31, Z11, Z4
	// Row 1.
	VPMOVSXBD       192(R9), Z8
	VCVTDQ2PS       Z8, Z8
	MOVWLZX         208(R9), AX
	VMOVD           AX, X9
	VCVTPH2PS       X9, X9
	VBROADCASTSS    X9, Z9
	VMULPS          Z9, Z8, Z8
	VMOVUPS         Z8, 256(BX)
	VMOVDQU64       0(R9), Z8
	VBROADCASTI64X4 128(R9), Z9
	VPSLLVW         kq6sl<>(SB), Z9, Z10
	VPSRLVW         kq6sr<>(SB), Z9, Z11
	VPSRLW          $4, Z8, Z9
	VPANDD          Z14, Z10, Z10
	VPANDD          Z14, Z11, Z11
	VPTERNLOGD      $0xf8, Z13, Z8, Z10
	VPTERNLOGD      $0xf8, Z13, Z9, Z11
	VPSUBB          Z15, Z10, Z10
	VPSUBB          Z15, Z11, Z11
	VMOVDQU64       Z10, 0(BX)
	VMOVDQU64       Z11, 64(BX)
	VMOVDQU64       64(R9), Z8
	VBROADCASTI64X4 160(R9), Z9
	VPSLLVW         kq6sl<>(SB), Z9, Z10
	VPSRLVW         kq6sr<>(SB), Z9, Z11
	VPSRLW          $4, Z8, Z9
	VPANDD          Z14, Z10, Z10
	VPANDD          Z14, Z11, Z11
	VPTERNLOGD      $0xf8, Z13, Z8, Z10
	VPTERNLOGD      $0xf8, Z13, Z9, Z11
	VPSUBB          Z15, Z10, Z10
	VPSUBB          Z15, Z11, Z11
	VMOVDQU64       Z10, 128(BX)
	VMOVDQU64       Z11, 192(BX)
	VPMOVSXBD       0(BX), Z8
	VCVTDQ2PS       Z8, Z8
	VMULPS.BCST     256(BX), Z8, Z8
	VFMADD231PS     Z16, Z8, Z1
	VPMOVSXBD       16(BX), Z9
	VCVTDQ2PS       Z9, Z9
	VMULPS.BCST     260(BX), Z9, Z9
	VFMADD231PS     Z17, Z9, Z5
	VPMOVSXBD       32(BX), Z10
	VCVTDQ2PS       Z10, Z10
	VMULPS.BCST     264(BX), Z10, Z10
	VFMADD231PS     Z18, Z10, Z1
	VPMOVSXBD       48(BX), Z11
	VCVTDQ2PS       Z11, Z11
	VMULPS.BCST     268(BX), Z11, Z11
	VFMADD231PS     Z19, Z11, Z5
	VPMOVSXBD       64(BX), Z8
	VCVTDQ2PS       Z8, Z8
	VMULPS.BCST     272(BX), Z8, Z8
	VFMADD231PS     Z20, Z8, Z1
	VPMOVSXBD       80(BX), Z9
	VCVTDQ2PS       Z9, Z9
	VMULPS.BCST     276(BX), Z9, Z9
	VFMADD231PS     Z21, Z9, Z5
	VPMOVSXBD       96(BX), Z10
	VCVTDQ2PS       Z10, Z10
	VMULPS.BCST     280(BX), Z10, Z10
	VFMADD231PS     Z22, Z10, Z1
	VPMOVSXBD       112(BX), Z11
	VCVTDQ2PS       Z11, Z11
	VMULPS.BCST     284(BX), Z11, Z11
	VFMADD231PS     Z23, Z11, Z5
	VPMOVSXBD       128(BX), Z8
	VCVTDQ2PS       Z8, Z8
	VMULPS.BCST     288(BX), Z8, Z8
	VFMADD231PS     Z24, Z8, Z1
	VPMOVSXBD       144(BX), Z9
	VCVTDQ2PS       Z9, Z9
	VMULPS.BCST     292(BX), Z9, Z9
	VFMADD231PS     Z25, Z9, Z5
	VPMOVSXBD       160(BX), Z10
	VCVTDQ2PS       Z10, Z10
	VMULPS.BCST     296(BX), Z10, Z10
	VFMADD231PS     Z26, Z10, Z1
	VPMOVSXBD       176(BX), Z11
	VCVTDQ2PS       Z11, Z11
	VMULPS.BCST     300(BX), Z11, Z11
	VFMADD231PS     Z27, Z11, Z5
	VPMOVSXBD       192(BX), Z8
	VCVTDQ2PS       Z8, Z8
	VMULPS.BCST     304(BX), Z8, Z8
	VFMADD231PS     Z28, Z8, Z1
	VPMOVSXBD       208(BX), Z9
	VCVTDQ2PS       Z9, Z9
	VMULPS.BCST     308(BX), Z9, Z9
	VFMADD231PS     Z29, Z9, Z5
	VPMOVSXBD       224(BX), Z10
	VCVTDQ2PS       Z10, Z10
	VMULPS.BCST     312(BX), Z10, Z10
	VFMADD231PS     Z30, Z10, Z1
	VPMOVSXBD       240(BX), Z11
	VCVTDQ2PS       Z11, Z11
	VMULPS.BCST     316(BX), Z11, Z11
	VFMADD231PS     Z31, Z11, Z5
	// Row 2.
	VPMOVSXBD       192(R10), Z8
	VCVTDQ2PS       Z8, Z8
	MOVWLZX         208(R10), AX
	VMOVD           AX, X9
	VCVTPH2PS       X9, X9
	VBROADCASTSS    X9, Z9
	VMULPS          Z9, Z8, Z8
	VMOVUPS         Z8, 256(BX)
	VMOVDQU64       0(R10), Z8
	VBROADCASTI64X4 128(R10), Z9
	VPSLLVW         kq6sl<>(SB), Z9, Z10
	VPSRLVW         kq6sr<>(SB), Z9, Z11
	VPSRLW          $4, Z8, Z9
	VPANDD          Z14, Z10, Z10
	VPANDD          Z14, Z11, Z11
	VPTERNLOGD      $0xf8, Z13, Z8, Z10
	VPTERNLOGD      $0xf8, Z13, Z9, Z11
	VPSUBB          Z15, Z10, Z10
	VPSUBB          Z15, Z11, Z11
	VMOVDQU64       Z10, 0(BX)
	VMOVDQU64       Z11, 64(BX)
	VMOVDQU64       64(R10), Z8
	VBROADCASTI64X4 160(R10), Z9
	VPSLLVW         kq6sl<>(SB), Z9, Z10
	VPSRLVW         kq6sr<>(SB), Z9, Z11
	VPSRLW          $4, Z8, Z9
	VPANDD          Z14, Z10, Z10
	VPANDD          Z14, Z11, Z11
	VPTERNLOGD      $0xf8, Z13, Z8, Z10
	VPTERNLOGD      $0xf8, Z13, Z9, Z11
	VPSUBB          Z15, Z10, Z10
	VPSUBB          Z15, Z11, Z11
	VMOVDQU64       Z10, 128(BX)
	VMOVDQU64       Z11, 192(BX)
	VPMOVSXBD       0(BX), Z8
	VCVTDQ2PS       Z8, Z8
	VMULPS.BCST     256(BX), Z8, Z8
	VFMADD231PS     Z16, Z8, Z2
	VPMOVSXBD       16(BX), Z9
	VCVTDQ2PS       Z9, Z9
	VMULPS.BCST     260(BX), Z9, Z9
	VFMADD231PS     Z17, Z9, Z6
	VPMOVSXBD       32(BX), Z10
	VCVTDQ2PS       Z10, Z10
	VMULPS.BCST     264(BX), Z10, Z10
	VFMADD231PS     Z18, Z10, Z2
	VPMOVSXBD       48(BX), Z11
	VCVTDQ2PS       Z11, Z11
	VMULPS.BCST     268(BX), Z11, Z11
	VFMADD231PS     Z19, Z11, Z6
	VPMOVSXBD       64(BX), Z8
	VCVTDQ2PS       Z8, Z8
	VMULPS.BCST     272(BX), Z8, Z8
	VFMADD231PS     Z20, Z8, Z2
	VPMOVSXBD       80(BX), Z9
	VCVTDQ2PS       Z9, Z9
	VMULPS.BCST     276(BX), Z9, Z9
	VFMADD231PS     Z21, Z9, Z6
	VPMOVSXBD       96(BX), Z10
	VCVTDQ2PS       Z10, Z10
	VMULPS.BCST     280(BX), Z10, Z10
	VFMADD231PS     Z22, Z10, Z2
	VPMOVSXBD       112(BX), Z11
	VCVTDQ2PS       Z11, Z11
	VMULPS.BCST     284(BX), Z11, Z11
	VFMADD231PS     Z23, Z11, Z6
	VPMOVSXBD       128(BX), Z8
	VCVTDQ2PS       Z8, Z8
	VMULPS.BCST     288(BX), Z8, Z8
	VFMADD231PS     Z24, Z8, Z2
	VPMOVSXBD       144(BX), Z9
	VCVTDQ2PS       Z9, Z9
	VMULPS.BCST     292(BX), Z9, Z9
	VFMADD231PS     Z25, Z9, Z6
	VPMOVSXBD       160(BX), Z10
	VCVTDQ2PS       Z10, Z10
	VMULPS.BCST     296(BX), Z10, Z10
	VFMADD231PS     Z26, Z10, Z2
	VPMOVSXBD       176(BX), Z11
	VCVTDQ2PS       Z11, Z11
	VMULPS.BCST     300(BX), Z11, Z11
	VFMADD231PS     Z27, Z11, Z6
	VPMOVSXBD       192(BX), Z8
	VCVTDQ2PS       Z8, Z8
	VMULPS.BCST     304(BX), Z8, Z8
	VFMADD231PS     Z28, Z8, Z2
	VPMOVSXBD       208(BX), Z9
	VCVTDQ2PS       Z9, Z9
	VMULPS.BCST     308(BX), Z9, Z9
	VFMADD231PS     Z29, Z9, Z6
	VPMOVSXBD       224(BX), Z10
	VCVTDQ2PS       Z10, Z10
	VMULPS.BCST     312(BX), Z10, Z10
	VFMADD231PS     Z30, Z10, Z2
	VPMOVSXBD       240(BX), Z11
	VCVTDQ2PS       Z11, Z11
	VMULPS.BCST     316(BX), Z11, Z11
	VFMADD231PS     Z31, Z11, Z6
	// Row 3.
	VPMOVSXBD       192(R11), Z8
	VCVTDQ2PS       Z8, Z8
	MOVWLZX         208(R11), AX
	VMOVD           AX, X9
	VCVTPH2PS       X9, X9
	VBROADCASTSS    X9, Z9
	VMULPS          Z9, Z8, Z8
	VMOVUPS         Z8, 256(BX)
	VMOVDQU64       0(R11), Z8
	VBROADCASTI64X4 128(R11), Z9
	VPSLLVW         kq6sl<>(SB), Z9, Z10
	VPSRLVW         kq6sr<>(SB), Z9, Z11
	VPSRLW          $4, Z8, Z9
	VPANDD          Z14, Z10, Z10
	VPANDD          Z14, Z11, Z11
	VPTERNLOGD      $0xf8, Z13, Z8, Z10
	VPTERNLOGD      $0xf8, Z13, Z9, Z11
	VPSUBB          Z15, Z10, Z10
	VPSUBB          Z15, Z11, Z11
	VMOVDQU64       Z10, 0(BX)
	VMOVDQU64       Z11, 64(BX)
	VMOVDQU64       64(R11), Z8
	VBROADCASTI64X4 160(R11), Z9
	VPSLLVW         kq6sl<>(SB), Z9, Z10
	VPSRLVW         kq6sr<>(SB), Z9, Z11
	VPSRLW          $4, Z8, Z9
	VPANDD          Z14, Z10, Z10
	VPANDD          Z14, Z11, Z11
	VPTERNLOGD      $0xf8, Z13, Z8, Z10
	VPTERNLOGD      $0xf8, Z13, Z9, Z11
	VPSUBB          Z15, Z10, Z10
	VPSUBB          Z15, Z11, Z11
	VMOVDQU64       Z10, 128(BX)
	VMOVDQU64       Z11, 192(BX)
	VPMOVSXBD       0(BX), Z8
	VCVTDQ2PS       Z8, Z8
	VMULPS.BCST     256(BX), Z8, Z8
	VFMADD231PS     Z16, Z8, Z3
	VPMOVSXBD       16(BX), Z9
	VCVTDQ2PS       Z9, Z9
	VMULPS.BCST     260(BX), Z9, Z9
	VFMADD231PS     Z17, Z9, Z7
	VPMOVSXBD       32(BX), Z10
	VCVTDQ2PS       Z10, Z10
	VMULPS.BCST     264(BX), Z10, Z10
	VFMADD231PS     Z18, Z10, Z3
	VPMOVSXBD       48(BX), Z11
	VCVTDQ2PS       Z11, Z11
	VMULPS.BCST     268(BX), Z11, Z11
	VFMADD231PS     Z19, Z11, Z7
	VPMOVSXBD       64(BX), Z8
	VCVTDQ2PS       Z8, Z8
	VMULPS.BCST     272(BX), Z8, Z8
	VFMADD231PS     Z20, Z8, Z3
	VPMOVSXBD       80(BX), Z9
	VCVTDQ2PS       Z9, Z9
	VMULPS.BCST     276(BX), Z9, Z9
	VFMADD231PS     Z21, Z9, Z7
	VPMOVSXBD       96(BX), Z10
	VCVTDQ2PS       Z10, Z10
	VMULPS.BCST     280(BX), Z10, Z10
	VFMADD231PS     Z22, Z10, Z3
	VPMOVSXBD       112(BX), Z11
	VCVTDQ2PS       Z11, Z11
	VMULPS.BCST     284(BX), Z11, Z11
	VFMADD231PS     Z23, Z11, Z7
	VPMOVSXBD       128(BX), Z8
	VCVTDQ2PS       Z8, Z8
	VMULPS.BCST     288(BX), Z8, Z8
	VFMADD231PS     Z24, Z8, Z3
	VPMOVSXBD       144(BX), Z9
	VCVTDQ2PS       Z9, Z9
	VMULPS.BCST     292(BX), Z9, Z9
	VFMADD231PS     Z25, Z9, Z7
	VPMOVSXBD       160(BX), Z10
	VCVTDQ2PS       Z10, Z10
	VMULPS.BCST     296(BX), Z10, Z10
	VFMADD231PS     Z26, Z10, Z3
	VPMOVSXBD       176(BX), Z11
	VCVTDQ2PS       Z11, Z11
	VMULPS.BCST     300(BX), Z11, Z11
	VFMADD231PS     Z27, Z11, Z7
	VPMOVSXBD       192(BX), Z8
	VCVTDQ2PS       Z8, Z8
	VMULPS.BCST     304(BX), Z8, Z8
	VFMADD231PS     Z28, Z8, Z3
	VPMOVSXBD       208(BX), Z9
	VCVTDQ2PS       Z9, Z9
	VMULPS.BCST     308(BX), Z9, Z9
	VFMADD231PS     Z29, Z9, Z7
	VPMOVSXBD       224(BX), Z10
	VCVTDQ2PS       Z10, Z10
	VMULPS.BCST     312(BX), Z10, Z10
	VFMADD231PS     Z30, Z10, Z3
	VPMOVSXBD       240(BX), Z11
	VCVTDQ2PS       Z11, Z11
	VMULPS.BCST     316(BX), Z11, Z11
	VFMADD231PS     Z31, Z11, Z7
	ADDQ            $210, R8
	ADDQ            $210, R9
	ADDQ            $210, R10
	ADDQ            $210, R11
	ADDQ            $1024, R12
	DECQ            CX
	JNZ             q6kd_block

	// The lanes of each row, added to out.
	VADDPS          Z4, Z0, Z0
	VADDPS          Z5, Z1, Z1
	VADDPS          Z6, Z2, Z2
	VADDPS          Z7, Z3, Z3
	VEXTRACTF64X4   $1, Z0, Y8
	VADDPS          Y8, Y0, Y0
	VEXTRACTF128    $1, Y0, X8
	VADDPS          X8, X0, X0
	VEXTRACTF64X4   $1, Z1, Y8
	VADDPS          Y8, Y1, Y1
	VEXTRACTF128    $1, Y1, X8
	VADDPS          X8, X1, X1
	VEXTRACTF64X4   $1, Z2, Y8
	VADDPS          Y8, Y2, Y2
	VEXTRACTF128    $1, Y2, X8
	VADDPS          X8, X2, X2
	VEXTRACTF64X4   $1, Z3, Y8
	VADDPS          Y8, Y3, Y3
	VEXTRACTF128    $1, Y3, X8
	VADDPS          X8, X3, X3
	VHADDPS         X1, X0, X0
	VHADDPS         X3, X2, X2
	VHADDPS         X2, X0, X0
	MOVQ            out+0(FP), SI
	VADDPS          (SI), X0, X0
	VMOVUPS         X0, (SI)
	ADDQ            $16, SI
	MOVQ            SI, out+0(FP)
	ADDQ            R15, R13
	DECQ            ng+24(FP)
	JNZ             q6kd_group
	VZEROUPPER
	RET
