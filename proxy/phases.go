package proxy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
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

func (p *Proxy) registerPhases(v1 *echo.Group) {
	// Components poll their phase and acknowledge it several times a
	// second; those requests log at debug. Changes log at info.
	v1.GET("/phases", p.listPhases, httpx.Quiet())
	v1.GET("/phases/:module", p.getPhase, httpx.Quiet())
	v1.PUT("/phases/:module", p.putPhase)
	v1.PUT("/phases/:module/acks/:component", p.putAck, httpx.Quiet())
	v1.PUT("/phases/:module/verify", p.putVerify)
}

// phaseOf returns module's state; a module never set is in phase 0.
// It runs under p.mu.
func (p *Proxy) phaseOf(module string) api.PhaseState {
	if st, ok := p.phases[module]; ok {
		return clonePhase(st)
	}
	return api.PhaseState{Module: module, Phase: int(phase.Legacy), Name: phase.Legacy.String()}
}

func clonePhase(st api.PhaseState) api.PhaseState {
	if st.Acks != nil {
		acks := make(map[string]int, len(st.Acks))
		for k, v := range st.Acks {
			acks[k] = v
		}
		st.Acks = acks
	}
	if st.Verify != nil {
		v := *st.Verify
		st.Verify = &v
	}
	return st
}

func moduleParam(c echo.Context, name string) (string, error) {
	m := c.Param(name)
	if !phaseName.MatchString(m) {
		return "", httpx.BadRequest("%s %q: want a lower-case name", name, m)
	}
	return m, nil
}

func (p *Proxy) listPhases(c echo.Context) error {
	p.mu.Lock()
	out := make([]api.PhaseState, 0, len(p.phases))
	for m := range p.phases {
		out = append(out, p.phaseOf(m))
	}
	p.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Module < out[j].Module })
	return c.JSON(http.StatusOK, out)
}

func (p *Proxy) getPhase(c echo.Context) error {
	m, err := moduleParam(c, "module")
	if err != nil {
		return err
	}
	p.mu.Lock()
	st := p.phaseOf(m)
	p.mu.Unlock()
	return c.JSON(http.StatusOK, st)
}

// savePhase stores st, persists and audits. It runs under p.mu.
func (p *Proxy) savePhase(st api.PhaseState, entry api.AuditEntry) error {
	prev, had := p.phases[st.Module]
	if p.phases == nil {
		p.phases = map[string]api.PhaseState{}
	}
	p.phases[st.Module] = st
	if err := p.store.save(p.persisted()); err != nil {
		if had {
			p.phases[st.Module] = prev
		} else {
			delete(p.phases, st.Module)
		}
		return &persistError{fmt.Errorf("phase of %s: %w", st.Module, err)}
	}
	if entry.Action != "" {
		entry.Version = p.ctl.version
		p.audit(entry)
	}
	return nil
}

func (p *Proxy) putPhase(c echo.Context) error {
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
	p.mu.Lock()
	defer p.mu.Unlock()
	cur := p.phaseOf(m)
	next := cur
	next.Phase, next.Name, next.Weight = int(ph), ph.String(), in.Weight
	if cur.Phase != next.Phase || cur.Weight != next.Weight {
		next.Since, next.By = time.Now().UTC(), actor(c)
	}
	before, _ := json.Marshal(map[string]any{"phase": cur.Name, "weight": cur.Weight})
	after, _ := json.Marshal(map[string]any{"phase": next.Name, "weight": next.Weight})
	if err := p.savePhase(next, api.AuditEntry{Time: time.Now().UTC(), Actor: actor(c), Action: "phase", Module: m, Before: before, After: after}); err != nil {
		return p.changeProblem(err)
	}
	p.log.Info("phase changed", "module", m, "from", cur.Name, "to", next.Name, "weight", next.Weight, "actor", actor(c))
	return c.JSON(http.StatusOK, next)
}

func (p *Proxy) putAck(c echo.Context) error {
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
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.phaseOf(m)
	if st.Acks[comp] == in.Phase {
		return c.JSON(http.StatusOK, st)
	}
	if st.Acks == nil {
		st.Acks = map[string]int{}
	}
	st.Acks[comp] = in.Phase
	if err := p.savePhase(st, api.AuditEntry{}); err != nil {
		return p.changeProblem(err)
	}
	p.log.Info("phase acknowledged", "module", m, "component", comp, "phase", in.Phase)
	return c.JSON(http.StatusOK, st)
}

func (p *Proxy) putVerify(c echo.Context) error {
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
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.phaseOf(m)
	st.Verify = &in
	if err := p.savePhase(st, api.AuditEntry{}); err != nil {
		return p.changeProblem(err)
	}
	return c.JSON(http.StatusOK, st)
}
