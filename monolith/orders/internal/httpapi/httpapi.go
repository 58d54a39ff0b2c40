// Package httpapi serves the orders module's HTTP API under /api/orders.
package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/stranglerkit/strangler/httpx"
	"github.com/stranglerkit/strangler/monolith/internal/page"
	"github.com/stranglerkit/strangler/monolith/internal/web"
	"github.com/stranglerkit/strangler/monolith/orders/internal/domain"
)

// Service is what the handlers need from the module.
type Service interface {
	List(ctx context.Context, q domain.Query) (domain.Page, error)
	Get(ctx context.Context, id int64) (domain.Order, error)
	Place(ctx context.Context, in domain.NewOrder) (domain.Order, error)
	Pay(ctx context.Context, id int64) (domain.Order, error)
	Ship(ctx context.Context, id int64) (domain.Order, error)
	Cancel(ctx context.Context, id int64) (domain.Order, error)
}

// Register mounts the routes on g, the /api/orders group.
func Register(g *echo.Group, svc Service) {
	h := handler{svc: svc}
	g.GET("", h.list)
	g.POST("", h.place)
	g.GET("/:id", h.get)
	g.POST("/:id/pay", h.transition(svc.Pay))
	g.POST("/:id/ship", h.transition(svc.Ship))
	g.POST("/:id/cancel", h.transition(svc.Cancel))
}

type handler struct{ svc Service }

func (h handler) list(c echo.Context) error {
	q := httpx.NewQuery(c, "customer_id", "status", "limit", "cursor")
	query := domain.Query{CustomerID: q.Int64("customer_id"), Limit: q.Limit(page.MaxLimit), Cursor: q.String("cursor")}
	if err := q.Err(); err != nil {
		return err
	}
	if s := q.String("status"); s != "" {
		st, err := domain.ParseStatus(s)
		if err != nil {
			return httpx.BadRequest("%s", err.Error())
		}
		query.Status = st
	}
	if query.CustomerID < 0 || (query.CustomerID == 0 && q.String("customer_id") != "") {
		return httpx.BadRequest("customer_id must be a positive integer, not %q", q.String("customer_id"))
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
	o, err := h.svc.Get(c.Request().Context(), id)
	if err != nil {
		return problem(err)
	}
	return c.JSON(http.StatusOK, o)
}

func (h handler) place(c echo.Context) error {
	var in domain.NewOrder
	if err := httpx.DecodeJSON(c, &in); err != nil {
		return err
	}
	o, err := h.svc.Place(c.Request().Context(), in)
	if err != nil {
		return problem(err)
	}
	return web.Created(c, "/api/orders/"+strconv.FormatInt(o.ID, 10), o)
}

func (h handler) transition(op func(context.Context, int64) (domain.Order, error)) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := web.PathID(c, "id")
		if err != nil {
			return err
		}
		o, err := op(c.Request().Context(), id)
		if err != nil {
			return problem(err)
		}
		return c.JSON(http.StatusOK, o)
	}
}

// problem maps the module's errors to problem documents. Unknown customers
// and SKUs already are problems (422) that also match their sentinel.
func problem(err error) error {
	var p *httpx.Problem
	switch {
	case errors.As(err, &p):
		return err
	case errors.Is(err, domain.ErrNotFound):
		return httpx.NotFound("%s", err.Error())
	case errors.Is(err, domain.ErrOutOfStock):
		return httpx.Conflict("out-of-stock", "Out of stock", "%s", err.Error())
	case errors.Is(err, domain.ErrTransition):
		return httpx.Conflict("order-status", "Order status does not allow this", "%s", err.Error())
	}
	return err
}
