package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"dkv/core"
	"dkv/realnet"
)

// The metrics endpoint (--metrics-addr) serves /metrics, in Prometheus's
// text format, and /healthz.
//
// What the host measures on its goroutines (requests, connections, fsyncs)
// goes into a metrics.Set: the per-request cost is two clock reads, an
// atomic counter and a histogram update, with no label lookup (the series
// of each op and code are resolved once, then kept), made once per turn
// for the turn's requests (see realnet.Metrics.Requests). What the
// node knows (keys, log, snapshots, Raft, anti-entropy) stays in plain
// fields of the node, which a scrape reads on the node's goroutine through
// Host.Inspect, within nodeScrapeTimeout; the node never touches a shared
// counter, so it stays deterministic.

const (
	// nodeScrapeTimeout bounds how long a scrape waits for the node's
	// turn; a node that does not answer in time is reported as
	// dkv_node_scrape_ok 0, and the host's metrics are served anyway.
	nodeScrapeTimeout = 2 * time.Second
	// metricsHeaderTimeout, metricsReadTimeout and metricsWriteTimeout
	// bound a scraper that stalls, so it cannot hold connections open:
	// the headers, the whole request (a body, which no handler reads,
	// is still read to its end before the next request) and the answer.
	metricsHeaderTimeout = 5 * time.Second
	metricsReadTimeout   = 10 * time.Second
	metricsWriteTimeout  = 10 * time.Second
	// metricsIdleTimeout bounds how long a connection is kept open
	// between two requests. Without it net/http keeps an idle keep-alive
	// connection for ever: anyone who reached the port could hold
	// descriptors until the node had none left for its log (found by
	// review). Prometheus reconnects when its connection was closed.
	metricsIdleTimeout = 2 * time.Minute
	// metricsConnsMax bounds the endpoint's connections open at once
	// (scrapers and health checks are a handful): past it a connection is
	// answered 503 and closed at once, so that the descriptors and
	// goroutines the endpoint holds stay bounded whatever connects.
	metricsConnsMax = 32
	// metricsHeaderBytesMax bounds a request's headers: a scrape's are a
	// few hundred bytes.
	metricsHeaderBytesMax = 16 << 10
)

// Health states, for /healthz and dkv_ready.
const (
	healthRecovering int32 = iota
	healthServing
	healthStopping
)

// Label values the host's series take. Anything else a client sends as an
// op is counted as "other", so a client cannot grow the series without
// bound.
var (
	metricOps = []string{core.OpSet, core.OpGet, core.OpDelete, core.OpBulkSet, core.OpPing, core.OpStatus,
		core.OpSearch, core.OpSearchSimilar, "invalid", "other", core.OpBulkGet, core.OpBulkDelete, core.OpScan,
		core.OpTTL, core.OpExpire, core.OpPersist, core.OpIncr}
	metricCodes = []string{"ok", core.CodeBadRequest, core.CodeUnknownOp, core.CodeTooLarge, core.CodeNotFound,
		core.CodeUnavailable, core.CodeNotLeader, core.CodeTooManyConns, core.CodeTimeout, core.CodeDiskFull,
		core.CodeIOError, core.CodeNotImplemented, core.CodeInternal, core.CodeSessionExpired,
		core.CodeOutcomeUnknown, core.CodeIndexesDisabled, core.CodeAuthRequired, core.CodeAuthFailed, core.CodeTLSRequired,
		core.CodeConditionFailed, core.CodeConditionRefusedEarlier, core.CodeScanExpired, core.CodeNotInteger, core.CodeOverflow, core.CodeStoreFull, "other"}
	metricFiles = []string{"wal", "snapshot", "state"}
)

const (
	opInvalid = 8 // index of "invalid" in metricOps
	opOther   = 9
	codeOK    = 0
)

func opIndex(op string) int {
	switch op {
	case core.OpSet:
		return 0
	case core.OpGet:
		return 1
	case core.OpDelete:
		return 2
	case core.OpBulkSet:
		return 3
	case core.OpPing:
		return 4
	case core.OpStatus:
		return 5
	case core.OpSearch:
		return 6
	case core.OpSearchSimilar:
		return 7
	case core.OpBulkGet:
		return 10
	case core.OpBulkDelete:
		return 11
	case core.OpScan:
		return 12
	case core.OpTTL:
		return 13
	case core.OpExpire:
		return 14
	case core.OpPersist:
		return 15
	case core.OpIncr:
		return 16
	}
	return opOther
}

