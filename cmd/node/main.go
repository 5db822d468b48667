// Command node is the dkv server: it recovers a data directory, then serves
// the line-delimited JSON protocol and RESP2 on TCP until SIGINT or SIGTERM,
// as a single node, a cluster node or a mesh node.
//
// Exit status: 0 after a graceful shutdown, 1 when the server cannot start or
// its node fails (a failed fsync is never retried: restart it and it recovers
// from disk), 2 for bad flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"dkv/core"
	"dkv/disk"
	"dkv/election"
	"dkv/realnet"
	"dkv/textidx"
)

const (
	exitOK    = 0
	exitFatal = 1
	exitUsage = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

// options are the parsed flags.
type options struct {
	host          string
	port          int
	dataDir       string
	mode          string
	enableIndexes bool
	embeddings    string
	unsafeNoFsync bool
	metricsAddr   string // "": no metrics endpoint
	authFile      string // "": no password on the client port
	authWarning   string // what is wrong with the auth file, if anything
	tls           *serverTLS
	logFormat     string
	logLevel      slog.Level
	gc            gcSettings
	dataBound     dataBound // --max-data-bytes, resolved
	indexBound    dataBound // --max-index-bytes, resolved (with --enable-indexes)
	hostCfg       realnet.HostConfig
	single        core.SingleConfig
	// indexInlineValues is --index-inline-values (see core.AttachedIndexes).
	indexInlineValues int
	cluster           *clusterConfig // cluster mode only
	mesh              *meshConfig    // mesh mode only
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	fs.SetOutput(stderr)
	args, err := expandListFlags(args)
	if err != nil {
		return nil, err
	}
	var cf clusterFlags
	cf.register(fs)
	var mf meshFlags
	mf.register(fs)
	var tf tlsFlags
	tf.register(fs)
	limits := core.DefaultLimits()
	hostCfg := realnet.DefaultHostConfig()
	single := core.DefaultSingleConfig()
	o := &options{}
	fs.StringVar(&o.host, "host", "127.0.0.1", "address to listen on")
	fs.IntVar(&o.port, "port", 9999, "TCP port to listen on (0 picks a free one)")
	fs.StringVar(&o.dataDir, "data-dir", "data", "data directory; created if missing, one server at a time")
	fs.StringVar(&o.mode, "mode", "single", "replication mode: single, cluster, or mesh (also called masterless); the cluster flags imply cluster, --peer-repl-ports implies mesh")
	fs.BoolVar(&o.enableIndexes, "enable-indexes", false, "full-text (search) and word-embedding similarity (search_similar) indexes over the values, rebuilt from the data at start")
	fs.StringVar(&o.embeddings, "embeddings", "", "word vectors for --enable-indexes, in GloVe or word2vec text format (default: the built-in English model)")
	fs.IntVar(&o.indexInlineValues, "index-inline-values", core.IndexInlineValuesDefault, "--enable-indexes: a store of at most this many values, and as many KiB of keys and values, is indexed before\nthe node serves; a larger one while it serves, searches answering unavailable until that is done (0: always while serving)")
	fs.IntVar(&limits.QueryBytesMax, "max-query-bytes", limits.QueryBytesMax, "bytes in one search query")
	fs.IntVar(&limits.HitsMax, "max-hits", limits.HitsMax, "most hits one search may ask for (limit, top_k); at most 1000 with --enable-indexes")
	fs.BoolVar(&o.unsafeNoFsync, "unsafe-no-fsync", false, "never fsync: acknowledged writes can be lost on a crash (benchmarks only)")
	fs.StringVar(&o.authFile, "auth-file", "", "a file holding the password (one line, 16 to 512 bytes): clients must send it (auth op, AUTH,\nHELLO 2 AUTH default PASSWORD) before any request, and a cluster's or mesh's nodes prove it to each other;\nevery node of one cluster or mesh needs the same (default: none, every client and peer served)")
	fs.StringVar(&o.metricsAddr, "metrics-addr", "", "host:port to serve Prometheus metrics (/metrics) and health (/healthz) on, e.g. 127.0.0.1:9100 (default: none)")
	fs.StringVar(&o.logFormat, "log-format", logText, "log format: text (human-friendly) or json (one object per line)")
	logLevel := fs.String("log-level", "info", "least important log lines written: debug, info, warn or error")
	fs.IntVar(&hostCfg.ConnsMax, "max-conns", hostCfg.ConnsMax, "client connections at once; more are refused")
	fs.IntVar(&limits.RequestBytesMax, "max-request-bytes", limits.RequestBytesMax, "bytes in one request line (a RESP command: framing included); also bounds a bulk_get's answer and a scan page\n(default in a cluster: 4 MiB, so that one request cannot hold the leader past the election timeout)")
	fs.IntVar(&limits.KeyBytesMax, "max-key-bytes", limits.KeyBytesMax, "bytes in one key")
	fs.IntVar(&limits.ValueBytesMax, "max-value-bytes", limits.ValueBytesMax, "bytes in one value")
	fs.IntVar(&limits.BulkEntriesMax, "max-bulk-entries", limits.BulkEntriesMax, "items in one bulk_set, keys in one bulk_get or bulk_delete, keys in one scan page\n"+
		"(RESP's MSET, MGET, DEL, SCAN, KEYS alike; a RESP command has at most 2 x this + 8 arguments)")
	fs.IntVar(&hostCfg.EventLoops, "event-loops", hostCfg.EventLoops, "event loops (epoll, Linux) that serve the client connections, one by default; fewer than the cores each\nwait in epoll_wait on a core of their own and fsync inline, as Redis does; more park in Go's poller; with\n--enable-indexes, two loops or more analyse values in parallel; 0 gives each connection a reader and a writer\ngoroutine instead (the only choice elsewhere)")
	fs.DurationVar(&hostCfg.GatherWaitMax, "gather-wait-max", hostCfg.GatherWaitMax, "how long the event loop, having sent a group commit's replies, may wait for those clients' next\nrequests to join the next batch (never longer than a recent fsync; 0: never waits; at most 100ms)")
	fs.DurationVar(&hostCfg.LineTimeout, "line-timeout", hostCfg.LineTimeout, "how long a partial request line may stall (at least 1ms)")
	fs.DurationVar(&hostCfg.IdleTimeout, "idle-timeout", hostCfg.IdleTimeout, "how long a silent connection stays open (at least 100ms)")
	fs.Int64Var(&single.SegmentBytesMax, "segment-bytes", single.SegmentBytesMax, "log segment size that starts a new segment (at most 1 GiB: a restart reads a segment whole)")
	fs.Int64Var(&single.SnapshotLogBytesMin, "snapshot-log-bytes", single.SnapshotLogBytesMin, "log bytes since the last snapshot that start the next one")
	fs.IntVar(&o.gc.percent, "gc-percent", defaultGCPercent, "GOGC: the heap may grow to (1 + this/100) x the live data before the garbage collector runs;\nlower holds less memory and costs more CPU per request; -1 turns the collector off until --memory-limit;\n$GOGC, when set, replaces the default")
	maxDataBytes := fs.String("max-data-bytes", "", "bytes of keys and values (and 32 a key for its place in the tree) the store may hold, e.g. 2GiB: a write that\nwould pass it is refused (store_full); reads, deletes and smaller values are still served; 0: no bound\n(default: half of the memory this process may use: the machine's, its cgroup's limit or --memory-limit, the least;\na tenth of it with --enable-indexes, whose indexes it does not count)")
	maxIndexBytes := fs.String("max-index-bytes", "", "with --enable-indexes: bytes the search indexes may hold, by their own estimate (status: text_bytes and\nvector_bytes), e.g. 1GiB: past it a write that sets a value is refused (store_full); deletes and reads go on; 0: no bound\n(default: a quarter of the memory this process may use, as for --max-data-bytes)")
	memoryLimit := fs.String("memory-limit", "", "soft limit on the memory the Go runtime holds (GOMEMLIMIT), e.g. 512MiB or 4GiB: the collector works\nharder as the heap nears it; 0: none (default: $GOMEMLIMIT if set, else none)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.logFormat != logText && o.logFormat != logJSON {
		return nil, fmt.Errorf("--log-format must be text or json, not %q", o.logFormat)
	}
	if o.logLevel, err = parseLogLevel(*logLevel); err != nil {
		return nil, err
	}
	if o.metricsAddr != "" {
		if _, _, err := net.SplitHostPort(o.metricsAddr); err != nil {
			return nil, fmt.Errorf("--metrics-addr must be host:port, as 127.0.0.1:9100: %v", err)
		}
	}
	if o.dataDir == "" {
		return nil, errors.New(`--data-dir "" names no directory: give a path (the default is data, in the working directory)`)
	}
	if o.embeddings != "" && !o.enableIndexes {
		return nil, fmt.Errorf("--embeddings is for the similarity index: add --enable-indexes")
	}
	if *maxIndexBytes != "" && !o.enableIndexes {
		return nil, fmt.Errorf("--max-index-bytes bounds the search indexes: add --enable-indexes")
	}
	if o.indexInlineValues < 0 || o.indexInlineValues > indexInlineValuesMax {
		return nil, fmt.Errorf("--index-inline-values must be 0 to %d, not %d", indexInlineValuesMax, o.indexInlineValues)
	}
	set := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.gc, err = resolveGC(o.gc.percent, set["gc-percent"], *memoryLimit); err != nil {
		return nil, err
	}
	limitForData, limitName := o.gc.memoryLimit, "--memory-limit"
	if !o.gc.setLimit {
		limitForData, limitName = envMemoryLimit(), "$GOMEMLIMIT"
	}
	if o.dataBound, err = resolveDataBound(*maxDataBytes, set["max-data-bytes"], limitForData, limitName, o.enableIndexes); err != nil {
		return nil, err
	}
	limits.DataBytesMax = o.dataBound.bytes
	if o.enableIndexes {
		if o.indexBound, err = resolveIndexBound(*maxIndexBytes, set["max-index-bytes"], limitForData, limitName); err != nil {
			return nil, err
		}
		limits.IndexBytesMax = o.indexBound.bytes
	}
	if set[flagKVPort] {
		if set["port"] && o.port != cf.kvPort {
			return nil, fmt.Errorf("--port %d and --%s %d disagree: --%s is the cluster's name for --port; give one", o.port, flagKVPort, cf.kvPort, flagKVPort)
		}
		o.port = cf.kvPort
	}
	if o.mode, err = resolveMode(o.mode, set); err != nil {
		return nil, err
	}
	if o.authFile != "" {
		if hostCfg.AuthSecret, o.authWarning, err = readAuthFile(o.authFile); err != nil {
			return nil, err
		}
	}
	if hostCfg.EventLoops < 0 || hostCfg.EventLoops > realnet.EventLoopsMax {
		return nil, fmt.Errorf("--event-loops must be in 0..%d, not %d", realnet.EventLoopsMax, hostCfg.EventLoops)
	}
	if hostCfg.EventLoops > 0 && !realnet.EventLoopsSupported {
		return nil, fmt.Errorf("--event-loops %d: event loops need Linux (epoll); use 0", hostCfg.EventLoops)
	}
	if hostCfg.GatherWaitMax < 0 || hostCfg.GatherWaitMax > realnet.GatherWaitMaxLimit {
		return nil, fmt.Errorf("--gather-wait-max must be in 0..%v, not %v", realnet.GatherWaitMaxLimit, hostCfg.GatherWaitMax)
	}
	if o.port < 0 || o.port > 65535 {
		return nil, fmt.Errorf("--port must be in 0..65535, not %d", o.port)
	}
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"--max-conns", int64(hostCfg.ConnsMax)},
		{"--max-request-bytes", int64(limits.RequestBytesMax)},
		{"--max-key-bytes", int64(limits.KeyBytesMax)},
		{"--max-value-bytes", int64(limits.ValueBytesMax)},
		{"--max-bulk-entries", int64(limits.BulkEntriesMax)},
		{"--max-query-bytes", int64(limits.QueryBytesMax)},
		{"--max-hits", int64(limits.HitsMax)},
		{"--line-timeout", int64(hostCfg.LineTimeout)},
		{"--idle-timeout", int64(hostCfg.IdleTimeout)},
		{"--segment-bytes", single.SegmentBytesMax},
		{"--snapshot-log-bytes", single.SnapshotLogBytesMin},
	} {
		if f.v <= 0 {
			return nil, fmt.Errorf("%s must be positive", f.name)
		}
	}
	if single.SegmentBytesMax > segmentBytesMaxMax {
		return nil, fmt.Errorf("--segment-bytes %d is over %d (1 GiB): recovery reads a segment whole, so one takes about twice its size in memory at a restart", single.SegmentBytesMax, int64(segmentBytesMaxMax))
	}
	if o.enableIndexes && limits.HitsMax > indexHitsMax {
		return nil, fmt.Errorf("--max-hits %d is over %d, the most hits the indexes return", limits.HitsMax, indexHitsMax)
	}
	if o.enableIndexes && limits.QueryBytesMax > textidx.QueryBytesMaxMax {
		return nil, fmt.Errorf("--max-query-bytes %d is over %d, the longest query the full-text index takes", limits.QueryBytesMax, textidx.QueryBytesMaxMax)
	}
	hostDefaults := realnet.DefaultHostConfig()
	for _, f := range []struct {
		name          string
		v, least, def time.Duration
	}{
		{"--line-timeout", hostCfg.LineTimeout, lineTimeoutMin, hostDefaults.LineTimeout},
		{"--idle-timeout", hostCfg.IdleTimeout, idleTimeoutMin, hostDefaults.IdleTimeout},
	} {
		if f.v < f.least {
			return nil, fmt.Errorf("%s %v is too short: it must be at least %v (the default is %v)", f.name, f.v, f.least, f.def)
		}
	}
	if o.mode == "cluster" {
		if o.cluster, err = cf.resolve(o.host, o.port, set[flagKVPort] || set["port"], set); err != nil {
			return nil, err
		}
		hostCfg.ID = o.cluster.id
		if !set["max-request-bytes"] {
			limits.RequestBytesMax = clusterRequestBytesDefault
		}
	}
	if o.mode == "mesh" {
		if o.mesh, err = resolveMesh(&cf, &mf, o.host, o.port, set[flagKVPort] || set["port"], set); err != nil {
			return nil, err
		}
		hostCfg.ID = o.mesh.id
	}
	replAddr := ""
	switch {
	case o.cluster != nil:
		replAddr = o.cluster.replAddrs[o.cluster.id]
	case o.mesh != nil:
		replAddr = o.mesh.replAddrs[o.mesh.id]
	}
	if err := o.checkMetricsAddr(set); err != nil {
		return nil, err
	}
	if o.tls, err = tf.resolve(o.mode, replHost(replAddr)); err != nil {
		return nil, err
	}
	hostCfg.TLS = o.tls.clientCf
	hostCfg.RequestBytesMax = limits.RequestBytesMax
	hostCfg.BulkEntriesMax = limits.BulkEntriesMax
	single.Limits = limits
	o.hostCfg, o.single = hostCfg, single
	return o, nil
}

