//go:build linux

package dataplane

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// rawIO reads and writes a TCP connection's socket with raw system calls
// instead of the net package's. The socket is non-blocking, so a read or
// write never waits in the kernel: when it would, the call returns EAGAIN
// and the goroutine waits in the runtime's poller as net.Conn's would,
// deadlines and Close included. What a raw call skips is the runtime's
// entry to and exit from a system call, which, when every P has been idle,
// also wakes the runtime's monitor thread (sysmon) from its deep sleep; it
// then polls every 20 µs until the process is idle again. A proxy mostly
// waits, for its clients and for its backends, so each request made it
// idle and woke it up twice, and those wake-ups cost a third of its CPU
// on the order path (bench/monolith).
//
// One read and one write may run at a time, as on a net.Conn; each
// direction's lock keeps the fields of its call.
type rawIO struct {
	conn *net.TCPConn
	rc   syscall.RawConn

	rmu   sync.Mutex
	rbuf  []byte
	rn    int
	rerr  syscall.Errno
	readF func(fd uintptr) bool

	wmu    sync.Mutex
	wbuf   []byte
	wn     int
	werr   syscall.Errno
	writeF func(fd uintptr) bool
}

// newRawIO returns the raw reader and writer of c, or nil when c is not a
// TCP connection, which then keeps its own Read and Write.
func newRawIO(c net.Conn) *rawIO {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	r := &rawIO{conn: tc, rc: rc}
	r.readF = r.readFD
	r.writeF = r.writeFD
	return r
}

// readFD makes one read of the socket; it returns false to wait for it to
// become readable.
func (r *rawIO) readFD(fd uintptr) bool {
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&r.rbuf[0])), uintptr(len(r.rbuf)))
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		r.rn, r.rerr = int(n), e
		if e != 0 {
			r.rn = 0
		}
		return true
	}
}

// writeFD writes what is left of the buffer; it returns false to wait for
// the socket to take more.
func (r *rawIO) writeFD(fd uintptr) bool {
	for r.wn < len(r.wbuf) {
		rest := r.wbuf[r.wn:]
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&rest[0])), uintptr(len(rest)))
		switch e {
		case 0:
			r.wn += int(n)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			r.werr = e
			return true
		}
	}
	return true
}

// Read reads as net.Conn's Read does: io.EOF at the end of the stream, and
// its errors are *net.OpError.
func (r *rawIO) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	r.rmu.Lock()
	r.rbuf, r.rn, r.rerr = b, 0, 0
	err := r.rc.Read(r.readF)
	n, errno := r.rn, r.rerr
	r.rbuf = nil
	r.rmu.Unlock()
	switch {
	case err != nil:
		return 0, r.opError("read", err)
	case errno != 0:
		return 0, r.opError("read", os.NewSyscallError("read", errno))
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// Write writes all of b, as net.Conn's Write does.
func (r *rawIO) Write(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	r.wmu.Lock()
	r.wbuf, r.wn, r.werr = b, 0, 0
	err := r.rc.Write(r.writeF)
	n, errno := r.wn, r.werr
	r.wbuf = nil
	r.wmu.Unlock()
	switch {
	case err != nil:
		return n, r.opError("write", err)
	case errno != 0:
		return n, r.opError("write", os.NewSyscallError("write", errno))
	}
	return n, nil
}

// opError is err as net.Conn's Read or Write reports it. RawConn's own
// errors (the connection closed, a deadline passed) come as *net.OpError
// already, whose operation is renamed from raw-read or raw-write.
func (r *rawIO) opError(op string, err error) error {
	if oe, ok := err.(*net.OpError); ok {
		oe.Op = op
		return oe
	}
	return &net.OpError{Op: op, Net: "tcp", Source: r.conn.LocalAddr(), Addr: r.conn.RemoteAddr(), Err: err}
}
