package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicksPerSecond is USER_HZ, the unit of utime and stime in
// /proc/PID/stat: 100 on every Linux this runs on.
const clockTicksPerSecond = 100

// processCPU is the CPU time, user and system, that process pid has used
// so far, read from /proc/PID/stat. Server CPU per operation bends least
// under a shared machine's noise, so the benchmarks report it beside the
// throughput ratios.
func processCPU(pid int) (time.Duration, error) { return statCPU(pid, false) }

// processTreeCPU is processCPU plus the CPU of the children pid has waited
// for (cutime, cstime): Redis's AOF rewrites run in forked children, whose
// time counts once they end. dkv has no children.
func processTreeCPU(pid int) (time.Duration, error) { return statCPU(pid, true) }

func statCPU(pid int, children bool) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces;
	// the fields after its closing parenthesis start at field 3, state.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(s[i+1:])
	// utime, stime, cutime, cstime are fields 14..17 in proc(5), counted
	// here from field 3.
	const utime = 14 - 3
	n := 2
	if children {
		n = 4
	}
	if len(f) < utime+n {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	var ticks int64
	for k := utime; k < utime+n; k++ {
		v, err := strconv.ParseInt(f[k], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: field %d: %w", pid, k+3, err)
		}
		ticks += v
	}
	return time.Duration(ticks) * time.Second / clockTicksPerSecond, nil
}

// processCPUs is processCPU of each of pids; a process that is gone counts
// nothing.
func processCPUs(pids []int) []time.Duration {
	ds := make([]time.Duration, len(pids))
	for i, pid := range pids {
		if d, err := processCPU(pid); err == nil {
			ds[i] = d
		}
	}
	return ds
}
