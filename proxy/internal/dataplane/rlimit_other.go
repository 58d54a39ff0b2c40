//go:build !unix

package dataplane

// openFileLimit is 0 where the process has no open-file limit to read.
func openFileLimit() int { return 0 }
