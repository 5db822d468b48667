package realnet

import (
	"bytes"
	"strconv"
)

// RESP2, the Redis serialization protocol, on the client port beside JSON
// lines (see docs/PROTOCOL.md): a command is an array of bulk strings
// ("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n") or an inline line of words ("GET
// k\r\n", as typed into telnet); a reply is a simple string, an error, an
// integer, a bulk string (or the null bulk string) or an array of them.

// respDecoder frames RESP commands out of a connection's read buffer. It is
// incremental: given the buffered bytes of the command being read, it parses
// what is new since its last call and remembers where it stopped, so a large
// command arriving in small pieces is parsed once, not again at every read.
// Every limit is checked on a length before the bytes it announces are
// waited for or anything is allocated for them.
type respDecoder struct {
	// commandBytesMax bounds one command, framing included, as the JSON
	// line limit (RequestBytesMax) bounds a line.
	commandBytesMax int
	// unauthed: commandBytesMax is the bound before authentication, which
	// the errors name.
	unauthed bool
	// argsMax bounds the elements of one command's array.
	argsMax int

	// The command being parsed; offsets are from its first byte, so they
	// survive the reader moving the buffer's contents.
	inArray bool     // its array header has been read
	want    int      // elements the header announced
	args    [][2]int // [start, end) of each complete bulk string
	pos     int      // where the next element (or the inline line's scan) resumes
	bulkLen int      // -1, or the length of the bulk string whose header was read
	argv    [][]byte
}

func newRESPDecoder(commandBytesMax, argsMax int) *respDecoder {
	return &respDecoder{commandBytesMax: commandBytesMax, argsMax: argsMax, bulkLen: -1}
}

// setCommandBytesMax sets the bound on the next command (a connection's
// is lower until it authenticates: conn.requestBytesMax); unauthed says
// that it is that one.
func (d *respDecoder) setCommandBytesMax(n int, unauthed bool) {
	d.commandBytesMax, d.unauthed = n, unauthed
}

// respProtocolError is a malformed or oversized command. Redis answers it
// with "-ERR Protocol error: ..." and closes the connection; so does dkv.
type respProtocolError string

func (e respProtocolError) Error() string { return "Protocol error: " + string(e) }

// respHeaderBytesMax bounds an array or bulk header line ("*123\r\n"): any
// count that fits in an int has at most 20 digits, so a longer header is
// not a header.
const respHeaderBytesMax = 32

// respInlineBytesMax bounds an inline command's line, its newline excluded
// (and the command limit, if lower, bounds it too), as Redis bounds it
// (PROTO_INLINE_MAX_SIZE) and with Redis's error, "too big inline
// request". Inline is for a person at telnet; clients send arrays. An
// inline line is split byte by byte into new words, where an array's
// bulk strings are taken from the buffer as they are, so it gets the
// smaller bound.
const respInlineBytesMax = 64 << 10

// next parses the command that starts at b[0]. It returns the command's
// size and its arguments once it is complete (an empty argv is a command to
// skip: an empty inline line or an array of no elements, which Redis does
// not answer); size 0 when more bytes are needed; or a protocol error. The
// arguments alias b and the decoder's own buffer until the next call.
func (d *respDecoder) next(b []byte) (size int, argv [][]byte, err error) {
	if cap(d.argv) > respArgsKeptMax {
		// The last command's arguments are no longer in use: a
		// connection keeps no large slice for the rest of its life.
		d.argv = nil
	}
	if len(b) == 0 {
		return 0, nil, nil
	}
	if b[0] != '*' && !d.inArray {
		return d.inline(b)
	}
	if !d.inArray {
		line, n, err := d.header(b, 0, "mbulk")
		if n == 0 || err != nil {
			return 0, nil, err
		}
		count, ok := parseRESPInt(line)
		switch {
		case !ok:
			return 0, nil, respProtocolError("invalid multibulk length")
		case count > int64(d.argsMax):
			return 0, nil, d.tooManyArgs(strconv.FormatInt(count, 10) + " elements, over " + strconv.Itoa(d.argsMax))
		}
		if count <= 0 {
			// "*0" and "*-1" are empty commands: skipped, unanswered.
			d.reset()
			return n, nil, nil
		}
		d.inArray, d.want, d.pos = true, int(count), n
	}
	for len(d.args) < d.want {
		if d.bulkLen < 0 {
			if d.pos >= len(b) {
				return 0, nil, nil
			}
			if b[d.pos] != '$' {
				return 0, nil, respProtocolError("expected '$', got '" + printableByte(b[d.pos]) + "'")
			}
			line, n, err := d.header(b, d.pos, "bulk")
			if n == 0 || err != nil {
				return 0, nil, err
			}
			l, ok := parseRESPInt(line)
			// The whole command, framing included, is bounded like a
			// JSON line: checked here, before its bytes are waited for.
			switch {
			case !ok || l < 0:
				return 0, nil, respProtocolError("invalid bulk length")
			case l > int64(d.commandBytesMax) || d.pos+n+int(l)+2 > d.commandBytesMax:
				// Redis's words first, for whatever matches on them, then
				// which limit: a value over it is an operator's setting to
				// find (a cluster node's is 4 MiB), not a broken client.
				limit := "(--max-request-bytes)"
				if d.unauthed {
					limit = "(the bound before a connection authenticates: send AUTH first)"
				}
				return 0, nil, respProtocolError("invalid bulk length: a bulk string of " + strconv.FormatInt(l, 10) +
					" bytes would take the command past " + strconv.Itoa(d.commandBytesMax) + " bytes " + limit)
			}
			d.bulkLen = int(l)
			d.pos += n
		}
		end := d.pos + d.bulkLen
		if end+2 > len(b) {
			return 0, nil, nil
		}
		if b[end] != '\r' || b[end+1] != '\n' {
			return 0, nil, respProtocolError("expected CRLF after a bulk string of " + strconv.Itoa(d.bulkLen) + " bytes")
		}
		d.args = append(d.args, [2]int{d.pos, end})
		d.pos, d.bulkLen = end+2, -1
	}
	size = d.pos
	d.argv = d.argv[:0]
	for _, a := range d.args {
		d.argv = append(d.argv, b[a[0]:a[1]:a[1]])
	}
	d.reset()
	return size, d.argv, nil
}

