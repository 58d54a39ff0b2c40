package client_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stranglerkit/strangler/acl/inventory/client"
	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/httpx"
	"github.com/stranglerkit/strangler/monolith/inventory"
	"github.com/stranglerkit/strangler/monolith/orders"
	"github.com/stranglerkit/strangler/monolith/shoptest"
)

// recorder serves a shop and keeps the request ID of every inventory write
// it forwards.
type recorder struct {
	next http.Handler
	mu   sync.Mutex
	ids  map[string][]string
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method == http.MethodPost {
		r.mu.Lock()
		kind := req.URL.Path[strings.LastIndexByte(req.URL.Path, '/')+1:]
		r.ids[kind] = append(r.ids[kind], req.Header.Get(httpx.HeaderRequestID))
		r.mu.Unlock()
	}
	r.next.ServeHTTP(w, req)
}

func (r *recorder) seen(kind string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.ids[kind]...)
}

// TestOrdersThroughTheClient is the ownership flip in small: shop B's
// orders module reserves, releases and ships stock through the client in
// shop A's inventory, which stands in for the extracted service, while
// shop B's own inventory tables stay as they were.
func TestOrdersThroughTheClient(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		owner := shoptest.New(t, dsn, shoptest.WithSeed())
		rec := &recorder{next: owner.Handler(), ids: map[string][]string{}}
		ownerSrv := newServer(t, rec)
		shop := shoptest.New(t, otherDSN(t, dsn), shoptest.WithSeed())
		shop.SetInventoryAPI(newClient(t, client.Config{BaseURL: ownerSrv.URL}))
		ctx := context.Background()
		stock := func(api inventory.API, ref string) inventory.ProductStock {
			t.Helper()
			st, err := api.Stock(ctx, ref)
			if err != nil {
				t.Fatal(err)
			}
			return st
		}
		before1, before2 := stock(owner.Inventory(), ref1), stock(owner.Inventory(), ref2)
		local1, local2 := stock(shop.Inventory(), ref1), stock(shop.Inventory(), ref2)
		place := func(requestID string, qty1, qty2 int) *shoptest.Response {
			body := map[string]any{"customer_id": 1, "lines": []map[string]any{
				{"sku": "COF-ETH-1K", "quantity": qty2}, {"sku": "COF-ETH-250", "quantity": qty1},
			}}
			return shop.Do(http.MethodPost, "/api/orders", body, httpx.HeaderRequestID, requestID)
		}

		var o orders.Order
		place("place-1", 2, 3).Expect(http.StatusCreated).Decode(&o)
		if len(o.Lines) != 2 || o.Lines[0].Warehouse != "BER1" || o.Lines[1].Warehouse != "AMS1" {
			t.Fatalf("lines %+v: want the owner's choice, BER1 for %s and AMS1 for %s", o.Lines, ref2, ref1)
		}
		if got := stock(owner.Inventory(), ref1); got.Reserved != before1.Reserved+2 {
			t.Errorf("owner's %s reserved %d, want %d", ref1, got.Reserved, before1.Reserved+2)
		}
		if got := stock(owner.Inventory(), ref2); got.Reserved != before2.Reserved+3 {
			t.Errorf("owner's %s reserved %d, want %d", ref2, got.Reserved, before2.Reserved+3)
		}
		if got := rec.seen("reservations"); len(got) != 2 || got[0] != "place-1" || got[1] != "place-1" {
			t.Errorf("reservations carried request IDs %v", got)
		}

		shop.Post(fmt.Sprintf("/api/orders/%d/cancel", o.ID), nil).Expect(http.StatusOK)
		if got := stock(owner.Inventory(), ref1); got.Reserved != before1.Reserved || got.OnHand != before1.OnHand {
			t.Errorf("owner's %s after the cancellation: %+v, want %+v", ref1, got, before1)
		}
		if got := stock(owner.Inventory(), ref2); got.Reserved != before2.Reserved || got.OnHand != before2.OnHand {
			t.Errorf("owner's %s after the cancellation: %+v, want %+v", ref2, got, before2)
		}

		place("place-2", 1, 4).Expect(http.StatusCreated).Decode(&o)
		shop.Post(fmt.Sprintf("/api/orders/%d/pay", o.ID), nil).Expect(http.StatusOK)
		shop.Post(fmt.Sprintf("/api/orders/%d/ship", o.ID), nil).Expect(http.StatusOK)
		if got := stock(owner.Inventory(), ref1); got.OnHand != before1.OnHand-1 || got.Reserved != before1.Reserved {
			t.Errorf("owner's %s after shipping 1: %+v, was %+v", ref1, got, before1)
		}
		if got := stock(owner.Inventory(), ref2); got.OnHand != before2.OnHand-4 || got.Reserved != before2.Reserved {
			t.Errorf("owner's %s after shipping 4: %+v, was %+v", ref2, got, before2)
		}
		if got := rec.seen("shipments"); len(got) != 2 {
			t.Errorf("owner got %d shipments, want 2", len(got))
		}

		// Out of stock in the owner is the same 409 the local module gives,
		// and the reservation the order made first is released.
		p := place("place-3", 1, 1000).Expect(http.StatusConflict).Problem()
		if !strings.HasSuffix(p.Type, "#out-of-stock") || !strings.Contains(p.Detail, "not enough stock to reserve 1000 of COF-ETH-1K") {
			t.Errorf("problem %+v", p)
		}
		if got := stock(owner.Inventory(), ref1); got.OnHand != before1.OnHand-1 || got.Reserved != before1.Reserved {
			t.Errorf("owner's %s after the failed order: %+v", ref1, got)
		}

		// The shop's own inventory never moved.
		if got := stock(shop.Inventory(), ref1); got.OnHand != local1.OnHand || got.Reserved != local1.Reserved {
			t.Errorf("shop's own %s changed: %+v, was %+v", ref1, got, local1)
		}
		if got := stock(shop.Inventory(), ref2); got.OnHand != local2.OnHand || got.Reserved != local2.Reserved {
			t.Errorf("shop's own %s changed: %+v, was %+v", ref2, got, local2)
		}
	})
}
