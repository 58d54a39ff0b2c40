package pgstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/proxy/control"
	"github.com/stranglerkit/strangler/proxy/control/pgstore"
)

// TestUsageMigrationRoundTrip takes the inventory's migration down and up
// again: the down step drops the table (the inventory cannot be read), and
// the up step brings it back, empty and usable.
func TestUsageMigrationRoundTrip(t *testing.T) {
	dsn := dbtest.PostgresDSN(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := openStore(t, dsn, pgstore.Options{})
	d := control.Usage{UsageKey: control.UsageKey{Module: "m", Route: "r", Template: "/a"}, LastSeen: time.Now().UTC()}
	d.Legacy[2] = 1
	if err := s.AddUsage(ctx, []control.Usage{d}); err != nil {
		t.Fatal(err)
	}
	if err := db.MigrateDown(ctx, dsn, 1, pgstore.Migrations()); err != nil {
		t.Fatalf("down: %v", err)
	}
	if _, err := s.Usage(ctx); err == nil {
		t.Fatal("the inventory is readable after its migration went down")
	}
	if err := db.MigrateUp(ctx, dsn, pgstore.Migrations()); err != nil {
		t.Fatalf("up again: %v", err)
	}
	if rows, err := s.Usage(ctx); err != nil || len(rows) != 0 {
		t.Fatalf("after down and up Usage = %v, %v; want an empty inventory", rows, err)
	}
	if err := s.AddUsage(ctx, []control.Usage{d}); err != nil {
		t.Fatalf("AddUsage after down and up: %v", err)
	}
}
