package dataplane

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/stranglerkit/strangler/proxy/control"
)

// metrics are the proxy's Prometheus series. The data plane never looks up
// a label set per request: each route resolves its children when a table is
// compiled (see routeMetrics).
type metrics struct {
	reg *prometheus.Registry

	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	fallbacks    *prometheus.CounterVec
	refused      *prometheus.CounterVec
	retries      *prometheus.CounterVec
	budgetOut    *prometheus.CounterVec
	breakerState *prometheus.GaugeVec
	instances    *prometheus.GaugeVec
	ejections    *prometheus.CounterVec
	shadow       *prometheus.CounterVec
	shadowDrop   *prometheus.CounterVec
	rejected     *prometheus.CounterVec
	tableVersion prometheus.Gauge
	catchAll     prometheus.Gauge
	accessDrops  prometheus.Counter
	wsActive     prometheus.Gauge
}

// statusClasses index the per-class children: 0 is "error" (no answer from
// a backend), 1 to 5 are 1xx to 5xx.
// The inventory counts by the same classes.
var statusClasses = control.UsageClassNames

func classOf(status int) int {
	if status < 100 || status > 599 {
		return 0
	}
	return status / 100
}

func newMetrics() *metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_proxy_requests_total",
			Help: "Requests answered, by route, module, backend that answered and status class (error: no answer).",
		}, []string{"route", "module", "backend", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "strangler_proxy_request_duration_seconds",
			Help:    "Time to the response headers, by route, module, backend and status class.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "module", "backend", "code"}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_proxy_fallbacks_total",
			Help: "Requests meant for the candidate that legacy served, by route, module and reason.",
		}, []string{"route", "module", "reason"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_proxy_fallbacks_refused_total",
			Help: "Requests meant for the candidate that would have fallen back to legacy but that their module's fallback policy kept from it, by route, module and reason.",
		}, []string{"route", "module", "reason"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_proxy_retries_total",
			Help: "Retries sent, by backend.",
		}, []string{"backend"}),
		budgetOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_proxy_retry_budget_exhausted_total",
			Help: "Retries not sent because the backend's retry budget was spent.",
		}, []string{"backend"}),
		breakerState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strangler_proxy_breaker_state",
			Help: "Circuit breaker state per backend: 0 closed, 1 half-open, 2 open.",
		}, []string{"backend"}),
		instances: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strangler_proxy_backend_instances",
			Help: "Instances per backend and state (healthy, unhealthy, ejected).",
		}, []string{"backend", "state"}),
		ejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_proxy_outlier_ejections_total",
			Help: "Instances ejected for failing in a row, by backend.",
		}, []string{"backend"}),
		shadow: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_proxy_shadow_comparisons_total",
			Help: "Shadow copies compared, by route, module and result (match, mismatch, noise, settled, inconclusive, error).",
		}, []string{"route", "module", "result"}),
		shadowDrop: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_proxy_shadow_dropped_total",
			Help: "Shadow copies not sent, by route, module and reason (queue_full, candidate_queue_full, breaker_open, body_too_large, not_replayable, rate_limited, shutdown).",
		}, []string{"route", "module", "reason"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_proxy_rejected_total",
			Help: "Requests refused before routing, by reason.",
		}, []string{"reason"}),
		tableVersion: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strangler_proxy_table_version",
			Help: "Version of the route table that serves.",
		}),
		catchAll: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strangler_proxy_table_catch_all",
			Help: "1 when the route table has a catch-all route (prefix / without conditions); 0 when requests outside its routes get 404.",
		}),
		accessDrops: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strangler_proxy_access_log_dropped_total",
			Help: "Access log lines dropped because the writer fell behind.",
		}),
		wsActive: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strangler_proxy_websockets_active",
			Help: "Upgraded connections being relayed.",
		}),
	}
	reg.MustRegister(m.requests, m.duration, m.fallbacks, m.refused, m.retries, m.budgetOut, m.breakerState, m.instances,
		m.ejections, m.shadow, m.shadowDrop, m.rejected, m.tableVersion, m.catchAll, m.accessDrops, m.wsActive)
	return m
}

