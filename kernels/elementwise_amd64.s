//go:build amd64 && !noasm

#include "textflag.h"

// Element-wise kernels for AVX-512 (F only: no BW/DQ instructions) and
// AVX2+FMA. Go declarations and the dispatch are in elementwise_amd64.go,
// the reference loops in elementwise_ref.go. Every kernel takes its length
// from its first slice and ends with a masked tail (opmask K1 for AVX-512,
// VMASKMOVPS under Y13 for AVX2), so no element is touched twice and no
// byte outside the slices is read or written.
//
// exp(x) for x ≤ 0 (or NaN), shared by softmax and sigmoid:
//   n = round(x·log2e); r = x − n·ln2hi − n·ln2lo, where ln2hi = float32(ln2)
//   and ln2lo = float32(ln2 − ln2hi): with FMA the first step is exact
//   (|n| ≤ 150); p = Σ_{k≤7} r^k/k! (Horner); exp(x) = p·2ⁿ.
// AVX-512 clamps x at −104 (exp underflows to 0 below) and scales with
// VSCALEFPS, so subnormal results come out right. AVX2 clamps x at −87.6
// (so n ≥ −126 and 2ⁿ can be built in the exponent field; p·2ⁿ may still
// be subnormal) and zeroes the lanes where x < −87.6 (exp(x) < 0.77·2⁻¹²⁶).
// NaN propagates in both.

// Constants: each row holds eight copies (AVX2 reads rows as 256-bit
// operands, AVX-512 broadcasts their first element).
// 0x000: log2e
DATA ewv<>+0x000(SB)/4, $0x3fb8aa3b
DATA ewv<>+0x004(SB)/4, $0x3fb8aa3b
DATA ewv<>+0x008(SB)/4, $0x3fb8aa3b
DATA ewv<>+0x00c(SB)/4, $0x3fb8aa3b
DATA ewv<>+0x010(SB)/4, $0x3fb8aa3b
DATA ewv<>+0x014(SB)/4, $0x3fb8aa3b
DATA ewv<>+0x018(SB)/4, $0x3fb8aa3b
DATA ewv<>+0x01c(SB)/4, $0x3fb8aa3b
// 0x020: ln2hi
DATA ewv<>+0x020(SB)/4, $0x3f317218
DATA ewv<>+0x024(SB)/4, $0x3f317218
DATA ewv<>+0x028(SB)/4, $0x3f317218
DATA ewv<>+0x02c(SB)/4, $0x3f317218
DATA ewv<>+0x030(SB)/4, $0x3f317218
DATA ewv<>+0x034(SB)/4, $0x3f317218
DATA ewv<>+0x038(SB)/4, $0x3f317218
DATA ewv<>+0x03c(SB)/4, $0x3f317218
// 0x040: ln2lo
DATA ewv<>+0x040(SB)/4, $0xb102e308
DATA ewv<>+0x044(SB)/4, $0xb102e308
DATA ewv<>+0x048(SB)/4, $0xb102e308
DATA ewv<>+0x04c(SB)/4, $0xb102e308
DATA ewv<>+0x050(SB)/4, $0xb102e308
DATA ewv<>+0x054(SB)/4, $0xb102e308
DATA ewv<>+0x058(SB)/4, $0xb102e308
DATA ewv<>+0x05c(SB)/4, $0xb102e308
// 0x060: c7 = 1/5040
DATA ewv<>+0x060(SB)/4, $0x39500d01
DATA ewv<>+0x064(SB)/4, $0x39500d01
DATA ewv<>+0x068(SB)/4, $0x39500d01
DATA ewv<>+0x06c(SB)/4, $0x39500d01
DATA ewv<>+0x070(SB)/4, $0x39500d01
DATA ewv<>+0x074(SB)/4, $0x39500d01
DATA ewv<>+0x078(SB)/4, $0x39500d01
DATA ewv<>+0x07c(SB)/4, $0x39500d01
// 0x080: c6 = 1/720
DATA ewv<>+0x080(SB)/4, $0x3ab60b61
DATA ewv<>+0x084(SB)/4, $0x3ab60b61
DATA ewv<>+0x088(SB)/4, $0x3ab60b61
DATA ewv<>+0x08c(SB)/4, $0x3ab60b61
DATA ewv<>+0x090(SB)/4, $0x3ab60b61
DATA ewv<>+0x094(SB)/4, $0x3ab60b61
DATA ewv<>+0x098(SB)/4, $0x3ab60b61
DATA ewv<>+0x09c(SB)/4, $0x3ab60b61
// 0x0a0: c5 = 1/120
DATA ewv<>+0x0a0(SB)/4, $0x3c088889
DATA ewv<>+0x0a4(SB)/4, $0x3c088889
DATA ewv<>+0x0a8(SB)/4, $0x3c088889
DATA ewv<>+0x0ac(SB)/4, $0x3c088889
DATA ewv<>+0x0b0(SB)/4, $0x3c088889
DATA ewv<>+0x0b4(SB)/4, $0x3c088889
DATA ewv<>+0x0b8(SB)/4, $0x3c088889
DATA ewv<>+0x0bc(SB)/4, $0x3c088889
// 0x0c0: c4 = 1/24
DATA ewv<>+0x0c0(SB)/4, $0x3d2aaaab
DATA ewv<>+0x0c4(SB)/4, $0x3d2aaaab
DATA ewv<>+0x0c8(SB)/4, $0x3d2aaaab
DATA ewv<>+0x0cc(SB)/4, $0x3d2aaaab
DATA ewv<>+0x0d0(SB)/4, $0x3d2aaaab
DATA ewv<>+0x0d4(SB)/4, $0x3d2aaaab
DATA ewv<>+0x0d8(SB)/4, $0x3d2aaaab
DATA ewv<>+0x0dc(SB)/4, $0x3d2aaaab
// 0x0e0: c3 = 1/6
DATA ewv<>+0x0e0(SB)/4, $0x3e2aaaab
DATA ewv<>+0x0e4(SB)/4, $0x3e2aaaab
DATA ewv<>+0x0e8(SB)/4, $0x3e2aaaab
DATA ewv<>+0x0ec(SB)/4, $0x3e2aaaab
DATA ewv<>+0x0f0(SB)/4, $0x3e2aaaab
DATA ewv<>+0x0f4(SB)/4, $0x3e2aaaab
DATA ewv<>+0x0f8(SB)/4, $0x3e2aaaab
DATA ewv<>+0x0fc(SB)/4, $0x3e2aaaab
// 0x100: c2 = 1/2
DATA ewv<>+0x100(SB)/4, $0x3f000000
DATA ewv<>+0x104(SB)/4, $0x3f000000
DATA ewv<>+0x108(SB)/4, $0x3f000000
DATA ewv<>+0x10c(SB)/4, $0x3f000000
DATA ewv<>+0x110(SB)/4, $0x3f000000
DATA ewv<>+0x114(SB)/4, $0x3f000000
DATA ewv<>+0x118(SB)/4, $0x3f000000
DATA ewv<>+0x11c(SB)/4, $0x3f000000
// 0x120: 1
DATA ewv<>+0x120(SB)/4, $0x3f800000
DATA ewv<>+0x124(SB)/4, $0x3f800000
DATA ewv<>+0x128(SB)/4, $0x3f800000
DATA ewv<>+0x12c(SB)/4, $0x3f800000
DATA ewv<>+0x130(SB)/4, $0x3f800000
DATA ewv<>+0x134(SB)/4, $0x3f800000
DATA ewv<>+0x138(SB)/4, $0x3f800000
DATA ewv<>+0x13c(SB)/4, $0x3f800000
// 0x140: sign bit
DATA ewv<>+0x140(SB)/4, $0x80000000
DATA ewv<>+0x144(SB)/4, $0x80000000
DATA ewv<>+0x148(SB)/4, $0x80000000
DATA ewv<>+0x14c(SB)/4, $0x80000000
DATA ewv<>+0x150(SB)/4, $0x80000000
DATA ewv<>+0x154(SB)/4, $0x80000000
DATA ewv<>+0x158(SB)/4, $0x80000000
DATA ewv<>+0x15c(SB)/4, $0x80000000
// 0x160: exponent bias 127 (int32)
DATA ewv<>+0x160(SB)/4, $0x0000007f
DATA ewv<>+0x164(SB)/4, $0x0000007f
DATA ewv<>+0x168(SB)/4, $0x0000007f
DATA ewv<>+0x16c(SB)/4, $0x0000007f
DATA ewv<>+0x170(SB)/4, $0x0000007f
DATA ewv<>+0x174(SB)/4, $0x0000007f
DATA ewv<>+0x178(SB)/4, $0x0000007f
DATA ewv<>+0x17c(SB)/4, $0x0000007f
// 0x180: lane index 0..7 (int32)
DATA ewv<>+0x180(SB)/4, $0x00000000
DATA ewv<>+0x184(SB)/4, $0x00000001
DATA ewv<>+0x188(SB)/4, $0x00000002
DATA ewv<>+0x18c(SB)/4, $0x00000003
DATA ewv<>+0x190(SB)/4, $0x00000004
DATA ewv<>+0x194(SB)/4, $0x00000005
DATA ewv<>+0x198(SB)/4, $0x00000006
DATA ewv<>+0x19c(SB)/4, $0x00000007
// 0x1a0: AVX2 exp clamp -87.6
DATA ewv<>+0x1a0(SB)/4, $0xc2af3333
DATA ewv<>+0x1a4(SB)/4, $0xc2af3333
DATA ewv<>+0x1a8(SB)/4, $0xc2af3333
DATA ewv<>+0x1ac(SB)/4, $0xc2af3333
DATA ewv<>+0x1b0(SB)/4, $0xc2af3333
DATA ewv<>+0x1b4(SB)/4, $0xc2af3333
DATA ewv<>+0x1b8(SB)/4, $0xc2af3333
DATA ewv<>+0x1bc(SB)/4, $0xc2af3333
// 0x1c0: AVX-512 exp clamp -104
DATA ewv<>+0x1c0(SB)/4, $0xc2d00000
DATA ewv<>+0x1c4(SB)/4, $0xc2d00000
DATA ewv<>+0x1c8(SB)/4, $0xc2d00000
DATA ewv<>+0x1cc(SB)/4, $0xc2d00000
DATA ewv<>+0x1d0(SB)/4, $0xc2d00000
DATA ewv<>+0x1d4(SB)/4, $0xc2d00000
DATA ewv<>+0x1d8(SB)/4, $0xc2d00000
DATA ewv<>+0x1dc(SB)/4, $0xc2d00000
// 0x1e0: -Inf
DATA ewv<>+0x1e0(SB)/4, $0xff800000
DATA ewv<>+0x1e4(SB)/4, $0xff800000
DATA ewv<>+0x1e8(SB)/4, $0xff800000
DATA ewv<>+0x1ec(SB)/4, $0xff800000
DATA ewv<>+0x1f0(SB)/4, $0xff800000
DATA ewv<>+0x1f4(SB)/4, $0xff800000
DATA ewv<>+0x1f8(SB)/4, $0xff800000
DATA ewv<>+0x1fc(SB)/4, $0xff800000
GLOBL ewv<>(SB), RODATA|NOPTR, $0x200

