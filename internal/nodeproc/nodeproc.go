// Package nodeproc builds the dkv server binary and runs it as a real
// process, for the tests and benchmarks that kill real servers.
package nodeproc

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// readyTimeout bounds how long a server may take to recover and listen.
const readyTimeout = 60 * time.Second

// Build compiles ./cmd/node into dir and returns the binary's path.
func Build(dir string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "dkv-node")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/node")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/node: %v\n%s", err, out)
	}
	return bin, nil
}

// WithBuild builds cmd/node into a new temporary directory named after
// pattern (as os.MkdirTemp takes it), calls run with the binary, removes
// the directory and returns run's exit code; if the build fails it prints
// why on standard error and returns 1. A test package of cmd/node
// processes builds the binary once this way in its TestMain:
//
//	os.Exit(nodeproc.WithBuild("dkv-xtest-", func(b string) int { bin = b; return m.Run() }))
func WithBuild(pattern string, run func(bin string) int) int {
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin, err := Build(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return run(bin)
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the dkv module")
	}
	return filepath.Dir(mod), nil
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Process is one running server.
type Process struct {
	Addr    string
	DataDir string
	Port    int
	cmd     *exec.Cmd
	stderr  *lockedBuffer
	exited  chan struct{}
	waitErr error
}

// Start runs bin on a free port with dataDir and extra flags, and returns
// once the server says it is serving. Started is the time the process was
// started, for measuring recovery.
func Start(bin, dataDir string, extra ...string) (*Process, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	return StartOnPort(bin, dataDir, port, extra...)
}

// StartOnPort is Start on a given port.
func StartOnPort(bin, dataDir string, port int, extra ...string) (*Process, error) {
	p, err := Launch(bin, dataDir, port, extra...)
	if err != nil {
		return nil, err
	}
	if err := p.WaitReady(readyTimeout); err != nil {
		p.Kill()
		return nil, err
	}
	return p, nil
}

// Launch starts the process without waiting for it to be ready.
func Launch(bin, dataDir string, port int, extra ...string) (*Process, error) {
	args := append([]string{"--port", strconv.Itoa(port), "--data-dir", dataDir}, extra...)
	return launch(exec.Command(bin, args...), dataDir, port, nil)
}

// launch starts cmd, a server whose client port is port on loopback. What
// it logs is kept, and also written to tee if that is not nil.
func launch(cmd *exec.Cmd, dataDir string, port int, tee io.Writer) (*Process, error) {
	bin := cmd.Path
	p := &Process{Addr: fmt.Sprintf("127.0.0.1:%d", port), DataDir: dataDir, Port: port, cmd: cmd,
		stderr: &lockedBuffer{}, exited: make(chan struct{})}
	pipe, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	go func() {
		sc := bufio.NewScanner(pipe)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.stderr.writeLine(sc.Text())
			if tee != nil {
				fmt.Fprintln(tee, sc.Text())
			}
		}
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// WaitReady waits for the "serving" line, or the process's exit.
func (p *Process) WaitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if p.stderr.contains("serving") {
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("server exited before serving (%v); stderr:\n%s", p.waitErr, p.Stderr())
		case <-time.After(2 * time.Millisecond):
		}
	}
	return fmt.Errorf("server not serving after %v; stderr:\n%s", timeout, p.Stderr())
}

// Kill sends SIGKILL and waits for the process to be gone.
func (p *Process) Kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// Stop sends SIGTERM and waits up to timeout for a graceful exit; it
// returns the exit error (nil for status 0).
func (p *Process) Stop(timeout time.Duration) error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return p.waitErr
	case <-time.After(timeout):
		p.Kill()
		return fmt.Errorf("server did not exit within %v of SIGTERM", timeout)
	}
}

// Wait waits for the process to exit by itself and returns its exit error.
func (p *Process) Wait(timeout time.Duration) error {
	select {
	case <-p.exited:
		return p.waitErr
	case <-time.After(timeout):
		return fmt.Errorf("server still running after %v", timeout)
	}
}

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// Stderr is everything the server has logged so far.
func (p *Process) Stderr() string { return p.stderr.String() }

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// WaitStopped waits until the process is stopped (after SIGSTOP), for at
// most timeout: the signal takes effect when each of its threads next
// enters the kernel, and a request sent meanwhile may still be answered
// (a test of calls to a stopped server once got 20 answers). Where /proc
// does not say, it waits 100 ms.
func (p *Process) WaitStopped(timeout time.Duration) error {
	path := fmt.Sprintf("/proc/%d/stat", p.Pid())
	deadline := time.Now().Add(timeout)
	for {
		b, err := os.ReadFile(path)
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			return nil
		}
		// The state follows the command's name in parentheses, which may
		// itself hold any byte: look after the last ')'.
		if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) && (b[i+2] == 'T' || b[i+2] == 't') {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("process %d not stopped after %v", p.Pid(), timeout)
		}
		time.Sleep(time.Millisecond)
	}
}

// Exit waits for the process to be gone and returns its exit error.
func (p *Process) Exit() error {
	<-p.exited
	return p.waitErr
}

// stderrHeadBytes and stderrBytesMax bound what is kept of a process's
// log: its first lines up to stderrHeadBytes (the start: recovery,
// "serving") and the latest ones, stderrBytesMax in all. A cmd/cluster
// left running for days, or a node without a quorum logging its elections
// a few times a second, grew the launcher's memory without end (found by
// review).
const (
	stderrHeadBytes = 64 << 10
	stderrBytesMax  = 8 << 20
)

// lockedBuffer keeps a process's log lines: head, the first, and tail, the
// latest; dropped counts the bytes of lines dropped between the two.
type lockedBuffer struct {
	mu      sync.Mutex
	head    bytes.Buffer
	tail    bytes.Buffer
	dropped int64
}

func (b *lockedBuffer) writeLine(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tail.Len() == 0 && b.dropped == 0 && b.head.Len()+len(s) < stderrHeadBytes {
		b.head.WriteString(s)
		b.head.WriteByte('\n')
		return
	}
	b.tail.WriteString(s)
	b.tail.WriteByte('\n')
	if over := b.head.Len() + b.tail.Len() - stderrBytesMax; over > 0 {
		// Drop the tail's oldest lines, half of what it may hold at a
		// time, so that a full buffer is copied once per that many bytes
		// of new lines, not once a line.
		kept := b.tail.Bytes()
		cut := max(over, (stderrBytesMax-stderrHeadBytes)/2)
		if nl := bytes.IndexByte(kept[min(cut, len(kept)-1):], '\n'); nl >= 0 {
			cut = min(cut, len(kept)-1) + nl + 1
		} else {
			cut = len(kept)
		}
		b.dropped += int64(cut)
		rest := bytes.Clone(kept[cut:])
		b.tail.Reset()
		b.tail.Write(rest)
	}
}

func (b *lockedBuffer) contains(s string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Contains(b.head.Bytes(), []byte(s)) || bytes.Contains(b.tail.Bytes(), []byte(s))
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dropped == 0 {
		return b.head.String() + b.tail.String()
	}
	return fmt.Sprintf("%s[nodeproc: %d bytes of log lines dropped here]\n%s", b.head.String(), b.dropped, b.tail.String())
}