func codeIndex(code string) int {
	if code == "" {
		return codeOK
	}
	for i, c := range metricCodes[1 : len(metricCodes)-1] {
		if c == code {
			return i + 1
		}
	}
	return len(metricCodes) - 1
}

// fileKind is the fsync series of a data-directory file.
func fileKind(name string) int {
	switch {
	case strings.HasPrefix(name, "wal-"):
		return 0
	case strings.HasPrefix(name, "snap-"), strings.HasPrefix(name, "recv-"):
		return 1
	}
	return 2
}

// Histogram buckets, in seconds: a request is answered in tens of
// microseconds (a read) to milliseconds (a durable write) and, in a
// cluster under failover, seconds; an fsync takes from tens of
// microseconds (a cache) to tens of milliseconds (a busy disk).
var (
	latencyBuckets = []float64{50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1, 2.5, 5, 10}
	fsyncBuckets   = []float64{25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1}
	turnBuckets    = []float64{10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 1}
	// turnEventBuckets go up to realnet's EventsPerTurnMax (4096), by
	// powers of two as dkv_wal_batch_records' do.
	turnEventBuckets = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096}
)

// serverMetrics is a realnet.Metrics into a metrics.Set of its own (not
// the library's global one), and the endpoint that serves them.
type serverMetrics struct {
	set  *metrics.Set
	mode string
	id   core.NodeID

	// requests[op][code] and latency[op] are created on first use and kept:
	// resolving a series by name takes a lock and a map lookup, which the
	// hot path should not pay.
	requests [][]atomic.Pointer[metrics.Counter]
	latency  []atomic.Pointer[metrics.PrometheusHistogram]
	fsyncs   []*metrics.PrometheusHistogram
	fsyncErr *metrics.Counter
	// turns and turnEvents: the node's turns, timed, and their events.
	turns, turnEvents *metrics.PrometheusHistogram

	conns         atomic.Int64
	connsAccepted *metrics.Counter
	connsRefused  *metrics.Counter
	tlsFailed     *metrics.Counter
	peerTLSFailed *metrics.Counter
	// metricsRefused: connections to the endpoint itself refused past
	// metricsConnsMax.
	metricsRefused *metrics.Counter
	// gathers counts the event loop's waits for a sync's stragglers by
	// how they ended (gatherOutcomes), gatherSeconds their time.
	gathers       []*metrics.Counter
	gatherSeconds *metrics.FloatCounter

	health        atomic.Int32
	recoveryNanos atomic.Int64
	host          atomic.Pointer[realnet.Host]

	// probe is the /healthz probe of the node in flight, if any: one at
	// a time, so that health checks of a node that does not answer do
	// not pile up events and goroutines.
	probeMu    sync.Mutex
	probeDone  chan struct{} // closed once the node ran the probe; nil: none in flight
	probeSince time.Time     // when it was posted
}

var _ realnet.Metrics = (*serverMetrics)(nil)

func newServerMetrics(mode string, id core.NodeID) *serverMetrics {
	// The TYPE lines let Prometheus tell counters from gauges. The switch
	// is the library's only global, and this binary serves one Set.
	metrics.ExposeMetadata(true)
	m := &serverMetrics{set: metrics.NewSet(), mode: mode, id: id}
	m.requests = make([][]atomic.Pointer[metrics.Counter], len(metricOps))
	for i := range m.requests {
		m.requests[i] = make([]atomic.Pointer[metrics.Counter], len(metricCodes))
	}
	m.latency = make([]atomic.Pointer[metrics.PrometheusHistogram], len(metricOps))
	for _, f := range metricFiles {
		m.fsyncs = append(m.fsyncs, m.set.NewPrometheusHistogramExt(fmt.Sprintf(`dkv_fsync_duration_seconds{file=%q}`, f), fsyncBuckets))
	}
	m.fsyncErr = m.set.NewCounter("dkv_fsync_errors_total")
	m.turns = m.set.NewPrometheusHistogramExt("dkv_turn_duration_seconds", turnBuckets)
	m.turnEvents = m.set.NewPrometheusHistogramExt("dkv_turn_events", turnEventBuckets)
	m.connsAccepted = m.set.NewCounter("dkv_connections_accepted_total")
	m.connsRefused = m.set.NewCounter("dkv_connections_refused_total")
	m.tlsFailed = m.set.NewCounter("dkv_tls_handshake_failures_total")
	m.peerTLSFailed = m.set.NewCounter("dkv_peer_tls_handshake_failures_total")
	m.metricsRefused = m.set.NewCounter("dkv_metrics_connections_refused_total")
	for _, o := range gatherOutcomes {
		m.gathers = append(m.gathers, m.set.NewCounter(fmt.Sprintf(`dkv_gather_waits_total{outcome=%q}`, o)))
	}
	m.gatherSeconds = m.set.NewFloatCounter("dkv_gather_wait_seconds_total")
	m.set.NewGauge("dkv_connections", func() float64 { return float64(m.conns.Load()) })
	return m
}

