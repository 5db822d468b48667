package main

// A small RESP2 client for the compare benchmark's load generator: it
// encodes commands as arrays of bulk strings and parses every RESP2 reply
// type (simple strings, errors, integers, bulk strings, arrays, and the
// null bulk string and null array). The load loop uses skipRESP, which
// consumes a reply without allocating; setup and tests use readRESP, which
// keeps it. Both check each length against a limit before acting on it, so
// a confused server cannot make the generator allocate without bound.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// Limits on what one reply may hold, checked before anything is allocated
// or skipped. They are far above anything the benchmark asks for (a GET of
// a 100-byte value, an INFO page), and far below what would hurt.
const (
	respBulkBytesMax = 64 << 20 // one bulk string
	respArrayLenMax  = 1 << 20  // elements of one array
	respDepthMax     = 16       // arrays within arrays
	// respLineBytesMax bounds a simple string, error or length line: the
	// bufio.Reader's buffer, since lines are read in place.
	respLineBytesMax = 64 << 10
)

// errRESPProtocol is wrapped by every error about a malformed reply.
var errRESPProtocol = errors.New("resp: protocol error")

// respError is an error reply (-ERR ...) from the server.
type respError struct{ msg string }

func (e *respError) Error() string { return "server error: " + e.msg }

// respValue is one RESP2 reply as readRESP keeps it.
type respValue struct {
	kind  byte   // '+' simple string, '-' error, ':' integer, '$' bulk string, '*' array
	str   string // the simple string, error message or bulk string
	num   int64  // the integer
	null  bool   // the null bulk string ($-1) or null array (*-1)
	array []respValue
}

// String renders the reply compactly, for messages and tests.
func (v respValue) String() string {
	switch {
	case v.null:
		return fmt.Sprintf("%cnil", v.kind)
	case v.kind == ':':
		return ":" + strconv.FormatInt(v.num, 10)
	case v.kind == '*':
		s := "["
		for i, e := range v.array {
			if i > 0 {
				s += " "
			}
			s += e.String()
		}
		return s + "]"
	default:
		return string(v.kind) + strconv.Quote(v.str)
	}
}

// appendRESPCommand appends a command to b: an array of bulk strings.
func appendRESPCommand(b []byte, args ...[]byte) []byte {
	b = appendRESPArrayHeader(b, len(args))
	for _, a := range args {
		b = appendRESPBulk(b, a)
	}
	return b
}

func appendRESPArrayHeader(b []byte, n int) []byte {
	b = append(b, '*')
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, '\r', '\n')
}

func appendRESPBulk(b, s []byte) []byte {
	b = append(b, '$')
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, '\r', '\n')
	b = append(b, s...)
	return append(b, '\r', '\n')
}

// readRESP reads one whole reply. An error reply is a value of kind '-',
// not an error: err is for the connection and the framing. A stream that
// ends before the first byte of a reply is io.EOF; one that ends inside
// it is io.ErrUnexpectedEOF.
func readRESP(r *bufio.Reader) (respValue, error) {
	return parseRESP(r, 0, true)
}

// skipRESP consumes one reply without keeping it: the load loop's read.
// It tells the reply's kind and whether it was null; an error reply's
// message is kept (it is rare, and the benchmark reports the first).
func skipRESP(r *bufio.Reader) (kind byte, null bool, errMsg string, err error) {
	v, err := parseRESP(r, 0, false)
	return v.kind, v.null, v.str, err
}

// parseRESPLength reads a bulk string's or an array's length: -1 (null),
// or 0..limit.
func parseRESPLength(body []byte, what string, limit int64) (int64, error) {
	n, err := parseRESPInt(body)
	if err != nil {
		return 0, err
	}
	if n < -1 || n > limit {
		return 0, fmt.Errorf("%w: %s %d not in 0..%d", errRESPProtocol, what, n, limit)
	}
	return n, nil
}

