package eventsource_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/eventsource"
)

// account is the test streams' state.
type account struct {
	Cents    int64 `json:"cents"`
	Deposits int   `json:"deposits"`
}

func applyAccount(a account, ev eventsource.Event) (account, error) {
	var d deposited
	if err := ev.Decode(&d); err != nil {
		return a, err
	}
	return account{Cents: a.Cents + d.Cents, Deposits: a.Deposits + 1}, nil
}

// TestAggregateSnapshots changes a stream with snapshots every 3 events and
// checks that the snapshot follows, that loading from it gives the state a
// full fold gives, and that a snapshot of another encoding is ignored.
func TestAggregateSnapshots(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		s, _ := openStore(t, dsn, nil)
		agg := eventsource.Aggregate[account]{Store: s, Apply: applyAccount, SnapshotEvery: 3}
		for i := range 7 {
			_, _, err := agg.Update(ctx, "a-1", func(a account, v int64) ([]eventsource.Event, error) {
				if v != int64(i) || a.Deposits != i {
					t.Errorf("update %d sees %+v at version %d", i, a, v)
				}
				return []eventsource.Event{deposit(t, 10)}, nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		snap, ok, err := s.LoadSnapshot(ctx, "a-1")
		if err != nil || !ok || snap.Version != 6 {
			t.Fatalf("snapshot = %+v, %v, %v; want one at version 6", snap, ok, err)
		}
		full := eventsource.Aggregate[account]{Store: s, Apply: applyAccount}
		other := eventsource.Aggregate[account]{Store: s, Apply: applyAccount, SnapshotEvery: 3, SnapshotVersion: 2}
		want := account{Cents: 70, Deposits: 7}
		for name, a := range map[string]eventsource.Aggregate[account]{"snapshot": agg, "full fold": full, "other encoding": other} {
			got, v, err := a.Load(ctx, "a-1")
			if err != nil || got != want || v != 7 {
				t.Errorf("%s: Load = %+v at %d, %v; want %+v at 7", name, got, v, err, want)
			}
		}
		// A command that returns no events changes nothing; one that fails
		// appends nothing.
		refuse := errors.New("refused")
		if _, v, err := agg.Update(ctx, "a-1", func(account, int64) ([]eventsource.Event, error) { return nil, nil }); err != nil || v != 7 {
			t.Errorf("no-op Update = %d, %v", v, err)
		}
		if _, _, err := agg.Update(ctx, "a-1", func(account, int64) ([]eventsource.Event, error) { return nil, refuse }); !errors.Is(err, refuse) {
			t.Errorf("refused Update = %v", err)
		}
		if v, err := s.Version(ctx, "a-1"); err != nil || v != 7 {
			t.Errorf("version after no-op and refusal = %d, %v", v, err)
		}
	})
}

// TestAggregateUpdateRetries has writers update one stream at once: each
// conflict is retried on the fresh state, and no deposit is lost.
func TestAggregateUpdateRetries(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		s, _ := openStore(t, dsn, nil)
		agg := eventsource.Aggregate[account]{Store: s, Apply: applyAccount, Attempts: 1000}
		const writers, each = 4, 10
		var wg sync.WaitGroup
		for range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range each {
					if _, _, err := agg.Update(ctx, "a-1", func(account, int64) ([]eventsource.Event, error) {
						return []eventsource.Event{deposit(t, 1)}, nil
					}); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		if got, v, err := agg.Load(ctx, "a-1"); err != nil || got.Deposits != writers*each || v != writers*each {
			t.Errorf("Load = %+v at %d, %v; want %d deposits", got, v, err, writers*each)
		}
	})
}
