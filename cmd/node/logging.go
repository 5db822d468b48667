package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"
)

// Log formats (--log-format).
const (
	logText = "text"
	logJSON = "json"
)

// parseLogLevel reads --log-level.
func parseLogLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("--log-level must be debug, info, warn or error, not %q", s)
}

// serverLog is the server's log: one slog record per line, in the text or
// JSON format, on stderr.
//
// A few lines are matched by scripts and tests exactly as they were
// before the log was structured ("dkv: serving ...", "dkv: fatal: ...",
// "dkv: cannot listen: ..."): in the text format they are written as they
// always were (line), in the JSON format they are records like the rest.
type serverLog struct {
	*slog.Logger
	format string
	out    io.Writer
	mu     *sync.Mutex // shared with the handler: one line at a time
	// held bounds printf's warnings and errors of each kind.
	held *logHold
	// queue, for standard error or output, holds the lines until they
	// are written (out is then queue).
	queue *logQueue
}

func newServerLog(out io.Writer, format string, level slog.Level) *serverLog {
	if out == os.Stderr || out == os.Stdout {
		// A write to standard error whose reader has gone (a log
		// pipe's reader restarted or killed, the terminal of a launcher
		// closed) raises SIGPIPE, which kills a Go program that does
		// not handle it: the node died at its next log line, however
		// healthy (found by review). Ignored, the write fails with
		// EPIPE and the node serves on, as Redis and PostgreSQL do.
		signal.Ignore(syscall.SIGPIPE)
	}
	var queue *logQueue
	if out == os.Stderr || out == os.Stdout {
		// Not written on the caller's goroutine: a full pipe whose
		// reader hangs (a log shipper stuck, never closed) blocked the
		// node's own goroutine at its next line, and the store stopped
		// (found by review).
		queue = newLogQueue(out, droppedLine(format))
		out = queue
	}
	mu := &sync.Mutex{}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	if format == logJSON {
		h = slog.NewJSONHandler(&lockedWriter{w: out, mu: mu}, opts)
	} else {
		h = &textHandler{out: out, mu: mu, level: level}
	}
	return &serverLog{Logger: slog.New(h), format: format, out: out, mu: mu, queue: queue,
		held: &logHold{window: logKindWindow, kinds: make(map[string]*logKind)}}
}

// flush waits for the lines queued for standard error to be written, up
// to logFlushWait: the last lines of a server that exits (fatal errors,
// the shutdown) must not be lost, and a reader that hangs must not keep
// the process from exiting.
func (l *serverLog) flush() {
	if l.queue != nil {
		l.queue.close(logFlushWait)
	}
}

// line writes one of the lines that scripts match (see serverLog), at any
// --log-level: the serving line and fatal errors must never be filtered
// out. msg is the line without its "dkv: " prefix; attrs go to the JSON
// record only.
func (l *serverLog) line(level slog.Level, event, msg string, attrs ...any) {
	if l.format != logJSON {
		l.mu.Lock()
		defer l.mu.Unlock()
		fmt.Fprintf(l.out, "dkv: %s\n", msg)
		return
	}
	r := slog.NewRecord(time.Now(), level, msg, 0)
	r.Add("event", event)
	r.Add(attrs...)
	// Handle, not Log: the level filter must not drop these lines.
	_ = l.Handler().Handle(context.Background(), r)
}

// printf is a Logf for node logic and the host, which log format strings:
// each call becomes one record, its level and event read from the
// message (see classify), with the error among its arguments, if any, as
// an attribute.
func (l *serverLog) printf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	level, event := classify(msg)
	if !l.Enabled(context.Background(), level) {
		return
	}
	attrs := make([]any, 0, 4)
	if event != "" {
		attrs = append(attrs, "event", event)
	}
	for i := len(args) - 1; i >= 0; i-- {
		if err, ok := args[i].(error); ok {
			attrs = append(attrs, "err", err.Error())
			break
		}
	}
	if level >= slog.LevelWarn {
		held, ok := l.held.take(msg, func(n int, last string) {
			// The window ended with lines held back: say how many, so
			// that a flood that stopped is not hidden.
			report := []any{"held_back", n}
			if event != "" {
				report = append(report, "event", event)
			}
			l.Log(context.Background(), level, fmt.Sprintf("%d more lines like this one were held back in the last %v: %s", n, l.held.window, last), report...)
		})
		if !ok {
			return
		}
		if held > 0 {
			attrs = append(attrs, "held_back", held)
		}
	}
	l.Log(context.Background(), level, msg, attrs...)
}

