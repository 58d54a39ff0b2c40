package saga

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/internal/chaostest"
)

// The crash helper's environment: the test binary, run again with
// envCrashDSN set, is an orchestrator process (crashHelper) instead of
// the tests.
const (
	envCrashDSN   = "SAGA_CRASH_HELPER_DSN"
	envCrashPoint = "SAGA_CRASH_HELPER_POINT"
	envCrashIDs   = "SAGA_CRASH_HELPER_IDS"
)

func TestMain(m *testing.M) {
	if dsn := os.Getenv(envCrashDSN); dsn != "" {
		if err := crashHelper(dsn, os.Getenv(envCrashPoint), strings.Split(os.Getenv(envCrashIDs), ",")); err != nil {
			fmt.Fprintln(os.Stderr, "crash helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// crashHelper starts the sagas ids (those ending in "-fail" fail at their
// last step), runs the orchestrator until every one of them has ended,
// and kills its own process with SIGKILL at point, "event:step": after the
// orchestrator persisted that log entry, or, for "do:step" and
// "undo:step", after the participant committed the step or its
// compensation and before the orchestrator heard of it.
func crashHelper(dsn, point string, ids []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e, err := openEnv(ctx, dsn)
	if err != nil {
		return err
	}
	defer db.Close(e.gdb)
	kill := func(at string) {
		if at == point {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way
		}
	}
	part := &participant{env: e, plan: newPlan(), committed: func(kind, step string) { kill(kind + ":" + step) }}
	o, err := New(Config{Store: e.store, Definitions: []*Definition{part.definition("crash", fastRetry, time.Minute)}, Rescan: time.Hour})
	if err != nil {
		return err
	}
	defer o.Close()
	o.afterPersist = func(_ *Saga, entries []Entry) {
		for _, en := range entries {
			if en.Event == EventState {
				kill(string(en.Event) + ":" + string(en.State))
			} else {
				kill(string(en.Event) + ":" + en.Step)
			}
		}
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- o.Run(runCtx) }()
	for _, id := range ids {
		data := map[string]string{}
		if strings.HasSuffix(id, "-fail") {
			data["fail"] = "yes"
		}
		if _, err := o.Start(ctx, "crash", id, data); err != nil {
			return err
		}
	}
	for _, id := range ids {
		if _, err := o.Wait(ctx, id); err != nil {
			return err
		}
	}
	stop()
	return <-done
}

// runHelper runs the crash helper and reports whether SIGKILL ended it.
func runHelper(t *testing.T, dsn, point string, ids []string) (killed bool) {
	t.Helper()
	return chaostest.RunKillable(t, envCrashDSN+"="+dsn, envCrashPoint+"="+point, envCrashIDs+"="+strings.Join(ids, ","))
}

// TestChaosCrashRecovery kills an orchestrator process with SIGKILL at each
// boundary of a saga (before a step, with a step done at the participant
// but not logged, after a step is logged, at each point of a
// compensation), restarts it, and checks that every saga ends completed
// or compensated with each participant effect committed exactly once.
func TestChaosCrashRecovery(t *testing.T) {
	points := []struct {
		name, point string
	}{
		{"before the first step", "started:reserve"},
		{"before a middle step", "started:authorize"},
		{"a step done at the participant, not logged", "do:authorize"},
		{"after a step is logged", "succeeded:authorize"},
		{"after the last step is logged", "succeeded:confirm"},
		{"the failure logged, before compensating", "state:compensating"},
		{"before a compensation", "compensating:authorize"},
		{"a compensation done at the participant, not logged", "undo:authorize"},
		{"after a compensation is logged", "compensated:authorize"},
		{"a null compensation done, not logged", "undo:confirm"},
	}
	ids := []string{"a-ok", "b-fail", "c-ok", "d-fail"}
	dbtest.Dialects(t, func(t *testing.T, base string) {
		for i, p := range points {
			t.Run(p.name, func(t *testing.T) {
				var dsn string
				if strings.HasPrefix(base, "sqlite:") {
					dsn = strings.TrimSuffix(base, ".db") + fmt.Sprintf("-%d.db", i)
				} else {
					dsn = dbtest.PostgresDSN(t)
				}
				sagaIDs := make([]string, len(ids))
				for j, id := range ids {
					sagaIDs[j] = fmt.Sprintf("%d-%s", i, id)
				}
				if !runHelper(t, dsn, p.point, sagaIDs) {
					t.Fatalf("the orchestrator never reached %s", p.point)
				}
				if runHelper(t, dsn, "", sagaIDs) {
					t.Fatal("the restarted orchestrator was killed")
				}
				problems := checkCrashOutcome(t, dsn, sagaIDs)
				saw := "every saga ended as expected, each effect once"
				if len(problems) > 0 {
					saw = strings.Join(problems, "; ")
				}
				chaostest.Report(t, len(problems) == 0, "SIGKILL of the orchestrator at "+p.point+", then a restart",
					"the ok sagas completed and the failing ones compensated, each participant effect committed exactly once", saw)
			})
		}
	})
}

// checkCrashOutcome lists what is wrong with the sagas ids after the
// restart.
func checkCrashOutcome(t *testing.T, dsn string, ids []string) []string {
	t.Helper()
	var problems []string
	report := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	ctx := context.Background()
	e := newEnv(t, dsn)
	for _, id := range ids {
		s, err := e.store.Get(ctx, id, true)
		if err != nil {
			t.Fatal(err)
		}
		want, wantEffects := Completed, []string{"do:reserve", "do:authorize", "do:confirm"}
		if strings.HasSuffix(id, "-fail") {
			want, wantEffects = Compensated, []string{"do:reserve", "do:authorize", "undo:authorize", "undo:reserve"}
		}
		if s.State != want {
			report("%s: state %s, want %s; log %s", id, s.State, want, join(trail(s.Log)))
		}
		effects, err := e.effects(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(effects, wantEffects) {
			report("%s: effects %v, want each exactly once: %v; log %s", id, effects, wantEffects, join(trail(s.Log)))
		}
		for _, step := range stepNames {
			rec, err := e.guard.Lookup(ctx, Key(id, step))
			if err != nil {
				report("%s: guard record of %s: %v", id, step, err)
				continue
			}
			wantState, wantNull := guardDone, false
			if want == Compensated {
				wantState, wantNull = guardCompensated, step == "confirm"
			}
			if rec.State != wantState || rec.NullCompensation != wantNull {
				report("%s: guard record of %s is %s (null %v), want %s (null %v)", id, step, rec.State, rec.NullCompensation, wantState, wantNull)
			}
		}
	}
	return problems
}