// ---------------------------------------------------------------- macros

// K1 = low CX bits set (1 ≤ CX ≤ 15). Clobbers AX.
#define TAILMASK512 \
	MOVL $1, AX; \
	SHLL CX, AX; \
	DECL AX; \
	KMOVW AX, K1

// Y13 = all-ones in lanes i < CX (1 ≤ CX ≤ 7).
#define TAILMASK256 \
	MOVQ CX, X13; \
	VPBROADCASTD X13, Y13; \
	VPCMPGTD ewv<>+0x180(SB), Y13, Y13

// Horizontal sum of Y0 into X0 (clobbers X1).
#define HSUM256 \
	VEXTRACTF128 $1, Y0, X1; \
	VADDPS X1, X0, X0; \
	VMOVHLPS X0, X0, X1; \
	VADDPS X1, X0, X0; \
	VMOVSHDUP X0, X1; \
	VADDSS X1, X0, X0

// Horizontal sum of Z0 into X0 (clobbers Z1).
#define HSUM512 \
	VEXTRACTF64X4 $1, Z0, Y1; \
	VADDPS Y1, Y0, Y0; \
	HSUM256

// Horizontal max of Y0 into X0 (clobbers X1).
#define HMAX256 \
	VEXTRACTF128 $1, Y0, X1; \
	VMAXPS X1, X0, X0; \
	VMOVHLPS X0, X0, X1; \
	VMAXPS X1, X0, X0; \
	VMOVSHDUP X0, X1; \
	VMAXSS X1, X0, X0

// Exp constants for AVX-512: Z16 clamp, Z17 log2e, Z18 ln2hi, Z19 ln2lo,
// Z20 one, Z21..Z26 c2..c7, Z27 sign bit, Z28 zero.
#define EXPCONST512 \
	VBROADCASTSS ewv<>+0x1c0(SB), Z16; \
	VBROADCASTSS ewv<>+0x000(SB), Z17; \
	VBROADCASTSS ewv<>+0x020(SB), Z18; \
	VBROADCASTSS ewv<>+0x040(SB), Z19; \
	VBROADCASTSS ewv<>+0x120(SB), Z20; \
	VBROADCASTSS ewv<>+0x100(SB), Z21; \
	VBROADCASTSS ewv<>+0x0e0(SB), Z22; \
	VBROADCASTSS ewv<>+0x0c0(SB), Z23; \
	VBROADCASTSS ewv<>+0x0a0(SB), Z24; \
	VBROADCASTSS ewv<>+0x080(SB), Z25; \
	VBROADCASTSS ewv<>+0x060(SB), Z26; \
	VBROADCASTSS ewv<>+0x140(SB), Z27; \
	VPXORD Z28, Z28, Z28

