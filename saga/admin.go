package saga

import (
	"context"
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/stranglerkit/strangler/httpx"
)

// MaxPage caps the limit of a listing.
const MaxPage = 500

// Page is a page of a listing, newest first.
type Page struct {
	// Sagas are the page's sagas, without their logs.
	Sagas []Saga `json:"sagas"`
	// Next is the Before of the next page; 0 when this page is the last.
	Next int64 `json:"next,omitempty"`
}

// OperatorRequest is the optional body of retry and abort.
type OperatorRequest struct {
	// Reason goes into the saga log.
	Reason string `json:"reason,omitempty"`
}

// RegisterAdmin adds the saga admin API to g, behind the bearer token that
// token returns (as the other admin APIs: an empty token closes it):
//
//	GET  /sagas?state=&limit=&before=   a page of sagas, newest first
//	GET  /sagas/:id                     one saga with its log
//	POST /sagas/:id/retry               resume a manual saga's compensation
//	POST /sagas/:id/abort               give up on a manual saga
func RegisterAdmin(g *echo.Group, o *Orchestrator, token func() string) {
	a := &admin{o: o}
	s := g.Group("/sagas", httpx.BearerAuth("strangler-sagas", token))
	s.GET("", a.list)
	s.GET("/:id", a.show)
	s.POST("/:id/retry", a.operate(o.Retry))
	s.POST("/:id/abort", a.operate(o.Abort))
}

type admin struct{ o *Orchestrator }

func (a *admin) list(c echo.Context) error {
	q := httpx.NewQuery(c, "state", "limit", "before")
	f := Filter{State: State(q.String("state")), Limit: q.Limit(MaxPage), Before: q.Int64("before")}
	if err := q.Err(); err != nil {
		return err
	}
	if f.State != "" && !f.State.Valid() {
		return httpx.BadRequest("\"state\" must be one of %s, not %q", StateNames(), f.State)
	}
	if f.Before < 0 {
		return httpx.BadRequest("\"before\" must not be negative, not %d", f.Before)
	}
	if f.Limit == 0 {
		f.Limit = 50
	}
	// One more than the page tells whether there is a next one.
	want := f.Limit
	f.Limit++
	sagas, err := a.o.List(c.Request().Context(), f)
	if err != nil {
		return err
	}
	p := Page{Sagas: sagas}
	if len(sagas) > want {
		p.Sagas = sagas[:want]
		p.Next = p.Sagas[want-1].Seq
	}
	return c.JSON(http.StatusOK, p)
}

func (a *admin) show(c echo.Context) error {
	s, err := a.o.Get(c.Request().Context(), c.Param("id"))
	if err != nil {
		return problem(err)
	}
	return c.JSON(http.StatusOK, s)
}

func (a *admin) operate(op func(ctx context.Context, id, reason string) (*Saga, error)) echo.HandlerFunc {
	return func(c echo.Context) error {
		var req OperatorRequest
		if c.Request().ContentLength != 0 {
			if err := httpx.DecodeJSON(c, &req); err != nil {
				return err
			}
		}
		s, err := op(c.Request().Context(), c.Param("id"), req.Reason)
		if err != nil {
			return problem(err)
		}
		return c.JSON(http.StatusOK, s)
	}
}

// problem maps the orchestrator's errors to problem documents by type.
func problem(err error) error {
	var se *StateError
	switch {
	case errors.Is(err, ErrNotFound):
		return httpx.NotFound("%v", err)
	case errors.As(err, &se):
		return httpx.Conflict("saga-state", "Saga state", "%v", err)
	case errors.Is(err, ErrStale):
		return httpx.Conflict("saga-state", "Saga state", "%v; read it again", err)
	}
	return err
}
