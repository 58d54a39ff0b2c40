package loadgen

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// TestPacer runs a pacer against sends that keep up and sends that do not,
// and checks that lag is counted only when the plan fell behind. The bounds
// are loose enough for a busy machine: a case that must show no lag allows
// seconds of delay, one that must show lag is behind by far more.
func TestPacer(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cfg      Config
		send     time.Duration // how long each send takes
		run      time.Duration
		pause    time.Duration // paused this long after the first sends
		wantLate bool
	}{
		{name: "keeps up", cfg: Config{Rate: 200, Workers: 8, Late: 3 * time.Second}, run: 500 * time.Millisecond},
		{name: "one slow worker falls behind", cfg: Config{Rate: 1000, Workers: 1, Late: 100 * time.Millisecond},
			send: 50 * time.Millisecond, run: 1500 * time.Millisecond, wantLate: true},
		{name: "a pause is not lag", cfg: Config{Rate: 200, Workers: 8, Late: 2 * time.Second},
			run: 500 * time.Millisecond, pause: 2500 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sent atomic.Int64
			p := New(tc.cfg, func(w int, lag time.Duration) {
				if w < 0 || w >= tc.cfg.Workers || lag < 0 {
					t.Errorf("send on worker %d with lag %s", w, lag)
				}
				sent.Add(1)
				time.Sleep(tc.send)
			})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan Lag)
			go func() { done <- p.Run(ctx) }()
			if tc.pause > 0 {
				for sent.Load() == 0 {
					time.Sleep(time.Millisecond)
				}
				p.Pause()
				time.Sleep(tc.pause)
				p.Resume()
			}
			time.Sleep(tc.run)
			cancel()
			lag := <-done
			t.Logf("%s", lag)
			if lag.Sent == 0 || int64(lag.Sent) != sent.Load() {
				t.Errorf("Sent %d, the send func ran %d times", lag.Sent, sent.Load())
			}
			if late := lag.Late+lag.Unsent > 0; late != tc.wantLate {
				t.Errorf("late %d, unsent %d, want lag %v", lag.Late, lag.Unsent, tc.wantLate)
			}
			if tc.wantLate && (lag.Max <= tc.cfg.Late || lag.LateFraction() <= 0.5) {
				t.Errorf("max delay %s, late fraction %.2f: a plan far behind should show both", lag.Max, lag.LateFraction())
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		out := make([]time.Duration, len(ns))
		for i, n := range ns {
			out[i] = time.Duration(n) * time.Millisecond
		}
		return out
	}
	for _, tc := range []struct {
		ds   []time.Duration
		q    float64
		want time.Duration
	}{
		{nil, 0.5, 0},
		{ms(5), 0.99, 5 * time.Millisecond},
		{ms(9, 1, 5, 3, 7), 0.5, 5 * time.Millisecond},
		{ms(9, 1, 5, 3, 7), 1, 9 * time.Millisecond},
		{ms(9, 1, 5, 3, 7), 0, time.Millisecond},
	} {
		if got := Percentile(tc.ds, tc.q); got != tc.want {
			t.Errorf("Percentile(%v, %v) = %s, want %s", tc.ds, tc.q, got, tc.want)
		}
	}
}
