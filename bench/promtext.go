package bench

// Reading relayd's /metrics (the Prometheus text format) with
// prometheus/common's parser: counters and gauges summed by name and
// label values, and quantiles of a histogram's increase between scrapes.

import (
	"cmp"
	"io"
	"math"
	"slices"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// promSample is one scrape: its metric families by name.
type promSample map[string]*dto.MetricFamily

// parseProm reads the text exposition format.
func parseProm(r io.Reader) (promSample, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(r)
}

// hasLabels reports whether m carries every label = value of kv (pairs).
func hasLabels(m *dto.Metric, kv []string) bool {
next:
	for i := 0; i+1 < len(kv); i += 2 {
		for _, l := range m.GetLabel() {
			if l.GetName() == kv[i] && l.GetValue() == kv[i+1] {
				continue next
			}
		}
		return false
	}
	return true
}

// sum adds the values of name's series (counters, gauges, untyped) whose
// labels include kv (pairs of label, value); NaN when there is none.
func (p promSample) sum(name string, kv ...string) float64 {
	total, found := 0.0, false
	for _, m := range p[name].GetMetric() {
		if !hasLabels(m, kv) {
			continue
		}
		switch {
		case m.Counter != nil:
			total += m.GetCounter().GetValue()
		case m.Gauge != nil:
			total += m.GetGauge().GetValue()
		case m.Untyped != nil:
			total += m.GetUntyped().GetValue()
		default:
			continue
		}
		found = true
	}
	if !found {
		return math.NaN()
	}
	return total
}

// buckets returns the cumulative counts of histogram name by upper bound,
// added over its series (histogram_quantile of a sum by le).
func (p promSample) buckets(name string) map[float64]float64 {
	out := map[float64]float64{}
	for _, m := range p[name].GetMetric() {
		for _, b := range m.GetHistogram().GetBucket() {
			n := float64(b.GetCumulativeCount())
			if b.CumulativeCountFloat != nil {
				n = b.GetCumulativeCountFloat()
			}
			out[b.GetUpperBound()] += n
		}
	}
	return out
}

// histQuantile estimates the q-quantile of a Prometheus histogram's
// increase between two scrapes (linear within a bucket, like
// histogram_quantile); NaN when empty.
func histQuantile(a, b promSample, name string, q float64) float64 {
	type bucket struct{ le, n float64 }
	before := a.buckets(name)
	var bs []bucket
	for le, n := range b.buckets(name) {
		bs = append(bs, bucket{le, n - before[le]})
	}
	slices.SortFunc(bs, func(x, y bucket) int { return cmp.Compare(x.le, y.le) })
	if len(bs) == 0 || bs[len(bs)-1].n <= 0 {
		return math.NaN()
	}
	rank := q * bs[len(bs)-1].n
	prevLE, prevN := 0.0, 0.0
	for _, bk := range bs {
		if bk.n >= rank {
			if math.IsInf(bk.le, 1) {
				return prevLE
			}
			if bk.n == prevN {
				return bk.le
			}
			return prevLE + (bk.le-prevLE)*(rank-prevN)/(bk.n-prevN)
		}
		prevLE, prevN = bk.le, bk.n
	}
	return prevLE
}
