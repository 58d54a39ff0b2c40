//go:build !linux

package dataplane

import "net"

// rawIO is the raw socket I/O of rawio_linux.go; elsewhere connections
// keep net.Conn's Read and Write.
type rawIO struct{ net.Conn }

// newRawIO returns nil: there is no raw I/O on this system.
func newRawIO(net.Conn) *rawIO { return nil }
