package kernels

// SetFusedDot enables (the default) or disables the fused skinny kernels
// of the fusedDotter weight types, and returns a function that restores
// the previous setting; benchmarks use it to time the decoding path
// against them in one process.
func SetFusedDot(enabled bool) (restore func()) {
	prev := fusedOff.Swap(!enabled)
	return func() { fusedOff.Store(prev) }
}