// Bounds on printf's warnings and errors: at most logKindLinesMax of each
// kind (the message with its digits blotted out) in logKindWindow; the
// rest are counted, and the count is written when the window ends. Node
// logic logs a line per failed batch: on a full disk a single client's
// writes made 23,000 error lines a second, 11 MB/s of log on what is
// often the same full disk (found by review).
const (
	logKindLinesMax = 10
	logKindWindow   = 10 * time.Second
	// logKindsMax bounds the kinds remembered; past it, the kinds whose
	// window has ended are forgotten, and if none has, lines of new kinds
	// share one budget.
	logKindsMax = 256
	// logKindBytesMax is how much of a message names its kind.
	logKindBytesMax = 96
)

// logHold is the bookkeeping of those bounds.
type logHold struct {
	window time.Duration
	mu     sync.Mutex
	kinds  map[string]*logKind
}

type logKind struct {
	start time.Time // of the window; zero: none open
	lines int       // written in the window
	held  int       // held back in the window
	last  string    // the last line held back
	timer *time.Timer
}

// logKindOf is msg with each run of digits made '#', cut to
// logKindBytesMax: lines that differ only by numbers (an index, a port, a
// count) are of one kind.
func logKindOf(msg string) string {
	var b strings.Builder
	digits := false
	for i := 0; i < len(msg) && b.Len() < logKindBytesMax; i++ {
		c := msg[i]
		if c >= '0' && c <= '9' {
			if !digits {
				b.WriteByte('#')
			}
			digits = true
			continue
		}
		digits = false
		b.WriteByte(c)
	}
	return b.String()
}

// take reports whether msg is to be written now and, if so, how many of
// its kind were held back before it (0 but for the first line after a
// window whose count report has not run yet). A line held back is
// counted; report writes the count when the window ends.
func (h *logHold) take(msg string, report func(n int, last string)) (held int, ok bool) {
	key := logKindOf(msg)
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	k := h.kinds[key]
	if k == nil {
		if len(h.kinds) >= logKindsMax {
			for key, k := range h.kinds {
				if now.Sub(k.start) >= h.window && k.held == 0 && k.timer == nil {
					delete(h.kinds, key)
				}
			}
		}
		if len(h.kinds) >= logKindsMax {
			key = "(overflow)"
		}
		if k = h.kinds[key]; k == nil {
			k = &logKind{}
			h.kinds[key] = k
		}
	}
	if k.start.IsZero() || now.Sub(k.start) >= h.window {
		if k.timer != nil && k.timer.Stop() {
			// The last window's count, not yet written: this line
			// carries it. (A timer that has fired writes it itself.)
			held, k.held, k.timer = k.held, 0, nil
		}
		k.start, k.lines = now, 0
	}
	if k.lines < logKindLinesMax {
		k.lines++
		return held, true
	}
	k.held++
	k.last = msg
	if k.timer == nil {
		// Under mu, which the timer's func takes first: it sees t set.
		var t *time.Timer
		t = time.AfterFunc(k.start.Add(h.window).Sub(now), func() {
			h.mu.Lock()
			n, last := k.held, k.last
			k.held = 0
			if k.timer == t {
				k.timer = nil
			}
			h.mu.Unlock()
			if n > 0 {
				report(n, last)
			}
		})
		k.timer = t
	}
	return 0, false
}

// logClass is what a message that starts with prefix (and contains word,
// if set) is: its level and event. The first match wins.
type logClass struct {
	prefix, word string
	level        slog.Level
	event        string
}

