package changefeedtest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/changefeed"
	"github.com/stranglerkit/strangler/changefeed/outbox"
	"github.com/stranglerkit/strangler/db"
)

// OrderState is the payload of the order application's events: the full
// state of the order after the change.
type OrderState struct {
	ID      string `json:"id"`
	Status  string `json:"status"`
	Total   int64  `json:"total"`
	Version int64  `json:"version"`
}

// Orders is a small application whose every change to its orders table
// writes an event through the outbox in the same transaction, as a real
// module would.
type Orders struct {
	DB     *gorm.DB
	Source string
}

// NewOrders creates the cf_orders table in gdb, which must have the outbox
// migrated.
func NewOrders(t testing.TB, gdb *gorm.DB) *Orders {
	t.Helper()
	Must(t, gdb.Exec(`CREATE TABLE IF NOT EXISTS cf_orders (
		id      TEXT   NOT NULL PRIMARY KEY,
		status  TEXT   NOT NULL,
		total   BIGINT NOT NULL,
		version BIGINT NOT NULL
	)`).Error)
	return &Orders{DB: gdb, Source: "test.orders"}
}

// Place creates an order and its order.placed event.
func (o *Orders) Place(ctx context.Context, id string, total int64) error {
	return db.Transact(ctx, o.DB, func(ctx context.Context) error {
		tx := db.Conn(ctx, o.DB)
		if err := tx.Exec("INSERT INTO cf_orders (id, status, total, version) VALUES (?, 'placed', ?, 1)", id, total).Error; err != nil {
			return err
		}
		return o.emit(ctx, "order.placed", OrderState{ID: id, Status: "placed", Total: total, Version: 1})
	})
}

// SetStatus changes an order's status and writes its order.changed event.
func (o *Orders) SetStatus(ctx context.Context, id, status string) error {
	return db.Transact(ctx, o.DB, func(ctx context.Context) error {
		tx := db.Conn(ctx, o.DB)
		// Lock the row first (the update does), then write the event, as
		// a module should.
		res := tx.Exec("UPDATE cf_orders SET status = ?, version = version + 1 WHERE id = ?", status, id)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected != 1 {
			return fmt.Errorf("order %s not found", id)
		}
		var st OrderState
		if err := tx.Raw("SELECT id, status, total, version FROM cf_orders WHERE id = ?", id).Scan(&st).Error; err != nil {
			return err
		}
		return o.emit(ctx, "order.changed", st)
	})
}

func (o *Orders) emit(ctx context.Context, typ string, st OrderState) error {
	ev, err := changefeed.NewEvent("order", st.ID, typ, st)
	if err != nil {
		return err
	}
	return outbox.Writer{Source: o.Source}.AddContext(ctx, o.DB, ev)
}

// State returns every order by id.
func (o *Orders) State(t testing.TB) map[string]OrderState {
	t.Helper()
	return readStates(t, o.DB, "cf_orders")
}

func readStates(t testing.TB, gdb *gorm.DB, table string) map[string]OrderState {
	t.Helper()
	var list []OrderState
	Must(t, gdb.Raw("SELECT id, status, total, version FROM "+table).Scan(&list).Error)
	out := make(map[string]OrderState, len(list))
	for _, s := range list {
		out[s.ID] = s
	}
	return out
}

// Replica is the consuming side: a copy of the orders, a count of the
// events applied per order (an effect that is not idempotent, so a
// duplicate shows), and a record of events applied out of order.
type Replica struct {
	DB *gorm.DB
}

// NewReplica creates the replica's tables in gdb.
func NewReplica(t testing.TB, gdb *gorm.DB) *Replica {
	t.Helper()
	for _, ddl := range []string{
		`CREATE TABLE IF NOT EXISTS cf_order_copies (id TEXT NOT NULL PRIMARY KEY, status TEXT NOT NULL, total BIGINT NOT NULL, version BIGINT NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS cf_order_effects (id TEXT NOT NULL PRIMARY KEY, applied BIGINT NOT NULL)`,
		`CREATE TABLE IF NOT EXISTS cf_order_violations (id TEXT NOT NULL, got BIGINT NOT NULL, had BIGINT NOT NULL)`,
	} {
		Must(t, gdb.Exec(ddl).Error)
	}
	return &Replica{DB: gdb}
}

// Apply is the replica's handler for order events.
func (r *Replica) Apply(ctx context.Context, tx *gorm.DB, ev changefeed.Event) error {
	var st OrderState
	if err := ev.Decode(&st); err != nil {
		return err
	}
	if st.ID == "" {
		return errors.New("order event without id")
	}
	var had []int64
	if err := tx.Raw("SELECT version FROM cf_order_copies WHERE id = ?", st.ID).Pluck("version", &had).Error; err != nil {
		return err
	}
	prev := int64(0)
	if len(had) > 0 {
		prev = had[0]
	}
	if st.Version != prev+1 {
		if err := tx.Exec("INSERT INTO cf_order_violations (id, got, had) VALUES (?, ?, ?)", st.ID, st.Version, prev).Error; err != nil {
			return err
		}
	}
	if err := tx.Exec(`INSERT INTO cf_order_copies (id, status, total, version) VALUES (?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET status = excluded.status, total = excluded.total, version = excluded.version`,
		st.ID, st.Status, st.Total, st.Version).Error; err != nil {
		return err
	}
	return tx.Exec(`INSERT INTO cf_order_effects (id, applied) VALUES (?, 1)
		ON CONFLICT (id) DO UPDATE SET applied = cf_order_effects.applied + 1`, st.ID).Error
}

// State returns the replica's copy of every order.
func (r *Replica) State(t testing.TB) map[string]OrderState {
	t.Helper()
	return readStates(t, r.DB, "cf_order_copies")
}

// Effects returns how many events were applied per order.
func (r *Replica) Effects(t testing.TB) map[string]int64 {
	t.Helper()
	var list []struct {
		ID      string
		Applied int64
	}
	Must(t, r.DB.Raw("SELECT id, applied FROM cf_order_effects").Scan(&list).Error)
	out := map[string]int64{}
	for _, e := range list {
		out[e.ID] = e.Applied
	}
	return out
}

// Violations describes every event applied out of order.
func (r *Replica) Violations(t testing.TB) []string {
	t.Helper()
	var list []struct {
		ID       string
		Got, Had int64
	}
	Must(t, r.DB.Raw("SELECT id, got, had FROM cf_order_violations").Scan(&list).Error)
	var out []string
	for _, v := range list {
		out = append(out, fmt.Sprintf("%s: version %d applied on %d", v.ID, v.Got, v.Had))
	}
	return out
}

// CheckConverged reports whether the replica holds exactly the source's
// orders, each applied once per version, in order.
func CheckConverged(t testing.TB, src *Orders, dst *Replica) (bool, string) {
	t.Helper()
	want, got, eff := src.State(t), dst.State(t), dst.Effects(t)
	if v := dst.Violations(t); len(v) > 0 {
		return false, fmt.Sprintf("out-of-order applications: %v", v)
	}
	if len(got) != len(want) {
		return false, fmt.Sprintf("replica holds %d orders, source %d", len(got), len(want))
	}
	for id, w := range want {
		if got[id] != w {
			return false, fmt.Sprintf("order %s: replica %+v, source %+v", id, got[id], w)
		}
		if eff[id] != w.Version {
			return false, fmt.Sprintf("order %s: %d events applied for %d versions", id, eff[id], w.Version)
		}
	}
	return true, ""
}
