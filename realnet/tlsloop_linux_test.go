package realnet

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"dkv/internal/tlsfiles"
)

// A stop that comes while a TLS connection, its handshake done, is on its
// way to a loop ends it without a data race (run with -race): the stop's
// shutdown once read the pipe's detached flag, to end a handshake it
// thought was running, as the handshake's goroutine set it.
func TestStopAsATLSConnectionGoesToItsLoop(t *testing.T) {
	f := testCerts(t)
	cfg := testConfig()
	cfg.EventLoops = 2
	cfg.TLS = tlsfiles.Server(testKeypair(t, f), nil)
	// No channel or lock between the hook and the stop: either would
	// order the two for the race detector. The hook holds the connection
	// between its handshake and its loop well past the stop.
	testHookHandshaken = func() { time.Sleep(300 * time.Millisecond) }
	t.Cleanup(func() { testHookHandshaken = nil })
	r := startSingle(t, cfg)
	c := dialTLS(t, r.addr, testClientTLS(t, f.CA, "", ""))
	time.Sleep(50 * time.Millisecond) // the server's handshake is done
	start := time.Now()
	r.host.Shutdown()
	if err := r.wait(t); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("the stop took %v", took)
	}
	c.expectClosed()
}

// tls13Writer writes TLS 1.3 records on a client's connection under its
// application traffic secret, which KeyLogWriter tells: crypto/tls has no
// call that sends a KeyUpdate.
type tls13Writer struct {
	hash   func() hash.Hash
	keyLen int
	secret []byte
	aead   cipher.AEAD
	iv     []byte
	seq    uint64
}

// newTLS13Writer takes over the sending side of tc, which has sent no
// application data, or skips the test for a cipher suite it lacks.
func newTLS13Writer(t *testing.T, tc *tls.Conn, keyLog *bytes.Buffer) *tls13Writer {
	t.Helper()
	w := &tls13Writer{}
	switch cs := tc.ConnectionState().CipherSuite; cs {
	case tls.TLS_AES_128_GCM_SHA256:
		w.hash, w.keyLen = sha256.New, 16
	case tls.TLS_AES_256_GCM_SHA384:
		w.hash, w.keyLen = sha512.New384, 32
	default:
		t.Skipf("cipher suite %s", tls.CipherSuiteName(cs))
	}
	for _, line := range strings.Split(keyLog.String(), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "CLIENT_TRAFFIC_SECRET_0" {
			secret, err := hex.DecodeString(f[2])
			if err != nil {
				t.Fatal(err)
			}
			w.setSecret(secret)
			return w
		}
	}
	t.Fatalf("no client traffic secret in the key log:\n%s", keyLog)
	return nil
}

// expandLabel is TLS 1.3's HKDF-Expand-Label, with an empty context.
func (w *tls13Writer) expandLabel(secret []byte, label string, n int) []byte {
	full := "tls13 " + label
	info := append([]byte{byte(n >> 8), byte(n), byte(len(full))}, full...)
	info = append(info, 0)
	out, err := hkdf.Expand(w.hash, secret, string(info), n)
	if err != nil {
		panic(err)
	}
	return out
}

func (w *tls13Writer) setSecret(secret []byte) {
	w.secret = secret
	block, err := aes.NewCipher(w.expandLabel(secret, "key", w.keyLen))
	if err != nil {
		panic(err)
	}
	if w.aead, err = cipher.NewGCM(block); err != nil {
		panic(err)
	}
	w.iv = w.expandLabel(secret, "iv", 12)
	w.seq = 0
}

// record is one record of content of type typ, encrypted.
func (w *tls13Writer) record(typ byte, content []byte) []byte {
	inner := append(slices.Clone(content), typ)
	n := len(inner) + w.aead.Overhead()
	hdr := []byte{23, 3, 3, byte(n >> 8), byte(n)}
	nonce := slices.Clone(w.iv)
	for i := range 8 {
		nonce[4+i] ^= byte(w.seq >> (56 - 8*i))
	}
	w.seq++
	out := make([]byte, len(hdr), len(hdr)+n)
	copy(out, hdr)
	return w.aead.Seal(out, nonce, inner, hdr)
}

// keyUpdate is a KeyUpdate that asks the server for one back; the records
// after it are under the next secret.
func (w *tls13Writer) keyUpdate() []byte {
	rec := w.record(22, []byte{24, 0, 0, 1, 1})
	w.setSecret(w.expandLabel(w.secret, "traffic upd", w.hash().Size()))
	return rec
}

// tls13Reader reads the server's records on a client's connection under
// the server's application traffic secret, as tls13Writer writes.
type tls13Reader struct {
	tls13Writer
	br *bufio.Reader
}

