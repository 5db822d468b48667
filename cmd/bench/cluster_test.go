package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The cluster benchmark runs end to end and reports every figure; the
// figures themselves are for people, not for a timed test.
func TestClusterBenchReportsEveryFigure(t *testing.T) {
	var out bytes.Buffer
	res, err := clusterBench(shortRun(t, 4), &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if res.single.ops == 0 || res.cluster.ops == 0 {
		t.Errorf("no ops measured: single %d, cluster %d\n%s", res.single.ops, res.cluster.ops, out.String())
	}
	for _, want := range []string{"single node", "3-node cluster", "throughput: cluster / single", "p99:        cluster / single"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

// A signal that ends the bench first wakes the servers it stopped, so that
// none is left behind stopped.
func TestResumeOnSignalWakesPausedServers(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	sys := &system{name: "sleeper", pids: []int{cmd.Process.Pid}, pause: true}
	if err := sys.signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitState(t, cmd.Process.Pid, 'T')
	sigs := make(chan os.Signal, 1)
	raised := make(chan os.Signal, 1)
	sigs <- os.Interrupt
	resumeOnSignal([]*system{sys}, sigs, make(chan struct{}), func(s os.Signal) { raised <- s })
	if got := <-raised; got != os.Interrupt {
		t.Fatalf("raised %v, want interrupt", got)
	}
	waitState(t, cmd.Process.Pid, 'S')
}

// A server killed by a hangup gets the explanation; one killed otherwise,
// or still running, does not.
func TestHangupHint(t *testing.T) {
	exitBy := func(sig syscall.Signal) error {
		cmd := exec.Command("sleep", "30")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmd.Process.Signal(sig)
		return cmd.Wait()
	}
	if got := hangupHint(exitBy(syscall.SIGHUP)); !strings.Contains(got, "orphaned their process group") {
		t.Errorf("SIGHUP: hint %q", got)
	}
	if got := hangupHint(exitBy(syscall.SIGKILL)); got != "" {
		t.Errorf("SIGKILL: hint %q, want none", got)
	}
	if got := hangupHint(nil); got != "" {
		t.Errorf("no exit error: hint %q, want none", got)
	}
}

// waitState waits up to 5 s for process pid's state (/proc/pid/stat) to
// be want: 'T' stopped, 'S' sleeping.
func waitState(t *testing.T, pid int, want byte) {
	t.Helper()
	var state byte
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Fatal(err)
		}
		// pid (comm) state ...: the state follows the last ')'.
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) {
			if state = b[i+2]; state == want {
				return
			}
		}
	}
	t.Fatalf("process %d in state %q, want %q", pid, state, want)
}

// sliceRatios divides slice by slice, skips a slice with no rate, and
// gives the median and range of what is left.
func TestSliceRatios(t *testing.T) {
	for _, c := range []struct {
		a, b []float64
		want string
	}{
		{[]float64{5, 9, 6, 1}, []float64{10, 10, 0, 4}, "0.50 0.90 0.25 (median 0.50, 0.25–0.90)"},
		{[]float64{1}, nil, "none"},
		{[]float64{3, 3}, []float64{2}, "1.50 (median 1.50, 1.50–1.50)"},
	} {
		if got := sliceRatios(c.a, c.b); got != c.want {
			t.Errorf("sliceRatios(%v, %v) = %q, want %q", c.a, c.b, got, c.want)
		}
	}
}
