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

// processTreeCPU is the CPU time, user and system, that process pid and
// the children it has waited for (cutime, cstime) have used so far, read
// from /proc/PID/stat: Redis's AOF rewrites run in forked children, whose
// time counts once they end; dkv has no children. Server CPU per
// operation bends least under a shared machine's noise, so the
// benchmarks report it beside the throughput ratios.
func processTreeCPU(pid int) (time.Duration, error) {
	st, err := readProcStat(pid)
	return st.treeCPU(), err
}

// procStat is what the benchmarks read of /proc/PID/stat.
type procStat struct {
	cpu      time.Duration // utime + stime
	childCPU time.Duration // cutime + cstime
	// faults are the minor page faults so far (minflt): mostly first
	// touches of fresh pages, which a growing heap takes. Each costs
	// system time: 11–16 µs a page on the virtual machine this was
	// measured on (2026-12-03), so they show in CPU per op.
	faults int64
}

// treeCPU is the process's CPU time and its waited-for children's.
func (st procStat) treeCPU() time.Duration { return st.cpu + st.childCPU }

func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	// The command name (field 2) is in parentheses and may hold spaces;
	// the fields after its closing parenthesis start at field 3, state.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(s[i+1:])
	// minflt is field 10 and utime, stime, cutime, cstime are fields
	// 14..17 in proc(5), counted here from field 3.
	const minflt, utime = 10 - 3, 14 - 3
	if len(f) < utime+4 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	var v [utime + 4]int64
	for _, k := range []int{minflt, utime, utime + 1, utime + 2, utime + 3} {
		if v[k], err = strconv.ParseInt(f[k], 10, 64); err != nil {
			return procStat{}, fmt.Errorf("/proc/%d/stat: field %d: %w", pid, k+3, err)
		}
	}
	ticks := func(t int64) time.Duration { return time.Duration(t) * time.Second / clockTicksPerSecond }
	return procStat{
		cpu:      ticks(v[utime] + v[utime+1]),
		childCPU: ticks(v[utime+2] + v[utime+3]),
		faults:   v[minflt],
	}, nil
}

// processStats is readProcStat of each of pids; a process that is gone
// counts nothing.
func processStats(pids []int) []procStat {
	sts := make([]procStat, len(pids))
	for i, pid := range pids {
		if st, err := readProcStat(pid); err == nil {
			sts[i] = st
		}
	}
	return sts
}
