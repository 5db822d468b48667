// Command kv is the command-line client of dkv.
//
//	kv [flags] command [args]
//
// Run "kv help" for the commands and examples.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"dkv/client"
	"dkv/core"
	"dkv/internal/tlsfiles"
)

// Exit codes: scripts tell a refused request from a mistyped command.
const (
	exitOK    = 0
	exitError = 1 // the server or the connection failed the operation
	exitUsage = 2 // the command line is wrong; nothing was sent
	// exitConditionFailed: the condition of a conditional set or delete
	// (--if-absent, --if-exists, --if-value) did not hold; nothing was
	// written.
	exitConditionFailed = 3
	// exitUnknownOutcome: a write was sent and its answer never came (or
	// the cluster could not tell): it may or may not have applied. Apart
	// from 1 so that a script does not take it for a refusal and repeat
	// the write (kv incr n || kv incr n counted twice).
	exitUnknownOutcome = 4
	// exitInterrupted: a load stopped by Ctrl-C (or SIGTERM), as a shell
	// reports a command killed by SIGINT.
	exitInterrupted = 130
)

const usage = `usage: kv [flags] command [args]

Commands:
  set [--ttl D] [--if-absent | --if-exists | --if-value OLD] KEY VALUE
                           store VALUE under KEY (durable when it returns);
                           with a condition, only if KEY does not exist,
                           exists, or holds OLD (compare-and-set), checked
                           where the write applies; else nothing is
                           written, KEY's value is said on standard error,
                           and the exit status is 3. With --ttl (30s,
                           1500ms, 2h; at least 1ms, at most ten years),
                           the server deletes KEY once D has passed; a set
                           without it keeps KEY for good
  get KEY                  print the value of KEY; exit 1 if it does not exist
  ttl KEY                  print the time KEY has left before it expires
                           (e.g. 29.5s; 0s once due), or "no expiry"; exit 1
                           if it does not exist
  expire KEY DURATION      give KEY, which must exist, a deadline DURATION
                           from now (as set --ttl takes it), in place of any
                           it had; its value stays. Exit 1 if KEY does not
                           exist: nothing is written
  persist KEY              take KEY's deadline away, so that it stays until
                           written or deleted; prints "OK (deadline
                           removed)", or "OK (no deadline to remove)" (also
                           for a cluster's retry of a persist that had
                           applied). Exit 1 if KEY does not exist
  incr KEY [DELTA]         add DELTA (default 1; negative to subtract) to the
                           integer KEY holds, a missing KEY counting as 0,
                           and print the new value; KEY keeps its deadline.
                           Exit 1 if KEY holds anything but an integer
                           (not_integer) or the sum leaves the int64 range
                           (overflow): nothing is written. It is not
                           idempotent: kv sends it once to a server, and a
                           cluster (--addrs) applies its retries once; a
                           single node named in --addrs keeps no session,
                           so a retry there may count twice
  decr KEY [DELTA]         incr KEY by minus DELTA (default 1)
  delete [--if-value OLD] KEY
                           remove KEY (succeeds if it does not exist); with
                           --if-value, only if KEY holds OLD, else as a set
                           whose condition fails (exit 3)
  bulk-set KEY VALUE ...   store every pair at once, all or nothing
  bulk-set --file FILE     the same, from a JSON array of {"key","value"}
                           (- for standard input)
  bulk-get KEY ...         read every KEY at one instant; prints a JSON line
                           {"key":…,"value":…} per KEY, value null if missing
  bulk-delete KEY ...      remove every KEY at once; prints how many existed
  search [--any] [--limit N] QUERY
                           keys whose values match QUERY, best first, with
                           their BM25 scores (every word must match unless
                           --any; "quoted phrases" match word for word); a
                           line "SCORE<tab>KEY" each, KEY as a JSON string
                           if it holds a control character or starts with "
  similar [--top-k N] QUERY
                           the N (default 5) keys whose values mean most
                           nearly what QUERY means (word embeddings),
                           printed as search prints them
  scan [--keys-only] [--limit N | --all] [--start-after KEY] [--consistent] [PREFIX]
                           the keys that start with PREFIX (every key if
                           none), in key order, a JSON line each
                           {"key":…,"value":…}, with "expires_at" (UTC, RFC
                           3339) for a key that expires; at most N (default 1000),
                           and where keys are left, how to go on (on
                           standard error). With --all, or --consistent,
                           every page is read at the first page's instant
                           (--consistent=false: each at its own)
  load [--batch N] FILE    store every {"key":…,"value":…} line of FILE (- for
                           standard input), as scan prints them, N (default
                           1000) to a bulk_set; a progress line on standard
                           error. A line with "expires_at" is set with the
                           time left until then (skipped if it has passed).
                           Ctrl-C stops it between lines, saying which are
                           stored (exit 130)
  ping                     check that the server answers
  status                   print the server's status as JSON
  help                     print this text

A command's flags go before KEY. A KEY that starts with "-" follows "--",
for every command that takes a KEY: kv get -- -k, kv set -- -k VALUE.

Flags (before the command):
  --host HOST       server host (default 127.0.0.1)
  --port PORT       server port (default 9999)
  --addr HOST:PORT  server address; overrides --host and --port
  --addrs A,B,C     a cluster's nodes (HOST:PORT each): the command goes to
                    the leader, found and followed through failovers; a
                    write is applied at most once (not with --host, --port
                    or --addr). A single node keeps no sessions: name it
                    with --addr, or a retried write may apply twice
  --timeout D       time allowed for the whole command (default 5s); for scan
                    and load, which may take many requests, for each request
  --auth-file FILE  the server's password, from the file its --auth-file
                    names (one line)
  --tls             connect over TLS, for a server started with --tls-cert,
                    trusting the system's authorities
  --tls-ca FILE     connect over TLS, trusting the authorities in FILE (PEM),
                    e.g. the ca.pem of go run ./cmd/certs
  --tls-cert FILE, --tls-key FILE
                    the client certificate and key to present, for a server
                    started with --tls-client-ca (implies --tls)
  --tls-server-name NAME
                    the name the server's certificate must carry, when it is
                    not the host dialled

Examples:
  kv set hello world
  kv get hello
  kv --port 9001 delete hello
  kv set --if-absent lock owner-1   # exit 3 if lock exists
  kv set --if-value 41 counter 42   # exit 3 if counter does not hold 41
  kv set --ttl 30s session:7 alice  # gone in 30 seconds
  kv set --if-absent --ttl 10s lock owner-1   # a lease that frees itself
  kv ttl session:7                  # 29.5s
  kv expire session:7 1h            # gone in an hour, as it is now
  kv persist session:7              # kept for good
  kv incr hits                      # 1: a missing key counts as 0
  kv incr hits -5                   # -4
  kv decr hits                      # -5
  kv delete --if-value owner-1 lock
  kv bulk-set k1 v1 k2 v2
  kv bulk-set --file items.json     # [{"key":"k1","value":"v1"}, ...]
  kv bulk-get k1 k2 nope            # {"key":"k1","value":"v1"} ... {"key":"nope","value":null}
  kv bulk-delete k1 k2
  kv search 'hello "big world"'
  kv similar --top-k 3 ocean
  kv scan user:                     # {"key":"user:1","value":"..."} ...
  kv scan --keys-only --all
  kv scan --all > dump.jsonl && kv --port 9001 load dump.jsonl   # copy every key to another server
  kv --addr 10.0.0.5:9999 status
  kv --addrs 127.0.0.1:9001,127.0.0.1:9002,127.0.0.1:9003 set hello world
  kv --auth-file dkv.pass get hello
  kv --tls-ca certs/ca.pem get hello

Exit status: 0 success, 1 the operation failed, 2 usage error, 3 the
condition of a set or delete did not hold (nothing was written), 4 a
write's outcome is unknown (its answer never came: it may or may not have
applied; read the key back before writing again), 130 a load stopped by
Ctrl-C (it says which lines are stored).
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// usageError is a mistake on the command line, reported with exit 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// notFoundError is a get (ttl, expire, persist) of a missing key: an
// expected answer, reported plainly.
type notFoundError struct{ key string }

func (e notFoundError) Error() string { return "not found: " + e.key }

func usagef(format string, args ...any) error {
	for _, a := range args {
		// A command's flag parse that met -h or --help (kv scan --help)
		// is no mistake: it said "scan: flag: help requested", exit 2.
		if err, ok := a.(error); ok && errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
	}
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// errHelp is -h or --help among a command's flags: the usage text is
// printed, exit 0.
var errHelp = errors.New("help requested")

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kv", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported below, with the usage text
	host := fs.String("host", "127.0.0.1", "")
	port := fs.Int("port", 9999, "")
	addr := fs.String("addr", "", "")
	addrs := fs.String("addrs", "", "")
	timeout := fs.Duration("timeout", 5*time.Second, "")
	authFile := fs.String("auth-file", "", "")
	useTLS := fs.Bool("tls", false, "")
	tlsCA := fs.String("tls-ca", "", "")
	tlsCert := fs.String("tls-cert", "", "")
	tlsKey := fs.String("tls-key", "", "")
	tlsServerName := fs.String("tls-server-name", "", "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return exitOK
		}
		return fail(stderr, usagef("%v", err))
	}
	if fs.NArg() == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	if *timeout <= 0 {
		return fail(stderr, usagef("--timeout must be positive, got %v", *timeout))
	}
	var cluster []string
	if *addrs != "" {
		var single []string
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "host" || f.Name == "port" || f.Name == "addr" {
				single = append(single, "--"+f.Name)
			}
		})
		if len(single) > 0 {
			return fail(stderr, usagef("--addrs names a cluster; it does not go with %s", strings.Join(single, ", ")))
		}
		for a := range strings.SplitSeq(*addrs, ",") {
			// A list is often written "a, b": the space is not part of
			// the host (found by review: " 127.0.0.1" failed the dial,
			// "no such host", and the command with it).
			a = strings.TrimSpace(a)
			if !isHostPort(a) {
				return fail(stderr, usagef("--addrs takes HOST:PORT,HOST:PORT,...: %q is not HOST:PORT", a))
			}
			cluster = append(cluster, a)
		}
	} else if *addr != "" {
		if !isHostPort(*addr) {
			return fail(stderr, usagef("--addr takes HOST:PORT: %q is not HOST:PORT", *addr))
		}
	} else {
		if *port < 1 || *port > 65535 {
			return fail(stderr, usagef("--port must be in 1..65535, got %d", *port))
		}
		*addr = net.JoinHostPort(*host, strconv.Itoa(*port))
	}
	cmd, cmdArgs := fs.Arg(0), fs.Args()[1:]
	if cmd == "help" || cmd == "-h" || cmd == "--help" {
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	op, err := parseCommand(cmd, cmdArgs)
	if errors.Is(err, errHelp) {
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	if ue := (*usageError)(nil); errors.As(err, &ue) {
		// "kv get hello --port 9001" said only that get takes 1
		// argument: name the flag that went after the command (found by
		// review).
		for _, a := range cmdArgs {
			if a == "--" {
				break
			}
			if name := flagName(fs, a); name != "" {
				ue.msg += fmt.Sprintf(" (--%s is a flag of kv's, which goes before the command: kv --%s … %s …)", name, name, cmd)
				break
			}
		}
	}
	if err != nil {
		return fail(stderr, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	opts := []client.Option{client.WithDialTimeout(*timeout), client.WithRequestTimeout(*timeout), client.WithRetries(1)}
	if *authFile != "" {
		b, err := os.ReadFile(*authFile)
		if err != nil {
			return fail(stderr, usagef("--auth-file: %v", err))
		}
		opts = append(opts, client.WithPassword(core.PasswordFromFile(b)))
	}
	if *useTLS || *tlsCA != "" || *tlsCert != "" || *tlsKey != "" || *tlsServerName != "" {
		cfg, err := tlsfiles.Client(*tlsCA, *tlsCert, *tlsKey, *tlsServerName)
		if err != nil {
			return fail(stderr, usagef("TLS: %v", err))
		}
		opts = append(opts, client.WithTLS(cfg))
	}
	var c store
	if cluster != nil {
		c, err = client.DialCluster(ctx, cluster, opts...)
	} else {
		c, err = client.DialContext(ctx, *addr, opts...)
	}
	// A password refused though --auth-file gave one: fail's hint to give
	// one with --auth-file misled (found by review).
	failed := func(err error) int {
		if *authFile != "" && errors.Is(err, client.ErrAuth) {
			err = passwordRefusedError{err: err, file: *authFile}
		}
		return fail(stderr, err)
	}
	if err != nil {
		return failed(err)
	}
	defer c.Close()
	if writes[cmd] {
		// A write to a port that does not speak dkv's protocol (a node's
		// --repl-port or --metrics-addr, ports the README's examples put
		// side by side) broke its connection or came back undecodable: it
		// was reported as a write of unknown outcome, exit 4, "read the
		// key back", though nothing had stored it (found by review). A
		// ping first, on the connection the write then takes, fails such a
		// port before anything is written: exit 1, and it says so.
		if err := c.Ping(ctx); err != nil {
			return failed(notSentError{err: err})
		}
	}
	opCtx := ctx
	if cmd == "scan" || cmd == "load" {
		// A walk or a load of many pages: each request is bounded by
		// --timeout (WithRequestTimeout), the whole is not.
		opCtx = context.Background()
	}
	if cmd == "load" {
		// Ctrl-C stops a load between lines, saying which are stored:
		// killed, it left a progress line and no word of where to go on.
		// A second Ctrl-C kills it, as the handler is dropped after the
		// first.
		intr, stopIntr := signal.NotifyContext(opCtx, os.Interrupt, syscall.SIGTERM)
		defer stopIntr()
		go func() { <-intr.Done(); stopIntr() }()
		opCtx = intr
	}
	if err := op(opCtx, c, stdout); err != nil {
		var more moreKeysError
		if errors.As(err, &more) {
			fmt.Fprintf(stderr, "kv: %v\n", more)
			return exitOK
		}
		var intr interruptedError
		if errors.As(err, &intr) {
			global := args[:len(args)-fs.NArg()]
			intr.load = loadCommand(global, cmdArgs[:len(cmdArgs)-1])
			fmt.Fprintf(stderr, "kv: %v\n", intr)
			return exitInterrupted
		}
		var refused conditionFailedError
		if errors.As(err, &refused) {
			fmt.Fprintln(stderr, refused)
			return exitConditionFailed
		}
		if cmd == "bulk-set" && (isTooLarge(err) || errors.Is(err, client.ErrRequestTooLarge)) {
			// fail's hint for a too_large names load's --batch, which a
			// bulk-set does not take (found by review).
			fmt.Fprintf(stderr, "%v\n(a bulk-set is one request, all or nothing, within the server's --max-bulk-entries items and --max-request-bytes: split the items, or store them with kv load, which sends them in batches)\n", err)
			return exitError
		}
		return failed(err)
	}
	return exitOK
}

// isHostPort reports whether a is HOST:PORT, the port given.
func isHostPort(a string) bool {
	_, port, err := net.SplitHostPort(a)
	return err == nil && port != "" && !strings.ContainsFunc(a, unicode.IsSpace)
}

// writes are the commands that change the store: each is preceded by a
// ping, so that a port that is no dkv client port fails it unsent.
var writes = map[string]bool{
	"set": true, "delete": true, "incr": true, "decr": true, "expire": true, "persist": true,
	"bulk-set": true, "bulk-delete": true, "load": true,
}

// notSentError is the failed ping before a write: the write was not sent.
type notSentError struct{ err error }

func (e notSentError) Error() string {
	return e.err.Error() + "\n(kv: the ping sent before the write failed, so the write was not sent)"
}
func (e notSentError) Unwrap() error { return e.err }

// notAClientPort reports whether err is what a port that is no dkv client
// port makes of a request: an answer that is not the protocol (an HTTP
// server's, as --metrics-addr's), or a connection dropped at once (as a
// replication port drops what is not a peer's hello). A server that
// crashed mid-request drops it too, hence "or".
func notAClientPort(err error) bool {
	return errors.Is(err, client.ErrProtocol) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// passwordRefusedError is a server's refusal of the password that
// --auth-file gave.
type passwordRefusedError struct {
	err  error
	file string
}

func (e passwordRefusedError) Error() string { return e.err.Error() }
func (e passwordRefusedError) Unwrap() error { return e.err }

// store is what the commands use: a client.KVClient of one server, or a
// client.ClusterKVClient of a cluster.
type store interface {
	Set(ctx context.Context, key, value string) error
	SetWithTTL(ctx context.Context, key, value string, ttl time.Duration) error
	Get(ctx context.Context, key string) (string, error)
	TTL(ctx context.Context, key string) (time.Duration, bool, error)
	Expire(ctx context.Context, key string, ttl time.Duration) error
	Persist(ctx context.Context, key string) (bool, error)
	Incr(ctx context.Context, key string, delta int64) (int64, error)
	Delete(ctx context.Context, key string) error
	BulkSet(ctx context.Context, items []client.KV) error
	BulkGet(ctx context.Context, keys ...string) ([]*string, error)
	BulkDelete(ctx context.Context, keys ...string) (int, error)
	Ping(ctx context.Context) error
	Status(ctx context.Context) (*core.Status, error)
	Search(ctx context.Context, query string, opts ...client.SearchOption) ([]client.Hit, error)
	SearchSimilar(ctx context.Context, query string, topK int) ([]client.Hit, error)
	Scan(ctx context.Context, prefix, startAfter string, limit int) ([]client.KV, bool, error)
	ScanKeys(ctx context.Context, prefix, startAfter string, limit int) ([]string, bool, error)
	Do(ctx context.Context, req *core.Request) (*core.Response, error)
	Close() error
}

var (
	_ store = (*client.KVClient)(nil)
	_ store = (*client.ClusterKVClient)(nil)
)

// operation runs one command against the server.
type operation func(ctx context.Context, c store, stdout io.Writer) error

// parseCommand checks the whole command line before anything is sent, so a
// usage error never half-runs.
func parseCommand(cmd string, args []string) (operation, error) {
	// Keys, values and queries are UTF-8 text, as JSON is: other bytes
	// failed after the dial, exit 1, as "encoding request: jsontext:
	// invalid UTF-8 within "/key" after offset 25" (found by review).
	// A file's name (load FILE, bulk-set --file FILE) is not sent and
	// may be any bytes.
	checked := args
	if cmd == "load" || cmd == "bulk-set" && len(args) > 0 && strings.HasPrefix(strings.TrimLeft(args[0], "-"), "file") {
		checked = nil
	}
	for _, a := range checked {
		if !utf8.ValidString(a) {
			return nil, usagef("%s: %q is not UTF-8 text: dkv's keys and values are UTF-8 (as in JSON); encode binary data (base64) first", cmd, a)
		}
	}
	switch cmd {
	case "get", "ttl", "expire", "persist", "bulk-get", "bulk-delete":
		// These take no flags, but a leading "--" ends the flags all the
		// same, as set's and delete's flag parsing and incr's take it: a
		// script may write kv get -- "$KEY" for a KEY that starts with
		// "-" whatever the command. (A key "--" is then kv get -- --.)
		if len(args) > 0 && args[0] == "--" {
			args = args[1:]
		}
	}
	nargs := func(n int, form string) error {
		if len(args) != n {
			return usagef("%s takes %d argument(s): kv %s", cmd, n, form)
		}
		return nil
	}
	switch cmd {
	case "set", "delete":
		return parseWrite(cmd, args)
	case "get":
		if err := nargs(1, "get KEY"); err != nil {
			return nil, err
		}
		return func(ctx context.Context, c store, w io.Writer) error {
			v, err := c.Get(ctx, args[0])
			if errors.Is(err, client.ErrNotFound) {
				return notFoundError{key: args[0]}
			}
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(w, v)
			return err
		}, nil
	case "ttl":
		if err := nargs(1, "ttl KEY"); err != nil {
			return nil, err
		}
		return func(ctx context.Context, c store, w io.Writer) error {
			left, expires, err := c.TTL(ctx, args[0])
			if errors.Is(err, client.ErrNotFound) {
				return notFoundError{key: args[0]}
			}
			if err != nil {
				return err
			}
			if !expires {
				_, err = fmt.Fprintln(w, "no expiry")
				return err
			}
			_, err = fmt.Fprintln(w, left)
			return err
		}, nil
	case "expire":
		if err := nargs(2, "expire KEY DURATION"); err != nil {
			return nil, err
		}
		// As set --ttl takes it: a Go duration (flag.Duration's parser).
		ttl, err := time.ParseDuration(args[1])
		if err != nil {
			return nil, usagef("expire: DURATION %q is not a duration (30s, 1500ms, 2h): kv expire KEY DURATION", args[1])
		}
		if err := checkTTL("expire's DURATION", ttl); err != nil {
			return nil, err
		}
		return func(ctx context.Context, c store, w io.Writer) error {
			err := c.Expire(ctx, args[0], ttl)
			if errors.Is(err, client.ErrNotFound) {
				return notFoundError{key: args[0]}
			}
			return printOK(w, err)
		}, nil
	case "persist":
		if err := nargs(1, "persist KEY"); err != nil {
			return nil, err
		}
		return func(ctx context.Context, c store, w io.Writer) error {
			had, err := c.Persist(ctx, args[0])
			if errors.Is(err, client.ErrNotFound) {
				return notFoundError{key: args[0]}
			}
			if err != nil {
				return err
			}
			if !had {
				_, err = fmt.Fprintln(w, "OK (no deadline to remove)")
				return err
			}
			_, err = fmt.Fprintln(w, "OK (deadline removed)")
			return err
		}, nil
	case "incr", "decr":
		return parseIncr(cmd, args)
	case "bulk-set":
		items, err := parseBulkItems(args)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, c store, w io.Writer) error {
			return printOK(w, c.BulkSet(ctx, items))
		}, nil
	case "bulk-get", "bulk-delete":
		if len(args) == 0 {
			return nil, usagef("%s takes one or more keys: kv %s KEY ...", cmd, cmd)
		}
		if cmd == "bulk-delete" {
			return func(ctx context.Context, c store, w io.Writer) error {
				n, err := c.BulkDelete(ctx, args...)
				if err != nil {
					return err
				}
				if n < 0 {
					_, err = fmt.Fprintln(w, "OK (deleted count unknown: a retry of a delete that had applied)")
					return err
				}
				_, err = fmt.Fprintf(w, "deleted %d\n", n)
				return err
			}, nil
		}
		return func(ctx context.Context, c store, w io.Writer) error {
			values, err := c.BulkGet(ctx, args...)
			if err != nil {
				return err
			}
			for i, k := range args {
				line, err := json.Marshal(struct {
					Key   string  `json:"key"`
					Value *string `json:"value"`
				}{k, values[i]})
				if err != nil {
					return err
				}
				if _, err := fmt.Fprintf(w, "%s\n", line); err != nil {
					return err
				}
			}
			return nil
		}, nil
	case "search", "similar":
		return parseSearch(cmd, args)
	case "scan":
		return parseScan(args)
	case "load":
		return parseLoad(args)
	case "ping":
		if err := nargs(0, "ping"); err != nil {
			return nil, err
		}
		return func(ctx context.Context, c store, w io.Writer) error {
			if err := c.Ping(ctx); err != nil {
				return err
			}
			_, err := fmt.Fprintln(w, "pong")
			return err
		}, nil
	case "status":
		if err := nargs(0, "status"); err != nil {
			return nil, err
		}
		return func(ctx context.Context, c store, w io.Writer) error {
			st, err := c.Status(ctx)
			if err != nil {
				return err
			}
			b, err := json.Marshal(st, jsontext.WithIndent("  "))
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(w, "%s\n", b)
			return err
		}, nil
	}
	return nil, usagef("unknown command %q", cmd)
}

// parseWrite reads "set [--ttl D] [--if-absent | --if-exists | --if-value
// OLD] KEY VALUE" and "delete [--if-value OLD] KEY". (A KEY that starts
// with "-" follows "--".)
func parseWrite(cmd string, args []string) (operation, error) {
	form := "set [--ttl D] [--if-absent | --if-exists | --if-value OLD] KEY VALUE"
	if cmd == "delete" {
		form = "delete [--if-value OLD] KEY"
	}
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	ifAbsent := fs.Bool("if-absent", false, "")
	ifExists := fs.Bool("if-exists", false, "")
	ifValue := fs.String("if-value", "", "")
	// flag.Duration's refusal of "--ttl 30" said "parse error", not
	// that the unit is missing (found by review).
	ttl := new(time.Duration)
	fs.Func("ttl", "", func(s string) (err error) {
		if *ttl, err = time.ParseDuration(s); err != nil {
			return errors.New("not a duration: give it with its unit, as 30s, 1500ms, 2h")
		}
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return nil, usagef("%s: %v: kv %s", cmd, err, form)
	}
	// Flags end at KEY, so "kv set k --ttl" stored the value "--ttl" and
	// "kv set k v --ttl 30s" was one argument too many. An argument after
	// KEY that spells one of the command's flags was meant as that flag:
	// it is refused, saying where flags go. After an explicit "--" it is
	// taken as written.
	if !endedByDashes(fs, args) && fs.NArg() > 1 {
		for _, a := range fs.Args()[1:] {
			if name := flagName(fs, a); name != "" {
				hint := ""
				if cmd == "set" && fs.NArg() == 2 { // it stands where VALUE does
					hint = fmt.Sprintf(" (to store the value %q, put -- before KEY: kv set -- KEY %s)", a, a)
				}
				return nil, usagef("%s: %q after KEY is the flag --%s, which goes before KEY: kv %s%s", cmd, a, name, form, hint)
			}
		}
	}
	req := &core.Request{Op: core.OpSet, IfAbsent: *ifAbsent, IfExists: *ifExists}
	var conds []string
	withTTL := false
	fs.Visit(func(f *flag.Flag) {
		switch {
		case f.Name == "ttl":
			withTTL = true
			return
		case f.Name == "if-value":
			req.IfValue = ifValue // an empty OLD is a value too
		case f.Value.String() == "false":
			return
		}
		conds = append(conds, "--"+f.Name)
	})
	if len(conds) > 1 {
		return nil, usagef("%s takes one condition at most, got %s", cmd, strings.Join(conds, " and "))
	}
	n := 2
	if cmd == "delete" {
		n, req.Op = 1, core.OpDelete
		if req.IfAbsent || req.IfExists {
			return nil, usagef("delete takes --if-value only, not %s (a delete of a key that does not exist already succeeds): kv %s", conds[0], form)
		}
		if withTTL {
			return nil, usagef("delete takes no --ttl (a set does): kv %s", form)
		}
	}
	if withTTL {
		if err := checkTTL("--ttl", *ttl); err != nil {
			return nil, err
		}
		req.TTLMs = uint64((*ttl + time.Millisecond - 1) / time.Millisecond)
	}
	if fs.NArg() != n {
		return nil, usagef("%s takes %d argument(s): kv %s", cmd, n, form)
	}
	key := fs.Arg(0)
	req.Key = key
	if cmd == "set" {
		value := fs.Arg(1)
		req.Value = &value
	}
	if len(conds) == 0 {
		if cmd == "set" && withTTL {
			return func(ctx context.Context, c store, w io.Writer) error {
				return printOK(w, c.SetWithTTL(ctx, key, *req.Value, *ttl))
			}, nil
		}
		if cmd == "set" {
			return func(ctx context.Context, c store, w io.Writer) error {
				return printOK(w, c.Set(ctx, key, *req.Value))
			}, nil
		}
		return func(ctx context.Context, c store, w io.Writer) error {
			return printOK(w, c.Delete(ctx, key))
		}, nil
	}
	return func(ctx context.Context, c store, w io.Writer) error {
		// Do, rather than SetIfAbsent and its kin, for the refusal's value:
		// the one the condition was checked against.
		resp, err := c.Do(ctx, req)
		if errors.Is(err, client.ErrConditionFailed) && !errors.Is(err, client.ErrUnknownOutcome) {
			refused := conditionFailedError{flag: conds[0], cond: req.Condition(), key: key}
			if resp != nil && resp.Error != nil && resp.Error.Code == core.CodeConditionFailed {
				refused.known, refused.value = true, resp.Value
			}
			return refused
		}
		if err != nil {
			// Name the key and the condition, as the client's own methods
			// do: "dkv: set \"k\" (if_absent): ...".
			if inner := errors.Unwrap(err); inner != nil {
				err = inner
			}
			return fmt.Errorf("dkv: %s %q (%s): %w", req.Op, key, req.Condition(), err)
		}
		return printOK(w, nil)
	}, nil
}

// endedByDashes reports whether fs's parse of args ended at a "--" (which
// the flag package drops), rather than at KEY: the argument before the
// positional ones is "--", and not the value of a flag that takes one
// (kv set --if-value -- KEY VALUE).
func endedByDashes(fs *flag.FlagSet, args []string) bool {
	i := len(args) - fs.NArg() - 1
	if i < 0 || args[i] != "--" {
		return false
	}
	if i == 0 {
		return true
	}
	prev := args[i-1]
	name := flagName(fs, prev)
	if name == "" || strings.Contains(prev, "=") {
		return true
	}
	_, isBool := fs.Lookup(name).Value.(interface{ IsBoolFlag() bool })
	return isBool
}

// flagName returns the name of the flag of fs that arg spells (-name,
// --name or --name=value), or "" if it spells none.
func flagName(fs *flag.FlagSet, arg string) string {
	if !strings.HasPrefix(arg, "-") {
		return ""
	}
	name, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(arg, "-"), "-"), "=")
	if name == "" || fs.Lookup(name) == nil {
		return ""
	}
	return name
}

// parseIncr reads "incr KEY [DELTA]" and "decr KEY [DELTA]". A DELTA
// that starts with "-" is a negative number, not a flag: incr takes none.
func parseIncr(cmd string, args []string) (operation, error) {
	form := cmd + " KEY [DELTA]"
	if len(args) > 0 && args[0] == "--" {
		// The end of the flags, as set and delete take it (a script's
		// kv incr -- "$KEY"); a negative DELTA needs none.
		args = args[1:]
	}
	if len(args) < 1 || len(args) > 2 {
		return nil, usagef("%s takes 1 or 2 arguments: kv %s", cmd, form)
	}
	key, delta := args[0], int64(1)
	if len(args) == 2 {
		var err error
		if delta, err = strconv.ParseInt(args[1], 10, 64); err != nil {
			return nil, usagef("%s: DELTA %q is not an integer in the int64 range (5, -5): kv %s", cmd, args[1], form)
		}
	}
	if cmd == "decr" {
		if delta == math.MinInt64 {
			return nil, usagef("decr: DELTA %d has no negative in the int64 range: kv %s", delta, form)
		}
		delta = -delta
	}
	return func(ctx context.Context, c store, w io.Writer) error {
		n, err := c.Incr(ctx, key, delta)
		if errors.Is(err, client.ErrUnknownOutcome) {
			return unknownIncrError{err}
		}
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(w, n)
		return err
	}, nil
}

// unknownIncrError is an incr sent without an answer. Reading the key back
// does not tell whether it applied, as it tells of a set, unless the value
// before it is known and nothing else moves the counter: fail says so
// rather than a set's hint.
type unknownIncrError struct{ err error }

func (e unknownIncrError) Error() string { return e.err.Error() }
func (e unknownIncrError) Unwrap() error { return e.err }

// checkTTL checks a ttl (set's --ttl, expire's DURATION) as the client
// would, but as a usage error, so that nothing is sent.
func checkTTL(what string, ttl time.Duration) error {
	switch {
	case ttl < time.Millisecond:
		return usagef("%s must be at least 1ms, got %v", what, ttl)
	case ttl > core.TTLMsMax*time.Millisecond:
		return usagef("%s must be at most ten years (%v), got %v", what, core.TTLMsMax*time.Millisecond, ttl)
	}
	return nil
}

// conditionFailedError is a conditional write refused because its
// condition did not hold: nothing was written. It is reported with the
// key's value when the server checked it, exit 3.
type conditionFailedError struct {
	flag  string // "--if-absent", "--if-exists" or "--if-value"
	cond  core.Condition
	key   string
	known bool    // the refusal came with the key's state
	value *string // the key's value; nil if it does not exist
}

func (e conditionFailedError) Error() string {
	cond := e.flag
	if e.cond.Kind == core.CondValue {
		cond += " " + strconv.Quote(e.cond.Value)
	}
	state := "does not exist"
	switch {
	case !e.known:
		state = "has changed since the write was refused (its answer was lost and retried)"
	case e.value != nil:
		state = "holds " + strconv.Quote(*e.value)
	}
	return fmt.Sprintf("condition failed (%s): nothing was written; key %q %s", cond, e.key, state)
}

// parseSearch reads "search [--any] [--limit N] QUERY" and
// "similar [--top-k N] QUERY"; the query may be several arguments, joined
// with spaces.
func parseSearch(cmd string, args []string) (operation, error) {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	anyWord := fs.Bool("any", false, "")
	limit := fs.Int("limit", 10, "")
	topK := fs.Int("top-k", 5, "")
	if err := fs.Parse(args); err != nil {
		return nil, usagef("%s: %v", cmd, err)
	}
	query := strings.Join(fs.Args(), " ")
	if strings.TrimSpace(query) == "" {
		return nil, usagef("%s needs a QUERY", cmd)
	}
	// Which flags were given, not whether they differ from the defaults:
	// "similar --limit 10" and "search --top-k 5" were taken and ignored
	// (found by review).
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if cmd == "similar" {
		if given["any"] || given["limit"] {
			return nil, usagef("similar takes --top-k, not --any or --limit")
		}
		if *topK < 1 {
			return nil, usagef("--top-k must be at least 1, got %d", *topK)
		}
		return func(ctx context.Context, c store, w io.Writer) error {
			hits, err := c.SearchSimilar(ctx, query, *topK)
			return printHits(w, hits, err)
		}, nil
	}
	if given["top-k"] {
		return nil, usagef("search takes --any and --limit, not --top-k")
	}
	if *limit < 1 {
		return nil, usagef("--limit must be at least 1, got %d", *limit)
	}
	opts := []client.SearchOption{client.Limit(*limit)}
	if *anyWord {
		opts = append(opts, client.AnyWord())
	}
	return func(ctx context.Context, c store, w io.Writer) error {
		hits, err := c.Search(ctx, query, opts...)
		return printHits(w, hits, err)
	}, nil
}

// scanPageMax is the page cmd/kv asks for: the server's default limit on
// the keys of a page (--max-bulk-entries) is 10,000, and a page of a
// thousand keeps each answer small.
const scanPageMax = 1000

func parseScan(args []string) (operation, error) {
	fs := flag.NewFlagSet("scan", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	keysOnly := fs.Bool("keys-only", false, "")
	limit := fs.Int("limit", 1000, "")
	all := fs.Bool("all", false, "")
	startAfter := fs.String("start-after", "", "")
	consistent := fs.Bool("consistent", false, "")
	if err := fs.Parse(args); err != nil {
		return nil, usagef("scan: %v", err)
	}
	if fs.NArg() > 1 {
		return nil, usagef("scan takes one PREFIX at most: kv scan [--keys-only] [--limit N | --all] [--start-after KEY] [--consistent] [PREFIX]")
	}
	// --all is a copy of the store (kv load reads it back): of one instant
	// unless told otherwise.
	explicit, limited := false, false
	fs.Visit(func(f *flag.Flag) {
		explicit = explicit || f.Name == "consistent"
		limited = limited || f.Name == "limit"
	})
	if *all && limited {
		// --all went on past --limit: "scan --all --limit 2" printed
		// every key of the store (found by review).
		return nil, usagef("scan takes --limit N or --all, not both")
	}
	if *all && !explicit {
		*consistent = true
	}
	prefix := fs.Arg(0)
	if *limit < 1 {
		return nil, usagef("--limit must be at least 1, got %d", *limit)
	}
	return func(ctx context.Context, c store, w io.Writer) error {
		after, printed, view := *startAfter, 0, ""
		pageMax := scanPageMax
		for {
			page := pageMax
			if !*all {
				page = min(page, *limit-printed)
			}
			req := &core.Request{Op: core.OpScan, Prefix: prefix, StartAfter: after, Limit: uint64(page), KeysOnly: *keysOnly, View: view}
			req.Consistent = *consistent && view == ""
			resp, err := c.Do(ctx, req)
			var se *client.ServerError
			if errors.As(err, &se) && se.Code == core.CodeTooLarge && page > 1 {
				// A server whose --max-bulk-entries is below the page
				// asked for refuses it: ask for half as many, the page's
				// bytes being the server's own to bound.
				pageMax = page / 2
				continue
			}
			if errors.Is(err, client.ErrScanExpired) {
				return fmt.Errorf("%w (after %d keys; a view lasts a minute between pages and ten minutes in all: start again, or scan with --consistent=false)", err, printed)
			}
			if err != nil {
				return err
			}
			if resp.More == nil {
				return fmt.Errorf("%w: a scan's answer without \"more\"", client.ErrProtocol)
			}
			more, keys, items := *resp.More, resp.Keys, resp.Items
			if !*keysOnly {
				keys = nil
				for _, kv := range items {
					keys = append(keys, kv.Key)
				}
			}
			if more && (req.Consistent || view != "") && (resp.View == "" || view != "" && resp.View != view) {
				return fmt.Errorf("%w: a page of a consistent scan with keys left named view %q (the walk's: %q)", client.ErrProtocol, resp.View, view)
			}
			if len(keys) > 0 && keys[0] <= after {
				// A page that does not go past the key it was asked to
				// start after: the walk would print it for ever (found
				// by review).
				return fmt.Errorf("%w: a scan's page after %q starts at %q, not past it", client.ErrProtocol, after, keys[0])
			}
			if req.Consistent || view != "" {
				view = resp.View
			}
			now := time.Now()
			for i, k := range keys {
				line := map[string]string{"key": k}
				if !*keysOnly {
					line["value"] = items[i].Value
					if ttl := items[i].TTLMs; ttl != nil {
						// A calendar deadline, not the time left, so
						// that a dump loaded a day later does not give
						// its keys a day more (kv load reads it back).
						line["expires_at"] = now.Add(time.Duration(*ttl) * time.Millisecond).UTC().Format(expiresAtLayout)
					}
				}
				b, err := json.Marshal(line, json.Deterministic(true))
				if err != nil {
					return err
				}
				if _, err := fmt.Fprintf(w, "%s\n", b); err != nil {
					return err
				}
			}
			printed += len(keys)
			if !more {
				return nil
			}
			if len(keys) == 0 {
				return fmt.Errorf("%w: an empty page of a scan that says more", client.ErrProtocol)
			}
			after = keys[len(keys)-1]
			if !*all && printed >= *limit {
				// The keys left are said on standard error, so that the
				// output stays one JSON object a line.
				return moreKeysError{after: after}
			}
		}
	}, nil
}

// expiresAtLayout is how scan prints a key's deadline ("expires_at") and
// load reads it: RFC 3339 in UTC, to the millisecond, as ttl_ms counts.
const expiresAtLayout = "2006-01-02T15:04:05.000Z07:00"

// moreKeysError is a scan stopped at --limit with keys left: exit 0, and
// how to go on, on standard error.
type moreKeysError struct{ after string }

func (e moreKeysError) Error() string {
	return fmt.Sprintf("more keys after %q: go on with --start-after %q, or give --all", e.after, e.after)
}

// printHits prints one "score<TAB>key" line per hit, best first, and
// "(no hits)" when there are none.
func printHits(w io.Writer, hits []client.Hit, err error) error {
	if err != nil {
		return err
	}
	if len(hits) == 0 {
		_, err := fmt.Fprintln(w, "(no hits)")
		return err
	}
	for _, h := range hits {
		if _, err := fmt.Fprintf(w, "%.4f\t%s\n", h.Score, hitKey(h.Key)); err != nil {
			return err
		}
	}
	return nil
}

// hitKey is a key as search and similar print it: as it is, or as a JSON
// string, as scan prints keys, if it holds a control character or bytes
// that are not UTF-8, or starts with a quote (which would read as quoted).
// Printed raw, a key with a line break made two lines, the second read as
// a hit of its own, and one with a tab shifted the key's column (found by
// review).
func hitKey(k string) string {
	quote := strings.HasPrefix(k, `"`) || !utf8.ValidString(k)
	for i := 0; i < len(k) && !quote; i++ {
		quote = k[i] < 0x20 || k[i] == 0x7f
	}
	if !quote {
		return k
	}
	if b, err := json.Marshal(k); err == nil {
		return string(b)
	}
	return strconv.Quote(k) // not UTF-8, which JSON cannot carry
}

