package realnet

import (
	"strings"
	"testing"
)

// A decoder that has read a command of many arguments does not keep room
// for them once the next command is asked for: the read buffer shrinks
// back after a large command, and the argument slices must too, or every
// connection that once sent a large MSET holds 800 KB for good.
func TestRESPDecoderKeepsNoLargeRoom(t *testing.T) {
	const pairs = 10_000
	var b strings.Builder
	b.WriteString(respArray(append([]string{"MSET"}, strings.Fields(strings.Repeat("k v ", pairs))...)...))
	big := b.String()
	for _, tc := range []struct{ name, big string }{
		{"array", big},
		{"inline", "MSET" + strings.Repeat(" k v", 30) + strings.Repeat(" k", 300) + "\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newRESPDecoder(1<<20, respArgsMax(pairs))
			size, argv, err := d.next([]byte(tc.big))
			if err != nil || size != len(tc.big) || len(argv) <= respArgsKeptMax {
				t.Fatalf("the large command: size %d, %d arguments, %v", size, len(argv), err)
			}
			ping := "*1\r\n$4\r\nPING\r\n"
			if size, argv, err := d.next([]byte(ping)); err != nil || size != len(ping) || len(argv) != 1 || string(argv[0]) != "PING" {
				t.Fatalf("PING after it: size %d, %q, %v", size, argv, err)
			}
			if cap(d.args) > respArgsKeptMax || cap(d.argv) > respArgsKeptMax {
				t.Errorf("after a command of %d arguments and a PING the decoder keeps room for %d and %d; at most %d",
					len(argv), cap(d.args), cap(d.argv), respArgsKeptMax)
			}
			// Nothing is kept either after a large command alone, once
			// the next call comes with nothing to read.
			d.next([]byte(tc.big))
			d.next(nil)
			if cap(d.args) > respArgsKeptMax || cap(d.argv) > respArgsKeptMax {
				t.Errorf("after a large command and an empty read the decoder keeps room for %d and %d", cap(d.args), cap(d.argv))
			}
		})
	}
}

// A connection's name, which it keeps while it is open, is bounded: a
// CLIENT SETNAME or HELLO … SETNAME of a name as long as a command (16 MiB
// at the default --max-request-bytes) was kept whole, by every connection.
func TestRESPClientNameIsBounded(t *testing.T) {
	r := startSingle(t, respConfig())
	c := dialRESP(t, r.addr)
	ok := strings.Repeat("n", respClientNameBytesMax)
	long := ok + "n"
	want := "-ERR dkv's client names are at most 1024 bytes; this one is 1025\r\n"
	for _, tc := range []struct{ send, want string }{
		{respArray("CLIENT", "SETNAME", ok), "+OK\r\n"},
		{respArray("CLIENT", "SETNAME", long), want},
		{respArray("HELLO", "2", "SETNAME", long), want},
		{respArray("CLIENT", "GETNAME"), "$1024\r\n" + ok + "\r\n"}, // the refused names took nothing
		{respArray("CLIENT", "SETNAME", "a b"), "-ERR Client names cannot contain spaces, newlines or special characters.\r\n"},
	} {
		c.send(tc.send)
		c.expect(tc.want)
	}
}