// logClasses sorts the lines of node logic, the host and the peer
// transport, which log format strings (core.Env.Logf), by their start.
// Unknown lines are info, or warnings when they speak of a failure.
var logClasses = []logClass{
	{"recovered", "", slog.LevelInfo, "recovery"},
	{"truncating", "", slog.LevelWarn, "recovery"},
	{"kept the", "", slog.LevelWarn, "recovery"},
	{"removed ", "log segments", slog.LevelInfo, "recovery"},
	{"snapshot at index", "started", slog.LevelInfo, "snapshot_start"},
	{"snapshot at index", "written", slog.LevelInfo, "snapshot"},
	{"snapshot failed", "", slog.LevelError, "snapshot_failed"},
	{"snapshot ", "failed", slog.LevelError, "snapshot_failed"},
	{"removing covered log segments", "", slog.LevelWarn, "snapshot"},
	{"sending node", "snapshot", slog.LevelInfo, "snapshot_transfer"},
	{"installed the leader's snapshot", "", slog.LevelInfo, "snapshot_transfer"},
	{"finished installing", "", slog.LevelInfo, "snapshot_transfer"},
	{"election: ", "", slog.LevelInfo, "election"},
	{"write failed", "", slog.LevelError, "write_failed"},
	{"", "fsync failed", slog.LevelError, "fsync_failed"},
	{"", " failed; not acknowledging", slog.LevelError, "disk_failed"},
	{"cannot elect a leader", "", slog.LevelError, "rejoin_stuck"},
	{"a leader is elected after all", "", slog.LevelInfo, "rejoin_stuck_over"},
	{"started on an empty data directory", "", slog.LevelInfo, "rejoin"},
	{"started again at term 0 before every other node had answered", "", slog.LevelInfo, "rejoin"},
	{"every other node answered at term 0", "", slog.LevelInfo, "rejoin"},
	{"--rejoin is no longer needed", "", slog.LevelWarn, "rejoin"},
	{"rejoined: ", "", slog.LevelInfo, "rejoin"},
	{"rejoining in place of a lost data directory", "", slog.LevelWarn, "rejoin"},
	{"indexes:", "", slog.LevelInfo, "indexes"},
	{"peers: ", "replace each other", slog.LevelError, "peer_twins"},
	{"peers: ", "", slog.LevelInfo, "peers"},
}

// failureWords make an info line a warning.
var failureWords = []string{"fail", "cannot", "refus", "wrong ", "dropp", "error", "invalid", "lost"}

func classify(msg string) (slog.Level, string) {
	level, event := slog.LevelInfo, ""
	for _, c := range logClasses {
		if strings.HasPrefix(msg, c.prefix) && (c.word == "" || strings.Contains(msg, c.word)) {
			level, event = c.level, c.event
			break
		}
	}
	if level != slog.LevelInfo {
		return level, event
	}
	lower := strings.ToLower(msg)
	for _, w := range failureWords {
		if strings.Contains(lower, w) {
			return slog.LevelWarn, event
		}
	}
	return level, event
}

// lockedWriter serialises the JSON handler's writes with serverLog.line's.
type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (lw *lockedWriter) Write(p []byte) (int, error) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return lw.w.Write(p)
}

// textHandler writes the human-friendly format, which keeps the look the
// server's log always had, so that people and scripts that read it still
// can: "dkv: ", local time to the microsecond, the level, the message,
// then the attributes as key=value:
//
//	dkv: 2026/12/02 13:22:02.367703 INFO recovered 5 keys: ... node=0 mode=single event=recovery
type textHandler struct {
	out   io.Writer
	mu    *sync.Mutex
	level slog.Leveler
	attrs []byte // preformatted " k=v" of WithAttrs
	group string // prefix of the keys that follow, "g." for group g
}

func (h *textHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.level.Level()
}

func (h *textHandler) Handle(_ context.Context, r slog.Record) error {
	var b bytes.Buffer
	b.WriteString("dkv: ")
	t := r.Time
	if t.IsZero() {
		t = time.Now()
	}
	b.WriteString(t.Format("2006/01/02 15:04:05.000000"))
	b.WriteByte(' ')
	b.WriteString(r.Level.String())
	b.WriteByte(' ')
	b.WriteString(oneLine(r.Message))
	b.Write(h.attrs)
	r.Attrs(func(a slog.Attr) bool {
		appendAttr(&b, h.group, a)
		return true
	})
	b.WriteByte('\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := h.out.Write(b.Bytes())
	return err
}

func (h *textHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	var b bytes.Buffer
	b.Write(h.attrs)
	for _, a := range attrs {
		appendAttr(&b, h.group, a)
	}
	h2 := *h
	h2.attrs = b.Bytes()
	return &h2
}

func (h *textHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.group += name + "."
	return &h2
}

func appendAttr(b *bytes.Buffer, group string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		prefix := group
		if a.Key != "" {
			prefix += a.Key + "."
		}
		for _, g := range a.Value.Group() {
			appendAttr(b, prefix, g)
		}
		return
	}
	b.WriteByte(' ')
	b.WriteString(group)
	b.WriteString(a.Key)
	b.WriteByte('=')
	b.WriteString(textValue(a.Value))
}