// segmentBytesMaxMax bounds --segment-bytes: recovery reads each log
// segment whole (about twice its size in memory), and a segment rolls only
// once it passes the flag, so a larger one made a restart's memory grow
// with it (found by review).
const segmentBytesMaxMax = 1 << 30

// The least --line-timeout and --idle-timeout taken. They are there to
// refuse a slip of the unit (1ns, 1us), which would close every connection
// at once, not to second-guess a short timeout chosen on purpose (tests
// use 300ms).
//
// lineTimeoutMin, 1 ms: the rest of a line that the network split in two
// segments then has at least a round trip of a local network (tens of
// microseconds) and a scheduler's time slice to arrive; shorter, lines
// merely split in transit would be cut off. (Writes have no timeout flag.)
//
// idleTimeoutMin, 100 ms: above realnet's end-of-stream probe, 20 ms after
// a reader drains its socket, which an idle deadline any sooner would
// replace (conn.setReadDeadline); and above the pause between two requests
// of a client that does any work of its own, or stalls for a garbage
// collection, which a shorter one would close between requests.
const (
	lineTimeoutMin = time.Millisecond
	idleTimeoutMin = 100 * time.Millisecond
)

// checkMetricsAddr refuses a --metrics-addr that is also an address the
// flags give a node: this node's own ports, which it could not then bind
// (and in single mode only after a recovery), or a peer's, which a node
// on this host could not bind, or which this node would dial as that peer
// and find its own HTTP server. Two addresses clash when their ports
// match and their hosts do, or when one host is a wildcard and the other
// is on this node's --host (a peer given by host:port elsewhere may well
// use the same port number on its own machine).
func (o *options) checkMetricsAddr(set map[string]bool) error {
	if o.metricsAddr == "" {
		return nil
	}
	mHost, mPort, _ := net.SplitHostPort(o.metricsAddr) // checked above
	if mPort == "0" {
		return nil // a free port, picked at the bind
	}
	type use struct{ addr, what string }
	var uses []use
	kvFlag := "--" + flagKVPort
	if set["port"] && !set[flagKVPort] {
		kvFlag = "--port"
	}
	own := func(kv, repl string) {
		uses = append(uses, use{kv, "this node's " + kvFlag}, use{repl, "this node's --" + flagReplPort})
	}
	switch {
	case o.cluster != nil:
		cc := o.cluster
		own(cc.kvAddrs[cc.id], cc.replAddrs[cc.id])
		for i := range cc.replAddrs {
			if core.NodeID(i) != cc.id {
				uses = append(uses,
					use{cc.kvAddrs[i], fmt.Sprintf("node %d's client port (in --%s)", i, flagPeerKV)},
					use{cc.replAddrs[i], fmt.Sprintf("node %d's replication port (in --%s)", i, flagPeerRepl)})
			}
		}
	case o.mesh != nil:
		mc := o.mesh
		own(mc.kvAddr, mc.replAddrs[mc.id])
		for i, a := range mc.replAddrs {
			if core.NodeID(i) != mc.id {
				uses = append(uses, use{a, fmt.Sprintf("node %d's replication port (in --%s)", i, flagMeshPeerRepl)})
			}
		}
		for i, a := range mc.peerKV {
			if core.NodeID(i) != mc.id {
				uses = append(uses, use{a, fmt.Sprintf("node %d's client port (in --%s)", i, flagPeerKV)})
			}
		}
	case o.port != 0:
		uses = append(uses, use{net.JoinHostPort(o.host, strconv.Itoa(o.port)), "--port"})
	}
	for _, u := range uses {
		h, p, err := net.SplitHostPort(u.addr)
		if err != nil || p != mPort {
			continue
		}
		if sameHost(h, mHost) || ((isWildcard(h) || isWildcard(mHost)) && sameHost(h, o.host)) {
			return fmt.Errorf("--metrics-addr %s clashes with %s, %s: give --metrics-addr a port of its own", o.metricsAddr, u.what, u.addr)
		}
	}
	return nil
}

