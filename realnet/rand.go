package realnet

import (
	crand "crypto/rand"
	"encoding/binary"
	"math/rand/v2"

	"dkv/core"
)

// newRand seeds a PCG once from the OS: production wants unpredictable
// election jitter, while the simulator seeds its own Rand to replay runs.
func newRand() core.Rand {
	var seed [16]byte
	// crypto/rand.Read never fails on Linux (it panics rather than return
	// weak randomness), so there is no error to handle.
	crand.Read(seed[:])
	return rand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:]))
}
