// Benchmark-only comparison of qtool's kernels with OpenBLAS (cgo). A
// separate module so that cgo and libopenblas never reach the shipped
// binary; run it with scripts/bench-gemm.sh.
module github.com/qtool-dev/qtool/kernels/internal/blasbench

go 1.26.8

require github.com/qtool-dev/qtool v0.0.0-00010101000000-000000000000

require (
	github.com/x448/float16 v0.8.4 // indirect
	golang.org/x/sys v0.50.0 // indirect
)

replace github.com/qtool-dev/qtool => ../../..