// p = exp(x) (x ≤ 0 or NaN); x is clobbered, n is a temporary.
// VMAXPS returns its second source (x) when x is NaN.
#define EXP512(x, n, p) \
	VMAXPS x, Z16, x; \
	VMULPS Z17, x, n; \
	VRNDSCALEPS $0, n, n; \
	VFNMADD231PS Z18, n, x; \
	VFNMADD231PS Z19, n, x; \
	VMOVAPS Z26, p; \
	VFMADD213PS Z25, x, p; \
	VFMADD213PS Z24, x, p; \
	VFMADD213PS Z23, x, p; \
	VFMADD213PS Z22, x, p; \
	VFMADD213PS Z21, x, p; \
	VFMADD213PS Z20, x, p; \
	VFMADD213PS Z20, x, p; \
	VSCALEFPS n, p, p

// s = σ(g) = (g < 0 ? e : 1) / (1 + e) with e = exp(−|g|).
// Clobbers Z2..Z5 and K2.
#define SIG512(g, s) \
	VPORD Z27, g, Z2; \
	EXP512(Z2, Z3, Z4); \
	VADDPS Z20, Z4, Z5; \
	VMOVAPS Z20, s; \
	VCMPPS $0x11, Z28, g, K2; \
	VMOVAPS Z4, K2, s; \
	VDIVPS Z5, s, s

// Exp constants for AVX2 kept in registers: Y15 clamp, Y14 one.
#define EXPCONST256 \
	VBROADCASTSS ewv<>+0x1a0(SB), Y15; \
	VBROADCASTSS ewv<>+0x120(SB), Y14

// p = exp(x) (x ≤ 0 or NaN); x is clobbered, n and m are temporaries.
// m keeps the lanes where x ≥ −87.6 or x is NaN (predicate NLT_UQ).
#define EXP256(x, n, p, m) \
	VCMPPS $5, Y15, x, m; \
	VMAXPS x, Y15, x; \
	VMULPS ewv<>+0x000(SB), x, n; \
	VCVTPS2DQ n, n; \
	VCVTDQ2PS n, p; \
	VFNMADD231PS ewv<>+0x020(SB), p, x; \
	VFNMADD231PS ewv<>+0x040(SB), p, x; \
	VMOVUPS ewv<>+0x060(SB), p; \
	VFMADD213PS ewv<>+0x080(SB), x, p; \
	VFMADD213PS ewv<>+0x0a0(SB), x, p; \
	VFMADD213PS ewv<>+0x0c0(SB), x, p; \
	VFMADD213PS ewv<>+0x0e0(SB), x, p; \
	VFMADD213PS ewv<>+0x100(SB), x, p; \
	VFMADD213PS Y14, x, p; \
	VFMADD213PS Y14, x, p; \
	VPADDD ewv<>+0x160(SB), n, n; \
	VPSLLD $23, n, n; \
	VMULPS n, p, p; \
	VANDPS m, p, p

// s = σ(g) as in SIG512. Clobbers Y2..Y5.
#define SIG256(g, s) \
	VORPS ewv<>+0x140(SB), g, Y2; \
	EXP256(Y2, Y3, Y4, Y5); \
	VADDPS Y14, Y4, Y5; \
	VBLENDVPS g, Y4, Y14, s; \
	VDIVPS Y5, s, s

// ---------------------------------------------------------------- dot

// func dotAVX512(a, b []float32) float32
TEXT ·dotAVX512(SB), NOSPLIT, $0-52
	MOVQ a_base+0(FP), SI
	MOVQ a_len+8(FP), CX
	MOVQ b_base+24(FP), DI
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3

dot512_loop64:
	CMPQ CX, $64
	JLT  dot512_loop16
	VMOVUPS (SI), Z4
	VMOVUPS 64(SI), Z5
	VMOVUPS 128(SI), Z6
	VMOVUPS 192(SI), Z7
	VFMADD231PS (DI), Z4, Z0
	VFMADD231PS 64(DI), Z5, Z1
	VFMADD231PS 128(DI), Z6, Z2
	VFMADD231PS 192(DI), Z7, Z3
	ADDQ $256, SI
	ADDQ $256, DI
	SUBQ $64, CX
	JMP  dot512_loop64

dot512_loop16:
	CMPQ CX, $16
	JLT  dot512_tail
	VMOVUPS (SI), Z4
	VFMADD231PS (DI), Z4, Z0
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JMP  dot512_loop16

dot512_tail:
	TESTQ CX, CX
	JZ    dot512_reduce
	TAILMASK512
	VMOVUPS.Z (SI), K1, Z4
	VMOVUPS.Z (DI), K1, Z5
	VFMADD231PS Z5, Z4, Z1

dot512_reduce:
	VADDPS Z1, Z0, Z0
	VADDPS Z3, Z2, Z2
	VADDPS Z2, Z0, Z0
	HSUM512
	MOVSS X0, ret+48(FP)
	VZEROUPPER
	RET

// func dotAVX2(a, b []float32) float32
TEXT ·dotAVX2(SB), NOSPLIT, $0-52
	MOVQ a_base+0(FP), SI
	MOVQ a_len+8(FP), CX
	MOVQ b_base+24(FP), DI
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

dot256_loop32:
	CMPQ CX, $32
	JLT  dot256_loop8
	VMOVUPS (SI), Y4
	VMOVUPS 32(SI), Y5
	VMOVUPS 64(SI), Y6
	VMOVUPS 96(SI), Y7
	VFMADD231PS (DI), Y4, Y0
	VFMADD231PS 32(DI), Y5, Y1
	VFMADD231PS 64(DI), Y6, Y2
	VFMADD231PS 96(DI), Y7, Y3
	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $32, CX
	JMP  dot256_loop32

dot256_loop8:
	CMPQ CX, $8
	JLT  dot256_tail
	VMOVUPS (SI), Y4
	VFMADD231PS (DI), Y4, Y0
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  dot256_loop8

dot256_tail:
	TESTQ CX, CX
	JZ    dot256_reduce
	TAILMASK256
	VMASKMOVPS (SI), Y13, Y4
	VMASKMOVPS (DI), Y13, Y5
	VFMADD231PS Y5, Y4, Y1

dot256_reduce:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	HSUM256
	MOVSS X0, ret+48(FP)
	VZEROUPPER
	RET

