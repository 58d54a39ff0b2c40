// Command control measures the shared control store's convergence: it
// starts REPLICAS `strangler proxy` processes on one fresh Postgres
// database (-dsn, which bench/run.sh creates and drops), flips a module
// CHANGES times through the admin API of one replica after another
// (extracted, then back to legacy), and measures for each change the time
// until every replica's data plane answers from the new backend: a request
// to the module's route, whose answer names the backend that served it.
// It prints p50, p99 and max over the changes, per replica and over all.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/stranglerkit/strangler/proxy/adminclient"
	"github.com/stranglerkit/strangler/proxy/routes"
)

// token is the replicas' admin token.
const token = "bench-admin-token-0123456789abcdef"

// target is the module's route that the benchmark requests.
const target = "/api/orders/1"

func main() {
	bin := flag.String("strangler", "bin/strangler", "the strangler binary")
	dsn := flag.String("dsn", "", "a fresh Postgres database for the control store (required)")
	n := flag.Int("replicas", 3, "proxy replicas")
	changes := flag.Int("changes", 100, "flips and rollbacks to measure")
	poll := flag.Duration("poll-interval", time.Second, "control.poll_interval of the replicas")
	flag.Parse()
	if *dsn == "" {
		log.Fatal("control: -dsn is required")
	}
	dir, err := os.MkdirTemp("", "strangler-control-bench")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := run(*bin, *dsn, dir, *n, *changes, *poll); err != nil {
		log.Printf("control: %v", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
}

func run(bin, dsn, dir string, n, changes int, poll time.Duration) error {
	legacy, err := backend("legacy")
	if err != nil {
		return err
	}
	defer legacy.Close()
	svc, err := backend("orders-svc")
	if err != nil {
		return err
	}
	defer svc.Close()

	var replicas []*replica
	defer func() {
		for _, r := range replicas {
			r.stop()
		}
	}()
	for i := 0; i < n; i++ {
		r, err := startReplica(bin, dsn, filepath.Join(dir, fmt.Sprintf("r%d", i)), "http://"+legacy.Addr().String(), poll)
		if err != nil {
			return fmt.Errorf("replica %d: %w", i, err)
		}
		replicas = append(replicas, r)
	}
	ctx := context.Background()
	for i, r := range replicas {
		if err := r.waitReady(60 * time.Second); err != nil {
			return fmt.Errorf("replica %d: %w", i, err)
		}
	}
	table := &routes.Doc{
		Backends: map[string]routes.Backend{"orders-svc": {URLs: []string{"http://" + svc.Addr().String()}}},
		Modules: []routes.Module{
			{Name: "default", Routes: []routes.RouteDef{{ID: "default", Prefix: "/"}}},
			{Name: "orders", Candidate: "orders-svc", Routes: []routes.RouteDef{{ID: "orders", Prefix: "/api/orders"}}},
		},
	}
	if _, err := replicas[0].admin.ReplaceTable(ctx, table, 0); err != nil {
		return fmt.Errorf("the table: %w", err)
	}
	for i, r := range replicas {
		if _, err := r.waitServed("legacy", time.Now(), 30*time.Second); err != nil {
			return fmt.Errorf("replica %d after the table: %w", i, err)
		}
	}

	all := make([]time.Duration, 0, changes)
	per := make([][]time.Duration, n)
	for c := 0; c < changes; c++ {
		via := replicas[c%n]
		want := "orders-svc"
		start := time.Now()
		if c%2 == 0 {
			_, err = via.admin.Flip(ctx, "orders")
		} else {
			want = "legacy"
			_, err = via.admin.Rollback(ctx, "orders")
		}
		if err != nil {
			return fmt.Errorf("change %d through replica %d: %w", c, c%n, err)
		}
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			slowest  time.Duration
			firstErr error
		)
		for i, r := range replicas {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d, err := r.waitServed(want, start, 30*time.Second)
				mu.Lock()
				defer mu.Unlock()
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("change %d, replica %d: %w", c, i, err)
				}
				per[i] = append(per[i], d)
				slowest = max(slowest, d)
			}()
		}
		wg.Wait()
		if firstErr != nil {
			return firstErr
		}
		all = append(all, slowest)
	}

	fmt.Printf("Control convergence: %d replicas, one Postgres, %d changes (flip, rollback) through each replica in turn, poll_interval %v\n", n, changes, poll)
	fmt.Println("time from the admin API's answer until the replica's data plane answers from the new backend")
	fmt.Printf("%-10s %10s %10s %10s\n", "replica", "p50_ms", "p99_ms", "max_ms")
	for i, d := range per {
		p50, p99, mx := quantiles(d)
		fmt.Printf("%-10s %10.2f %10.2f %10.2f\n", fmt.Sprintf("r%d", i), ms(p50), ms(p99), ms(mx))
	}
	p50, p99, mx := quantiles(all)
	fmt.Printf("%-10s %10.2f %10.2f %10.2f\n", "all", ms(p50), ms(p99), ms(mx))
	verdict := "met"
	if p99 > time.Second {
		verdict = "MISSED"
	}
	fmt.Printf("\ntarget: every replica serves a change within 1 s (p99): %.2f ms, %s\n", ms(p99), verdict)
	return nil
}

