package verify_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/changefeed/changefeedtest"
	"github.com/stranglerkit/strangler/changefeed/verify"
	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/internal/goldentest"
)

// legacy is a monolith's table; catalog a service's copy with other names,
// prices in cents and SKUs for keys.
func setup(t *testing.T, src, dst *gorm.DB, n int) {
	t.Helper()
	changefeedtest.Must(t, src.Exec(`CREATE TABLE legacy_products (id BIGINT PRIMARY KEY, title TEXT NOT NULL, price NUMERIC(10,2) NOT NULL, active BOOLEAN NOT NULL, note TEXT)`).Error)
	changefeedtest.Must(t, dst.Exec(`CREATE TABLE catalog_items (sku TEXT PRIMARY KEY, name TEXT NOT NULL, price_cents BIGINT NOT NULL, active INTEGER NOT NULL, note TEXT)`).Error)
	for i := 1; i <= n; i++ {
		changefeedtest.Must(t, src.Exec("INSERT INTO legacy_products (id, title, price, active, note) VALUES (?, ?, ?, ?, ?)", i, fmt.Sprintf(" Product %d ", i), fmt.Sprintf("%d.50", i), i%2 == 0, nil).Error)
		changefeedtest.Must(t, dst.Exec("INSERT INTO catalog_items (sku, name, price_cents, active, note) VALUES (?, ?, ?, ?, ?)", fmt.Sprintf("SKU-%d", i), fmt.Sprintf("Product %d", i), i*100+50, boolInt(i%2 == 0), nil).Error)
	}
}

// exec runs statements on db, failing the test on the first error.
func exec(t *testing.T, db *gorm.DB, stmts ...string) {
	t.Helper()
	for _, q := range stmts {
		changefeedtest.Must(t, db.Exec(q).Error)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

var mapping = verify.Mapping{
	KeyFormat: "SKU-%s",
	Columns: []verify.Column{
		{Target: "name", Source: "title", Transform: "trim"},
		{Target: "price_cents", Source: "price", Transform: "cents", Type: "int"},
		{Target: "active", Type: "bool"},
		{Target: "note"},
	},
}

// engines pairs a source and a target engine: the same engine, and SQLite
// against Postgres.
func engines(t *testing.T, fn func(t *testing.T, src, dst *gorm.DB)) {
	pairs := []struct{ name, src, dst string }{
		{"sqlite-sqlite", "sqlite", "sqlite"},
		{"postgres-postgres", "postgres", "postgres"},
		{"postgres-sqlite", "postgres", "sqlite"},
	}
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			open := func(kind string) *gorm.DB {
				if kind == "postgres" {
					return changefeedtest.Open(t, dbtest.PostgresDSN(t))
				}
				return changefeedtest.Open(t, dbtest.SQLiteDSN(t))
			}
			fn(t, open(p.src), open(p.dst))
		})
	}
}

func compare(t *testing.T, src, dst *gorm.DB, m verify.Mapping, opt verify.Options) *verify.Report {
	t.Helper()
	rep, err := verify.Compare(context.Background(),
		verify.Side{DB: src, Table: "legacy_products", Key: "id"},
		verify.Side{DB: dst, Table: "catalog_items", Key: "sku"}, m, opt)
	if err != nil {
		t.Fatal(err)
	}
	rep.Duration = 0
	return rep
}

func TestInSync(t *testing.T) {
	engines(t, func(t *testing.T, src, dst *gorm.DB) {
		setup(t, src, dst, 250)
		rep := compare(t, src, dst, mapping, verify.Options{RangeSize: 100, PageSize: 64})
		if rep.Drift || rep.SourceRows != 250 || rep.TargetRows != 250 || rep.Ranges != 3 || rep.Checksums != 3 {
			t.Fatalf("report %+v", rep)
		}
	})
}

