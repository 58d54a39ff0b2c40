package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/changefeed"
	"github.com/stranglerkit/strangler/changefeed/changefeedtest"
	"github.com/stranglerkit/strangler/changefeed/consumer"
	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/internal/lifecycletest"
)

// TestLifecycle checks the lifecycle rule on the consumer: New connects to
// nothing and starts no goroutine; Run, once it has handled an event and
// dead-lettered another, returns nil when its context ends with nothing of
// it or of kafka-go left running, and refuses to run twice; Close is safe
// twice and after Run, and a Run after Close fails.
func TestLifecycle(t *testing.T) {
	b := changefeedtest.NewBroker(t)
	gdb := changefeedtest.Open(t, dbtest.SQLiteDSN(t), consumer.Migrations())
	build := func(name string, reg prometheus.Registerer) *consumer.Consumer {
		c, err := consumer.New(consumer.Config{Name: name, Topics: []string{topic}, MaxWait: 100 * time.Millisecond, SessionTimeout: 3 * time.Second},
			consumer.Options{DB: gdb, Brokers: b.Brokers(), Registerer: reg, Logger: changefeedtest.Logger()})
		changefeedtest.Must(t, err)
		return c
	}
	// The events go first: produce's writer keeps its connections in
	// kafka-go's default transport, and Watch must not count them.
	produce(t, b.Addr(), event("product.changed", 1, `{"a":1}`), event("product.changed", 1, `{"poison":true}`))
	g := lifecycletest.Watch("segmentio/kafka-go", "stranglerkit/strangler/changefeed/consumer")
	reg := prometheus.NewRegistry()
	c := build("life", reg)
	g.None(t, "after New")
	var calls seen
	c.Handle("product.changed", 1, func(ctx context.Context, tx *gorm.DB, ev changefeed.Event) error {
		calls.add(string(ev.Payload))
		if string(ev.Payload) == `{"poison":true}` {
			return consumer.Permanent(errors.New("poison"))
		}
		return nil
	})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	changefeedtest.Eventually(t, time.Minute, func() (bool, string) {
		return c.Handled() == 1 && changefeedtest.Sum(t, reg, "changefeed_consumer_dead_letters_total") == 1,
			fmt.Sprintf("handled %v", calls.list())
	})
	lifecycletest.Stop(t, c, cancel, done, g)

	unrun := build("unrun", nil)
	lifecycletest.CloseTwice(t, unrun, "before Run")
	if err := unrun.Run(context.Background()); err == nil {
		t.Fatal("Run after Close did not fail")
	}
	g.None(t, "after Close")
}
