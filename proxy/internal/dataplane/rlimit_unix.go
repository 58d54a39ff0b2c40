//go:build unix

package dataplane

import "syscall"

// openFileLimit is the process's soft limit on open files, or 0 if it
// cannot be read.
func openFileLimit() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<30 {
		return 0
	}
	return int(rl.Cur)
}
