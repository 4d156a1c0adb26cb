// Package promtext writes OpenTelemetry SDK metrics in the Prometheus text
// exposition format (version 0.0.4), so that a service can serve /metrics
// from an sdk/metric ManualReader without the Prometheus client library.
//
// Names follow the OpenTelemetry-to-Prometheus rules: characters other
// than [a-zA-Z0-9_:] become '_', the unit "s" adds "_seconds" and "By"
// adds "_bytes", and monotonic sums end in "_total". Attributes become
// labels; resource attributes are left out.
package promtext

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// ContentType is the media type of what [Write] writes.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// family is one metric in the exposition.
type family struct {
	name, help, typ string
	lines           []string
}

// Write writes rm to w. Metrics of the same name from several scopes are
// merged into one family.
func Write(w io.Writer, rm *metricdata.ResourceMetrics) error {
	fams := map[string]*family{}
	var order []string
	add := func(name, help, typ string, lines ...string) {
		f := fams[name]
		if f == nil {
			f = &family{name: name, help: help, typ: typ}
			fams[name] = f
			order = append(order, name)
		}
		f.lines = append(f.lines, lines...)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			base := Name(m.Name, m.Unit)
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				sortPoints(d.DataPoints, func(p metricdata.DataPoint[int64]) attribute.Set { return p.Attributes })
				name, typ := sumName(base, d.IsMonotonic)
				for _, dp := range d.DataPoints {
					add(name, m.Description, typ, sample(name, dp.Attributes, "", strconv.FormatInt(dp.Value, 10)))
				}
			case metricdata.Sum[float64]:
				sortPoints(d.DataPoints, func(p metricdata.DataPoint[float64]) attribute.Set { return p.Attributes })
				name, typ := sumName(base, d.IsMonotonic)
				for _, dp := range d.DataPoints {
					add(name, m.Description, typ, sample(name, dp.Attributes, "", float(dp.Value)))
				}
			case metricdata.Gauge[int64]:
				sortPoints(d.DataPoints, func(p metricdata.DataPoint[int64]) attribute.Set { return p.Attributes })
				for _, dp := range d.DataPoints {
					add(base, m.Description, "gauge", sample(base, dp.Attributes, "", strconv.FormatInt(dp.Value, 10)))
				}
			case metricdata.Gauge[float64]:
				sortPoints(d.DataPoints, func(p metricdata.DataPoint[float64]) attribute.Set { return p.Attributes })
				for _, dp := range d.DataPoints {
					add(base, m.Description, "gauge", sample(base, dp.Attributes, "", float(dp.Value)))
				}
			case metricdata.Histogram[float64]:
				sortPoints(d.DataPoints, func(p metricdata.HistogramDataPoint[float64]) attribute.Set { return p.Attributes })
				for _, dp := range d.DataPoints {
					add(base, m.Description, "histogram", histogram(base, dp.Attributes, dp.Bounds, dp.BucketCounts, float(dp.Sum), dp.Count)...)
				}
			case metricdata.Histogram[int64]:
				sortPoints(d.DataPoints, func(p metricdata.HistogramDataPoint[int64]) attribute.Set { return p.Attributes })
				for _, dp := range d.DataPoints {
					add(base, m.Description, "histogram", histogram(base, dp.Attributes, dp.Bounds, dp.BucketCounts, strconv.FormatInt(dp.Sum, 10), dp.Count)...)
				}
			}
		}
	}
	sort.Strings(order)
	bw := bufio.NewWriter(w)
	for _, name := range order {
		f := fams[name]
		if f.help != "" {
			fmt.Fprintf(bw, "# HELP %s %s\n", f.name, escapeHelp(f.help))
		}
		fmt.Fprintf(bw, "# TYPE %s %s\n", f.name, f.typ)
		for _, l := range f.lines {
			bw.WriteString(l)
			bw.WriteByte('\n')
		}
	}
	return bw.Flush()
}

// sortPoints orders data points by their attributes, so that the output
// does not change from one scrape to the next.
func sortPoints[P any](ps []P, attrs func(P) attribute.Set) {
	enc := attribute.DefaultEncoder()
	key := func(p P) string {
		s := attrs(p)
		return s.Encoded(enc)
	}
	sort.SliceStable(ps, func(i, j int) bool { return key(ps[i]) < key(ps[j]) })
}

// Name returns the Prometheus name of an instrument name and unit.
func Name(name, unit string) string {
	var b strings.Builder
	for i, r := range name {
		ok := r == '_' || r == ':' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || (i > 0 && r >= '0' && r <= '9')
		if ok {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	n := b.String()
	switch unit {
	case "s":
		n = suffix(n, "_seconds")
	case "By":
		n = suffix(n, "_bytes")
	}
	return n
}

func suffix(n, s string) string {
	if strings.HasSuffix(n, s) {
		return n
	}
	return n + s
}

func sumName(base string, monotonic bool) (string, string) {
	if monotonic {
		return suffix(base, "_total"), "counter"
	}
	return base, "gauge"
}

func histogram(name string, attrs attribute.Set, bounds []float64, counts []uint64, sum string, count uint64) []string {
	lines := make([]string, 0, len(bounds)+3)
	var cum uint64
	for i, b := range bounds {
		if i < len(counts) {
			cum += counts[i]
		}
		lines = append(lines, sample(name+"_bucket", attrs, float(b), strconv.FormatUint(cum, 10)))
	}
	lines = append(lines,
		sample(name+"_bucket", attrs, "+Inf", strconv.FormatUint(count, 10)),
		sample(name+"_sum", attrs, "", sum),
		sample(name+"_count", attrs, "", strconv.FormatUint(count, 10)))
	return lines
}

// sample formats one line; le, when set, is added as the last label.
func sample(name string, attrs attribute.Set, le, value string) string {
	var b strings.Builder
	b.WriteString(name)
	labels := make([]string, 0, attrs.Len()+1)
	for _, kv := range attrs.ToSlice() {
		labels = append(labels, Name(string(kv.Key), "")+`="`+escapeLabel(kv.Value.String())+`"`)
	}
	sort.Strings(labels)
	if le != "" {
		labels = append(labels, `le="`+le+`"`)
	}
	if len(labels) > 0 {
		b.WriteByte('{')
		b.WriteString(strings.Join(labels, ","))
		b.WriteByte('}')
	}
	b.WriteByte(' ')
	b.WriteString(value)
	return b.String()
}

func float(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

var (
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
)

func escapeLabel(s string) string { return labelEscaper.Replace(s) }
func escapeHelp(s string) string  { return helpEscaper.Replace(s) }
