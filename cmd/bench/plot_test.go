package main

import (
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gonum.org/v1/plot/plotutil"
)

// The plots' pixel size, from their size in inches and their resolution.
const plotWidthPx, plotHeightPx = 960, 540

// syntheticPoints are runs like a sweep's: throughput that levels off and
// latency that grows with the clients.
func syntheticPoints() []throughputPoint {
	var pts []throughputPoint
	for _, s := range []struct {
		name  string
		scale float64
	}{{"durable, 0 keys", 1}, {"UNSAFE no fsync, 0 keys", 1.6}} {
		for _, c := range []int{1, 2, 5, 10, 20, 50} {
			base := time.Duration(200+20*c) * time.Microsecond
			pts = append(pts, throughputPoint{
				series: s.name, clients: c, opsPerSec: s.scale * 30_000 * float64(c) / float64(c+8), rawPerSec: 4000,
				latency: []time.Duration{base, 2 * base, 5 * base, 20 * base},
			})
		}
	}
	// A series measured at one count only, as the larger stores are.
	return append(pts, throughputPoint{series: "durable, 1000000 keys", clients: 50, opsPerSec: 25_000, rawPerSec: 4100,
		latency: []time.Duration{2 * time.Millisecond, 3 * time.Millisecond, 5 * time.Millisecond, 12 * time.Millisecond}})
}

// decodePNG reads path as a PNG and checks the plots' size.
func decodePNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if b := img.Bounds(); b.Dx() != plotWidthPx || b.Dy() != plotHeightPx {
		t.Fatalf("%s is %dx%d pixels, want %dx%d", path, b.Dx(), b.Dy(), plotWidthPx, plotHeightPx)
	}
	return img
}

// pixelsOf counts the pixels of img drawn in c: c itself, or c blended by
// anti-aliasing with the white background at 40% or more. A line drawn in
// c leaves hundreds; other colours, the black text and the grey grid none.
func pixelsOf(img image.Image, c color.Color) int {
	cr, cg, cb, _ := c.RGBA()
	want := [3]float64{float64(cr >> 8), float64(cg >> 8), float64(cb >> 8)}
	// The channel furthest from white tells the blend's strength best.
	k := 0
	for i := range want {
		if want[i] < want[k] {
			k = i
		}
	}
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			pr, pg, pb, _ := img.At(x, y).RGBA()
			got := [3]float64{float64(pr >> 8), float64(pg >> 8), float64(pb >> 8)}
			a := (255 - got[k]) / (255 - want[k])
			if a < 0.4 || a > 1.05 {
				continue
			}
			match := true
			for i := range want {
				if math.Abs(got[i]-(255-a*(255-want[i]))) > 12 {
					match = false
				}
			}
			if match {
				n++
			}
		}
	}
	return n
}

func TestPlotThroughputWritesDecodablePNGs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "plots") // made by the plot
	paths, err := plotThroughput(dir, syntheticPoints())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, throughputPlotFile), filepath.Join(dir, latencyPlotFile)}
	if strings.Join(paths, " ") != strings.Join(want, " ") {
		t.Fatalf("wrote %v, want %v", paths, want)
	}
	// A line across the plot leaves some 2,000 pixels of its colour; the
	// series measured at one count only, its glyph and legend entry.
	for _, c := range []struct {
		path   string
		colour int
		min    int
	}{
		{paths[0], 0, 1000}, {paths[0], 1, 1000}, {paths[0], 2, 50},
		{paths[1], 0, 1000}, {paths[1], 1, 1000}, {paths[1], 2, 1000}, {paths[1], 3, 1000},
	} {
		if n := pixelsOf(decodePNG(t, c.path), plotutil.DarkColors[c.colour]); n < c.min {
			t.Errorf("%s: %d pixels of colour %d, want >= %d", filepath.Base(c.path), n, c.colour, c.min)
		}
	}
	// No series has the next colour.
	if n := pixelsOf(decodePNG(t, paths[0]), plotutil.DarkColors[3]); n != 0 {
		t.Errorf("%s: %d pixels of colour 3, which no series has", filepath.Base(paths[0]), n)
	}
}

func TestPlotThroughputRefusesBadInput(t *testing.T) {
	zeroLatency := syntheticPoints()[:1]
	zeroLatency[0].latency = make([]time.Duration, len(plotPercentiles))
	var tooMany []throughputPoint
	for i := range plotSeriesMax + 1 {
		pt := syntheticPoints()[0]
		pt.series = strings.Repeat("s", i+1)
		tooMany = append(tooMany, pt)
	}
	noClients := syntheticPoints()[:1]
	noClients[0].clients = 0
	for _, tc := range []struct {
		name   string
		points []throughputPoint
		want   string
	}{
		{"nil", nil, "no throughput runs"},
		{"empty", []throughputPoint{}, "no throughput runs"},
		{"zero clients", noClients, "want clients >= 1"},
		{"no latency", zeroLatency, "no run has a latency"},
		{"too many series", tooMany, "at most 7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			_, err := plotThroughput(dir, tc.points)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
		})
	}
}