// parseBulkItems reads "KEY VALUE ..." or "--file FILE".
func parseBulkItems(args []string) ([]client.KV, error) {
	fs := flag.NewFlagSet("bulk-set", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	file := fs.String("file", "", "")
	if err := fs.Parse(args); err != nil {
		return nil, usagef("bulk-set: %v", err)
	}
	pairs := fs.Args()
	if *file != "" {
		if len(pairs) > 0 {
			return nil, usagef("bulk-set takes either --file or KEY VALUE pairs, not both")
		}
		data, err := readBulkFile(*file)
		if err != nil {
			return nil, err
		}
		name := *file
		if name == "-" {
			name = "standard input"
		}
		// Pointers, as load reads its lines: decoded into client.KV, an
		// item without "value" (or with null) stored an empty value, and
		// one without "key" went to the server (found by review).
		var raw []struct {
			Key   *string `json:"key"`
			Value *string `json:"value"`
		}
		if err := json.Unmarshal(data, &raw, json.RejectUnknownMembers(true)); err != nil {
			return nil, usagef("bulk-set: %s is not a JSON array of {\"key\":…,\"value\":…}: %v", name, bulkFileError(err))
		}
		if len(raw) == 0 {
			return nil, usagef("bulk-set: %s holds no items", name)
		}
		items := make([]client.KV, len(raw))
		for i, it := range raw {
			switch {
			case it.Key == nil:
				return nil, usagef(`bulk-set: %s: item %d: "key" is missing or null; nothing was sent`, name, i)
			case *it.Key == "":
				return nil, usagef(`bulk-set: %s: item %d: an empty "key"; nothing was sent`, name, i)
			case it.Value == nil:
				return nil, usagef(`bulk-set: %s: item %d (key %q): "value" is missing or null; nothing was sent`, name, i, *it.Key)
			}
			items[i] = client.KV{Key: *it.Key, Value: *it.Value}
		}
		return items, nil
	}
	if len(pairs) == 0 || len(pairs)%2 != 0 {
		return nil, usagef("bulk-set takes KEY VALUE pairs (got %d arguments) or --file FILE", len(pairs))
	}
	items := make([]client.KV, 0, len(pairs)/2)
	for i := 0; i < len(pairs); i += 2 {
		items = append(items, client.KV{Key: pairs[i], Value: pairs[i+1]})
	}
	return items, nil
}

// bulkFileBytesMax bounds what bulk-set --file reads: one bulk_set is one
// request, which the server bounds (--max-request-bytes, 16 MiB by
// default); kv load takes a data set of any size, a batch at a time.
const bulkFileBytesMax = 1 << 30

// readBulkFile reads bulk-set's --file: path, or standard input for "-",
// as kv load reads it (found by review: "-" was taken for a file's name,
// "open -: no such file or directory").
func readBulkFile(path string) ([]byte, error) {
	in, name := io.Reader(os.Stdin), "standard input"
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, usagef("bulk-set: %v", err)
		}
		defer f.Close()
		in, name = f, path
	}
	data, err := io.ReadAll(io.LimitReader(in, bulkFileBytesMax+1))
	if err != nil {
		return nil, usagef("bulk-set: reading %s: %v", name, err)
	}
	if len(data) > bulkFileBytesMax {
		return nil, usagef("bulk-set: %s holds more than %d bytes (1 GiB), more than one request can carry; store it with kv load, a batch at a time", name, bulkFileBytesMax)
	}
	return data, nil
}

