package pgstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/stranglerkit/strangler/db/dbtest"
	"github.com/stranglerkit/strangler/proxy/control"
	"github.com/stranglerkit/strangler/proxy/control/pgstore"
	"github.com/stranglerkit/strangler/proxy/control/storetest"
)

// openStore opens a store on dsn for the test and closes it when the test
// ends.
func openStore(t *testing.T, dsn string, opt pgstore.Options) *pgstore.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := pgstore.Open(ctx, dsn, opt)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) control.Store {
		return openStore(t, dbtest.PostgresDSN(t), pgstore.Options{})
	})
}
