package bench

// A reader of the Prometheus text format, enough for relayd's /metrics:
// samples with labels, summed by name and optional label values.

import (
	"bufio"
	"cmp"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

type promSeries struct {
	name   string
	labels map[string]string
	value  float64
}

// promSample is one scrape.
type promSample []promSeries

// parseProm reads the text exposition format. Lines it does not understand
// are skipped.
func parseProm(r io.Reader) promSample {
	var out promSample
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		s := promSeries{}
		rest := line
		if i := strings.IndexAny(line, "{ "); i >= 0 && line[i] == '{' {
			s.name = line[:i]
			j := strings.LastIndexByte(line, '}')
			if j < i {
				continue
			}
			s.labels = parseLabels(line[i+1 : j])
			rest = line[j+1:]
		} else if i >= 0 {
			s.name, rest = line[:i], line[i:]
		} else {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		s.value = v
		out = append(out, s)
	}
	return out
}

// parseLabels reads `a="x",b="y"` (escapes \" \\ \n).
func parseLabels(s string) map[string]string {
	m := map[string]string{}
	for len(s) > 0 {
		eq := strings.IndexByte(s, '=')
		if eq < 0 || eq+1 >= len(s) || s[eq+1] != '"' {
			return m
		}
		key := strings.TrimSpace(s[:eq])
		var b strings.Builder
		i := eq + 2
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
				switch s[i] {
				case 'n':
					b.WriteByte('\n')
				default:
					b.WriteByte(s[i])
				}
				continue
			}
			b.WriteByte(s[i])
		}
		m[key] = b.String()
		s = strings.TrimLeft(s[min(i+1, len(s)):], ", ")
	}
	return m
}

// sum adds the series of name whose labels include kv (pairs of label,
// value); NaN when there is none.
func (p promSample) sum(name string, kv ...string) float64 {
	total, found := 0.0, false
next:
	for _, s := range p {
		if s.name != name {
			continue
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if s.labels[kv[i]] != kv[i+1] {
				continue next
			}
		}
		total += s.value
		found = true
	}
	if !found {
		return math.NaN()
	}
	return total
}

// histQuantile estimates the q-quantile of a Prometheus histogram's
// increase between two scrapes (linear within a bucket, like
// histogram_quantile); NaN when empty.
func histQuantile(a, b promSample, name string, q float64) float64 {
	type bucket struct{ le, n float64 }
	var bs []bucket
	for _, s := range b.prom(name + "_bucket") {
		le, err := strconv.ParseFloat(s.labels["le"], 64)
		if s.labels["le"] == "+Inf" {
			le, err = math.Inf(1), nil
		}
		if err != nil {
			continue
		}
		bs = append(bs, bucket{le, s.value - a.sum(name+"_bucket", "le", s.labels["le"])})
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

// prom returns the series of name.
func (p promSample) prom(name string) []promSeries {
	var out []promSeries
	for _, s := range p {
		if s.name == name {
			out = append(out, s)
		}
	}
	return out
}
