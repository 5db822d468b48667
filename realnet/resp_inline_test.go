package realnet

import (
	"bytes"
	"errors"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// decodeAllocated runs one d.next(b) and returns its error and the bytes
// it allocated.
func decodeAllocated(d *respDecoder, b []byte) (error, uint64) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, _, err := d.next(b)
	runtime.ReadMemStats(&after)
	return err, after.TotalAlloc - before.TotalAlloc
}

// An inline command of more words than argsMax is refused at the word past
// it, before the rest are split: a line of "a a a …" once made a word of
// every two bytes (16 MiB: 8 million words, 660 MB, seconds of the event
// loop) only to count them.
func TestRESPInlineWordsPastArgsMaxAreNotSplit(t *testing.T) {
	const words = 30_000 // 60 KB: under the inline line limit
	line := append(bytes.Repeat([]byte("a "), words), '\r', '\n')
	d := newRESPDecoder(1<<20, respArgsMax(10)) // 28 words at most
	err, allocated := decodeAllocated(d, line)
	t.Logf("%d words, refused with %v after allocating %d bytes", words, err, allocated)
	var pe respProtocolError
	if !errors.As(err, &pe) || string(pe) != "invalid multibulk length: more than 28 words (dkv's limit: 2 × --max-bulk-entries + 8)" {
		t.Fatalf("an inline command of %d words, argsMax 28: %v, want invalid multibulk length", words, err)
	}
	// 29 words and their slice are a few KB; 30,000 were a MB and more.
	if allocated > uint64(len(line))/4 {
		t.Errorf("allocated %d bytes for a line of %d before refusing it", allocated, len(line))
	}
}

// An inline line is at most respInlineBytesMax (Redis's 64 KiB) however
// large a command may be, refused with Redis's error as soon as that much
// is buffered without a newline, and before anything of it is split.
func TestRESPInlineLineOverItsLimitIsRefused(t *testing.T) {
	const commandBytesMax = 4 << 20
	// The reviewer's line: 2 MiB of one-byte words, under the command
	// limit and the 20,008 arguments' bound only by its bytes.
	line := append(bytes.Repeat([]byte("a "), 1<<20), '\r', '\n')
	err, allocated := decodeAllocated(newRESPDecoder(commandBytesMax, respArgsMax(10_000)), line)
	t.Logf("a line of %d bytes refused with %v after allocating %d bytes", len(line), err, allocated)
	var pe respProtocolError
	if !errors.As(err, &pe) || string(pe) != "too big inline request" {
		t.Fatalf("an inline line of %d bytes: %v, want too big inline request", len(line), err)
	}
	if allocated > 64<<10 {
		t.Errorf("allocated %d bytes before refusing a line of %d", allocated, len(line))
	}

	// At the limit, a line is a command; one byte more is refused, and
	// without its newline as soon as that byte is there.
	atLimit := "ECHO " + strings.Repeat("x", respInlineBytesMax-len("ECHO \r")) + "\r\n"
	got, err := decodeAll(newRESPDecoder(commandBytesMax, 16), []byte(atLimit), nil)
	if err != nil || len(got) != 1 || len(got[0]) != 2 || len(got[0][1]) != respInlineBytesMax-len("ECHO \r") {
		t.Fatalf("an inline line of %d bytes: %v", respInlineBytesMax, err)
	}
	over := "ECHO " + strings.Repeat("x", respInlineBytesMax-len("ECHO ")+1)
	d := newRESPDecoder(commandBytesMax, 16)
	if size, _, err := d.next([]byte(over[:respInlineBytesMax])); size != 0 || err != nil {
		t.Fatalf("%d bytes of an inline line: %d, %v; want more awaited", respInlineBytesMax, size, err)
	}
	if _, _, err := d.next([]byte(over)); !errors.As(err, &pe) || string(pe) != "too big inline request" {
		t.Fatalf("%d bytes of an inline line, no newline: %v, want too big inline request", len(over), err)
	}
}

// On the wire, on either host: an inline command of 64 KiB is served; a
// longer one gets Redis's protocol error and the connection closes after
// the replies owed, while an array of the same bytes is served.
func TestRESPInlineLineLimitOnTheWire(t *testing.T) {
	forEachHost(t, respConfig(), func(t *testing.T, cfg HostConfig) {
		r := startSingle(t, cfg)
		value := strings.Repeat("x", respInlineBytesMax-len("ECHO \r"))
		c := dialRESP(t, r.addr)
		c.send("PING\r\nECHO " + value + "\r\n")
		c.expect("+PONG\r\n")
		c.expect("$" + strconv.Itoa(len(value)) + "\r\n" + value + "\r\n")
		c.send("ECHO " + value + "x\r\n")
		c.expect("-ERR Protocol error: too big inline request\r\n")
		c.expectClosed()

		a := dialRESP(t, r.addr)
		a.send("*2\r\n$4\r\nECHO\r\n$" + strconv.Itoa(len(value)+1) + "\r\n" + value + "x\r\n")
		a.expect("$" + strconv.Itoa(len(value)+1) + "\r\n" + value + "x\r\n")
	})
}
