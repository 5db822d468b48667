// Package progress shows how far a long run is: a bar redrawn in place on
// a terminal, a plain line every LineEvery elsewhere (a CI log), nothing on
// stdout, which carries the tools' tables. cmd/bench and cmd/sim use it.
package progress

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
)

// LineEvery is how often a phase prints a progress line when its
// writer is not a terminal: often enough that a log shows a long run is
// alive, rarely enough not to flood it.
const LineEvery = 10 * time.Second

// barEvery is how often the bar on a terminal is redrawn.
const barEvery = 200 * time.Millisecond

// widthChars is the bar's width on a terminal, leaving room on an
// 80-column line for the title and the counts.
const widthChars = 24

// Spec says what a phase counts. Progress goes to stderr only:
// stdout carries the tables, which a script may read.
type Spec struct {
	Title string       // the phase, e.g. "populating 1000000 keys"
	Total int64        // count at which the phase is done; below 1: 1
	Unit  string       // what is counted, for the lines off a terminal ("keys", "kills")
	Count func() int64 // how far the phase is; called from another goroutine
	// Detail, if set, adds figures to the line ("12 lost"); called from
	// another goroutine.
	Detail func() string
}

// Bar shows one phase's progress until finish: a bar redrawn in place
// on a terminal, a plain line every LineEvery elsewhere. A nil
// *Bar is off.
type Bar struct {
	stop chan struct{}
	done chan struct{}
	once sync.Once  // finish may be deferred and also called
	mu   sync.Mutex // serialises the bar's drawing with clear
	bar  *progressbar.ProgressBar
}

// IsTerminal tells whether w is a terminal (a character device), where a
// bar redrawn with carriage returns reads well; in a file or a pipe it
// would be noise.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || f == nil {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// Start shows spec's progress on w (nil: nowhere) until finish.
func Start(w io.Writer, spec Spec) *Bar {
	if w == nil {
		return nil
	}
	return StartOn(w, IsTerminal(w), LineEvery, spec)
}

// StartOn is Start with the terminal test and the line
// interval given, so that tests can drive both ways.
func StartOn(w io.Writer, tty bool, lineEvery time.Duration, spec Spec) *Bar {
	if spec.Total <= 0 {
		spec.Total = 1 // nothing to count: the bar is full at once
	}
	p := &Bar{stop: make(chan struct{}), done: make(chan struct{})}
	every := lineEvery
	if tty {
		every = barEvery
		p.bar = progressbar.NewOptions64(spec.Total,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription(spec.Title),
			progressbar.OptionSetWidth(widthChars),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionClearOnFinish(),
		)
	}
	began := time.Now()
	shown := spec.Title
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
			// Counted before p.mu is taken: Count and Detail may take the
			// caller's lock, under which the caller may call Clear.
			n := min(spec.Count(), spec.Total)
			detail := ""
			if spec.Detail != nil {
				detail = spec.Detail()
			}
			if p.bar == nil {
				line := fmt.Sprintf("%s: %d/%d %s (%.0f%%)", spec.Title, n, spec.Total, spec.Unit, 100*float64(n)/float64(spec.Total))
				if detail != "" {
					line += ", " + detail
				}
				fmt.Fprintf(w, "%s, %v elapsed\n", line, time.Since(began).Round(time.Second))
				continue
			}
			p.mu.Lock()
			desc := spec.Title
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

// Clear takes the bar off the terminal's line, so that a line printed next
// starts at the left margin; the next tick draws the bar again.
func (p *Bar) Clear() {
	if p == nil || p.bar == nil {
		return
	}
	p.mu.Lock()
	p.bar.Clear()
	p.mu.Unlock()
}

// Finish stops the progress and takes the bar off the terminal: what the
// phase found is printed after it, on stdout.
func (p *Bar) Finish() {
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
