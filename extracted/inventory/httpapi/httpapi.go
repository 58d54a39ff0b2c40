// Package httpapi serves the inventory service's own API under /v1: items
// by SKU and warehouse id, writes with an optional expected version, and
// the ownership switch that the migration's flip uses. The monolith's
// contract is served by the anti-corruption layer's facade instead.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/stranglerkit/strangler/extracted/internal/servicekit"
	"github.com/stranglerkit/strangler/extracted/inventory/domain"
	"github.com/stranglerkit/strangler/extracted/inventory/service"
	"github.com/stranglerkit/strangler/httpx"
	"github.com/stranglerkit/strangler/saga"
)

// Register mounts the routes on g, the /v1 group. guard protects the
// ownership switch: who may move the inventory's writes is an operator's
// decision, as a route flip is. steps is the saga participant's guard of
// the moves that carry an Idempotency-Key (see keyedMove).
func Register(g *echo.Group, svc *service.Service, guard echo.MiddlewareFunc, steps *saga.Guard) {
	h := handler{svc: svc, steps: steps}
	g.GET("/warehouses", h.warehouses)
	g.GET("/items/:sku", h.item)
	g.POST("/items/:sku/adjustments", h.adjust)
	g.POST("/items/:sku/reservations", h.move(svc.Reserve, false))
	g.POST("/items/:sku/releases", h.move(svc.Release, true))
	g.POST("/items/:sku/shipments", h.move(svc.Ship, false))
	servicekit.RegisterOwnership(g, svc, guard)
}

type handler struct {
	svc   *service.Service
	steps *saga.Guard
}

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

func (h handler) move(op func(ctx context.Context, sku string, m domain.Move) (domain.Item, error), compensates bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		if key := c.Request().Header.Get(saga.HeaderIdempotencyKey); key != "" {
			return h.keyedMove(c, key, op, compensates)
		}
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

// guardedMove is what the saga guard records of a keyed move: the item as
// the move left it and the move itself, which a release by the same key
// undoes.
type guardedMove struct {
	Item domain.Item `json:"item"`
	Move domain.Move `json:"move"`
}

// MaxKeyLen caps an Idempotency-Key.
const MaxKeyLen = 200

// keyedMove runs a saga step's move once per Idempotency-Key, in one
// transaction with the guard's record of the key. A reservation or
// shipment repeated with its key answers the first result without moving
// again; one whose key was released first is refused (409
// step-compensated). A release with a key undoes the reservation made
// under that key, whatever its body says, and answers that reservation's
// item; a key never reserved is a null compensation (204), which refuses
// the reservation should it arrive later.
func (h handler) keyedMove(c echo.Context, key string, op func(ctx context.Context, sku string, m domain.Move) (domain.Item, error), compensates bool) error {
	if len(key) > MaxKeyLen {
		return httpx.BadRequest("%s must be at most %d characters", saga.HeaderIdempotencyKey, MaxKeyLen)
	}
	ctx := c.Request().Context()
	sku := c.Param("sku")
	if compensates {
		var out *domain.Item
		err := h.steps.Compensate(ctx, key, func(ctx context.Context, result []byte) error {
			var g guardedMove
			if err := json.Unmarshal(result, &g); err != nil {
				return fmt.Errorf("saga guard %s: result: %w", key, err)
			}
			it, err := op(ctx, g.Item.SKU, domain.Move{Warehouse: g.Item.Warehouse, Quantity: g.Move.Quantity, Reference: g.Move.Reference})
			out = &it
			return err
		})
		if err != nil {
			return problem(err)
		}
		if out == nil {
			return c.NoContent(http.StatusNoContent)
		}
		return c.JSON(http.StatusOK, out)
	}
	var in domain.Move
	if err := httpx.DecodeJSON(c, &in); err != nil {
		return err
	}
	res, err := h.steps.Do(ctx, key, func(ctx context.Context) ([]byte, error) {
		it, err := op(ctx, sku, in)
		if err != nil {
			return nil, err
		}
		return json.Marshal(guardedMove{Item: it, Move: in})
	})
	if err != nil {
		return problem(err)
	}
	var g guardedMove
	if err := json.Unmarshal(res.Result, &g); err != nil {
		return fmt.Errorf("saga guard %s: result: %w", key, err)
	}
	return c.JSON(http.StatusOK, g.Item)
}

func problem(err error) error {
	switch {
	case errors.Is(err, domain.ErrNotFound):
		return httpx.NotFound("%s", err.Error())
	case errors.Is(err, domain.ErrNotOwner):
		return servicekit.NotOwner(err.Error())
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
	case errors.Is(err, saga.ErrCompensated):
		return httpx.Conflict("step-compensated", "Saga step compensated", "%s", err.Error())
	case errors.Is(err, domain.ErrUnknownProduct):
		return httpx.Unprocessable("unknown-product", "Unknown product", "%s", err.Error())
	}
	return err
}
