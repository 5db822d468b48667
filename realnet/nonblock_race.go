//go:build linux && race

package realnet

import (
	"runtime"
	"unsafe"
)

// Under the race detector, the raw system calls tell it what the kernel
// read and wrote, as the runtime's wrappers do, so that a buffer that a
// read fills while another goroutine uses it is still reported.

func raceWrote(b []byte) {
	if len(b) > 0 {
		runtime.RaceWriteRange(unsafe.Pointer(&b[0]), len(b))
	}
}

func raceReading(b []byte) {
	if len(b) > 0 {
		runtime.RaceReadRange(unsafe.Pointer(&b[0]), len(b))
	}
}
