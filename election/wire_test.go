package election

import (
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"testing"

	"pgregory.net/rapid"

	"dkv/core"
)

const testChunkMax = 64

func genNodeID(t *rapid.T, label string) core.NodeID {
	return core.NodeID(rapid.Int32().Draw(t, label))
}

func genChunk(t *rapid.T) chunk {
	c := chunk{
		From: genNodeID(t, "from"), To: genNodeID(t, "to"),
		Term: rapid.Uint64().Draw(t, "term"), Index: rapid.Uint64().Draw(t, "index"),
		SnapTerm: rapid.Uint64().Draw(t, "snapTerm"),
		Commit:   rapid.Uint64().Draw(t, "commit"), Context: rapid.Uint64().Draw(t, "context"),
		Data: rapid.SliceOfN(rapid.Byte(), 0, testChunkMax).Draw(t, "data"),
	}
	c.Total = rapid.Uint64Range(uint64(len(c.Data)), snapFileBytesMax).Draw(t, "total")
	c.Offset = rapid.Uint64Range(0, c.Total-uint64(len(c.Data))).Draw(t, "offset")
	return c
}

// Property: a chunk and a chunk ack decode to themselves, and no cut of
// their bytes decodes.
func TestChunkRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := genChunk(t)
		b := appendChunk([]byte("prefix"), &c)[len("prefix"):]
		got, err := decodeChunk(b, testChunkMax)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if len(got.Data) == 0 && len(c.Data) == 0 {
			got.Data, c.Data = nil, nil
		}
		if !reflect.DeepEqual(got, c) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, c)
		}
		cut := rapid.IntRange(0, len(b)-1).Draw(t, "cut")
		if _, err := decodeChunk(b[:cut], testChunkMax); err == nil {
			t.Fatalf("a chunk cut to %d of %d bytes decoded", cut, len(b))
		}
	})
}

func TestChunkAckRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a := chunkAck{
			From: genNodeID(t, "from"), To: genNodeID(t, "to"),
			Term: rapid.Uint64().Draw(t, "term"), Index: rapid.Uint64().Draw(t, "index"),
			Have: rapid.Uint64().Draw(t, "have"),
		}
		b := appendChunkAck([]byte("prefix"), &a)[len("prefix"):]
		got, err := decodeChunkAck(b)
		if err != nil || got != a {
			t.Fatalf("round trip: %+v, %v; want %+v", got, err, a)
		}
	})
}

// rawChunk encodes a chunk header by the layout in wire.go, with a data
// length that need not match the data.
func rawChunk(offset, total uint64, n uint32, data []byte) []byte {
	b := []byte{wireChunk}
	b = binary.LittleEndian.AppendUint32(b, 1)
	b = binary.LittleEndian.AppendUint32(b, 2)
	for _, v := range []uint64{3, 4, 5, 6, 7, offset, total} {
		b = binary.LittleEndian.AppendUint64(b, v)
	}
	b = binary.LittleEndian.AppendUint32(b, n)
	return append(b, data...)
}

