package scheduler

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the scheduler's Prometheus metrics. Register them on the
// process's own registry (no global registry is used).
type Metrics struct {
	decisions   *prometheus.CounterVec
	migrations  *prometheus.CounterVec
	blackout    prometheus.Histogram
	temp        prometheus.Gauge
	pred        prometheus.Gauge
	slope       prometheus.Gauge
	factor      prometheus.Gauge
	constrained prometheus.Gauge
	window      prometheus.Gauge
	actors      *prometheus.GaugeVec
	tickErrors  prometheus.Counter
}

// NewMetrics creates the metrics and registers them on reg (nil: not
// registered, still usable).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wio_scheduler_decisions_total", Help: "Placement decisions by action and reason.",
		}, []string{"action", "reason"}),
		migrations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wio_scheduler_migrations_total", Help: "Migrations carried out, by direction and result.",
		}, []string{"from", "to", "result"}),
		blackout: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "wio_scheduler_migration_blackout_seconds", Help: "Blackout of each migration (drain to first request served on the new side).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		temp:        prometheus.NewGauge(prometheus.GaugeOpts{Name: "wio_scheduler_device_temp_celsius", Help: "Smoothed device temperature."}),
		pred:        prometheus.NewGauge(prometheus.GaugeOpts{Name: "wio_scheduler_device_temp_predicted_celsius", Help: "Device temperature predicted at the look-ahead horizon."}),
		slope:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "wio_scheduler_device_temp_slope_celsius_per_second", Help: "Smoothed device temperature slope."}),
		factor:      prometheus.NewGauge(prometheus.GaugeOpts{Name: "wio_scheduler_device_throttle_factor", Help: "Device throughput factor (1 = not throttled)."}),
		constrained: prometheus.NewGauge(prometheus.GaugeOpts{Name: "wio_scheduler_host_constrained", Help: "1 while the host is at its power cap or slowed down."}),
		window:      prometheus.NewGauge(prometheus.GaugeOpts{Name: "wio_scheduler_window_migrations", Help: "Migrations inside the current budget window."}),
		actors: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wio_scheduler_actors", Help: "Actors placed on each side.",
		}, []string{"side"}),
		tickErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "wio_scheduler_tick_errors_total", Help: "Ticks that failed (sampling or moving).",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.decisions, m.migrations, m.blackout, m.temp, m.pred, m.slope, m.factor,
			m.constrained, m.window, m.actors, m.tickErrors)
	}
	return m
}

func (m *Metrics) observeView(v View, actors []Actor) {
	if m == nil {
		return
	}
	m.temp.Set(v.TempC)
	m.pred.Set(v.PredC)
	m.slope.Set(v.SlopeCps)
	m.factor.Set(v.Factor)
	b := 0.0
	if v.HostConstrained {
		b = 1
	}
	m.constrained.Set(b)
	m.window.Set(float64(v.WindowMoves))
	var n [2]float64
	for _, a := range actors {
		if a.Side <= Device {
			n[a.Side]++
		}
	}
	m.actors.WithLabelValues(Host.String()).Set(n[Host])
	m.actors.WithLabelValues(Device.String()).Set(n[Device])
}

func (m *Metrics) observeDecision(d Decision) {
	if m != nil {
		m.decisions.WithLabelValues(d.Action.String(), string(d.Reason)).Inc()
	}
}

func (m *Metrics) observeMove(d Decision, blackoutS float64, err error) {
	if m == nil {
		return
	}
	res := "ok"
	if err != nil {
		res = "error"
	} else {
		m.blackout.Observe(blackoutS)
	}
	m.migrations.WithLabelValues(d.From.String(), d.To.String(), res).Inc()
}

func (m *Metrics) observeTickError() {
	if m != nil {
		m.tickErrors.Inc()
	}
}
