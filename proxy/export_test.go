package proxy

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/internal/chaostest"
	"github.com/stranglerkit/strangler/proxy/api"
)

// PauseShadow holds the shadow workers until resume is called, so that a
// test can fill the queue.
func (p *Proxy) PauseShadow() (resume func()) {
	p.shadow.pause.Lock()
	return p.shadow.pause.Unlock
}

// RouteStateSizes is how many modules have a fallback total and how many
// routes have shadow results, for tests that check that removed ones go.
func (p *Proxy) RouteStateSizes() (fallbackModules, shadowRoutes int) {
	p.fbTotals.Range(func(any, any) bool { fallbackModules++; return true })
	p.shadow.mu.Lock()
	defer p.shadow.mu.Unlock()
	return fallbackModules, len(p.shadow.routes)
}

// MountTmpfs mounts a tmpfs of size (such as "256k") on a new temp dir
// for the test and unmounts it when the test ends. Without root it skips
// the test as an adversarial case that needs a part the machine lacks.
func MountTmpfs(t testing.TB, tried, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		chaostest.Skipf(t, tried, "mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		chaostest.Skipf(t, tried, "mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// FillDisk writes a file in dir until the disk refuses, then frees leave
// bytes of it, and returns the file's path.
func FillDisk(t testing.TB, dir string, leave int64) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	var size int64
	for i := 0; i < 1<<16; i++ {
		n, err := f.Write(chunk)
		size += int64(n)
		if err != nil {
			break
		}
	}
	if err := f.Truncate(max(size-leave, 0)); err != nil {
		t.Fatal(err)
	}
	return path
}

// ShadowQueueLen is how many copies wait.
func (p *Proxy) ShadowQueueLen() int { return int(p.shadow.queued.Load()) }

// ShadowStats is a route's shadow results, readable after Run returns.
func (p *Proxy) ShadowStats(route string) api.ShadowStats {
	p.shadow.mu.Lock()
	sr := p.shadow.routes[route]
	p.shadow.mu.Unlock()
	if sr == nil {
		return api.ShadowStats{}
	}
	return sr.stats()
}

// ShadowRoutes lists the routes the shadower keeps results for, sorted.
func (p *Proxy) ShadowRoutes() []string {
	p.shadow.mu.Lock()
	defer p.shadow.mu.Unlock()
	out := make([]string, 0, len(p.shadow.routes))
	for id := range p.shadow.routes {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// ShadowGoroutines counts the goroutines running the shadower's code, of
// any proxy in the process.
func (p *Proxy) ShadowGoroutines() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "proxy.(*shadower)") {
			n++
		}
	}
	return n
}

// CountBackendDials counts the connections to backends dialled from now
// on, until restore; call it before the proxy starts and restore after it
// stopped.
func CountBackendDials() (count func() int64, restore func()) {
	var n atomic.Int64
	prev := dialTCP
	dialTCP = func(addr string, timeout time.Duration) (net.Conn, error) {
		n.Add(1)
		return prev(addr, timeout)
	}
	return n.Load, func() { dialTCP = prev }
}
