package admin

import (
	"fmt"
	"net/http"
	"regexp"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/stranglerkit/strangler/httpx"
	"github.com/stranglerkit/strangler/phase"
	"github.com/stranglerkit/strangler/proxy/api"
)

// The admin API holds each module's extraction phase next to the route
// table: the CLI sets it, components that change behaviour at a phase
// watch it and acknowledge what they applied, and `strangler status` reads
// it. It is persisted with the table and every change is audited.

var phaseName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)

func (p *server) registerPhases(v1 *echo.Group) {
	// Components poll their phase and acknowledge it several times a
	// second; those requests log at debug. Changes log at info.
	v1.GET("/phases", p.listPhases, httpx.Quiet())
	v1.GET("/phases/:module", p.getPhase, httpx.Quiet())
	v1.PUT("/phases/:module", p.putPhase)
	v1.PUT("/phases/:module/acks/:component", p.putAck, httpx.Quiet())
	v1.PUT("/phases/:module/verify", p.putVerify)
}

func moduleParam(c echo.Context, name string) (string, error) {
	m := c.Param(name)
	if !phaseName.MatchString(m) {
		return "", httpx.BadRequest("%s %q: want a lower-case name", name, m)
	}
	return m, nil
}

func (p *server) listPhases(c echo.Context) error {
	return c.JSON(http.StatusOK, p.ctl.Phases())
}

func (p *server) getPhase(c echo.Context) error {
	m, err := moduleParam(c, "module")
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, p.ctl.Phase(m))
}

func (p *server) putPhase(c echo.Context) error {
	m, err := moduleParam(c, "module")
	if err != nil {
		return err
	}
	var in api.SetPhase
	if err := httpx.DecodeJSON(c, &in); err != nil {
		return err
	}
	ph := phase.Phase(in.Phase)
	var bad []httpx.FieldError
	if !ph.Valid() {
		bad = append(bad, httpx.FieldError{Field: "phase", Message: fmt.Sprintf("must be 0 (legacy) to 5 (retire), not %d", in.Phase)})
	}
	if in.Weight < 0 || in.Weight > 100 {
		bad = append(bad, httpx.FieldError{Field: "weight", Message: fmt.Sprintf("must be 0 to 100, not %d", in.Weight)})
	}
	if len(bad) > 0 {
		return httpx.Invalid(bad...)
	}
	cur, next, err := p.ctl.SetPhase(actor(c), m, ph, in.Weight)
	if err != nil {
		return p.changeProblem(err)
	}
	p.log.Info("phase changed", "module", m, "from", cur.Name, "to", next.Name, "weight", next.Weight, "actor", actor(c))
	return c.JSON(http.StatusOK, next)
}

func (p *server) putAck(c echo.Context) error {
	m, err := moduleParam(c, "module")
	if err != nil {
		return err
	}
	comp, err := moduleParam(c, "component")
	if err != nil {
		return err
	}
	var in api.Ack
	if err := httpx.DecodeJSON(c, &in); err != nil {
		return err
	}
	if !phase.Phase(in.Phase).Valid() {
		return httpx.Invalid(httpx.FieldError{Field: "phase", Message: fmt.Sprintf("must be 0 to 5, not %d", in.Phase)})
	}
	st, changed, err := p.ctl.Ack(m, comp, in.Phase)
	if err != nil {
		return p.changeProblem(err)
	}
	if !changed {
		return c.JSON(http.StatusOK, st)
	}
	p.log.Info("phase acknowledged", "module", m, "component", comp, "phase", in.Phase)
	return c.JSON(http.StatusOK, st)
}

func (p *server) putVerify(c echo.Context) error {
	m, err := moduleParam(c, "module")
	if err != nil {
		return err
	}
	var in api.VerifyResult
	if err := httpx.DecodeJSON(c, &in); err != nil {
		return err
	}
	if in.Check == "" {
		return httpx.Invalid(httpx.FieldError{Field: "check", Message: "must name the verify check"})
	}
	if in.Time.IsZero() {
		in.Time = time.Now().UTC()
	}
	st, err := p.ctl.SetVerify(m, in)
	if err != nil {
		return p.changeProblem(err)
	}
	return c.JSON(http.StatusOK, st)
}