func TestDrift(t *testing.T) {
	engines(t, func(t *testing.T, src, dst *gorm.DB) {
		setup(t, src, dst, 250)
		exec(t, dst,
			"DELETE FROM catalog_items WHERE sku = 'SKU-17'",
			"INSERT INTO catalog_items (sku, name, price_cents, active) VALUES ('SKU-999', 'Ghost', 1, 0)",
			"UPDATE catalog_items SET name = 'product 42', price_cents = 1 WHERE sku = 'SKU-42'",
			"UPDATE catalog_items SET note = 'x' WHERE sku = 'SKU-200'")
		exec(t, src, "UPDATE legacy_products SET price = 1.25 WHERE id = 7")
		rep := compare(t, src, dst, mapping, verify.Options{RangeSize: 100, PageSize: 64})
		if !rep.Drift {
			t.Fatal("no drift found")
		}
		var text bytes.Buffer
		changefeedtest.Must(t, rep.WriteText(&text))
		goldentest.Check(t, filepath.Join("testdata", "drift.golden"), text.String())
	})
}

// TestGoMapping uses the library's Go hooks: a key translation by lookup
// and a row mapping.
func TestGoMapping(t *testing.T) {
	src := changefeedtest.Open(t, dbtest.SQLiteDSN(t))
	dst := changefeedtest.Open(t, dbtest.SQLiteDSN(t))
	setup(t, src, dst, 20)
	changefeedtest.Must(t, dst.Exec("UPDATE catalog_items SET name = 'wrong' WHERE sku = 'SKU-5'").Error)
	m := verify.Mapping{
		Key: func(k string) (string, error) {
			n, err := strconv.Atoi(k)
			if err != nil {
				return "", err
			}
			if n == 13 {
				return "", errors.New("no SKU for legacy ref 13")
			}
			return "SKU-" + k, nil
		},
		Row: func(r verify.Row) (verify.Row, error) {
			return verify.Row{"name": strings.TrimSpace(fmt.Sprint(r["title"]))}, nil
		},
		Columns: []verify.Column{{Target: "name"}},
	}
	rep := compare(t, src, dst, m, verify.Options{})
	if !rep.Drift || rep.ErrorCount != 1 || rep.Errors[0].Key != "13" || rep.ExtraCount != 1 || rep.Extra[0] != "SKU-13" ||
		rep.ChangedCount != 1 || rep.Changed[0].Key != "SKU-5" || rep.Changed[0].Columns[0].Target != "wrong" {
		t.Fatalf("report %+v", rep)
	}
}

// onMessage is a log handler that calls fn when Compare logs msg: the
// tests use it to act at a known point of a comparison.
type onMessage struct {
	msg string
	fn  func()
}

func (h onMessage) Enabled(context.Context, slog.Level) bool { return true }
func (h onMessage) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.fn()
	}
	return nil
}
func (h onMessage) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h onMessage) WithGroup(string) slog.Handler      { return h }

// TestRecheck makes differences that a sync still has in flight when the
// scan reads the tables (a changed row, a deleted one, a new one on each
// side) and delivers them when Compare starts its rechecks: those settle,
// and a row that really drifted does not.
func TestRecheck(t *testing.T) {
	tests := []struct {
		name         string
		drifted      bool
		wantSettled  int
		wantRechecks int
	}{
		{"only rows in flight", false, 4, 1},
		{"rows in flight and one drifted", true, 4, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			engines(t, func(t *testing.T, src, dst *gorm.DB) {
				setup(t, src, dst, 120)
				// In flight: the source changed 5, the target lost 7, the
				// source has a new 121, the target a new SKU-300.
				exec(t, src,
					"UPDATE legacy_products SET title = 'Renamed' WHERE id = 5",
					"INSERT INTO legacy_products (id, title, price, active) VALUES (121, 'New', 1.00, true)")
				exec(t, dst,
					"DELETE FROM catalog_items WHERE sku = 'SKU-7'",
					"INSERT INTO catalog_items (sku, name, price_cents, active) VALUES ('SKU-300', 'Other', 200, 0)")
				if tt.drifted {
					exec(t, dst, "UPDATE catalog_items SET price_cents = 1 WHERE sku = 'SKU-9'")
				}
				deliver := func() {
					exec(t, dst,
						"UPDATE catalog_items SET name = 'Renamed' WHERE sku = 'SKU-5'",
						"INSERT INTO catalog_items (sku, name, price_cents, active) VALUES ('SKU-7', 'Product 7', 750, 0)",
						"INSERT INTO catalog_items (sku, name, price_cents, active) VALUES ('SKU-121', 'New', 100, 1)")
					exec(t, src, "INSERT INTO legacy_products (id, title, price, active) VALUES (300, 'Other', 2.00, false)")
				}
				opt := verify.Options{RangeSize: 50, Recheck: 10 * time.Millisecond, RecheckRounds: 3,
					Logger: slog.New(onMessage{msg: "verify rechecks", fn: deliver})}
				rep := compare(t, src, dst, mapping, opt)
				if rep.Settled != tt.wantSettled || rep.Rechecks != tt.wantRechecks || rep.Drift != tt.drifted ||
					rep.MissingCount+rep.ExtraCount != 0 {
					t.Fatalf("report %+v", rep)
				}
				if tt.drifted && (rep.ChangedCount != 1 || rep.Changed[0].Key != "SKU-9" || len(rep.DifferingRanges) != 1 || rep.DifferingRanges[0].Differences != 1) {
					t.Fatalf("the drifted row: %+v", rep)
				}
				if !tt.drifted && (rep.ChangedCount != 0 || len(rep.DifferingRanges) != 0) {
					t.Fatalf("settled keys still listed: %+v", rep)
				}
				// Without rechecks the same tables drift: the recheck, not
				// the delivery, is what settled them.
				if plain := compare(t, src, dst, mapping, verify.Options{RangeSize: 50}); plain.Drift != tt.drifted {
					t.Fatalf("plain compare after delivery: drift %v", plain.Drift)
				}
			})
		})
	}
}

