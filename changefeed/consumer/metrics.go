package consumer

import "github.com/prometheus/client_golang/prometheus"

// metrics are the consumer's Prometheus series, each with the consumer's
// name as the "consumer" label.
type metrics struct {
	handled      *prometheus.CounterVec
	duplicates   prometheus.Counter
	skipped      *prometheus.CounterVec
	retries      prometheus.Counter
	deadLetters  *prometheus.CounterVec
	lag          *prometheus.GaugeVec
	latency      prometheus.Histogram
	upcast       prometheus.Counter
	newer        prometheus.Counter
	errors       prometheus.Counter
	commitErrors prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, name string) (*metrics, error) {
	labels := prometheus.Labels{"consumer": name}
	m := &metrics{
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "changefeed_consumer_handled_total", ConstLabels: labels,
			Help: "Events applied, by type.",
		}, []string{"type"}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "changefeed_consumer_duplicates_total", ConstLabels: labels,
			Help: "Events skipped because the inbox shows them processed (redeliveries).",
		}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "changefeed_consumer_skipped_total", ConstLabels: labels,
			Help: "Events not handled, by reason: unknown_type (no handler) or origin (an ignored origin tag).",
		}, []string{"reason"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "changefeed_consumer_retries_total", ConstLabels: labels,
			Help: "Handler attempts after a failure.",
		}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "changefeed_consumer_dead_letters_total", ConstLabels: labels,
			Help: "Events sent to the dead-letter topic, by source topic.",
		}, []string{"topic"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "changefeed_consumer_lag", ConstLabels: labels,
			Help: "Events in a partition after the last one this consumer committed.",
		}, []string{"topic", "partition"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "changefeed_event_e2e_latency_seconds", ConstLabels: labels,
			Help:    "Time from an event's occurred_at to the commit of its handler's transaction.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 20),
		}),
		upcast: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "changefeed_consumer_upcast_total", ConstLabels: labels,
			Help: "Events of an older schema version brought up to the handler's.",
		}),
		newer: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "changefeed_consumer_newer_version_total", ConstLabels: labels,
			Help: "Events of a newer schema version than the handler's, handled as they are.",
		}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "changefeed_consumer_db_errors_total", ConstLabels: labels,
			Help: "Transactions that failed in the database (not in a handler) and were retried.",
		}),
		commitErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "changefeed_consumer_commit_errors_total", ConstLabels: labels,
			Help: "Offset commits that failed; their events are delivered again.",
		}),
	}
	for _, c := range []prometheus.Collector{m.handled, m.duplicates, m.skipped, m.retries, m.deadLetters, m.lag, m.latency, m.upcast, m.newer, m.errors, m.commitErrors} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
