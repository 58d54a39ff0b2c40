package orders_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	aclorders "github.com/stranglerkit/strangler/acl/orders"
	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/extracted/orders"
	"github.com/stranglerkit/strangler/extracted/orders/domain"
	"github.com/stranglerkit/strangler/extracted/orders/service"
	"github.com/stranglerkit/strangler/httpx"
	"github.com/stranglerkit/strangler/internal/chaostest"
	"github.com/stranglerkit/strangler/monolith/payments"
	"github.com/stranglerkit/strangler/saga"
)

// The crash helper's environment: the test binary, run again with
// envCrash set, is an orders service process (crashHelper) instead of the
// tests.
const (
	envCrash      = "ORDERS_CRASH_HELPER"
	envCrashPoint = "ORDERS_CRASH_POINT"
)

// crashSpec is what the crash helper gets: the orders service's config
// and the orders to place, one after the other.
type crashSpec struct {
	Config orders.Config      `json:"config"`
	Orders []service.NewOrder `json:"orders"`
}

func TestMain(m *testing.M) {
	if spec := os.Getenv(envCrash); spec != "" {
		if err := crashHelper(spec, os.Getenv(envCrashPoint)); err != nil {
			fmt.Fprintln(os.Stderr, "crash helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if spec := os.Getenv(envParticipant); spec != "" {
		if err := participantHelper(spec); err != nil {
			fmt.Fprintln(os.Stderr, "participant helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// killer stands between the orders service and a participant and kills
// its own process with SIGKILL at point, "before:WHAT" (the request for a
// path ending in WHAT arrived, the participant has not seen it) or
// "after:WHAT" (the participant committed it, the orders service has not
// heard the answer).
type killer struct {
	point string
	next  http.Handler
}

func newKiller(point, target string) (*httptest.Server, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	return httptest.NewServer(&killer{point: point, next: httputil.NewSingleHostReverseProxy(u)}), nil
}

func (k *killer) kill(phase string, r *http.Request) {
	when, what, _ := strings.Cut(k.point, ":")
	if when == phase && what != "" && strings.HasSuffix(r.URL.Path, what) {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}

func (k *killer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	k.kill("before", r)
	rec := httptest.NewRecorder()
	k.next.ServeHTTP(rec, r)
	k.kill("after", r)
	for name, vs := range rec.Header() {
		w.Header()[name] = vs
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// crashHelper runs the orders service of spec with its participants
// behind killers and places the spec's orders, one after the other.
func crashHelper(specJSON, point string) error {
	var spec crashSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		return err
	}
	cfg := spec.Config
	inv, err := newKiller(point, cfg.InventoryURL)
	if err != nil {
		return err
	}
	defer inv.Close()
	pay, err := newKiller(point, cfg.PaymentsURL)
	if err != nil {
		return err
	}
	defer pay.Close()
	cfg.InventoryURL, cfg.PaymentsURL = inv.URL, pay.URL
	svc, err := orders.New(cfg, orders.Options{Logger: httpx.Discard})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	<-svc.Started()
	if err := svc.Prepare(ctx); err != nil {
		return err
	}
	for _, o := range spec.Orders {
		_, err := svc.Core().Place(ctx, o)
		var p *httpx.Problem
		if err != nil && !errors.As(err, &p) {
			return err
		}
	}
	cancel()
	return <-done
}

// runCrashHelper runs the helper and reports whether SIGKILL ended it.
func runCrashHelper(t *testing.T, spec crashSpec, point string) bool {
	t.Helper()
	b, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	return chaostest.RunKillable(t, envCrash+"="+string(b), envCrashPoint+"="+point)
}

// TestChaosOrdersCrash kills the orders service process with SIGKILL at
// each step of placing an order (before a participant saw a step, with
// the step done at the participant but the answer lost, in a
// compensation), restarts it, and checks that every placement saga ends
// completed or compensated, that no stock is leaked (reserved equals the
// sum of the open orders' lines) and that no customer is charged twice
// (one authorization per order, held only for placed orders).
func TestChaosOrdersCrash(t *testing.T) {
	points := []string{
		"before:reservations", "after:reservations",
		"before:authorizations", "after:authorizations",
		"before:voids", "after:voids",
		"before:releases", "after:releases",
	}
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		for _, point := range points {
			t.Run(point, func(t *testing.T) {
				w := newWorld(t, siblingDSN(t, dsn))
				poor := w.addPoorCustomer()
				a, b := w.products[0].SKU, w.products[1].SKU
				spec := crashSpec{Config: w.ordersConfig(siblingDSN(t, dsn)), Orders: []service.NewOrder{
					{CustomerID: w.customer.ID, Lines: []service.NewLine{{SKU: a, Quantity: 2}, {SKU: b, Quantity: 1}}},
					{CustomerID: poor.ID, Lines: []service.NewLine{{SKU: a, Quantity: 1}, {SKU: b, Quantity: 1}}},
					{CustomerID: w.customer.ID, Lines: []service.NewLine{{SKU: a, Quantity: 1}, {SKU: b, Quantity: stockOf[1]}}},
					{CustomerID: w.customer.ID, Lines: []service.NewLine{{SKU: a, Quantity: 1}}},
				}}
				spec.Config.Addr = "127.0.0.1:0"
				pre, err := orders.New(spec.Config, orders.Options{Logger: httpx.Discard})
				if err != nil {
					t.Fatal(err)
				}
				w.feed(pre)
				if err := pre.Close(); err != nil {
					t.Fatal(err)
				}
				if !runCrashHelper(t, spec, point) {
					t.Fatalf("the orders service never reached %s", point)
				}
				problems := w.recover(spec.Config.DSN)
				saw := "every saga ended, no stock leaked, one authorization per placed order"
				if len(problems) > 0 {
					saw = strings.Join(problems, "; ")
				}
				chaostest.Report(t, len(problems) == 0, "SIGKILL of the orders service at "+point+", then a restart",
					"every placement saga completed or compensated, reserved stock equal to the open orders' lines, nobody charged twice", saw)
			})
		}
	})
}

// recover runs the orders service on dsn again until no saga is
// unfinished and lists what is wrong.
func (w *world) recover(dsn string) []string {
	w.t.Helper()
	svc, _ := w.startOrders(dsn)
	w.settle(svc)
	return w.audit(svc).problems
}

// settle waits until every saga of svc is completed, compensated, manual
// or aborted.
func (w *world) settle(svc *orders.Service) {
	w.t.Helper()
	eventually(w.t, "every saga ends", func() bool {
		for _, s := range w.sagas(svc) {
			if !s.State.Final() {
				return false
			}
		}
		return true
	})
}

// sagas lists every saga of svc.
func (w *world) sagas(svc *orders.Service) []saga.Saga {
	w.t.Helper()
	all, err := svc.Orchestrator().List(context.Background(), saga.Filter{Limit: saga.MaxPage})
	if err != nil {
		w.t.Fatal(err)
	}
	return all
}

// audit is what the placement sagas of a world came to, and what is wrong
// with it.
type audit struct {
	completed, compensated int
	// authorized counts the placed orders' authorizations that hold their
	// totals; heldCents is what the customers hold, over all of them.
	authorized int
	heldCents  int64
	stock      reservations
	problems   []string
}

// summary is the audit's counts, for a chaos report.
func (a audit) summary() string {
	return fmt.Sprintf("%d sagas completed, %d compensated; %d units reserved for %d in open orders' lines; %d authorizations held (%d cents) for %d placed orders",
		a.completed, a.compensated, a.stock.reserved, a.stock.open, a.authorized, a.heldCents, a.completed)
}

// audit checks the sagas of svc, which must all have ended: each completed
// or compensated, a completed one's order placed with its total
// authorized once, a compensated one's without an order and without a
// hold; each customer's holds the sum of their placed orders; and the
// inventory service's reserved stock the open orders' lines.
func (w *world) audit(svc *orders.Service) audit {
	w.t.Helper()
	ctx := context.Background()
	var a audit
	report := func(format string, args ...any) { a.problems = append(a.problems, fmt.Sprintf(format, args...)) }
	all := w.sagas(svc)
	if len(all) == 0 {
		report("no placement saga was started")
	}
	var open []aclorders.LegacyOrder
	held, buyers := map[int64]int64{}, map[int64]bool{}
	for _, s := range all {
		var id int64
		if _, err := fmt.Sscanf(s.ID, "order-%d", &id); err != nil {
			w.t.Fatal(err)
		}
		var data struct {
			Order domain.Placed `json:"order"`
		}
		if err := json.Unmarshal(s.Data, &data); err != nil {
			w.t.Fatalf("%s: data: %v", s.ID, err)
		}
		buyers[data.Order.CustomerID] = true
		auth, authorized := w.authorization(placeKey(id, service.StepAuthorize))
		o, err := svc.Core().Get(ctx, id)
		switch s.State {
		case saga.Completed:
			a.completed++
			if err != nil {
				report("%s completed, but its order: %v", s.ID, err)
				continue
			}
			open = append(open, o)
			held[o.CustomerID] += o.TotalCents
			if !authorized || auth.Status != payments.StatusAuthorized || auth.AmountCents != o.TotalCents {
				report("%s completed with authorization %+v (found %v), want %d authorized once", s.ID, auth, authorized, o.TotalCents)
				continue
			}
			a.authorized++
		case saga.Compensated:
			a.compensated++
			if err == nil {
				report("%s compensated, but its order exists: %+v", s.ID, o)
			}
			if authorized && auth.Status == payments.StatusAuthorized {
				report("%s compensated, but its authorization still holds %d", s.ID, auth.AmountCents)
			}
		default:
			report("%s ended %s: %s", s.ID, s.State, s.Error)
		}
	}
	// Nobody is charged twice: each customer's open holds are exactly the
	// placed orders' totals.
	for _, c := range slices.Sorted(maps.Keys(buyers)) {
		acc, err := w.shop.Payments().Account(ctx, c)
		if err != nil {
			w.t.Fatal(err)
		}
		a.heldCents += acc.AuthorizedCents
		if acc.AuthorizedCents != held[c] || acc.CapturedCents != 0 {
			report("customer %d holds %d authorized and %d captured, want %d and 0", c, acc.AuthorizedCents, acc.CapturedCents, held[c])
		}
	}
	a.stock = w.leaks(open)
	a.problems = append(a.problems, a.stock.problems...)
	return a
}
