package control

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/stranglerkit/strangler/phase"
	"github.com/stranglerkit/strangler/proxy/api"
)

// The control plane holds each module's extraction phase next to the
// route table: the CLI sets it, components that change behaviour at a
// phase watch it and acknowledge what they applied, and `strangler status`
// reads it. It is saved with the table and every change is audited.

// phaseOf returns module's state; a module never set is in phase 0.
// It runs under p.mu.
func (p *Plane) phaseOf(module string) api.PhaseState {
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

// Phases lists the modules whose phase was ever set, by module.
func (p *Plane) Phases() []api.PhaseState {
	p.mu.Lock()
	out := make([]api.PhaseState, 0, len(p.phases))
	for m := range p.phases {
		out = append(out, p.phaseOf(m))
	}
	p.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Module < out[j].Module })
	return out
}

// Phase is module's phase; a module never set is in phase 0.
func (p *Plane) Phase(module string) api.PhaseState {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.phaseOf(module)
}

// savePhase stores st, saves and audits. It runs under p.mu.
func (p *Plane) savePhase(st api.PhaseState, entry api.AuditEntry) error {
	prev, had := p.phases[st.Module]
	if p.phases == nil {
		p.phases = map[string]api.PhaseState{}
	}
	p.phases[st.Module] = st
	if err := p.save(); err != nil {
		if had {
			p.phases[st.Module] = prev
		} else {
			delete(p.phases, st.Module)
		}
		return fmt.Errorf("phase of %s: %w", st.Module, err)
	}
	if entry.Action != "" {
		entry.Version = p.ctl.version
		p.audit(entry)
	}
	return nil
}

// SetPhase moves module to ph with weight, audited as actor's change, and
// returns the module's phase before and after. The caller checks ph and
// weight.
func (p *Plane) SetPhase(actor, module string, ph phase.Phase, weight int) (before, after api.PhaseState, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	err = p.retrying(func() error {
		before, after, err = p.setPhase(actor, module, ph, weight)
		return err
	})
	return before, after, err
}

func (p *Plane) setPhase(actor, module string, ph phase.Phase, weight int) (before, after api.PhaseState, err error) {
	cur := p.phaseOf(module)
	next := cur
	next.Phase, next.Name, next.Weight = int(ph), ph.String(), weight
	if cur.Phase != next.Phase || cur.Weight != next.Weight {
		next.Since, next.By = time.Now().UTC(), actor
	}
	b, _ := json.Marshal(map[string]any{"phase": cur.Name, "weight": cur.Weight})
	a, _ := json.Marshal(map[string]any{"phase": next.Name, "weight": next.Weight})
	if err := p.savePhase(next, api.AuditEntry{Time: time.Now().UTC(), Actor: actor, Action: "phase", Module: module, Before: b, After: a}); err != nil {
		return cur, cur, err
	}
	return cur, next, nil
}

// Ack records that component applied phase ph of module, and reports
// whether that is news. Acks are saved, not audited.
func (p *Plane) Ack(module, component string, ph int) (st api.PhaseState, news bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	err = p.retrying(func() error {
		st, news, err = p.ack(module, component, ph)
		return err
	})
	return st, news, err
}

func (p *Plane) ack(module, component string, ph int) (api.PhaseState, bool, error) {
	st := p.phaseOf(module)
	if st.Acks[component] == ph {
		return st, false, nil
	}
	if st.Acks == nil {
		st.Acks = map[string]int{}
	}
	st.Acks[component] = ph
	if err := p.savePhase(st, api.AuditEntry{}); err != nil {
		return st, false, err
	}
	return st, true, nil
}

// SetVerify records the latest verify result of module. It is saved, not
// audited.
func (p *Plane) SetVerify(module string, v api.VerifyResult) (st api.PhaseState, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	err = p.retrying(func() error {
		st, err = p.setVerify(module, v)
		return err
	})
	return st, err
}

func (p *Plane) setVerify(module string, v api.VerifyResult) (api.PhaseState, error) {
	st := p.phaseOf(module)
	st.Verify = &v
	if err := p.savePhase(st, api.AuditEntry{}); err != nil {
		return st, err
	}
	return st, nil
}