func newTLS13Reader(t *testing.T, tc *tls.Conn, keyLog *bytes.Buffer, nc net.Conn) *tls13Reader {
	t.Helper()
	w := newTLS13Writer(t, tc, keyLog)
	for _, line := range strings.Split(keyLog.String(), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "SERVER_TRAFFIC_SECRET_0" {
			secret, err := hex.DecodeString(f[2])
			if err != nil {
				t.Fatal(err)
			}
			w.setSecret(secret)
			return &tls13Reader{tls13Writer: *w, br: bufio.NewReaderSize(nc, 64<<10)}
		}
	}
	t.Fatalf("no server traffic secret in the key log:\n%s", keyLog)
	return nil
}

// next reads and decrypts the next record: its type and content. A key
// update's records after it are under the next secret.
func (r *tls13Reader) next() (typ byte, content []byte, err error) {
	hdr := make([]byte, 5)
	if _, err := io.ReadFull(r.br, hdr); err != nil {
		return 0, nil, err
	}
	body := make([]byte, int(hdr[3])<<8|int(hdr[4]))
	if _, err := io.ReadFull(r.br, body); err != nil {
		return 0, nil, err
	}
	nonce := slices.Clone(r.iv)
	for i := range 8 {
		nonce[4+i] ^= byte(r.seq >> (56 - 8*i))
	}
	r.seq++
	inner, err := r.aead.Open(nil, nonce, body, hdr)
	if err != nil {
		return 0, nil, err
	}
	inner = bytes.TrimRight(inner, "\x00")
	typ, content = inner[len(inner)-1], inner[:len(inner)-1]
	if typ == 22 && len(content) > 0 && content[0] == 24 {
		r.setSecret(r.expandLabel(r.secret, "traffic upd", r.hash().Size()))
	}
	return typ, content, nil
}

// TLS answers a client's KeyUpdate itself, from inside the loop's read,
// into its pipe: a client that asks for key updates and does not read the
// answers does not grow them in the server's memory without bound. The
// loop read on, and the answers piled up in the pipe for as long as the
// client kept its connection (each answer of 27 bytes for the 27 of its
// request, the empty RESP commands between them answered nothing), where
// a reader goroutine would block on the socket. The write timeout ended
// it only for a client that read nothing at all.
func TestTLSKeyUpdateAnswersAClientDoesNotReadAreBounded(t *testing.T) {
	if !EventLoopsSupported {
		t.Skip("no event loops on this system")
	}
	f := testCerts(t)
	cfg := respConfig()
	cfg.WriteTimeout = time.Minute // the default: no help within the test
	cfg.IdleTimeout = time.Minute
	cfg.TLS = tlsfiles.Server(testKeypair(t, f), nil)
	for _, loops := range []int{1, 2} {
		t.Run(fmt.Sprintf("event-loops=%d", loops), func(t *testing.T) {
			cfg := cfg
			cfg.EventLoops = loops
			r := startSingleSmallSendBuffer(t, cfg)
			d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
				return rc.Control(func(fd uintptr) {
					syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
				})
			}}
			raw, err := d.Dial("tcp", r.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			var keyLog bytes.Buffer
			ccfg := testClientTLS(t, f.CA, "", "")
			ccfg.ServerName, ccfg.MinVersion, ccfg.KeyLogWriter = "127.0.0.1", tls.VersionTLS13, &keyLog
			tc := tls.Client(raw, ccfg)
			raw.SetDeadline(time.Now().Add(5 * time.Second))
			if err := tc.Handshake(); err != nil {
				t.Fatal(err)
			}
			w := newTLS13Writer(t, tc, &keyLog)
			sc := r.serverConn(t, &client{t: t, nc: raw})

			rd := newTLS13Reader(t, tc, &keyLog, raw)
			const updates = 30_000 // 810 kB of answers
			sent := make(chan int, 1)
			go func() {
				n := 0
				defer func() { sent <- n }()
				raw.SetWriteDeadline(time.Now().Add(20 * time.Second))
				var batch []byte
				for n < updates {
					batch = batch[:0]
					for range 8 {
						batch = append(batch, w.keyUpdate()...)
					}
					// TLS refuses more than 16 handshake messages in a row
					// without data; an empty RESP command is answered nothing.
					batch = append(batch, w.record(23, []byte("*0\r\n"))...)
					if _, err := raw.Write(batch); err != nil {
						t.Errorf("after %d key updates: %v", n, err)
						return
					}
					n += 8
				}
			}()
			// The client reads nothing for 2 s, or until half a second
			// after it has sent all (for the server to read it).
			maxOut, n := 0, -1 // n: the key updates sent, once all are
			for end := time.After(2 * time.Second); end != nil; {
				select {
				case n = <-sent:
					end = time.After(500 * time.Millisecond)
				case <-end:
					end = nil
				case <-time.After(time.Millisecond):
				}
				maxOut = max(maxOut, sc.tls.outLen())
			}
			t.Logf("at most %d bytes in the pipe", maxOut)
			if maxOut > 256<<10 {
				t.Errorf("%d bytes of TLS's answers waited in the pipe", maxOut)
			}

			// Then it reads: the server answers every key update and
			// reads on, and a request after them is answered.
			raw.SetReadDeadline(time.Now().Add(20 * time.Second))
			answers, pinged := 0, false
			var app []byte
			for !bytes.Contains(app, []byte("+PONG\r\n")) {
				typ, content, err := rd.next()
				if err != nil {
					t.Fatalf("after %d answers and %q: %v", answers, app, err)
				}
				switch {
				case typ == 23:
					app = append(app, content...)
				case typ == 22 && content[0] == 24:
					answers++
				case typ == 22 && content[0] == 4: // a session ticket
				default:
					t.Fatalf("a record of type %d: %x", typ, content)
				}
				if n < 0 {
					select {
					case n = <-sent:
					default:
					}
				}
				if !pinged && n >= 0 && answers == n {
					t.Logf("sent %d key updates, all answered", n)
					if _, err := raw.Write(w.record(23, []byte("*1\r\n$4\r\nPING\r\n"))); err != nil {
						t.Fatal(err)
					}
					pinged = true
				}
			}
			if string(app) != "+PONG\r\n" || !pinged {
				t.Errorf("read %q before all %d key updates were answered (%d)", app, n, answers)
			}
		})
	}
}

