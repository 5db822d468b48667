package realnet

import (
	"encoding/binary"
	"fmt"
)

// frameReader cuts a peer connection's byte stream into frames for a
// reader that may not block: an event loop reads what the socket has into
// space(), and wrote hands over every frame those bytes completed. It is
// Peers.readFrames without io.ReadFull, and keeps its rules: a frame over
// frameMax or with a bad checksum ends the connection; the empty frame is
// a keepalive; each message is a new slice that the caller owns.
//
// A frame that fits the buffer is gathered there and copied out once. A
// larger one (a snapshot chunk) is gathered in a slice of its own that
// grows as its bytes arrive, so that a peer that announces a large frame
// and stalls holds no more memory than it sent (about twice that, at
// most, from append's growth).
type frameReader struct {
	frameMax int
	buf      []byte // the bytes not yet framed are buf[r:w]
	r, w     int
	// A frame larger than buf, being gathered: its payload so far, its
	// length (0: none being gathered) and its header.
	big    []byte
	bigLen int
	bigHdr [frameHeaderBytes]byte
}

func newFrameReader(bufBytes, frameMax int) *frameReader {
	if bufBytes <= frameHeaderBytes {
		panic(fmt.Sprintf("realnet: a frame reader's buffer of %d bytes holds no frame", bufBytes))
	}
	return &frameReader{frameMax: frameMax, buf: make([]byte, bufBytes)}
}

// space is where the next read goes; it is never empty.
func (fr *frameReader) space() []byte {
	if fr.r > 0 {
		// What is left is less than a frame: move it to the front.
		fr.w = copy(fr.buf, fr.buf[fr.r:fr.w])
		fr.r = 0
	}
	return fr.buf[fr.w:]
}

// wrote takes n bytes read into space(), and delivers each frame they
// complete, in order. An error ends the stream: the frames before the
// bad one were delivered.
func (fr *frameReader) wrote(n int, deliver func(msg []byte)) error {
	if n < 0 || n > len(fr.buf)-fr.w {
		panic(fmt.Sprintf("realnet: frame reader told of %d bytes with %d free", n, len(fr.buf)-fr.w))
	}
	fr.w += n
	if fr.bigLen > 0 {
		k := min(fr.bigLen-len(fr.big), fr.w-fr.r)
		fr.big = append(fr.big, fr.buf[fr.r:fr.r+k]...)
		fr.r += k
		if len(fr.big) < fr.bigLen {
			return nil
		}
		msg := fr.big
		fr.big, fr.bigLen = nil, 0
		if frameChecksum(fr.bigHdr[0:4], msg) != binary.LittleEndian.Uint32(fr.bigHdr[4:]) {
			return errFrameChecksum
		}
		deliver(msg)
	}
	for fr.w-fr.r >= frameHeaderBytes {
		h := fr.buf[fr.r : fr.r+frameHeaderBytes]
		size := binary.LittleEndian.Uint32(h[0:])
		if uint64(size) > uint64(fr.frameMax) {
			return fmt.Errorf("%w: %d bytes, over FrameBytesMax %d", errFrameTooLarge, size, fr.frameMax)
		}
		n := int(size)
		end := fr.r + frameHeaderBytes + n
		if end <= fr.w {
			payload := fr.buf[fr.r+frameHeaderBytes : end]
			if frameChecksum(h[0:4], payload) != binary.LittleEndian.Uint32(h[4:]) {
				return errFrameChecksum
			}
			fr.r = end
			if n > 0 { // the empty frame is a keepalive
				deliver(append(make([]byte, 0, n), payload...))
			}
			continue
		}
		if frameHeaderBytes+n <= len(fr.buf) {
			break // it fits the buffer: wait for the rest there
		}
		copy(fr.bigHdr[:], h)
		fr.bigLen = n
		fr.r += frameHeaderBytes
		fr.big = append(make([]byte, 0, min(n, max(fr.w-fr.r, len(fr.buf)))), fr.buf[fr.r:fr.w]...)
		fr.r = fr.w
		break
	}
	if fr.r == fr.w {
		fr.r, fr.w = 0, 0
	}
	return nil
}

// midFrame reports whether part of a frame has been read: an end of the
// stream now cuts it short.
func (fr *frameReader) midFrame() bool { return fr.bigLen > 0 || fr.r < fr.w }