// sameHost compares two hosts as written, IP addresses by value.
func sameHost(a, b string) bool {
	if ia, ib := net.ParseIP(a), net.ParseIP(b); ia != nil && ib != nil {
		return ia.Equal(ib)
	}
	return strings.EqualFold(a, b)
}

// isWildcard reports whether host, as a listen address, is every address.
func isWildcard(host string) bool {
	if host == "" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

// checkDanglingLinks refuses a data directory that is, or lies under, a
// symbolic link whose target does not exist. Creating the directory would
// fail with "mkdir DIR: file exists", true of the link but no help: the
// link is there, its target is not.
func checkDanglingLinks(dataDir string) error {
	for p := filepath.Clean(dataDir); ; {
		if fi, err := os.Lstat(p); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
				target, _ := os.Readlink(p)
				return fmt.Errorf("cannot create data directory %s: %s is a symbolic link to %s, which does not exist: create the link's target, or give --data-dir a path without the link", dataDir, p, target)
			}
			return nil // the link resolves; what is under it is disk.Open's
		}
		parent := filepath.Dir(p)
		if parent == p {
			return nil
		}
		p = parent
	}
}

// serverNode is the node run serves: a single node, a cluster node or a
// mesh node.
type serverNode interface {
	core.Node
	Close()
}

