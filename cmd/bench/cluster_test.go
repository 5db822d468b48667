package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"dkv/client"
	"dkv/internal/nodeproc"
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
	// The child takes SIGHUP's default action even where the tests run
	// with it ignored (under nohup, say), which a child inherits across
	// exec: GNU env resets it, where plain sleep ignored the signal, ran
	// its 30 s and exited 0.
	hup := []string{"sleep", "30"}
	if signal.Ignored(syscall.SIGHUP) {
		if exec.Command("env", "--default-signal=HUP", "true").Run() != nil {
			t.Skip("SIGHUP is ignored here and env cannot reset it (GNU coreutils' env --default-signal): no child can die of it")
		}
		hup = append([]string{"env", "--default-signal=HUP"}, hup...)
	}
	exitBy := func(sig syscall.Signal) error {
		cmd := exec.Command(hup[0], hup[1:]...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if len(hup) > 2 {
			waitHangupDefault(t, cmd.Process.Pid) // a SIGHUP before then is lost
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

// waitHangupDefault waits up to 5 s for process pid to stop ignoring
// SIGHUP (the SigIgn mask of /proc/pid/status).
func waitHangupDefault(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if mask, ok := strings.CutPrefix(line, "SigIgn:"); ok {
				if ign, err := strconv.ParseUint(strings.TrimSpace(mask), 16, 64); err == nil && ign&(1<<(syscall.SIGHUP-1)) == 0 {
					return
				}
			}
		}
	}
	t.Fatalf("process %d still ignores SIGHUP", pid)
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

// Two systems on one server take their turns: the server is woken for
// each one's warmup and slices, every call succeeds, and after each slice
// the between hook runs once, with the server stopped and no call made
// meanwhile. (Stopped by the first system's warmup and not woken for the
// second's, the server left that warmup's calls to time out.)
func TestAlternateSharesAServerAndRunsBetweenSlices(t *testing.T) {
	cfg := shortRun(t, 2)
	cfg.slices = 3
	p, err := nodeproc.Start(cfg.nodeBin, filepath.Join(cfg.dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	var calls, failed atomic.Int64
	var firstErr atomic.Value
	systems := []*system{
		{name: "a", pids: []int{p.Pid()}, cpus: make([]time.Duration, 1), pause: true},
		{name: "b", pids: []int{p.Pid()}, cpus: make([]time.Duration, 1), pause: true, space: 10},
	}
	for _, s := range systems {
		for range cfg.clients {
			c, err := client.Dial(p.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			s.sets = append(s.sets, func(ctx context.Context, key, value string) error {
				calls.Add(1)
				err := c.Set(ctx, key, value)
				if err != nil && failed.Add(1) == 1 {
					firstErr.Store(err)
				}
				return err
			})
		}
	}
	var order []string
	cfg.between = func(s *system) error {
		order = append(order, s.name)
		before := calls.Load()
		waitState(t, p.Pid(), 'T')
		if got := calls.Load(); got != before {
			t.Errorf("after a slice of %s: %d calls made while the hook ran", s.name, got-before)
		}
		return nil
	}
	if err := alternate(systems, cfg); err != nil {
		t.Fatal(err)
	}
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d calls failed, the first: %v", n, firstErr.Load())
	}
	if got, want := strings.Join(order, ","), "a,b,b,a,a,b"; got != want {
		t.Errorf("between ran after the slices of %s, want %s", got, want)
	}
	for _, s := range systems {
		if s.res.ops == 0 || len(s.sliceRates) != cfg.slices {
			t.Errorf("%s: %d ops in %d slices, want some in %d", s.name, s.res.ops, len(s.sliceRates), cfg.slices)
		}
	}
}
