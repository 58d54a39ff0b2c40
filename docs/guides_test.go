// Package docs_test runs the executable guides: every shell block of
// docs/guides/*.md, in order, against a real `strangler up`, checking the
// output each guide states. `make e2e` runs it; so does `make test`.
//
// A guide's ```sh block runs with bash -eo pipefail in the repository's
// root, with bin/ on PATH and STRANGLER_DATA_DIR pointing at a fresh data
// dir. A ```text block right after it is the output the guide promises:
// each of its non-empty lines must match an output line, in order, where
// "..." stands for any text and runs of spaces are one space. The block
// "strangler up" starts the system in the background, as the guide's
// reader does in a second terminal.
//
// 03-extract-orders.md runs next, on the same up, under a load of its own
// (ordersWorkload). Its crash block kills up with SIGKILL mid-saga (up
// writes its pid to up.pid in the data dir); the load pauses from that
// block until the guide's next "strangler up" block, which starts up
// again on the same data dir, since the requests the crash leaves
// unanswered are the block's own. At its end the test fails on oversold
// stock and on drift in either extraction.
//
// 02-your-own-monolith.md runs apart (TestGuideYourOwnMonolith): without
// `strangler up`, in a fresh directory, with $PRESSROOM naming its legacy
// app, Pressroom (guides/testdata/pressroom, in Python). Its blocks start
// Pressroom, the proxy and the candidate in the background themselves, as
// its reader does; each block runs in a process group of its own, which
// the test ends when it ends.
//
// While 01-extract-a-module.md runs, a load generator places orders and
// reads stock through the proxy at a steady rate (STRANGLER_GUIDE_RATE,
// default 250 requests/s), and the test fails on any failed request
// (business 4xx such as out of stock excepted), on oversold stock, and on
// drift at the end. It prints the requests, p50 and p99 per phase. While
// 02 runs, from the block that starts the proxy on, a load of 50
// requests/s reads Pressroom's authors and articles and posts comments,
// and the test fails on any failed request.
//
// The load generator keeps its own lag apart from the system's failures
// (internal/loadgen): a send it could not start on time, because its
// workers were all busy or its process was starved of CPU, is late, not
// failed. The test fails when more than 2% of the planned sends were late
// by more than 1 s (maxLateFraction, lateAfter), and prints the late count
// and the largest delay either way.
//
// STRANGLER_GUIDE_LOG_DIR, when set, keeps up's whole log there, a file
// per test, for a failure that the log's tail printed does not explain.
//
// STRANGLER_GUIDE_CPU_HOG=1 starts a CPU-bound neighbour for the test's
// length, a busy loop pinned to CPU 0 with taskset when it is there, as
// another job on a shared machine would be. `make e2e` runs the guides at
// the default rate; `make e2e-stress` at 250 requests/s with the hog and at
// 500 requests/s without it.
package docs_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/internal/lifecycletest"
	"github.com/stranglerkit/strangler/internal/loadgen"
)

// block is one shell block of a guide and the output it promises.
type block struct {
	line   int
	script string
	expect []string
}

var fence = regexp.MustCompile("^```([a-z]*)\\s*$")

// parseGuide returns the guide's sh blocks, each with the text block that
// follows it, if any.
func parseGuide(t *testing.T, path string) []block {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var (
		out     []block
		lang    string
		body    []string
		inBlock bool
		start   int
		lastSh  = -1
		between bool
	)
	for i, l := range strings.Split(string(b), "\n") {
		m := fence.FindStringSubmatch(l)
		switch {
		case m != nil && !inBlock:
			inBlock, lang, body, start = true, m[1], nil, i+1
		case inBlock && strings.TrimSpace(l) == "```":
			inBlock = false
			switch lang {
			case "sh":
				out = append(out, block{line: start, script: strings.Join(body, "\n")})
				lastSh, between = len(out)-1, false
			case "text":
				if lastSh >= 0 && !between && out[lastSh].expect == nil {
					out[lastSh].expect = body
				}
			}
		case inBlock:
			body = append(body, l)
		default:
			if strings.TrimSpace(l) != "" {
				between = true
			}
		}
	}
	if inBlock {
		t.Fatalf("%s: unterminated code block from line %d", path, start)
	}
	return out
}

var spaces = regexp.MustCompile(`\s+`)

// matchOutput checks that each expected line matches an output line, in
// order.
func matchOutput(expect []string, output string) error {
	lines := strings.Split(output, "\n")
	at := 0
	for _, e := range expect {
		e = strings.TrimSpace(spaces.ReplaceAllString(e, " "))
		if e == "" {
			continue
		}
		parts := strings.Split(e, "...")
		for i := range parts {
			parts[i] = regexp.QuoteMeta(parts[i])
		}
		re := regexp.MustCompile("^" + strings.Join(parts, ".*") + "$")
		found := false
		for ; at < len(lines); at++ {
			if re.MatchString(strings.TrimSpace(spaces.ReplaceAllString(lines[at], " "))) {
				found, at = true, at+1
				break
			}
		}
		if !found {
			return fmt.Errorf("no output line matches %q (after the lines already matched)", e)
		}
	}
	return nil
}

func TestMatchOutput(t *testing.T) {
	out := "MODULE   PHASE\ninventory  0 legacy   legacy\nother\nexit 3\n"
	for _, tc := range []struct {
		expect []string
		ok     bool
	}{
		{[]string{"MODULE PHASE", "inventory 0 legacy ..."}, true},
		{[]string{"inventory ... legacy", "exit 3"}, true},
		{[]string{"exit 3", "inventory ..."}, false},
		{[]string{"inventory 1 sync ..."}, false},
		{[]string{"", "other"}, true},
	} {
		if err := matchOutput(tc.expect, out); (err == nil) != tc.ok {
			t.Errorf("%q: %v", tc.expect, err)
		}
	}
}