// Requests implements realnet.Metrics.
func (m *serverMetrics) Requests(turn []realnet.RequestSample) {
	for i := range turn {
		s := &turn[i]
		m.request(opIndex(s.Op), codeIndex(s.Code), s.Elapsed)
	}
}

// Refused implements realnet.Metrics.
func (m *serverMetrics) Refused(code string) { m.request(opInvalid, codeIndex(code), 0) }

func (m *serverMetrics) request(o, c int, elapsed time.Duration) {
	ctr := m.requests[o][c].Load()
	if ctr == nil {
		ctr = m.set.GetOrCreateCounter(fmt.Sprintf(`dkv_requests_total{op=%q,code=%q}`, metricOps[o], metricCodes[c]))
		m.requests[o][c].Store(ctr)
	}
	ctr.Inc()
	if o == opInvalid {
		return // answered by the host, never timed
	}
	h := m.latency[o].Load()
	if h == nil {
		h = m.set.GetOrCreatePrometheusHistogramExt(fmt.Sprintf(`dkv_request_duration_seconds{op=%q}`, metricOps[o]), latencyBuckets)
		m.latency[o].Store(h)
	}
	h.Update(elapsed.Seconds())
}

// Conn implements realnet.Metrics.
func (m *serverMetrics) Conn(delta int) {
	m.conns.Add(int64(delta))
	if delta > 0 {
		m.connsAccepted.Inc()
	}
}

// ConnRefused implements realnet.Metrics.
func (m *serverMetrics) ConnRefused() { m.connsRefused.Inc() }

// TLSHandshakeFailed implements realnet.Metrics.
func (m *serverMetrics) TLSHandshakeFailed() { m.tlsFailed.Inc() }

// PeerTLSHandshakeFailed implements realnet.PeerMetrics.
func (m *serverMetrics) PeerTLSHandshakeFailed() { m.peerTLSFailed.Inc() }

// Fsync implements realnet.Metrics.
func (m *serverMetrics) Fsync(file string, elapsed time.Duration, err error) {
	m.fsyncs[fileKind(file)].Update(elapsed.Seconds())
	if err != nil {
		m.fsyncErr.Inc()
	}
}

// gatherOutcomes are the outcomes Gathered reports, in m.gathers' order.
var gatherOutcomes = []string{realnet.GatherAllSent, realnet.GatherTooSlow, realnet.GatherDeadline}

// Gathered implements realnet.Metrics.
func (m *serverMetrics) Gathered(outcome string, waited time.Duration) {
	for i, o := range gatherOutcomes {
		if o == outcome {
			m.gathers[i].Inc()
		}
	}
	m.gatherSeconds.Add(waited.Seconds())
}

// Turn implements realnet.Metrics.
func (m *serverMetrics) Turn(elapsed time.Duration, events int) {
	m.turns.Update(elapsed.Seconds())
	m.turnEvents.Update(float64(events))
}

// serving marks the node recovered (after recovery) and ready.
func (m *serverMetrics) serving(recovery time.Duration) {
	m.recoveryNanos.Store(int64(recovery))
	m.health.Store(healthServing)
}

// listenMetrics binds the metrics endpoint. It is called before recovery,
// so that /healthz answers (503) while the node recovers, and a taken
// address stops the server before a recovery that may take long.
func listenMetrics(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cannot serve metrics on %s (--metrics-addr): %w", addr, err)
	}
	return ln, nil
}

