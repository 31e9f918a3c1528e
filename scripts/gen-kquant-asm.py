#!/usr/bin/env python3
# Generates kernels/gemv_kquant_amd64.s, the fused skinny K-quant kernels
# (unrolled AVX-512 code: four rows per group, per-sub-block tables).
#
#   python3 scripts/gen-kquant-asm.py [OUT]   # default: kernels/gemv_kquant_amd64.s
#
# Edit this script, not the .s file, then run it, gofmt nothing (asm), and
# `go test ./kernels/ -run KQuant`. PF4/PF6 (environment) pick the byte
# offsets of each block the kernels prefetch for the next row group.
import os
PF4 = eval(os.environ.get("PF4", "[0, 64, 128]"))
PF6 = eval(os.environ.get("PF6", "[0, 64, 128, 192]"))
out = []
def e(s=""): out.append(s)
def ins(op, args=""):
    out.append("\t%-15s %s" % (op, args) if args else "\t" + op)

e("//go:build !noasm")
e()
e('#include "textflag.h"')
e()
e("""// Fused dot kernels of the skinny product against K-quant weights
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

// kqiota<>: float32 0…31 (Q4_K/Q5_K table arguments).""")
for i in range(32):
    e("DATA kqiota<>+%d(SB)/4, $%s" % (4*i, "0x%08x" % __import__("struct").unpack("<I", __import__("struct").pack("<f", float(i)))[0]))
e("GLOBL kqiota<>(SB), RODATA|NOPTR, $128")
e()
e("// kqscidx<>: VPERMPS indices spreading (d, dmin) to d×8, dmin×8.")
for i in range(16):
    e("DATA kqscidx<>+%d(SB)/4, $%d" % (4*i, 0 if i < 8 else 1))
e("GLOBL kqscidx<>(SB), RODATA|NOPTR, $64")
e()
e("// kq6sl<>, kq6sr<>: VPSLLVW/VPSRLVW word counts that bring Q6_K's qh bits")
e("// 2c, 2c+1 to bits 4, 5 of each byte: c = 0 and 1 (left 4, 2), c = 2 and 3")
e("// (right 0, 2), one count per 256-bit lane.")
for i in range(32):
    e("DATA kq6sl<>+%d(SB)/2, $%d" % (2*i, 4 if i < 16 else 2))
e("GLOBL kq6sl<>(SB), RODATA|NOPTR, $64")
for i in range(32):
    e("DATA kq6sr<>+%d(SB)/2, $%d" % (2*i, 0 if i < 16 else 2))
e("GLOBL kq6sr<>(SB), RODATA|NOPTR, $64")
e()
e("DATA kqbytes<>+0(SB)/4, $0x0f0f0f0f // low nibbles")
e("DATA kqbytes<>+4(SB)/4, $0x30303030 // Q6_K high bits, in place")
e("DATA kqbytes<>+8(SB)/4, $0x20202020 // Q6_K zero point 32")
e("DATA kqbytes<>+12(SB)/4, $0x0000000f // Q5_K: an index's low nibble")
e("GLOBL kqbytes<>(SB), RODATA|NOPTR, $16")
e()

ROWS = ["R8", "R9", "R10", "R11"]

def prologue(name, frame):
    e("// func %s(out *float32, w *byte, ldw, ng int, a *float32, nb int)" % name)
    e("TEXT ·%s(SB), NOSPLIT, $%d-48" % (name, frame))
    ins("MOVQ", "w+8(FP), R13")
    ins("MOVQ", "ldw+16(FP), R14")
    ins("LEAQ", "(R14*4), R15")

def group_start(label):
    e()
    e(label + "_group:")
    ins("MOVQ", "R13, R8")
    ins("LEAQ", "(R13)(R14*1), R9")
    ins("LEAQ", "(R9)(R14*1), R10")
    ins("LEAQ", "(R10)(R14*1), R11")
    ins("MOVQ", "a+32(FP), R12")
    ins("MOVQ", "nb+40(FP), CX")
    for i in range(8):
        ins("VXORPS", "Z%d, Z%d, Z%d" % (i, i, i))
    e()
    e(label + "_block:")

def prefetch(offs):
    for r in ROWS:
        for o in offs:
            ins("PREFETCHT1", "%s(%s)(R15*1)" % (o if o else "", r))