// TestRecheckTrailingSync makes a row that changes again while its change
// is delivered, as a hot stock level does under load: at every recheck the
// target holds the state the source had before, never the current one. It
// settles, because the target took a state the source had; a target that
// stays where it was at the scan does not.
func TestRecheckTrailingSync(t *testing.T) {
	for _, tt := range []struct {
		name    string
		deliver bool
	}{
		{"the target takes the source's earlier state", true},
		{"the target does not move", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			engines(t, func(t *testing.T, src, dst *gorm.DB) {
				setup(t, src, dst, 20)
				exec(t, src, "UPDATE legacy_products SET title = 'First' WHERE id = 5")
				next := func() {
					if tt.deliver {
						exec(t, dst, "UPDATE catalog_items SET name = 'First' WHERE sku = 'SKU-5'")
					}
					exec(t, src, "UPDATE legacy_products SET title = 'Second' WHERE id = 5")
				}
				opt := verify.Options{RangeSize: 50, Recheck: 10 * time.Millisecond, RecheckRounds: 3,
					Logger: slog.New(onMessage{msg: "verify rechecks", fn: next})}
				rep := compare(t, src, dst, mapping, opt)
				if rep.Drift == tt.deliver || rep.Settled != map[bool]int{true: 1, false: 0}[tt.deliver] {
					t.Fatalf("report %+v", rep)
				}
			})
		})
	}
}

func TestBadInput(t *testing.T) {
	src := changefeedtest.Open(t, dbtest.SQLiteDSN(t))
	tests := []struct {
		name string
		src  verify.Side
		m    verify.Mapping
		want string
	}{
		{"bad table", verify.Side{DB: src, Table: "a;b"}, verify.Mapping{}, "source.table"},
		{"bad key", verify.Side{DB: src, Table: "a", Key: "k k"}, verify.Mapping{}, "source.key"},
		{"bad transform", verify.Side{DB: src, Table: "a"}, verify.Mapping{Columns: []verify.Column{{Target: "x", Transform: "rot13"}}}, "transform"},
		{"bad type", verify.Side{DB: src, Table: "a"}, verify.Mapping{Columns: []verify.Column{{Target: "x", Type: "money"}}}, "type"},
		{"bad format", verify.Side{DB: src, Table: "a"}, verify.Mapping{KeyFormat: "SKU"}, "key format"},
		{"missing table", verify.Side{DB: src, Table: "nope"}, verify.Mapping{Columns: []verify.Column{{Target: "x"}}}, "nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := verify.Compare(context.Background(), tt.src, verify.Side{DB: src, Table: "nope"}, tt.m, verify.Options{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Compare = %v, want %q", err, tt.want)
			}
		})
	}
}
