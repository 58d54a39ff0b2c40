package monolith_test

import (
	"path/filepath"
	"testing"

	"github.com/stranglerkit/strangler/httpx"
	"github.com/stranglerkit/strangler/internal/lifecycletest"
	"github.com/stranglerkit/strangler/monolith"
	"github.com/stranglerkit/strangler/monolith/shoptest"
)

// TestLifecycle checks the lifecycle rule (lifecycletest.Check) on the
// shop: New opens its database but no listener and starts nothing of the
// shop or of an HTTP server; Run listens, migrates, seeds, serves and
// closes everything as it returns.
func TestLifecycle(t *testing.T) {
	lifecycletest.Check(t, func(t *testing.T, addr string) (lifecycletest.Component, string) {
		dir := t.TempDir()
		cfg := shoptest.Config("sqlite:" + filepath.Join(dir, "shop.db"))
		cfg.Addr = addr
		seed := true
		cfg.Seed = &seed
		shop, err := monolith.New(cfg, httpx.Discard)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = shop.Close() })
		return shop, dir
	}, "stranglerkit/strangler/monolith", "net/http.(*Server)", "net/http.(*conn)")
}
