package servicekit

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/labstack/echo/v4"
	"gorm.io/gorm"

	"github.com/stranglerkit/strangler/db"
	"github.com/stranglerkit/strangler/httpx"
)

// ownerSetting is the row of the service's settings table that persists
// ownership, so that a restarted service keeps the side of the flip it was
// on.
const ownerSetting = "owner"

// Ownership is an extracted service's ownership switch: whether it owns
// its module's data and takes writes, or holds a read replica and refuses
// them (NotOwner) until the ownership flip. It is persisted in the
// service's table settings (name TEXT PRIMARY KEY, value TEXT), which each
// service's own migrations create, and starts off until Load reads it.
// Until then the switch is not known, so Gate answers the service's
// requests with a retryable 503 rather than a not-owner refusal.
type Ownership struct {
	db     *gorm.DB
	owner  atomic.Bool
	loaded atomic.Bool
}

// NewOwnership returns the switch of the service whose database is gdb.
func NewOwnership(gdb *gorm.DB) *Ownership { return &Ownership{db: gdb} }

// Load reads the persisted ownership; a service that never had it set is
// not the owner.
func (o *Ownership) Load(ctx context.Context) error {
	var vs []string
	if err := db.Conn(ctx, o.db).Table("settings").Where("name = ?", ownerSetting).Pluck("value", &vs).Error; err != nil {
		return fmt.Errorf("read setting %s: %w", ownerSetting, err)
	}
	o.owner.Store(len(vs) == 1 && vs[0] == "true")
	o.loaded.Store(true)
	return nil
}

// Loaded reports whether Load has read the persisted ownership, which it
// does once the service's migrations have run.
func (o *Ownership) Loaded() bool { return o.loaded.Load() }

// startingRetryAfter is the Retry-After of Gate's 503, in seconds: start-up
// is a migration check and one read of the settings table.
const startingRetryAfter = 1

// Gate is the middleware of a service's data routes, reads and writes
// alike. Until Load has read the persisted ownership it answers every
// request 503 not-ready with Retry-After, since the switch still reads
// false (a write would get a not-owner refusal that saga callers take as
// final) and the tables may not exist yet (a read would fail with a 500).
// The health endpoints are not behind it: /readyz stays 503 until Prepare
// ends.
func (o *Ownership) Gate() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if !o.loaded.Load() {
				c.Response().Header().Set("Retry-After", strconv.Itoa(startingRetryAfter))
				return httpx.NewProblem(http.StatusServiceUnavailable, "not-ready", "Not ready",
					"the service is starting and has not loaded its ownership yet")
			}
			return next(c)
		}
	}
}

// Owner reports whether the service owns its data and takes writes.
func (o *Ownership) Owner() bool { return o.owner.Load() }

// SetOwner makes the service the owner (it takes writes) or a read
// replica (it refuses them), and persists the choice before it applies it.
func (o *Ownership) SetOwner(ctx context.Context, owner bool) error {
	err := db.Conn(ctx, o.db).Exec(`INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value`,
		ownerSetting, strconv.FormatBool(owner)).Error
	if err != nil {
		return fmt.Errorf("write setting %s: %w", ownerSetting, err)
	}
	o.owner.Store(owner)
	return nil
}

// NotOwner is the 409 problem not-owner with detail: the service holds a
// read replica and refuses a write until the ownership flip.
func NotOwner(detail string) *httpx.Problem {
	return httpx.Conflict("not-owner", "Not the owner", "%s", detail)
}

// Switch is what the ownership API and the phase watcher switch:
// Ownership, or a service that wraps it.
type Switch interface {
	Owner() bool
	SetOwner(ctx context.Context, owner bool) error
}

// OwnershipBody is the body of GET and PUT /v1/ownership.
type OwnershipBody struct {
	Owner bool `json:"owner"`
}

// RegisterOwnership mounts GET and PUT /ownership on g, the service's /v1
// group. guard protects PUT: who may move a module's writes is an
// operator's decision, as a route flip is.
func RegisterOwnership(g *echo.Group, sw Switch, guard echo.MiddlewareFunc) {
	g.GET("/ownership", func(c echo.Context) error {
		return c.JSON(http.StatusOK, OwnershipBody{Owner: sw.Owner()})
	})
	g.PUT("/ownership", func(c echo.Context) error {
		var in struct {
			Owner *bool `json:"owner"`
		}
		if err := httpx.DecodeJSON(c, &in); err != nil {
			return err
		}
		if in.Owner == nil {
			return httpx.Invalid(httpx.FieldError{Field: "owner", Message: "is required"})
		}
		if err := sw.SetOwner(c.Request().Context(), *in.Owner); err != nil {
			return err
		}
		return c.JSON(http.StatusOK, OwnershipBody{Owner: sw.Owner()})
	}, guard)
}
