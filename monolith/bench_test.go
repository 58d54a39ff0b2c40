package monolith_test

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/monolith/shoptest"
)

// benchDialects runs fn on a seeded shop on SQLite and on Postgres.
func benchDialects(b *testing.B, fn func(b *testing.B, shop *shoptest.Shop)) {
	b.Run("sqlite", func(b *testing.B) { fn(b, shoptest.New(b, dbtest.SQLiteDSN(b), shoptest.WithSeed())) })
	b.Run("postgres", func(b *testing.B) { fn(b, shoptest.New(b, dbtest.PostgresDSN(b), shoptest.WithSeed())) })
}

// drain sends a request from a benchmark goroutine and checks its status.
func drain(b *testing.B, client *http.Client, req func() (*http.Response, error), want int) {
	resp, err := req()
	if err != nil {
		b.Error(err)
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		b.Errorf("status %d, want %d", resp.StatusCode, want)
	}
}

// BenchmarkGetProduct reads one product over HTTP, from parallel clients.
func BenchmarkGetProduct(b *testing.B) {
	benchDialects(b, func(b *testing.B, shop *shoptest.Shop) {
		client := shop.Server.Client()
		url := shop.URL + "/api/catalog/products/42"
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				drain(b, client, func() (*http.Response, error) { return client.Get(url) }, http.StatusOK)
			}
		})
	})
}

// BenchmarkPlaceOrder places two-line orders over HTTP, from parallel
// clients: each checks a customer, prices two products and reserves their
// stock in one transaction.
func BenchmarkPlaceOrder(b *testing.B) {
	benchDialects(b, func(b *testing.B, shop *shoptest.Shop) {
		a, c := shop.CreateProduct("BENCH-A", 100), shop.CreateProduct("BENCH-B", 250)
		for _, wh := range []string{"AMS1", "BER1"} {
			shop.AddStock(a.Ref, wh, 1_000_000)
			shop.AddStock(c.Ref, wh, 1_000_000)
		}
		client := shop.Server.Client()
		body := []byte(`{"customer_id":7,"lines":[{"sku":"BENCH-A","quantity":1},{"sku":"BENCH-B","quantity":2}]}`)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				drain(b, client, func() (*http.Response, error) {
					return client.Post(shop.URL+"/api/orders", "application/json", bytes.NewReader(body))
				}, http.StatusCreated)
			}
		})
	})
}
