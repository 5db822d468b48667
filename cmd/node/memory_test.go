package main

import (
	"io"
	"math"
	"runtime/debug"
	"strings"
	"testing"
)

// The collector flags: their defaults, $GOGC and $GOMEMLIMIT where a flag
// is not given, and values refused.
func TestGCFlags(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	cases := []struct {
		env  map[string]string
		args []string
		want gcSettings
	}{
		{nil, nil, gcSettings{percent: defaultGCPercent, setPercent: true}},
		{nil, []string{"--gc-percent=200"}, gcSettings{percent: 200, setPercent: true}},
		{map[string]string{"GOGC": "80"}, nil, gcSettings{percent: defaultGCPercent}},
		{map[string]string{"GOGC": "80"}, []string{"--gc-percent=30"}, gcSettings{percent: 30, setPercent: true}},
		{nil, []string{"--memory-limit=512MiB"}, gcSettings{percent: defaultGCPercent, setPercent: true, memoryLimit: 512 << 20, setLimit: true}},
		{nil, []string{"--memory-limit=1073741824"}, gcSettings{percent: defaultGCPercent, setPercent: true, memoryLimit: 1 << 30, setLimit: true}},
		{nil, []string{"--memory-limit=0"}, gcSettings{percent: defaultGCPercent, setPercent: true, setLimit: true}},
		{nil, []string{"--gc-percent=-1", "--memory-limit=2GiB"}, gcSettings{percent: -1, setPercent: true, memoryLimit: 2 << 30, setLimit: true}},
		{map[string]string{"GOMEMLIMIT": "1GiB"}, []string{"--gc-percent=-1"}, gcSettings{percent: -1, setPercent: true}},
		{nil, []string{"--enable-indexes"}, gcSettings{percent: defaultGCPercent, setPercent: true}},
		{nil, []string{"--enable-indexes", "--gc-percent=100"}, gcSettings{percent: 100, setPercent: true}},
		{map[string]string{"GOGC": "80"}, []string{"--enable-indexes"}, gcSettings{percent: defaultGCPercent}},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			o, err := parseFlags(c.args, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if o.gc != c.want {
				t.Fatalf("env %v, flags %v: %+v, want %+v", c.env, c.args, o.gc, c.want)
			}
		})
	}
	for _, args := range [][]string{
		{"--gc-percent=0"},
		{"--gc-percent=-2"},
		{"--gc-percent=-1"},
		{"--memory-limit=lots"},
		{"--memory-limit=-1"},
		{"--memory-limit=1.5GiB"},
		{"--memory-limit=1GB"},
		{"--memory-limit=99999999999TiB"},
		{"--memory-limit=12"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("%v: accepted", args)
		}
	}
}

// apply sets what was asked of the runtime, and only that.
func TestGCApply(t *testing.T) {
	oldPercent := debug.SetGCPercent(100)
	oldLimit := debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() {
		debug.SetGCPercent(oldPercent)
		debug.SetMemoryLimit(oldLimit)
	})
	gcSettings{percent: 40, setPercent: true, memoryLimit: 3 << 30, setLimit: true}.apply()
	if p := debug.SetGCPercent(100); p != 40 {
		t.Errorf("GC percent %d, want 40", p)
	}
	if l := debug.SetMemoryLimit(-1); l != 3<<30 {
		t.Errorf("memory limit %d, want 3 GiB", l)
	}
	gcSettings{percent: 10, memoryLimit: 1 << 20}.apply() // neither set: the environment's stand
	if p := debug.SetGCPercent(100); p != 100 {
		t.Errorf("GC percent %d changed though not set", p)
	}
	gcSettings{setLimit: true}.apply() // --memory-limit=0: none
	if l := debug.SetMemoryLimit(-1); l != math.MaxInt64 {
		t.Errorf("memory limit %d, want none", l)
	}
}