// ---------------------------------------------------------------- axpy

// func axpyAVX512(y []float32, alpha float32, x []float32)
TEXT ·axpyAVX512(SB), NOSPLIT, $0-56
	MOVQ y_base+0(FP), DI
	MOVQ y_len+8(FP), CX
	VBROADCASTSS alpha+24(FP), Z15
	MOVQ x_base+32(FP), SI

axpy512_loop32:
	CMPQ CX, $32
	JLT  axpy512_loop16
	VMOVUPS (DI), Z0
	VMOVUPS 64(DI), Z1
	VFMADD231PS (SI), Z15, Z0
	VFMADD231PS 64(SI), Z15, Z1
	VMOVUPS Z0, (DI)
	VMOVUPS Z1, 64(DI)
	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $32, CX
	JMP  axpy512_loop32

axpy512_loop16:
	CMPQ CX, $16
	JLT  axpy512_tail
	VMOVUPS (DI), Z0
	VFMADD231PS (SI), Z15, Z0
	VMOVUPS Z0, (DI)
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JMP  axpy512_loop16

axpy512_tail:
	TESTQ CX, CX
	JZ    axpy512_done
	TAILMASK512
	VMOVUPS.Z (DI), K1, Z0
	VMOVUPS.Z (SI), K1, Z1
	VFMADD231PS Z1, Z15, Z0
	VMOVUPS Z0, K1, (DI)

axpy512_done:
	VZEROUPPER
	RET

// func axpyAVX2(y []float32, alpha float32, x []float32)
TEXT ·axpyAVX2(SB), NOSPLIT, $0-56
	MOVQ y_base+0(FP), DI
	MOVQ y_len+8(FP), CX
	VBROADCASTSS alpha+24(FP), Y15
	MOVQ x_base+32(FP), SI

axpy256_loop16:
	CMPQ CX, $16
	JLT  axpy256_loop8
	VMOVUPS (DI), Y0
	VMOVUPS 32(DI), Y1
	VFMADD231PS (SI), Y15, Y0
	VFMADD231PS 32(SI), Y15, Y1
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JMP  axpy256_loop16

axpy256_loop8:
	CMPQ CX, $8
	JLT  axpy256_tail
	VMOVUPS (DI), Y0
	VFMADD231PS (SI), Y15, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  axpy256_loop8

axpy256_tail:
	TESTQ CX, CX
	JZ    axpy256_done
	TAILMASK256
	VMASKMOVPS (DI), Y13, Y0
	VMASKMOVPS (SI), Y13, Y1
	VFMADD231PS Y1, Y15, Y0
	VMASKMOVPS Y0, Y13, (DI)

axpy256_done:
	VZEROUPPER
	RET

// ---------------------------------------------------------------- scale

// func scaleAVX512(x []float32, alpha float32)
TEXT ·scaleAVX512(SB), NOSPLIT, $0-28
	MOVQ x_base+0(FP), DI
	MOVQ x_len+8(FP), CX
	VBROADCASTSS alpha+24(FP), Z15

scale512_loop16:
	CMPQ CX, $16
	JLT  scale512_tail
	VMULPS (DI), Z15, Z0
	VMOVUPS Z0, (DI)
	ADDQ $64, DI
	SUBQ $16, CX
	JMP  scale512_loop16

scale512_tail:
	TESTQ CX, CX
	JZ    scale512_done
	TAILMASK512
	VMOVUPS.Z (DI), K1, Z0
	VMULPS Z0, Z15, Z0
	VMOVUPS Z0, K1, (DI)

scale512_done:
	VZEROUPPER
	RET

// func scaleAVX2(x []float32, alpha float32)
TEXT ·scaleAVX2(SB), NOSPLIT, $0-28
	MOVQ x_base+0(FP), DI
	MOVQ x_len+8(FP), CX
	VBROADCASTSS alpha+24(FP), Y15

scale256_loop8:
	CMPQ CX, $8
	JLT  scale256_tail
	VMULPS (DI), Y15, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  scale256_loop8

scale256_tail:
	TESTQ CX, CX
	JZ    scale256_done
	TAILMASK256
	VMASKMOVPS (DI), Y13, Y0
	VMULPS Y0, Y15, Y0
	VMASKMOVPS Y0, Y13, (DI)

scale256_done:
	VZEROUPPER
	RET

// ---------------------------------------------------------------- add

// func addAVX512(dst, a, b []float32)
TEXT ·addAVX512(SB), NOSPLIT, $0-72
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), CX
	MOVQ a_base+24(FP), SI
	MOVQ b_base+48(FP), DX

add512_loop16:
	CMPQ CX, $16
	JLT  add512_tail
	VMOVUPS (SI), Z0
	VADDPS (DX), Z0, Z0
	VMOVUPS Z0, (DI)
	ADDQ $64, SI
	ADDQ $64, DX
	ADDQ $64, DI
	SUBQ $16, CX
	JMP  add512_loop16

add512_tail:
	TESTQ CX, CX
	JZ    add512_done
	TAILMASK512
	VMOVUPS.Z (SI), K1, Z0
	VMOVUPS.Z (DX), K1, Z1
	VADDPS Z1, Z0, Z0
	VMOVUPS Z0, K1, (DI)

add512_done:
	VZEROUPPER
	RET

// func addAVX2(dst, a, b []float32)
TEXT ·addAVX2(SB), NOSPLIT, $0-72
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), CX
	MOVQ a_base+24(FP), SI
	MOVQ b_base+48(FP), DX

add256_loop8:
	CMPQ CX, $8
	JLT  add256_tail
	VMOVUPS (SI), Y0
	VADDPS (DX), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DX
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  add256_loop8

add256_tail:
	TESTQ CX, CX
	JZ    add256_done
	TAILMASK256
	VMASKMOVPS (SI), Y13, Y0
	VMASKMOVPS (DX), Y13, Y1
	VADDPS Y1, Y0, Y0
	VMASKMOVPS Y0, Y13, (DI)

add256_done:
	VZEROUPPER
	RET

// ---------------------------------------------------------------- mulScale

// func mulScaleAVX512(dst, x, w []float32, s float32)
// dst = (x·s)·w
TEXT ·mulScaleAVX512(SB), NOSPLIT, $0-76
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), CX
	MOVQ x_base+24(FP), SI
	MOVQ w_base+48(FP), DX
	VBROADCASTSS s+72(FP), Z15

mulscale512_loop16:
	CMPQ CX, $16
	JLT  mulscale512_tail
	VMULPS (SI), Z15, Z0
	VMULPS (DX), Z0, Z0
	VMOVUPS Z0, (DI)
	ADDQ $64, SI
	ADDQ $64, DX
	ADDQ $64, DI
	SUBQ $16, CX
	JMP  mulscale512_loop16