// recordingConn keeps every byte its reads return.
type recordingConn struct {
	net.Conn
	mu  sync.Mutex
	got []byte
}

func (r *recordingConn) Read(b []byte) (int, error) {
	n, err := r.Conn.Read(b)
	r.mu.Lock()
	r.got = append(r.got, b[:n]...)
	r.mu.Unlock()
	return n, err
}

// recordTypes is the content type of each whole TLS record in b.
func recordTypes(b []byte) []byte {
	var types []byte
	for len(b) >= 5 {
		n := 5 + (int(b[3])<<8 | int(b[4]))
		if len(b) < n {
			break
		}
		types = append(types, b[0])
		b = b[n:]
	}
	return types
}

// A loop's TLS connection that closes when the socket is full sends TLS's
// closing alert once the socket takes it, before it shuts its sending
// side: the connection once shut at once, the alert left unsent, and the
// client found the end of the stream with no alert before it (which
// OpenSSL's clients, redis-cli among them, report as an error). The test
// leaves the alert unsent at the first try, as a full socket would; TLS
// 1.2, whose alerts are records of their own type, shows it on the wire.
func TestTLSClosingAlertWaitsForAFullSocket(t *testing.T) {
	if !EventLoopsSupported {
		t.Skip("no event loops on this system")
	}
	f := testCerts(t)
	cfg := respConfig()
	cfg.TLS = tlsfiles.Server(testKeypair(t, f), nil)
	var tries atomic.Int32
	testHookLingerSocketFull = func() bool { return tries.Add(1) == 1 }
	t.Cleanup(func() { testHookLingerSocketFull = nil })
	for _, loops := range []int{1, 2} {
		t.Run(fmt.Sprintf("event-loops=%d", loops), func(t *testing.T) {
			tries.Store(0)
			cfg := cfg
			cfg.EventLoops = loops
			r := startSingle(t, cfg)
			raw, err := net.DialTimeout("tcp", r.addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			rec := &recordingConn{Conn: raw}
			ccfg := testClientTLS(t, f.CA, "", "")
			ccfg.ServerName, ccfg.MaxVersion = "127.0.0.1", tls.VersionTLS12
			tc := tls.Client(rec, ccfg)
			tc.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.WriteString(tc, "PING\r\nQUIT\r\n"); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(tc)
			if string(got) != "+PONG\r\n+OK\r\n" || err != nil {
				t.Fatalf("read %q, then %v; want +PONG, +OK and the end", got, err)
			}
			if tries.Load() == 0 {
				t.Error("linger never sent the alert: the test's full socket did not happen")
			}
			rec.mu.Lock()
			types := recordTypes(rec.got)
			rec.mu.Unlock()
			const alert = 21
			if len(types) == 0 || types[len(types)-1] != alert {
				t.Errorf("the server's records are of types %v: the stream ended without TLS's closing alert", types)
			}
		})
	}
}
