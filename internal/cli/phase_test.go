package cli

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/phase"
	"github.com/stranglerkit/strangler/proxy/adminclient"
	"github.com/stranglerkit/strangler/proxy/proxytest"
)

// TestPhaseRollbackFromRetire rolls a module back from retire to canary
// reads while clients write through the proxy. The legacy backend refuses
// writes (409) while its write path is retired, as the shop's monolith
// does, and its component un-retires it when it applies a phase below
// retire. The proxy must send the writes back to legacy only once the
// component has applied such a phase, so not one write is refused.
func TestPhaseRollbackFromRetire(t *testing.T) {
	var retired atomic.Bool
	legacy := proxytest.HandlerBackend(t, "legacy", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend", "legacy")
		if r.Method == http.MethodPost && retired.Load() {
			http.Error(w, "write path retired", http.StatusConflict)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	svc := proxytest.EchoBackend(t, "orders-svc")
	p := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL, Routes: staticOrdersTable(svc.URL)})
	dir := t.TempDir()
	file := filepath.Join(dir, "strangler.yaml")
	plan := "phases:\n  modules:\n    - {name: orders, read_routes: orders, write_routes: orders-writes, components: [monolith]}\n"
	if err := os.WriteFile(file, []byte(plan), 0o600); err != nil {
		t.Fatal(err)
	}
	// The legacy backend's component: retired from phase retire on, as
	// extracted/shop's monolith applies it.
	c, err := adminclient.New(p.AdminAddr(), proxytest.Token, adminclient.WithActor("monolith"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	watched := make(chan error, 1)
	go func() {
		watched <- c.WatchPhase(ctx, "orders", "monolith", 20*time.Millisecond, slog.New(slog.DiscardHandler), func(_ context.Context, ph int) error {
			retired.Store(phase.Phase(ph) >= phase.Retire)
			return nil
		})
	}()
	defer func() { cancel(); <-watched }()
	phaseCLI := func(args ...string) {
		t.Helper()
		code, out, errOut := runRoutesCLI(append([]string{"--config", file, "--data-dir", dir, "phase", "orders", "--admin", p.AdminAddr(), "--token", proxytest.Token, "--wait", "30s"}, args...)...)
		if code != 0 {
			t.Fatalf("phase orders %v: exit %d\n%s%s", args, code, out, errOut)
		}
	}
	for _, ph := range []string{"sync", "shadow", "flip", "retire"} {
		phaseCLI(ph)
	}

	// Clients write through the proxy while the phase rolls back.
	stop := make(chan struct{})
	var (
		wg       sync.WaitGroup
		writes   atomic.Int64
		mu       sync.Mutex
		refusals []string
	)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := http.Post(p.URL+"/api/orders", "application/json", strings.NewReader(`{}`))
				if err != nil {
					t.Error(err)
					return
				}
				writes.Add(1)
				if resp.StatusCode != http.StatusOK {
					mu.Lock()
					refusals = append(refusals, resp.Status+" from "+resp.Header.Get("X-Backend"))
					mu.Unlock()
				}
				resp.Body.Close()
			}
		}()
	}
	phaseCLI("canary", "--weight", "100")
	close(stop)
	wg.Wait()
	if len(refusals) > 0 {
		t.Fatalf("%d of %d writes refused during the rollback from retire, the first: %s", len(refusals), writes.Load(), refusals[0])
	}
	if legacy.Hits() == 0 {
		t.Fatal("no write reached legacy after the rollback")
	}
	t.Logf("%d writes during the rollback from retire, none refused", writes.Load())
}