mulscale512_tail:
	TESTQ CX, CX
	JZ    mulscale512_done
	TAILMASK512
	VMOVUPS.Z (SI), K1, Z0
	VMOVUPS.Z (DX), K1, Z1
	VMULPS Z15, Z0, Z0
	VMULPS Z1, Z0, Z0
	VMOVUPS Z0, K1, (DI)

mulscale512_done:
	VZEROUPPER
	RET

// func mulScaleAVX2(dst, x, w []float32, s float32)
TEXT ·mulScaleAVX2(SB), NOSPLIT, $0-76
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), CX
	MOVQ x_base+24(FP), SI
	MOVQ w_base+48(FP), DX
	VBROADCASTSS s+72(FP), Y15

mulscale256_loop8:
	CMPQ CX, $8
	JLT  mulscale256_tail
	VMULPS (SI), Y15, Y0
	VMULPS (DX), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DX
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  mulscale256_loop8

mulscale256_tail:
	TESTQ CX, CX
	JZ    mulscale256_done
	TAILMASK256
	VMASKMOVPS (SI), Y13, Y0
	VMASKMOVPS (DX), Y13, Y1
	VMULPS Y15, Y0, Y0
	VMULPS Y1, Y0, Y0
	VMASKMOVPS Y0, Y13, (DI)

mulscale256_done:
	VZEROUPPER
	RET

// ---------------------------------------------------------------- subMul

// func subMulAVX512(dst, y, dy []float32, c float32)
// dst = y·(dy − c)
TEXT ·subMulAVX512(SB), NOSPLIT, $0-76
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), CX
	MOVQ y_base+24(FP), SI
	MOVQ dy_base+48(FP), DX
	VBROADCASTSS c+72(FP), Z15

submul512_loop16:
	CMPQ CX, $16
	JLT  submul512_tail
	VMOVUPS (DX), Z0
	VSUBPS Z15, Z0, Z0
	VMULPS (SI), Z0, Z0
	VMOVUPS Z0, (DI)
	ADDQ $64, SI
	ADDQ $64, DX
	ADDQ $64, DI
	SUBQ $16, CX
	JMP  submul512_loop16

submul512_tail:
	TESTQ CX, CX
	JZ    submul512_done
	TAILMASK512
	VMOVUPS.Z (DX), K1, Z0
	VMOVUPS.Z (SI), K1, Z1
	VSUBPS Z15, Z0, Z0
	VMULPS Z1, Z0, Z0
	VMOVUPS Z0, K1, (DI)

submul512_done:
	VZEROUPPER
	RET

// func subMulAVX2(dst, y, dy []float32, c float32)
TEXT ·subMulAVX2(SB), NOSPLIT, $0-76
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), CX
	MOVQ y_base+24(FP), SI
	MOVQ dy_base+48(FP), DX
	VBROADCASTSS c+72(FP), Y15

submul256_loop8:
	CMPQ CX, $8
	JLT  submul256_tail
	VMOVUPS (DX), Y0
	VSUBPS Y15, Y0, Y0
	VMULPS (SI), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DX
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  submul256_loop8

submul256_tail:
	TESTQ CX, CX
	JZ    submul256_done
	TAILMASK256
	VMASKMOVPS (DX), Y13, Y0
	VMASKMOVPS (SI), Y13, Y1
	VSUBPS Y15, Y0, Y0
	VMULPS Y1, Y0, Y0
	VMASKMOVPS Y0, Y13, (DI)

submul256_done:
	VZEROUPPER
	RET

// ---------------------------------------------------------------- max

// func maxAVX512(x []float32) float32
TEXT ·maxAVX512(SB), NOSPLIT, $0-28
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	VBROADCASTSS ewv<>+0x1e0(SB), Z0
	VMOVAPS Z0, Z1
	VMOVAPS Z0, Z2
	VMOVAPS Z0, Z3

max512_loop64:
	CMPQ CX, $64
	JLT  max512_loop16
	VMAXPS (SI), Z0, Z0
	VMAXPS 64(SI), Z1, Z1
	VMAXPS 128(SI), Z2, Z2
	VMAXPS 192(SI), Z3, Z3
	ADDQ $256, SI
	SUBQ $64, CX
	JMP  max512_loop64

max512_loop16:
	CMPQ CX, $16
	JLT  max512_tail
	VMAXPS (SI), Z0, Z0
	ADDQ $64, SI
	SUBQ $16, CX
	JMP  max512_loop16

max512_tail:
	TESTQ CX, CX
	JZ    max512_reduce
	TAILMASK512
	VMAXPS (SI), Z1, K1, Z1

max512_reduce:
	VMAXPS Z1, Z0, Z0
	VMAXPS Z3, Z2, Z2
	VMAXPS Z2, Z0, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	VMAXPS Y1, Y0, Y0
	HMAX256
	MOVSS X0, ret+24(FP)
	VZEROUPPER
	RET

// func maxAVX2(x []float32) float32
TEXT ·maxAVX2(SB), NOSPLIT, $0-28
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	VBROADCASTSS ewv<>+0x1e0(SB), Y0
	VMOVAPS Y0, Y1
	VMOVAPS Y0, Y2
	VMOVAPS Y0, Y3

max256_loop32:
	CMPQ CX, $32
	JLT  max256_loop8
	VMAXPS (SI), Y0, Y0
	VMAXPS 32(SI), Y1, Y1
	VMAXPS 64(SI), Y2, Y2
	VMAXPS 96(SI), Y3, Y3
	ADDQ $128, SI
	SUBQ $32, CX
	JMP  max256_loop32

max256_loop8:
	CMPQ CX, $8
	JLT  max256_tail
	VMAXPS (SI), Y0, Y0
	ADDQ $32, SI
	SUBQ $8, CX
	JMP  max256_loop8

max256_tail:
	TESTQ CX, CX
	JZ    max256_reduce
	TAILMASK256
	VMASKMOVPS (SI), Y13, Y4
	VBLENDVPS Y13, Y4, Y1, Y4
	VMAXPS Y4, Y1, Y1

max256_reduce:
	VMAXPS Y1, Y0, Y0
	VMAXPS Y3, Y2, Y2
	VMAXPS Y2, Y0, Y0
	HMAX256
	MOVSS X0, ret+24(FP)
	VZEROUPPER
	RET

// ---------------------------------------------------------------- expSub

// func expSubAVX512(x []float32, m float32) float32
// x = exp(x − m); returns Σ x.
TEXT ·expSubAVX512(SB), NOSPLIT, $0-36
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	VBROADCASTSS m+24(FP), Z29
	EXPCONST512
	VPXORD Z30, Z30, Z30
	VPXORD Z31, Z31, Z31

