package orders_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/monolith/orders"
	"github.com/stranglerkit/strangler/monolith/shoptest"
)

// post sends a JSON POST from any goroutine and returns the status and body.
func post(client *http.Client, url string, body any) (int, []byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, nil, err
	}
	resp, err := client.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

// checkStockInvariants checks every stock level: nothing negative,
// qty_available in step, and reserved equal to the units of the open
// (placed or paid) orders' lines on that level.
func checkStockInvariants(t *testing.T, shop *shoptest.Shop) {
	t.Helper()
	type row struct {
		ProductRef, WarehouseCode      string
		OnHand, Reserved, QtyAvailable int
		OpenUnits                      int
	}
	var rows []row
	err := shop.DB().Raw(`SELECT s.product_ref, s.warehouse_code, s.on_hand, s.reserved, s.qty_available,
    COALESCE((SELECT SUM(l.quantity) FROM order_lines l JOIN orders o ON o.id = l.order_id
              WHERE l.product_ref = s.product_ref AND l.warehouse_code = s.warehouse_code AND o.status IN (?, ?)), 0) AS open_units
FROM inv_stock s ORDER BY s.product_ref, s.warehouse_code`, int(orders.StatusPlaced), int(orders.StatusPaid)).Scan(&rows).Error
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) == 0 {
		t.Fatal("no stock levels to check")
	}
	for _, r := range rows {
		if r.OnHand < 0 || r.Reserved < 0 || r.QtyAvailable < 0 {
			t.Errorf("%s/%s went negative: %+v", r.ProductRef, r.WarehouseCode, r)
		}
		if r.QtyAvailable != r.OnHand-r.Reserved {
			t.Errorf("%s/%s: qty_available %d != on_hand %d - reserved %d", r.ProductRef, r.WarehouseCode, r.QtyAvailable, r.OnHand, r.Reserved)
		}
		if r.Reserved != r.OpenUnits {
			t.Errorf("%s/%s: reserved %d, but open orders hold %d", r.ProductRef, r.WarehouseCode, r.Reserved, r.OpenUnits)
		}
	}
}

// TestConcurrentOrdersForTheLastUnits races 50 orders for the last 10 units
// of a product. Each order also takes a unit of a plentiful product, so the
// 40 that fail must also give that unit back.
func TestConcurrentOrdersForTheLastUnits(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		shop := shoptest.New(t, dsn)
		last := shop.CreateProduct("LAST-TEN", 4990)
		plenty := shop.CreateProduct("PLENTY", 990)
		shop.AddStock(last.Ref, "AMS1", 10)
		shop.AddStock(plenty.Ref, "AMS1", 500)
		shop.AddStock(plenty.Ref, "BER1", 500)
		var customerIDs []int64
		for i := range 5 {
			customerIDs = append(customerIDs, shop.CreateCustomer(fmt.Sprintf("racer%d@example.com", i)).ID)
		}
		client := shop.Server.Client()
		race := func(n int, extra func(i int) (int, []byte, error)) (created []orders.Order, statuses map[int]int) {
			t.Helper()
			var (
				mu    sync.Mutex
				wg    sync.WaitGroup
				start = make(chan struct{})
				errs  []error
			)
			statuses = map[int]int{}
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					var (
						code int
						body []byte
						err  error
					)
					if extra != nil && i%5 == 0 {
						code, body, err = extra(i / 5)
						if err == nil && code != http.StatusOK {
							err = fmt.Errorf("extra request %d: %d %s", i/5, code, body)
						}
						mu.Lock()
						defer mu.Unlock()
						if err != nil {
							errs = append(errs, err)
						}
						return
					}
					code, body, err = post(client, shop.URL+"/api/orders", order(customerIDs[i%len(customerIDs)],
						line{"sku": "PLENTY", "quantity": 1}, line{"sku": "LAST-TEN", "quantity": 1}))
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						errs = append(errs, err)
						return
					}
					statuses[code]++
					if code == http.StatusCreated {
						var o orders.Order
						if err := json.Unmarshal(body, &o); err != nil {
							errs = append(errs, err)
						}
						created = append(created, o)
					} else if code != http.StatusConflict {
						errs = append(errs, fmt.Errorf("order: %d %s", code, body))
					}
				}()
			}
			close(start)
			wg.Wait()
			for _, err := range errs {
				t.Error(err)
			}
			return created, statuses
		}

		created, statuses := race(50, nil)
		if statuses[http.StatusCreated] != 10 || statuses[http.StatusConflict] != 40 {
			t.Fatalf("statuses %v, want 10 × 201 and 40 × 409", statuses)
		}
		st := stockOf(t, shop, last.Ref)
		if st.OnHand != 10 || st.Reserved != 10 || st.Available != 0 {
			t.Fatalf("last units after the race: %+v", st)
		}
		if st := stockOf(t, shop, plenty.Ref); st.Reserved != 10 {
			t.Fatalf("the plentiful product has %d reserved, want 10 (one per successful order)", st.Reserved)
		}
		checkStockInvariants(t, shop)

		// Cancel four of the orders while 16 more race for the units
		// they free (every fifth of the 20 goroutines cancels): whichever order the database runs them in, the
		// invariants hold and no more than four new orders succeed.
		cancel := func(i int) (int, []byte, error) {
			return post(client, fmt.Sprintf("%s/api/orders/%d/cancel", shop.URL, created[i].ID), nil)
		}
		more, statuses := race(20, cancel)
		if len(more) > 4 || statuses[http.StatusCreated]+statuses[http.StatusConflict] != 16 {
			t.Fatalf("second race: statuses %v", statuses)
		}
		st = stockOf(t, shop, last.Ref)
		if st.Reserved != 10-4+len(more) || st.Available != 4-len(more) {
			t.Fatalf("after 4 cancels and %d new orders: %+v", len(more), st)
		}
		checkStockInvariants(t, shop)
	})
}

