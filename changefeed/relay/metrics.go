package relay

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the relay's Prometheus series. Every series carries the relay
// group's name as the "relay" label.
type metrics struct {
	backlog    prometheus.Gauge
	oldestAge  prometheus.Gauge
	published  *prometheus.CounterVec
	batchTime  prometheus.Histogram
	readTime   prometheus.Histogram
	commitTime prometheus.Histogram
	batchSize  prometheus.Histogram
	delay      prometheus.Histogram
	errors     *prometheus.CounterVec
	leader     prometheus.Gauge
	gaps       prometheus.Gauge
	cleaned    prometheus.Counter
	duplicates prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, name string) (*metrics, error) {
	labels := prometheus.Labels{"relay": name}
	m := &metrics{
		backlog: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "changefeed_outbox_backlog", ConstLabels: labels,
			Help: "Outbox rows not yet published (counted up to 1,000,000).",
		}),
		oldestAge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "changefeed_outbox_oldest_unsent_age_seconds", ConstLabels: labels,
			Help: "Age of the oldest outbox row not yet published; 0 when none is waiting.",
		}),
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "changefeed_relay_published_total", ConstLabels: labels,
			Help: "Events the relay published, by topic.",
		}, []string{"topic"}),
		batchTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "changefeed_relay_publish_duration_seconds", ConstLabels: labels,
			Help:    "Time to publish one batch to the broker, acknowledged by all in-sync replicas.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		readTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "changefeed_relay_read_duration_seconds", ConstLabels: labels,
			Help:    "Time to read one batch from the outbox, gaps included.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		commitTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "changefeed_relay_commit_duration_seconds", ConstLabels: labels,
			Help:    "Time to record one batch's position (and renew the lease).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "changefeed_relay_batch_events", ConstLabels: labels,
			Help:    "Events per published batch.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 9),
		}),
		delay: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "changefeed_relay_event_delay_seconds", ConstLabels: labels,
			Help:    "Time from an event's occurred_at to its publication.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 20),
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "changefeed_relay_errors_total", ConstLabels: labels,
			Help: "Relay errors by stage: read, publish, commit, lease, cleanup.",
		}, []string{"stage"}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "changefeed_relay_leader", ConstLabels: labels,
			Help: "1 while this instance holds the relay group's lease.",
		}),
		gaps: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "changefeed_relay_open_gaps", ConstLabels: labels,
			Help: "Runs of sequence numbers below the position that may still commit (transactions in flight).",
		}),
		cleaned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "changefeed_outbox_cleaned_total", ConstLabels: labels,
			Help: "Published outbox rows deleted after the retention.",
		}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "changefeed_relay_republished_total", ConstLabels: labels,
			Help: "Events published again because a publish attempt failed part-way.",
		}),
	}
	for _, c := range []prometheus.Collector{m.backlog, m.oldestAge, m.published, m.batchTime, m.readTime, m.commitTime, m.batchSize, m.delay, m.errors, m.leader, m.gaps, m.cleaned, m.duplicates} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
