package extracted_test

import (
	"slices"
	"testing"

	aclinv "github.com/stranglerkit/strangler/acl/inventory"
	aclorders "github.com/stranglerkit/strangler/acl/orders"
	"github.com/stranglerkit/strangler/changefeed"
	"github.com/stranglerkit/strangler/changefeed/consumer"
	"github.com/stranglerkit/strangler/extracted"
	"github.com/stranglerkit/strangler/phase"
)

// TestPlansNameTheBackSyncs: each plan names the consumer group and the
// topics of the back sync that the shop runs, so that a rollback below the
// flip waits for the group that really applies the service's events.
func TestPlansNameTheBackSyncs(t *testing.T) {
	const prefix = "strangler"
	for _, tc := range []struct {
		plan phase.Module
		sync consumer.Config
	}{
		{extracted.InventoryPlan(), aclinv.BackSyncConfig(prefix)},
		{extracted.OrdersPlan(), aclorders.BackSyncConfig(prefix)},
	} {
		var topics []string
		for _, agg := range tc.plan.BackSyncAggregates {
			topics = append(topics, changefeed.Topic(prefix, agg))
		}
		if tc.plan.BackSyncGroup != tc.sync.Name || !slices.Equal(topics, tc.sync.Topics) {
			t.Errorf("plan %s: back sync %s on %v, the shop's runs as %s on %v", tc.plan.Name, tc.plan.BackSyncGroup, topics, tc.sync.Name, tc.sync.Topics)
		}
	}
	if err := (phase.Config{Modules: []phase.Module{extracted.InventoryPlan(), extracted.OrdersPlan()}}).Validate(); err != nil {
		t.Fatal(err)
	}
}