// serve answers on ln until the returned func is called.
func (m *serverMetrics) serve(ln net.Listener, log *serverLog) (stop func()) {
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", m.handleMetrics)
	mux.HandleFunc("/healthz", m.handleHealth)
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: metricsHeaderTimeout,
		ReadTimeout:       metricsReadTimeout,
		WriteTimeout:      metricsWriteTimeout,
		IdleTimeout:       metricsIdleTimeout,
		MaxHeaderBytes:    metricsHeaderBytesMax,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	limited := &connLimitListener{Listener: ln, slots: make(chan struct{}, metricsConnsMax), refused: m.metricsRefused}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(limited); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics endpoint stopped", "event", "metrics", "err", err.Error())
		}
	}()
	return func() {
		srv.Close()
		<-done
	}
}

// connLimitListener hands out at most cap(slots) connections open at once;
// one past it is answered 503 and closed on the accept goroutine, without
// waiting (a new socket's send buffer takes the answer whole), so that
// neither a flood of connections nor a few held open can grow what the
// endpoint holds.
type connLimitListener struct {
	net.Listener
	slots   chan struct{}
	refused *metrics.Counter
}

// metricsBusyAnswer is what a connection past metricsConnsMax gets.
var metricsBusyAnswer = []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n" +
	"Connection: close\r\nContent-Length: " + strconv.Itoa(len(metricsBusyBody)) + "\r\n\r\n" + metricsBusyBody)

var metricsBusyBody = "too many connections to the metrics endpoint (" + strconv.Itoa(metricsConnsMax) + " at once); try again later\n"

func (l *connLimitListener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &limitedConn{Conn: nc, slots: l.slots}, nil
		default:
		}
		l.refused.Inc()
		nc.SetWriteDeadline(time.Now().Add(time.Second))
		nc.Write(metricsBusyAnswer)
		nc.Close()
	}
}

// limitedConn gives its slot back when it closes, once.
type limitedConn struct {
	net.Conn
	slots  chan struct{}
	closed atomic.Bool
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	if c.closed.CompareAndSwap(false, true) {
		<-c.slots
	}
	return err
}

// healthNodeTimeout bounds how long /healthz waits for the node to take
// its probe between two events. A node's turns take microseconds to
// milliseconds; one that has not got to the probe in a second is stuck,
// most likely in a write or fsync that its disk does not finish (a turn's
// fsync runs inline with the default event loop), and serves nobody.
const healthNodeTimeout = time.Second

// nodeAnswers reports whether the node takes an event within
// healthNodeTimeout of the probe in flight being posted, and if not, for
// how long it has not.
func (m *serverMetrics) nodeAnswers() (ok bool, stuck time.Duration) {
	h := m.host.Load()
	if h == nil {
		return true, 0
	}
	m.probeMu.Lock()
	if m.probeDone == nil {
		done := make(chan struct{})
		m.probeDone, m.probeSince = done, time.Now()
		go func() {
			// Returns once the node ran the probe, or at once if the
			// host has stopped (health then says so itself).
			h.Inspect(context.Background(), func(core.Node) {})
			m.probeMu.Lock()
			m.probeDone = nil
			m.probeMu.Unlock()
			close(done)
		}()
	}
	done, since := m.probeDone, m.probeSince
	m.probeMu.Unlock()
	wait := time.NewTimer(healthNodeTimeout - time.Since(since))
	defer wait.Stop()
	select {
	case <-done:
		return true, 0
	case <-wait.C:
		return false, time.Since(since)
	}
}

func (m *serverMetrics) handleHealth(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	switch m.health.Load() {
	case healthServing:
		if ok, stuck := m.nodeAnswers(); !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "not answering: the node has not run the health check's event, posted %v ago, and answers no client meanwhile (a disk that does not finish a write or fsync?)\n", stuck.Round(time.Millisecond))
			return
		}
		io.WriteString(w, "ok\n")
	case healthStopping:
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "shutting down\n")
	default:
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "recovering: the node is reading its data directory and does not serve yet\n")
	}
}

