// Package httpapi serves the monolith's /api/orders contract from the
// orders service: the same paths, JSON (legacy integer status codes,
// redundant totals), statuses and problem types, so that the proxy can
// move the module's traffic to the service without clients noticing.
//
// One difference is documented in docs/api/shop.openapi.yaml: a placement
// whose saga is still running when the service stops waiting answers 202
// with the order's Location; the order appears there once the saga has
// completed (a GET answers 404 until then, and for good when it
// compensated).
package httpapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	aclorders "github.com/stranglerkit/strangler/acl/orders"
	"github.com/stranglerkit/strangler/extracted/orders/domain"
	"github.com/stranglerkit/strangler/extracted/orders/service"
	"github.com/stranglerkit/strangler/httpx"
)

// The page sizes of the list, as the monolith's.
const (
	defaultLimit = 20
	maxLimit     = 100
	maxCursorLen = 512
	// listName tags the list's cursors as the monolith's, so that a client
	// paging through it may cross from one side to the other.
	listName = "orders"
)

// Register mounts the routes on g, the /api/orders group.
func Register(g *echo.Group, svc *service.Service) {
	h := handler{svc: svc}
	g.GET("", h.list)
	g.POST("", h.place)
	g.GET("/:id", h.get)
	g.POST("/:id/pay", h.transition(svc.Pay))
	g.POST("/:id/ship", h.transition(svc.Ship))
	g.POST("/:id/cancel", h.transition(svc.Cancel))
}

type handler struct{ svc *service.Service }

func pathID(c echo.Context) (int64, error) {
	s := c.Param("id")
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, httpx.BadRequest("id must be a positive integer, not %q", s)
	}
	return id, nil
}

type cursor struct {
	ID int64 `json:"id"`
}

type envelope struct {
	List string          `json:"l"`
	Pos  json.RawMessage `json:"p"`
}

func encodeCursor(id int64) string {
	p, _ := json.Marshal(cursor{ID: id})
	b, _ := json.Marshal(envelope{List: listName, Pos: p})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (int64, error) {
	short := s
	if len(short) > 40 {
		short = short[:40] + "…"
	}
	bad := httpx.BadRequest("cursor %q is not a cursor of this list; pass next_cursor from the previous page unchanged", short)
	if len(s) > maxCursorLen {
		return 0, bad
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return 0, bad
	}
	var env envelope
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil || env.List != listName || len(env.Pos) == 0 {
		return 0, bad
	}
	var c cursor
	dec = json.NewDecoder(bytes.NewReader(env.Pos))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return 0, bad
	}
	return c.ID, nil
}

func (h handler) list(c echo.Context) error {
	q := httpx.NewQuery(c, "customer_id", "status", "limit", "cursor")
	customerID := q.Int64("customer_id")
	limit := q.Limit(maxLimit)
	cur := q.String("cursor")
	if err := q.Err(); err != nil {
		return err
	}
	var status domain.Status
	if s := q.String("status"); s != "" {
		n, err := strconv.Atoi(s)
		st, serr := aclorders.StateOf(n)
		if err != nil || serr != nil {
			return httpx.BadRequest("status must be one of 10 (placed), 20 (paid), 30 (shipped), 90 (cancelled), not %q", s)
		}
		status = domain.Status(st)
	}
	if customerID < 0 || (customerID == 0 && q.String("customer_id") != "") {
		return httpx.BadRequest("customer_id must be a positive integer, not %q", q.String("customer_id"))
	}
	if limit == 0 {
		limit = defaultLimit
	}
	var before int64
	if cur != "" {
		var err error
		if before, err = decodeCursor(cur); err != nil {
			return err
		}
	}
	p, more, err := h.svc.List(c.Request().Context(), customerID, status, before, limit)
	if err != nil {
		return err
	}
	if more {
		p.NextCursor = encodeCursor(p.Items[len(p.Items)-1].ID)
	}
	return c.JSON(http.StatusOK, p)
}

func (h handler) get(c echo.Context) error {
	id, err := pathID(c)
	if err != nil {
		return err
	}
	o, err := h.svc.Get(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, o)
}

// Pending is the body of a 202: the placement saga still runs.
type Pending struct {
	ID    int64  `json:"id"`
	Saga  string `json:"saga"`
	State string `json:"state"`
}

func (h handler) place(c echo.Context) error {
	var in service.NewOrder
	if err := httpx.DecodeJSON(c, &in); err != nil {
		return err
	}
	o, err := h.svc.Place(c.Request().Context(), in)
	var pending *service.PendingError
	if errors.As(err, &pending) {
		c.Response().Header().Set(echo.HeaderLocation, "/api/orders/"+strconv.FormatInt(pending.ID, 10))
		return c.JSON(http.StatusAccepted, Pending{ID: pending.ID, Saga: service.SagaID(pending.ID), State: string(pending.State)})
	}
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, "/api/orders/"+strconv.FormatInt(o.ID, 10))
	return c.JSON(http.StatusCreated, o)
}

func (h handler) transition(op func(ctx context.Context, id int64) (aclorders.LegacyOrder, error)) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := pathID(c)
		if err != nil {
			return err
		}
		o, err := op(c.Request().Context(), id)
		if err != nil {
			return err
		}
		return c.JSON(http.StatusOK, o)
	}
}
