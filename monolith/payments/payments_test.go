package payments_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/httpx"
	"github.com/stranglerkit/strangler/internal/chaostest"
	"github.com/stranglerkit/strangler/monolith"
	"github.com/stranglerkit/strangler/monolith/payments"
	"github.com/stranglerkit/strangler/monolith/shoptest"
)

// limit is the default credit limit the tests configure.
const limit = 1000

func newShop(t *testing.T, dsn string) *shoptest.Shop {
	return shoptest.New(t, dsn, shoptest.WithConfig(func(c *monolith.Config) { c.CreditLimitCents = limit }))
}

func auth(customer, amount int64, key string) map[string]any {
	return map[string]any{"customer_id": customer, "amount_cents": amount, "idempotency_key": key}
}

// paymentEvents returns the types of the outbox's payment events for key,
// in commit order.
func paymentEvents(t *testing.T, shop *shoptest.Shop, key string) []string {
	t.Helper()
	var rows []struct{ Type, Payload string }
	if err := shop.DB().Raw("SELECT type, payload FROM outbox WHERE aggregatetype = 'payment' ORDER BY seq").Scan(&rows).Error; err != nil {
		t.Fatalf("read outbox: %v", err)
	}
	var out []string
	for _, r := range rows {
		var a payments.Authorization
		if err := json.Unmarshal([]byte(r.Payload), &a); err != nil {
			t.Fatalf("payload %s: %v", r.Payload, err)
		}
		if a.IdempotencyKey == key {
			out = append(out, fmt.Sprintf("%s v%d %s", r.Type, a.Version, a.Status))
		}
	}
	return out
}

func account(t *testing.T, s *shoptest.Shop, customer int64) payments.Account {
	t.Helper()
	var a payments.Account
	s.Get(fmt.Sprintf("/api/payments/accounts/%d", customer)).Expect(http.StatusOK).Decode(&a)
	return a
}

