package kernels

import (
	"sync/atomic"

	"golang.org/x/sys/cpu"
)

// feature is an instruction-set level; a higher level implies the lower ones.
type feature int32

const (
	// featGeneric is pure Go.
	featGeneric feature = iota
	// featAVX2 needs AVX2, FMA and F16C (Haswell and later, Zen).
	featAVX2
	// featAVX512 additionally needs AVX-512 F, CD, BW, DQ and VL (the
	// x86-64-v4 set: Skylake-X and later, Zen 4).
	featAVX512
)

var featureNames = [...]string{featGeneric: "generic", featAVX2: "avx2", featAVX512: "avx512"}

func (f feature) String() string { return featureNames[f] }

// CPU capabilities beyond the levels, for kernels that can use them at a
// given level (always false where the level cannot be reached).
var (
	// hasAVX512BF16 reports VDPBF16PS and VCVTNE2PS2BF16 (Cooper Lake,
	// Sapphire Rapids, Zen 4); meaningful only at featAVX512.
	hasAVX512BF16 bool
	// hasAVX512VNNI reports VPDPBUSD (Cascade Lake, Ice Lake, Zen 4);
	// meaningful only at featAVX512.
	hasAVX512VNNI bool
)

// detected is the best level both this CPU and this build support; active
// is the one in use (at most detected, lowered by SetFeatures).
var (
	detected feature
	active   atomic.Int32
)

func init() {
	detected = featGeneric
	x := &cpu.X86
	if haveAsm && x.HasAVX2 && x.HasFMA && x.HasF16C {
		detected = featAVX2
		if x.HasAVX512F && x.HasAVX512CD && x.HasAVX512BW && x.HasAVX512DQ && x.HasAVX512VL {
			detected = featAVX512
			hasAVX512BF16 = x.HasAVX512BF16
			hasAVX512VNNI = x.HasAVX512VNNI
		}
	}
	active.Store(int32(detected))
}

// level returns the instruction-set level kernels should use now.
func level() feature { return feature(active.Load()) }

// Features reports the instruction-set level the kernels use: "avx512",
// "avx2" or "generic". It is the level [Detected] found unless
// [SetFeatures] lowered it.
func Features() string { return level().String() }

// Detected reports the best level this CPU and this build support.
func Detected() string { return detected.String() }

// SetFeatures makes the kernels use the given level ("avx512", "avx2" or
// "generic"), or the detected one where that is lower, and returns a
// function that restores the previous level. It is meant for tests and
// benchmarks: calls running concurrently with it may use either level.
// An unknown name panics.
func SetFeatures(name string) (restore func()) {
	f := feature(-1)
	for i, n := range featureNames {
		if n == name {
			f = feature(i)
		}
	}
	if f < 0 {
		panic("kernels: unknown feature level " + name)
	}
	f = min(f, detected)
	prev := active.Swap(int32(f))
	return func() { active.Store(prev) }
}
