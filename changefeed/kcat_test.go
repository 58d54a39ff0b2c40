package changefeed_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/changefeed"
	"github.com/stranglerkit/strangler/changefeed/changefeedtest"
	"github.com/stranglerkit/strangler/changefeed/relay"
	"github.com/stranglerkit/strangler/db/dbtest"
)

// EnvRequireKcat makes the kcat test fail, not skip, when kcat is missing.
const EnvRequireKcat = "STRANGLER_REQUIRE_KCAT"

// TestKcat checks that a third-party Kafka client, kcat (librdkafka), works
// against the embedded broker: it lists the topics and consumes the events
// that an order produced, with their envelope headers.
func TestKcat(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		if os.Getenv(EnvRequireKcat) == "1" {
			t.Fatalf("kcat required (%s=1) but not installed: apt-get install -y kcat", EnvRequireKcat)
		}
		t.Skipf("kcat suite skipped: kcat is not installed (apt-get install -y kcat)")
	}
	p := newPipeline(t, dbtest.SQLiteDSN(t), dbtest.SQLiteDSN(t))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	changefeedtest.Must(t, p.src.Place(ctx, "kcat-1", 4200))
	changefeedtest.Must(t, p.src.SetStatus(ctx, "kcat-1", "paid"))
	r, _ := p.relay(relay.Config{})
	changefeedtest.Eventually(t, time.Minute, func() (bool, string) {
		return r.Published() == 2, "the order's events are not published"
	})
	topic := changefeed.Topic(prefix, "order")

	// kcat -L: the topic is there with its partitions.
	out := runKcat(ctx, t, kcat, "-b", p.broker.Addr(), "-L", "-J")
	var md struct {
		Topics []struct {
			Topic      string            `json:"topic"`
			Partitions []json.RawMessage `json:"partitions"`
		} `json:"topics"`
	}
	changefeedtest.Must(t, json.Unmarshal(out, &md))
	found := false
	for _, tp := range md.Topics {
		if tp.Topic == topic {
			found = true
			if len(tp.Partitions) != kafkaCfg.Partitions {
				t.Errorf("kcat lists %d partitions of %s, want %d", len(tp.Partitions), topic, kafkaCfg.Partitions)
			}
		}
	}
	if !found {
		t.Fatalf("kcat -L does not list %s: %s", topic, out)
	}

	// kcat -C: the order's two events, in order, with the envelope.
	out = runKcat(ctx, t, kcat, "-b", p.broker.Addr(), "-C", "-t", topic, "-o", "beginning", "-e", "-J", "-q")
	type record struct {
		Key     string   `json:"key"`
		Payload string   `json:"payload"`
		Headers []string `json:"headers"`
	}
	var got []record
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var rec record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("kcat output %q: %v", sc.Text(), err)
		}
		got = append(got, rec)
	}
	if len(got) != 2 {
		t.Fatalf("kcat consumed %d events, want 2: %s", len(got), out)
	}
	for i, want := range []struct{ typ, status string }{{"order.placed", "placed"}, {"order.changed", "paid"}} {
		rec := got[i]
		h := map[string]string{}
		for j := 0; j+1 < len(rec.Headers); j += 2 {
			h[rec.Headers[j]] = rec.Headers[j+1]
		}
		var st changefeedtest.OrderState
		changefeedtest.Must(t, json.Unmarshal([]byte(rec.Payload), &st))
		if rec.Key != "kcat-1" || h["type"] != want.typ || h["id"] == "" || h["source"] != "test.orders" || st.Status != want.status || st.Total != 4200 {
			t.Errorf("event %d: key %q headers %v payload %s", i, rec.Key, h, rec.Payload)
		}
	}
}

func runKcat(ctx context.Context, t *testing.T, kcat string, args ...string) []byte {
	t.Helper()
	cmd := exec.CommandContext(ctx, kcat, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kcat %v: %v: %s", args, err, stderr.String())
	}
	return out
}