func TestPaymentsHTTP(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		shop := newShop(t, dsn)
		cu := shop.CreateCustomer("payer@example.com").ID

		t.Run("authorize, repeat, capture", func(t *testing.T) {
			s := shop.With(t)
			if a := account(t, s, cu); a.CreditLimitCents != limit || !a.DefaultLimit || a.AvailableCents != limit {
				t.Fatalf("fresh account %+v", a)
			}
			var first, again payments.Authorization
			r := s.Post("/api/payments/authorizations", auth(cu, 300, "order/1/pay")).Expect(http.StatusCreated)
			r.Decode(&first)
			if first.Status != payments.StatusAuthorized || first.AmountCents != 300 || *first.CustomerID != cu || first.AuthorizedAt == nil || first.Version != 1 {
				t.Fatalf("authorized %+v", first)
			}
			if loc := r.Header.Get("Location"); loc != fmt.Sprintf("/api/payments/authorizations/%d", first.ID) {
				t.Fatalf("Location %q", loc)
			}
			s.Post("/api/payments/authorizations", auth(cu, 300, "order/1/pay")).Expect(http.StatusCreated).Decode(&again)
			if again.ID != first.ID || again.Version != 1 {
				t.Fatalf("repeat gave %+v, first %+v", again, first)
			}
			if a := account(t, s, cu); a.AuthorizedCents != 300 || a.AvailableCents != 700 {
				t.Fatalf("after one hold: %+v", a)
			}
			var capt payments.Authorization
			s.Post(fmt.Sprintf("/api/payments/authorizations/%d/capture", first.ID), nil).Expect(http.StatusOK).Decode(&capt)
			if capt.Status != payments.StatusCaptured || capt.CapturedAt == nil || capt.Version != 2 {
				t.Fatalf("captured %+v", capt)
			}
			s.Post(fmt.Sprintf("/api/payments/authorizations/%d/capture", first.ID), nil).Expect(http.StatusOK).Decode(&capt)
			if capt.Version != 2 {
				t.Fatalf("second capture changed the authorization: %+v", capt)
			}
			if a := account(t, s, cu); a.AuthorizedCents != 0 || a.CapturedCents != 300 || a.AvailableCents != 700 {
				t.Fatalf("after capture: %+v", a)
			}
			if got := paymentEvents(t, s, "order/1/pay"); strings.Join(got, ",") != "payment.authorized v1 authorized,payment.captured v2 captured" {
				t.Fatalf("events %v", got)
			}
		})

		t.Run("decline, void, null compensation", func(t *testing.T) {
			s := shop.With(t)
			var held payments.Authorization
			s.Post("/api/payments/authorizations", auth(cu, 600, "order/2/pay")).Expect(http.StatusCreated).Decode(&held)
			s.Run(t, []shoptest.Case{
				{Name: "over the limit", Method: "POST", Path: "/api/payments/authorizations", Body: auth(cu, 101, "order/3/pay"), Status: 422, Slug: "payment-declined", Detail: "has 100 cents of credit available"},
				{Name: "a declined key stays declined", Method: "POST", Path: "/api/payments/authorizations", Body: auth(cu, 101, "order/3/pay"), Status: 422, Slug: "payment-declined"},
				{Name: "key reused for another amount", Method: "POST", Path: "/api/payments/authorizations", Body: auth(cu, 5, "order/2/pay"), Status: 409, Slug: "idempotency-key-reused"},
				{Name: "void of a captured one", Method: "POST", Path: "/api/payments/voids", Body: map[string]any{"idempotency_key": "order/1/pay"}, Status: 409, Slug: "authorization-status"},
				{Name: "capture of a declined one", Method: "POST", Path: "/api/payments/authorizations/999999/capture", Status: 404, Slug: "not-found"},
				{Name: "unknown customer", Method: "POST", Path: "/api/payments/authorizations", Body: auth(999999, 1, "x"), Status: 422, Slug: "unknown-customer", Field: "customer_id"},
				{Name: "account of an unknown customer", Method: "GET", Path: "/api/payments/accounts/999999", Status: 404, Slug: "not-found"},
			})
			var voided payments.Authorization
			s.Post(fmt.Sprintf("/api/payments/authorizations/%d/void", held.ID), nil).Expect(http.StatusOK).Decode(&voided)
			if voided.Status != payments.StatusVoided || voided.VoidedAt == nil || voided.NullCompensation() {
				t.Fatalf("voided %+v", voided)
			}
			s.Post("/api/payments/voids", map[string]any{"idempotency_key": "order/2/pay"}).Expect(http.StatusOK).Decode(&voided)
			if voided.Version != 2 {
				t.Fatalf("second void changed it: %+v", voided)
			}
			if a := account(t, s, cu); a.AuthorizedCents != 0 || a.AvailableCents != 700 {
				t.Fatalf("after void: %+v", a)
			}
			// The compensation arrives before its step: it is recorded,
			// and the late step is refused.
			var tomb payments.Authorization
			s.Post("/api/payments/voids", map[string]any{"idempotency_key": "order/4/pay"}).Expect(http.StatusOK).Decode(&tomb)
			if !tomb.NullCompensation() || tomb.CustomerID != nil || tomb.AmountCents != 0 {
				t.Fatalf("null compensation %+v", tomb)
			}
			s.Run(t, []shoptest.Case{
				{Name: "hanging step refused", Method: "POST", Path: "/api/payments/authorizations", Body: auth(cu, 10, "order/4/pay"), Status: 409, Slug: "authorization-voided"},
				{Name: "capture of a voided one", Method: "POST", Path: fmt.Sprintf("/api/payments/authorizations/%d/capture", tomb.ID), Status: 409, Slug: "authorization-status"},
			})
			if a := account(t, s, cu); a.AuthorizedCents != 0 {
				t.Fatalf("the refused step held credit: %+v", a)
			}
			for key, want := range map[string]string{
				"order/2/pay": "payment.authorized v1 authorized,payment.voided v2 voided",
				"order/3/pay": "payment.declined v1 declined",
				"order/4/pay": "payment.voided v1 voided",
			} {
				if got := strings.Join(paymentEvents(t, s, key), ","); got != want {
					t.Errorf("events of %s: %s, want %s", key, got, want)
				}
			}
		})

		t.Run("in process, by key", func(t *testing.T) {
			api, ctx := shop.Payments(), context.Background()
			a, err := api.Authorize(ctx, payments.NewAuthorization{CustomerID: cu, AmountCents: 50, IdempotencyKey: " inproc/1 "})
			if err != nil || a.IdempotencyKey != "inproc/1" {
				t.Fatalf("authorize: %+v, %v", a, err)
			}
			if c, err := api.Capture(ctx, payments.Ref{IdempotencyKey: "inproc/1"}); err != nil || c.ID != a.ID || c.Status != payments.StatusCaptured {
				t.Fatalf("capture by key: %+v, %v", c, err)
			}
			if _, err := api.Void(ctx, payments.Ref{IdempotencyKey: "inproc/1"}); !errors.Is(err, payments.ErrStatus) {
				t.Fatalf("void of a captured one: %v", err)
			}
			for _, ref := range []payments.Ref{{}, {ID: a.ID, IdempotencyKey: "inproc/1"}, {ID: -1}} {
				var p *httpx.Problem
				if _, err := api.Get(ctx, ref); !errors.As(err, &p) || p.Status != http.StatusUnprocessableEntity {
					t.Errorf("Get(%+v): %v, want a 422 problem", ref, err)
				}
			}
			if _, err := api.Capture(ctx, payments.Ref{IdempotencyKey: "never"}); !errors.Is(err, payments.ErrNotFound) {
				t.Fatalf("capture of an unknown key: %v", err)
			}
		})

		t.Run("own limit", func(t *testing.T) {
			s := shop.With(t)
			other := s.CreateCustomer("limited@example.com").ID
			var a payments.Account
			s.Do(http.MethodPut, fmt.Sprintf("/api/payments/accounts/%d", other), map[string]any{"credit_limit_cents": 50}).Expect(http.StatusOK).Decode(&a)
			if a.CreditLimitCents != 50 || a.DefaultLimit {
				t.Fatalf("set limit: %+v", a)
			}
			s.Post("/api/payments/authorizations", auth(other, 51, "own/1")).Expect(http.StatusUnprocessableEntity)
			s.Do(http.MethodPut, fmt.Sprintf("/api/payments/accounts/%d", other), map[string]any{"credit_limit_cents": nil}).Expect(http.StatusOK).Decode(&a)
			if a.CreditLimitCents != limit || !a.DefaultLimit {
				t.Fatalf("default back: %+v", a)
			}
			s.Post("/api/payments/authorizations", auth(other, 51, "own/2")).Expect(http.StatusCreated)
		})
	})
}