expsub512_loop32:
	CMPQ CX, $32
	JLT  expsub512_loop16
	VMOVUPS (SI), Z0
	VMOVUPS 64(SI), Z8
	VSUBPS Z29, Z0, Z0
	VSUBPS Z29, Z8, Z8
	EXP512(Z0, Z1, Z2)
	EXP512(Z8, Z9, Z10)
	VMOVUPS Z2, (SI)
	VMOVUPS Z10, 64(SI)
	VADDPS Z2, Z30, Z30
	VADDPS Z10, Z31, Z31
	ADDQ $128, SI
	SUBQ $32, CX
	JMP  expsub512_loop32

expsub512_loop16:
	CMPQ CX, $16
	JLT  expsub512_tail
	VMOVUPS (SI), Z0
	VSUBPS Z29, Z0, Z0
	EXP512(Z0, Z1, Z2)
	VMOVUPS Z2, (SI)
	VADDPS Z2, Z30, Z30
	ADDQ $64, SI
	SUBQ $16, CX
	JMP  expsub512_loop16

expsub512_tail:
	TESTQ CX, CX
	JZ    expsub512_reduce
	TAILMASK512
	VMOVUPS.Z (SI), K1, Z0
	VSUBPS Z29, Z0, Z0
	EXP512(Z0, Z1, Z2)
	VMOVUPS Z2, K1, (SI)
	VADDPS Z2, Z31, K1, Z31

expsub512_reduce:
	VADDPS Z31, Z30, Z0
	HSUM512
	MOVSS X0, ret+32(FP)
	VZEROUPPER
	RET

// func expSubAVX2(x []float32, m float32) float32
TEXT ·expSubAVX2(SB), NOSPLIT, $0-36
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	VBROADCASTSS m+24(FP), Y12
	EXPCONST256
	VXORPS Y11, Y11, Y11
	VXORPS Y10, Y10, Y10

expsub256_loop16:
	CMPQ CX, $16
	JLT  expsub256_loop8
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y6
	VSUBPS Y12, Y0, Y0
	VSUBPS Y12, Y6, Y6
	EXP256(Y0, Y1, Y2, Y3)
	EXP256(Y6, Y7, Y8, Y9)
	VMOVUPS Y2, (SI)
	VMOVUPS Y8, 32(SI)
	VADDPS Y2, Y11, Y11
	VADDPS Y8, Y10, Y10
	ADDQ $64, SI
	SUBQ $16, CX
	JMP  expsub256_loop16

expsub256_loop8:
	CMPQ CX, $8
	JLT  expsub256_tail
	VMOVUPS (SI), Y0
	VSUBPS Y12, Y0, Y0
	EXP256(Y0, Y1, Y2, Y3)
	VMOVUPS Y2, (SI)
	VADDPS Y2, Y11, Y11
	ADDQ $32, SI
	SUBQ $8, CX
	JMP  expsub256_loop8

expsub256_tail:
	TESTQ CX, CX
	JZ    expsub256_reduce
	TAILMASK256
	VMASKMOVPS (SI), Y13, Y0
	VSUBPS Y12, Y0, Y0
	EXP256(Y0, Y1, Y2, Y3)
	VANDPS Y13, Y2, Y2
	VMASKMOVPS Y2, Y13, (SI)
	VADDPS Y2, Y10, Y10

expsub256_reduce:
	VADDPS Y11, Y10, Y0
	HSUM256
	MOVSS X0, ret+32(FP)
	VZEROUPPER
	RET

// ---------------------------------------------------------------- SiLU·mul

// func siluMulAVX512(dst, gate, up []float32)
// dst = g·σ(g)·up
TEXT ·siluMulAVX512(SB), NOSPLIT, $0-72
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), CX
	MOVQ gate_base+24(FP), SI
	MOVQ up_base+48(FP), DX
	EXPCONST512

silu512_loop16:
	CMPQ CX, $16
	JLT  silu512_tail
	VMOVUPS (SI), Z0
	VMOVUPS (DX), Z1
	SIG512(Z0, Z6)
	VMULPS Z6, Z0, Z6
	VMULPS Z1, Z6, Z6
	VMOVUPS Z6, (DI)
	ADDQ $64, SI
	ADDQ $64, DX
	ADDQ $64, DI
	SUBQ $16, CX
	JMP  silu512_loop16

silu512_tail:
	TESTQ CX, CX
	JZ    silu512_done
	TAILMASK512
	VMOVUPS.Z (SI), K1, Z0
	VMOVUPS.Z (DX), K1, Z1
	SIG512(Z0, Z6)
	VMULPS Z6, Z0, Z6
	VMULPS Z1, Z6, Z6
	VMOVUPS Z6, K1, (DI)

silu512_done:
	VZEROUPPER
	RET

// func siluMulAVX2(dst, gate, up []float32)
TEXT ·siluMulAVX2(SB), NOSPLIT, $0-72
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), CX
	MOVQ gate_base+24(FP), SI
	MOVQ up_base+48(FP), DX
	EXPCONST256

silu256_loop8:
	CMPQ CX, $8
	JLT  silu256_tail
	VMOVUPS (SI), Y0
	VMOVUPS (DX), Y1
	SIG256(Y0, Y6)
	VMULPS Y6, Y0, Y6
	VMULPS Y1, Y6, Y6
	VMOVUPS Y6, (DI)
	ADDQ $32, SI
	ADDQ $32, DX
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  silu256_loop8

silu256_tail:
	TESTQ CX, CX
	JZ    silu256_done
	TAILMASK256
	VMASKMOVPS (SI), Y13, Y0
	VMASKMOVPS (DX), Y13, Y1
	SIG256(Y0, Y6)
	VMULPS Y6, Y0, Y6
	VMULPS Y1, Y6, Y6
	VMASKMOVPS Y6, Y13, (DI)

silu256_done:
	VZEROUPPER
	RET

// ---------------------------------------------------------------- SiLU·mul backward

// func siluMulBackwardAVX512(dgate, dup, dy, gate, up []float32)
// s = σ(g); dup = dy·(g·s); dgate = (dy·up)·(s·(1 + g·(1 − s)))
TEXT ·siluMulBackwardAVX512(SB), NOSPLIT, $0-120
	MOVQ dgate_base+0(FP), R8
	MOVQ dgate_len+8(FP), CX
	MOVQ dup_base+24(FP), R9
	MOVQ dy_base+48(FP), R10
	MOVQ gate_base+72(FP), SI
	MOVQ up_base+96(FP), DX
	EXPCONST512