// routeMetrics are one route's children for one backend. Each is resolved
// on its first use, not when the table is built, so that a large table's
// routes cost /metrics nothing until they serve, and resolved once.
type routeMetrics struct {
	requests [6]lazyCounter
	duration [6]lazyObserver
}

func (m *metrics) forRoute(key *seriesKey) *routeMetrics {
	rm := &routeMetrics{}
	for i, c := range statusClasses {
		rm.requests[i] = lazyCounter{lazy[prometheus.Counter]{vec: m.requests, key: key, last: c}}
		rm.duration[i] = lazyObserver{lazy[prometheus.Observer]{vec: m.duration, key: key, last: c}}
	}
	return rm
}

// seriesKey names the series of one route (and backend): the labels before
// the last one. Dead is set when the route leaves the table, so that a
// request still in flight on the old table does not bring its series back.
type seriesKey struct {
	route, module, backend string
	dead                   atomic.Bool
}

func (k *seriesKey) values(last string) []string {
	if k.backend == "" {
		return []string{k.route, k.module, last}
	}
	return []string{k.route, k.module, k.backend, last}
}

// vecOf is a metric vector whose children are T.
type vecOf[T any] interface {
	WithLabelValues(lvs ...string) T
	DeleteLabelValues(lvs ...string) bool
}

// lazy is a child of a vector resolved on its first use.
type lazy[T any] struct {
	child atomic.Pointer[T]
	vec   vecOf[T]
	key   *seriesKey
	last  string
}

func (l *lazy[T]) get() T {
	if c := l.child.Load(); c != nil {
		return *c
	}
	lv := l.key.values(l.last)
	c := l.vec.WithLabelValues(lv...)
	if l.key.dead.Load() {
		// forget ran meanwhile: drop the series again.
		l.vec.DeleteLabelValues(lv...)
	}
	l.child.Store(&c)
	return c
}

// lazyCounter is a counter child resolved on its first use.
type lazyCounter struct{ lazy[prometheus.Counter] }

// Inc adds one to the child.
func (l *lazyCounter) Inc() { l.get().Inc() }

// lazyObserver is a histogram child resolved on its first use.
type lazyObserver struct{ lazy[prometheus.Observer] }

// Observe records v in the child.
func (l *lazyObserver) Observe(v float64) { l.get().Observe(v) }

// forgetRoute deletes the series of a route and backend that left the
// table, after marking them dead.
func (m *metrics) forgetRoute(key *seriesKey) {
	key.dead.Store(true)
	for _, c := range statusClasses {
		lv := key.values(c)
		m.requests.DeleteLabelValues(lv...)
		m.duration.DeleteLabelValues(lv...)
	}
}

// forgetRoutes deletes the fallback series, and the refused ones, of the
// routes that left the table, after marking them dead. Their shadow series go with their shadow
// results (shadower.forget).
func (m *metrics) forgetRoutes(dead []*seriesKey) {
	for _, key := range dead {
		key.dead.Store(true)
		for _, r := range fallbackReasons {
			m.fallbacks.DeleteLabelValues(key.values(r)...)
			m.refused.DeleteLabelValues(key.values(r)...)
		}
	}
}

// forgetBackend deletes the series of a backend that left the table.
func (m *metrics) forgetBackend(name string) {
	l := prometheus.Labels{"backend": name}
	for _, v := range []interface{ DeletePartialMatch(prometheus.Labels) int }{m.retries, m.budgetOut, m.breakerState, m.instances, m.ejections} {
		v.DeletePartialMatch(l)
	}
}

// fallback reasons, in the order of routeRT.fallbacks.
const (
	fbUnreachable = iota
	fbBreakerOpen
	fbNoInstance
	fbStatus5xx
	fbError
	fbCount
)

var fallbackReasons = [fbCount]string{"unreachable", "breaker_open", "no_instance", "status_5xx", "error"}
