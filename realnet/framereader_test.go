package realnet

import (
	"bytes"
	"errors"
	"testing"

	"pgregory.net/rapid"
)

// feedFrames runs stream through fr in reads of the sizes cuts draws, and
// returns the messages delivered and the error that ended it, if any.
func feedFrames(t *rapid.T, fr *frameReader, stream []byte, cut func(room int) int) ([][]byte, error) {
	var got [][]byte
	for len(stream) > 0 {
		space := fr.space()
		if len(space) == 0 {
			t.Fatalf("space() is empty with %d bytes left to read", len(stream))
		}
		n := min(cut(len(space)), len(stream))
		copy(space, stream[:n])
		stream = stream[n:]
		if err := fr.wrote(n, func(msg []byte) { got = append(got, msg) }); err != nil {
			return got, err
		}
	}
	return got, nil
}

// A stream of frames of every size (empty keepalives, ones that fit the
// buffer, ones several times its size), read in pieces of any size,
// comes out as the same messages in the same order, each a slice of its
// own; a bad checksum or an oversized length anywhere ends it there, with
// every frame before it delivered.
func TestFrameReaderCutsAnyStream(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		bufBytes := rapid.IntRange(frameHeaderBytes+1, 256).Draw(t, "bufBytes")
		frameMax := rapid.IntRange(1, 4*bufBytes).Draw(t, "frameMax")
		msgs := rapid.SliceOfN(rapid.SliceOfN(rapid.Byte(), 0, frameMax), 0, 12).Draw(t, "msgs")
		var stream []byte
		var want [][]byte
		for _, m := range msgs {
			h := frameHeader(m)
			stream = append(append(stream, h[:]...), m...)
			if len(m) > 0 {
				want = append(want, m)
			}
		}
		// A fault, maybe, in a frame after the good ones.
		fault := rapid.IntRange(0, 2).Draw(t, "fault")
		var wantErr error
		switch fault {
		case 1: // a payload byte flipped
			m := []byte("payload")[:min(7, frameMax)]
			h := frameHeader(m)
			m[0] ^= 1
			stream = append(append(stream, h[:]...), m...)
			wantErr = errFrameChecksum
		case 2: // a length over frameMax
			big := make([]byte, frameMax+1)
			h := frameHeader(big)
			stream = append(stream, h[:]...)
			wantErr = errFrameTooLarge
		}
		fr := newFrameReader(bufBytes, frameMax)
		got, err := feedFrames(t, fr, stream, func(room int) int {
			return rapid.IntRange(1, room).Draw(t, "read")
		})
		if !errors.Is(err, wantErr) || (wantErr == nil) != (err == nil) {
			t.Fatalf("error %v, want %v", err, wantErr)
		}
		if len(got) != len(want) {
			t.Fatalf("%d messages, want %d", len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("message %d: %q, want %q", i, got[i], want[i])
			}
		}
		// Each message is its own: changing one changes no other, and
		// the reader's buffer is not among them.
		for i := range got {
			for j := range got[i] {
				got[i][j] ^= 0xff
			}
		}
		for i := range want {
			for j := range got[i] {
				got[i][j] ^= 0xff
			}
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("message %d shares its bytes with another", i)
			}
		}
		if err == nil && fr.midFrame() {
			t.Fatalf("whole frames read, but the reader is mid-frame")
		}
	})
}

// A stream cut inside a frame leaves the reader mid-frame: an end of the
// stream there is a frame cut short, not a clean close.
func TestFrameReaderMidFrame(t *testing.T) {
	for _, size := range []int{5, 100} { // within the buffer, and larger
		msg := bytes.Repeat([]byte{'x'}, size)
		h := frameHeader(msg)
		stream := append(h[:], msg...)
		for cut := 1; cut < len(stream); cut++ {
			fr := newFrameReader(32, 1000)
			for left := stream[:cut]; len(left) > 0; {
				n := copy(fr.space(), left)
				left = left[n:]
				if err := fr.wrote(n, func([]byte) { t.Fatal("delivered a partial frame") }); err != nil {
					t.Fatal(err)
				}
			}
			if !fr.midFrame() {
				t.Fatalf("%d-byte frame cut after %d bytes: not mid-frame", size, cut)
			}
		}
	}
}