// bulkFileError says what is wrong with a bulk-set file in the file's
// terms, not the decoder's Go types ("Go []struct { Key *string ...}").
func bulkFileError(err error) error {
	var sem *json.SemanticError
	var syn *jsontext.SyntacticError
	switch {
	case errors.As(err, &sem) && errors.Is(err, json.ErrUnknownName):
		return fmt.Errorf("unknown field at %s", sem.JSONPointer)
	case errors.As(err, &sem) && sem.JSONPointer == "" && sem.JSONKind == '{':
		// The lines scan prints: one object a line, which load reads.
		return errors.New(`a JSON object, not an array (lines of {"key":…,"value":…}, as kv scan prints them, are kv load's)`)
	case errors.As(err, &sem) && sem.JSONPointer == "":
		return fmt.Errorf("a JSON %s, not an array", kindName(sem.JSONKind))
	case errors.As(err, &sem):
		want := "a string" // "/0/value"
		if strings.Count(string(sem.JSONPointer), "/") == 1 {
			want = "an object" // "/0"
		}
		return fmt.Errorf("%s is a JSON %s, not %s", sem.JSONPointer, kindName(sem.JSONKind), want)
	case errors.As(err, &syn):
		return fmt.Errorf("not valid JSON (%v, at byte %d)", syn.Err, syn.ByteOffset+1)
	}
	return err
}