// guideEnv is the environment the blocks run in.
type guideEnv struct {
	root, dataDir string
	// dir is where the blocks run; if empty, root.
	dir    string
	env    []string
	up     *exec.Cmd
	upLog  *bytes.Buffer
	upDone chan error
	// groups are the process groups of the blocks run so far. A block may
	// leave a process in the background (`app.py > app.log 2>&1 &`), as a
	// reader does in a second terminal; stop ends them all.
	groups []int
	// controlDSN, if set, is the shared control store of up's proxy and of
	// a second replica, a `strangler proxy` that startUp starts beside up.
	controlDSN string
	// replica is the second proxy replica, if running: a `strangler
	// proxy` on the control store up's proxy shares, with a state dir of
	// its own and the data dir's admin token, listening on replicaAddr
	// and replicaAdmin.
	replica                   *bgProcess
	replicaAddr, replicaAdmin string
	// logName names the file that keeps up's whole log, in
	// STRANGLER_GUIDE_LOG_DIR when that is set, for a failure the log's
	// tail does not explain.
	logName string
}

func newGuideEnv(t *testing.T) *guideEnv {
	t.Helper()
	root := buildStrangler(t)
	requireFreePorts(t, "8080", "8081", "9001", "9092", "9101", "9102", "9103")
	g := &guideEnv{root: root, dataDir: t.TempDir(), logName: strings.ReplaceAll(t.Name(), "/", "_") + "-up.log"}
	g.env = append(commandEnv(root), "STRANGLER_DATA_DIR="+g.dataDir)
	t.Cleanup(g.stop)
	return g
}

// requireFreePorts fails the test unless every port is free on loopback:
// the guides use the defaults a reader gets.
func requireFreePorts(t *testing.T, ports ...string) {
	t.Helper()
	for _, port := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:"+port)
		if err != nil {
			t.Fatalf("the guides use the default ports, and 127.0.0.1:%s is taken: %v", port, err)
		}
		ln.Close()
	}
}

// buildStrangler builds bin/strangler and returns the repository's root.
func buildStrangler(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	build := exec.Command("go", "build", "-o", filepath.Join(root, "bin", "strangler"), "./cmd/strangler")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return root
}

// commandEnv is the environment of a doc's commands: the test's without
// its STRANGLER_ settings, with bin/ first on PATH.
func commandEnv(root string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "STRANGLER_") && !strings.HasPrefix(kv, "PATH=") {
			env = append(env, kv)
		}
	}
	return append(env, "PATH="+filepath.Join(root, "bin")+":"+os.Getenv("PATH"))
}

