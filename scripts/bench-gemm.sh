#!/usr/bin/env bash
# Times float32 C = A·Bᵀ with qtool's kernels (avx512, avx2, generic; and MatMulT with B
# stored as f32, f16, bf16, NF4, int8, Q8_0, Q4_0) against
# OpenBLAS (Debian's libopenblas-dev, through the benchmark-only cgo module
# kernels/internal/blasbench) on the same inputs in one process, alternating
# engines, and prints medians and ratios. Arguments go to blasbench
# (-shapes, -rounds, -levels, ...).
#
# OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, which this machine's environment
# may set to steer old OpenBLAS builds off buggy kernels, are unset for the
# benchmark so OpenBLAS picks its own kernel; the first line printed names
# it. When this OpenBLAS does not know the CPU it falls back to a generic
# SSE3 kernel (Prescott); then, on an AVX-512 machine, the comparison is
# run again with OPENBLAS_CORETYPE=${BENCH_OPENBLAS_CORETYPE:-SkylakeX}, its
# best AVX-512 kernel (results are checked against qtool's either way).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

if ! dpkg -s libopenblas-dev >/dev/null 2>&1 || ! command -v gcc >/dev/null; then
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libopenblas-dev gcc
fi

bin=$(mktemp -d)/blasbench
trap 'rm -rf "$(dirname "$bin")"' EXIT
# -mod=mod: fetch sums for whatever the kernels package imports by now.
(cd kernels/internal/blasbench && CGO_ENABLED=1 go build -mod=mod -o "$bin" .)

out=$(mktemp)
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=2 "$bin" "$@" | tee "$out"
core=$(sed -n 's/^OpenBLAS: core \([^,]*\),.*/\1/p' "$out")
rm -f "$out"
case "$core" in
Prescott | Core2 | Penryn | Dunnington | Nehalem | Sandybridge | Katmai | Coppermine | Northwood | Banias | Atom)
	if grep -qw avx512f /proc/cpuinfo; then
		echo
		echo "OpenBLAS fell back to $core on this AVX-512 CPU; again with its AVX-512 kernel:"
		env -u OPENBLAS_L2_SIZE OPENBLAS_CORETYPE="${BENCH_OPENBLAS_CORETYPE:-SkylakeX}" OPENBLAS_NUM_THREADS=2 "$bin" "$@"
	fi
	;;
esac
