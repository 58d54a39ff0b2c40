package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/internal/lifecycletest"
	"github.com/stranglerkit/strangler/internal/loadgen"
	"github.com/stranglerkit/strangler/proxy/proxytest"
)

// fleetToken is the admin token of the fleet test's replicas.
const fleetToken = "fleet-test-admin-token-0123456789"

// replicaProc is one `strangler proxy` process of the fleet test, on
// fixed ports so that it comes back on the same ones after a kill.
type replicaProc struct {
	addr, admin, dataDir string
	cmd                  *exec.Cmd
	stderr               *bytes.Buffer
	done                 chan struct{}
}

// start runs the replica's process.
func (r *replicaProc) start(t *testing.T, config string) {
	t.Helper()
	cmd := exec.Command(binary, "--config", config, "proxy")
	cmd.Env = append(isolatedEnv(r.dataDir), "STRANGLER_PROXY_ADDR="+r.addr, "STRANGLER_PROXY_ADMIN_ADDR="+r.admin)
	r.stderr = &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = nil, r.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.cmd, r.done = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); close(r.done) }()
}

// kill sends SIGKILL and waits for the process to end.
func (r *replicaProc) kill() {
	_ = r.cmd.Process.Signal(syscall.SIGKILL)
	<-r.done
}

// readyz is the replica's /readyz status and served table version; status
// 0 when it does not answer.
func (r *replicaProc) readyz(c *http.Client) (int, int64) {
	s, v, _ := r.control(c)
	return s, v
}

