package proxy

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/stranglerkit/strangler/proxy/admin"
	"github.com/stranglerkit/strangler/proxy/api"
	"github.com/stranglerkit/strangler/proxy/control"
)

// reportSamples is how many of a route's latest mismatch samples a
// replica puts in its report: enough to see what differs, few enough to
// keep a report small. The samples are redacted as shadow.redact says
// before any view holds them.
const reportSamples = 5

// replicaDetail is the detail of a replica's report: what its control
// plane serves (the fields of control.Status, at the top level, as
// replicas read them) and the shadow results of each module it has
// compared copies for, so that any replica's admin API sums the fleet's.
type replicaDetail struct {
	control.Status
	Shadow []api.Diffs `json:"shadow,omitempty"`
	// Backends are its backends' instance counts; absent from an older
	// proxy's report.
	Backends []api.BackendHealth `json:"backends"`
}

// replicaDetail is this replica's report detail.
func (p *Proxy) replicaDetail(st control.Status) replicaDetail {
	d := replicaDetail{Status: st}
	v := p.dp.Views()
	for _, m := range v.Modules() {
		if m.Shadow == (api.ShadowStats{}) {
			continue
		}
		diffs, ok := v.Diffs(m.Name)
		if !ok {
			continue
		}
		for i := range diffs.Routes {
			r := &diffs.Routes[i]
			r.Samples = r.Samples[:min(len(r.Samples), reportSamples)]
		}
		d.Shadow = append(d.Shadow, diffs)
	}
	return d
}

// fleetViews are the data plane's views for the admin API, with the
// shadow results of the other live replicas of a shared store added: the
// comparisons each replica made are the fleet's, whichever replica an
// operator asks. The other replicas' results are as of their last
// report, at most a poll interval old; if the reports cannot be read,
// the views are this replica's alone.
type fleetViews struct {
	admin.DataPlane
	p *Proxy
}

// others are the shadow results the other live replicas reported.
func (f fleetViews) others() []api.Diffs {
	r := f.p.reporter()
	if r == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	list, err := r.Replicas(ctx)
	if err != nil {
		f.p.log.Debug("the other replicas' shadow results not read", "error", err)
		return nil
	}
	self := f.p.replicaName()
	var out []api.Diffs
	for _, rs := range list {
		var d replicaDetail
		if rs.Replica == self || json.Unmarshal(rs.Detail, &d) != nil {
			continue
		}
		out = append(out, d.Shadow...)
	}
	return out
}

// Modules implements admin.DataPlane: each module's shadow stats are the
// sum over the live replicas.
func (f fleetViews) Modules() []api.Module {
	out := f.DataPlane.Modules()
	others := f.others()
	for i := range out {
		for _, d := range others {
			if d.Module != out[i].Name {
				continue
			}
			for _, r := range d.Routes {
				out[i].Shadow.Add(r.Stats)
			}
		}
	}
	return out
}

// Diffs implements admin.DataPlane: each route's stats are the sum over
// the live replicas, its noise paths their union, and its samples all
// replicas' (this one's, and the latest few of each other), newest first.
func (f fleetViews) Diffs(module string) (api.Diffs, bool) {
	out, ok := f.DataPlane.Diffs(module)
	if !ok {
		return out, false
	}
	others := f.others()
	for i := range out.Routes {
		r := &out.Routes[i]
		for _, d := range others {
			if d.Module != module {
				continue
			}
			for _, o := range d.Routes {
				if o.Route != r.Route {
					continue
				}
				r.Stats.Add(o.Stats)
				for _, n := range o.Noise {
					if !slices.Contains(r.Noise, n) {
						r.Noise = append(r.Noise, n)
					}
				}
				r.Samples = append(r.Samples, o.Samples...)
			}
		}
		slices.SortStableFunc(r.Samples, func(a, b api.Sample) int { return b.Time.Compare(a.Time) })
	}
	return out, true
}