// hostHelp is the HELP text of the host's families, which the library
// writes without one.
var hostHelp = map[string]string{
	"dkv_requests_total":                           "requests answered, by op and error code (ok: success; op invalid: a line that did not decode)",
	"dkv_request_duration_seconds":                 "time from a request's decoding to its answer, by op (a write's includes its fsync)",
	"dkv_fsync_duration_seconds":                   "fsync latency, by file: wal (the log), snapshot, state (term, vote, mesh state)",
	"dkv_fsync_errors_total":                       "failed fsyncs (a failed log fsync stops the node)",
	"dkv_turn_duration_seconds":                    "the node's turns, from the first event to the replies sent; one at a time, so rate(_sum) is the share of time the node is busy",
	"dkv_turn_events":                              "events per turn of the node: a read's batch of client requests counts its requests; a timer, an fsync's completion or a peer's message one each",
	"dkv_connections":                              "client connections open",
	"dkv_connections_accepted_total":               "client connections accepted since start",
	"dkv_connections_refused_total":                "client connections refused at --max-conns",
	"dkv_gather_waits_total":                       "the event loop's waits for the clients a group commit just answered, by how each ended",
	"dkv_gather_wait_seconds_total":                "the time those waits held the node's turns back",
	"dkv_tls_handshake_failures_total":             "client connections whose TLS handshake failed (plain text is counted as dkv_requests_total{code=\"tls_required\"})",
	"dkv_peer_tls_handshake_failures_total":        "peer connections, dialled or accepted, whose TLS handshake failed (--peer-tls-cert)",
	"dkv_tls_certificate_expiry_timestamp_seconds": "when the certificate served now ends, in seconds since 1970, by port: client (--tls-cert), peer (--peer-tls-cert)",
	"dkv_metrics_connections_refused_total":        "connections to this endpoint refused (answered 503) because " + strconv.Itoa(metricsConnsMax) + " were open",
}

func (m *serverMetrics) handleMetrics(w http.ResponseWriter, r *http.Request) {
	// The node first: its event runs after every turn that came before
	// it, so the host's series written next count every request those
	// turns answered (each turn reports its requests at its end).
	nm, ok := m.nodeMetrics(r.Context())
	var host bytes.Buffer
	m.set.WritePrometheus(&host)
	var b bytes.Buffer
	for line := range bytes.Lines(host.Bytes()) {
		if name, ok := bytes.CutPrefix(line, []byte("# HELP ")); ok {
			name = bytes.TrimSuffix(name, []byte("\n"))
			if help, ok := hostHelp[string(name)]; ok {
				fmt.Fprintf(&b, "# HELP %s %s\n", name, help)
				continue
			}
		}
		b.Write(line)
	}
	p := promWriter{b: &b}
	p.gauge("dkv_node_info", "the node's mode and id (always 1)", 1, "mode", m.mode, "node_id", strconv.Itoa(int(m.id)))
	ready := 0.0
	if m.health.Load() == healthServing {
		ready = 1
	}
	p.gauge("dkv_ready", "1 once the node has recovered and serves clients", ready)
	if ns := m.recoveryNanos.Load(); ns > 0 {
		p.gauge("dkv_recovery_seconds", "time from the start of recovery to serving", time.Duration(ns).Seconds())
	}
	if h := m.host.Load(); h != nil {
		p.gauge("dkv_resp_scan_cursors", "RESP SCAN cursors the host holds (at most 10,000; past it the least recently used go)", float64(h.ScanCursors()))
	}
	p.gauge("dkv_node_scrape_ok", "1 if the node's own metrics below were read in this scrape", boolFloat(ok))
	if ok {
		writeNodeMetrics(&p, &nm)
	}
	metrics.WriteProcessMetrics(&b)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Write(b.Bytes())
}