func printOK(w io.Writer, err error) error {
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, "OK")
	return err
}

// fail reports err and picks the exit code.
// isTooLarge reports a server's too_large refusal.
func isTooLarge(err error) bool {
	var se *client.ServerError
	return errors.As(err, &se) && se.Code == core.CodeTooLarge
}

// isNotLeader reports a cluster follower's not_leader refusal.
func isNotLeader(err error) bool {
	var se *client.ServerError
	return errors.As(err, &se) && se.Code == core.CodeNotLeader
}

func fail(stderr io.Writer, err error) int {
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "kv: %v\nRun 'kv help' for the commands and examples.\n", err)
		return exitUsage
	}
	// Client errors already name the operation ("dkv: get \"k\": ..."), and
	// "not found: KEY" stands alone so that scripts can match it.
	msg := err.Error()
	if errors.Is(err, syscall.ECONNREFUSED) {
		msg += " (is the server running?)"
	}
	// A ping that timed out had reached nothing that answers it: a
	// replication port waits out its handshake timeout for a peer's hello.
	var notSent notSentError
	if notAClientPort(err) && !errors.Is(err, client.ErrUnknownOutcome) || errors.As(err, &notSent) && errors.Is(err, context.DeadlineExceeded) {
		msg += "\n(kv: no answer in dkv's protocol: is it a node's client port, its --port or --kv-port? Its --repl-port and --metrics-addr speak other protocols; or the server stopped)"
	}
	var incr unknownIncrError
	var refused passwordRefusedError
	switch {
	case errors.As(err, &refused):
		msg += fmt.Sprintf("\n(kv: the password sent is the one in --auth-file %s)", refused.file)
	case errors.As(err, &incr):
		msg += "\n(the incr may or may not have applied, and reading the key back cannot tell unless you know what it held before: incr again only if counting twice does no harm)"
	case errors.Is(err, client.ErrUnknownOutcome):
		msg += "\n(read the key back to learn whether the write applied)"
	case errors.Is(err, client.ErrAuth):
		// The server's words are the protocol's ({"op":"auth",...});
		// kv sends that itself, given the file.
		msg += "\n(kv: give the server's password with --auth-file FILE, before the command)"
	case errors.As(err, new(itemTooLargeError)):
		msg += "\n(a key or value over the server's --max-key-bytes or --max-value-bytes: no --batch makes it fit)"
	case isTooLarge(err):
		msg += "\n(a limit of the server's: for load, a smaller --batch; see its --max-* flags)"
	case isNotLeader(err):
		// A cluster follower named with --port: its answer names the
		// leader, but not how kv gets there (found by review).
		msg += "\n(kv: a cluster's leader serves reads and writes: name every node with --addrs HOST:PORT,HOST:PORT,..., which finds the leader and follows it, or the leader with --addr)"
	}
	fmt.Fprintln(stderr, msg)
	if errors.Is(err, client.ErrUnknownOutcome) {
		return exitUnknownOutcome
	}
	return exitError
}
