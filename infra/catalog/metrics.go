package catalog

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// RegisterMetrics adds the catalog's gauges to reg, read from the index
// when scraped: how many assets there are, and how many carry a quality
// warning (a rendition under the qa stage's SSIM floor), which an alert
// watches rise.
func (c *Catalog) RegisterMetrics(reg prometheus.Registerer) { reg.MustRegister(c.gauges()...) }

// RegisterMetrics registers the names the catalog exports on reg, with no
// catalog behind them: for what reads the names (the dashboard's and the
// alerts' checks).
func RegisterMetrics(reg prometheus.Registerer) { reg.MustRegister((*Catalog)(nil).gauges()...) }

func (c *Catalog) gauges() []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "segflow_catalog_assets",
			Help: "Assets in the catalog."}, c.counter(`SELECT COUNT(*) FROM assets`)),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "segflow_catalog_assets_quality_warning",
			Help: "Assets with a rendition whose mean SSIM is under the qa stage's floor."},
			c.counter(`SELECT COUNT(*) FROM assets WHERE warning <> ''`)),
	}
}

// counter returns a function reading a COUNT(*) query, -1 when the
// catalog does not answer (a scrape never waits long on it).
func (c *Catalog) counter(query string) func() float64 {
	return func() float64 {
		if c == nil {
			return -1
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		var n int64
		if err := c.db.QueryRowContext(ctx, query).Scan(&n); err != nil {
			return -1
		}
		return float64(n)
	}
}
