//go:build race

package fuse

// Under -race the checker's default run is shorter, to keep make test's
// race pass of this package near a minute on a 2-core machine.
func init() { defaultFsxOps = 1500 }