siluback512_loop16:
	CMPQ CX, $16
	JLT  siluback512_tail
	VMOVUPS (SI), Z0
	VMOVUPS (DX), Z1
	VMOVUPS (R10), Z7
	SIG512(Z0, Z6)
	VMULPS Z6, Z0, Z8
	VMULPS Z8, Z7, Z8
	VSUBPS Z6, Z20, Z9
	VFMADD213PS Z20, Z0, Z9
	VMULPS Z9, Z6, Z9
	VMULPS Z1, Z7, Z10
	VMULPS Z10, Z9, Z9
	VMOVUPS Z9, (R8)
	VMOVUPS Z8, (R9)
	ADDQ $64, SI
	ADDQ $64, DX
	ADDQ $64, R8
	ADDQ $64, R9
	ADDQ $64, R10
	SUBQ $16, CX
	JMP  siluback512_loop16

siluback512_tail:
	TESTQ CX, CX
	JZ    siluback512_done
	TAILMASK512
	VMOVUPS.Z (SI), K1, Z0
	VMOVUPS.Z (DX), K1, Z1
	VMOVUPS.Z (R10), K1, Z7
	SIG512(Z0, Z6)
	VMULPS Z6, Z0, Z8
	VMULPS Z8, Z7, Z8
	VSUBPS Z6, Z20, Z9
	VFMADD213PS Z20, Z0, Z9
	VMULPS Z9, Z6, Z9
	VMULPS Z1, Z7, Z10
	VMULPS Z10, Z9, Z9
	VMOVUPS Z9, K1, (R8)
	VMOVUPS Z8, K1, (R9)

siluback512_done:
	VZEROUPPER
	RET

// func siluMulBackwardAVX2(dgate, dup, dy, gate, up []float32)
TEXT ·siluMulBackwardAVX2(SB), NOSPLIT, $0-120
	MOVQ dgate_base+0(FP), R8
	MOVQ dgate_len+8(FP), CX
	MOVQ dup_base+24(FP), R9
	MOVQ dy_base+48(FP), R10
	MOVQ gate_base+72(FP), SI
	MOVQ up_base+96(FP), DX
	EXPCONST256

siluback256_loop8:
	CMPQ CX, $8
	JLT  siluback256_tail
	VMOVUPS (SI), Y0
	VMOVUPS (DX), Y1
	VMOVUPS (R10), Y7
	SIG256(Y0, Y6)
	VMULPS Y6, Y0, Y8
	VMULPS Y8, Y7, Y8
	VSUBPS Y6, Y14, Y9
	VFMADD213PS Y14, Y0, Y9
	VMULPS Y9, Y6, Y9
	VMULPS Y1, Y7, Y10
	VMULPS Y10, Y9, Y9
	VMOVUPS Y9, (R8)
	VMOVUPS Y8, (R9)
	ADDQ $32, SI
	ADDQ $32, DX
	ADDQ $32, R8
	ADDQ $32, R9
	ADDQ $32, R10
	SUBQ $8, CX
	JMP  siluback256_loop8

siluback256_tail:
	TESTQ CX, CX
	JZ    siluback256_done
	TAILMASK256
	VMASKMOVPS (SI), Y13, Y0
	VMASKMOVPS (DX), Y13, Y1
	VMASKMOVPS (R10), Y13, Y7
	SIG256(Y0, Y6)
	VMULPS Y6, Y0, Y8
	VMULPS Y8, Y7, Y8
	VSUBPS Y6, Y14, Y9
	VFMADD213PS Y14, Y0, Y9
	VMULPS Y9, Y6, Y9
	VMULPS Y1, Y7, Y10
	VMULPS Y10, Y9, Y9
	VMASKMOVPS Y9, Y13, (R8)
	VMASKMOVPS Y8, Y13, (R9)

siluback256_done:
	VZEROUPPER
	RET

// ---------------------------------------------------------------- RMSNorm backward

// func dot3AVX512(a, b, c []float32) float32
// Σ (a·b)·c
TEXT ·dot3AVX512(SB), NOSPLIT, $0-76
	MOVQ a_base+0(FP), SI
	MOVQ a_len+8(FP), CX
	MOVQ b_base+24(FP), DI
	MOVQ c_base+48(FP), DX
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3

dot3512_loop64:
	CMPQ CX, $64
	JLT  dot3512_loop16
	VMOVUPS (SI), Z4
	VMOVUPS 64(SI), Z5
	VMOVUPS 128(SI), Z6
	VMOVUPS 192(SI), Z7
	VMULPS (DI), Z4, Z4
	VMULPS 64(DI), Z5, Z5
	VMULPS 128(DI), Z6, Z6
	VMULPS 192(DI), Z7, Z7
	VFMADD231PS (DX), Z4, Z0
	VFMADD231PS 64(DX), Z5, Z1
	VFMADD231PS 128(DX), Z6, Z2
	VFMADD231PS 192(DX), Z7, Z3
	ADDQ $256, SI
	ADDQ $256, DI
	ADDQ $256, DX
	SUBQ $64, CX
	JMP  dot3512_loop64

dot3512_loop16:
	CMPQ CX, $16
	JLT  dot3512_tail
	VMOVUPS (SI), Z4
	VMULPS (DI), Z4, Z4
	VFMADD231PS (DX), Z4, Z0
	ADDQ $64, SI
	ADDQ $64, DI
	ADDQ $64, DX
	SUBQ $16, CX
	JMP  dot3512_loop16

dot3512_tail:
	TESTQ CX, CX
	JZ    dot3512_reduce
	TAILMASK512
	VMOVUPS.Z (SI), K1, Z4
	VMOVUPS.Z (DI), K1, Z5
	VMOVUPS.Z (DX), K1, Z6
	VMULPS Z5, Z4, Z4
	VFMADD231PS Z6, Z4, Z1

dot3512_reduce:
	VADDPS Z1, Z0, Z0
	VADDPS Z3, Z2, Z2
	VADDPS Z2, Z0, Z0
	HSUM512
	MOVSS X0, ret+72(FP)
	VZEROUPPER
	RET

// func dot3AVX2(a, b, c []float32) float32
TEXT ·dot3AVX2(SB), NOSPLIT, $0-76
	MOVQ a_base+0(FP), SI
	MOVQ a_len+8(FP), CX
	MOVQ b_base+24(FP), DI
	MOVQ c_base+48(FP), DX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

dot3256_loop32:
	CMPQ CX, $32
	JLT  dot3256_loop8
	VMOVUPS (SI), Y4
	VMOVUPS 32(SI), Y5
	VMOVUPS 64(SI), Y6
	VMOVUPS 96(SI), Y7
	VMULPS (DI), Y4, Y4
	VMULPS 32(DI), Y5, Y5
	VMULPS 64(DI), Y6, Y6
	VMULPS 96(DI), Y7, Y7
	VFMADD231PS (DX), Y4, Y0
	VFMADD231PS 32(DX), Y5, Y1
	VFMADD231PS 64(DX), Y6, Y2
	VFMADD231PS 96(DX), Y7, Y3
	ADDQ $128, SI
	ADDQ $128, DI
	ADDQ $128, DX
	SUBQ $32, CX
	JMP  dot3256_loop32

