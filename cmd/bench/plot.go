package main

import (
	"errors"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// The plots' size: 8 x 4.5 inches at 120 dots per inch is 960 x 540
// pixels, wide enough for a README column and small enough as a PNG
// (about 50 KB for line plots).
const (
	plotWidth  = 8 * vg.Inch
	plotHeight = 4.5 * vg.Inch
	plotDPI    = 120
)

// plotSeriesMax bounds the series one plot draws: past it colours, dashes
// and glyphs repeat and the legend no longer tells series apart.
const plotSeriesMax = 7

// plotPercentiles are the latency percentiles the latency plot draws.
var plotPercentiles = []float64{50, 90, 99, 99.9}

// Files the plots are written to, in the --plot directory.
const (
	throughputPlotFile = "throughput-clients.png"
	latencyPlotFile    = "throughput-latency.png"
	durabilityPlotFile = "durability-acked.png"
)

// The durability plot's colours: acknowledged writes, and the markers.
var (
	ackedColour   = color.RGBA{B: 170, A: 255}
	killColour    = color.RGBA{R: 220, G: 40, B: 40, A: 255}
	restartColour = color.RGBA{G: 150, B: 60, A: 255}
)

// throughputPoint is one measured run, as the plots need it.
type throughputPoint struct {
	series    string // the store and mode, e.g. "durable, 0 keys"
	clients   int
	opsPerSec float64
	rawPerSec float64         // raw 4 KiB write+fdatasync/s, measured between the run's slices
	latency   []time.Duration // at plotPercentiles
}

func (r runResult) point() throughputPoint {
	return throughputPoint{series: r.name, clients: r.clients, opsPerSec: r.rate(), rawPerSec: r.raw,
		latency: r.lat.percentiles(plotPercentiles...)}
}

// plotThroughput writes, into dir, throughput against clients and the
// latency percentiles against clients, one line per series, and returns the
// paths written.
func plotThroughput(dir string, points []throughputPoint) ([]string, error) {
	if len(points) == 0 {
		return nil, errors.New("plot: no throughput runs to plot")
	}
	var series []string
	for _, pt := range points {
		if pt.clients < 1 || !(pt.opsPerSec >= 0) || math.IsInf(pt.opsPerSec, 0) || len(pt.latency) != len(plotPercentiles) {
			return nil, fmt.Errorf("plot: run %q with %d clients: %.1f ops/s and %d percentiles, want clients >= 1, finite ops/s >= 0 and %d percentiles",
				pt.series, pt.clients, pt.opsPerSec, len(pt.latency), len(plotPercentiles))
		}
		if !slices.Contains(series, pt.series) {
			series = append(series, pt.series)
		}
	}
	if len(series) > plotSeriesMax {
		return nil, fmt.Errorf("plot: %d series, at most %d can be told apart", len(series), plotSeriesMax)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	bySeries := func(s string) []throughputPoint {
		var out []throughputPoint
		for _, pt := range points {
			if pt.series == s {
				out = append(out, pt)
			}
		}
		slices.SortFunc(out, func(a, b throughputPoint) int { return a.clients - b.clients })
		return out
	}

	// Throughput against clients, with the disk's raw sync rate as the
	// line that group commit is judged against.
	p := newPlot("dkv: Set throughput against concurrent clients (durable, and without fsync)", "concurrent clients", "acknowledged Sets per second (ops/s)")
	clientsAxis(p, points)
	var rawSum, yMax float64
	for i, s := range series {
		pts := bySeries(s)
		xys := make(plotter.XYs, len(pts))
		for j, pt := range pts {
			xys[j] = plotter.XY{X: float64(pt.clients), Y: pt.opsPerSec}
			yMax = max(yMax, pt.opsPerSec)
		}
		line, scatter, err := plotter.NewLinePoints(xys)
		if err != nil {
			return nil, fmt.Errorf("plot %q: %w", s, err)
		}
		line.Color = plotutil.DarkColors[i%len(plotutil.DarkColors)]
		line.Width = vg.Points(1.5)
		scatter.Color = line.Color
		scatter.Shape = plotutil.Shape(i)
		scatter.Radius = vg.Points(3.5)
		p.Add(line, scatter)
		p.Legend.Add(s, line, scatter)
	}
	for _, pt := range points {
		rawSum += pt.rawPerSec
	}
	if raw := rawSum / float64(len(points)); raw > 0 {
		ref := &horizontal{y: raw, style: draw.LineStyle{Color: color.Gray{Y: 110}, Width: vg.Points(1), Dashes: plotutil.Dashes(1)}}
		p.Add(ref)
		p.Legend.Add(fmt.Sprintf("raw 4 KiB write+fdatasync/s of the disk (mean %.0f)", raw), ref)
		yMax = max(yMax, raw)
	}
	p.Y.Min, p.Y.Max = 0, max(yMax*1.3, 1)
	p.Y.Tick.Marker = plot.TickerFunc(thousandsTicks)
	var paths []string
	path := filepath.Join(dir, throughputPlotFile)
	if err := savePNG(p, path); err != nil {
		return nil, err
	}
	paths = append(paths, path)

	// Latency percentiles: colour is the percentile, dash and glyph the series.
	p = newPlot("dkv: Set latency percentiles against concurrent clients", "concurrent clients", "latency (ms, log scale)")
	clientsAxis(p, points)
	lo, hi := math.Inf(1), math.Inf(-1)
	for i, s := range series {
		pts := bySeries(s)
		for q := range plotPercentiles {
			var xys plotter.XYs
			for _, pt := range pts {
				v := float64(pt.latency[q]) / float64(time.Millisecond)
				if v <= 0 {
					continue // a run without a single acknowledged Set has no latency
				}
				xys = append(xys, plotter.XY{X: float64(pt.clients), Y: v})
				lo, hi = min(lo, v), max(hi, v)
			}
			if len(xys) == 0 {
				continue
			}
			line, scatter, err := plotter.NewLinePoints(xys)
			if err != nil {
				return nil, fmt.Errorf("plot %q: %w", s, err)
			}
			line.Color = plotutil.DarkColors[q%len(plotutil.DarkColors)]
			line.Width = vg.Points(1.2)
			line.Dashes = plotutil.Dashes(i)
			scatter.Color = line.Color
			scatter.Shape = plotutil.Shape(i)
			scatter.Radius = vg.Points(3)
			p.Add(line, scatter)
		}
	}
	if math.IsInf(lo, 0) {
		return nil, errors.New("plot: no run has a latency to plot (no Set was acknowledged)")
	}
	for q, pct := range plotPercentiles {
		p.Legend.Add("p"+strconv.FormatFloat(pct, 'f', -1, 64), &plotter.Line{LineStyle: draw.LineStyle{Color: plotutil.DarkColors[q%len(plotutil.DarkColors)], Width: vg.Points(2)}})
	}
	for i, s := range series {
		l := &plotter.Line{LineStyle: draw.LineStyle{Color: color.Black, Width: vg.Points(1), Dashes: plotutil.Dashes(i)}}
		g := &plotter.Scatter{GlyphStyle: draw.GlyphStyle{Color: color.Black, Shape: plotutil.Shape(i), Radius: vg.Points(3)}}
		p.Legend.Add(s, l, g)
	}
	p.Y.Scale = plot.LogScale{}
	p.Y.Min, p.Y.Max = lo/1.5, hi*3 // headroom above for the legend
	p.Y.Tick.Marker = plot.TickerFunc(logTicks125)
	path = filepath.Join(dir, latencyPlotFile)
	if err := savePNG(p, path); err != nil {
		return nil, err
	}
	return append(paths, path), nil
}

// plotDurability writes, into dir, the acknowledged writes over the
// durability benchmark's time with a vertical line at each SIGKILL and at
// each restart, and returns the path written.
func plotDurability(dir string, res durabilityResult) (string, error) {
	tl := res.timeline
	if len(tl.acked) == 0 {
		return "", errors.New("plot: no acknowledged-write samples to plot")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	p := newPlot(fmt.Sprintf("dkv durability: %d SIGKILLs, %s acknowledged writes, %d lost, %d partial bulk sets",
		res.kills, thousands(float64(res.ackedWrites)), res.lost, res.partial),
		"time since the writers started (s)", "acknowledged writes (cumulative)")
	xys := make(plotter.XYs, len(tl.acked))
	xMax := 0.0
	for i, s := range tl.acked {
		xys[i] = plotter.XY{X: s.at.Seconds(), Y: float64(s.n)}
		xMax = max(xMax, s.at.Seconds())
	}
	seconds := func(ds []time.Duration) []float64 {
		out := make([]float64, len(ds))
		for i, d := range ds {
			out[i] = d.Seconds()
			xMax = max(xMax, out[i])
		}
		return out
	}
	kills := &verticals{xs: seconds(tl.kills), style: draw.LineStyle{Color: killColour, Width: vg.Points(0.6)}}
	restarts := &verticals{xs: seconds(tl.restarts), style: draw.LineStyle{Color: restartColour, Width: vg.Points(0.6), Dashes: plotutil.Dashes(2)}}
	line, err := plotter.NewLine(xys)
	if err != nil {
		return "", err
	}
	line.Color = ackedColour
	line.Width = vg.Points(1.5)
	p.Add(kills, restarts, line)
	p.Legend.Add("acknowledged writes", line)
	p.Legend.Add("SIGKILL", kills)
	p.Legend.Add("restarted (ready)", restarts)
	p.X.Min, p.X.Max = 0, max(xMax, 1e-3)
	p.Y.Min = 0
	p.Y.Max = max(p.Y.Max*1.15, 1)
	p.Y.Tick.Marker = plot.TickerFunc(thousandsTicks)
	path := filepath.Join(dir, durabilityPlotFile)
	return path, savePNG(p, path)
}

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = vg.Points(13)
	p.Title.Padding = vg.Points(8)
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.XOffs, p.Legend.YOffs = vg.Points(8), vg.Points(-6)
	p.Legend.TextStyle.Font.Size = vg.Points(10)
	p.Legend.Padding = vg.Points(3)
	p.Add(plotter.NewGrid())
	return p
}

// clientsAxis makes X a log scale of client counts (from 1 to 50, say)
// ticked at the counts measured.
func clientsAxis(p *plot.Plot, points []throughputPoint) {
	var counts []int
	for _, pt := range points {
		if !slices.Contains(counts, pt.clients) {
			counts = append(counts, pt.clients)
		}
	}
	slices.Sort(counts)
	ticks := make(plot.ConstantTicks, len(counts))
	for i, c := range counts {
		ticks[i] = plot.Tick{Value: float64(c), Label: strconv.Itoa(c)}
	}
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = ticks
	p.X.Min, p.X.Max = float64(counts[0])/1.3, float64(counts[len(counts)-1])*1.3
}

// thousandsTicks are the default ticks labelled 0, 10k, 20k, ...
func thousandsTicks(lo, hi float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(lo, hi)
	for i := range ticks {
		if ticks[i].Label != "" {
			ticks[i].Label = thousands(ticks[i].Value)
		}
	}
	return ticks
}

// thousands writes v with a k suffix past 10,000 and commas below it.
func thousands(v float64) string {
	switch {
	case math.Abs(v) >= 10_000 && math.Mod(v, 1000) == 0:
		return strconv.FormatFloat(v/1000, 'f', -1, 64) + "k"
	case math.Abs(v) >= 1000:
		s := strconv.FormatFloat(math.Round(v), 'f', 0, 64)
		out := ""
		for len(s) > 3 {
			out = "," + s[len(s)-3:] + out
			s = s[:len(s)-3]
		}
		return s + out
	default:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
}

// logTicks125 ticks a log axis at 1, 2 and 5 of every decade, labelled,
// which reads closer than plot.LogTicks' powers of ten alone.
func logTicks125(lo, hi float64) []plot.Tick {
	var ticks []plot.Tick
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		for m := 1; m <= 9; m++ {
			v := float64(m) * math.Pow(10, e)
			if v < lo || v > hi {
				continue
			}
			t := plot.Tick{Value: v}
			if m == 1 || m == 2 || m == 5 {
				t.Label = strconv.FormatFloat(v, 'g', 3, 64)
			}
			ticks = append(ticks, t)
		}
	}
	return ticks
}

// horizontal is a reference line across the whole plot at y.
type horizontal struct {
	y     float64
	style draw.LineStyle
}

func (h *horizontal) Plot(c draw.Canvas, p *plot.Plot) {
	_, trY := p.Transforms(&c)
	y := trY(h.y)
	if c.ContainsY(y) {
		c.StrokeLine2(h.style, c.Min.X, y, c.Max.X, y)
	}
}

func (h *horizontal) Thumbnail(c *draw.Canvas) {
	y := c.Center().Y
	c.StrokeLine2(h.style, c.Min.X, y, c.Max.X, y)
}

// verticals are event markers: a line the plot's full height at each x.
type verticals struct {
	xs    []float64
	style draw.LineStyle
}

func (v *verticals) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	for _, x := range v.xs {
		if px := trX(x); c.ContainsX(px) {
			c.StrokeLine2(v.style, px, c.Min.Y, px, c.Max.Y)
		}
	}
}

func (v *verticals) Thumbnail(c *draw.Canvas) {
	x := c.Center().X
	c.StrokeLine2(v.style, x, c.Min.Y, x, c.Max.Y)
}

// savePNG draws p at the plots' size and writes it to path as a PNG.
func savePNG(p *plot.Plot, path string) error {
	c := vgimg.NewWith(vgimg.UseWH(plotWidth, plotHeight), vgimg.UseDPI(plotDPI))
	p.Draw(draw.New(c))
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return f.Close()
}
