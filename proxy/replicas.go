package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/stranglerkit/strangler/proxy/api"
	"github.com/stranglerkit/strangler/proxy/control"
	"github.com/stranglerkit/strangler/proxy/control/pgstore"
)

// A proxy on a shared store that keeps replicas' reports (pgstore's
// ReplicaReporter) reports what it serves every poll interval, so that
// the admin API of any replica lists them all and an operator sees one
// that lags (`strangler routes list`). A report lasts replicaTTLFactor
// poll intervals, or stale_after if longer: a replica that stops drops
// out then.
const replicaTTLFactor = 3

// reporter is the store's ReplicaReporter, or nil. A lazily opened
// store has one only once it is open.
func (p *Proxy) reporter() pgstore.ReplicaReporter {
	s := p.store
	if l, ok := s.(interface{ Inner() control.Store }); ok {
		s = l.Inner()
	}
	r, _ := s.(pgstore.ReplicaReporter)
	return r
}

// replicaName names this replica in the reports: its host and admin
// address.
func (p *Proxy) replicaName() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown-host"
	}
	return host + "/" + p.AdminAddr()
}

// reportReplica reports what this replica serves until ctx ends.
func (p *Proxy) reportReplica(ctx context.Context) {
	ttl := max(replicaTTLFactor*p.ctlCfg.PollInterval, p.ctlCfg.StaleAfter)
	tick := time.NewTicker(p.ctlCfg.PollInterval)
	defer tick.Stop()
	name := p.replicaName()
	for {
		if r := p.reporter(); r != nil {
			st := p.ctl.Status()
			detail, _ := json.Marshal(st)
			rctx, cancel := context.WithTimeout(ctx, p.ctlCfg.PollInterval+time.Second)
			err := r.ReportReplica(rctx, pgstore.ReplicaStatus{Replica: name, Revision: st.Revision, Version: st.Version, Detail: detail}, ttl)
			cancel()
			if err != nil && ctx.Err() == nil {
				p.log.Debug("replica report not saved", "error", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// replicas lists the replicas' reports from the store for the admin API,
// or this proxy alone when its store keeps none.
func (p *Proxy) replicas(ctx context.Context) ([]api.Replica, error) {
	r := p.reporter()
	if r == nil {
		st := p.ctl.Status()
		return []api.Replica{{Name: p.replicaName(), Version: st.Version, Revision: st.Revision, Degraded: st.Degraded,
			StalenessSeconds: st.StalenessSeconds, ReportedAt: time.Now().UTC()}}, nil
	}
	list, err := r.Replicas(ctx)
	if err != nil {
		return nil, fmt.Errorf("replicas: %w", err)
	}
	out := make([]api.Replica, 0, len(list))
	for _, rs := range list {
		var st control.Status
		_ = json.Unmarshal(rs.Detail, &st) // a report without one says only the versions
		out = append(out, api.Replica{Name: rs.Replica, Version: rs.Version, Revision: rs.Revision, Degraded: st.Degraded,
			StalenessSeconds: st.StalenessSeconds, ReportedAt: rs.ReportedAt})
	}
	return out, nil
}