func TestDecodeChunkLimits(t *testing.T) {
	data := make([]byte, 10)
	full := make([]byte, testChunkMax)
	cases := []struct {
		name string
		b    []byte
		ok   bool
	}{
		{"a chunk", rawChunk(0, 10, 10, data), true},
		{"the last chunk", rawChunk(90, 100, 10, data), true},
		{"a chunk of dataMax bytes", rawChunk(0, testChunkMax, testChunkMax, full), true},
		{"an empty chunk at the end", rawChunk(100, 100, 0, nil), true},
		{"a file of the largest size", rawChunk(snapFileBytesMax-10, snapFileBytesMax, 10, data), true},
		{"more data than dataMax", rawChunk(0, 100, testChunkMax+1, make([]byte, testChunkMax+1)), false},
		{"fewer bytes than the length says", rawChunk(0, 100, 11, data), false},
		{"more bytes than the length says", rawChunk(0, 100, 9, data), false},
		{"a length near 2^32", rawChunk(0, 100, math.MaxUint32, data), false},
		{"data past the file's end", rawChunk(91, 100, 10, data), false},
		{"an offset past the file's end", rawChunk(101, 100, 0, nil), false},
		{"a file over snapFileBytesMax", rawChunk(0, snapFileBytesMax+1, 10, data), false},
		{"an offset that wraps around", rawChunk(math.MaxUint64, 100, 10, data), false},
		{"an offset that wraps to the file", rawChunk(math.MaxUint64-5, 100, 10, data), false},
		{"another kind", append([]byte{wireChunkAck}, rawChunk(0, 10, 10, data)[1:]...), false},
		{"no bytes", nil, false},
		{"a header cut short", rawChunk(0, 10, 10, data)[:chunkHeaderBytes-1], false},
	}
	for _, c := range cases {
		got, err := decodeChunk(c.b, testChunkMax)
		if c.ok != (err == nil) {
			t.Errorf("%s: err = %v, want ok %v", c.name, err, c.ok)
			continue
		}
		if err != nil && !errors.Is(err, errMessage) {
			t.Errorf("%s: err = %v, want errMessage", c.name, err)
		}
		if err == nil && (got.Offset+uint64(len(got.Data)) > got.Total || got.Offset > got.Total) {
			t.Errorf("%s: decoded a chunk at %d+%d of %d", c.name, got.Offset, len(got.Data), got.Total)
		}
	}
}

func TestDecodeChunkAckRefusesMalformed(t *testing.T) {
	good := appendChunkAck(nil, &chunkAck{From: 1, To: 2, Term: 3, Index: 4, Have: 5})
	for n := range len(good) + 2 {
		b := make([]byte, n)
		copy(b, good)
		_, err := decodeChunkAck(b)
		if n == len(good) {
			if err != nil {
				t.Fatalf("the ack: %v", err)
			}
			continue
		}
		if !errors.Is(err, errMessage) {
			t.Errorf("%d bytes: err = %v", n, err)
		}
	}
	other := append([]byte{wireChunk}, good[1:]...)
	if _, err := decodeChunkAck(other); err == nil {
		t.Error("another kind decoded as an ack")
	}
}

func TestPeekRaft(t *testing.T) {
	m := Message{Type: MsgApp, From: 1, To: 2, Term: 3, Index: 4, Entries: []Entry{{Term: 3, Index: 5, Data: []byte("x")}}}
	msg := AppendMessage([]byte{wireRaft}, &m)
	if got, ok := PeekRaft(msg); !ok || !reflect.DeepEqual(got, m) {
		t.Fatalf("PeekRaft = %+v, %v", got, ok)
	}
	c := chunk{Total: 1, Data: []byte{1}}
	for _, b := range [][]byte{nil, {wireRaft}, msg[:len(msg)-1], appendChunk(nil, &c), appendChunkAck(nil, &chunkAck{})} {
		if _, ok := PeekRaft(b); ok {
			t.Errorf("PeekRaft(%x) took it for a Raft message", b)
		}
	}
}

// Whatever the bytes, decodeChunk refuses them or returns a chunk inside
// its file that encodes back to the same bytes.
func FuzzDecodeChunk(f *testing.F) {
	f.Add(rawChunk(0, 10, 10, make([]byte, 10)))
	f.Add(rawChunk(math.MaxUint64, 100, 10, make([]byte, 10)))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeChunk(b, testChunkMax)
		if err != nil {
			return
		}
		if c.Offset > c.Total || uint64(len(c.Data)) > c.Total-c.Offset || c.Total > snapFileBytesMax {
			t.Fatalf("a chunk at %d+%d of %d decoded", c.Offset, len(c.Data), c.Total)
		}
		if again := appendChunk(nil, &c); string(again) != string(b) {
			t.Fatal("re-encoding differs")
		}
	})
}
