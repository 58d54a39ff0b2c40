package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/stranglerkit/strangler/proxy/api"
	"github.com/stranglerkit/strangler/proxy/control"
)

// A proxy on a shared store that keeps replicas' reports (a
// control.ReplicaReporter, such as pgstore) reports what it serves every poll interval, so that
// the admin API of any replica lists them all and an operator sees one
// that lags (`strangler routes list`). A report lasts replicaTTLFactor
// poll intervals, or stale_after if longer: a replica that stops drops
// out then.
const replicaTTLFactor = 3

// reporter is the store's ReplicaReporter, or nil. A lazily opened
// store has one only once it is open.
func (p *Proxy) reporter() control.ReplicaReporter {
	s := p.store
	if l, ok := s.(interface{ Inner() control.Store }); ok {
		s = l.Inner()
	}
	r, _ := s.(control.ReplicaReporter)
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

// replicaCheckEvery is how often a replica looks whether it serves a new
// table, to report that at once rather than at the next poll interval:
// `strangler phase` waits for every replica's report of a change.
const replicaCheckEvery = 20 * time.Millisecond

// reportReplica reports what this replica serves until ctx ends: every
// poll interval, and as soon as it serves another table version or its
// backends' instance counts change, which `strangler phase` also waits
// for.
func (p *Proxy) reportReplica(ctx context.Context) {
	ttl := max(replicaTTLFactor*p.ctlCfg.PollInterval, p.ctlCfg.StaleAfter)
	check := time.NewTicker(min(replicaCheckEvery, p.ctlCfg.PollInterval))
	defer check.Stop()
	name := p.replicaName()
	var (
		reported       int64 = -1
		reportedHealth []api.BackendHealth
	)
	next := time.Now()
	for {
		st, health := p.ctl.Status(), p.dp.BackendHealth()
		if st.Version == reported && slices.Equal(health, reportedHealth) && time.Now().Before(next) {
			// Nothing new to report yet.
		} else if r := p.reporter(); r != nil {
			next = time.Now().Add(p.ctlCfg.PollInterval)
			d := p.replicaDetail(st)
			d.Backends = health
			detail, _ := json.Marshal(d)
			rctx, cancel := context.WithTimeout(ctx, p.ctlCfg.PollInterval+time.Second)
			err := r.ReportReplica(rctx, control.ReplicaStatus{Replica: name, Revision: st.Revision, Version: st.Version, Detail: detail}, ttl)
			cancel()
			// A failed report is tried again at the next interval, not at
			// the next check, so that a lost store is not hammered.
			reported, reportedHealth = st.Version, health
			if err != nil && ctx.Err() == nil {
				p.log.Debug("replica report not saved", "error", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-check.C:
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
			StalenessSeconds: st.StalenessSeconds, ReportedAt: time.Now().UTC(), Backends: p.dp.BackendHealth()}}, nil
	}
	list, err := r.Replicas(ctx)
	if err != nil {
		return nil, fmt.Errorf("replicas: %w", err)
	}
	out := make([]api.Replica, 0, len(list))
	for _, rs := range list {
		// A report without a detail says only the versions, and one
		// without backends (an older proxy's) leaves Backends nil.
		var d replicaDetail
		_ = json.Unmarshal(rs.Detail, &d)
		out = append(out, api.Replica{Name: rs.Replica, Version: rs.Version, Revision: rs.Revision, Degraded: d.Degraded,
			StalenessSeconds: d.StalenessSeconds, ReportedAt: rs.ReportedAt, Backends: d.Backends})
	}
	return out, nil
}