// startUp starts `strangler up` in the background and waits until the
// proxy, the admin API and the services answer. Again after up has exited
// (a guide that kills it, as 03-extract-orders.md does, then starts it
// again as its reader does), it starts a new up on the same data dir, whose
// output follows the last one's in upLog; while up runs, it fails.
func (g *guideEnv) startUp(t *testing.T) {
	t.Helper()
	if g.up != nil {
		select {
		case err := <-g.upDone:
			t.Logf("strangler up exited (%v); starting it again on the same data dir", err)
			g.up = nil
		default:
			t.Fatal("strangler up is already running")
		}
	}
	if g.upLog == nil {
		g.upLog = &bytes.Buffer{}
	}
	g.up = exec.Command(filepath.Join(g.root, "bin", "strangler"), "up")
	g.up.Dir, g.up.Env = g.root, g.env
	g.up.Stdout, g.up.Stderr = g.upLog, g.upLog
	if err := g.up.Start(); err != nil {
		t.Fatal(err)
	}
	g.upDone = make(chan error, 1)
	go func() { g.upDone <- g.up.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for _, url := range []string{"http://127.0.0.1:9001/readyz", "http://127.0.0.1:8081/readyz", "http://127.0.0.1:9101/readyz", "http://127.0.0.1:9103/readyz", "http://127.0.0.1:8080/api/catalog/products?limit=1"} {
		for {
			resp, err := http.Get(url)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not ready within 60s; up's output:\n%s", url, g.upLog.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// The services register with the proxy on their own, once they run.
	// Until the proxy has an instance of each, a write to a flipped module
	// gets 503 (the shop's write modules let nothing fall back to the
	// monolith), so the load resumes after a restart only once it has.
	for _, backend := range []string{"inventory-service", "orders-service"} {
		registered := regexp.MustCompile(`(?m)^strangler_proxy_backend_instances\{backend="` + backend + `",state="healthy"\} [1-9]`)
		for !registered.MatchString(adminMetrics("127.0.0.1:8081")) {
			if time.Now().After(deadline) {
				t.Fatalf("the proxy has no healthy instance of %s within 60s; up's output:\n%s", backend, g.upLog.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// The second replica outlives an up that was killed: it runs apart,
	// on the shared control store, as a replica on another machine does.
	if g.controlDSN != "" && g.replica == nil {
		g.startReplica(t)
	}
}

// startReplica starts the second proxy replica on up's control store and
// waits until it is ready, at the version up's proxy serves.
func (g *guideEnv) startReplica(t *testing.T) {
	t.Helper()
	g.replicaAddr, g.replicaAdmin = lifecycletest.FreeAddr(t), lifecycletest.FreeAddr(t)
	g.replica = startBackground(t, g, fmt.Sprintf("strangler proxy --control-dsn '%s' --addr %s --admin-addr %s --state-dir %s",
		g.controlDSN, g.replicaAddr, g.replicaAdmin, filepath.Join(t.TempDir(), "replica")))
	g.replica.waitHealthy(t, "the second proxy replica", "http://"+g.replicaAdmin+"/readyz")
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, want := readyzVersion("127.0.0.1:8081")
		if _, v := readyzVersion(g.replicaAdmin); v == want {
			t.Logf("second proxy replica at %s (admin %s) ready at table version %d, on the control store up's proxy shares", g.replicaAddr, g.replicaAdmin, v)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the second proxy replica is not at up's version %d within 60s; its output:\n%s", want, g.replica.output())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitReplica waits until the second proxy replica, if one runs, sees the
// system up (its /readyz answers 200 and every backend instance it knows
// is healthy) or, with up false, down (its /readyz fails: it found the
// monolith unreachable). The replica outlives a crash of up, as a replica
// on another machine does, and a load balancer sends it requests again
// only once it is ready.
func (g *guideEnv) waitReplica(t *testing.T, up bool) {
	t.Helper()
	if g.replica == nil {
		return
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		status, _ := readyzVersion(g.replicaAdmin)
		if !up && status != http.StatusOK && status != 0 {
			return
		}
		if up && status == http.StatusOK && !strings.Contains(adminMetrics(g.replicaAdmin), `state="unhealthy"} 1`) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the second proxy replica does not see the system %s within 60s (/readyz %d); its output:\n%s",
				map[bool]string{true: "up", false: "down"}[up], status, withoutAccess(g.replica.output()))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// adminMetrics is what a proxy's admin listener serves at /metrics, or ""
// when it does not answer.
func adminMetrics(admin string) string {
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// readyzVersion is a proxy's /readyz status and the table version it
// serves; status 0 when it does not answer.
func readyzVersion(admin string) (int, int64) {
	resp, err := http.Get("http://" + admin + "/readyz")
	if err != nil {
		return 0, 0
	}
	defer resp.Body.Close()
	var body struct {
		Control struct {
			Version int64 `json:"version"`
		} `json:"control"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body.Control.Version
}

// checkReplicas fails the test unless both replicas serve one table
// version once a phase command returned: `strangler phase` reports a
// phase done only when every live replica serves its routing.
func (g *guideEnv) checkReplicas(t *testing.T, name string) {
	t.Helper()
	if g.replica == nil {
		return
	}
	su, vu := readyzVersion("127.0.0.1:8081")
	sr, vr := readyzVersion(g.replicaAdmin)
	if su != http.StatusOK || sr != http.StatusOK || vu != vr {
		t.Fatalf("%s: after the phase command, up's proxy is at version %d (/readyz %d) and the second replica at %d (/readyz %d); its output:\n%s",
			name, vu, su, vr, sr, g.replica.output())
	}
	t.Logf("%s: both proxy replicas serve table version %d", name, vu)
}

func (g *guideEnv) stop() {
	for _, pgid := range g.groups {
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
	}
	g.groups = nil
	if g.replica != nil {
		g.replica.stop()
		g.replica = nil
	}
	if g.up == nil || g.up.Process == nil {
		return
	}
	_ = g.up.Process.Signal(os.Interrupt)
	select {
	case <-g.upDone:
	case <-time.After(15 * time.Second):
		_ = g.up.Process.Kill()
		<-g.upDone
	}
	g.up = nil
	if dir := os.Getenv("STRANGLER_GUIDE_LOG_DIR"); dir != "" && g.upLog != nil {
		_ = os.WriteFile(filepath.Join(dir, g.logName), g.upLog.Bytes(), 0o600)
	}
}

// run runs a block and returns its combined output.
func (g *guideEnv) run(script string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-eo", "pipefail", "-c", script)
	cmd.Dir, cmd.Env = g.root, g.env
	if g.dir != "" {
		cmd.Dir = g.dir
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.CombinedOutput()
	if cmd.Process != nil {
		g.groups = append(g.groups, cmd.Process.Pid)
	}
	return string(out), err
}

func runGuide(t *testing.T, g *guideEnv, path string, load *loadGen) {
	// down is set from a guide's crash block, which kills up on purpose,
	// until the block that starts it again: the load pauses meanwhile.
	down := false
	for _, b := range parseGuide(t, path) {
		name := fmt.Sprintf("%s:%d", filepath.Base(path), b.line)
		script := strings.TrimSpace(b.script)
		if script == "strangler up" {
			g.startUp(t)
			if down {
				g.waitReplica(t, true)
				down = false
				load.resume()
			}
			continue
		}
		if load != nil {
			if m := load.w.phases.FindStringSubmatch(script); m != nil {
				label := m[1]
				if m[2] != "" {
					label += " " + m[2]
				}
				load.setPhase(label)
			}
			if load.w.crash != nil && load.w.crash.MatchString(script) {
				// The crash block takes the whole system down, up and
				// every component in it, and the blocks up to the
				// restart look at what it left: the load pauses, so that
				// the requests that go unanswered are the block's own.
				load.pause()
				down = true
			}
			if m := verifyCmd.FindStringSubmatch(script); m != nil && !strings.Contains(script, "--recheck") {
				// A verify without --recheck is the guide's corruption
				// demo: the load pauses and the sync drains, so that no
				// order touches the corrupted row meanwhile. The guide's
				// other verifies run under the load, with --recheck.
				load.pause()
				waitSynced(t, g, m[1])
			}
		}
		out, err := g.run(script)
		if load != nil && !down {
			load.resume()
		}
		t.Logf("%s\n$ %s\n%s", name, script, out)
		if err != nil {
			t.Fatalf("%s: %v\n%s\nup's log tail:\n%s", name, err, out, tail(g.upLog, 40))
		}
		if err := matchOutput(b.expect, out); err != nil {
			t.Fatalf("%s: %v\noutput:\n%s\nthe proxy's fallbacks to legacy so far:\n%s\nup's log tail:\n%s", name, err, out, fallbacks(g.upLog), tail(g.upLog, 40))
		}
		if down && load.w.crash.MatchString(script) {
			g.waitReplica(t, false)
		}
		if load != nil && load.pacer == nil && load.w.startAfter != nil && load.w.startAfter.MatchString(script) {
			load.start()
		}
		if anyPhaseCmd.MatchString(script) {
			g.checkReplicas(t, name)
		}
		if load != nil && load.w.phases.MatchString(script) {
			// Each phase serves the load for a while, so that its figures
			// mean something.
			time.Sleep(3 * time.Second)
		}
	}
}

// verifyCmd is a guide's verify command, with the check's name.
var verifyCmd = regexp.MustCompile(`strangler verify (\w+)`)

func tail(b *bytes.Buffer, n int) string {
	if b == nil {
		return ""
	}
	lines := strings.Split(b.String(), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// fallbacks lists up's proxy's access lines whose request fell back to
// legacy, the first 10 and a count.
func fallbacks(log *bytes.Buffer) string {
	if log == nil {
		return ""
	}
	var out []string
	n := 0
	for _, l := range strings.Split(log.String(), "\n") {
		if strings.Contains(l, `"decision":"fallback_`) {
			if n++; n <= 10 {
				out = append(out, l)
			}
		}
	}
	return fmt.Sprintf("%d fallbacks\n%s", n, strings.Join(out, "\n"))
}

// waitSynced waits until the sync lag of module's extraction is zero and,
// for orders, until verify finds its copies in sync: after the ownership
// flip the orders' changes flow back to the monolith through a back sync
// whose lag the status does not report.
func waitSynced(t *testing.T, g *guideEnv, module string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	lagged := true
	for time.Now().Before(deadline) {
		out, err := g.run("strangler status " + module + " -o json")
		if err == nil {
			var st []struct {
				SyncLag int64 `json:"sync_lag"`
			}
			if json.Unmarshal([]byte(out), &st) == nil && len(st) == 1 && st[0].SyncLag == 0 {
				// Lag counts what reached the broker; give the relays a
				// moment for what is still in an outbox.
				time.Sleep(500 * time.Millisecond)
				lagged = false
				break
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	if lagged {
		t.Logf("the %s sync lag did not reach 0 within 30s", module)
	}
	if module != "orders" {
		return
	}
	for time.Now().Before(deadline) {
		if _, err := g.run("strangler verify orders"); err == nil {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("the %s copies did not settle within 30s", module)
}

func TestGuides(t *testing.T) {
	if testing.Short() {
		t.Skip("the guides run a whole system; skipped with -short")
	}
	runGuides(t, "SQLite", "", nil)
}

// TestGuidesPostgres runs the same guides, load included, on the
// production path: the monolith and both services on Postgres databases of
// their own, and the proxy as two replicas on a shared control store in
// another (control.dsn), up's and a `strangler proxy` beside it. The
// guides' commands go through up's replica; the load is spread over both;
// after each phase command both must serve the same table version, and not
// one request may fail.
func TestGuidesPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("the guides run a whole system; skipped with -short")
	}
	control := dbtest.PostgresDSN(t)
	runGuides(t, "Postgres, two proxy replicas on one control store", control, []string{
		"STRANGLER_MONOLITH_DSN=" + dbtest.PostgresDSN(t),
		"STRANGLER_SERVICES_INVENTORY_DSN=" + dbtest.PostgresDSN(t),
		"STRANGLER_SERVICES_ORDERS_DSN=" + dbtest.PostgresDSN(t),
		"STRANGLER_CONTROL_DSN=" + control,
	})
}

// runGuides runs the quick start, then the extraction guide under load, on
// one `strangler up` with env added to its environment, and with a second
// proxy replica beside it if controlDSN is set.
func runGuides(t *testing.T, engine, controlDSN string, env []string) {
	g := newGuideEnv(t)
	g.env = append(g.env, env...)
	g.controlDSN = controlDSN
	t.Run("00-quickstart", func(t *testing.T) {
		runGuide(t, g, "guides/00-quickstart.md", nil)
	})
	if t.Failed() {
		return
	}
	rate := guideRate(t)
	if os.Getenv("STRANGLER_GUIDE_CPU_HOG") == "1" {
		startCPUHog(t)
	}
	bases := []string{"http://127.0.0.1:8080"}
	if g.replica != nil {
		bases = append(bases, "http://"+g.replicaAddr)
	}
	// underLoad runs guide with w's load through bases, reports the
	// figures and fails on oversold stock.
	underLoad := func(t *testing.T, guide string, w workload) {
		load := newLoadGen(t, w, bases, rate)
		load.start()
		runGuide(t, g, guide, load)
		load.stop()
		load.report(t)
		if t.Failed() && g.replica != nil {
			t.Logf("the second proxy replica's log, but its access lines:\n%s", withoutAccess(g.replica.output()))
		}
		checkNotOversold(t)
	}
	t.Run("01-extract-a-module", func(t *testing.T) {
		underLoad(t, "guides/01-extract-a-module.md", shopWorkload(t, bases[0], engine))
	})
	if t.Failed() {
		return
	}
	t.Run("03-extract-orders", func(t *testing.T) {
		underLoad(t, "guides/03-extract-orders.md", ordersWorkload(t, bases[0], engine))
		// Zero drift at the end: with the load stopped and the syncs
		// drained, both extractions' copies agree.
		for _, module := range []string{"inventory", "orders"} {
			waitSynced(t, g, module)
			if out, err := g.run("strangler verify " + module); err != nil {
				t.Errorf("strangler verify %s at the end: %v\n%s", module, err, out)
			}
		}
	})
}

// withoutAccess is a proxy's log without its access and request lines.
func withoutAccess(log string) string {
	var keep []string
	for _, l := range strings.Split(log, "\n") {
		if !strings.Contains(l, `"msg":"access"`) && !strings.Contains(l, `"msg":"request"`) {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// pressroomRate is the steady load of 02-your-own-monolith.md, in
// requests per second: light, as a first walk on a laptop is.
const pressroomRate = 50

// TestGuideYourOwnMonolith runs 02-your-own-monolith.md as its reader does
// on their own app: in a fresh directory, without `strangler up`, against
// Pressroom, a Python app that Strangler's code does not know
// (guides/testdata/pressroom, $PRESSROOM in the guide). The proxy's
// control store is the embedded one. From the block that starts the proxy
// on, a load of pressroomRate requests per second reads authors and
// articles and posts comments through the proxy; the test fails on any
// failed request, and prints the requests and p99 of each phase.
func TestGuideYourOwnMonolith(t *testing.T) {
	if testing.Short() {
		t.Skip("the guide runs a proxy in front of a Python app; skipped with -short")
	}
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("02-your-own-monolith.md's legacy app, Pressroom, needs python3, which is not on PATH")
	}
	root := buildStrangler(t)
	// The proxy's and admin API's defaults, Pressroom and its authors
	// candidate.
	requireFreePorts(t, "8080", "8081", "8599", "8600")
	g := &guideEnv{root: root, dir: t.TempDir()}
	g.env = append(commandEnv(root), "PRESSROOM="+filepath.Join(root, "docs", "guides", "testdata", "pressroom"))
	t.Cleanup(g.stop)
	load := newLoadGen(t, pressroomWorkload(), []string{"http://127.0.0.1:8080"}, pressroomRate)
	t.Cleanup(load.stop)
	runGuide(t, g, "guides/02-your-own-monolith.md", load)
	load.stop()
	load.report(t)
}

// pressroomWorkload reads Pressroom's authors and articles and posts
// comments, each request from one of 200 readers (X-Reader-Id, the
// authors module's sticky key in the guide). It never writes authors, so
// that the legacy and candidate answers the shadow compares are equal.
func pressroomWorkload() workload {
	return workload{
		what:       "Pressroom: 40% authors read, 45% articles and comments read, 10% comments posted, 5% the home page",
		phases:     regexp.MustCompile(`strangler routes (shadow|canary|flip) authors(?: --weight (\d+))?`),
		startAfter: regexp.MustCompile(`strangler proxy --config`),
		request: func(rng *rand.Rand, base string) *http.Request {
			slug := fmt.Sprintf("how-to-%d", 1+rng.IntN(30))
			var req *http.Request
			switch n := rng.IntN(20); {
			case n < 2:
				req, _ = http.NewRequest(http.MethodGet, base+"/api/authors", nil)
			case n < 8:
				req, _ = http.NewRequest(http.MethodGet, fmt.Sprintf("%s/api/authors/%d", base, 1+rng.IntN(3)), nil)
			case n < 13:
				req, _ = http.NewRequest(http.MethodGet, base+"/api/articles/"+slug, nil)
			case n < 16:
				req, _ = http.NewRequest(http.MethodGet, base+"/api/articles/"+slug+"/comments", nil)
			case n < 18:
				req, _ = http.NewRequest(http.MethodPost, base+"/api/articles/"+slug+"/comments", strings.NewReader(`{"text":"Well put."}`))
				req.Header.Set("Content-Type", "application/json")
			case n < 19:
				req, _ = http.NewRequest(http.MethodGet, base+"/api/articles", nil)
			default:
				req, _ = http.NewRequest(http.MethodGet, base+"/", nil)
			}
			req.Header.Set("X-Reader-Id", fmt.Sprintf("reader-%d", rng.IntN(200)))
			return req
		},
	}
}

// loadGen sends a workload through the proxy at a steady rate, counting
// results per phase of the guide.
type loadGen struct {
	t *testing.T
	w workload
	// bases are the proxies the load is spread over, in turn.
	bases  []string
	next   atomic.Uint64
	rate   int
	client *http.Client

	pacer  *loadgen.Pacer
	cancel context.CancelFunc
	done   chan loadgen.Lag
	lag    loadgen.Lag

	mu     sync.Mutex
	phase  string
	since  time.Time
	order  []string
	stats  map[string]*phaseStats
	paused bool
}

type phaseStats struct {
	// active is the time the phase ran with the load on.
	active                     time.Duration
	requests, failed, business int
	// late counts the phase's sends that started more than lateAfter
	// after their planned time: the generator's lag, not the system's.
	late      int
	latencies []time.Duration
	failures  []string
}

// The load's request timeout and the bound on the generator's lag: the
// test fails on a request that did not get an answer within loadTimeout,
// and when more than maxLateFraction of the planned sends started more than
// lateAfter late (or never started), since the load it then applied was
// not the load it promises.
const (
	loadTimeout     = 10 * time.Second
	lateAfter       = time.Second
	maxLateFraction = 0.02
)

// loadWorkers is how many sends the generator keeps in flight at rate:
// enough for every send of a loadTimeout, so that the system's slow
// answers, which fail on their own once they take longer, never hold a
// planned send back. A late send is then the generator's own lag (its
// process starved of CPU), not the system's latency.
func loadWorkers(rate int) int { return max(256, rate*int(loadTimeout/time.Second)) }

// guideRate is the load's rate, from STRANGLER_GUIDE_RATE (default 250
// requests/s).
func guideRate(t *testing.T) int {
	v := os.Getenv("STRANGLER_GUIDE_RATE")
	if v == "" {
		return 250
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("STRANGLER_GUIDE_RATE=%q: want a positive number of requests per second", v)
	}
	return n
}

// startCPUHog starts a busy loop beside the test, pinned to CPU 0 with
// taskset when it is installed, and kills it when the test ends. timeout
// bounds it in case the test process dies without its cleanup.
func startCPUHog(t *testing.T) {
	t.Helper()
	args := []string{"timeout", "30m", "sh", "-c", "while :; do :; done"}
	pinned := "not pinned: taskset is not installed"
	if path, err := exec.LookPath("taskset"); err == nil {
		args = append([]string{path, "-c", "0"}, args...)
		pinned = "pinned to CPU 0"
	}
	hog := exec.Command(args[0], args[1:]...)
	hog.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := hog.Start(); err != nil {
		t.Fatalf("start the CPU hog: %v", err)
	}
	t.Logf("CPU hog: a busy loop beside the system (pid %d), %s", hog.Process.Pid, pinned)
	t.Cleanup(func() {
		_ = syscall.Kill(-hog.Process.Pid, syscall.SIGKILL)
		_ = hog.Wait()
	})
}

// workload is what a loadGen sends, and how it tells the phases of a guide
// and the answers apart.
type workload struct {
	// what says what is sent and where, for the report's first line.
	what string
	// phases finds a guide's command that starts a phase: the phase in
	// group 1, a canary weight in group 2 if any.
	phases *regexp.Regexp
	// startAfter, if not nil, finds the guide's block after which the load
	// starts (the one that starts the proxy); if nil, the caller starts it.
	startAfter *regexp.Regexp
	// request makes one request to the proxy at base.
	request func(rng *rand.Rand, base string) *http.Request
	// business reports whether an answer of 400 or more is a business
	// outcome (out of stock), not a failure; nil when none is.
	business func(status int, body []byte) bool
	// businessName heads the report's column of business outcomes.
	businessName string
	// observe, if not nil, sees each answer below 400, with its request:
	// a workload that reads what it wrote learns the ids here.
	observe func(req *http.Request, status int, body []byte)
	// crash, if not nil, finds the guide's block that kills the whole
	// system on purpose: the load pauses from it until the block that
	// starts `strangler up` again.
	crash *regexp.Regexp
}

func newLoadGen(t *testing.T, w workload, bases []string, rate int) *loadGen {
	l := &loadGen{t: t, w: w, bases: bases, rate: rate, stats: map[string]*phaseStats{},
		client: &http.Client{Timeout: loadTimeout, Transport: &http.Transport{MaxIdleConnsPerHost: loadWorkers(rate)}}}
	l.since = time.Now()
	l.setPhase("legacy")
	return l
}

// phaseCmd is a command of guide 01 that starts a phase of the inventory
// extraction, ordersPhaseCmd one of guide 03 for the orders extraction, and
// anyPhaseCmd either.
var (
	phaseCmd       = regexp.MustCompile(`strangler phase inventory (\w+)(?: --weight (\d+))?`)
	ordersPhaseCmd = regexp.MustCompile(`strangler phase orders (\w+)(?: --weight (\d+))?`)
	anyPhaseCmd    = regexp.MustCompile(`strangler phase \w+ \w+`)
)

// product is an active product of the shop, as the load orders it.
type product struct{ sku, ref string }

// activeProducts reads the shop's active products through base, but those
// with a SKU in except.
func activeProducts(t *testing.T, base string, except ...string) []product {
	t.Helper()
	resp, err := http.Get(base + "/api/catalog/products?limit=100")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var page struct {
		Items []struct {
			SKU    string `json:"sku"`
			Ref    string `json:"product_ref"`
			Active bool   `json:"active"`
		} `json:"items"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		t.Fatal(err)
	}
	var ps []product
	for _, p := range page.Items {
		if p.Active && !slices.Contains(except, p.SKU) {
			ps = append(ps, product{sku: p.SKU, ref: p.Ref})
		}
	}
	if len(ps) == 0 {
		t.Fatal("no active products to load with")
	}
	return ps
}

// shopWorkload places orders and reads stock, two reads for every order
// placed, on the shop's active products, which it reads through base.
func shopWorkload(t *testing.T, base, engine string) workload {
	ps := activeProducts(t, base)
	return workload{
		what:   "2 stock reads per order, databases on " + engine,
		phases: phaseCmd,
		request: func(rng *rand.Rand, base string) *http.Request {
			var req *http.Request
			p := ps[rng.IntN(len(ps))]
			if rng.IntN(3) < 2 {
				req, _ = http.NewRequest(http.MethodGet, base+"/api/inventory/stock/"+p.ref, nil)
			} else {
				req = placeOrder(base, 1+rng.IntN(20), p.sku, 1+rng.IntN(2))
			}
			req.Header.Set("X-User-Id", fmt.Sprintf("user-%d", rng.IntN(500)))
			return req
		},
		business:     outOfStock,
		businessName: "out-of-stock",
	}
}

// placeOrder is the request that places an order of quantity units of sku
// for customer through base.
func placeOrder(base string, customer int, sku string, quantity int) *http.Request {
	body := fmt.Sprintf(`{"customer_id":%d,"lines":[{"sku":%q,"quantity":%d}]}`, customer, sku, quantity)
	req, _ := http.NewRequest(http.MethodPost, base+"/api/orders", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return req
}

// outOfStock reports whether an answer is the shop's refusal of an order
// for want of stock, a business outcome.
func outOfStock(status int, body []byte) bool {
	return status == http.StatusConflict && bytes.Contains(body, []byte("#out-of-stock"))
}

// The burst of 03-extract-orders.md's crash orders crashSKU for customer
// crashCustomer, whom the guide creates; its load orders neither, so that
// the guide's checks of the burst's stock and credit hold under it.
const (
	crashSKU      = "TEA-SEN-100"
	crashCustomer = 21
)

// ordersWorkload is 03-extract-orders.md's load: 20% orders placed, 25%
// reads of an order by id (one the load placed at least readAfter ago),
// 20% of a customer's orders, 15% of the newest orders, 20% stock reads.
// Refusals for stock or credit are business outcomes. At 250 requests/s
// that is 50 placements a second; at 100 (two in five), the saga on
// Postgres, with the proxy's replicas, the monolith, both services and the
// load on this 2-core machine, did not recover from the guide's crash
// within the requests' 10 s timeout (see the closing note of stop 17).
func ordersWorkload(t *testing.T, base, engine string) workload {
	ps := activeProducts(t, base, crashSKU)
	placed := &placedOrders{}
	return workload{
		what:   "orders: 20% placed, 60% read by id, by customer or newest; 20% stock reads; databases on " + engine,
		phases: ordersPhaseCmd,
		crash:  regexp.MustCompile(`kill -9`),
		request: func(rng *rand.Rand, base string) *http.Request {
			var req *http.Request
			p := ps[rng.IntN(len(ps))]
			switch n := rng.IntN(20); {
			case n < 4:
				req = placeOrder(base, 1+rng.IntN(crashCustomer-1), p.sku, 1+rng.IntN(2))
			case n < 9:
				url := base + "/api/orders?limit=20"
				if id := placed.pick(rng); id != 0 {
					url = fmt.Sprintf("%s/api/orders/%d", base, id)
				}
				req, _ = http.NewRequest(http.MethodGet, url, nil)
			case n < 13:
				req, _ = http.NewRequest(http.MethodGet, fmt.Sprintf("%s/api/orders?customer_id=%d", base, 1+rng.IntN(crashCustomer-1)), nil)
			case n < 16:
				req, _ = http.NewRequest(http.MethodGet, base+"/api/orders?limit=20", nil)
			default:
				req, _ = http.NewRequest(http.MethodGet, base+"/api/inventory/stock/"+p.ref, nil)
			}
			req.Header.Set("X-User-Id", fmt.Sprintf("user-%d", rng.IntN(500)))
			return req
		},
		observe: func(req *http.Request, status int, body []byte) {
			if req.Method == http.MethodPost && status == http.StatusCreated {
				var o struct {
					ID int64 `json:"id"`
				}
				if json.Unmarshal(body, &o) == nil && o.ID != 0 {
					placed.add(o.ID)
				}
			}
		},
		business: func(status int, body []byte) bool {
			return outOfStock(status, body) || status == http.StatusUnprocessableEntity && bytes.Contains(body, []byte("#payment-declined"))
		},
		businessName: "refused",
	}
}

// readAfter is how old an order the orders load reads by id must be: a
// read that the proxy sends to the other side than the write follows it
// by the sync's lag, and the load reads orders, as a shop's customers do,
// some time after placing them.
const readAfter = 5 * time.Second

// placedOrders are the ids of the last orders the load placed, with when.
type placedOrders struct {
	mu  sync.Mutex
	ids []int64
	at  []time.Time
}

// maxPlaced bounds the ids kept.
const maxPlaced = 4096

func (p *placedOrders) add(id int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.ids) == maxPlaced {
		p.ids, p.at = p.ids[1:], p.at[1:]
	}
	p.ids, p.at = append(p.ids, id), append(p.at, time.Now())
}

// pick returns an order placed at least readAfter ago, or 0 when there is
// none yet.
func (p *placedOrders) pick(rng *rand.Rand) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	cutoff := time.Now().Add(-readAfter)
	n := sort.Search(len(p.at), func(i int) bool { return p.at[i].After(cutoff) })
	if n == 0 {
		return 0
	}
	return p.ids[rng.IntN(n)]
}

func (l *loadGen) setPhase(p string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if p == l.phase {
		return
	}
	for n := 2; l.stats[p] != nil; n++ {
		p = fmt.Sprintf("%s #%d", strings.SplitN(p, " #", 2)[0], n)
	}
	now := time.Now()
	if cur := l.stats[l.phase]; cur != nil {
		cur.active += now.Sub(l.since)
	}
	l.since = now
	l.stats[p] = &phaseStats{}
	l.order = append(l.order, p)
	l.phase = p
}

// pause stops the load, and the clock of the phase.
func (l *loadGen) pause() {
	if l.pacer == nil {
		return
	}
	l.pacer.Pause()
	l.mu.Lock()
	if !l.paused {
		l.stats[l.phase].active += time.Since(l.since)
	}
	l.paused = true
	l.mu.Unlock()
	time.Sleep(200 * time.Millisecond)
}

func (l *loadGen) resume() {
	if l.pacer == nil {
		return
	}
	l.mu.Lock()
	if l.paused {
		l.since = time.Now()
		l.paused = false
	}
	l.mu.Unlock()
	l.pacer.Resume()
}

// start sends at the rate, each worker with a random source of its own.
func (l *loadGen) start() {
	rngs := make([]*rand.Rand, loadWorkers(l.rate))
	for w := range rngs {
		rngs[w] = rand.New(rand.NewPCG(uint64(w), 7))
	}
	l.pacer = loadgen.New(loadgen.Config{Rate: l.rate, Workers: len(rngs), Late: lateAfter}, func(w int, lag time.Duration) {
		l.one(rngs[w], lag)
	})
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel, l.done = cancel, make(chan loadgen.Lag, 1)
	// The phase's clock runs from the first send.
	l.mu.Lock()
	l.since = time.Now()
	l.mu.Unlock()
	go func() { l.done <- l.pacer.Run(ctx) }()
}

// stop ends the load and waits for its sends; again, or before start, it
// does nothing.
func (l *loadGen) stop() {
	if l.done == nil {
		return
	}
	l.cancel()
	l.lag = <-l.done
	l.done = nil
	l.mu.Lock()
	if !l.paused {
		l.stats[l.phase].active += time.Since(l.since)
	}
	l.paused = true
	l.mu.Unlock()
}

// one sends one request of the workload, lag after its planned time.
func (l *loadGen) one(rng *rand.Rand, lag time.Duration) {
	req := l.w.request(rng, l.bases[l.next.Add(1)%uint64(len(l.bases))])
	start := time.Now()
	resp, err := l.client.Do(req)
	d := time.Since(start)
	if err != nil {
		l.record(d, lag, false, req.Method+" "+req.URL.Path+": "+err.Error())
		return
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	switch {
	case resp.StatusCode < 400:
		if l.w.observe != nil {
			l.w.observe(req, resp.StatusCode, b)
		}
		l.record(d, lag, false, "")
	case l.w.business != nil && l.w.business(resp.StatusCode, b):
		l.record(d, lag, true, "")
	default:
		l.record(d, lag, false, fmt.Sprintf("%s %s: %d %s", req.Method, req.URL.Path, resp.StatusCode, b))
	}
}

func (l *loadGen) record(d, lag time.Duration, business bool, failure string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.stats[l.phase]
	s.requests++
	if lag > lateAfter {
		s.late++
	}
	if business {
		s.business++
	}
	if failure != "" {
		s.failed++
		if len(s.failures) < 5 {
			s.failures = append(s.failures, failure)
		}
	}
	s.latencies = append(s.latencies, d)
}

func (l *loadGen) report(t *testing.T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var sb strings.Builder
	business := l.w.businessName
	if business == "" {
		business = "business"
	}
	fmt.Fprintf(&sb, "load through %d proxy replica(s) at %d requests/s (%s):\n", len(l.bases), l.rate, l.w.what)
	fmt.Fprintf(&sb, "%-14s %9s %7s %7s %12s %6s %9s %9s\n", "phase", "requests", "req/s", "failed", business, "late", "p50", "p99")
	total, failed := 0, 0
	var active time.Duration
	for _, p := range l.order {
		s := l.stats[p]
		total += s.requests
		failed += s.failed
		active += s.active
		fmt.Fprintf(&sb, "%-14s %9d %7.0f %7d %12d %6d %9s %9s\n", p, s.requests, float64(s.requests)/max(s.active.Seconds(), 0.001), s.failed, s.business,
			s.late, pct(s.latencies, 0.50), pct(s.latencies, 0.99))
	}
	rate := float64(total) / max(active.Seconds(), 0.001)
	fmt.Fprintf(&sb, "system: %d requests in %.1fs under load (%.0f/s), %d failed\n", total, active.Seconds(), rate, failed)
	fmt.Fprintf(&sb, "load generator: %s; the bound is %.0f%% late by > %s\n", l.lag, 100*maxLateFraction, lateAfter)
	t.Log(sb.String())
	fmt.Print(sb.String())
	for _, p := range l.order {
		for _, f := range l.stats[p].failures {
			t.Errorf("phase %s: failed request: %s", p, f)
		}
	}
	if f := l.lag.LateFraction(); f > maxLateFraction {
		t.Errorf("the load generator fell behind its plan: %.1f%% of its sends were late by more than %s or never sent (bound %.0f%%), max delay %s; the system was not loaded at %d requests/s",
			100*f, lateAfter, 100*maxLateFraction, l.lag.Max.Round(time.Millisecond), l.rate)
	}
}

func pct(ds []time.Duration, q float64) string {
	if len(ds) == 0 {
		return "-"
	}
	return loadgen.Percentile(ds, q).Round(100 * time.Microsecond).String()
}

// checkNotOversold reads every stock level through the proxy and fails on
// any level with more units reserved than on hand, or a negative count.
func checkNotOversold(t *testing.T) {
	t.Helper()
	cursor := ""
	levels := 0
	for {
		url := "http://127.0.0.1:8080/api/inventory/stock?limit=100"
		if cursor != "" {
			url += "&cursor=" + cursor
		}
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", url, resp.Status)
		}
		var page struct {
			Items []struct {
				Ref       string `json:"product_ref"`
				Warehouse string `json:"warehouse"`
				OnHand    int    `json:"on_hand"`
				Reserved  int    `json:"reserved"`
				Available int    `json:"qty_available"`
			} `json:"items"`
			Next string `json:"next_cursor"`
		}
		err = json.NewDecoder(bufio.NewReader(resp.Body)).Decode(&page)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range page.Items {
			levels++
			if l.Reserved > l.OnHand || l.OnHand < 0 || l.Reserved < 0 || l.Available != l.OnHand-l.Reserved {
				t.Errorf("oversold or inconsistent: %+v", l)
			}
		}
		if page.Next == "" {
			break
		}
		cursor = page.Next
	}
	if levels == 0 {
		t.Error("no stock levels read")
	}
}
