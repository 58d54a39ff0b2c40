package saga

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/stranglerkit/strangler/db/dbtest"
)

// fwd is the log of steps that succeeded at the first attempt.
func fwd(steps ...string) []string {
	var out []string
	for _, s := range steps {
		out = append(out, "started:"+s, "succeeded:"+s)
	}
	return out
}

// comp is the log of compensations that succeeded at the first attempt.
func comp(steps ...string) []string {
	var out []string
	for _, s := range steps {
		out = append(out, "compensating:"+s, "compensated:"+s)
	}
	return out
}

func cat(parts ...[]string) []string { return slices.Concat(parts...) }

// TestSagaOutcomes runs the test saga, on both stores, through each way it
// can go: every step succeeding, a failure at each step (compensated in
// reverse order, the failed step's compensation a null one), retries,
// timeouts, a repeated step and a hanging one.
func TestSagaOutcomes(t *testing.T) {
	cases := []struct {
		name  string
		setup func(p *plan)
		retry Retry
		// compRetry is every step's CompensateRetry.
		compRetry Retry
		timeout   time.Duration
		// hang is the step whose first attempt is held, to be let go
		// once the saga has ended; wantLate is what it then gets.
		hang      string
		wantLate  error
		wantState State
		wantTrail []string
		// wantEffects are the participant's committed effects, in order.
		wantEffects []string
		// wantNull are the steps whose compensation was a null one.
		wantNull    []string
		wantRetries map[string]int
		// wantWrites counts the writes of the saga log: the creation with
		// the first start, then one per attempt's start (a success and a
		// state change go with the next), one per failure, and the final
		// state's.
		wantWrites int
	}{
		{
			name: "every step succeeds", wantState: Completed, wantWrites: 4,
			wantTrail:   cat([]string{"running"}, fwd(stepNames...), []string{"completed"}),
			wantEffects: []string{"do:reserve", "do:authorize", "do:confirm"},
		},
		{
			name: "the first step is refused", setup: func(p *plan) { p.refuse["reserve"] = true }, wantState: Compensated, wantWrites: 4,
			wantTrail: cat([]string{"running", "started:reserve", "failed:reserve", "compensating"}, comp("reserve"), []string{"compensated"}),
			wantNull:  []string{"reserve"},
		},
		{
			name: "the second step is refused", setup: func(p *plan) { p.refuse["authorize"] = true }, wantState: Compensated, wantWrites: 6,
			wantTrail:   cat([]string{"running"}, fwd("reserve"), []string{"started:authorize", "failed:authorize", "compensating"}, comp("authorize", "reserve"), []string{"compensated"}),
			wantEffects: []string{"do:reserve", "undo:reserve"},
			wantNull:    []string{"authorize"},
		},
		{
			name: "the last step is refused", setup: func(p *plan) { p.refuse["confirm"] = true }, wantState: Compensated, wantWrites: 8,
			wantTrail:   cat([]string{"running"}, fwd("reserve", "authorize"), []string{"started:confirm", "failed:confirm", "compensating"}, comp("confirm", "authorize", "reserve"), []string{"compensated"}),
			wantEffects: []string{"do:reserve", "do:authorize", "undo:authorize", "undo:reserve"},
			wantNull:    []string{"confirm"},
		},
		{
			name: "a step succeeds at its third attempt", setup: func(p *plan) { p.transient["authorize"] = 2 }, wantState: Completed, wantWrites: 8,
			wantTrail: cat([]string{"running"}, fwd("reserve"),
				[]string{"started:authorize", "failed:authorize", "started:authorize", "failed:authorize", "started:authorize", "succeeded:authorize"},
				fwd("confirm"), []string{"completed"}),
			wantEffects: []string{"do:reserve", "do:authorize", "do:confirm"},
			wantRetries: map[string]int{"authorize/do": 2},
		},
		{
			name: "a step fails every attempt", setup: func(p *plan) { p.transient["authorize"] = 3 }, wantState: Compensated, wantWrites: 10,
			wantTrail: cat([]string{"running"}, fwd("reserve"),
				[]string{"started:authorize", "failed:authorize", "started:authorize", "failed:authorize", "started:authorize", "failed:authorize", "compensating"},
				comp("authorize", "reserve"), []string{"compensated"}),
			wantEffects: []string{"do:reserve", "undo:reserve"},
			wantNull:    []string{"authorize"},
			wantRetries: map[string]int{"authorize/do": 2},
		},
		{
			name: "a compensation succeeds at its second attempt", setup: func(p *plan) { p.refuse["confirm"] = true; p.compFail["authorize"] = 1 }, wantState: Compensated, wantWrites: 10,
			wantTrail: cat([]string{"running"}, fwd("reserve", "authorize"), []string{"started:confirm", "failed:confirm", "compensating"},
				comp("confirm"), []string{"compensating:authorize", "compensation_failed:authorize", "compensating:authorize", "compensated:authorize"},
				comp("reserve"), []string{"compensated"}),
			wantEffects: []string{"do:reserve", "do:authorize", "undo:authorize", "undo:reserve"},
			wantNull:    []string{"confirm"},
			wantRetries: map[string]int{"authorize/compensate": 1},
		},
		{
			// Four failures exhaust the steps' three attempts, but not the
			// compensation's own policy, as when a participant restarts.
			name: "a compensation outlasts the step's retries under its own policy", compRetry: Retry{MaxAttempts: 6, Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond},
			setup: func(p *plan) { p.refuse["confirm"] = true; p.compFail["authorize"] = 4 }, wantState: Compensated, wantWrites: 16,
			wantTrail: cat([]string{"running"}, fwd("reserve", "authorize"), []string{"started:confirm", "failed:confirm", "compensating"},
				comp("confirm"), slices.Repeat([]string{"compensating:authorize", "compensation_failed:authorize"}, 4), []string{"compensating:authorize", "compensated:authorize"},
				comp("reserve"), []string{"compensated"}),
			wantEffects: []string{"do:reserve", "do:authorize", "undo:authorize", "undo:reserve"},
			wantNull:    []string{"confirm"},
			wantRetries: map[string]int{"authorize/compensate": 4},
		},
		{
			// The first attempt times out, the second succeeds, and the
			// first then reaches the participant: the guard answers it
			// with the second's result, so the step took effect once.
			name: "a timed-out attempt arrives after the retry", timeout: time.Second, hang: "reserve", wantState: Completed, wantWrites: 6,
			wantTrail: cat([]string{"running", "started:reserve", "failed:reserve", "started:reserve", "succeeded:reserve"},
				fwd("authorize", "confirm"), []string{"completed"}),
			wantEffects: []string{"do:reserve", "do:authorize", "do:confirm"},
			wantRetries: map[string]int{"reserve/do": 1},
		},
		{
			// The only attempt times out, the saga compensates it (a null
			// compensation, since the participant never saw it), and the
			// attempt then reaches the participant: the guard refuses it.
			name: "a step hangs past its compensation", retry: Retry{MaxAttempts: 1}, timeout: time.Second, hang: "authorize",
			wantLate: ErrCompensated, wantState: Compensated, wantWrites: 6,
			wantTrail:   cat([]string{"running"}, fwd("reserve"), []string{"started:authorize", "failed:authorize", "compensating"}, comp("authorize", "reserve"), []string{"compensated"}),
			wantEffects: []string{"do:reserve", "undo:reserve"},
			wantNull:    []string{"authorize"},
		},
	}
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn)
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				ctx := context.Background()
				p := newPlan()
				if tc.setup != nil {
					tc.setup(p)
				}
				release := make(chan struct{})
				if tc.hang != "" {
					p.hang[tc.hang] = release
				}
				retry := tc.retry
				if retry.MaxAttempts == 0 {
					retry = fastRetry
				}
				part := &participant{env: e, plan: p}
				reg := prometheus.NewRegistry()
				name := fmt.Sprintf("case%d", i)
				def := withCompensateRetry(part.definition(name, retry, time.Minute), tc.compRetry)
				for i := range def.Steps {
					// Only the held step gets the short timeout, so that a
					// busy machine does not time out the others.
					if def.Steps[i].Name == tc.hang {
						def.Steps[i].Timeout = tc.timeout
					}
				}
				unseen := checkStarts(e, def)
				cs := &countingStore{GormStore: e.store}
				o, err := New(Config{Store: cs, Definitions: []*Definition{def}, Metrics: reg, Rescan: time.Hour})
				if err != nil {
					t.Fatal(err)
				}
				running(t, o)
				untilRunning(t, o)
				id := fmt.Sprintf("saga-%d", i)
				if _, err := o.Start(ctx, name, id, map[string]string{"order": id}); err != nil {
					t.Fatal(err)
				}
				s := wait(t, o, id)
				if tc.hang != "" {
					close(release)
					if err := <-p.late; !errors.Is(err, tc.wantLate) || (tc.wantLate == nil && err != nil) {
						t.Errorf("late attempt of %s: got %v, want %v", tc.hang, err, tc.wantLate)
					}
				}
				if s.State != tc.wantState {
					t.Errorf("state %s, want %s (error %q)", s.State, tc.wantState, s.Error)
				}
				if got := trail(s.Log); !slices.Equal(got, tc.wantTrail) {
					t.Errorf("log\n got %s\nwant %s", join(got), join(tc.wantTrail))
				}
				for n, en := range s.Log {
					if en.N != n+1 {
						t.Errorf("entry %d is numbered %d", n+1, en.N)
					}
				}
				if w := cs.count(); w != tc.wantWrites {
					t.Errorf("%d writes of the log, want %d", w, tc.wantWrites)
				}
				for _, u := range unseen() {
					t.Errorf("an attempt acted before its start was in the store: %s", u)
				}
				effects, err := e.effects(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(effects, tc.wantEffects) {
					t.Errorf("effects %v, want %v", effects, tc.wantEffects)
				}
				for _, step := range stepNames {
					rec, err := e.guard.Lookup(ctx, Key(id, step))
					if errors.Is(err, ErrNotFound) {
						if tc.wantState == Completed || slices.Contains(tc.wantNull, step) {
							t.Errorf("guard has no record of %s", step)
						}
						continue
					}
					if err != nil {
						t.Fatal(err)
					}
					if rec.NullCompensation != slices.Contains(tc.wantNull, step) {
						t.Errorf("guard record of %s: null compensation %v, want the null ones to be %v", step, rec.NullCompensation, tc.wantNull)
					}
					wantState := guardDone
					if tc.wantState == Compensated {
						wantState = guardCompensated
					}
					if rec.State != wantState {
						t.Errorf("guard record of %s: state %s, want %s", step, rec.State, wantState)
					}
				}
				if s.State == Completed {
					var data map[string]string
					if err := (&Exec{data: s.Data}).Decode(&data); err != nil {
						t.Fatal(err)
					}
					for _, step := range stepNames {
						if want := "res-" + Key(id, step); data[step] != want {
							t.Errorf("data[%s] = %q, want the participant's result %q", step, data[step], want)
						}
					}
				}
				for _, step := range stepNames {
					for _, phase := range []string{"do", "compensate"} {
						got := counterValue(o.metrics.retries.WithLabelValues(name, step, phase))
						if want := tc.wantRetries[step+"/"+phase]; got != float64(want) {
							t.Errorf("retries of %s/%s: %v, want %d", step, phase, got, want)
						}
					}
				}
				if got := counterValue(o.metrics.transitions.WithLabelValues(name, string(tc.wantState))); got != 1 {
					t.Errorf("transitions to %s: %v, want 1", tc.wantState, got)
				}
			})
		}
		t.Run("the state gauge counts the store", func(t *testing.T) {
			byState := map[State]int{}
			for _, tc := range cases {
				byState[tc.wantState]++
			}
			reg := prometheus.NewRegistry()
			o := newOrchestrator(t, e, reg, (&participant{env: e, plan: newPlan()}).definition("gauge", fastRetry, time.Minute))
			defer o.Close()
			mfs, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			got := map[State]int{}
			for _, mf := range mfs {
				if mf.GetName() != "strangler_saga_sagas" {
					continue
				}
				for _, m := range mf.GetMetric() {
					got[State(m.GetLabel()[0].GetValue())] = int(m.GetGauge().GetValue())
				}
			}
			for _, st := range States {
				if got[st] != byState[st] {
					t.Errorf("strangler_saga_sagas{state=%q} = %d, want %d (all: %v)", st, got[st], byState[st], got)
				}
			}
		})
	})
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	return m.GetCounter().GetValue()
}
