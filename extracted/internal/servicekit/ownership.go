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
type Ownership struct {
	db    *gorm.DB
	owner atomic.Bool
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
	return nil
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
