//go:build !cgo || !seccomp

package process

const seccompBuilt = false