// textValue quotes a value that a reader could not tell apart otherwise:
// empty, or holding spaces, quotes, '=' or control characters.
func textValue(v slog.Value) string {
	s := v.String()
	if v.Kind() == slog.KindDuration {
		s = v.Duration().String()
	}
	if s == "" || strings.ContainsAny(s, " \"=\t\r\n") || !utf8.ValidString(s) {
		return strconv.Quote(s)
	}
	return s
}

// oneLine keeps a message on its line: a line break in it would start
// what a reader takes for another record.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(s)
}

// Bounds on the lines waiting for standard error (logQueue).
const (
	// logQueueBytesMax is what the lines not yet written may take; more
	// are dropped, and counted.
	logQueueBytesMax = 256 << 10
	// logFlushWait is how long a server that exits waits for its last
	// lines to be written.
	logFlushWait = 2 * time.Second
)

// logQueue is standard error as the log writes it: Write queues the line
// and returns at once, and a goroutine of its own writes the lines out in
// order. Lines that come while logQueueBytesMax wait are dropped and
// counted, and a line says how many, in their place, once there is room
// again. A stuck reader then costs lines, never the store.
type logQueue struct {
	out io.Writer
	// droppedLine is the line that says n lines were dropped.
	droppedLine func(n int) []byte
	mu          sync.Mutex
	cond        *sync.Cond // lines queued, lines written, or closed
	lines       [][]byte
	bytes       int  // of lines, and of those being written
	dropped     int  // since the last line queued
	writing     bool // the writer holds lines it took from the queue
	closed      bool
}

func newLogQueue(out io.Writer, droppedLine func(n int) []byte) *logQueue {
	q := &logQueue{out: out, droppedLine: droppedLine}
	q.cond = sync.NewCond(&q.mu)
	go q.run()
	return q
}

// Write queues p, one line or more written whole, or drops it if the
// queue is full; it never blocks on out.
func (q *logQueue) Write(p []byte) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.bytes+len(p) > logQueueBytesMax {
		q.dropped++
		return len(p), nil
	}
	if q.dropped > 0 {
		q.queue(q.droppedLine(q.dropped))
		q.dropped = 0
	}
	q.queue(bytes.Clone(p))
	return len(p), nil
}

func (q *logQueue) queue(p []byte) {
	q.lines = append(q.lines, p)
	q.bytes += len(p)
	q.cond.Broadcast()
}

// run writes the queued lines out, and the count of those dropped if no
// line came after them, until close.
func (q *logQueue) run() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for {
		for len(q.lines) == 0 && q.dropped == 0 && !q.closed {
			q.cond.Wait()
		}
		if len(q.lines) == 0 && q.dropped > 0 {
			q.queue(q.droppedLine(q.dropped))
			q.dropped = 0
		}
		if len(q.lines) == 0 {
			return // closed, and all written
		}
		batch, n := q.lines, 0
		q.lines = nil
		q.writing = true
		q.mu.Unlock()
		var buf bytes.Buffer
		for _, line := range batch {
			buf.Write(line)
			n += len(line)
		}
		// An error (EPIPE: the reader went away) loses the lines, as
		// it did when they were written directly.
		_, _ = q.out.Write(buf.Bytes())
		q.mu.Lock()
		q.bytes -= n
		q.writing = false
		q.cond.Broadcast()
	}
}

// close waits up to wait for every line queued to be written.
func (q *logQueue) close(wait time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.cond.Broadcast()
	expired := false
	t := time.AfterFunc(wait, func() {
		q.mu.Lock()
		expired = true
		q.cond.Broadcast()
		q.mu.Unlock()
	})
	defer t.Stop()
	for (len(q.lines) > 0 || q.writing || q.dropped > 0) && !expired {
		q.cond.Wait()
	}
}

// droppedLine formats the line that says how many lines the queue
// dropped, in the log's format.
func droppedLine(format string) func(n int) []byte {
	return func(n int) []byte {
		var b bytes.Buffer
		var h slog.Handler = &textHandler{out: &b, mu: &sync.Mutex{}, level: slog.LevelDebug}
		if format == logJSON {
			h = slog.NewJSONHandler(&b, nil)
		}
		r := slog.NewRecord(time.Now(), slog.LevelWarn, fmt.Sprintf("%d log lines were dropped: standard error took no more (its reader stuck or slow) while %d bytes of lines waited", n, logQueueBytesMax), 0)
		r.Add("event", "log_dropped", "dropped_lines", n)
		_ = h.Handle(context.Background(), r)
		return b.Bytes()
	}
}
