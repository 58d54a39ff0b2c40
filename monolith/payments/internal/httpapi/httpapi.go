// Package httpapi serves the payments module's HTTP API under
// /api/payments.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/stranglerkit/strangler/httpx"
	"github.com/stranglerkit/strangler/monolith/internal/web"
	"github.com/stranglerkit/strangler/monolith/payments/internal/domain"
)

// Service is what the handlers need from the module.
type Service interface {
	Authorize(ctx context.Context, in domain.NewAuthorization) (domain.Authorization, error)
	Void(ctx context.Context, ref domain.Ref) (domain.Authorization, error)
	Capture(ctx context.Context, ref domain.Ref) (domain.Authorization, error)
	Get(ctx context.Context, ref domain.Ref) (domain.Authorization, error)
	Account(ctx context.Context, customer int64) (domain.Account, error)
	SetLimit(ctx context.Context, customer int64, p domain.LimitPatch) (domain.Account, error)
}

// Register mounts the routes on g, the /api/payments group.
func Register(g *echo.Group, svc Service) {
	h := handler{svc: svc}
	g.POST("/authorizations", h.authorize)
	g.GET("/authorizations/:id", h.get)
	g.POST("/authorizations/:id/void", h.byID(svc.Void))
	g.POST("/authorizations/:id/capture", h.byID(svc.Capture))
	g.POST("/voids", h.voidByKey)
	g.GET("/accounts/:id", h.account)
	g.PUT("/accounts/:id", h.setLimit)
}

type handler struct{ svc Service }

func (h handler) authorize(c echo.Context) error {
	var in domain.NewAuthorization
	if err := httpx.DecodeJSON(c, &in); err != nil {
		return err
	}
	a, err := h.svc.Authorize(c.Request().Context(), in)
	if err != nil {
		return problem(err)
	}
	return web.Created(c, "/api/payments/authorizations/"+strconv.FormatInt(a.ID, 10), a)
}

func (h handler) get(c echo.Context) error {
	id, err := web.PathID(c, "id")
	if err != nil {
		return err
	}
	a, err := h.svc.Get(c.Request().Context(), domain.Ref{ID: id})
	if err != nil {
		return problem(err)
	}
	return c.JSON(http.StatusOK, a)
}

// byID serves a transition of the authorization the path names.
func (h handler) byID(fn func(context.Context, domain.Ref) (domain.Authorization, error)) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, err := web.PathID(c, "id")
		if err != nil {
			return err
		}
		a, err := fn(c.Request().Context(), domain.Ref{ID: id})
		if err != nil {
			return problem(err)
		}
		return c.JSON(http.StatusOK, a)
	}
}

func (h handler) voidByKey(c echo.Context) error {
	var in struct {
		IdempotencyKey string `json:"idempotency_key"`
	}
	if err := httpx.DecodeJSON(c, &in); err != nil {
		return err
	}
	a, err := h.svc.Void(c.Request().Context(), domain.Ref{IdempotencyKey: in.IdempotencyKey})
	if err != nil {
		return problem(err)
	}
	return c.JSON(http.StatusOK, a)
}

func (h handler) account(c echo.Context) error {
	id, err := web.PathID(c, "id")
	if err != nil {
		return err
	}
	a, err := h.svc.Account(c.Request().Context(), id)
	if err != nil {
		return accountProblem(err)
	}
	return c.JSON(http.StatusOK, a)
}

func (h handler) setLimit(c echo.Context) error {
	id, err := web.PathID(c, "id")
	if err != nil {
		return err
	}
	// The limit is required, and null means the default: a raw value
	// tells a null from a missing field.
	var body struct {
		CreditLimitCents json.RawMessage `json:"credit_limit_cents"`
	}
	if err := httpx.DecodeJSON(c, &body); err != nil {
		return err
	}
	if len(body.CreditLimitCents) == 0 {
		return httpx.Invalid(httpx.FieldError{Field: "credit_limit_cents", Message: "is required; null gives the customer the default limit"})
	}
	var in domain.LimitPatch
	if err := json.Unmarshal(body.CreditLimitCents, &in.CreditLimitCents); err != nil {
		return httpx.BadRequest("credit_limit_cents must be an integer or null, not %s", body.CreditLimitCents)
	}
	a, err := h.svc.SetLimit(c.Request().Context(), id, in)
	if err != nil {
		return accountProblem(err)
	}
	return c.JSON(http.StatusOK, a)
}

// accountProblem maps an account's errors: the customer is the resource
// the path names, so an unknown one is a 404.
func accountProblem(err error) error {
	if errors.Is(err, domain.ErrUnknownCustomer) {
		return httpx.NotFound("%s", err.Error())
	}
	return problem(err)
}

func problem(err error) error {
	switch {
	case errors.Is(err, domain.ErrNotFound):
		return httpx.NotFound("%s", err.Error())
	case errors.Is(err, domain.ErrUnknownCustomer):
		p := httpx.Unprocessable("unknown-customer", "Unknown customer", "%s", err.Error())
		p.Errors = []httpx.FieldError{{Field: "customer_id", Message: err.Error()}}
		return p
	case errors.Is(err, domain.ErrDeclined):
		return httpx.Unprocessable("payment-declined", "Payment declined", "%s", err.Error())
	case errors.Is(err, domain.ErrKeyReused):
		return httpx.Conflict("idempotency-key-reused", "Idempotency key reused", "%s", err.Error())
	case errors.Is(err, domain.ErrVoidedBeforeAuthorized):
		return httpx.Conflict("authorization-voided", "Authorization voided", "%s", err.Error())
	case errors.Is(err, domain.ErrStatus):
		return httpx.Conflict("authorization-status", "Authorization status", "%s", err.Error())
	}
	return err
}
