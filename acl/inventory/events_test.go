package inventory_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/acl/internal/acltest"
	aclinv "github.com/stranglerkit/strangler/acl/inventory"
)

// readEvent and at are the ACLs' shared test helpers.
var (
	readEvent = acltest.Event
	at        = acltest.At
)

// TestDecodeStock reads the golden legacy stock events: every type, a
// backfill snapshot as it comes from SQLite, one without the rename and
// with numbers and times in other forms, a newer version with unknown
// fields, and one that cannot be read.
func TestDecodeStock(t *testing.T) {
	tests := []struct {
		file string
		want aclinv.StockChange
	}{
		{"stock.adjusted.json", aclinv.StockChange{ProductRef: "P-000042", Warehouse: "AMS1", OnHand: 12, Reserved: 2, Version: 4,
			UpdatedAt: at("2026-03-04T05:06:07.123456Z"), Movement: &aclinv.Movement{Kind: "adjust", Quantity: -3, Reference: "stock count"}}},
		{"stock.reserved.json", aclinv.StockChange{ProductRef: "P-000042", Warehouse: "AMS1", OnHand: 12, Reserved: 5, Version: 5,
			UpdatedAt: at("2026-03-04T05:06:08Z"), Movement: &aclinv.Movement{Kind: "reserve", Quantity: 3, Reference: "order/42"}}},
		{"stock.released.json", aclinv.StockChange{ProductRef: "P-000042", Warehouse: "AMS1", OnHand: 12, Reserved: 2, Version: 6,
			UpdatedAt: at("2026-03-04T05:06:09Z"), Movement: &aclinv.Movement{Kind: "release", Quantity: 3, Reference: "order/42"}}},
		{"stock.shipped.json", aclinv.StockChange{ProductRef: "P-000042", Warehouse: "AMS1", OnHand: 10, Reserved: 0, Version: 7,
			UpdatedAt: at("2026-03-04T05:06:10Z"), Movement: &aclinv.Movement{Kind: "ship", Quantity: 2, Reference: "order/41"}}},
		{"stock.snapshot.sqlite.json", aclinv.StockChange{ProductRef: "P-000042", Warehouse: "BER1", OnHand: 9, Reserved: 1, Version: 3,
			UpdatedAt: at("2026-03-04T05:06:07.5Z")}},
		{"stock.snapshot.no-rename.json", aclinv.StockChange{ProductRef: "P-000042", Warehouse: "MAD1", OnHand: 6, Reserved: 2, Version: 2,
			UpdatedAt: time.UnixMilli(1772600827000).UTC()}},
		{"stock.reserved.future.json", aclinv.StockChange{ProductRef: "P-000042", Warehouse: "AMS1", OnHand: 12, Reserved: 5, Version: 5,
			UpdatedAt: at("2026-03-04T05:06:08Z"), Movement: &aclinv.Movement{Kind: "reserve", Quantity: 3, Reference: "order/42"}}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := aclinv.DecodeStock(readEvent(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(tt.want)
			if !bytes.Equal(g, w) || !got.UpdatedAt.Equal(tt.want.UpdatedAt) {
				t.Fatalf("decoded\n%s\nwant\n%s", g, w)
			}
		})
	}
	_, err := aclinv.DecodeStock(readEvent(t, "stock.malformed.json"))
	if !errors.Is(err, aclinv.ErrMalformed) {
		t.Fatalf("malformed event: %v, want ErrMalformed", err)
	}
	for _, want := range []string{"not of the form P-000042", "not a warehouse code", "on_hand is missing", "teleport"} {
		if !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
}

// TestDecodeProduct reads the golden product events: a live event, a
// backfill snapshot of catalog_products (no product_ref, lower-case SKU,
// active as 0) and one without what the ACL needs.
func TestDecodeProduct(t *testing.T) {
	tests := []struct {
		file string
		want aclinv.ProductChange
	}{
		{"product.created.json", aclinv.ProductChange{ProductRef: "P-000042", SKU: "COF-ETH-250", Active: true}},
		{"product.snapshot.json", aclinv.ProductChange{ProductRef: "P-000043", SKU: "COF-COL-1000", Active: false}},
	}
	for _, tt := range tests {
		got, err := aclinv.DecodeProduct(readEvent(t, tt.file))
		if err != nil || got != tt.want {
			t.Errorf("%s: %+v, %v; want %+v", tt.file, got, err, tt.want)
		}
	}
	if _, err := aclinv.DecodeProduct(readEvent(t, "product.malformed.json")); !errors.Is(err, aclinv.ErrMalformed) {
		t.Errorf("malformed product: %v, want ErrMalformed", err)
	}
}

// TestLegacyBodies decodes the monolith's golden HTTP bodies into the
// ACL's legacy types and encodes them again: the facade must produce
// exactly these shapes.
func TestLegacyBodies(t *testing.T) {
	tests := []struct {
		file string
		v    any
	}{
		{"level.json", &aclinv.Level{}},
		{"stock.json", &aclinv.ProductStock{}},
		{"page.json", &aclinv.Page{}},
		{"warehouses.json", &struct {
			Items []aclinv.Warehouse `json:"items"`
		}{}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", "http", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			if err := dec.Decode(tt.v); err != nil {
				t.Fatalf("the legacy body has a field the ACL does not know: %v", err)
			}
			out, err := json.Marshal(tt.v)
			if err != nil {
				t.Fatal(err)
			}
			var want, got any
			_ = json.Unmarshal(b, &want)
			_ = json.Unmarshal(out, &got)
			w, _ := json.Marshal(want)
			g, _ := json.Marshal(got)
			if !bytes.Equal(w, g) {
				t.Fatalf("re-encoded\n%s\nwant\n%s", g, w)
			}
		})
	}
}

// TestRefsAndWarehouses checks the key translations.
func TestRefsAndWarehouses(t *testing.T) {
	for _, tt := range []struct {
		ref string
		id  int64
	}{{"P-000042", 42}, {"P-1234567", 1234567}, {"P-42", 0}, {"P-0000042", 0}, {"42", 0}, {"P-000000", 0}} {
		id, err := aclinv.ParseProductRef(tt.ref)
		if id != tt.id || (err == nil) != (tt.id != 0) {
			t.Errorf("ParseProductRef(%q) = %d, %v", tt.ref, id, err)
		}
		if tt.id != 0 && aclinv.ProductRef(tt.id) != tt.ref {
			t.Errorf("ProductRef(%d) = %s", tt.id, aclinv.ProductRef(tt.id))
		}
	}
	for code, id := range aclinv.WarehouseCodes {
		if got, ok := aclinv.WarehouseID(code); !ok || got != id {
			t.Errorf("WarehouseID(%s) = %s", code, got)
		}
		if got, ok := aclinv.WarehouseCode(id); !ok || got != code {
			t.Errorf("WarehouseCode(%s) = %s", id, got)
		}
	}
	if _, ok := aclinv.WarehouseID("XYZ9"); ok {
		t.Error("an unknown code has a warehouse")
	}
}
