//go:build !linux && !noasm

package kernels

// amxRequestPerm: the AMX path is Linux-only for now.
func amxRequestPerm() bool { return false }
