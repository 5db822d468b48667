package mesh

import (
	"encoding/binary"
	"errors"
)

// Item is one key's replicated state: its value, or a tombstone, and the
// stamp of the write that set it. Replicas keep, for each key, the item with
// the highest stamp (last writer wins).
type Item struct {
	Key   string
	Stamp Stamp
	Tomb  bool // a delete: Value is empty
	Value string
}

// Newer reports whether it beats what a replica holds (held: whether it
// holds anything for the key).
func (it *Item) newerThan(cur Stamp, held bool) bool {
	return !held || cur.Less(it.Stamp)
}

// A version is how the replica's store holds an item: the store key is the
// item's bucket (2 bytes, big-endian, so a bucket's keys are one range of the
// ordered store) and the key; the store value is
//
//	[stamp 14 bytes][flags u8][value]
//
// Keeping the mesh's state in core.Store reuses its copy-on-write clones and
// the snapshot format unchanged.
const (
	versionHeaderBytes = stampBytes + 1
	flagTomb           = 1
	bucketPrefixBytes  = 2
)

func storeKey(key string) string {
	b := bucketOf(key)
	return string([]byte{byte(b >> 8), byte(b)}) + key
}

func userKey(sk string) string { return sk[bucketPrefixBytes:] }

func bucketOfStoreKey(sk string) int { return int(sk[0])<<8 | int(sk[1]) }

func encodeVersion(it *Item) string {
	b := make([]byte, 0, versionHeaderBytes+len(it.Value))
	b = appendStamp(b, it.Stamp)
	var flags byte
	if it.Tomb {
		flags |= flagTomb
	}
	b = append(b, flags)
	b = append(b, it.Value...)
	return string(b)
}

var errVersion = errors.New("malformed mesh version")

// decodeVersion reads a stored version back into an item of key.
func decodeVersion(key, v string) (Item, error) {
	if len(v) < versionHeaderBytes {
		return Item{}, errVersion
	}
	flags := v[stampBytes]
	if flags&^flagTomb != 0 {
		return Item{}, errVersion
	}
	it := Item{Key: key, Stamp: decodeStamp([]byte(v[:stampBytes])), Tomb: flags&flagTomb != 0, Value: v[versionHeaderBytes:]}
	if it.Tomb && it.Value != "" {
		return Item{}, errVersion
	}
	return it, nil
}

// versionStamp reads only the stamp of a stored version.
func versionStamp(v string) Stamp {
	assert(len(v) >= versionHeaderBytes, "versionStamp: short version")
	return Stamp{
		Wall:    int64(binary.LittleEndian.Uint64([]byte(v[:8]))),
		Logical: binary.LittleEndian.Uint32([]byte(v[8:12])),
		Node:    binary.LittleEndian.Uint16([]byte(v[12:14])),
	}
}

// Buckets partition the key space for anti-entropy: a key's bucket is a hash
// of the key, so buckets fill evenly whatever the keys look like.
const bucketsN = 1024

func bucketOf(key string) int { return int(fnv64(fnvOffset, key) % bucketsN) }

// FNV-1a, 64-bit: deterministic on every node and platform (unlike
// hash/maphash, seeded per process), and cheap.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func fnv64(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

// versionHash is one stored version's contribution to its bucket's digest.
// The digest is the XOR of its versions' hashes, so a write updates it in
// O(1); keys are unique within a bucket, so no two hashes cancel by being
// the same entry twice.
func versionHash(sk, v string) uint64 {
	h := fnv64(fnvOffset, sk)
	h ^= 0xff // separates key from version: ("ab","c") and ("a","bc") differ
	h *= fnvPrime
	return mix64(fnv64(h, v))
}

// mix64 is a 64-bit finaliser (from SplitMix64), spreading FNV's weak low
// bits so that XORs of many hashes stay collision-resistant.
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}
