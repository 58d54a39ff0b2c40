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
	r, w rawDir
}

// rawDir is one direction's call: the buffer, what was done with it, and
// the function that RawConn calls with the descriptor, made once so that a
// call allocates nothing.
type rawDir struct {
	mu    sync.Mutex
	buf   []byte
	n     int
	errno syscall.Errno
	f     func(fd uintptr) bool
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
	r.r.f = r.r.readFD
	r.w.f = r.w.writeFD
	return r
}

// readFD makes one read of the socket; it returns false to wait for it to
// become readable.
func (d *rawDir) readFD(fd uintptr) bool {
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&d.buf[0])), uintptr(len(d.buf)))
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		case 0:
			d.n = int(n)
		default:
			d.errno = e
		}
		return true
	}
}

// writeFD writes what is left of the buffer; it returns false to wait for
// the socket to take more.
func (d *rawDir) writeFD(fd uintptr) bool {
	for d.n < len(d.buf) {
		rest := d.buf[d.n:]
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&rest[0])), uintptr(len(rest)))
		switch e {
		case 0:
			d.n += int(n)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			d.errno = e
			return true
		}
	}
	return true
}

// do makes a read, or a write, of b, and returns its count and error as
// net.Conn's Read or Write does, the end of the stream aside.
func (r *rawIO) do(write bool, b []byte) (int, error) {
	d, op := &r.r, "read"
	if write {
		d, op = &r.w, "write"
	}
	d.mu.Lock()
	d.buf, d.n, d.errno = b, 0, 0
	var err error
	if write {
		err = r.rc.Write(d.f)
	} else {
		err = r.rc.Read(d.f)
	}
	n, errno := d.n, d.errno
	d.buf = nil
	d.mu.Unlock()
	switch {
	case err != nil:
		return n, r.opError(op, err)
	case errno != 0:
		return n, r.opError(op, os.NewSyscallError(op, errno))
	}
	return n, nil
}

// Read reads as net.Conn's Read does: io.EOF at the end of the stream, and
// its errors are *net.OpError.
func (r *rawIO) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	n, err := r.do(false, b)
	if n == 0 && err == nil {
		return 0, io.EOF
	}
	return n, err
}

// Write writes all of b, as net.Conn's Write does.
func (r *rawIO) Write(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	return r.do(true, b)
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
