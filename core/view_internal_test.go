package core

import (
	"runtime"
	"testing"
	"weak"
)

// A view that is dropped or cleared lets its clone go: nothing in the
// table, its order's spare capacity included, still points at it.
func TestDroppedViewsAreCollected(t *testing.T) {
	store := NewStore()
	store.Set("k", "v")
	r := fixedRand(1)
	v := NewViews()
	first := v.Open(store, 0, &r)
	last := v.Open(store, 0, &r)
	lastClone := weak.Make(v.byID[last].store)
	v.Drop(last) // the order keeps its capacity, the freed slot in it
	runtime.GC()
	if lastClone.Value() != nil {
		t.Fatal("a dropped view's clone is still reachable")
	}
	other := v.Open(store, 0, &r)
	firstClone, otherClone := weak.Make(v.byID[first].store), weak.Make(v.byID[other].store)
	v.Clear()
	runtime.GC()
	if firstClone.Value() != nil || otherClone.Value() != nil {
		t.Fatal("a cleared view's clone is still reachable")
	}
}

// fixedRand counts up: distinct view ids without a seeded generator.
type fixedRand uint64

func (r *fixedRand) Uint64() uint64 { *r++; return uint64(*r) }
