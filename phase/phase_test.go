package phase

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Phase
		err  bool
	}{
		{"legacy", Legacy, false}, {"0", Legacy, false}, {"Sync", Sync, false}, {" shadow ", Shadow, false},
		{"3", Canary, false}, {"flip", Flip, false}, {"5", Retire, false},
		{"6", 0, true}, {"-1", 0, true}, {"done", 0, true}, {"", 0, true},
	} {
		got, err := Parse(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("Parse(%q) = %v, %v", tc.in, got, err)
		}
		if tc.err && !errors.Is(err, ErrUnknown) {
			t.Errorf("Parse(%q): %v does not wrap ErrUnknown", tc.in, err)
		}
	}
	if Phase(7).String() != "phase(7)" || Flip.String() != "flip" {
		t.Error("String")
	}
}

func TestValidate(t *testing.T) {
	c := Config{Modules: []Module{
		{Name: "inventory", WriteRoutes: "inventory-writes", SyncGroup: "svc", SyncAggregates: []string{"stock"}},
		{Name: "inventory"},
		{Name: "Bad Name"},
		{Name: "orders", ReadRoutes: "orders", WriteRoutes: "orders"},
		{Name: "customers", SyncGroup: "g"},
		{Name: "payments", SyncGroup: "g", SyncAggregates: []string{"payment"}, BackSyncGroup: "back"},
		{Name: "stock", WriteRoutes: "stock-writes", BackSyncGroup: "back", BackSyncAggregates: []string{"stock"}},
	}}
	c.SetDefaults("")
	err := c.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"modules[1].name", "modules[2].name", "modules[3].write_routes", "modules[4].sync_aggregates", "modules[5].back_sync_aggregates"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %s: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), "modules[0]") || strings.Contains(err.Error(), "modules[6]") {
		t.Errorf("valid module reported: %v", err)
	}
	if m, ok := c.Find("orders"); !ok || m.ReadRoutes != "orders" {
		t.Errorf("Find: %+v %v", m, ok)
	}
}

func TestRoutingFor(t *testing.T) {
	for _, tc := range []struct {
		p                 Phase
		weight            int
		want              Routing
		toReads, toWrites bool
	}{
		{Legacy, 0, Routing{"legacy", 0, "legacy"}, false, false},
		{Sync, 0, Routing{"legacy", 0, "legacy"}, false, false},
		{Shadow, 0, Routing{"shadow", 0, "legacy"}, true, false},
		{Canary, 0, Routing{"canary", 10, "legacy"}, true, false},
		{Canary, 50, Routing{"canary", 50, "legacy"}, true, false},
		{Flip, 0, Routing{"extracted", 0, "extracted"}, true, true},
		{Retire, 0, Routing{"extracted", 0, "extracted"}, true, true},
	} {
		got := RoutingFor(tc.p, tc.weight)
		if got != tc.want {
			t.Errorf("RoutingFor(%v, %d) = %+v, want %+v", tc.p, tc.weight, got, tc.want)
		}
		if reads, writes := got.ToCandidate(); reads != tc.toReads || writes != tc.toWrites {
			t.Errorf("RoutingFor(%v, %d).ToCandidate() = %v, %v, want %v, %v", tc.p, tc.weight, reads, writes, tc.toReads, tc.toWrites)
		}
	}
}
