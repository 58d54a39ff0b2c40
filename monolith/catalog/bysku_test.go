package catalog_test

import (
	"context"
	"testing"

	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/monolith/catalog"
	"github.com/stranglerkit/strangler/monolith/shoptest"
)

// TestBySKU looks products up by SKU through the module's API, as the
// orders module prices its lines, and checks each against Get: every
// field, for active and inactive products, SKUs in any case and spacing,
// repeated, and unknown ones left out.
func TestBySKU(t *testing.T) {
	dbtest.Dialects(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		shop := shoptest.New(t, dsn)
		api := shop.Catalog()
		mug, kettle := shop.CreateProduct("MUG-1", 1590), shop.CreateProduct("KETTLE-1", 4900)
		off, desc := false, "Stovetop, 1.5 l."
		if _, err := api.Update(ctx, kettle.ID, catalog.Patch{Active: &off, Description: &desc}); err != nil {
			t.Fatal(err)
		}
		want := map[string]catalog.Product{}
		for _, id := range []int64{mug.ID, kettle.ID} {
			p, err := api.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			want[p.SKU] = p
		}
		for _, tc := range []struct {
			name string
			skus []string
			want []string
		}{
			{"one", []string{"MUG-1"}, []string{"MUG-1"}},
			{"active and inactive", []string{"MUG-1", "KETTLE-1"}, []string{"MUG-1", "KETTLE-1"}},
			{"normalized and repeated", []string{" mug-1 ", "MUG-1", "kettle-1"}, []string{"MUG-1", "KETTLE-1"}},
			{"unknown left out", []string{"NOPE-1", "MUG-1", "NOPE-2"}, []string{"MUG-1"}},
			{"none known", []string{"NOPE-1"}, nil},
			{"none asked", nil, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, err := api.BySKU(ctx, tc.skus)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != len(tc.want) {
					t.Fatalf("BySKU(%q) = %d products %v, want %q", tc.skus, len(got), got, tc.want)
				}
				for _, sku := range tc.want {
					p, ok := got[sku]
					w := want[sku]
					if !ok || p.ID != w.ID || p.Ref != w.Ref || p.SKU != w.SKU || p.Name != w.Name || p.Description != w.Description ||
						p.PriceCents != w.PriceCents || p.Currency != w.Currency || p.Active != w.Active || p.Version != w.Version ||
						!p.CreatedAt.Equal(w.CreatedAt) || !p.UpdatedAt.Equal(w.UpdatedAt) {
						t.Errorf("BySKU(%q)[%s] = %+v (%v), want %+v", tc.skus, sku, p, ok, w)
					}
				}
			})
		}
	})
}
