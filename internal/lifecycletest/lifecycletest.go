// Package lifecycletest checks the lifecycle rule of Strangler's components
// in tests: New opens no listener and starts no goroutine, Run stops (and
// waits for) everything it started, and Close releases the files New took.
package lifecycletest

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// wait bounds how long a check waits for goroutines to end and files to
// close: generous, for loaded machines.
const wait = 60 * time.Second

// FreeAddr returns a loopback address with a port that was free a moment
// ago, for a component whose port must be known before it listens.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// PortFree fails the test unless addr can be bound: nothing listens on it.
func PortFree(t testing.TB, addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("%s is taken: %v", addr, err)
	}
	_ = ln.Close()
}

// Goroutines tells the goroutines that have started since Watch and whose
// stacks (frames or creator) mention one of a set of names, such as a
// package path or a library's.
type Goroutines struct {
	match  []string
	before map[string]bool
}

// Watch records the goroutines that match now, so that Started reports only
// later ones.
func Watch(match ...string) *Goroutines {
	g := &Goroutines{match: match, before: map[string]bool{}}
	for id := range g.matching() {
		g.before[id] = true
	}
	return g
}

// Started returns the stacks of the matching goroutines that were not there
// at Watch, the caller's own left out.
func (g *Goroutines) Started() []string {
	var out []string
	for id, stack := range g.matching() {
		if !g.before[id] {
			out = append(out, stack)
		}
	}
	return out
}

// None fails the test if a matching goroutine has started since Watch.
func (g *Goroutines) None(t testing.TB, after string) {
	t.Helper()
	if s := g.Started(); len(s) > 0 {
		t.Fatalf("%s: %d goroutine(s) started:\n%s", after, len(s), strings.Join(s, "\n\n"))
	}
}

// WaitNone waits until every matching goroutine started since Watch has
// ended, and fails the test if one is still there after a minute.
func (g *Goroutines) WaitNone(t testing.TB, after string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for len(g.Started()) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	g.None(t, after)
}

// matching returns the stacks of the matching goroutines by id, without the
// caller's.
func (g *Goroutines) matching() map[string]string {
	out := map[string]string{}
	for _, s := range stacks() {
		for _, m := range g.match {
			if strings.Contains(s, m) {
				id, _, _ := strings.Cut(strings.TrimPrefix(s, "goroutine "), " ")
				out[id] = s
				break
			}
		}
	}
	return out
}

// OpenFiles returns the files under dir that the process holds open. It
// skips the test where /proc/self/fd does not exist.
func OpenFiles(t testing.TB, dir string) []string {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd to list open files: %v", err)
	}
	dir, err = filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && strings.HasPrefix(target, dir+string(filepath.Separator)) {
			out = append(out, target)
		}
	}
	return out
}

// WaitFilesClosed waits until the process holds no file under dir open, and
// fails the test if it still does after a minute.
func WaitFilesClosed(t testing.TB, dir, after string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for len(OpenFiles(t, dir)) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if open := OpenFiles(t, dir); len(open) > 0 {
		t.Fatalf("%s: files still open: %v", after, open)
	}
}

// Component is what the rule applies to: built by New, run by Run until its
// context ends, released by Close, with the address Run listens on.
type Component interface {
	Run(ctx context.Context) error
	Close() error
	// Started is closed once Run listens; Addr is the bound address from
	// then on.
	Started() <-chan struct{}
	Addr() string
}

// Build builds a component that listens on addr and keeps its files under
// the directory it returns, which is new at each call.
type Build func(t *testing.T, addr string) (c Component, dir string)

// Check builds components with build and checks the rule: New opens no
// listener and starts no goroutine that mentions one of match; Run listens
// on the configured address, fails at once naming it when the port is in
// use (having released its files), refuses to run twice, and when its
// context ends returns nil with every goroutine it started ended, its files
// closed and its port free; Close is safe twice and after Run, and a Run
// after Close fails.
func Check(t *testing.T, build Build, match ...string) {
	t.Helper()
	addr := FreeAddr(t)
	g := Watch(match...)
	c, dir := build(t, addr)
	PortFree(t, addr)
	g.None(t, "after New")

	cancel, done := Start(t, c)
	defer cancel()
	if c.Addr() != addr {
		t.Fatalf("Addr = %s, want %s", c.Addr(), addr)
	}
	// A component that tells when it has prepared runs its background
	// parts from then on: the checks below then cover them too.
	if r, ok := c.(interface{ Ready() <-chan struct{} }); ok {
		select {
		case <-r.Ready():
		case err := <-done:
			t.Fatalf("Run = %v before it was ready", err)
		}
	}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial the running component: %v", err)
	}
	_ = conn.Close()

	other, otherDir := build(t, addr)
	if err := other.Run(context.Background()); err == nil || !strings.Contains(err.Error(), addr) {
		t.Fatalf("Run on a port in use = %v, want an error naming %s", err, addr)
	}
	WaitFilesClosed(t, otherDir, "after a Run that failed")

	Stop(t, c, cancel, done, g)
	WaitFilesClosed(t, dir, "after Run")
	PortFree(t, addr)

	unrun, unrunDir := build(t, addr)
	CloseTwice(t, unrun, "before Run")
	WaitFilesClosed(t, unrunDir, "after Close")
	if err := unrun.Run(context.Background()); err == nil {
		t.Fatal("Run after Close did not fail")
	}
	PortFree(t, addr)
}

// Start runs c until cancel and returns once it listens; done gives Run's
// result. It fails the test if Run returns before it listens.
func Start(t testing.TB, c Component) (cancel context.CancelFunc, done <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- c.Run(ctx) }()
	select {
	case <-c.Started():
		return cancel, ran
	case err := <-ran:
		cancel()
		t.Fatalf("Run = %v before it listened", err)
		return nil, nil
	}
}

// Runner is a component with Run and Close, whether or not it listens.
type Runner interface {
	Run(ctx context.Context) error
	Close() error
}

// Stop checks the end of a running component's lifecycle: a second Run
// fails; cancel (which ends Run's context) makes Run, whose result done
// gives, return nil with every goroutine that g watches ended; Close is
// then safe to call twice.
func Stop(t testing.TB, c Runner, cancel context.CancelFunc, done <-chan error, g *Goroutines) {
	t.Helper()
	if err := c.Run(context.Background()); err == nil {
		t.Fatal("a second Run did not fail")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	g.WaitNone(t, "after Run")
	CloseTwice(t, c, "after Run")
}

// CloseTwice closes c twice, failing the test unless both return nil.
func CloseTwice(t testing.TB, c io.Closer, when string) {
	t.Helper()
	for i := range 2 {
		if err := c.Close(); err != nil {
			t.Fatalf("Close #%d %s = %v", i+1, when, err)
		}
	}
}

// Buffer is an output that a running component's goroutines write while
// the test reads it, such as a command's stdout or a server's log.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// Bytes returns a copy of what was written so far.
func (b *Buffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

// String returns what was written so far.
func (b *Buffer) String() string { return string(b.Bytes()) }

// Count is how many goroutines, other than the caller, have fn in their
// stack: a function or method name as the runtime prints it, such as
// "database/sql.(*DB).connectionOpener".
func Count(fn string) int {
	n := 0
	for _, s := range stacks() {
		if strings.Contains(s, fn) {
			n++
		}
	}
	return n
}

// stacks returns the stack of every goroutine but the caller's.
func stacks() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	// The first stack is the caller's own.
	return strings.Split(string(buf), "\n\n")[1:]
}
