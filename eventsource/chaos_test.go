package eventsource_test

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/changefeed/changefeedtest"
	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/eventsource"
	"github.com/stranglerkit/strangler/internal/chaostest"
)

// cutting is the balances projection that cuts its own database
// connections when it reaches position at, in the middle of a batch.
type cutting struct {
	balances
	at   int64
	once sync.Once
	cut  func()
}

func (c *cutting) Apply(ctx context.Context, tx *gorm.DB, ev eventsource.Event) error {
	if ev.Position == c.at {
		c.once.Do(c.cut)
	}
	return c.balances.Apply(ctx, tx, ev)
}

// TestChaosProjectionLosesDatabase cuts a projection runner's Postgres
// connections in the middle of a batch, while events keep being appended
// through another pool, and gives them back: the runner must retry, and
// end with every event applied exactly once (test_applied refuses a second
// application, and the balances are the deposits' sums).
func TestChaosProjectionLosesDatabase(t *testing.T) {
	dsn := dbtest.PostgresDSN(t)
	s, gdb := openStore(t, dsn, nil)
	createBalanceTables(t, gdb)
	gate, gated := dbtest.NewGate(t, dsn)
	rdb, err := db.Open(context.Background(), gated, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(rdb)
	rs, err := eventsource.NewStore(rdb, eventsource.Options{AggregateType: "account"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]balance{}
	appendDeposits(t, s, 30, 4, want)
	cutDone := make(chan struct{})
	p := &cutting{balances: balances{name: "balances"}, at: 12, cut: func() { gate.Close(); close(cutDone) }}
	r := newRunner(t, rs, eventsource.RunnerOptions{Logger: changefeedtest.Logger()}, p)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	select {
	case <-cutDone:
	case <-time.After(2 * time.Minute):
		t.Fatal("the runner never reached the position where the connection is cut")
	}
	appendDeposits(t, s, 30, 4, want) // the store goes on while the projection is cut off
	gate.Open()
	var got map[string]balance
	var applied int64
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		got = readBalances(t, gdb)
		if maps.Equal(got, want) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
	changefeedtest.Must(t, gdb.Raw("SELECT COUNT(*) FROM test_applied").Scan(&applied).Error)
	chaostest.Report(t, maps.Equal(got, want) && applied == 60,
		"cutting a projection runner's database connections in the middle of a batch while 30 more events are appended, then restoring them",
		"the runner retries and applies each of the 60 events exactly once",
		fmt.Sprintf("%d events applied, balances %v (want %v)", applied, got, want))
}
