package inventory_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/stranglerkit/strangler/acl/inventory/contract"
	"github.com/stranglerkit/strangler/db/dbtest"
)

// TestContract runs the inventory's contract suite, the one the monolith's
// own endpoints pass, against the service's legacy facade in owner mode.
func TestContract(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		svc := newService(t, dsn)
		if err := svc.SetOwner(context.Background(), true); err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(svc.Handler())
		t.Cleanup(srv.Close)
		var n atomic.Int64
		contract.Run(t, contract.Target{
			URL:    srv.URL,
			Client: srv.Client(),
			Product: func(t *testing.T) string {
				id := n.Add(1)
				return learnProduct(t, svc, id, fmt.Sprintf("CT-%04d", id))
			},
		})
	})
}
