// Package httpapi serves the customers module's HTTP API under
// /api/customers.
package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/stranglerkit/strangler/httpx"
	"github.com/stranglerkit/strangler/monolith/customers/internal/domain"
	"github.com/stranglerkit/strangler/monolith/internal/page"
	"github.com/stranglerkit/strangler/monolith/internal/web"
)

// Service is what the handlers need from the module.
type Service interface {
	List(ctx context.Context, q domain.Query) (domain.Page, error)
	Get(ctx context.Context, id int64) (domain.Customer, error)
	Create(ctx context.Context, in domain.NewCustomer) (domain.Customer, error)
	Update(ctx context.Context, id int64, p domain.Patch) (domain.Customer, error)
	Delete(ctx context.Context, id int64) error
}

// Register mounts the routes on g, the /api/customers group.
func Register(g *echo.Group, svc Service) {
	h := handler{svc: svc}
	g.GET("", h.list)
	g.POST("", h.create)
	g.GET("/:id", h.get)
	g.PATCH("/:id", h.update)
	g.DELETE("/:id", h.delete)
}

type handler struct{ svc Service }

func (h handler) list(c echo.Context) error {
	q := httpx.NewQuery(c, "email", "q", "limit", "cursor")
	query := domain.Query{Email: q.String("email"), Q: q.String("q"), Limit: q.Limit(page.MaxLimit), Cursor: q.String("cursor")}
	if err := q.Err(); err != nil {
		return err
	}
	p, err := h.svc.List(c.Request().Context(), query)
	if err != nil {
		return problem(err)
	}
	return c.JSON(http.StatusOK, p)
}

func (h handler) get(c echo.Context) error {
	id, err := web.PathID(c, "id")
	if err != nil {
		return err
	}
	cu, err := h.svc.Get(c.Request().Context(), id)
	if err != nil {
		return problem(err)
	}
	return c.JSON(http.StatusOK, cu)
}

func (h handler) create(c echo.Context) error {
	var in domain.NewCustomer
	if err := httpx.DecodeJSON(c, &in); err != nil {
		return err
	}
	cu, err := h.svc.Create(c.Request().Context(), in)
	if err != nil {
		return problem(err)
	}
	return web.Created(c, "/api/customers/"+strconv.FormatInt(cu.ID, 10), cu)
}

func (h handler) update(c echo.Context) error {
	id, err := web.PathID(c, "id")
	if err != nil {
		return err
	}
	var in domain.Patch
	if err := httpx.DecodeJSON(c, &in); err != nil {
		return err
	}
	cu, err := h.svc.Update(c.Request().Context(), id, in)
	if err != nil {
		return problem(err)
	}
	return c.JSON(http.StatusOK, cu)
}

func (h handler) delete(c echo.Context) error {
	id, err := web.PathID(c, "id")
	if err != nil {
		return err
	}
	if err := h.svc.Delete(c.Request().Context(), id); err != nil {
		return problem(err)
	}
	return c.NoContent(http.StatusNoContent)
}

func problem(err error) error {
	switch {
	case errors.Is(err, domain.ErrNotFound):
		return httpx.NotFound("%s", err.Error())
	case errors.Is(err, domain.ErrDuplicateEmail):
		return httpx.Conflict("duplicate-email", "Duplicate email", "%s", err.Error())
	}
	return err
}
