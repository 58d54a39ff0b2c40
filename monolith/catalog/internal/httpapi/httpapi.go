// Package httpapi serves the catalog's HTTP API under /api/catalog.
package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/stranglerkit/strangler/httpx"
	"github.com/stranglerkit/strangler/monolith/catalog/internal/domain"
	"github.com/stranglerkit/strangler/monolith/internal/page"
	"github.com/stranglerkit/strangler/monolith/internal/web"
)

// Service is what the handlers need from the catalog.
type Service interface {
	List(ctx context.Context, q domain.Query) (domain.Page, error)
	Get(ctx context.Context, id int64) (domain.Product, error)
	Create(ctx context.Context, in domain.NewProduct) (domain.Product, error)
	Update(ctx context.Context, id int64, p domain.Patch) (domain.Product, error)
}

// Register mounts the routes on g, the /api/catalog group.
func Register(g *echo.Group, svc Service) {
	h := handler{svc: svc}
	g.GET("/products", h.list)
	g.POST("/products", h.create)
	g.GET("/products/:id", h.get)
	g.PATCH("/products/:id", h.update)
}

type handler struct {
	svc Service
}

func (h handler) list(c echo.Context) error {
	q := httpx.NewQuery(c, "q", "sku", "currency", "active", "limit", "cursor")
	query := domain.Query{
		Q: q.String("q"), SKU: q.String("sku"), Currency: q.String("currency"),
		Active: q.Bool("active"), Limit: q.Limit(page.MaxLimit), Cursor: q.String("cursor"),
	}
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
	p, err := h.svc.Get(c.Request().Context(), id)
	if err != nil {
		return problem(err)
	}
	return c.JSON(http.StatusOK, p)
}

func (h handler) create(c echo.Context) error {
	var in domain.NewProduct
	if err := httpx.DecodeJSON(c, &in); err != nil {
		return err
	}
	p, err := h.svc.Create(c.Request().Context(), in)
	if err != nil {
		return problem(err)
	}
	return web.Created(c, "/api/catalog/products/"+strconv.FormatInt(p.ID, 10), p)
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
	p, err := h.svc.Update(c.Request().Context(), id, in)
	if err != nil {
		return problem(err)
	}
	return c.JSON(http.StatusOK, p)
}

// problem maps the catalog's errors to problem documents; problems pass
// through and anything else is a 500.
func problem(err error) error {
	switch {
	case errors.Is(err, domain.ErrNotFound):
		return httpx.NotFound("%s", err.Error())
	case errors.Is(err, domain.ErrDuplicateSKU):
		return httpx.Conflict("duplicate-sku", "Duplicate SKU", "%s", err.Error())
	}
	return err
}
