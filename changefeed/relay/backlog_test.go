package relay_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stranglerkit/strangler/changefeed/changefeedtest"
	"github.com/stranglerkit/strangler/changefeed/outbox"
	"github.com/stranglerkit/strangler/changefeed/relay"
	"github.com/stranglerkit/strangler/db/dbtest"
)

// TestBacklogDuringOutage checks that the backlog gauges keep counting
// while the broker is away and the relay retries a batch: the outage is
// when they matter.
func TestBacklogDuringOutage(t *testing.T) {
	gdb := changefeedtest.Open(t, dbtest.SQLiteDSN(t), outbox.Migrations())
	b := changefeedtest.NewBroker(t)
	reg := prometheus.NewRegistry()
	r, _ := startRelay(t, gdb, b, relay.Config{Name: "backlog"}, reg)
	write(t, gdb, "order", "o-1", 1)
	changefeedtest.Eventually(t, time.Minute, func() (bool, string) {
		return r.Published() == 1, "the first event is not published"
	})

	b.Stop()
	for n := range 20 {
		write(t, gdb, "order", fmt.Sprintf("o-%d", n+2), 1)
	}
	changefeedtest.Eventually(t, 20*time.Second, func() (bool, string) {
		backlog := changefeedtest.Sum(t, reg, "changefeed_outbox_backlog")
		age := changefeedtest.Sum(t, reg, "changefeed_outbox_oldest_unsent_age_seconds")
		return backlog == 20 && age >= 1, fmt.Sprintf("during the outage: backlog %v, oldest unsent %.2fs; want 20 and at least 1s", backlog, age)
	})

	b.Start()
	changefeedtest.Eventually(t, time.Minute, func() (bool, string) {
		backlog := changefeedtest.Sum(t, reg, "changefeed_outbox_backlog")
		return r.Published() == 21 && backlog == 0, fmt.Sprintf("after the outage: published %d, backlog %v", r.Published(), backlog)
	})
}