// TestPaymentsConcurrency races authorizations for one customer's credit:
// the holds never exceed the limit, one key never holds twice, and a void
// racing its own authorization leaves either nothing held or the
// authorization voided.
func TestPaymentsConcurrency(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		shop := newShop(t, dsn)
		api := shop.Payments()
		ctx := context.Background()
		run := func(n int, fn func(i int) error) []error {
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() { errs[i] = fn(i) })
			}
			wg.Wait()
			return errs
		}

		t.Run("same limit", func(t *testing.T) {
			cu := shop.CreateCustomer("race@example.com").ID
			errs := run(12, func(i int) error {
				_, err := api.Authorize(ctx, payments.NewAuthorization{CustomerID: cu, AmountCents: 300, IdempotencyKey: fmt.Sprintf("race/%d", i)})
				return err
			})
			ok := 0
			for _, err := range errs {
				switch {
				case err == nil:
					ok++
				case !errors.Is(err, payments.ErrDeclined):
					t.Errorf("authorize: %v", err)
				}
			}
			a, err := api.Account(ctx, cu)
			if err != nil {
				t.Fatal(err)
			}
			if ok != 3 || a.AuthorizedCents != 900 || a.AuthorizedCents > a.CreditLimitCents {
				t.Fatalf("%d of 12 authorized, account %+v; want 3 and 900 held", ok, a)
			}
		})

		t.Run("same key", func(t *testing.T) {
			cu := shop.CreateCustomer("samekey@example.com").ID
			ids := make([]int64, 10)
			for i, err := range run(10, func(i int) error {
				got, err := api.Authorize(ctx, payments.NewAuthorization{CustomerID: cu, AmountCents: 100, IdempotencyKey: "same"})
				ids[i] = got.ID
				return err
			}) {
				if err != nil || ids[i] != ids[0] {
					t.Fatalf("attempt %d: id %d (first %d), %v", i, ids[i], ids[0], err)
				}
			}
			if a, _ := api.Account(ctx, cu); a.AuthorizedCents != 100 {
				t.Fatalf("one key held %d cents", a.AuthorizedCents)
			}
		})

		t.Run("void races its authorization", func(t *testing.T) {
			cu := shop.CreateCustomer("hang@example.com").ID
			for round := range 10 {
				key := fmt.Sprintf("hang/%d", round)
				errs := run(2, func(i int) error {
					if i == 0 {
						_, err := api.Authorize(ctx, payments.NewAuthorization{CustomerID: cu, AmountCents: 10, IdempotencyKey: key})
						return err
					}
					_, err := api.Void(ctx, payments.Ref{IdempotencyKey: key})
					return err
				})
				if errs[1] != nil || (errs[0] != nil && !errors.Is(errs[0], payments.ErrVoidedBeforeAuthorized)) {
					t.Fatalf("round %d: authorize %v, void %v", round, errs[0], errs[1])
				}
				got, err := api.Get(ctx, payments.Ref{IdempotencyKey: key})
				if err != nil || got.Status != payments.StatusVoided {
					t.Fatalf("round %d: %+v, %v", round, got, err)
				}
			}
			if a, _ := api.Account(ctx, cu); a.AuthorizedCents != 0 {
				t.Fatalf("voided authorizations still hold %d cents", a.AuthorizedCents)
			}
		})
	})
}