func parseRESP(r *bufio.Reader, depth int, keep bool) (respValue, error) {
	line, err := readRESPLine(r, depth == 0)
	if err != nil {
		return respValue{}, err
	}
	v := respValue{kind: line[0]}
	body := line[1:]
	switch v.kind {
	case '+':
		if keep {
			v.str = string(body)
		}
	case '-':
		v.str = string(body) // kept even when skipping: it is reported
	case ':':
		if v.num, err = parseRESPInt(body); err != nil {
			return respValue{}, err
		}
	case '$':
		n, err := parseRESPLength(body, "bulk length", respBulkBytesMax)
		if err != nil {
			return respValue{}, err
		}
		if n == -1 {
			v.null = true
			return v, nil
		}
		if v.str, err = readRESPBulk(r, int(n), keep); err != nil {
			return respValue{}, err
		}
	case '*':
		n, err := parseRESPLength(body, "array length", respArrayLenMax)
		if err != nil {
			return respValue{}, err
		}
		if n == -1 {
			v.null = true
			return v, nil
		}
		if n > 0 && depth+1 >= respDepthMax {
			return respValue{}, fmt.Errorf("%w: arrays nested deeper than %d", errRESPProtocol, respDepthMax)
		}
		if keep {
			// Grown as elements arrive rather than made at n up front: a
			// length is only a claim until its elements are read.
			v.array = make([]respValue, 0, min(n, 1024))
		}
		for range n {
			e, err := parseRESP(r, depth+1, keep)
			if err != nil {
				return respValue{}, err
			}
			if keep {
				v.array = append(v.array, e)
			}
		}
	default:
		return respValue{}, fmt.Errorf("%w: reply starts with %q", errRESPProtocol, v.kind)
	}
	return v, nil
}

// readRESPLine reads one line through its CRLF and returns it without the
// CRLF, in the reader's buffer (valid until the next read). At the start
// of a reply (first), a clean end of stream is io.EOF.
func readRESPLine(r *bufio.Reader, first bool) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		return nil, fmt.Errorf("%w: line longer than %d bytes", errRESPProtocol, r.Size())
	case err == io.EOF && first && len(line) == 0:
		return nil, io.EOF
	case err == io.EOF:
		return nil, io.ErrUnexpectedEOF
	case err != nil:
		return nil, err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return nil, fmt.Errorf("%w: line %.40q is not a type byte and text ended by CRLF", errRESPProtocol, line)
	}
	return line[:len(line)-2], nil
}

// readRESPBulk reads a bulk string's n bytes and its CRLF; without keep it
// discards them, in pieces that fit the reader's buffer.
func readRESPBulk(r *bufio.Reader, n int, keep bool) (string, error) {
	var s string
	if keep {
		b := make([]byte, n)
		if _, err := io.ReadFull(r, b); err != nil {
			return "", unexpectedEOF(err)
		}
		s = string(b)
	} else if _, err := r.Discard(n); err != nil {
		return "", unexpectedEOF(err)
	}
	var crlf [2]byte
	if _, err := io.ReadFull(r, crlf[:]); err != nil {
		return "", unexpectedEOF(err)
	}
	if crlf != [2]byte{'\r', '\n'} {
		return "", fmt.Errorf("%w: bulk string of %d bytes not followed by CRLF", errRESPProtocol, n)
	}
	return s, nil
}

func unexpectedEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// parseRESPInt parses a length or integer reply strictly: an optional
// minus sign and 1..19 decimal digits, nothing else, no overflow.
func parseRESPInt(b []byte) (int64, error) {
	neg := len(b) > 0 && b[0] == '-'
	d := b
	if neg {
		d = b[1:]
	}
	if len(d) == 0 || len(d) > 19 {
		return 0, fmt.Errorf("%w: bad integer %q", errRESPProtocol, b)
	}
	var n uint64
	for _, c := range d {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%w: bad integer %q", errRESPProtocol, b)
		}
		n = n*10 + uint64(c-'0')
	}
	if n > 1<<63-1 {
		return 0, fmt.Errorf("%w: integer %q overflows", errRESPProtocol, b)
	}
	if neg {
		return -int64(n), nil
	}
	return int64(n), nil
}

// respConn is one connection for setup and checks (not the load loop):
// one command at a time.
type respConn struct {
	c   net.Conn
	r   *bufio.Reader
	buf []byte
}

func dialRESP(addr string, timeout time.Duration) (*respConn, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	return &respConn{c: c, r: bufio.NewReaderSize(c, respLineBytesMax)}, nil
}

func (c *respConn) Close() error { return c.c.Close() }

// do sends one command and reads its reply within timeout; an error reply
// is returned as a *respError.
func (c *respConn) do(timeout time.Duration, args ...string) (respValue, error) {
	c.buf = appendRESPArrayHeader(c.buf[:0], len(args))
	for _, a := range args {
		c.buf = append(c.buf, '$')
		c.buf = strconv.AppendInt(c.buf, int64(len(a)), 10)
		c.buf = append(c.buf, '\r', '\n')
		c.buf = append(c.buf, a...)
		c.buf = append(c.buf, '\r', '\n')
	}
	if err := c.c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return respValue{}, err
	}
	if _, err := c.c.Write(c.buf); err != nil {
		return respValue{}, err
	}
	v, err := readRESP(c.r)
	if err != nil {
		return respValue{}, err
	}
	if v.kind == '-' {
		return v, &respError{v.str}
	}
	return v, nil
}