func run(args []string, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	// Usage errors are plain lines whatever --log-format says: the flags
	// that say it may be the ones in error.
	if err != nil {
		fmt.Fprintf(stderr, "dkv: %v\n", err)
		return exitUsage
	}
	switch o.mode {
	case "single", "cluster", "mesh":
	default:
		fmt.Fprintf(stderr, "dkv: --mode must be single, cluster or mesh, not %q\n", o.mode)
		return exitUsage
	}
	// With --auth-file or TLS, SIGHUP rereads the password and the
	// certificates. It is caught without them too: its default action
	// kills the process, and an operator (or a script that sends SIGHUP
	// to every server after rotating files) must not take a node down by
	// asking it to reload nothing. It is caught from here, before the
	// word vectors load and the data directory recovers, which take
	// seconds: one that came then killed the node without a line (found
	// by review); the buffered channel keeps it for the loop.
	hups := make(chan os.Signal, 1)
	signal.Notify(hups, syscall.SIGHUP)
	defer signal.Stop(hups)
	var reloading atomic.Bool // a SIGHUP's reload is under way
	o.gc.apply()
	id := o.hostCfg.ID
	logs := newServerLog(stderr, o.logFormat, o.logLevel)
	defer logs.flush() // last: the lines of the shutdown
	logs.Logger = logs.With("node", int(id), "mode", o.mode)
	fail := func(event string, err error) {
		logs.line(slog.LevelError, event, err.Error(), "err", err.Error())
	}

	// The word vectors are read before the data directory is touched: a
	// bad --embeddings file is a usage error, like a bad flag.
	if o.enableIndexes {
		idx, err := newIndexes(o.embeddings, o.single.Limits, logs.printf)
		if err != nil {
			fail("usage", err)
			return exitUsage
		}
		// The indexes run on a goroutine of their own (indexworker.go);
		// stopped after the node, whose calls they take.
		worker := newIndexWorker(idx)
		defer worker.close()
		o.single.Indexes = worker
		o.single.IndexBuild.InlineValuesMax = o.indexInlineValues
		if o.indexInlineValues == 0 {
			o.single.IndexBuild.InlineValuesMax = -1 // core's "none"; its 0 takes the default
		}
	}

	if o.unsafeNoFsync {
		if o.logFormat == logJSON {
			logs.Warn("--unsafe-no-fsync: nothing is ever fsync'd; acknowledged writes WILL BE LOST on a crash or power cut; use it only to measure what fsync costs, never for data", "event", "unsafe_no_fsync")
		} else {
			fmt.Fprint(logs.out, ""+
				"dkv: ************************************************************\n"+
				"dkv: WARNING: --unsafe-no-fsync: nothing is ever fsync'd.\n"+
				"dkv: Acknowledged writes WILL BE LOST on a crash or power cut.\n"+
				"dkv: Use it only to measure what fsync costs, never for data.\n"+
				"dkv: ************************************************************\n")
		}
	}

	// A dangling link would fail below as "mkdir data: file exists".
	if err := checkDanglingLinks(o.dataDir); err != nil {
		fail("start_failed", err)
		return exitFatal
	}
	// Lock the directory before binding the port, so a second server on the
	// same directory says so instead of "address in use".
	dir, err := disk.Open(o.dataDir, disk.Options{UnsafeNoFsync: o.unsafeNoFsync})
	if err != nil {
		fail("start_failed", err)
		return exitFatal
	}
	defer dir.Close() // last: releasing the lock lets another server in

	// The port is bound only once the node has recovered (Host.RunListen):
	// until then a client is refused at once, and a cluster client tries
	// another node, rather than waiting through a long replay unanswered.
	// A trial bind now makes a port that is taken fail before a recovery
	// that may take seconds; the real bind may still fail if the port is
	// taken meanwhile, and then says so just as clearly. The trial binds
	// without listening (trialBind), so no dial is reset. Port 0 is tried
	// too: the bind then takes some free port and tells nothing of the one
	// the real bind will pick, but it does check --host, which must resolve
	// to an address of this machine.
	addr := net.JoinHostPort(o.host, strconv.Itoa(o.port))
	if err := trialBind(addr); err != nil {
		fail("start_failed", fmt.Errorf("cannot listen: %w", err))
		return exitFatal
	}
	// The metrics endpoint is bound for real before recovery: /healthz
	// answers 503 meanwhile, and a taken address is refused now.
	var sm *serverMetrics
	if o.metricsAddr != "" {
		ln, err := listenMetrics(o.metricsAddr)
		if err != nil {
			fail("start_failed", err)
			return exitFatal
		}
		sm = newServerMetrics(o.mode, id)
		o.tls.exposeExpiry(sm.set)
		defer sm.serve(ln, logs)()
	}
	logs.Info(fmt.Sprintf("starting %s node (data dir %q, pid %d)", o.mode, o.dataDir, os.Getpid()),
		"event", "start", "data_dir", o.dataDir, "addr", addr, "metrics_addr", o.metricsAddr, "pid", os.Getpid())
	if o.dataBound.bytes > 0 {
		logs.Info(fmt.Sprintf("the store holds at most %d data bytes (%s; %s): writes past that are refused", o.dataBound.bytes, humanBytes(o.dataBound.bytes), o.dataBound.from),
			"event", "data_bound", "max_data_bytes", o.dataBound.bytes)
	} else {
		logs.Info(fmt.Sprintf("the store's data bytes have no bound (%s)", o.dataBound.from), "event", "data_bound", "max_data_bytes", 0)
	}
	switch {
	case o.enableIndexes && o.indexBound.bytes > 0:
		logs.Info(fmt.Sprintf("the search indexes hold at most %d bytes (%s; %s): writes that set values past that are refused", o.indexBound.bytes, humanBytes(o.indexBound.bytes), o.indexBound.from),
			"event", "data_bound", "max_index_bytes", o.indexBound.bytes)
	case o.enableIndexes:
		logs.Info(fmt.Sprintf("the search indexes have no bound (%s)", o.indexBound.from), "event", "data_bound", "max_index_bytes", 0)
	}
	if o.authFile != "" {
		logs.Info(fmt.Sprintf("clients must send the password of --auth-file %s before any request", o.authFile), "event", "auth_file")
	}
	if o.authWarning != "" {
		logs.Warn(o.authWarning, "event", "auth_file")
	}
	if o.tls.client != nil {
		msg := fmt.Sprintf("the client port speaks TLS only (--tls-cert %s)", o.tls.flags.certFile)
		if o.tls.flags.clientCAFile != "" {
			msg += fmt.Sprintf(" and requires client certificates of --tls-client-ca %s", o.tls.flags.clientCAFile)
		}
		if o.hostCfg.EventLoops == 0 {
			msg += "; a reader and a writer goroutine serve each connection (--event-loops 0)"
		}
		logs.Info(msg, "event", "tls")
	}
	if o.tls.peer != nil {
		logs.Info(fmt.Sprintf("peer connections speak TLS only, both sides' certificates checked against --peer-tls-ca %s", o.tls.flags.peerCAFile), "event", "tls")
	}
	for _, w := range o.tls.warnings {
		logs.Warn(w, "event", "tls")
	}

	hostCfg := o.hostCfg
	hostCfg.Logf = logs.printf
	// With indexes, two event loops or more and per-connection goroutines
	// analyse each value they read, in parallel; the one loop of the
	// default leaves the analysis to the indexes' goroutine (realnet's
	// Host.prepare). On two cores
	// the default gives 1.28 times the indexed writes a second of two
	// parked loops a core, the previous default, at 0.77 times the CPU a
	// write (docs/PERFORMANCE.md, Indexes, sixteenth session).
	hostCfg.Prepare = prepareFor(o)
	var node serverNode
	var peers *realnet.Peers         // nil for a single node
	var clusterLeader *election.Node // a cluster's node, handed over at shutdown
	switch {
	case o.cluster != nil:
		cn, err := newClusterNode(o, logs.printf)
		if err != nil {
			fail("start_failed", err)
			return exitFatal
		}
		node, peers, clusterLeader = cn.node, cn.peers, cn.node
		logs.Info(o.cluster.describeID()+": "+o.cluster.membership(), "event", "membership")
	case o.mesh != nil:
		mn, err := newMeshNode(o, logs.printf)
		if err != nil {
			fail("start_failed", err)
			return exitFatal
		}
		node, peers = mn.node, mn.peers
		logs.Info(o.mesh.describeID()+": "+o.mesh.membership(), "event", "membership")
	default:
		node = core.NewSingleNode(o.single)
	}
	if peers != nil {
		hostCfg.Network = peers
	}
	// The node reads the data directory through snapLoads, which notes
	// the snapshot that recovery loads, for the line below.
	snapLoads := &snapLoadDir{Dir: dir}
	host, err := realnet.NewHost(node, snapLoads, hostCfg)
	if err != nil {
		fail("start_failed", err)
		return exitFatal
	}
	if w, ok := o.single.Indexes.(*indexWorker); ok {
		w.postNode = host.Post // searches are answered off the node's loop
	}
	if sm != nil {
		host.SetMetrics(sm)
		sm.host.Store(host)
	}
	if peers != nil {
		// Messages that arrive before the node has recovered wait in the
		// host's queue. Peers is closed once Run has returned.
		peers.ReadOn(host)
		if sm != nil {
			peers.SetMetrics(sm)
		}
		if err := peers.Start(host.Deliver); err != nil {
			peers.Close()
			fail("start_failed", err)
			return exitFatal
		}
	}

	// The first SIGINT or SIGTERM shuts down gracefully, even during
	// recovery (the loop stops right after Start); signal.Stop then restores
	// the default, so a second one kills a shutdown that hangs.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	runDone := make(chan struct{})
	defer close(runDone)
	// The certificates' ends, checked at start and at each SIGHUP, are
	// checked daily too, for a node that runs into its last 30 days.
	go o.tls.watchExpiry(logs, certExpiryCheckEvery, runDone)
	start := time.Now()
	go func() {
		ready := host.Ready()
		for {
			select {
			case <-ready:
				ready = nil
				recovery := time.Since(start)
				if sm != nil {
					sm.serving(recovery)
				}
				snapMsg, snapAttrs := snapLoads.report()
				logs.Info(snapMsg, snapAttrs...)
				// Recovery is done and the listener is up: tests
				// and scripts wait for the word "serving".
				attrs := []any{"addr", host.Addr().String(), "data_dir", o.dataDir, "recovery_seconds", recovery.Seconds()}
				if cc := o.cluster; cc != nil {
					logs.line(slog.LevelInfo, "serving", fmt.Sprintf("serving cluster node %d on %s (repl %s, peers %s, cluster %016x, data dir %q)",
						cc.id, host.Addr(), cc.replAddrs[cc.id], cc.peerList(), cc.clusterID, o.dataDir),
						append(attrs, "repl", cc.replAddrs[cc.id], "cluster", fmt.Sprintf("%016x", cc.clusterID))...)
				} else if mc := o.mesh; mc != nil {
					logs.line(slog.LevelInfo, "serving", fmt.Sprintf("serving mesh node %d on %s (repl %s, peers %s, mesh %016x, write quorum %d, data dir %q)",
						mc.id, host.Addr(), mc.replAddrs[mc.id], mc.peerList(), mc.meshID, mc.writeQuorum, o.dataDir),
						append(attrs, "repl", mc.replAddrs[mc.id], "mesh", fmt.Sprintf("%016x", mc.meshID))...)
				} else {
					logs.line(slog.LevelInfo, "serving", fmt.Sprintf("serving single node on %s (data dir %q)", host.Addr(), o.dataDir), attrs...)
				}
			case <-hups:
				if o.authFile == "" && !o.tls.reloadable() {
					logs.Info("SIGHUP: nothing to reload (no --auth-file, no --tls-cert or --peer-tls-cert); still serving", "event", "reload")
					break
				}
				if !reloading.CompareAndSwap(false, true) {
					logs.Warn("SIGHUP: the last reload is still reading its files (one that does not answer: a pipe with no writer, a hung mount?); this SIGHUP is skipped", "event", "reload")
					break
				}
				// On a goroutine of its own: a file that never answers
				// (a FIFO with no writer) held this loop, and with it
				// every later SIGTERM (found by review).
				go func() {
					defer reloading.Store(false)
					if o.authFile != "" {
						reloadAuth(o, host, peers, logs)
					}
					o.tls.reload(logs)
				}()
			case sig := <-sigs:
				signal.Stop(sigs)
				if sm != nil {
					sm.health.Store(healthStopping)
				}
				logs.Info(fmt.Sprintf("received %v, shutting down", sig), "event", "shutdown")
				if clusterLeader != nil && ready == nil {
					// Serving: a node still recovering leads nothing,
					// and its loop would not answer the hand-over.
					handOver(host, clusterLeader, handOverWait, logs)
				}
				host.Shutdown()
			case <-runDone:
				return
			}
		}
	}()

	err = host.RunListen(context.Background(), func() (net.Listener, error) { return net.Listen("tcp", addr) })
	if sm != nil {
		sm.health.Store(healthStopping)
	}
	if peers != nil {
		peers.Close() // before the node's files: deliver calls may be in progress
	}
	node.Close()
	if err != nil {
		fail("fatal", fmt.Errorf("fatal: %w", err))
		hint := ""
		switch {
		case o.cluster != nil:
			hint = o.cluster.startHint(err)
		case o.mesh != nil:
			hint = o.mesh.startHint(err)
		}
		if hint != "" {
			logs.line(slog.LevelError, "hint", hint)
		}
		return exitFatal
	}
	logs.Info(fmt.Sprintf("shut down cleanly after %v", time.Since(start).Round(time.Millisecond)), "event", "shutdown")
	return exitOK
}

