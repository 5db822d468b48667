package main

import (
	"os"
	"syscall"
	"testing"
	"time"
)

// TestReadProcStat reads this process's own /proc/PID/stat: touching
// fresh pages must show as minor faults, and spinning as CPU time.
func TestReadProcStat(t *testing.T) {
	before, err := readProcStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	const pages = 1024
	mem, err := syscall.Mmap(-1, 0, pages*os.Getpagesize(), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(mem)
	for i := 0; i < len(mem); i += os.Getpagesize() {
		mem[i] = 1
	}
	var after procStat
	deadline := time.Now().Add(10 * time.Second)
	for x := 0; after.cpu <= before.cpu; x++ { // a clock tick of CPU time at least
		if time.Now().After(deadline) {
			t.Fatalf("CPU time stayed at %v for 10 s of spinning", before.cpu)
		}
		if after, err = readProcStat(os.Getpid()); err != nil {
			t.Fatal(err)
		}
		for i := range 1 << 16 {
			x ^= i
		}
	}
	if got := after.faults - before.faults; got < pages {
		t.Errorf("minor faults rose by %d after touching %d fresh pages", got, pages)
	}
}

// memoryFS tells a disk from tmpfs: /dev/shm is tmpfs on Linux.
func TestMemoryFS(t *testing.T) {
	if fs := memoryFS("/dev/shm"); fs != "tmpfs" {
		t.Skipf("/dev/shm is not tmpfs here (%q)", fs)
	}
	if fs := memoryFS(t.TempDir()); fs != "" && os.Getenv("TMPDIR") == "" {
		t.Logf("the test's temporary directory is on %s", fs)
	}
}
