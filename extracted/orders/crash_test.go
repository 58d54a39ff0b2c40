package orders_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	aclorders "github.com/stranglerkit/strangler/acl/orders"
	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/extracted/orders"
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
	os.Exit(m.Run())
}

// killer stands between the orders service and a participant and kills
// its own process with SIGKILL at point, "before:WHAT" (the request for a
// path ending in WHAT arrived, the participant has not seen it) or
// "after:WHAT" (the participant committed it, the orders service has not
// heard the answer).
type killer struct {
	point string
	next  *httputil.ReverseProxy
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
				poor := w.shop.CreateCustomer("poor@example.nl")
				limit := int64(100)
				if _, err := w.shop.Payments().SetLimit(context.Background(), poor.ID, payments.LimitPatch{CreditLimitCents: &limit}); err != nil {
					t.Fatal(err)
				}
				w.events = append(w.events, w.event(aclorders.CustomerAggregate, fmt.Sprint(poor.ID), aclorders.CustomerCreated, poor))
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
	ctx := context.Background()
	var all []saga.Saga
	eventually(w.t, "every saga ends", func() bool {
		var err error
		if all, err = svc.Orchestrator().List(ctx, saga.Filter{Limit: saga.MaxPage}); err != nil {
			w.t.Fatal(err)
		}
		for _, s := range all {
			if !s.State.Final() {
				return false
			}
		}
		return true
	})
	var problems []string
	report := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if len(all) == 0 {
		report("no placement saga was started before the crash")
	}
	var open []aclorders.LegacyOrder
	held := map[int64]int64{}
	for _, s := range all {
		var id int64
		if _, err := fmt.Sscanf(s.ID, "order-%d", &id); err != nil {
			w.t.Fatal(err)
		}
		auth, authorized := w.authorization(placeKey(id, service.StepAuthorize))
		o, err := svc.Core().Get(ctx, id)
		switch s.State {
		case saga.Completed:
			if err != nil {
				report("%s completed, but its order: %v", s.ID, err)
				continue
			}
			open = append(open, o)
			held[o.CustomerID] += o.TotalCents
			if !authorized || auth.Status != payments.StatusAuthorized || auth.AmountCents != o.TotalCents {
				report("%s completed with authorization %+v (found %v), want %d authorized once", s.ID, auth, authorized, o.TotalCents)
			}
		case saga.Compensated:
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
	for _, c := range []int64{w.customer.ID} {
		acc, err := w.shop.Payments().Account(ctx, c)
		if err != nil {
			w.t.Fatal(err)
		}
		if acc.AuthorizedCents != held[c] || acc.CapturedCents != 0 {
			report("customer %d holds %d authorized and %d captured, want %d and 0", c, acc.AuthorizedCents, acc.CapturedCents, held[c])
		}
	}
	reservedBefore := len(problems)
	w.noLeak(open)
	if w.t.Failed() && len(problems) == reservedBefore {
		report("stock leaked")
	}
	return problems
}