// backend is an HTTP server on loopback that answers every request with
// its name, as {"backend":"NAME"}.
func backend(name string) (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	body := []byte(`{"backend":"` + name + `"}`)
	go func() {
		_ = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(body)
		}))
	}()
	return ln, nil
}

// replica is one `strangler proxy` process.
type replica struct {
	cmd    *exec.Cmd
	out    *bytes.Buffer
	url    string
	admin  *adminclient.Client
	ready  string
	client *http.Client
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func startReplica(bin, dsn, dir, legacy string, poll time.Duration) (*replica, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	adminAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(`data_dir: %s
log: {level: warn}
proxy:
  addr: %s
  admin_addr: %s
  admin_token: %s
  legacy: %s
control:
  poll_interval: %s
`, dir, addr, adminAddr, token, legacy, poll)
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	out := &bytes.Buffer{}
	cmd := exec.Command(bin, "proxy", "--config", path)
	// The DSN goes through the environment, as an operator's secret would.
	cmd.Env = append(os.Environ(), "STRANGLER_CONTROL_DSN="+dsn)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ac, err := adminclient.New(adminAddr, token)
	if err != nil {
		_ = cmd.Process.Kill()
		return nil, err
	}
	return &replica{cmd: cmd, out: out, url: "http://" + addr, admin: ac, ready: "http://" + adminAddr + "/readyz",
		client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 2}}}, nil
}

func (r *replica) waitReady(within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if resp, err := r.client.Get(r.ready); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("not ready within %v:\n%s", within, r.out.String())
}

// waitServed polls the replica's data plane until the module's route
// answers from backend want, and returns the time since start.
func (r *replica) waitServed(want string, start time.Time, within time.Duration) (time.Duration, error) {
	needle := []byte(`"backend":"` + want + `"`)
	for {
		resp, err := r.client.Get(r.url + target)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if bytes.Contains(b, needle) {
				return time.Since(start), nil
			}
		}
		if time.Since(start) > within {
			return 0, fmt.Errorf("%s still not served by %s after %v (last: %v)", target, want, within, err)
		}
		time.Sleep(500 * time.Microsecond)
	}
}

func (r *replica) stop() {
	if r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = r.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = r.cmd.Process.Kill()
		<-done
	}
	if s := strings.TrimSpace(r.out.String()); s != "" && r.cmd.ProcessState != nil && !r.cmd.ProcessState.Success() {
		log.Printf("replica %s exited: %v\n%s", r.url, r.cmd.ProcessState, s)
	}
}

// quantiles returns p50, p99 and max of ds.
func quantiles(ds []time.Duration) (p50, p99, mx time.Duration) {
	if len(ds) == 0 {
		return 0, 0, 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2], s[(len(s)*99+99)/100-1], s[len(s)-1]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
