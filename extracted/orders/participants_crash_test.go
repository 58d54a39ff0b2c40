package orders_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/extracted/inventory"
	"github.com/stranglerkit/strangler/extracted/orders"
	"github.com/stranglerkit/strangler/extracted/orders/service"
	"github.com/stranglerkit/strangler/httpx"
	"github.com/stranglerkit/strangler/internal/chaostest"
	"github.com/stranglerkit/strangler/internal/lifecycletest"
	"github.com/stranglerkit/strangler/monolith"
	"github.com/stranglerkit/strangler/monolith/shoptest"
	"github.com/stranglerkit/strangler/saga"
)

// envParticipant makes the test binary, run again, a participant of the
// placement saga (participantHelper) instead of the tests.
const envParticipant = "ORDERS_PARTICIPANT_HELPER"

// The participants the helper can be: the inventory service (reserve,
// release) and the monolith (its payments module: authorize, void).
const (
	inventoryParticipant = "inventory service"
	monolithParticipant  = "monolith"
)

// participantSpec is what the participant helper gets: which participant
// it is, its database and listen address, and the killer point at which
// it SIGKILLs itself ("" for none).
type participantSpec struct {
	Kind  string `json:"kind"`
	DSN   string `json:"dsn"`
	Addr  string `json:"addr"`
	Point string `json:"point"`
}

// participantHelperLifetime bounds a participant helper that nobody
// kills, such as one whose test binary died.
const participantHelperLifetime = 3 * time.Minute

// participantHelper serves the participant of specJSON on its database,
// which the test has migrated and seeded, behind a killer at its point,
// until it kills itself or is killed.
func participantHelper(specJSON string) error {
	var spec participantSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), participantHelperLifetime)
	defer cancel()
	var h http.Handler
	switch spec.Kind {
	case inventoryParticipant:
		off := false
		cfg := inventory.Config{Addr: spec.Addr, DSN: spec.DSN}
		cfg.RegisterWith.Enabled = &off
		cfg.SetDefaults(os.TempDir())
		inv, err := inventory.New(cfg, inventory.Options{Logger: httpx.Discard})
		if err != nil {
			return err
		}
		defer inv.Close()
		if err := inv.Prepare(ctx); err != nil {
			return err
		}
		h = inv.Handler()
	case monolithParticipant:
		cfg := shoptest.Config(spec.DSN)
		cfg.Addr = spec.Addr
		shop, err := monolith.New(cfg, httpx.Discard)
		if err != nil {
			return err
		}
		defer shop.Close()
		if err := shop.Prepare(ctx); err != nil {
			return err
		}
		h = shop.Handler()
	default:
		return fmt.Errorf("unknown participant %q", spec.Kind)
	}
	// The port was the killed process's a moment ago; the kernel may take
	// a moment to let it go.
	var ln net.Listener
	var err error
	for {
		if ln, err = net.Listen("tcp", spec.Addr); err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	return httpx.Serve(ctx, ln, &killer{point: spec.Point, next: h})
}

// startParticipant starts the participant kind as its own process on the
// world's database for it and on addr, killing itself at point, and
// returns once it answers /readyz.
func (w *world) startParticipant(kind, addr, point string) *chaostest.Process {
	w.t.Helper()
	spec := participantSpec{Kind: kind, DSN: w.invDSN, Addr: addr, Point: point}
	if kind == monolithParticipant {
		spec.DSN = w.shopDSN
	}
	b, err := json.Marshal(spec)
	if err != nil {
		w.t.Fatal(err)
	}
	p := chaostest.StartKillable(w.t, envParticipant+"="+string(b))
	eventually(w.t, "the "+kind+" process serves on "+addr, func() bool {
		select {
		case <-p.Done():
			w.t.Fatalf("the %s process ended before it served: %s", kind, p.Output())
		default:
		}
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return p
}

// outage is one crash of a participant: the killer point of its process,
// and whether it stays down until every saga has run out of retries and
// ended (long), or only as long as its restart takes.
type outage struct {
	point string
	long  bool
}

func (o outage) String() string {
	if o.long {
		return o.point + "/down-until-the-sagas-give-up"
	}
	return o.point + "/restarted-at-once"
}

// TestChaosInventoryServiceCrash kills the inventory service's process
// with SIGKILL while orders are being placed: before a reservation or a
// release reaches it, and after it committed one but before the orders
// service heard the answer. It restarts the process on the same database
// and port, at once or only once every saga has run out of retries (and
// compensated, or gone manual, which the test then retries through the
// saga admin API). Every saga must end completed or compensated, the
// reserved stock equal the open orders' lines, and nobody be charged twice.
func TestChaosInventoryServiceCrash(t *testing.T) {
	participantCrash(t, inventoryParticipant, []outage{
		{point: "before:reservations"},
		{point: "after:reservations"},
		{point: "after:reservations", long: true},
		{point: "before:releases"},
		{point: "after:releases", long: true},
	})
}

// TestChaosMonolithCrash is TestChaosInventoryServiceCrash with the
// monolith, whose payments module authorizes and voids, killed instead.
func TestChaosMonolithCrash(t *testing.T) {
	participantCrash(t, monolithParticipant, []outage{
		{point: "before:authorizations"},
		{point: "after:authorizations"},
		{point: "after:authorizations", long: true},
		{point: "before:voids"},
		{point: "after:voids", long: true},
	})
}

func participantCrash(t *testing.T, kind string, outages []outage) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		for _, o := range outages {
			t.Run(o.String(), func(t *testing.T) {
				w := newWorld(t, siblingDSN(t, dsn))
				runOutage(t, w, siblingDSN(t, dsn), kind, o)
			})
		}
	})
}