func TestPlotDurabilityMarksKillsAndRestarts(t *testing.T) {
	var res durabilityResult
	res.kills, res.ackedWrites = 20, 0
	at := time.Duration(0)
	for k := range 20 {
		for range 10 {
			at += 10 * time.Millisecond
			res.ackedWrites += 300
			res.timeline.acked = append(res.timeline.acked, ackedSample{at: at, n: int64(res.ackedWrites)})
		}
		res.timeline.kills = append(res.timeline.kills, at)
		at += time.Duration(50+k) * time.Millisecond // down: nothing acknowledged
		res.timeline.restarts = append(res.timeline.restarts, at)
		res.timeline.acked = append(res.timeline.acked, ackedSample{at: at, n: int64(res.ackedWrites)})
	}
	path, err := plotDurability(t.TempDir(), res)
	if err != nil {
		t.Fatal(err)
	}
	img := decodePNG(t, path)
	for _, c := range []struct {
		name string
		c    color.Color
	}{{"kill", killColour}, {"restart", restartColour}, {"acknowledged", ackedColour}} {
		if n := pixelsOf(img, c.c); n < 100 {
			t.Errorf("%d %s pixels, want the lines drawn (>= 100)", n, c.name)
		}
	}

	res.timeline.kills = nil
	path, err = plotDurability(t.TempDir(), res)
	if err != nil {
		t.Fatal(err)
	}
	if n := pixelsOf(decodePNG(t, path), killColour); n > 20 { // the legend's thumbnail only
		t.Errorf("%d kill pixels without kills", n)
	}

	if _, err := plotDurability(t.TempDir(), durabilityResult{kills: 3}); err == nil || !strings.Contains(err.Error(), "no acknowledged-write samples") {
		t.Fatalf("empty timeline: error %v, want a clear one", err)
	}
}

// The sampler keeps at most its limit however long it runs, thinning
// evenly, and its samples only go forward in time and count.
func TestSampleAckedStaysWithinItsLimit(t *testing.T) {
	var acked atomic.Int64
	stop := make(chan struct{})
	got := make(chan []ackedSample)
	go func() { got <- sampleAcked(&acked, time.Now(), stop, time.Millisecond, 16) }()
	deadline := time.Now().Add(150 * time.Millisecond)
	for time.Now().Before(deadline) {
		acked.Add(1)
		time.Sleep(100 * time.Microsecond)
	}
	close(stop)
	s := <-got
	if len(s) < 4 || len(s) > 16 {
		t.Fatalf("%d samples over 150 ms at 1 ms with at most 16 kept, want 4..16", len(s))
	}
	for i := 1; i < len(s); i++ {
		if s[i].at < s[i-1].at || s[i].n < s[i-1].n {
			t.Fatalf("sample %d (%v, %d) before sample %d (%v, %d)", i, s[i].at, s[i].n, i-1, s[i-1].at, s[i-1].n)
		}
	}
	if last := s[len(s)-1]; last.n != acked.Load() || last.at < 140*time.Millisecond {
		t.Fatalf("last sample (%v, %d), want the count at stop (%d) after ~150 ms", last.at, last.n, acked.Load())
	}
}

func TestRunResultPointPercentiles(t *testing.T) {
	var lat latencies
	for i := 1000; i >= 1; i-- { // unsorted on purpose
		lat = append(lat, time.Duration(i)*time.Microsecond)
	}
	r := runResult{name: "x", clients: 3, ops: 1000, elapsed: time.Second, lat: lat, raw: 10}
	pt := r.point()
	want := []time.Duration{500 * time.Microsecond, 900 * time.Microsecond, 990 * time.Microsecond, 999 * time.Microsecond}
	for i := range want {
		if pt.latency[i] != want[i] || pt.latency[i] != lat.percentile(plotPercentiles[i]) {
			t.Errorf("p%v = %v, want %v (and percentile %v)", plotPercentiles[i], pt.latency[i], want[i], lat.percentile(plotPercentiles[i]))
		}
	}
	if pt.opsPerSec != 1000 || pt.clients != 3 || pt.rawPerSec != 10 {
		t.Errorf("point %+v", pt)
	}
}

func TestThousands(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		want string
	}{{0, "0"}, {500, "500"}, {2500, "2,500"}, {10_000, "10k"}, {12_500, "12,500"}, {160_287, "160,287"}, {1_000_000, "1000k"}, {1_234_567, "1,234,567"}} {
		if got := thousands(tc.v); got != tc.want {
			t.Errorf("thousands(%v) = %q, want %q", tc.v, got, tc.want)
		}
	}
}

func TestLogTicks125(t *testing.T) {
	var labels []string
	for _, tk := range logTicks125(0.3, 30) {
		if tk.Value < 0.3 || tk.Value > 30 {
			t.Errorf("tick %v outside 0.3..30", tk.Value)
		}
		if tk.Label != "" {
			labels = append(labels, tk.Label)
		}
	}
	if got, want := strings.Join(labels, " "), "0.5 1 2 5 10 20"; got != want {
		t.Errorf("labels %q, want %q", got, want)
	}
}

func TestPixelsOfCounts(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 10, 10))
	for y := range 10 {
		for x := range 10 {
			img.Set(x, y, color.White)
		}
	}
	red := color.RGBA{R: 238, G: 46, B: 47, A: 255}
	img.Set(1, 1, red)
	img.Set(2, 2, color.RGBA{R: 242, G: 150, B: 151, A: 255}) // red half on white
	img.Set(3, 3, color.RGBA{R: 245, G: 230, B: 230, A: 255}) // a faint edge: too little to count
	img.Set(4, 4, color.RGBA{R: 244, G: 125, B: 35, A: 255})  // orange
	img.Set(5, 5, color.Black)
	if n := pixelsOf(img, red); n != 2 {
		t.Fatalf("%d red pixels, want 2", n)
	}
}
