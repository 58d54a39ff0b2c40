package docs_test

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/db/dbtest"
)

// deployToken is the admin token of the replicas in deploy.md, given to
// them and to the CLI through the environment as a secret store would.
const deployToken = "deploy-guide-admin-token-0123456789"

// deployBackends are the legacy and extracted backends deploy.md's
// replicas route to: each answers every request with its name.
var deployBackends = map[string]string{"legacy": "127.0.0.1:8190", "orders-svc": "127.0.0.1:8191"}

// replicaBlock is a deploy.md block that starts a replica, as the reader
// does under a service manager or in a terminal of its own: the test runs
// it in the background until the end.
var replicaBlock = regexp.MustCompile(`^(?:[A-Z_]+='[^']*' )*strangler proxy --config (\S+)$`)

// adminAddrLine finds a replica config's admin address.
var adminAddrLine = regexp.MustCompile(`(?m)^\s*admin_addr:\s*(\S+)`)

// TestDeployGuide runs every shell block of deploy.md, in order, in a
// fresh directory: two replicas on one fresh Postgres database, a change
// through one served by the other, and a replica whose store is down. It
// skips without Postgres, and fails then when STRANGLER_REQUIRE_POSTGRES=1.
func TestDeployGuide(t *testing.T) {
	if testing.Short() {
		t.Skip("the deploy guide runs proxy replicas on Postgres; skipped with -short")
	}
	dsn := dbtest.PostgresDSN(t)
	root := buildStrangler(t)
	for name, addr := range deployBackends {
		startNamedBackend(t, name, addr)
	}
	g := &guideEnv{root: root, dir: t.TempDir()}
	g.env = append(commandEnv(root), "STRANGLER_CONTROL_DSN="+dsn,
		"STRANGLER_PROXY_ADMIN_TOKEN="+deployToken, "STRANGLER_ADMIN_TOKEN="+deployToken)

	var procs []*bgProcess
	t.Cleanup(func() {
		for _, p := range procs {
			p.stop()
		}
	})
	for _, b := range parseGuide(t, "deploy.md") {
		name := fmt.Sprintf("deploy.md:%d", b.line)
		script := strings.TrimSpace(b.script)
		if m := replicaBlock.FindStringSubmatch(script); m != nil {
			cfg, err := os.ReadFile(filepath.Join(g.dir, m[1]))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			admin := adminAddrLine.FindSubmatch(cfg)
			if admin == nil {
				t.Fatalf("%s: %s has no proxy.admin_addr", name, m[1])
			}
			p := startBackground(t, g, script)
			procs = append(procs, p)
			p.waitHealthy(t, name, "http://"+string(admin[1])+"/healthz")
			t.Logf("%s\n$ %s &", name, script)
			continue
		}
		out, err := g.run(script)
		t.Logf("%s\n$ %s\n%s", name, script, out)
		if err != nil {
			t.Fatalf("%s: %v\n%s\nreplicas' output:\n%s", name, err, out, bgOutput(procs))
		}
		if err := matchOutput(b.expect, out); err != nil {
			t.Fatalf("%s: %v\noutput:\n%s\nreplicas' output:\n%s", name, err, out, bgOutput(procs))
		}
	}
}

// startNamedBackend serves {"backend":"NAME"} on addr until the test ends.
func startNamedBackend(t *testing.T, name, addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("deploy.md's %s backend is at %s, which is taken: %v", name, addr, err)
	}
	body := []byte(`{"backend":"` + name + `"}`)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
}

// bgProcess is a block running in the background.
type bgProcess struct {
	script string
	cmd    *exec.Cmd
	mu     sync.Mutex
	out    bytes.Buffer
	done   chan struct{}
}

func (p *bgProcess) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *bgProcess) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func startBackground(t *testing.T, g *guideEnv, script string) *bgProcess {
	t.Helper()
	p := &bgProcess{script: script, done: make(chan struct{})}
	// exec env: the shell becomes the replica, so that the signal reaches
	// it, with the block's VAR=value assignments in its environment.
	p.cmd = exec.Command("bash", "-c", "exec env "+script)
	p.cmd.Dir, p.cmd.Env = g.dir, g.env
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	return p
}

// waitHealthy waits until url answers 200, or fails when the process
// exits or a minute passes.
func (p *bgProcess) waitHealthy(t *testing.T, name, url string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-p.done:
			t.Fatalf("%s: %q exited: %v\n%s", name, p.script, p.cmd.ProcessState, p.output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s did not answer 200 within a minute:\n%s", name, url, p.output())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop interrupts the process and waits for it, killing it after 15 s.
func (p *bgProcess) stop() {
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func bgOutput(ps []*bgProcess) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "$ %s\n%s\n", p.script, p.output())
	}
	return b.String()
}
