package saga

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the orchestrator's Prometheus metrics.
type metrics struct {
	sagas       *stateCollector
	duration    *prometheus.HistogramVec
	retries     *prometheus.CounterVec
	transitions *prometheus.CounterVec
}

func newMetrics(store Store) *metrics {
	return &metrics{
		sagas: &stateCollector{store: store, desc: prometheus.NewDesc("strangler_saga_sagas",
			"Sagas in the store by state, counted at scrape time.", []string{"state"}, nil)},
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "strangler_saga_step_duration_seconds",
			Help:    "Duration of step attempts, by saga definition, step, phase (do, compensate) and outcome (ok, error, timeout).",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}, []string{"saga", "step", "phase", "outcome"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_saga_step_retries_total",
			Help: "Step attempts that failed and were retried, by saga definition, step and phase.",
		}, []string{"saga", "step", "phase"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_saga_transitions_total",
			Help: "Sagas that entered a state, by saga definition and state.",
		}, []string{"saga", "state"}),
	}
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.sagas, m.duration, m.retries, m.transitions}
}

func (m *metrics) register(reg prometheus.Registerer) error {
	for i, c := range m.collectors() {
		if err := reg.Register(c); err != nil {
			for _, done := range m.collectors()[:i] {
				reg.Unregister(done)
			}
			return err
		}
	}
	return nil
}

func (m *metrics) unregister(reg prometheus.Registerer) {
	for _, c := range m.collectors() {
		reg.Unregister(c)
	}
}

func (m *metrics) observe(saga, step, phase string, err error, d time.Duration) {
	outcome := "ok"
	switch {
	case errors.Is(err, ErrTimeout):
		outcome = "timeout"
	case err != nil:
		outcome = "error"
	}
	m.duration.WithLabelValues(saga, step, phase, outcome).Observe(d.Seconds())
}

func (m *metrics) retry(saga, step, phase string) { m.retries.WithLabelValues(saga, step, phase).Inc() }

func (m *metrics) transition(saga string, s State) {
	m.transitions.WithLabelValues(saga, string(s)).Inc()
}

// stateCollector counts the store's sagas by state when it is scraped, so
// that the gauge is right across restarts and for every process that
// serves the metrics.
type stateCollector struct {
	store Store
	desc  *prometheus.Desc
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := c.store.Count(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	for _, s := range States {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(counts[s]), string(s))
	}
}
