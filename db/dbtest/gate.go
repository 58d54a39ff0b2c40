package dbtest

import (
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"
)

// Gate is a TCP forwarder to Postgres that a test closes and opens, so
// that the clients behind it lose their database while the other users
// of the shared server (tests of other packages, running at the same
// time) do not: a test must never restart the shared server itself.
type Gate struct {
	t      testing.TB
	addr   string
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]bool
	wg     sync.WaitGroup
}

// NewGate listens on a loopback port that forwards to dsn's server, and
// returns it with dsn pointed through it.
func NewGate(t testing.TB, dsn string) (*Gate, string) {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	g := &Gate{t: t, target: u.Host, conns: map[net.Conn]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g.addr = ln.Addr().String()
	g.serve(ln)
	t.Cleanup(func() { g.Close(); g.wg.Wait() })
	u.Host = g.addr
	return g, u.String()
}

func (g *Gate) serve(ln net.Listener) {
	g.mu.Lock()
	g.ln = ln
	g.mu.Unlock()
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.DialTimeout("tcp", g.target, 5*time.Second)
			if err != nil {
				_ = c.Close()
				continue
			}
			g.mu.Lock()
			g.conns[c], g.conns[up] = true, true
			g.mu.Unlock()
			g.wg.Add(2)
			go func() { defer g.wg.Done(); _, _ = io.Copy(up, c); _ = up.Close() }()
			go func() { defer g.wg.Done(); _, _ = io.Copy(c, up); _ = c.Close() }()
		}
	}()
}

// Close stops accepting and cuts every connection through the gate.
func (g *Gate) Close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ln != nil {
		_ = g.ln.Close()
		g.ln = nil
	}
	for c := range g.conns {
		_ = c.Close()
	}
	g.conns = map[net.Conn]bool{}
}

// Open listens again on the gate's address.
func (g *Gate) Open() {
	g.t.Helper()
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", g.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		g.t.Fatalf("reopen the gate on %s: %v", g.addr, err)
	}
	g.serve(ln)
}
