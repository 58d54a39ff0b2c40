package inventory_test

import (
	"context"
	"testing"

	aclinv "github.com/stranglerkit/strangler/acl/inventory"
	"github.com/stranglerkit/strangler/changefeed"
	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/extracted/inventory"
	"github.com/stranglerkit/strangler/httpx"
)

// newService builds a prepared service on dsn, on a free port, without
// events (no brokers); it is closed when the test ends.
func newService(t *testing.T, dsn string, opts ...func(*inventory.Config, *inventory.Options)) *inventory.Service {
	t.Helper()
	svc := newUnprepared(t, dsn, opts...)
	if err := svc.Prepare(context.Background()); err != nil {
		t.Fatal(err)
	}
	return svc
}

// newUnprepared is newService before Prepare: its database not migrated.
func newUnprepared(t *testing.T, dsn string, opts ...func(*inventory.Config, *inventory.Options)) *inventory.Service {
	t.Helper()
	off := false
	cfg := inventory.Config{Addr: "127.0.0.1:0", DSN: dsn}
	cfg.RegisterWith.Enabled = &off
	cfg.SetDefaults(t.TempDir())
	opt := inventory.Options{Logger: httpx.Discard}
	for _, o := range opts {
		o(&cfg, &opt)
	}
	svc, err := inventory.New(cfg, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Close() })
	return svc
}

// learnProduct feeds the service a catalog product.created event for
// product id with sku through the forward sync's handler, as the consumer
// would, and returns the product's legacy reference.
func learnProduct(t *testing.T, svc *inventory.Service, id int64, sku string) string {
	t.Helper()
	ref := aclinv.ProductRef(id)
	ev, err := changefeed.NewEvent(aclinv.ProductAggregate, ref, aclinv.ProductCreated, map[string]any{
		"id": id, "product_ref": ref, "sku": sku, "name": "Contract product", "active": true,
	})
	if err != nil {
		t.Fatal(err)
	}
	ev.Origin = aclinv.LegacyOrigin
	err = db.Transact(context.Background(), svc.DB(), func(ctx context.Context) error {
		return svc.Forward().HandleProduct(ctx, db.Conn(ctx, svc.DB()), ev)
	})
	if err != nil {
		t.Fatalf("learn %s = %s: %v", ref, sku, err)
	}
	return ref
}