// control is the replica's /readyz status, served table version and
// whether it reports itself degraded (the store not read for stale_after).
func (r *replicaProc) control(c *http.Client) (status int, version int64, degraded bool) {
	resp, err := c.Get("http://" + r.admin + "/readyz")
	if err != nil {
		return 0, 0, false
	}
	defer resp.Body.Close()
	var body struct {
		Control struct {
			Version  int64 `json:"version"`
			Degraded bool  `json:"degraded"`
		} `json:"control"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body.Control.Version, body.Control.Degraded
}

// TestFleetWalk is the fleet end to end: three `strangler proxy` processes
// on a private Postgres cluster (dbtest.PrivatePostgres), a legacy and a
// candidate backend, and a load generator at 300 req/s spread over the
// three replicas, while the CLI walks the orders module legacy → shadow →
// canary 10 → 50 → flip → legacy through replica 1. Every change's
// convergence is measured by polling each replica's /readyz version.
// Mid-walk, replica 2 is killed with SIGKILL, a change is made without it,
// and it is restarted: it must not report ready before it serves the
// current version. Then Postgres itself is stopped (pg_ctl -m fast), for
// longer than stale_after, and started again: the replicas keep serving
// their table while each reports itself degraded, recover once the server
// is back, and converge on the flip made after it. The cluster is the
// test's own, because stopping the shared server would break the other
// packages' tests that use it during `make test`. Not one request may
// fail. A replica leaves the load generator's rotation before its kill
// and rejoins once ready, as a load balancer's health check would; the
// generator's own lag is reported apart from the answers.
func TestFleetWalk(t *testing.T) {
	pg := dbtest.PrivatePostgres(t)
	legacy := proxytest.EchoBackend(t, "legacy")
	svc := proxytest.EchoBackend(t, "orders-svc")
	dir := t.TempDir()
	routesFile := filepath.Join(dir, "routes.yaml")
	writeFleetFile(t, routesFile, `
backends:
  orders-svc: {urls: ["`+svc.URL+`"]}
modules:
  - name: default
    routes: [{id: default, prefix: /}]
  - name: orders
    candidate: orders-svc
    sticky: {header: X-User}
    routes: [{id: orders, prefix: /api/orders}]
`)
	config := filepath.Join(dir, "strangler.yaml")
	writeFleetFile(t, config, `
log: {level: warn}
proxy:
  legacy: `+legacy.URL+`
  routes_file: `+routesFile+`
  admin_token: `+fleetToken+`
  access_log: {enabled: false}
control:
  dsn: `+pg.DSN()+`
  poll_interval: 200ms
  stale_after: 2s
phases:
  modules:
    - {name: orders, read_routes: orders}
`)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer client.CloseIdleConnections()
	reps := make([]*replicaProc, 3)
	// The processes are killed however the test ends, even while the
	// later ones start.
	t.Cleanup(func() {
		for _, r := range reps {
			if r != nil && r.cmd != nil {
				select {
				case <-r.done:
				default:
					r.kill()
				}
			}
		}
	})
	for i := range reps {
		reps[i] = &replicaProc{addr: lifecycletest.FreeAddr(t), admin: lifecycletest.FreeAddr(t), dataDir: filepath.Join(dir, fmt.Sprintf("replica%d", i))}
		reps[i].start(t, config)
		// Replicas start one after the other, so that the first seeds
		// the store from the routes file and the others load it.
		proxytest.Eventually(t, 60*time.Second, func() bool { s, v := reps[i].readyz(client); return s == http.StatusOK && v > 0 },
			"replica %d not ready: %s", i, reps[i].stderr)
	}

	// The load: 300 req/s, round robin over the replicas in rotation.
	var (
		inRotation [3]atomic.Bool
		next       atomic.Uint64
		ok, failed atomic.Int64
		failMu     sync.Mutex
		failures   []string
	)
	for i := range inRotation {
		inRotation[i].Store(true)
	}
	pacer := loadgen.New(loadgen.Config{Rate: 300, Workers: 64}, func(w int, _ time.Duration) {
		var r *replicaProc
		for {
			i := next.Add(1) % 3
			if inRotation[i].Load() {
				r = reps[i]
				break
			}
		}
		req, _ := http.NewRequest(http.MethodGet, "http://"+r.addr+fmt.Sprintf("/api/orders/%d", w), nil)
		req.Header.Set("X-User", fmt.Sprintf("user-%d", next.Load()%500))
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				ok.Add(1)
				return
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		failed.Add(1)
		failMu.Lock()
		if len(failures) < 10 {
			failures = append(failures, r.addr+": "+err.Error())
		}
		failMu.Unlock()
	})
	loadCtx, stopLoad := context.WithCancel(context.Background())
	lagDone := make(chan loadgen.Lag, 1)
	go func() { lagDone <- pacer.Run(loadCtx) }()
	defer func() {
		stopLoad()
		<-lagDone
	}()

	cli := func(args ...string) {
		t.Helper()
		full := append([]string{"--config", config, "--admin", reps[0].admin, "--token", fleetToken}, args...)
		out, errOut, code := run(t, isolatedEnv(filepath.Join(dir, "cli")), full...)
		if code != 0 {
			t.Fatalf("strangler %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
	}
	var conv []time.Duration
	// change runs the CLI while polling every replica in rotation (and
	// every one, if all) for the version each serves, and returns how long
	// after the first replica served the change's version the last did.
	change := func(args ...string) {
		t.Helper()
		first := make([]time.Time, 3)
		_, before := reps[0].readyz(client)
		stop := make(chan struct{})
		polled := make(chan struct{})
		go func() {
			defer close(polled)
			pc := &http.Client{Timeout: 2 * time.Second}
			seen := make([]int64, 3)
			for {
				for i, r := range reps {
					if !inRotation[i].Load() {
						continue
					}
					if _, v := r.readyz(pc); v > seen[i] {
						seen[i] = v
						if v > before && first[i].IsZero() {
							first[i] = time.Now()
						}
					}
				}
				all := true
				for i := range reps {
					all = all && (first[i] != time.Time{} || !inRotation[i].Load())
				}
				if all {
					return
				}
				select {
				case <-stop:
					return
				default:
				}
			}
		}()
		cli(args...)
		// The command returned once every live replica reported the
		// change. A replica whose report expired while the store was
		// away is not live until it reports again, so the poll goes on
		// until every replica shows it.
		select {
		case <-polled:
		case <-time.After(30 * time.Second):
		}
		close(stop)
		<-polled
		var lo, hi time.Time
		for i, f := range first {
			if !inRotation[i].Load() {
				continue
			}
			if f.IsZero() {
				t.Fatalf("%v: replica %d never showed a version past %d", args, i, before)
			}
			if lo.IsZero() || f.Before(lo) {
				lo = f
			}
			if f.After(hi) {
				hi = f
			}
		}
		conv = append(conv, hi.Sub(lo))
		t.Logf("%-28s converged in %v", strings.Join(args, " "), hi.Sub(lo).Round(100*time.Microsecond))
	}

	time.Sleep(time.Second) // the load runs before the walk
	change("phase", "orders", "legacy")
	change("phase", "orders", "shadow")
	change("phase", "orders", "canary", "--weight", "10")

	// Replica 2 leaves the rotation, its requests in flight finish, and
	// it is killed; a change is made without it, and it comes back.
	inRotation[2].Store(false)
	time.Sleep(300 * time.Millisecond)
	reps[2].kill()
	change("phase", "orders", "canary", "--weight", "50")
	_, current := reps[0].readyz(client)
	reps[2].start(t, config)
	pc := &http.Client{Timeout: 2 * time.Second}
	proxytest.Eventually(t, 60*time.Second, func() bool {
		s, v := reps[2].readyz(pc)
		if s == http.StatusOK && v < current {
			t.Fatalf("restarted replica 2 is ready at version %d, before it serves the current %d", v, current)
		}
		return s == http.StatusOK && v == current
	}, "restarted replica 2 not ready at version %d: %s", current, reps[2].stderr)
	inRotation[2].Store(true)
	t.Logf("replica 2 killed and restarted: ready at the current version %d", current)

	// Postgres stops for longer than stale_after, and starts again.
	pg.Stop()
	down := time.Now()
	for i, r := range reps {
		// Degraded once stale_after passed: proof that it lost the store.
		proxytest.Eventually(t, 30*time.Second, func() bool { _, _, d := r.control(client); return d },
			"replica %d does not report itself degraded without Postgres", i)
		if s, v, _ := r.control(client); s != http.StatusOK || v != current {
			t.Errorf("replica %d without Postgres: /readyz %d at version %d, want 200 at %d", i, s, v, current)
		}
	}
	downFor := time.Since(down)
	pg.Start()
	for i, r := range reps {
		proxytest.Eventually(t, 60*time.Second, func() bool { s, v, d := r.control(client); return s == http.StatusOK && v == current && !d },
			"replica %d still degraded after Postgres came back: %s", i, r.stderr)
	}
	t.Logf("Postgres down for %v, until every replica reported itself degraded, then started: every replica recovered", downFor.Round(100*time.Millisecond))
	change("phase", "orders", "flip")
	change("phase", "orders", "legacy")

	stopLoad()
	lag := <-lagDone
	lagDone <- lag
	sorted := append([]time.Duration(nil), conv...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	t.Logf("convergence of %d changes over 3 replicas: p50 %v, p99 %v, max %v", len(conv),
		loadgen.Percentile(sorted, 0.50).Round(100*time.Microsecond), loadgen.Percentile(sorted, 0.99).Round(100*time.Microsecond), sorted[len(sorted)-1].Round(100*time.Microsecond))
	t.Logf("load: %d ok, %d failed; generator: %s", ok.Load(), failed.Load(), lag)
	if failed.Load() != 0 {
		t.Fatalf("%d requests failed, the first: %v", failed.Load(), failures)
	}
	if ok.Load() == 0 {
		t.Fatal("no request was answered")
	}
}

func writeFleetFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}
