package main_test

import (
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/internal/chaostest"
	"github.com/stranglerkit/strangler/proxy/proxytest"
)

// TestChaosUpFDLimit runs `strangler up` limited to 400 open files and
// opens 450 idle connections to its proxy, with the proxy's connection
// limit derived or removed, so that every component of the process runs
// out of descriptors for a while. No component may end up for it: once the
// connections close, the proxy serves the monolith, and a signal stops up
// cleanly.
func TestChaosUpFDLimit(t *testing.T) {
	const limit, idle = 400, 450
	tried := fmt.Sprintf("%d idle connections to the proxy of `strangler up` under prlimit --nofile=%d", idle, limit)
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		chaostest.Skipf(t, tried, "prlimit is not installed: %v", err)
	}
	for _, maxConns := range []string{"0", "-1"} {
		t.Run("max_connections="+maxConns, func(t *testing.T) {
			env := append(isolatedEnv(t.TempDir()), "STRANGLER_PROXY_MAX_CONNECTIONS="+maxConns)
			p := startUpUnder(t, env, []string{prlimit, fmt.Sprintf("--nofile=%d", limit)})
			waitReady(t, p.addrs["monolith"]+"/readyz")
			addr := strings.TrimPrefix(p.addrs["proxy"], "http://")
			var conns []net.Conn
			for range idle {
				c, err := net.DialTimeout("tcp", addr, 10*time.Second)
				if err != nil {
					break
				}
				conns = append(conns, c)
			}
			// Hold them while the components work on without descriptors.
			time.Sleep(3 * time.Second)
			for _, c := range conns {
				c.Close()
			}
			served, saw := false, ""
			deadline := time.Now().Add(60 * time.Second)
			for !served && time.Now().Before(deadline) {
				select {
				case err := <-p.done:
					p.done <- err
					chaostest.Report(t, false, tried, "up running on", fmt.Sprintf("up exited (%v); stderr:\n%s", err, p.stderr))
					return
				default:
				}
				served, saw = getThrough(addr)
				if !served {
					time.Sleep(200 * time.Millisecond)
				}
			}
			if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			var exit error
			select {
			case exit = <-p.done:
			case <-time.After(30 * time.Second):
				exit = fmt.Errorf("up did not stop within 30s of SIGINT")
			}
			ok := served && exit == nil
			chaostest.Report(t, ok, fmt.Sprintf("%s (max_connections %s, %d opened)", tried, maxConns, len(conns)),
				"up runs on, the proxy serves the monolith after, and a signal stops up cleanly",
				fmt.Sprintf("request: %s; exit: %v", saw, exit))
			if !ok {
				t.Logf("stderr:\n%s", p.stderr)
			}
		})
	}
}

// getThrough asks the proxy for the monolith's health on a fresh
// connection.
func getThrough(addr string) (bool, string) {
	resp, err := proxytest.RawGet(addr, "/healthz")
	if err != nil {
		return false, err.Error()
	}
	return resp.StatusCode == http.StatusOK, resp.Status
}
