package dataplane

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/stranglerkit/strangler/proxy/control"
	"github.com/stranglerkit/strangler/proxy/discover"
	"github.com/stranglerkit/strangler/proxy/routes"
)

// planeWithTable is a data plane serving one compiled table, unrun.
func planeWithTable(t *testing.T, yaml string) *Plane {
	t.Helper()
	p, err := New(Config{AccessLog: AccessLogConfig{Enabled: new(bool)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	doc, err := routes.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := routes.Compile(doc, routes.Options{Backends: map[string]routes.Backend{"legacy": {URLs: []string{"http://127.0.0.1:1"}}}})
	if err != nil {
		t.Fatal(err)
	}
	p.Publish(tbl, 1)
	return p
}

const oneRoute = "modules:\n  - name: default\n    routes: [{id: all, prefix: /}]\n"

func observePath(ru *routeUsage, path string, side, status int) {
	tmpl := discover.AppendTemplate(nil, []byte(path))
	ru.observe(tmpl, []byte("GET"), side, status, 1)
}

// TestInventoryRandomPathsBounded sends a route far more distinct random
// paths than it keeps templates: it keeps MaxUsageTemplates, every request
// is counted, the rest in the other bucket.
func TestInventoryRandomPathsBounded(t *testing.T) {
	p := planeWithTable(t, oneRoute)
	ru := p.table.Load().routes[0].usage
	const n = 3 * control.MaxUsageTemplates
	for i := 0; i < n; i++ {
		observePath(ru, fmt.Sprintf("/r/%x-z/%s", rand.Uint64(), "q"), sideLegacy, 200)
	}
	if got := ru.templateCount(); got != control.MaxUsageTemplates {
		t.Fatalf("%d random paths made %d templates, want the cap %d", n, got, control.MaxUsageTemplates)
	}
	deltas, commit, _ := p.UsageDeltas()
	commit()
	var total, other int64
	for _, d := range deltas {
		total += d.Legacy[2]
		if d.Template == control.OtherTemplate {
			other = d.Legacy[2]
		}
	}
	if total != n || other != n-control.MaxUsageTemplates {
		t.Fatalf("deltas count %d requests, %d in %s; want %d and %d", total, other, control.OtherTemplate, n, n-control.MaxUsageTemplates)
	}
}

// TestInventoryPlaneCap fills the plane-wide cap through many routes: a
// route past it counts in its other bucket.
func TestInventoryPlaneCap(t *testing.T) {
	p := planeWithTable(t, oneRoute)
	p.inv.templates.Store(maxInventoryTemplates - 1)
	ru := p.table.Load().routes[0].usage
	observePath(ru, "/a", sideLegacy, 200)
	observePath(ru, "/b", sideLegacy, 200)
	if ru.templateCount() != 1 || ru.other.counts[sideLegacy][2].Load() != 1 {
		t.Fatalf("at the plane's cap: %d templates, %d in other; want 1 and 1", ru.templateCount(), ru.other.counts[sideLegacy][2].Load())
	}
}

// TestInventoryObserveDoesNotAllocate counts a request of a known template
// without allocating.
func TestInventoryObserveDoesNotAllocate(t *testing.T) {
	p := planeWithTable(t, oneRoute)
	ru := p.table.Load().routes[0].usage
	st := &reqState{tmpl: make([]byte, 0, 2*discover.MaxTemplateLen), path: []byte("/api/articles/how-to-x/comments/7")}
	method := []byte("GET")
	ru.observe(st.appendTemplate(), method, sideLegacy, 200, 1)
	if n := testing.AllocsPerRun(200, func() { ru.observe(st.appendTemplate(), method, sideCandidate, 503, 2) }); n != 0 {
		t.Fatalf("observe allocates %v times a request", n)
	}
}

// TestUsageDeltas takes the deltas twice: a commit marks them sent, a
// release without commit sends them again, and a route that left the
// table is forgotten once its counts are flushed.
func TestUsageDeltas(t *testing.T) {
	p := planeWithTable(t, oneRoute)
	ru := p.table.Load().routes[0].usage
	observePath(ru, "/api/orders/1", sideLegacy, 200)
	observePath(ru, "/api/orders/2", sideCandidate, 502)
	observePath(ru, "/api/orders", sideLegacy, 404)
	sum := func(ds []control.Usage) (l, c int64) {
		for _, d := range ds {
			for i := range d.Legacy {
				l += d.Legacy[i]
				c += d.Candidate[i]
			}
		}
		return l, c
	}
	d1, _, release := p.UsageDeltas()
	release()
	d2, commit, _ := p.UsageDeltas()
	commit()
	if l1, c1 := sum(d1); l1 != 2 || c1 != 1 || len(d2) != len(d1) {
		t.Fatalf("first deltas %+v, second %+v", d1, d2)
	}
	d3, commit, _ := p.UsageDeltas()
	commit()
	if len(d3) != 0 {
		t.Fatalf("deltas after a commit with nothing new: %+v", d3)
	}
	observePath(ru, "/api/orders/3", sideLegacy, 200)
	// The route leaves the table: its last counts still go out, then it
	// is forgotten.
	doc, _ := routes.Parse([]byte("modules:\n  - name: default\n    routes: [{id: other, prefix: /}]\n"))
	tbl, err := routes.Compile(doc, routes.Options{Backends: map[string]routes.Backend{"legacy": {URLs: []string{"http://127.0.0.1:1"}}}})
	if err != nil {
		t.Fatal(err)
	}
	p.Publish(tbl, 2)
	d4, commit, _ := p.UsageDeltas()
	commit()
	if l, _ := sum(d4); l != 1 || d4[0].Route != "all" || d4[0].Template != "/api/orders/{id}" {
		t.Fatalf("deltas of the route that left: %+v", d4)
	}
	_, commit, _ = p.UsageDeltas()
	commit()
	if _, ok := p.inv.routes[[2]string{"default", "all"}]; ok || p.inv.templates.Load() != 0 {
		t.Fatalf("the route that left is still held (%d templates in all)", p.inv.templates.Load())
	}
}

// TestInventoryConcurrentFlush counts from several goroutines, new and
// known templates, while flushes take and commit deltas: the deltas add
// up to every request, none twice.
func TestInventoryConcurrentFlush(t *testing.T) {
	p := planeWithTable(t, oneRoute)
	ru := p.table.Load().routes[0].usage
	const workers, each = 4, 500
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				observePath(ru, fmt.Sprintf("/w%c/x%c", 'a'+w, 'a'+i%7), sideLegacy, 200)
			}
		}()
	}
	var total int64
	flush := func() {
		deltas, commit, _ := p.UsageDeltas()
		for _, d := range deltas {
			total += d.Legacy[2]
		}
		commit()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
			flush()
		}
	}
	flush()
	if total != workers*each {
		t.Fatalf("the deltas count %d requests, want %d", total, workers*each)
	}
}