// TestConcurrentOrdersWithOverlappingLines races orders whose lines share
// products, in either order, while others cancel: every order's stock is
// reserved in one statement on Postgres, which must lock the levels in the
// order every other writer does, or two of them deadlock and one fails.
// Stock is plentiful, so every order and every cancel must succeed.
func TestConcurrentOrdersWithOverlappingLines(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		shop := shoptest.New(t, dsn)
		skus := []string{"OVER-A", "OVER-B", "OVER-C", "OVER-D"}
		for i, sku := range skus {
			p := shop.CreateProduct(sku, int64(100+i))
			shop.AddStock(p.Ref, "AMS1", 1000)
			shop.AddStock(p.Ref, "BER1", 1000)
		}
		customer := shop.CreateCustomer("overlap@example.com").ID
		client := shop.Server.Client()
		const workers, each = 12, 8
		var (
			mu   sync.Mutex
			wg   sync.WaitGroup
			errs []error
		)
		start := make(chan struct{})
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for i := range each {
					a, b := skus[(w+i)%len(skus)], skus[(w+i+1+w%2)%len(skus)]
					if w%2 == 1 {
						a, b = b, a
					}
					code, body, err := post(client, shop.URL+"/api/orders", order(customer,
						line{"sku": a, "quantity": 1 + i%3}, line{"sku": b, "quantity": 1}))
					if err == nil && code != http.StatusCreated {
						err = fmt.Errorf("order of %s and %s: %d %s", a, b, code, body)
					}
					if err == nil && i%3 == 0 {
						var o orders.Order
						if err = json.Unmarshal(body, &o); err == nil {
							code, body, err = post(client, fmt.Sprintf("%s/api/orders/%d/cancel", shop.URL, o.ID), nil)
							if err == nil && code != http.StatusOK {
								err = fmt.Errorf("cancel %d: %d %s", o.ID, code, body)
							}
						}
					}
					if err != nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
					}
				}
			}()
		}
		close(start)
		wg.Wait()
		for _, err := range errs {
			t.Error(err)
		}
		checkStockInvariants(t, shop)
	})
}