def epilogue(label, bb):
    for r in ROWS:
        ins("ADDQ", "$%d, %s" % (bb, r))
    ins("ADDQ", "$1024, R12")
    ins("DECQ", "CX")
    ins("JNZ", label + "_block")
    e()
    e("\t// The lanes of each row, added to out.")
    for i in range(4):
        ins("VADDPS", "Z%d, Z%d, Z%d" % (i + 4, i, i))
    for i in range(4):
        ins("VEXTRACTF64X4", "$1, Z%d, Y8" % i)
        ins("VADDPS", "Y8, Y%d, Y%d" % (i, i))
        ins("VEXTRACTF128", "$1, Y%d, X8" % i)
        ins("VADDPS", "X8, X%d, X%d" % (i, i))
    ins("VHADDPS", "X1, X0, X0")
    ins("VHADDPS", "X3, X2, X2")
    ins("VHADDPS", "X2, X0, X0")
    ins("MOVQ", "out+0(FP), SI")
    ins("VADDPS", "(SI), X0, X0")
    ins("VMOVUPS", "X0, (SI)")
    ins("ADDQ", "$16, SI")
    ins("MOVQ", "SI, out+0(FP)")
    ins("ADDQ", "R15, R13")
    ins("DECQ", "ng+24(FP)")
    ins("JNZ", label + "_group")
    ins("VZEROUPPER")
    ins("RET")
    e()

def kscales(r, off, t0, t1):
    # d·sc_j, dmin·m_j of row r's block at off(BX), off+32(BX); uses AX DX SI DI.
    z0, z1 = "Z%d" % t0, "Z%d" % t1
    x0, x1 = "X%d" % t0, "X%d" % t1
    ins("MOVL", "4(%s), AX" % r)
    ins("MOVL", "8(%s), DX" % r)
    ins("MOVL", "12(%s), SI" % r)
    ins("MOVL", "AX, DI")
    ins("ANDL", "$0x3f3f3f3f, DI")
    ins("VMOVD", "DI, %s" % x0)
    ins("MOVL", "SI, DI")
    ins("ANDL", "$0x0f0f0f0f, DI")
    ins("SHRL", "$2, AX")
    ins("ANDL", "$0x30303030, AX")
    ins("ORL", "AX, DI")
    ins("VPINSRD", "$1, DI, %s, %s" % (x0, x0))
    ins("MOVL", "DX, DI")
    ins("ANDL", "$0x3f3f3f3f, DI")
    ins("VPINSRD", "$2, DI, %s, %s" % (x0, x0))
    ins("SHRL", "$4, SI")
    ins("ANDL", "$0x0f0f0f0f, SI")
    ins("SHRL", "$2, DX")
    ins("ANDL", "$0x30303030, DX")
    ins("ORL", "DX, SI")
    ins("VPINSRD", "$3, SI, %s, %s" % (x0, x0))
    ins("VPMOVZXBD", "%s, %s" % (x0, z0))
    ins("VCVTDQ2PS", "%s, %s" % (z0, z0))
    ins("VMOVD", "(%s), %s" % (r, x1))
    ins("VCVTPH2PS", "%s, %s" % (x1, x1))
    ins("VPERMPS", "%s, Z30, %s" % (z1, z1))
    ins("VMULPS", "%s, %s, %s" % (z1, z0, z0))
    ins("VMOVUPS", "%s, %d(BX)" % (z0, off))

# ---------------- Q4_K ----------------
e("""// Q4_K, registers: R8…R11 the group's four rows at the current block,
// R12 the activations there, R13 the group's first row, R14 ldw, R15 4·ldw,
// CX blocks left, BX the rows' scales (row t's d·sc at 64t, dmin·m at
// 64t+32). Z0…Z7 the accumulators (row t in Zt, Zt+4), Z8…Z11 the 64
// activations of a pair of sub-blocks, Z12, Z13 the pair's tables, Z14…Z17
// the codes, Z30 kqscidx, Z31 0…15.""")
prologue("q4KDotAVX512", 256)
ins("LEAQ", "sc-256(SP), BX")
ins("VMOVUPS", "kqiota<>(SB), Z31")
ins("VMOVDQU32", "kqscidx<>(SB), Z30")
group_start("q4kd")
prefetch(PF4)
for t, r in enumerate(ROWS):
    kscales(r, 64 * t, 12, 13)
