//go:build !amd64 || noasm

package kernels

const haveAsm = false

// levels lists the implementations, indexed by feature.
var levels = [...]*gemmLevel{featGeneric: &genericLevel}

// sgemmAStride returns the A panel row stride the kernels expect.
func sgemmAStride() int { return aStride }