// TestChaosPaymentsInput sends NUL characters, huge numbers, malformed
// JSON and bad paths to every payments endpoint: each gets a 400, 413 or
// 422 problem, never a 500.
func TestChaosPaymentsInput(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		shop := shoptest.New(t, dsn, shoptest.WithSeed(), shoptest.WithConfig(func(c *monolith.Config) { c.MaxBodyBytes = 4096 }))
		huge := strings.Repeat("k", 5000)
		cases := []struct {
			method, path, body string
			status             int
		}{
			{"POST", "/api/payments/authorizations", `{"customer_id":1,"amount_cents":1,"idempotency_key":"a\u0000b"}`, 422},
			{"POST", "/api/payments/authorizations", `{"customer_id":1,"amount_cents":1e30,"idempotency_key":"k"}`, 400},
			{"POST", "/api/payments/authorizations", `{"customer_id":1,"amount_cents":99999999999999999999,"idempotency_key":"k"}`, 400},
			{"POST", "/api/payments/authorizations", `{"customer_id":1,"amount_cents":10000000001,"idempotency_key":"k"}`, 422},
			{"POST", "/api/payments/authorizations", `{"customer_id":1,"amount_cents":-5,"idempotency_key":"k"}`, 422},
			{"POST", "/api/payments/authorizations", `{"customer_id":-1,"amount_cents":5,"idempotency_key":"k"}`, 422},
			{"POST", "/api/payments/authorizations", `{"customer_id":1,"amount_cents":5,"idempotency_key":"` + strings.Repeat("é", 201) + `"}`, 422},
			{"POST", "/api/payments/authorizations", `{"customer_id":1,"amount_cents":5,"idempotency_key":"` + huge + `"}`, 413},
			{"POST", "/api/payments/authorizations", `{"customer_id":1,"amount_cents":5,"idempotency_key":"a\u0007b"}`, 422},
			{"POST", "/api/payments/authorizations", "{\"customer_id\":1,\"amount_cents\":5,\"idempotency_key\":\"a\xffb\"}", 400},
			{"POST", "/api/payments/authorizations", `{"customer_id":1,`, 400},
			{"POST", "/api/payments/authorizations", `{"customer_id":"1","amount_cents":5,"idempotency_key":"k"}`, 400},
			{"POST", "/api/payments/authorizations", `[]`, 400},
			{"POST", "/api/payments/authorizations", `{}`, 422},
			{"POST", "/api/payments/voids", `{"idempotency_key":"\u0000"}`, 422},
			{"POST", "/api/payments/voids", `{"idempotency_key":""}`, 422},
			{"POST", "/api/payments/voids", `{"idempotency_key":12}`, 400},
			{"PUT", "/api/payments/accounts/1", `{"credit_limit_cents":-1}`, 422},
			{"PUT", "/api/payments/accounts/1", `{"credit_limit_cents":1e400}`, 400},
			{"PUT", "/api/payments/accounts/1", `{"credit_limit_cents":1000000000001}`, 422},
			{"PUT", "/api/payments/accounts/1", `{}`, 422},
			{"PUT", "/api/payments/accounts/1", `{"credit_limit_cents":"many"}`, 400},
			{"PUT", "/api/payments/accounts/1", `{"credit_limit_cents":1.5}`, 400},
			{"PUT", "/api/payments/accounts/999999", `{"credit_limit_cents":1}`, 404},
			{"GET", "/api/payments/accounts/99999999999999999999", "", 400},
			{"GET", "/api/payments/authorizations/0", "", 400},
			{"GET", "/api/payments/authorizations/%00", "", 400},
			{"POST", "/api/payments/authorizations/-1/void", "", 400},
			{"POST", "/api/payments/authorizations/abc/capture", "", 400},
		}
		for _, c := range cases {
			t.Run(c.method+" "+c.path+" "+c.body[:min(len(c.body), 60)], func(t *testing.T) {
				var body any
				if c.body != "" {
					body = c.body
				}
				r := shop.With(t).Do(c.method, c.path, body)
				ok := r.Status == c.status && strings.Contains(r.Header.Get("Content-Type"), "problem+json")
				chaostest.Report(t, ok, fmt.Sprintf("%s %s with body %.80q", c.method, c.path, c.body),
					fmt.Sprintf("a %d problem", c.status), fmt.Sprintf("%d %.200s", r.Status, r.Body))
			})
		}
	})
}
