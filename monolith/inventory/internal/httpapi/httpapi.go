// Package httpapi serves the inventory module's HTTP API under
// /api/inventory. An extracted inventory service serves the same contract.
package httpapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/stranglerkit/strangler/httpx"
	"github.com/stranglerkit/strangler/monolith/internal/page"
	"github.com/stranglerkit/strangler/monolith/inventory/internal/domain"
)

// Service is what the handlers need from the module.
type Service interface {
	List(ctx context.Context, q domain.Query) (domain.Page, error)
	Stock(ctx context.Context, ref string) (domain.ProductStock, error)
	Warehouses(ctx context.Context) ([]domain.Warehouse, error)
	Adjust(ctx context.Context, ref string, a domain.Adjustment) (domain.Level, error)
	Reserve(ctx context.Context, ref string, m domain.Move) (domain.Level, error)
	Release(ctx context.Context, ref string, m domain.Move) (domain.Level, error)
	Ship(ctx context.Context, ref string, m domain.Move) (domain.Level, error)
}

// Register mounts the routes on g, the /api/inventory group.
func Register(g *echo.Group, svc Service) {
	h := handler{svc: svc}
	g.GET("/warehouses", h.warehouses)
	g.GET("/stock", h.list)
	g.GET("/stock/:ref", h.stock)
	g.POST("/stock/:ref/adjustments", h.adjust)
	g.POST("/stock/:ref/reservations", h.move(svc.Reserve))
	g.POST("/stock/:ref/releases", h.move(svc.Release))
	g.POST("/stock/:ref/shipments", h.move(svc.Ship))
}

type handler struct{ svc Service }

// warehouseList is the body of GET /warehouses: the list is short and fixed,
// so it has no pages, but it has the same shape as the paged lists.
type warehouseList struct {
	Items []domain.Warehouse `json:"items"`
}

func (h handler) warehouses(c echo.Context) error {
	if err := httpx.NewQuery(c).Err(); err != nil {
		return err
	}
	ws, err := h.svc.Warehouses(c.Request().Context())
	if err != nil {
		return problem(err)
	}
	return c.JSON(http.StatusOK, warehouseList{Items: ws})
}

func (h handler) list(c echo.Context) error {
	q := httpx.NewQuery(c, "warehouse", "in_stock", "limit", "cursor")
	query := domain.Query{Warehouse: q.String("warehouse"), InStock: q.Bool("in_stock"), Limit: q.Limit(page.MaxLimit), Cursor: q.String("cursor")}
	if err := q.Err(); err != nil {
		return err
	}
	p, err := h.svc.List(c.Request().Context(), query)
	if err != nil {
		return problem(err)
	}
	return c.JSON(http.StatusOK, p)
}

func (h handler) stock(c echo.Context) error {
	st, err := h.svc.Stock(c.Request().Context(), c.Param("ref"))
	if err != nil {
		return problem(err)
	}
	return c.JSON(http.StatusOK, st)
}

func (h handler) adjust(c echo.Context) error {
	ref := c.Param("ref")
	if err := domain.CheckRef(ref); err != nil {
		return err
	}
	var in domain.Adjustment
	if err := httpx.DecodeJSON(c, &in); err != nil {
		return err
	}
	l, err := h.svc.Adjust(c.Request().Context(), ref, in)
	if err != nil {
		return problem(err)
	}
	return c.JSON(http.StatusOK, l)
}

func (h handler) move(op func(context.Context, string, domain.Move) (domain.Level, error)) echo.HandlerFunc {
	return func(c echo.Context) error {
		ref := c.Param("ref")
		if err := domain.CheckRef(ref); err != nil {
			return err
		}
		var in domain.Move
		if err := httpx.DecodeJSON(c, &in); err != nil {
			return err
		}
		l, err := op(c.Request().Context(), ref, in)
		if err != nil {
			return problem(err)
		}
		return c.JSON(http.StatusOK, l)
	}
}

func problem(err error) error {
	switch {
	case errors.Is(err, domain.ErrNotFound):
		return httpx.NotFound("%s", err.Error())
	case errors.Is(err, domain.ErrOutOfStock):
		return httpx.Conflict("out-of-stock", "Out of stock", "%s", err.Error())
	case errors.Is(err, domain.ErrNotReserved):
		return httpx.Conflict("not-reserved", "Not reserved", "%s", err.Error())
	case errors.Is(err, domain.ErrBelowReserved):
		return httpx.Conflict("below-reserved", "Stock below reserved", "%s", err.Error())
	case errors.Is(err, domain.ErrUnknownWarehouse):
		return httpx.Unprocessable("unknown-warehouse", "Unknown warehouse", "%s", err.Error())
	case errors.Is(err, domain.ErrUnknownProduct):
		return httpx.Unprocessable("unknown-product", "Unknown product", "%s", err.Error())
	}
	return err
}
