package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
)

// progressLineEvery is how often a phase prints a progress line when its
// writer is not a terminal: often enough that a log shows a long run is
// alive, rarely enough not to flood it.
const progressLineEvery = 10 * time.Second

// progressBarEvery is how often the bar on a terminal is redrawn.
const progressBarEvery = 200 * time.Millisecond

// progressWidthChars is the bar's width on a terminal, leaving room on an
// 80-column line for the title and the counts.
const progressWidthChars = 24

// progressSpec says what a phase counts. Progress goes to stderr only:
// stdout carries the tables, which a script may read.
type progressSpec struct {
	title string       // the phase, e.g. "populating 1000000 keys"
	total int64        // count at which the phase is done
	unit  string       // what is counted, for the lines off a terminal ("keys", "kills")
	count func() int64 // how far the phase is; called from another goroutine
	// detail, if set, adds figures to the line ("12 lost"); called from
	// another goroutine.
	detail func() string
}

// progress shows one phase's progress until finish: a bar redrawn in place
// on a terminal, a plain line every progressLineEvery elsewhere. A nil
// *progress is off.
type progress struct {
	stop chan struct{}
	done chan struct{}
	once sync.Once  // finish may be deferred and also called
	mu   sync.Mutex // serialises the bar's drawing with clear
	bar  *progressbar.ProgressBar
}

// isTerminal tells whether w is a terminal (a character device), where a
// bar redrawn with carriage returns reads well; in a file or a pipe it
// would be noise.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || f == nil {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// startProgress shows spec's progress on w (nil: nowhere) until finish.
func startProgress(w io.Writer, spec progressSpec) *progress {
	if w == nil {
		return nil
	}
	return startProgressOn(w, isTerminal(w), progressLineEvery, spec)
}

// startProgressOn is startProgress with the terminal test and the line
// interval given, so that tests can drive both ways.
func startProgressOn(w io.Writer, tty bool, lineEvery time.Duration, spec progressSpec) *progress {
	if spec.total <= 0 {
		panic(fmt.Sprintf("progress %q: total %d, want > 0", spec.title, spec.total))
	}
	p := &progress{stop: make(chan struct{}), done: make(chan struct{})}
	every := lineEvery
	if tty {
		every = progressBarEvery
		p.bar = progressbar.NewOptions64(spec.total,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription(spec.title),
			progressbar.OptionSetWidth(progressWidthChars),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionClearOnFinish(),
		)
	}
	began := time.Now()
	shown := spec.title
	go func() {
		defer close(p.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
			n := min(spec.count(), spec.total)
			detail := ""
			if spec.detail != nil {
				detail = spec.detail()
			}
			if p.bar == nil {
				line := fmt.Sprintf("%s: %d/%d %s (%.0f%%)", spec.title, n, spec.total, spec.unit, 100*float64(n)/float64(spec.total))
				if detail != "" {
					line += ", " + detail
				}
				fmt.Fprintf(w, "%s, %v elapsed\n", line, time.Since(began).Round(time.Second))
				continue
			}
			p.mu.Lock()
			desc := spec.title
			if detail != "" {
				desc += " (" + detail + ")"
			}
			if desc != shown {
				p.bar.Describe(desc)
				shown = desc
			}
			p.bar.Set64(n)
			p.mu.Unlock()
		}
	}()
	return p
}

// clear takes the bar off the terminal's line, so that a line printed next
// starts at the left margin; the next tick draws the bar again.
func (p *progress) clear() {
	if p == nil || p.bar == nil {
		return
	}
	p.mu.Lock()
	p.bar.Clear()
	p.mu.Unlock()
}

// finish stops the progress and takes the bar off the terminal: what the
// phase found is printed after it, on stdout.
func (p *progress) finish() {
	if p == nil {
		return
	}
	p.once.Do(func() {
		close(p.stop)
		<-p.done
		if p.bar != nil {
			p.mu.Lock()
			p.bar.Clear()
			p.bar.Exit()
			p.mu.Unlock()
		}
	})
}
