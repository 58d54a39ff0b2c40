package proxy_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/internal/chaostest"
	"github.com/stranglerkit/strangler/proxy"
	"github.com/stranglerkit/strangler/proxy/proxytest"
)

// Environment of the proxy that TestChaosFDLimit runs under prlimit: the
// test binary again, which serves until its standard input closes.
const (
	envLimitedDir    = "STRANGLER_TEST_FDLIMIT_DIR"
	envLimitedLegacy = "STRANGLER_TEST_FDLIMIT_LEGACY"
	envLimitedMax    = "STRANGLER_TEST_FDLIMIT_MAX_CONNECTIONS"
)

// fdLimit is the open-file limit of the proxy process, and idleConns how
// many idle connections the test opens: more than it can hold.
const (
	fdLimit   = 400
	idleConns = 450
)

// TestChaosFDLimit runs the proxy in a process limited to 400 open files
// and opens 450 idle connections to it. The proxy must survive: refuse
// connections over its limit (derived from the file limit) with a counted
// 503, or, with no limit, retry the accepts that fail with EMFILE; and
// serve a normal request once some connections close.
func TestChaosFDLimit(t *testing.T) {
	if dir := os.Getenv(envLimitedDir); dir != "" {
		serveLimited(t, dir)
		return
	}
	tried := fmt.Sprintf("%d idle connections to a proxy under prlimit --nofile=%d", idleConns, fdLimit)
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		chaostest.Skipf(t, tried, "prlimit is not installed: %v", err)
	}
	backend := proxytest.EchoBackend(t, "legacy")
	tests := []struct {
		name     string
		max      int
		metric   string
		expected string
	}{
		{"derived limit", 0, "strangler_proxy_connections_refused_total", "connections over the limit refused and counted, then a normal request served"},
		{"no limit", -1, "strangler_proxy_accept_retries_total", "failed accepts retried and counted, then a normal request served"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(prlimit, fmt.Sprintf("--nofile=%d", fdLimit), os.Args[0], "-test.run=^TestChaosFDLimit$", "-test.timeout=5m")
			cmd.Env = append(os.Environ(), envLimitedDir+"="+dir, envLimitedLegacy+"="+backend.URL, envLimitedMax+"="+strconv.Itoa(tt.max))
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			out := &proxytest.Buffer{}
			cmd.Stdout, cmd.Stderr = out, out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			stopped := false
			stop := func() error {
				if stopped {
					return nil
				}
				stopped = true
				stdin.Close()
				select {
				case err := <-exited:
					return err
				case <-time.After(60 * time.Second):
					_ = cmd.Process.Kill()
					return fmt.Errorf("the proxy process did not stop: %v", <-exited)
				}
			}
			t.Cleanup(func() { _ = stop() })

			var addr, admin string
			proxytest.Eventually(t, 60*time.Second, func() bool {
				b, err := os.ReadFile(filepath.Join(dir, "addrs"))
				if err != nil {
					return false
				}
				f := strings.Fields(string(b))
				addr, admin = f[0], f[1]
				return true
			}, "the limited proxy did not start: %s", out)

			conns := make([]net.Conn, 0, idleConns)
			defer func() {
				for _, c := range conns {
					c.Close()
				}
			}()
			for range idleConns {
				c, err := net.DialTimeout("tcp", addr, 10*time.Second)
				if err != nil {
					break // the backlog is full: enough
				}
				conns = append(conns, c)
			}
			opened := len(conns)
			// Wait until the proxy is full: the last connection has been
			// refused, or the process holds every descriptor it may.
			full := ""
			if tt.max == 0 {
				last := conns[len(conns)-1]
				_ = last.SetReadDeadline(time.Now().Add(30 * time.Second))
				resp, err := http.ReadResponse(bufio.NewReader(last), nil)
				if err != nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Content-Type") != "application/problem+json" {
					chaostest.Report(t, false, tried, "the connections over the limit refused with a 503 problem", fmt.Sprintf("%v %v", resp, err))
					return
				}
				full = "last connection refused: " + resp.Status
			} else {
				fds := filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid), "fd")
				proxytest.Eventually(t, 30*time.Second, func() bool {
					ents, err := os.ReadDir(fds)
					full = fmt.Sprintf("%d descriptors open", len(ents))
					return err == nil && len(ents) >= fdLimit-2
				}, "the proxy never filled its descriptors: %s", full)
			}
			// Keep 100 open and idle, close the rest.
			for _, c := range conns[min(100, len(conns)):] {
				c.Close()
			}
			conns = conns[:min(100, len(conns))]

			served := false
			var saw string
			deadline := time.Now().Add(60 * time.Second)
			for !served && time.Now().Before(deadline) {
				select {
				case err := <-exited:
					exited <- err
					chaostest.Report(t, false, tried, tt.expected, fmt.Sprintf("the proxy process ended (%v): %s", err, out))
					return
				default:
				}
				served, saw = normalRequest(addr)
				if !served {
					time.Sleep(100 * time.Millisecond)
				}
			}
			count := 0.0
			if served {
				count = scrapeValue(t, admin, tt.metric)
			}
			err = stop()
			ok := served && count > 0 && err == nil
			chaostest.Report(t, ok, fmt.Sprintf("%s (%s, %d opened)", tried, tt.name, opened), tt.expected,
				fmt.Sprintf("%s; request: %s; %s %g; process exit: %v", full, saw, tt.metric, count, err))
			if !ok {
				t.Logf("proxy output:\n%s", out)
			}
		})
	}
}

// normalRequest sends one GET through the proxy on a fresh connection.
func normalRequest(addr string) (bool, string) {
	resp, err := proxytest.RawGet(addr, "/after")
	if err != nil {
		return false, err.Error()
	}
	return resp.StatusCode == http.StatusOK && resp.Header.Get("X-Backend") == "legacy", resp.Status
}

// scrapeValue returns the value of an unlabelled series on the admin /metrics.
func scrapeValue(t *testing.T, admin, name string) float64 {
	t.Helper()
	var v float64
	proxytest.Eventually(t, 30*time.Second, func() bool {
		resp, err := http.Get("http://" + admin + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == name {
				v, _ = strconv.ParseFloat(f[1], 64)
				return true
			}
		}
		return false
	}, "no %s on /metrics", name)
	return v
}

// serveLimited is the limited process: a proxy that writes its addresses
// to dir and serves until standard input closes.
func serveLimited(t *testing.T, dir string) {
	maxConns, err := strconv.Atoi(os.Getenv(envLimitedMax))
	if err != nil {
		t.Fatal(err)
	}
	p := proxytest.Start(t, proxytest.Config{Legacy: os.Getenv(envLimitedLegacy), Routes: legacyOnly, Dir: dir, Tune: func(c *proxy.Config) {
		c.MaxConnections = maxConns
	}})
	tmp := filepath.Join(dir, "addrs.tmp")
	if err := os.WriteFile(tmp, []byte(p.Addr()+" "+p.AdminAddr()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "addrs")); err != nil {
		t.Fatal(err)
	}
	var b [1]byte
	_, _ = os.Stdin.Read(b[:])
}
