package saga

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/db/dbtest"
)

// TestGuard drives a participant's guard through sequences of forward
// steps and compensations of one key, on both databases: a repeat answers
// the first result, a compensation before the step is a null one that
// refuses the step when it arrives late, and a failed call leaves nothing.
func TestGuard(t *testing.T) {
	type op struct {
		kind string // "do" or "undo"
		fail bool   // the participant's work fails after its write
		want string // ran, repeat, refused, undone, null, noop, failed
	}
	cases := []struct {
		name        string
		ops         []op
		wantEffects []string
		wantState   string
		wantNull    bool
	}{
		{"a repeated step answers its first result", []op{{"do", false, "ran"}, {"do", false, "repeat"}, {"do", false, "repeat"}},
			[]string{"do"}, guardDone, false},
		{"a step then its compensation, twice", []op{{"do", false, "ran"}, {"undo", false, "undone"}, {"undo", false, "noop"}},
			[]string{"do", "undo"}, guardCompensated, false},
		{"a compensation before its step is null and refuses it", []op{{"undo", false, "null"}, {"do", false, "refused"}, {"undo", false, "noop"}},
			nil, guardCompensated, true},
		{"a failed step leaves nothing and runs again", []op{{"do", true, "failed"}, {"do", false, "ran"}},
			[]string{"do"}, guardDone, false},
		{"a failed compensation leaves the step and runs again", []op{{"do", false, "ran"}, {"undo", true, "failed"}, {"undo", false, "undone"}},
			[]string{"do", "undo"}, guardCompensated, false},
		{"a compensation after a failed step is null", []op{{"do", true, "failed"}, {"undo", false, "null"}, {"do", false, "refused"}},
			nil, guardCompensated, true},
	}
	errWork := errors.New("participant's work failed")
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn)
		p := &participant{env: e}
		ctx := context.Background()
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				key := fmt.Sprintf("guard-%d/step", i)
				for j, o := range tc.ops {
					var got string
					switch o.kind {
					case "do":
						out, err := e.guard.Do(ctx, key, func(ctx context.Context) ([]byte, error) {
							if err := p.effect(ctx, key, "step", "do"); err != nil {
								return nil, err
							}
							if o.fail {
								return nil, errWork
							}
							return []byte("result-" + key), nil
						})
						switch {
						case errors.Is(err, errWork):
							got = "failed"
						case errors.Is(err, ErrCompensated) && IsPermanent(err):
							got = "refused"
						case err != nil:
							t.Fatalf("op %d: %v", j, err)
						case string(out.Result) != "result-"+key:
							t.Fatalf("op %d: result %q", j, out.Result)
						case out.Repeat:
							got = "repeat"
						default:
							got = "ran"
						}
					case "undo":
						_, lerr := e.guard.Lookup(ctx, key)
						existed := lerr == nil
						called := false
						err := e.guard.Compensate(ctx, key, func(ctx context.Context, result []byte) error {
							called = true
							if string(result) != "result-"+key {
								return fmt.Errorf("compensation got %q", result)
							}
							if err := p.effect(ctx, key, "step", "undo"); err != nil {
								return err
							}
							if o.fail {
								return errWork
							}
							return nil
						})
						switch {
						case errors.Is(err, errWork):
							got = "failed"
						case err != nil:
							t.Fatalf("op %d: %v", j, err)
						case called:
							got = "undone"
						case !existed:
							got = "null"
						default:
							got = "noop"
						}
					}
					if got != o.want {
						t.Errorf("op %d (%s): %s, want %s", j, o.kind, got, o.want)
					}
				}
				var kinds []string
				if err := e.gdb.Raw(`SELECT kind FROM saga_test_effects WHERE idem_key = ? ORDER BY id`, key).Scan(&kinds).Error; err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(kinds, tc.wantEffects) {
					t.Errorf("effects %v, want %v", kinds, tc.wantEffects)
				}
				rec, err := e.guard.Lookup(ctx, key)
				if err != nil {
					t.Fatal(err)
				}
				if rec.State != tc.wantState || rec.NullCompensation != tc.wantNull {
					t.Errorf("record %+v, want state %s, null compensation %v", rec, tc.wantState, tc.wantNull)
				}
			})
		}

		t.Run("concurrent repeats run the step once", func(t *testing.T) {
			const n = 8
			key := "guard-concurrent/step"
			var wg sync.WaitGroup
			ran := make(chan bool, n)
			errs := make(chan error, n)
			for range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					out, err := e.guard.Do(ctx, key, func(ctx context.Context) ([]byte, error) {
						return []byte("once"), p.effect(ctx, key, "step", "do")
					})
					if err != nil {
						errs <- err
						return
					}
					ran <- !out.Repeat
				}()
			}
			wg.Wait()
			close(ran)
			close(errs)
			for err := range errs {
				t.Errorf("concurrent Do: %v", err)
			}
			first := 0
			for r := range ran {
				if r {
					first++
				}
			}
			var count int
			if err := e.gdb.Raw(`SELECT COUNT(*) FROM saga_test_effects WHERE idem_key = ?`, key).Scan(&count).Error; err != nil {
				t.Fatal(err)
			}
			if first != 1 || count != 1 {
				t.Errorf("%d calls ran the step and %d effects committed, want 1 and 1", first, count)
			}
		})

		t.Run("the guard joins the participant's transaction", func(t *testing.T) {
			key := "guard-joined/step"
			errLater := errors.New("the participant's later write failed")
			err := db.Transact(ctx, e.gdb, func(ctx context.Context) error {
				if _, err := e.guard.Do(ctx, key, func(ctx context.Context) ([]byte, error) {
					return nil, p.effect(ctx, key, "step", "do")
				}); err != nil {
					return err
				}
				return errLater
			})
			if !errors.Is(err, errLater) {
				t.Fatalf("transaction: %v", err)
			}
			if _, err := e.guard.Lookup(ctx, key); !errors.Is(err, ErrNotFound) {
				t.Errorf("the record survived the participant's rollback: %v", err)
			}
		})
	})
}