for g in range(4):
    e("\t// Sub-blocks %d and %d: qs bytes %d…%d." % (2 * g, 2 * g + 1, 32 * g, 32 * g + 31))
    for i in range(4):
        ins("VMOVUPS", "%d(R12), Z%d" % (256 * g + 64 * i, 8 + i))
    for t, r in enumerate(ROWS):
        so = 64 * t
        ins("VMULPS.BCST", "%d(BX), Z31, Z12" % (so + 8 * g))
        ins("VSUBPS.BCST", "%d(BX), Z12, Z12" % (so + 32 + 8 * g))
        ins("VMULPS.BCST", "%d(BX), Z31, Z13" % (so + 8 * g + 4))
        ins("VSUBPS.BCST", "%d(BX), Z13, Z13" % (so + 32 + 8 * g + 4))
        ins("VPMOVZXBD", "%d(%s), Z14" % (16 + 32 * g, r))
        ins("VPMOVZXBD", "%d(%s), Z15" % (32 + 32 * g, r))
        ins("VPSRLD", "$4, Z14, Z16")
        ins("VPSRLD", "$4, Z15, Z17")
        ins("VPERMPS", "Z12, Z14, Z14")
        ins("VPERMPS", "Z12, Z15, Z15")
        ins("VPERMPS", "Z13, Z16, Z16")
        ins("VPERMPS", "Z13, Z17, Z17")
        ins("VFMADD231PS", "Z8, Z14, Z%d" % t)
        ins("VFMADD231PS", "Z9, Z15, Z%d" % (t + 4))
        ins("VFMADD231PS", "Z10, Z16, Z%d" % t)
        ins("VFMADD231PS", "Z11, Z17, Z%d" % (t + 4))
epilogue("q4kd", 144)

# ---------------- Q5_K ----------------
e("""// Q5_K, registers as Q4_K's, except: one row at a time, its qh widened to
// dwords in Z8, Z9 (bytes 0…15, 16…31), the tables of a pair of sub-blocks
// in Z10, Z11 (codes 0…15, 16…31 of the first) and Z12, Z13, its codes in
// Z14, Z15, indices in Z16…Z19, Z29 15 per dword, Z28 16…31; the
// activations are memory operands.""")
prologue("q5KDotAVX512", 256)
ins("LEAQ", "sc-256(SP), BX")
ins("VMOVUPS", "kqiota<>(SB), Z31")
ins("VMOVUPS", "kqiota<>+64(SB), Z28")
ins("VMOVDQU32", "kqscidx<>(SB), Z30")
ins("VPBROADCASTD", "kqbytes<>+12(SB), Z29")
group_start("q5kd")
prefetch(PF4)
for t, r in enumerate(ROWS):
    kscales(r, 64 * t, 20, 21)
for t, r in enumerate(ROWS):
    so = 64 * t
    e("\t// Row %d." % t)
    ins("VPMOVZXBD", "16(%s), Z8" % r)
    ins("VPMOVZXBD", "32(%s), Z9" % r)
    for g in range(4):
        for j in range(2):  # sub-block 2g+j
            ds, dm = so + 4 * (2 * g + j), so + 32 + 4 * (2 * g + j)
            ins("VMULPS.BCST", "%d(BX), Z31, Z%d" % (ds, 10 + 2 * j))
            ins("VSUBPS.BCST", "%d(BX), Z%d, Z%d" % (dm, 10 + 2 * j, 10 + 2 * j))
            ins("VMULPS.BCST", "%d(BX), Z28, Z%d" % (ds, 11 + 2 * j))
            ins("VSUBPS.BCST", "%d(BX), Z%d, Z%d" % (dm, 11 + 2 * j, 11 + 2 * j))
        ins("VPMOVZXBD", "%d(%s), Z14" % (48 + 32 * g, r))
        ins("VPMOVZXBD", "%d(%s), Z15" % (64 + 32 * g, r))
        # fifth bits: bit 2g (low nibbles), 2g+1 (high nibbles) of qh to bit 4
        for j in range(2):
            s = 4 - (2 * g + j)
            for h in range(2):
                dst = 16 + 2 * j + h
                src = 8 + h
                if s > 0:
                    ins("VPSLLD", "$%d, Z%d, Z%d" % (s, src, dst))
                elif s < 0:
                    ins("VPSRLD", "$%d, Z%d, Z%d" % (-s, src, dst))
                else:
                    ins("VMOVDQA32", "Z%d, Z%d" % (src, dst))
        ins("VPSRLD", "$4, Z14, Z22")
        ins("VPSRLD", "$4, Z15, Z23")
        # index = code nibble (bits 0-3) | qh bit at bit 4: select by Z29
        ins("VPTERNLOGD", "$0xd8, Z29, Z14, Z16")
        ins("VPTERNLOGD", "$0xd8, Z29, Z15, Z17")
        ins("VPTERNLOGD", "$0xd8, Z29, Z22, Z18")
        ins("VPTERNLOGD", "$0xd8, Z29, Z23, Z19")
        ins("VPERMI2PS", "Z11, Z10, Z16")
        ins("VPERMI2PS", "Z11, Z10, Z17")
        ins("VPERMI2PS", "Z13, Z12, Z18")
        ins("VPERMI2PS", "Z13, Z12, Z19")
        ins("VFMADD231PS", "%d(R12), Z16, Z%d" % (256 * g, t))
        ins("VFMADD231PS", "%d(R12), Z17, Z%d" % (256 * g + 64, t + 4))
        ins("VFMADD231PS", "%d(R12), Z18, Z%d" % (256 * g + 128, t))
        ins("VFMADD231PS", "%d(R12), Z19, Z%d" % (256 * g + 192, t + 4))