// header reads the line "<type><digits>\r\n" at b[at:], returning the
// digits and the line's size, 0 while it is incomplete.
func (d *respDecoder) header(b []byte, at int, what string) (digits []byte, n int, err error) {
	rest := b[at+1 : min(len(b), at+respHeaderBytesMax)]
	i := bytes.IndexByte(rest, '\r')
	if i < 0 || i+1 >= len(rest) {
		if len(b)-at >= respHeaderBytesMax {
			return nil, 0, respProtocolError("too big " + what + " count string")
		}
		return nil, 0, nil
	}
	if rest[i+1] != '\n' {
		return nil, 0, respProtocolError("expected CRLF after the " + what + " count")
	}
	return rest[:i], 1 + i + 2, nil
}

// inline parses an inline command: one line of words, split as redis-cli
// and Redis split them (sdssplitargs: "double" and 'single' quotes, with
// escapes in double quotes). A line over respInlineBytesMax is refused
// once that many bytes are buffered without its newline, and one of more
// than argsMax words at the word past argsMax, before it is split: the
// limits bound the work and the words a line makes, not just what is kept.
func (d *respDecoder) inline(b []byte) (int, [][]byte, error) {
	lineMax := min(d.commandBytesMax, respInlineBytesMax)
	// A newline at lineMax ends a line of lineMax bytes; none is looked
	// for further. d.pos <= lineMax: it is set past what was scanned
	// only while that was within the bound.
	i := bytes.IndexByte(b[d.pos:min(len(b), lineMax+1)], '\n')
	if i < 0 {
		if len(b) > lineMax {
			return 0, nil, respProtocolError("too big inline request")
		}
		d.pos = len(b)
		return 0, nil, nil
	}
	end := d.pos + i
	d.pos = 0
	line := bytes.TrimSuffix(b[:end], []byte{'\r'})
	argv, err := splitInline(line, d.argv[:0], d.argsMax)
	if err == errInlineTooManyWords {
		return 0, nil, d.tooManyArgs("more than " + strconv.Itoa(d.argsMax) + " words")
	}
	if err != nil {
		return 0, nil, err
	}
	d.argv = argv
	return end + 1, argv, nil
}

// tooManyArgs is the error for a command of more elements than argsMax
// (what says how many), naming the limit.
func (d *respDecoder) tooManyArgs(what string) respProtocolError {
	return respProtocolError("invalid multibulk length: " + what + " (dkv's limit: 2 × --max-bulk-entries + 8)")
}

func (d *respDecoder) reset() {
	d.inArray, d.want, d.pos, d.bulkLen = false, 0, 0, -1
	d.args = d.args[:0]
	if cap(d.args) > respArgsKeptMax {
		d.args = nil
	}
}

// respArgsKeptMax bounds the arguments a decoder keeps room for between
// commands. The read buffer goes back to its small size once a large
// command has been read; the decoder's slices of a command's arguments
// (40 bytes an argument) did not: a connection that once sent an MSET of
// 10,000 pairs kept 800 KB of them for as long as it stayed open, and 300
// such idle connections held 455 MiB of the server's memory (found by
// review). A command of more arguments than this allocates its own.
const respArgsKeptMax = 256

