package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/stranglerkit/strangler/changefeed/changefeedtest"
	"github.com/stranglerkit/strangler/proxy/adminclient"
	"github.com/stranglerkit/strangler/proxy/proxytest"
	"github.com/stranglerkit/strangler/proxy/routes"
)

// backSyncGroup is the back sync's consumer group in the plan of
// TestPhaseRollbackWaitsForBackSync; its topic is strangler.order.
const backSyncGroup = "orders-back-sync"

// assertModes fails the test unless the orders phase is want and the read
// and write modules route as reads and writes.
func assertModes(t *testing.T, c *adminclient.Client, want int, reads, writes routes.Mode) {
	t.Helper()
	ctx := context.Background()
	if st, err := c.Phase(ctx, "orders"); err != nil || st.Phase != want {
		t.Fatalf("orders phase: %+v, %v; want phase %d", st, err, want)
	}
	for m, mode := range map[string]routes.Mode{"orders": reads, "orders-writes": writes} {
		if mod, err := c.Module(ctx, m); err != nil || mod.Mode != mode {
			t.Fatalf("module %s: %+v, %v; want %s", m, mod, err, mode)
		}
	}
}

// TestPhaseRollbackWaitsForBackSync rolls a flipped, then retired, module
// back to shadow while its back sync's group has not consumed the
// service's last events (published to its topic on a real broker). With a
// short --wait, or --wait 0, the rollback fails with one line naming the
// group and how far behind it is, and changes nothing: the phase stays,
// reads and writes stay on the service. Run again with a long --wait, it
// sends the writes back to legacy and holds the
// reads on the service until a consumer of the group commits up to the
// end offsets taken then (an event published later does not hold it);
// the audit log shows the writes moved before the reads. `strangler
// status` reports the group's lag.
func TestPhaseRollbackWaitsForBackSync(t *testing.T) {
	legacy := proxytest.EchoBackend(t, "legacy")
	svc := proxytest.EchoBackend(t, "orders-svc")
	p := proxytest.Start(t, proxytest.Config{Legacy: legacy.URL, Routes: staticOrdersTable(svc.URL)})
	b := changefeedtest.NewBroker(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "strangler.yaml")
	cfg := fmt.Sprintf("kafka:\n  brokers: [%s]\nphases:\n  modules:\n    - {name: orders, read_routes: orders, write_routes: orders-writes, back_sync_group: %s, back_sync_aggregates: [order]}\n", b.Addr(), backSyncGroup)
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	phaseCLI := func(stderr *proxytest.Buffer, args ...string) (int, string) {
		var out bytes.Buffer
		code := Main(append([]string{"--config", file, "--data-dir", dir, "phase", "orders", "--admin", p.AdminAddr(), "--token", proxytest.Token}, args...), &out, stderr)
		return code, out.String()
	}
	c := p.Admin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, ph := range []string{"shadow", "flip"} {
		var errOut proxytest.Buffer
		if code, out := phaseCLI(&errOut, ph, "--wait", "30s"); code != 0 {
			t.Fatalf("phase %s: exit %d\n%s%s", ph, code, out, errOut.String())
		}
	}
	assertModes(t, c, 4, routes.ModeExtracted, routes.ModeExtracted)

	// The service's events that the back sync has not consumed yet.
	w := &kafka.Writer{Addr: kafka.TCP(b.Addr()), Topic: "strangler.order", AllowAutoTopicCreation: true, BatchTimeout: time.Millisecond}
	defer w.Close()
	publish := func(value string, n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			if err := w.WriteMessages(ctx, kafka.Message{Key: []byte(fmt.Sprintf("order-%d", i)), Value: []byte(value)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish("before", 5)
	var statusOut, statusErr bytes.Buffer
	if code := Main([]string{"--config", file, "--data-dir", dir, "status", "orders", "--admin", p.AdminAddr(), "--token", proxytest.Token, "-o", "json"}, &statusOut, &statusErr); code != 0 {
		t.Fatalf("status: exit %d\n%s%s", code, statusOut.String(), statusErr.String())
	}
	var sts []Status
	if err := json.Unmarshal(statusOut.Bytes(), &sts); err != nil || len(sts) != 1 || sts[0].BackSyncLag != 5 || sts[0].SyncLag != -1 {
		t.Fatalf("status with the back sync 5 events behind: %v\n%s\nwant back_sync_lag 5 and sync_lag -1 (no sync group)", err, statusOut.String())
	}

	// From flip, and from retire with one check: each fails and changes
	// nothing.
	for _, tc := range []struct {
		from  string
		phase int
		wait  string
	}{
		{"flip", 4, "300ms"},
		{"retire", 5, "0"},
	} {
		var errOut proxytest.Buffer
		if tc.from == "retire" {
			if code, out := phaseCLI(&errOut, "retire"); code != 0 {
				t.Fatalf("phase retire: exit %d\n%s%s", code, out, errOut.String())
			}
		}
		code, out := phaseCLI(&errOut, "shadow", "--wait", tc.wait)
		stderr := strings.TrimSpace(errOut.String())
		cause := stderr[strings.LastIndex(stderr, "\n")+1:]
		if code == 0 || !strings.HasPrefix(cause, "strangler: ") || !strings.Contains(cause, "consumer group "+backSyncGroup) ||
			!strings.Contains(cause, "5 events behind") || !strings.Contains(cause, "nothing was changed") {
			t.Fatalf("rollback from %s with the back sync 5 events behind: exit %d\n%s%s\nwant a last line naming group %s, 5 events behind, nothing changed", tc.from, code, out, stderr, backSyncGroup)
		}
		t.Logf("from %s with the back sync behind: %s", tc.from, cause)
		assertModes(t, c, tc.phase, routes.ModeExtracted, routes.ModeExtracted)
	}

	// The same rollback from retire with time to wait: the monolith's
	// write path comes back (flip), the writes go back to it, and the
	// reads wait for the back sync.
	var errOut proxytest.Buffer
	done := make(chan int, 1)
	go func() {
		code, out := phaseCLI(&errOut, "shadow", "--wait", "60s")
		if code != 0 {
			t.Errorf("rollback once the back sync caught up: exit %d\n%s%s", code, out, errOut.String())
		}
		done <- code
	}()
	changefeedtest.Eventually(t, 30*time.Second, func() (bool, string) {
		return strings.Contains(errOut.String(), "waiting for the back sync"), "no log of the wait for the back sync:\n" + errOut.String()
	})
	select {
	case <-done:
		t.Fatalf("the rollback ended while the back sync was behind:\n%s", errOut.String())
	default:
	}
	assertModes(t, c, 4, routes.ModeExtracted, routes.ModeLegacy)
	if !strings.Contains(errOut.String(), `"behind":5`) {
		t.Fatalf("the wait's log does not say the lag, 5:\n%s", errOut.String())
	}
	// An event published after the end offsets were taken: the rollback
	// does not wait for it. The broker spreads the events over its
	// partitions, so the group's consumer may fetch it before some of the
	// others; it commits all the others and not that one.
	publish("after", 1)
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: b.Brokers(), GroupID: backSyncGroup, Topic: "strangler.order", MaxWait: 50 * time.Millisecond})
	defer r.Close()
	for n := 0; n < 5; {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Value) == "after" {
			continue
		}
		if err := r.CommitMessages(ctx, m); err != nil {
			t.Fatal(err)
		}
		n++
	}
	select {
	case code := <-done:
		if code != 0 {
			t.FailNow()
		}
	case <-ctx.Done():
		t.Fatalf("the rollback did not end once the back sync caught up:\n%s", errOut.String())
	}
	assertModes(t, c, 2, routes.ModeShadow, routes.ModeLegacy)

	// The audit log, newest first: the reads' move to shadow comes after
	// the writes' last move to legacy.
	entries, err := c.Audit(ctx, "", 50)
	if err != nil {
		t.Fatal(err)
	}
	var readsAt, writesAt int64
	for _, e := range entries {
		switch {
		case e.Action == "phase":
		case e.Module == "orders" && readsAt == 0:
			readsAt = e.Version
		case e.Module == "orders-writes" && writesAt == 0:
			writesAt = e.Version
		}
	}
	if writesAt == 0 || readsAt == 0 || writesAt >= readsAt {
		t.Fatalf("audit: the writes' last change at table version %d, the reads' at %d; want the writes first:\n%+v", writesAt, readsAt, entries)
	}
}