dot3256_loop8:
	CMPQ CX, $8
	JLT  dot3256_tail
	VMOVUPS (SI), Y4
	VMULPS (DI), Y4, Y4
	VFMADD231PS (DX), Y4, Y0
	ADDQ $32, SI
	ADDQ $32, DI
	ADDQ $32, DX
	SUBQ $8, CX
	JMP  dot3256_loop8

dot3256_tail:
	TESTQ CX, CX
	JZ    dot3256_reduce
	TAILMASK256
	VMASKMOVPS (SI), Y13, Y4
	VMASKMOVPS (DI), Y13, Y5
	VMASKMOVPS (DX), Y13, Y6
	VMULPS Y5, Y4, Y4
	VFMADD231PS Y6, Y4, Y1

dot3256_reduce:
	VADDPS Y1, Y0, Y0
	VADDPS Y3, Y2, Y2
	VADDPS Y2, Y0, Y0
	HSUM256
	MOVSS X0, ret+72(FP)
	VZEROUPPER
	RET

// func rmsBackAVX512(dx, dy, x, w []float32, r, k float32)
// dx = (w·dy)·r − k·x
TEXT ·rmsBackAVX512(SB), NOSPLIT, $0-104
	MOVQ dx_base+0(FP), DI
	MOVQ dy_base+24(FP), SI
	MOVQ x_base+48(FP), DX
	MOVQ w_base+72(FP), R8
	MOVQ w_len+80(FP), CX
	VBROADCASTSS r+96(FP), Z14
	VBROADCASTSS k+100(FP), Z15

rmsback512_loop16:
	CMPQ CX, $16
	JLT  rmsback512_tail
	VMOVUPS (R8), Z0
	VMULPS (SI), Z0, Z0
	VMULPS Z14, Z0, Z0
	VFNMADD231PS (DX), Z15, Z0
	VMOVUPS Z0, (DI)
	ADDQ $64, SI
	ADDQ $64, DX
	ADDQ $64, DI
	ADDQ $64, R8
	SUBQ $16, CX
	JMP  rmsback512_loop16

rmsback512_tail:
	TESTQ CX, CX
	JZ    rmsback512_done
	TAILMASK512
	VMOVUPS.Z (R8), K1, Z0
	VMOVUPS.Z (SI), K1, Z1
	VMOVUPS.Z (DX), K1, Z2
	VMULPS Z1, Z0, Z0
	VMULPS Z14, Z0, Z0
	VFNMADD231PS Z2, Z15, Z0
	VMOVUPS Z0, K1, (DI)

rmsback512_done:
	VZEROUPPER
	RET

// func rmsBackAVX2(dx, dy, x, w []float32, r, k float32)
TEXT ·rmsBackAVX2(SB), NOSPLIT, $0-104
	MOVQ dx_base+0(FP), DI
	MOVQ dy_base+24(FP), SI
	MOVQ x_base+48(FP), DX
	MOVQ w_base+72(FP), R8
	MOVQ w_len+80(FP), CX
	VBROADCASTSS r+96(FP), Y14
	VBROADCASTSS k+100(FP), Y15

rmsback256_loop8:
	CMPQ CX, $8
	JLT  rmsback256_tail
	VMOVUPS (R8), Y0
	VMULPS (SI), Y0, Y0
	VMULPS Y14, Y0, Y0
	VFNMADD231PS (DX), Y15, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DX
	ADDQ $32, DI
	ADDQ $32, R8
	SUBQ $8, CX
	JMP  rmsback256_loop8

rmsback256_tail:
	TESTQ CX, CX
	JZ    rmsback256_done
	TAILMASK256
	VMASKMOVPS (R8), Y13, Y0
	VMASKMOVPS (SI), Y13, Y1
	VMASKMOVPS (DX), Y13, Y2
	VMULPS Y1, Y0, Y0
	VMULPS Y14, Y0, Y0
	VFNMADD231PS Y2, Y15, Y0
	VMASKMOVPS Y0, Y13, (DI)

rmsback256_done:
	VZEROUPPER
	RET

// func mulAccAVX512(dst, a, b []float32, s float32)
// dst += (a·s)·b
TEXT ·mulAccAVX512(SB), NOSPLIT, $0-76
	MOVQ dst_base+0(FP), DI
	MOVQ a_base+24(FP), SI
	MOVQ a_len+32(FP), CX
	MOVQ b_base+48(FP), DX
	VBROADCASTSS s+72(FP), Z15

mulacc512_loop16:
	CMPQ CX, $16
	JLT  mulacc512_tail
	VMULPS (SI), Z15, Z0
	VMOVUPS (DI), Z1
	VFMADD231PS (DX), Z0, Z1
	VMOVUPS Z1, (DI)
	ADDQ $64, SI
	ADDQ $64, DX
	ADDQ $64, DI
	SUBQ $16, CX
	JMP  mulacc512_loop16

mulacc512_tail:
	TESTQ CX, CX
	JZ    mulacc512_done
	TAILMASK512
	VMOVUPS.Z (SI), K1, Z0
	VMOVUPS.Z (DX), K1, Z2
	VMOVUPS.Z (DI), K1, Z1
	VMULPS Z15, Z0, Z0
	VFMADD231PS Z2, Z0, Z1
	VMOVUPS Z1, K1, (DI)

mulacc512_done:
	VZEROUPPER
	RET

// func mulAccAVX2(dst, a, b []float32, s float32)
TEXT ·mulAccAVX2(SB), NOSPLIT, $0-76
	MOVQ dst_base+0(FP), DI
	MOVQ a_base+24(FP), SI
	MOVQ a_len+32(FP), CX
	MOVQ b_base+48(FP), DX
	VBROADCASTSS s+72(FP), Y15

mulacc256_loop8:
	CMPQ CX, $8
	JLT  mulacc256_tail
	VMULPS (SI), Y15, Y0
	VMOVUPS (DI), Y1
	VFMADD231PS (DX), Y0, Y1
	VMOVUPS Y1, (DI)
	ADDQ $32, SI
	ADDQ $32, DX
	ADDQ $32, DI
	SUBQ $8, CX
	JMP  mulacc256_loop8

mulacc256_tail:
	TESTQ CX, CX
	JZ    mulacc256_done
	TAILMASK256
	VMASKMOVPS (SI), Y13, Y0
	VMASKMOVPS (DX), Y13, Y2
	VMASKMOVPS (DI), Y13, Y1
	VMULPS Y15, Y0, Y0
	VFMADD231PS Y2, Y0, Y1
	VMASKMOVPS Y1, Y13, (DI)

mulacc256_done:
	VZEROUPPER
	RET