// nodeMetrics reads the node's metrics on its goroutine.
func (m *serverMetrics) nodeMetrics(ctx context.Context) (core.Metrics, bool) {
	h := m.host.Load()
	if h == nil {
		return core.Metrics{}, false
	}
	ctx, cancel := context.WithTimeout(ctx, nodeScrapeTimeout)
	defer cancel()
	// f may run after a timeout: it writes only its own result, which
	// nobody reads then.
	res := new(core.Metrics)
	found := new(bool)
	err := h.Inspect(ctx, func(n core.Node) {
		if r, ok := n.(core.MetricsReporter); ok {
			*res, *found = r.Metrics(), true
		}
	})
	if err != nil || !*found {
		return core.Metrics{}, false
	}
	return *res, true
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// writeNodeMetrics writes what the node reported.
func writeNodeMetrics(p *promWriter, nm *core.Metrics) {
	st := &nm.Status
	p.gauge("dkv_keys", "keys the node holds (a mesh node: live keys, tombstones apart)", float64(st.Keys))
	p.gauge("dkv_scan_views", "consistent scans' views the node keeps, each holding what writes replace while it lasts (at most 64)", float64(st.ScanViews))
	p.gauge("dkv_keys_expiring", "keys with a deadline (a set's or an expire's ttl_ms), which the node deletes once it passes", float64(st.Expiring))
	p.gauge("dkv_store_data_bytes", "the store's data bytes: keys, values and 32 bytes a key, which --max-data-bytes bounds (a mesh node: tombstones and stamps too)", float64(st.DataBytes))
	p.gauge("dkv_store_data_bytes_max", "--max-data-bytes: past it the node refuses writes that grow the store (store_full); 0: no bound", float64(st.DataBytesMax))
	p.gauge("dkv_last_index", "index of the last record in the node's log", float64(st.LastIndex))
	p.gauge("dkv_wal_segments", "log segment files on disk", float64(st.WALSegments))
	p.gauge("dkv_wal_bytes", "bytes of log on disk", float64(st.WALBytes))
	p.counter("dkv_wal_written_bytes_total", "bytes written to the log since start, failed writes included", float64(nm.Log.Bytes))
	p.counter("dkv_wal_batches_undone_total", "batches whose write failed (disk full, I/O error) and were taken back out", float64(nm.Log.Undone))
	// Records per batch: how many requests one fsync carried, group
	// commit's figure of merit.
	bounds := make([]float64, core.BatchRecordsBuckets-1)
	for i := range bounds {
		bounds[i] = float64(int(1) << i)
	}
	p.histogram("dkv_wal_batch_records", "records per committed batch, each written and fsync'd once",
		bounds, nm.Log.BatchRecords[:], float64(nm.Log.Records), nm.Log.Batches)
	sn := &nm.Snapshots
	p.gauge("dkv_snapshot_index", "log index of the newest durable snapshot (0: none)", float64(st.SnapshotIndex))
	p.gauge("dkv_snapshot_in_progress", "1 while a snapshot is being written", boolFloat(st.Snapshotting))
	p.counter("dkv_snapshots_total", "snapshots written and made durable since start", float64(sn.Written))
	p.counter("dkv_snapshot_failures_total", "snapshots abandoned since start (the log stays whole; retried later)", float64(sn.Failed))
	p.counter("dkv_snapshot_duration_seconds_total", "time spent writing the snapshots since start, from start to durable", time.Duration(sn.Nanos).Seconds())
	if sn.Written > 0 {
		p.gauge("dkv_snapshot_last_duration_seconds", "time the newest snapshot took, from start to durable", time.Duration(sn.LastNanos).Seconds())
		p.gauge("dkv_snapshot_last_bytes", "size of the newest snapshot written", float64(sn.LastBytes))
		p.gauge("dkv_snapshot_last_keys", "keys in the newest snapshot written", float64(sn.LastKeys))
	}
	if is := st.Indexes; is != nil {
		writeIndexMetrics(p, is)
		p.gauge("dkv_index_bytes_max", "--max-index-bytes: once the indexes' estimated memory (text and vector bytes) reaches it, writes that set values are refused (store_full); 0: no bound", float64(st.IndexBytesMax))
	}
	if cs := st.Cluster; cs != nil {
		writeClusterMetrics(p, st, cs, nm.LeaderChanges)
	}
	if ms := st.Mesh; ms != nil {
		writeMeshMetrics(p, ms)
	}
}

// writeIndexMetrics writes the search indexes' status (--enable-indexes).
func writeIndexMetrics(p *promWriter, is *core.IndexStatus) {
	p.gauge("dkv_index_docs", "values in the full-text index", float64(is.Docs))
	p.gauge("dkv_index_terms", "distinct words in the full-text index", float64(is.Terms))
	p.gauge("dkv_index_postings", "(word, value) pairs in the full-text index", float64(is.Postings))
	p.gauge("dkv_index_text_bytes", "estimated memory of the full-text index", float64(is.TextBytes))
	p.gauge("dkv_index_vectors", "values with an embedding in the similarity index", float64(is.Vectors))
	p.gauge("dkv_index_vectors_pending", "vectors not yet linked into the similarity index's graphs (searches scan them)", float64(is.Pending))
	p.gauge("dkv_index_segments", "the similarity index's graphs, joined by merges in idle time", float64(is.Segments))
	p.gauge("dkv_index_work_left", "the similarity index's deferred work (links, merges), in units of about 0.1 ms; 0 once it has settled", float64(is.WorkLeft))
	p.gauge("dkv_index_vector_bytes", "estimated memory of the similarity index", float64(is.VectorBytes))
	p.gauge("dkv_index_queued", "writes' index updates waiting for the server's index worker (at most 4096; then writes wait)", float64(is.Queued))
	rebuildLeft := 0
	if r := is.Rebuild; r != nil {
		rebuildLeft = r.Total - r.Indexed
	}
	p.gauge("dkv_index_rebuild_left", "values a rebuild of the indexes (at start, after a snapshot install) has still to index; searches answer unavailable while it is above 0", float64(rebuildLeft))
}

var raftRoles = []string{"leader", "follower", "candidate", "pre-candidate"}

func writeClusterMetrics(p *promWriter, st *core.Status, cs *core.ClusterStatus, leaderChanges int64) {
	p.gauge("dkv_cluster_term", "the node's Raft term", float64(cs.Term))
	p.family("dkv_cluster_role", "gauge", "1 for the node's Raft role, 0 for the others")
	for _, r := range raftRoles {
		p.sample("dkv_cluster_role", boolFloat(cs.Role == r), "role", r)
	}
	p.gauge("dkv_cluster_leader_id", "the leader's node id as this node knows it (-1: none known)", float64(cs.LeaderID))
	p.counter("dkv_cluster_leader_changes_total", "times this node saw a new leader or term since start", float64(leaderChanges))
	p.gauge("dkv_cluster_commit_index", "highest log index known committed", float64(cs.Commit))
	p.gauge("dkv_cluster_applied_index", "highest log index applied to the store", float64(cs.Applied))
	p.gauge("dkv_cluster_apply_lag_entries", "committed entries not yet applied", float64(cs.Commit-min(cs.Applied, cs.Commit)))
	p.gauge("dkv_cluster_sessions", "client sessions remembered for exactly-once writes", float64(cs.Sessions))
	p.gauge("dkv_cluster_rejoining", "1 while a node started on an empty directory still withholds its vote (until it has heard every peer, and holds the committed log unless every peer is new too)", boolFloat(cs.Rejoining))
	if len(cs.Peers) == 0 {
		return // a follower knows nothing of its peers' logs
	}
	p.family("dkv_cluster_peer_match_index", "gauge", "leader only: highest index known on each follower's disk")
	for _, ps := range cs.Peers {
		p.sample("dkv_cluster_peer_match_index", float64(ps.Match), "peer", strconv.Itoa(ps.NodeID))
	}
	p.family("dkv_cluster_peer_lag_entries", "gauge", "leader only: entries of the leader's log each follower lacks (replication lag)")
	for _, ps := range cs.Peers {
		p.sample("dkv_cluster_peer_lag_entries", float64(st.LastIndex-min(ps.Match, st.LastIndex)), "peer", strconv.Itoa(ps.NodeID))
	}
	p.family("dkv_cluster_peer_snapshot_sending", "gauge", "leader only: 1 while a snapshot is being sent to the follower")
	for _, ps := range cs.Peers {
		p.sample("dkv_cluster_peer_snapshot_sending", boolFloat(ps.Snapshot), "peer", strconv.Itoa(ps.NodeID))
	}
}

func writeMeshMetrics(p *promWriter, ms *core.MeshStatus) {
	p.gauge("dkv_mesh_tombstones", "deletes held until every peer has them", float64(ms.Tombstones))
	p.counter("dkv_mesh_tombstones_collected_total", "tombstones collected since start", float64(ms.Collected))
	p.gauge("dkv_mesh_quorum_waiting", "writes waiting for their peers' acknowledgements", float64(ms.QuorumWaiting))
	// One family a figure, a sample a peer; ok false leaves a peer's
	// sample out (a time since something that has not happened yet).
	perPeer := func(name, kind, help string, value func(ps core.MeshPeerStatus) (v float64, ok bool)) {
		p.family(name, kind, help)
		for _, ps := range ms.Peers {
			if v, ok := value(ps); ok {
				p.sample(name, v, "peer", strconv.Itoa(ps.NodeID))
			}
		}
	}
	perPeer("dkv_mesh_antientropy_passes_total", "counter", "complete anti-entropy passes over every bucket with each peer since start",
		func(ps core.MeshPeerStatus) (float64, bool) { return float64(ps.Passes), true })
	perPeer("dkv_mesh_antientropy_lag_seconds", "gauge", "time since the start of the last complete pass with each peer: anything missed before that start has been repaired (absent: none yet)",
		func(ps core.MeshPeerStatus) (float64, bool) { return float64(ps.PassAgoMs) / 1000, ps.PassAgoMs >= 0 })
	perPeer("dkv_mesh_antientropy_bucket", "gauge", "bucket the current pass with each peer has reached (of 1024)",
		func(ps core.MeshPeerStatus) (float64, bool) { return float64(ps.PassBucket), true })
	perPeer("dkv_mesh_antientropy_items_sent_total", "counter", "items anti-entropy sent to each peer since start",
		func(ps core.MeshPeerStatus) (float64, bool) { return float64(ps.ItemsSent), true })
	perPeer("dkv_mesh_antientropy_items_fetched_total", "counter", "items anti-entropy fetched from each peer and applied here since start",
		func(ps core.MeshPeerStatus) (float64, bool) { return float64(ps.ItemsFetched), true })
	perPeer("dkv_mesh_replicated_total", "counter", "writes sent to each peer as they happened, since start",
		func(ps core.MeshPeerStatus) (float64, bool) { return float64(ps.Replicated), true })
	perPeer("dkv_mesh_peer_heard_seconds", "gauge", "time since the last message from each peer (absent: none since start)",
		func(ps core.MeshPeerStatus) (float64, bool) { return float64(ps.HeardAgoMs) / 1000, ps.HeardAgoMs >= 0 })
	perPeer("dkv_mesh_peer_unreachable", "gauge", "1 if an anti-entropy round with the peer timed out and none has answered since",
		func(ps core.MeshPeerStatus) (float64, bool) { return boolFloat(ps.Unreachable), true })
	perPeer("dkv_mesh_peer_clock_out_of_step", "gauge", "1 if this node's calendar clock is more than --max-offset ahead of the peer's, -1 if behind, by the calendar readings the two send each other, 0 in step; out of step with most peers, the node refuses writes",
		func(ps core.MeshPeerStatus) (float64, bool) {
			switch ps.Clock {
			case "ahead":
				return 1, true
			case "behind":
				return -1, true
			}
			return 0, true
		})
}

// promWriter writes metric families in Prometheus's text format: a HELP
// and a TYPE line per family, then its samples.
type promWriter struct{ b *bytes.Buffer }

func (p *promWriter) family(name, typ, help string) {
	fmt.Fprintf(p.b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
}

// sample writes one sample; labels are name, value pairs.
func (p *promWriter) sample(name string, v float64, labels ...string) {
	p.b.WriteString(name)
	if len(labels) > 0 {
		p.b.WriteByte('{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				p.b.WriteByte(',')
			}
			fmt.Fprintf(p.b, "%s=%q", labels[i], labels[i+1])
		}
		p.b.WriteByte('}')
	}
	p.b.WriteByte(' ')
	p.b.WriteString(formatFloat(v))
	p.b.WriteByte('\n')
}

func (p *promWriter) gauge(name, help string, v float64, labels ...string) {
	p.family(name, "gauge", help)
	p.sample(name, v, labels...)
}

func (p *promWriter) counter(name, help string, v float64) {
	p.family(name, "counter", help)
	p.sample(name, v)
}

// histogram writes a histogram of per-bucket counts: counts[i] for values
// at most bounds[i], the last count for everything above the last bound.
func (p *promWriter) histogram(name, help string, bounds []float64, counts []int64, sum float64, count int64) {
	p.family(name, "histogram", help)
	var cum int64
	for i, ub := range bounds {
		cum += counts[i]
		p.sample(name+"_bucket", float64(cum), "le", formatFloat(ub))
	}
	p.sample(name+"_bucket", float64(count), "le", "+Inf")
	p.sample(name+"_sum", sum)
	p.sample(name+"_count", float64(count))
}

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return strconv.FormatInt(int64(v), 10)
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
