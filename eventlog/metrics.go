package eventlog

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

type logMetrics struct {
	reg        prometheus.Registerer
	batchSize  prometheus.Histogram
	commitSecs prometheus.Histogram
	appended   prometheus.Counter
	collectors []prometheus.Collector
}

func newLogMetrics(reg prometheus.Registerer, l *Log) *logMetrics {
	m := &logMetrics{
		reg: reg,
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "securevision_eventlog_batch_records",
			Help:    "Records per group commit (one Pebble batch, one fsync).",
			Buckets: prometheus.ExponentialBuckets(1, 4, 9),
		}),
		commitSecs: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "securevision_eventlog_commit_seconds",
			Help:    "Group commit latency from batch build to durable, fsync included.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		appended: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "securevision_eventlog_appended_records_total",
			Help: "Records durably appended.",
		}),
	}
	m.collectors = []prometheus.Collector{
		m.batchSize, m.commitSecs, m.appended,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "securevision_eventlog_first_id",
			Help: "Low-water id: no record below it is retained.",
		}, func() float64 { return float64(l.low.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "securevision_eventlog_last_id",
			Help: "Newest durable record id.",
		}, func() float64 { return float64(l.last.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "securevision_eventlog_write_failed",
			Help: "1 when a write failed and the log refuses appends (sticky error).",
		}, func() float64 {
			if l.Err() != nil {
				return 1
			}
			return 0
		}),
		&pebbleCollector{l: l},
	}
	if reg != nil {
		for _, c := range m.collectors {
			reg.MustRegister(c)
		}
	}
	return m
}

func (m *logMetrics) unregister() {
	if m.reg == nil {
		return
	}
	for _, c := range m.collectors {
		m.reg.Unregister(c)
	}
}

func (m *logMetrics) observeCommit(p *pending, d time.Duration) {
	m.batchSize.Observe(float64(len(p.entries)))
	m.commitSecs.Observe(d.Seconds())
	m.appended.Add(float64(len(p.entries)))
}

// pebbleCollector exports Pebble's own figures at scrape time.
type pebbleCollector struct{ l *Log }

var (
	descDisk        = prometheus.NewDesc("securevision_pebble_disk_usage_bytes", "Disk space used by the Pebble store.", nil, nil)
	descCompactions = prometheus.NewDesc("securevision_pebble_compactions_total", "Compactions completed by Pebble.", nil, nil)
	descCompactDebt = prometheus.NewDesc("securevision_pebble_compaction_debt_bytes", "Estimated bytes Pebble still has to compact.", nil, nil)
	descCompactRun  = prometheus.NewDesc("securevision_pebble_compactions_in_progress", "Compactions Pebble is running now.", nil, nil)
	descFlushes     = prometheus.NewDesc("securevision_pebble_flushes_total", "Memtable flushes.", nil, nil)
	descReadAmp     = prometheus.NewDesc("securevision_pebble_read_amplification", "Pebble read amplification.", nil, nil)
	descWALBytes    = prometheus.NewDesc("securevision_pebble_wal_bytes_written_total", "Bytes written to the WAL.", nil, nil)
	descFsync       = prometheus.NewDesc("securevision_pebble_wal_fsync_seconds", "WAL fsync latency as measured by Pebble.", nil, nil)
)

func (c *pebbleCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDisk, descCompactions, descCompactDebt, descCompactRun, descFlushes, descReadAmp, descWALBytes, descFsync} {
		ch <- d
	}
}

func (c *pebbleCollector) Collect(ch chan<- prometheus.Metric) {
	// Holding mu shared keeps Close from closing Pebble under us.
	c.l.mu.RLock()
	defer c.l.mu.RUnlock()
	if c.l.mu.closed {
		return
	}
	pm := c.l.db.Metrics()
	ch <- prometheus.MustNewConstMetric(descDisk, prometheus.GaugeValue, float64(pm.DiskSpaceUsage()))
	ch <- prometheus.MustNewConstMetric(descCompactions, prometheus.CounterValue, float64(pm.Compact.Count))
	ch <- prometheus.MustNewConstMetric(descCompactDebt, prometheus.GaugeValue, float64(pm.Compact.EstimatedDebt))
	ch <- prometheus.MustNewConstMetric(descCompactRun, prometheus.GaugeValue, float64(pm.Compact.NumInProgress))
	ch <- prometheus.MustNewConstMetric(descFlushes, prometheus.CounterValue, float64(pm.Flush.Count))
	ch <- prometheus.MustNewConstMetric(descReadAmp, prometheus.GaugeValue, float64(pm.ReadAmp()))
	ch <- prometheus.MustNewConstMetric(descWALBytes, prometheus.CounterValue, float64(pm.WAL.BytesWritten))
	if h := pm.LogWriter.FsyncLatency; h != nil {
		// Pebble's histogram is unnamed and in nanoseconds: re-emit it
		// under our name in seconds.
		var d dto.Metric
		if err := h.Write(&d); err == nil && d.Histogram != nil {
			buckets := make(map[float64]uint64, len(d.Histogram.Bucket))
			for _, b := range d.Histogram.Bucket {
				buckets[b.GetUpperBound()/1e9] = b.GetCumulativeCount()
			}
			ch <- prometheus.MustNewConstHistogram(descFsync, d.Histogram.GetSampleCount(), d.Histogram.GetSampleSum()/1e9, buckets)
		}
	}
}
