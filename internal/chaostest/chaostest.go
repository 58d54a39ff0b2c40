// Package chaostest is the reporting side of Strangler's adversarial suite:
// the tests named TestChaos* that attack the front door as a hostile client
// or a failing machine would. Each case reports what it tried, what it
// expected and what it saw, so that `make chaos` reads as a record of the
// attacks and their outcomes rather than a list of passed test names.
package chaostest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stranglerkit/strangler/internal/lifecycletest"
)

// Report logs one attack's outcome, and fails t when ok is false. Tried says
// what was done, expected what a sound front door answers, and saw what it
// answered.
func Report(t testing.TB, ok bool, tried, expected, saw string) {
	t.Helper()
	verdict := "ok"
	if !ok {
		verdict = "FAILED"
	}
	line := fmt.Sprintf("chaos %s: tried %s; expected %s; saw %s", verdict, tried, expected, saw)
	if ok {
		t.Log(line)
		return
	}
	t.Error(line)
}

// Skipf skips t with the reason that the attack needs a part the machine
// lacks (root for a tmpfs, prlimit), so that the skip is reported and never
// mistaken for a pass.
func Skipf(t testing.TB, tried, format string, args ...any) {
	t.Helper()
	t.Skipf("chaos skipped: tried %s; %s", tried, fmt.Sprintf(format, args...))
}

// MountTmpfs mounts a tmpfs of size (such as "256k") on a new temp dir
// for the test and unmounts it when the test ends. Without root it skips
// the test as an adversarial case that needs a part the machine lacks.
func MountTmpfs(t testing.TB, tried, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		Skipf(t, tried, "mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		Skipf(t, tried, "mount tmpfs: %v: %s", err, out)
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

// RunKillable runs the test binary again, with no test selected and env
// added to its environment, as a helper process that its TestMain
// recognises by env (one that may SIGKILL itself at a chosen point); it
// reports whether SIGKILL ended it, and fails t when it failed otherwise.
func RunKillable(t testing.TB, env ...string) (killed bool) {
	t.Helper()
	return StartKillable(t, env...).Wait()
}

// Process is a helper process started by StartKillable.
type Process struct {
	t    testing.TB
	env  []string
	cmd  *exec.Cmd
	out  *lifecycletest.Buffer
	done chan struct{}
	err  error
}

// StartKillable starts the test binary again as RunKillable does, without
// waiting for it: a helper that serves until it kills itself, or until
// Kill. The process is killed, if it still runs, when the test ends.
func StartKillable(t testing.TB, env ...string) *Process {
	t.Helper()
	p := &Process{t: t, env: env, out: &lifecycletest.Buffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], "-test.run=^$")
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("helper process (%v): %v", env, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Kill()
		<-p.done
	})
	return p
}

// Done is closed once the process has ended.
func (p *Process) Done() <-chan struct{} { return p.done }

// Kill sends the process SIGKILL, unless it has ended.
func (p *Process) Kill() {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	}
}

// Wait waits for the process to end and reports whether SIGKILL ended it;
// it fails t when the process failed otherwise.
func (p *Process) Wait() (killed bool) {
	p.t.Helper()
	<-p.done
	var exit *exec.ExitError
	if errors.As(p.err, &exit) {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return true
		}
	}
	if p.err != nil {
		p.t.Fatalf("helper process (%v): %v\n%s", p.env, p.err, p.out.String())
	}
	return false
}

// Output is what the process has written to stdout and stderr so far.
func (p *Process) Output() string { return p.out.String() }
