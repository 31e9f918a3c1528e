//go:build !noasm

#include "textflag.h"

// Bulk f16/bf16 ⇄ f32 conversions (convert.go). The AVX-512 kernels take
// any n and finish with one masked vector; the AVX2 kernels need n to be a
// multiple of 8 (f32ToBF16AVX2: 16) and leave the rest to Go.

// Constants of the bfloat16 rounding: lsb mask, rounding bias, |x| mask,
// +Inf bits, quiet bit of a bf16 NaN.
DATA bf16c<>+0(SB)/4, $1
DATA bf16c<>+4(SB)/4, $0x7fff
DATA bf16c<>+8(SB)/4, $0x7fffffff
DATA bf16c<>+12(SB)/4, $0x7f800000
DATA bf16c<>+16(SB)/4, $0x40
GLOBL bf16c<>(SB), RODATA|NOPTR, $20

// tailMask sets K1 to the low CX bits (CX < 16). Clobbers AX.
#define TAILMASK \
	MOVL $1, AX \
	SHLL CX, AX \
	DECL AX     \
	KMOVW AX, K1

// func f16ToF32AVX512(dst *float32, src *uint16, n int)
TEXT ·f16ToF32AVX512(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX

h2s512_64:
	CMPQ      CX, $64
	JB        h2s512_16
	VCVTPH2PS (SI), Z0
	VCVTPH2PS 32(SI), Z1
	VCVTPH2PS 64(SI), Z2
	VCVTPH2PS 96(SI), Z3
	VMOVUPS   Z0, (DI)
	VMOVUPS   Z1, 64(DI)
	VMOVUPS   Z2, 128(DI)
	VMOVUPS   Z3, 192(DI)
	ADDQ      $128, SI
	ADDQ      $256, DI
	SUBQ      $64, CX
	JMP       h2s512_64

h2s512_16:
	CMPQ      CX, $16
	JB        h2s512_tail
	VCVTPH2PS (SI), Z0
	VMOVUPS   Z0, (DI)
	ADDQ      $32, SI
	ADDQ      $64, DI
	SUBQ      $16, CX
	JMP       h2s512_16

h2s512_tail:
	TESTQ       CX, CX
	JZ          h2s512_done
	TAILMASK
	VMOVDQU16.Z (SI), K1, Y0
	VCVTPH2PS   Y0, Z0
	VMOVUPS     Z0, K1, (DI)

h2s512_done:
	VZEROUPPER
	RET

// func f16ToF32AVX2(dst *float32, src *uint16, n int)
TEXT ·f16ToF32AVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX

h2s256_32:
	CMPQ      CX, $32
	JB        h2s256_8
	VCVTPH2PS (SI), Y0
	VCVTPH2PS 16(SI), Y1
	VCVTPH2PS 32(SI), Y2
	VCVTPH2PS 48(SI), Y3
	VMOVUPS   Y0, (DI)
	VMOVUPS   Y1, 32(DI)
	VMOVUPS   Y2, 64(DI)
	VMOVUPS   Y3, 96(DI)
	ADDQ      $64, SI
	ADDQ      $128, DI
	SUBQ      $32, CX
	JMP       h2s256_32

h2s256_8:
	CMPQ      CX, $8
	JB        h2s256_done
	VCVTPH2PS (SI), Y0
	VMOVUPS   Y0, (DI)
	ADDQ      $16, SI
	ADDQ      $32, DI
	SUBQ      $8, CX
	JMP       h2s256_8

h2s256_done:
	VZEROUPPER
	RET

// func f32ToF16AVX512(dst *uint16, src *float32, n int)
TEXT ·f32ToF16AVX512(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX

s2h512_64:
	CMPQ      CX, $64
	JB        s2h512_16
	VMOVUPS   (SI), Z0
	VMOVUPS   64(SI), Z1
	VMOVUPS   128(SI), Z2
	VMOVUPS   192(SI), Z3
	VCVTPS2PH $0, Z0, (DI)
	VCVTPS2PH $0, Z1, 32(DI)
	VCVTPS2PH $0, Z2, 64(DI)
	VCVTPS2PH $0, Z3, 96(DI)
	ADDQ      $256, SI
	ADDQ      $128, DI
	SUBQ      $64, CX
	JMP       s2h512_64

s2h512_16:
	CMPQ      CX, $16
	JB        s2h512_tail
	VMOVUPS   (SI), Z0
	VCVTPS2PH $0, Z0, (DI)
	ADDQ      $64, SI
	ADDQ      $32, DI
	SUBQ      $16, CX
	JMP       s2h512_16

s2h512_tail:
	TESTQ     CX, CX
	JZ        s2h512_done
	TAILMASK
	VMOVUPS.Z (SI), K1, Z0
	VCVTPS2PH $0, Z0, Y0
	VMOVDQU16 Y0, K1, (DI)

s2h512_done:
	VZEROUPPER
	RET

// func f32ToF16AVX2(dst *uint16, src *float32, n int)
TEXT ·f32ToF16AVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX

s2h256_32:
	CMPQ      CX, $32
	JB        s2h256_8
	VMOVUPS   (SI), Y0
	VMOVUPS   32(SI), Y1
	VMOVUPS   64(SI), Y2
	VMOVUPS   96(SI), Y3
	VCVTPS2PH $0, Y0, (DI)
	VCVTPS2PH $0, Y1, 16(DI)
	VCVTPS2PH $0, Y2, 32(DI)
	VCVTPS2PH $0, Y3, 48(DI)
	ADDQ      $128, SI
	ADDQ      $64, DI
	SUBQ      $32, CX
	JMP       s2h256_32

s2h256_8:
	CMPQ      CX, $8
	JB        s2h256_done
	VMOVUPS   (SI), Y0
	VCVTPS2PH $0, Y0, (DI)
	ADDQ      $32, SI
	ADDQ      $16, DI
	SUBQ      $8, CX
	JMP       s2h256_8

s2h256_done:
	VZEROUPPER
	RET

// func bf16ToF32AVX512(dst *float32, src *uint16, n int)
TEXT ·bf16ToF32AVX512(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX

b2s512_32:
	CMPQ      CX, $32
	JB        b2s512_16
	VPMOVZXWD (SI), Z0
	VPMOVZXWD 32(SI), Z1
	VPSLLD    $16, Z0, Z0
	VPSLLD    $16, Z1, Z1
	VMOVDQU32 Z0, (DI)
	VMOVDQU32 Z1, 64(DI)
	ADDQ      $64, SI
	ADDQ      $128, DI
	SUBQ      $32, CX
	JMP       b2s512_32

b2s512_16:
	CMPQ      CX, $16
	JB        b2s512_tail
	VPMOVZXWD (SI), Z0
	VPSLLD    $16, Z0, Z0
	VMOVDQU32 Z0, (DI)
	ADDQ      $32, SI
	ADDQ      $64, DI
	SUBQ      $16, CX

b2s512_tail:
	TESTQ       CX, CX
	JZ          b2s512_done
	TAILMASK
	VMOVDQU16.Z (SI), K1, Y0
	VPMOVZXWD   Y0, Z0
	VPSLLD      $16, Z0, Z0
	VMOVDQU32   Z0, K1, (DI)

b2s512_done:
	VZEROUPPER
	RET

// func bf16ToF32AVX2(dst *float32, src *uint16, n int)
TEXT ·bf16ToF32AVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX

b2s256_16:
	CMPQ      CX, $16
	JB        b2s256_8
	VPMOVZXWD (SI), Y0
	VPMOVZXWD 16(SI), Y1
	VPSLLD    $16, Y0, Y0
	VPSLLD    $16, Y1, Y1
	VMOVDQU   Y0, (DI)
	VMOVDQU   Y1, 32(DI)
	ADDQ      $32, SI
	ADDQ      $64, DI
	SUBQ      $16, CX
	JMP       b2s256_16

b2s256_8:
	CMPQ      CX, $8
	JB        b2s256_done
	VPMOVZXWD (SI), Y0
	VPSLLD    $16, Y0, Y0
	VMOVDQU   Y0, (DI)

b2s256_done:
	VZEROUPPER
	RET

// BF16ROUND512 rounds the float32 bits in Z0 to bfloat16 in the low half
// of each dword of Z1 (constants in Z10..Z14; clobbers Z2, Z3, K2).
#define BF16ROUND512 \
	VPSRLD   $16, Z0, Z1       \
	VPANDD   Z10, Z1, Z1       \
	VPADDD   Z11, Z1, Z1       \
	VPADDD   Z0, Z1, Z1        \
	VPSRLD   $16, Z1, Z1       \
	VPANDD   Z12, Z0, Z2       \
	VPCMPGTD Z13, Z2, K2       \
	VPSRLD   $16, Z0, Z3       \
	VPORD    Z14, Z3, K2, Z1

// func f32ToBF16AVX512(dst *uint16, src *float32, n int)
TEXT ·f32ToBF16AVX512(SB), NOSPLIT, $0-24
	MOVQ         dst+0(FP), DI
	MOVQ         src+8(FP), SI
	MOVQ         n+16(FP), CX
	VPBROADCASTD bf16c<>+0(SB), Z10
	VPBROADCASTD bf16c<>+4(SB), Z11
	VPBROADCASTD bf16c<>+8(SB), Z12
	VPBROADCASTD bf16c<>+12(SB), Z13
	VPBROADCASTD bf16c<>+16(SB), Z14

s2b512_16:
	CMPQ      CX, $16
	JB        s2b512_tail
	VMOVDQU32 (SI), Z0
	BF16ROUND512
	VPMOVDW   Z1, (DI)
	ADDQ      $64, SI
	ADDQ      $32, DI
	SUBQ      $16, CX
	JMP       s2b512_16

s2b512_tail:
	TESTQ       CX, CX
	JZ          s2b512_done
	TAILMASK
	VMOVDQU32.Z (SI), K1, Z0
	BF16ROUND512
	VPMOVDW     Z1, K1, (DI)

s2b512_done:
	VZEROUPPER
	RET

// BF16ROUND256(in, out, t1, t2) is BF16ROUND512 on one ymm register.
#define BF16ROUND256(in, out, t1, t2) \
	VPSRLD    $16, in, out    \
	VPAND     Y10, out, out   \
	VPADDD    Y11, out, out   \
	VPADDD    in, out, out    \
	VPSRLD    $16, out, out   \
	VPAND     Y12, in, t1     \
	VPCMPGTD  Y13, t1, t1     \
	VPSRLD    $16, in, t2     \
	VPOR      Y14, t2, t2     \
	VPBLENDVB t1, t2, out, out

// func f32ToBF16AVX2(dst *uint16, src *float32, n int)
TEXT ·f32ToBF16AVX2(SB), NOSPLIT, $0-24
	MOVQ         dst+0(FP), DI
	MOVQ         src+8(FP), SI
	MOVQ         n+16(FP), CX
	VPBROADCASTD bf16c<>+0(SB), Y10
	VPBROADCASTD bf16c<>+4(SB), Y11
	VPBROADCASTD bf16c<>+8(SB), Y12
	VPBROADCASTD bf16c<>+12(SB), Y13
	VPBROADCASTD bf16c<>+16(SB), Y14

s2b256_16:
	CMPQ      CX, $16
	JB        s2b256_done
	VMOVDQU   (SI), Y0
	VMOVDQU   32(SI), Y4
	BF16ROUND256(Y0, Y1, Y2, Y3)
	BF16ROUND256(Y4, Y5, Y6, Y7)
	VPACKUSDW Y5, Y1, Y1
	VPERMQ    $0xd8, Y1, Y1
	VMOVDQU   Y1, (DI)
	ADDQ      $64, SI
	ADDQ      $32, DI
	SUBQ      $16, CX
	JMP       s2b256_16

s2b256_done:
	VZEROUPPER
	RET