// prepareFor is the analysis of a request's values that the connections
// do, in parallel, for the indexes (realnet.HostConfig.Prepare): a single
// node's and a mesh node's. A cluster node indexes the values it applies
// from its log, where the request's analysis is gone, so with two event
// loops or more every cluster write was analysed twice, once for nothing
// (found by review).
func prepareFor(o *options) func(*core.Request) {
	if o.cluster != nil {
		return nil
	}
	return core.PrepareFunc(o.single.Indexes)
}

// defaultGCPercent is the collector's default. At 100 (Go's) the heap grows
// to twice the live data between collections: with 1M keys of 100-byte
// values (~125 MiB live) a node held 250-280 MiB, against Redis's ~190.
// At 50 it held 200-215 MiB, for ~0.9 µs more collector CPU per durable
// Set at 50 clients (1.2-1.4 µs against 0.3-0.4; perf, cmd/bench compare).
// At 25: 186 MiB and 1.8-2.1 µs.
//
// With --enable-indexes too, though the collector costs an indexed write
// more there (its live heap is mostly the indexes, 4-5 KB a 1 KB value,
// and each write allocates ~11 KB to analyse and embed its value: 8 µs
// of collector CPU a write at 50 against 4.6 µs at 100, gctrace). A heap
// that grows, as a node's does while values arrive, takes each page of
// its peak, (1 + this/100) × the live data, fresh from the kernel, and a
// fresh page cost 11-16 µs of system time on the virtual machines we
// measure on: 1.37 page faults a write at 100 against 1.14 at 50. Four
// runs of cmd/bench index with the two side by side (--alt-server-flags)
// gave 1.07, 1.02, 1.01 and 1.03 × the writes a second at 50, for 0.93 to
// 0.99 × the CPU a write (2026-12-03).
const defaultGCPercent = 50

