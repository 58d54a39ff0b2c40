package relay_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/changefeed"
	"github.com/stranglerkit/strangler/changefeed/changefeedtest"
	"github.com/stranglerkit/strangler/changefeed/outbox"
	"github.com/stranglerkit/strangler/changefeed/relay"
	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/internal/lifecycletest"
)

// opener is the goroutine database/sql starts for each pool.
const opener = "database/sql.(*DB).connectionOpener"

// TestNewStartsNothing builds a relay on a DSN and closes it without
// running it: New must open no database (no file, no pool goroutine), and
// Close must leave Run nothing to start.
func TestNewStartsNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "relay", "outbox.db")
	before := lifecycletest.Count(opener)
	r, err := relay.New(relay.Config{DSN: "sqlite:" + path}, relay.Options{Brokers: []string{"127.0.0.1:1"}, Logger: changefeedtest.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("New opened the database: stat %s: %v", path, err)
	}
	if n := lifecycletest.Count(opener); n != before {
		t.Errorf("New started %d database pools", n-before)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := r.Run(context.Background()); err == nil {
		t.Fatal("Run after Close started")
	}
}

// TestRunClosesTheDatabaseItOpened runs a relay on a DSN until it has
// published, stops it, and checks that the pool it opened is gone.
func TestRunClosesTheDatabaseItOpened(t *testing.T) {
	dsn := dbtest.SQLiteDSN(t)
	gdb := changefeedtest.Open(t, dsn, outbox.Migrations())
	write(t, gdb, "item", "k", 1, 2, 3)
	b := changefeedtest.NewBroker(t)
	before := lifecycletest.Count(opener)
	r, err := relay.New(relay.Config{DSN: dsn, PollInterval: 5 * time.Millisecond},
		relay.Options{Brokers: b.Brokers(), Kafka: changefeed.KafkaConfig{TopicPrefix: prefix}, Logger: changefeedtest.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- r.Run(ctx) }()
	changefeedtest.Eventually(t, time.Minute, func() (bool, string) {
		return r.Published() == 3, fmt.Sprintf("published %d of 3", r.Published())
	})
	cancel()
	if err := <-ran; err != nil {
		t.Fatal(err)
	}
	changefeedtest.Eventually(t, time.Minute, func() (bool, string) {
		n := lifecycletest.Count(opener)
		return n == before, fmt.Sprintf("%d pools left open", n-before)
	})
}

// blocker holds up the statements of a gorm DB that match, until released,
// as a slow read or a write waiting for SQLite's lock (which heeds no
// context) would.
type blocker struct {
	match   func(sql string, vars []any) bool
	armed   atomic.Bool
	entered chan struct{}
	release chan struct{}
	// left receives once a held statement goes on.
	left     chan struct{}
	returned atomic.Bool
	// early reports that Run had returned while a blocked statement was
	// still running.
	early atomic.Bool
}

func newBlocker(t *testing.T, gdb *gorm.DB, match func(sql string, vars []any) bool) *blocker {
	t.Helper()
	bl := &blocker{match: match, entered: make(chan struct{}, 1), release: make(chan struct{}), left: make(chan struct{}, 1)}
	hold := func(tx *gorm.DB) {
		if !bl.armed.Load() || !bl.match(tx.Statement.SQL.String(), tx.Statement.Vars) {
			return
		}
		select {
		case bl.entered <- struct{}{}:
		default:
		}
		<-bl.release
		if bl.returned.Load() {
			bl.early.Store(true)
		}
		select {
		case bl.left <- struct{}{}:
		default:
		}
	}
	changefeedtest.Must(t, gdb.Callback().Row().Before("gorm:row").Register("test:block-row", hold))
	changefeedtest.Must(t, gdb.Callback().Raw().Before("gorm:raw").Register("test:block-raw", hold))
	return bl
}

// TestRunWaitsForItsStatements stops a relay while one of its statements
// is held up: a prefetch of the next batch (while a publish waits for a
// broker that is down), and the lease release at stop. Run must not return
// before the statement ends, since the caller closes the database then.
// The relay returned at once from a running prefetch, and after two seconds
// from a release.
func TestRunWaitsForItsStatements(t *testing.T) {
	tests := []struct {
		name       string
		events     int
		brokerDown bool
		match      func(sql string, vars []any) bool
		armWhen    func(r *relay.Relay) bool
	}{
		{
			name: "prefetch", events: 25, brokerDown: true,
			// The read after the first batch of 10 is the prefetch.
			match: func(sql string, vars []any) bool {
				return strings.Contains(sql, "FROM outbox WHERE seq > ") && len(vars) == 2 && vars[0] == int64(10)
			},
			armWhen: func(*relay.Relay) bool { return true },
		},
		{
			name: "lease release at stop", events: 3,
			match:   func(sql string, _ []any) bool { return strings.Contains(sql, "SET lease_until = 0") },
			armWhen: func(r *relay.Relay) bool { return r.Position() == 3 },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gdb := changefeedtest.Open(t, dbtest.SQLiteDSN(t), outbox.Migrations())
			for i := range tt.events {
				write(t, gdb, "item", fmt.Sprintf("k%d", i%3), i)
			}
			b := changefeedtest.NewBroker(t)
			if tt.brokerDown {
				b.Stop()
			}
			bl := newBlocker(t, gdb, tt.match)
			r, err := relay.New(relay.Config{Name: "w", BatchSize: 10, PollInterval: 5 * time.Millisecond},
				relay.Options{DB: gdb, Brokers: b.Brokers(), Kafka: changefeed.KafkaConfig{TopicPrefix: prefix}, Logger: changefeedtest.Logger()})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ran := make(chan error, 1)
			// A case that arms at once arms before Run starts: on a busy
			// machine the relay may otherwise read ahead before the test
			// arms, and never again while the broker is down.
			if tt.armWhen(r) {
				bl.armed.Store(true)
			}
			go func() {
				err := r.Run(ctx)
				bl.returned.Store(true)
				ran <- err
			}()
			changefeedtest.Eventually(t, time.Minute, func() (bool, string) {
				return tt.armWhen(r), fmt.Sprintf("position %d", r.Position())
			})
			bl.armed.Store(true)
			if tt.brokerDown {
				select {
				case <-bl.entered:
				case <-time.After(time.Minute):
					t.Fatal("the relay never read ahead")
				}
			}
			cancel()
			if !tt.brokerDown {
				select {
				case <-bl.entered:
				case <-time.After(time.Minute):
					t.Fatal("the relay never released its lease")
				}
			}
			// Give a relay that does not wait time to return: longer than
			// the two seconds its stop allowed the database.
			select {
			case <-ran:
				bl.returned.Store(true)
			case <-time.After(3 * time.Second):
			}
			close(bl.release)
			<-bl.left
			changefeedtest.Eventually(t, time.Minute, func() (bool, string) {
				return bl.returned.Load(), "Run has not returned"
			})
			if bl.early.Load() {
				t.Fatal("Run returned while its statement was still running")
			}
		})
	}
}