epilogue("q5kd", 176)

# ---------------- Q6_K ----------------
e("""// Q6_K, registers as Q4_K's, except: the block's 256 activations in
// Z16…Z31, one row at a time, BX (64-byte aligned) its codes minus 32 in
// value order at 0…255 and d·scales[g] at 256…319, Z8…Z12 temporaries,
// Z13 0x0f, Z14 0x30, Z15 0x20 per byte.""")
prologue("q6KDotAVX512", 384)
ins("LEAQ", "buf-384(SP), BX")
ins("ADDQ", "$63, BX")
ins("ANDQ", "$~63, BX")
ins("VPBROADCASTD", "kqbytes<>+0(SB), Z13")
ins("VPBROADCASTD", "kqbytes<>+4(SB), Z14")
ins("VPBROADCASTD", "kqbytes<>+8(SB), Z15")
group_start("q6kd")
prefetch(PF6)
for i in range(16):
    ins("VMOVUPS", "%d(R12), Z%d" % (64 * i, 16 + i))
for t, r in enumerate(ROWS):
    e("\t// Row %d." % t)
    ins("VPMOVSXBD", "192(%s), Z8" % r)
    ins("VCVTDQ2PS", "Z8, Z8")
    ins("MOVWLZX", "208(%s), AX" % r)
    ins("VMOVD", "AX, X9")
    ins("VCVTPH2PS", "X9, X9")
    ins("VBROADCASTSS", "X9, Z9")
    ins("VMULPS", "Z9, Z8, Z8")
    ins("VMOVUPS", "Z8, 256(BX)")
    for h in range(2):
        ins("VMOVDQU64", "%d(%s), Z8" % (64 * h, r))
        ins("VBROADCASTI64X4", "%d(%s), Z9" % (128 + 32 * h, r))
        ins("VPSLLVW", "kq6sl<>(SB), Z9, Z10")
        ins("VPSRLVW", "kq6sr<>(SB), Z9, Z11")
        ins("VPSRLW", "$4, Z8, Z9")
        ins("VPANDD", "Z14, Z10, Z10")
        ins("VPANDD", "Z14, Z11, Z11")
        ins("VPTERNLOGD", "$0xf8, Z13, Z8, Z10")
        ins("VPTERNLOGD", "$0xf8, Z13, Z9, Z11")
        ins("VPSUBB", "Z15, Z10, Z10")
        ins("VPSUBB", "Z15, Z11, Z11")
        ins("VMOVDQU64", "Z10, %d(BX)" % (128 * h))
        ins("VMOVDQU64", "Z11, %d(BX)" % (128 * h + 64))
    for i in range(16):
        z = "Z%d" % (8 + i % 4)
        ins("VPMOVSXBD", "%d(BX), %s" % (16 * i, z))
        ins("VCVTDQ2PS", "%s, %s" % (z, z))
        ins("VMULPS.BCST", "%d(BX), %s, %s" % (256 + 4 * i, z, z))
        ins("VFMADD231PS", "Z%d, %s, Z%d" % (16 + i, z, t + 4 * (i % 2)))
epilogue("q6kd", 210)

import sys
path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "kernels", "gemv_kquant_amd64.s")
with open(path, "w") as f:
    f.write("\n".join(out))