// parseRESPInt parses a count as Redis does (string2ll): an optional minus
// and decimal digits, no sign or space or leading zero games. Every command
// has two or three counts, so the usual ones are parsed here by hand (as
// strconv.ParseInt, they were 0.8% of the samples at GET c50).
func parseRESPInt(b []byte) (int64, bool) {
	d := b
	if len(d) > 0 && d[0] == '-' {
		d = d[1:]
	}
	if len(d) == 0 || len(d) > 18 { // 18 digits cannot overflow
		return parseRESPIntLong(b)
	}
	if d[0] == '0' && len(b) > 1 { // "01", "-0"
		return 0, false
	}
	var n int64
	for _, c := range d {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if len(d) < len(b) {
		n = -n
	}
	return n, true
}

// parseRESPIntLong is parseRESPInt for what the fast path leaves: no
// digits, or more than 18.
func parseRESPIntLong(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil || b[0] == '+' || (len(b) > 1 && b[0] == '0') || (len(b) > 1 && b[0] == '-' && b[1] == '0') {
		return 0, false
	}
	return n, true
}

func printableByte(c byte) string {
	if c >= 0x20 && c < 0x7f {
		return string(rune(c))
	}
	return "\\x" + strconv.FormatUint(uint64(c)>>4, 16) + strconv.FormatUint(uint64(c)&15, 16)
}

// splitInline splits an inline command line into words as Redis's
// sdssplitargs does, appending them to argv. It refuses unbalanced quotes
// (or a closing quote followed by something other than a space), and a
// word past argsMax before it is read, with the error Redis gives an
// array's count over its limit: a line of "a a a …" is not split into
// millions of words to count them.
// errInlineTooManyWords is splitInline's error for a line of more than
// argsMax words; the decoder words it with its limit.
const errInlineTooManyWords = respProtocolError("invalid multibulk length")

func splitInline(line []byte, argv [][]byte, argsMax int) ([][]byte, error) {
	const unbalanced = respProtocolError("unbalanced quotes in request")
	p := 0
	for words := 0; ; words++ {
		for p < len(line) && isRESPSpace(line[p]) {
			p++
		}
		if p == len(line) {
			return argv, nil
		}
		if words == argsMax {
			return argv, errInlineTooManyWords
		}
		var cur []byte
		inq, insq := false, false
		for done := false; !done; {
			if p == len(line) {
				if inq || insq {
					return argv, unbalanced
				}
				break
			}
			c := line[p]
			switch {
			case inq:
				switch {
				case c == '\\' && p+3 < len(line) && line[p+1] == 'x' && isHex(line[p+2]) && isHex(line[p+3]):
					cur = append(cur, unhex(line[p+2])<<4|unhex(line[p+3]))
					p += 3
				case c == '\\' && p+1 < len(line):
					p++
					switch e := line[p]; e {
					case 'n':
						cur = append(cur, '\n')
					case 'r':
						cur = append(cur, '\r')
					case 't':
						cur = append(cur, '\t')
					case 'b':
						cur = append(cur, '\b')
					case 'a':
						cur = append(cur, '\a')
					default:
						cur = append(cur, e)
					}
				case c == '"':
					// The closing quote must end the word.
					if p+1 < len(line) && !isRESPSpace(line[p+1]) {
						return argv, unbalanced
					}
					done = true
				default:
					cur = append(cur, c)
				}
			case insq:
				switch {
				case c == '\\' && p+1 < len(line) && line[p+1] == '\'':
					p++
					cur = append(cur, '\'')
				case c == '\'':
					if p+1 < len(line) && !isRESPSpace(line[p+1]) {
						return argv, unbalanced
					}
					done = true
				default:
					cur = append(cur, c)
				}
			default:
				switch c {
				case ' ', '\n', '\r', '\t', 0:
					done = true
				case '"':
					inq = true
				case '\'':
					insq = true
				default:
					cur = append(cur, c)
				}
			}
			if p < len(line) {
				p++
			}
		}
		if cur == nil {
			cur = []byte{}
		}
		argv = append(argv, cur)
	}
}

func isRESPSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// The encoder: each appends one reply.

func appendRESPSimple(dst []byte, s string) []byte {
	dst = append(dst, '+')
	dst = appendRESPLine(dst, s)
	return append(dst, '\r', '\n')
}

// appendRESPError appends "-<msg>\r\n"; msg starts with its code word
// ("ERR", "NOTLEADER", ...).
func appendRESPError(dst []byte, msg string) []byte {
	dst = append(dst, '-')
	dst = appendRESPLine(dst, msg)
	return append(dst, '\r', '\n')
}

// appendRESPLine appends s with any CR or LF made a space: a simple string
// or an error is one line.
func appendRESPLine(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		dst = append(dst, c)
	}
	return dst
}

func appendRESPInt(dst []byte, n int64) []byte {
	dst = append(dst, ':')
	dst = strconv.AppendInt(dst, n, 10)
	return append(dst, '\r', '\n')
}

func appendRESPBulk(dst []byte, s string) []byte {
	dst = append(dst, '$')
	dst = strconv.AppendInt(dst, int64(len(s)), 10)
	dst = append(dst, '\r', '\n')
	dst = append(dst, s...)
	return append(dst, '\r', '\n')
}

func appendRESPNull(dst []byte) []byte { return append(dst, "$-1\r\n"...) }

func appendRESPArray(dst []byte, n int) []byte {
	dst = append(dst, '*')
	dst = strconv.AppendInt(dst, int64(n), 10)
	return append(dst, '\r', '\n')
}