// runOutage places orders at an orders service on dsn whose participant
// kind is a process killed at o's point, restarts the process, brings
// every saga to its end and reports what they came to.
func runOutage(t *testing.T, w *world, dsn, kind string, o outage) {
	ctx := t.Context()
	poor := w.addPoorCustomer()
	addr := lifecycletest.FreeAddr(t)
	proc := w.startParticipant(kind, addr, o.point)
	svc, url := w.startOrdersWith(dsn, func(c *orders.Config) {
		// A long outage is to outlast the compensations' retries, which
		// the forward steps' 5 attempts keep to a few seconds.
		c.CompensationAttempts = 5
		if kind == inventoryParticipant {
			c.InventoryURL = "http://" + addr
		} else {
			c.PaymentsURL = "http://" + addr
		}
	})
	// The poor customer's order compensates at the authorization (a void
	// and a release); of the first and third orders, which want more of
	// B than there is, one compensates at the reservation (a release).
	a, b := w.products[0].SKU, w.products[1].SKU
	placements := []service.NewOrder{
		{CustomerID: w.customer.ID, Lines: []service.NewLine{{SKU: a, Quantity: 2}, {SKU: b, Quantity: 1}}},
		{CustomerID: poor.ID, Lines: []service.NewLine{{SKU: a, Quantity: 1}}},
		{CustomerID: w.customer.ID, Lines: []service.NewLine{{SKU: a, Quantity: 1}, {SKU: b, Quantity: stockOf[1]}}},
		{CustomerID: w.customer.ID, Lines: []service.NewLine{{SKU: a, Quantity: 1}}},
	}
	answers := make(chan error, len(placements))
	for _, in := range placements {
		go func() {
			_, err := svc.Core().Place(ctx, in)
			answers <- err
		}()
	}
	var answered []error
	collect := func() bool {
		for {
			select {
			case err := <-answers:
				answered = append(answered, err)
			default:
				return len(answered) == len(placements)
			}
		}
	}

	select {
	case <-proc.Done():
	case <-time.After(time.Minute):
		t.Fatalf("the %s process did not reach %s within a minute", kind, o.point)
	}
	if !proc.Wait() {
		t.Fatalf("the %s process ended before it reached %s: %s", kind, o.point, proc.Output())
	}
	gaveUp := 0
	if o.long {
		eventually(t, "every placement ends while the "+kind+" is down", func() bool {
			if !collect() {
				return false
			}
			gaveUp = 0
			for _, s := range w.sagas(svc) {
				if !s.State.Final() {
					return false
				}
				if s.State == saga.Manual {
					gaveUp++
				}
			}
			return true
		})
	}
	w.startParticipant(kind, addr, "")

	admin, err := saga.NewClient(url+"/v1", w.ordersConfig(dsn).RegisterWith.Token)
	if err != nil {
		t.Fatal(err)
	}
	retried := map[string]bool{}
	eventually(t, "every saga completes or compensates", func() bool {
		done := collect()
		for _, s := range w.sagas(svc) {
			switch {
			case s.State == saga.Manual:
				if _, err := admin.Retry(ctx, s.ID, "the "+kind+" is back"); err != nil {
					t.Fatalf("retry %s: %v", s.ID, err)
				}
				retried[s.ID] = true
				done = false
			case !s.State.Final():
				done = false
			}
		}
		return done
	})

	audit := w.audit(svc)
	for _, err := range answered {
		var p *httpx.Problem
		if err != nil && !errors.As(err, &p) {
			audit.problems = append(audit.problems, fmt.Sprintf("a placement failed without a problem: %v", err))
		}
	}
	if o.long && gaveUp == 0 {
		audit.problems = append(audit.problems, "no saga went manual: the outage did not outlast the retries")
	}
	saw := fmt.Sprintf("%s; %d step attempts failed and were retried or compensated, %d sagas went manual while it was down, %d were retried through the admin API",
		audit.summary(), w.failedAttempts(svc), gaveUp, len(retried))
	if len(audit.problems) > 0 {
		saw += ": " + strings.Join(audit.problems, "; ")
	}
	down := "restarted at once"
	if o.long {
		down = "kept down until every saga had run out of retries, then restarted"
	}
	chaostest.Report(t, len(audit.problems) == 0,
		fmt.Sprintf("SIGKILL of the %s process at %s while %d orders were placed, %s on the same database and port", kind, o.point, len(placements), down),
		"every placement saga completed or compensated (the manual ones after a retry), reserved stock equal to the open orders' lines, one authorization per placed order and none held for a compensated one",
		saw)
}

// failedAttempts counts the step attempts, forward and compensating, that
// failed in the sagas of svc.
func (w *world) failedAttempts(svc *orders.Service) int {
	w.t.Helper()
	n := 0
	for _, s := range w.sagas(svc) {
		full, err := svc.Orchestrator().Get(context.Background(), s.ID)
		if err != nil {
			w.t.Fatal(err)
		}
		for _, e := range full.Log {
			if e.Event == saga.StepFailed || e.Event == saga.StepCompensationFailed {
				n++
			}
		}
	}
	return n
}
