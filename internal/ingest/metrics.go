package ingest

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	records       *prometheus.CounterVec
	quarantined   *prometheus.CounterVec
	commits       *prometheus.CounterVec
	fetchErrors   *prometheus.CounterVec
	commitSeconds *prometheus.HistogramVec
	lag           *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_ingest_records_total", Help: "Rows committed to ingestion tables.",
		}, []string{"stream"}),
		quarantined: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_ingest_quarantined_records_total", Help: "Records that did not decode or violated the schema, committed to quarantine tables.",
		}, []string{"stream"}),
		commits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_ingest_commits_total", Help: "Micro-batch commits.",
		}, []string{"stream"}),
		fetchErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_ingest_fetch_errors_total", Help: "Polls that returned a broker or network error.",
		}, []string{"stream"}),
		commitSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "sluice_ingest_commit_duration_seconds", Help: "Time to write and commit one micro-batch.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}, []string{"stream"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sluice_ingest_lag_records", Help: "Records produced but not yet committed, as of the last commit.",
		}, []string{"stream"}),
	}
	if reg != nil {
		reg.MustRegister(m.records, m.quarantined, m.commits, m.fetchErrors, m.commitSeconds, m.lag)
	}
	return m
}

type streamMetrics struct {
	records, quarantined, commits, fetchErrors prometheus.Counter
	commitSeconds                              prometheus.Observer
	lag                                        prometheus.Gauge
}

func (m *metrics) forStream(name string) *streamMetrics {
	return &streamMetrics{
		records:       m.records.WithLabelValues(name),
		quarantined:   m.quarantined.WithLabelValues(name),
		commits:       m.commits.WithLabelValues(name),
		fetchErrors:   m.fetchErrors.WithLabelValues(name),
		commitSeconds: m.commitSeconds.WithLabelValues(name),
		lag:           m.lag.WithLabelValues(name),
	}
}

func (m *metrics) deleteStream(name string) {
	m.records.DeleteLabelValues(name)
	m.quarantined.DeleteLabelValues(name)
	m.commits.DeleteLabelValues(name)
	m.fetchErrors.DeleteLabelValues(name)
	m.commitSeconds.DeleteLabelValues(name)
	m.lag.DeleteLabelValues(name)
}
