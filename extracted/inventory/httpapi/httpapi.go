// Package httpapi serves the inventory service's own API under /v1: items
// by SKU and warehouse id, writes with an optional expected version, and
// the ownership switch that the migration's flip uses. The monolith's
// contract is served by the anti-corruption layer's facade instead.
package httpapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/stranglerkit/strangler/extracted/inventory/domain"
	"github.com/stranglerkit/strangler/extracted/inventory/service"
	"github.com/stranglerkit/strangler/httpx"
)

// Register mounts the routes on g, the /v1 group. guard protects the
// ownership switch: who may move the inventory's writes is an operator's
// decision, as a route flip is.
func Register(g *echo.Group, svc *service.Service, guard echo.MiddlewareFunc) {
	h := handler{svc: svc}
	g.GET("/warehouses", h.warehouses)
	g.GET("/items/:sku", h.item)
	g.POST("/items/:sku/adjustments", h.adjust)
	g.POST("/items/:sku/reservations", h.move(svc.Reserve))
	g.POST("/items/:sku/releases", h.move(svc.Release))
	g.POST("/items/:sku/shipments", h.move(svc.Ship))
	g.GET("/ownership", h.ownership)
	g.PUT("/ownership", h.setOwnership, guard)
}

type handler struct{ svc *service.Service }

type warehouseList struct {
	Items []domain.Warehouse `json:"items"`
}

func (h handler) warehouses(c echo.Context) error {
	ws, err := h.svc.Warehouses(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, warehouseList{Items: ws})
}

// Stock is a SKU's items with totals.
type Stock struct {
	SKU       string        `json:"sku"`
	OnHand    int           `json:"on_hand"`
	Reserved  int           `json:"reserved"`
	Available int           `json:"available"`
	Items     []domain.Item `json:"items"`
}

func (h handler) item(c echo.Context) error {
	items, err := h.svc.Stock(c.Request().Context(), c.Param("sku"))
	if err != nil {
		return problem(err)
	}
	out := Stock{SKU: domain.NormalizeSKU(c.Param("sku")), Items: items}
	for _, it := range items {
		out.OnHand += it.OnHand
		out.Reserved += it.Reserved
		out.Available += it.Available()
	}
	return c.JSON(http.StatusOK, out)
}

func (h handler) adjust(c echo.Context) error {
	var in domain.Adjustment
	if err := httpx.DecodeJSON(c, &in); err != nil {
		return err
	}
	it, err := h.svc.Adjust(c.Request().Context(), c.Param("sku"), in)
	if err != nil {
		return problem(err)
	}
	return c.JSON(http.StatusOK, it)
}

func (h handler) move(op func(ctx context.Context, sku string, m domain.Move) (domain.Item, error)) echo.HandlerFunc {
	return func(c echo.Context) error {
		var in domain.Move
		if err := httpx.DecodeJSON(c, &in); err != nil {
			return err
		}
		it, err := op(c.Request().Context(), c.Param("sku"), in)
		if err != nil {
			return problem(err)
		}
		return c.JSON(http.StatusOK, it)
	}
}

// Ownership is the body of GET and PUT /v1/ownership.
type Ownership struct {
	Owner bool `json:"owner"`
}

func (h handler) ownership(c echo.Context) error {
	return c.JSON(http.StatusOK, Ownership{Owner: h.svc.Owner()})
}

func (h handler) setOwnership(c echo.Context) error {
	var in struct {
		Owner *bool `json:"owner"`
	}
	if err := httpx.DecodeJSON(c, &in); err != nil {
		return err
	}
	if in.Owner == nil {
		return httpx.Invalid(httpx.FieldError{Field: "owner", Message: "is required"})
	}
	if err := h.svc.SetOwner(c.Request().Context(), *in.Owner); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, Ownership{Owner: h.svc.Owner()})
}

func problem(err error) error {
	switch {
	case errors.Is(err, domain.ErrNotFound):
		return httpx.NotFound("%s", err.Error())
	case errors.Is(err, domain.ErrNotOwner):
		return httpx.Conflict("not-owner", "Not the owner", "%s", err.Error())
	case errors.Is(err, domain.ErrVersionConflict):
		return httpx.Conflict("version-conflict", "Version conflict", "%s", err.Error())
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
