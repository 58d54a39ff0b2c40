package proxy

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stranglerkit/strangler/internal/chaostest"
)

// PauseShadow holds the shadow workers until resume is called, so that a
// test can fill the queue.
func (p *Proxy) PauseShadow() (resume func()) {
	p.shadow.pause.Lock()
	return p.shadow.pause.Unlock
}

// ShadowQueueLen is how many copies wait.
func (p *Proxy) ShadowQueueLen() int { return len(p.shadow.queue) }

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
