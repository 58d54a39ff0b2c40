package proxy_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/proxy/api"
	"github.com/stranglerkit/strangler/proxy/proxytest"
	"github.com/stranglerkit/strangler/proxy/routes"
)

// replaceTable replaces the cluster's table through replica 0 and waits
// until every replica serves it.
func (c *cluster) replaceTable(t *testing.T, doc *routes.Doc) {
	t.Helper()
	tab, err := c.replicas[0].Admin(t).ReplaceTable(context.Background(), doc, 0)
	if err != nil {
		t.Fatal(err)
	}
	c.waitVersion(t, tab.Version, time.Now())
}

// TestReplicasStickyCohorts canaries a module with a sticky header at a
// few weights, each change through another replica: every user (sticky
// key) is on the same side on each of the three replicas, and the split
// follows the weight.
func TestReplicasStickyCohorts(t *testing.T) {
	c := newCluster(t, 3)
	doc := stateTable(c.svc.URL)
	doc.Modules[1].Sticky = routes.Sticky{Header: "X-User"}
	c.replaceTable(t, doc)
	ctx := context.Background()
	const users = 200
	for i, weight := range []int{10, 50, 90} {
		m, err := c.replicas[i].Admin(t).Canary(ctx, "orders", weight)
		if err != nil {
			t.Fatal(err)
		}
		c.waitVersion(t, m.Version, time.Now())
		onCandidate := 0
		for u := range users {
			key := map[string]string{"X-User": fmt.Sprintf("user-%d", u)}
			var sides []string
			for _, r := range c.replicas {
				_, e := proxytest.Get(t, r.URL+"/api/orders/1", key)
				if e == nil {
					t.Fatalf("weight %d: user-%d got no echo from %s", weight, u, r.URL)
				}
				sides = append(sides, e.Backend)
			}
			if sides[1] != sides[0] || sides[2] != sides[0] {
				t.Fatalf("weight %d: user-%d is served by %v on the three replicas, want one side", weight, u, sides)
			}
			if sides[0] == "orders-svc" {
				onCandidate++
			}
		}
		// 200 users: 4 standard deviations at 50% is ±28, at 10% or 90% ±17.
		want := users * weight / 100
		if d := onCandidate - want; d < -28 || d > 28 {
			t.Errorf("weight %d: %d of %d users on the candidate, want about %d", weight, onCandidate, users, want)
		}
		t.Logf("weight %d: %d of %d users on the candidate on every replica", weight, onCandidate, users)
	}
}

// TestReplicasRegistry registers a service instance through one replica:
// every replica lists it and routes the service's module to it;
// heartbeats through the other replicas keep it past its TTL, and once
// they stop it expires on every replica.
func TestReplicasRegistry(t *testing.T) {
	c := newCluster(t, 3)
	doc := stateTable(c.svc.URL)
	doc.Backends["inventory-svc"] = routes.Backend{Service: "inventory"}
	doc.Modules = append(doc.Modules, routes.Module{Name: "inventory", Mode: routes.ModeExtracted, Candidate: "inventory-svc",
		Routes: []routes.RouteDef{{ID: "inventory", Prefix: "/api/inventory"}}})
	c.replaceTable(t, doc)
	inst := proxytest.EchoBackend(t, "inventory-1")
	ctx := context.Background()
	const ttl = 3 * time.Second
	listed := func(r *proxytest.Proxy) bool {
		list, err := r.Admin(t).Services(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(list, func(s api.Service) bool {
			return s.Name == "inventory" && slices.ContainsFunc(s.Instances, func(in api.RegisteredInstance) bool { return in.URL == inst.URL })
		})
	}
	if err := c.replicas[0].Admin(t).Register(ctx, "inventory", inst.URL, ttl); err != nil {
		t.Fatal(err)
	}
	for i, r := range c.replicas {
		if !listed(r) {
			t.Fatalf("replica %d does not list the instance registered through replica 0", i)
		}
		proxytest.Eventually(t, 10*time.Second, func() bool {
			_, e := proxytest.Get(t, r.URL+"/api/inventory/1", nil)
			return e != nil && e.Backend == "inventory-1"
		}, "replica %d does not route /api/inventory to the instance registered through replica 0", i)
	}
	// Heartbeats every ttl/3 through replicas 1 and 2 for twice the TTL.
	for beat := 0; beat < 6; beat++ {
		time.Sleep(ttl / 3)
		if err := c.replicas[1+beat%2].Admin(t).Register(ctx, "inventory", inst.URL, ttl); err != nil {
			t.Fatal(err)
		}
		for i, r := range c.replicas {
			if !listed(r) {
				t.Fatalf("beat %d: replica %d lost the instance its heartbeats renew", beat, i)
			}
		}
	}
	for i, r := range c.replicas {
		proxytest.Eventually(t, 15*time.Second, func() bool { return !listed(r) },
			"replica %d still lists the instance well after its TTL without heartbeats", i)
	}
}

// TestReplicasAuditOneLog makes a change through each of three replicas:
// the audit log read through any of them is the same one, with the three
// changes newest first.
func TestReplicasAuditOneLog(t *testing.T) {
	c := newCluster(t, 3)
	ctx := context.Background()
	var versions []int64
	for i, r := range c.replicas {
		a := r.Admin(t)
		var (
			m   *api.Module
			err error
		)
		switch i {
		case 0:
			m, err = a.Flip(ctx, "orders")
		case 1:
			m, err = a.Canary(ctx, "orders", 20)
		default:
			m, err = a.Rollback(ctx, "orders")
		}
		if err != nil {
			t.Fatalf("change through replica %d: %v", i, err)
		}
		versions = append(versions, m.Version)
		c.waitVersion(t, m.Version, time.Now())
	}
	var first []api.AuditEntry
	for i, r := range c.replicas {
		log, err := r.Admin(t).Audit(ctx, "orders", 50)
		if err != nil {
			t.Fatal(err)
		}
		var got []int64
		for _, e := range log {
			got = append(got, e.Version)
		}
		slices.Reverse(got)
		if len(got) < 3 || !slices.Equal(got[len(got)-3:], versions) {
			t.Fatalf("replica %d's audit of orders has versions %v (oldest first), want the changes %v last", i, got, versions)
		}
		if i == 0 {
			first = log
			continue
		}
		if !slices.EqualFunc(log, first, func(a, b api.AuditEntry) bool {
			return a.Time.Equal(b.Time) && a.Version == b.Version && a.Action == b.Action && a.Actor == b.Actor
		}) {
			t.Errorf("replica %d's audit differs from replica 0's:\n%+v\n%+v", i, log, first)
		}
	}
}