// gcSettings are the Go runtime's collector settings; a field left as
// the environment set it is not applied.
type gcSettings struct {
	percent     int
	setPercent  bool
	memoryLimit int64 // bytes; 0: none
	setLimit    bool
}

// resolveGC checks the collector flags. $GOGC and $GOMEMLIMIT, which the
// runtime has read already, stand where their flag is not given.
func resolveGC(percent int, percentGiven bool, limit string) (gcSettings, error) {
	g := gcSettings{percent: percent, setPercent: percentGiven || os.Getenv("GOGC") == ""}
	if g.setPercent && (percent < -1 || percent == 0) {
		return g, fmt.Errorf("--gc-percent must be -1 (off) or at least 1, not %d", percent)
	}
	if limit != "" {
		n, err := parseBytes(limit)
		if err != nil {
			return g, fmt.Errorf("--memory-limit: %v", err)
		}
		if n != 0 && n < 1<<20 {
			// A slip of the unit (12 for 12GiB): the collector would run
			// without end, and the data bound, half of it, refuse every
			// write (found by review).
			return g, fmt.Errorf("--memory-limit %d is under 1MiB: give a unit (as 512MiB or 4GiB), or 0 for none", n)
		}
		g.memoryLimit, g.setLimit = n, true
	}
	if g.setPercent && percent < 0 && !g.setLimit && os.Getenv("GOMEMLIMIT") == "" {
		return g, fmt.Errorf("--gc-percent -1 turns the collector off: give --memory-limit, or the heap grows without bound")
	}
	return g, nil
}

func (g gcSettings) apply() {
	if g.setPercent {
		debug.SetGCPercent(g.percent)
	}
	if g.setLimit {
		limit := g.memoryLimit
		if limit == 0 {
			limit = math.MaxInt64 // none
		}
		debug.SetMemoryLimit(limit)
	}
}

// parseBytes reads a size as GOMEMLIMIT does: a number of bytes with an
// optional unit B, KiB, MiB, GiB or TiB; 0 means no limit.
func parseBytes(s string) (int64, error) {
	units := []struct {
		suffix string
		shift  uint
	}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}, {"B", 0}}
	num, shift := s, uint(0)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			num, shift = strings.TrimSuffix(s, u.suffix), u.shift
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64>>shift {
		return 0, fmt.Errorf("%q is not a size in bytes (as 512MiB, 4GiB or 1073741824)", s)
	}
	return n << shift, nil
}
