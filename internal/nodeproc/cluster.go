package nodeproc

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
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

// Cluster is the processes of one dkv cluster on loopback: node i serves
// clients on KVPorts[i], talks to its peers on ReplPorts[i] and keeps its
// data in DataDir(i). A node keeps its ports across restarts, as it must:
// the cluster id derives from them.
type Cluster struct {
	Bin       string
	Dir       string   // the nodes' data directories are under it
	KVPorts   []int    // client ports, by node id
	ReplPorts []int    // replication ports, by node id
	Extra     []string // more cmd/node flags, for every node
	// NodeExtra[i], if set, is more cmd/node flags for node i alone (after
	// Extra): what differs between nodes, such as a metrics address.
	NodeExtra [][]string
	// LogDir, if set, gets each node's log appended to node<i>.log, across
	// restarts.
	LogDir string
	// Password, if set, is the nodes' --auth-file password, which Status
	// sends before it asks (the caller passes --auth-file in Extra).
	Password string
	// TLS, if set, is how Status reaches nodes whose client port speaks
	// TLS (the caller passes --tls-cert and --tls-key in Extra).
	TLS *tls.Config
	// mesh: the nodes are a master-less mesh's (NewMesh), not a cluster's.
	mesh bool

	mu    sync.Mutex
	procs []*Process // the running process of each node, or nil
}

// NewCluster prepares a cluster of n nodes on free ports (FreePorts); no
// process starts until Start or StartAll.
func NewCluster(bin, dir string, n int, extra ...string) (*Cluster, error) {
	ports, err := FreePorts(2 * n)
	if err != nil {
		return nil, err
	}
	return NewClusterOnPorts(bin, dir, ports[:n], ports[n:], extra...)
}

// NewClusterOnPorts prepares a cluster on the given ports.
func NewClusterOnPorts(bin, dir string, kvPorts, replPorts []int, extra ...string) (*Cluster, error) {
	if len(kvPorts) != len(replPorts) || len(kvPorts) == 0 {
		return nil, fmt.Errorf("nodeproc: %d client ports and %d replication ports", len(kvPorts), len(replPorts))
	}
	return &Cluster{Bin: bin, Dir: dir, KVPorts: kvPorts, ReplPorts: replPorts, Extra: extra,
		procs: make([]*Process, len(kvPorts))}, nil
}

// Size is the number of nodes.
func (c *Cluster) Size() int { return len(c.KVPorts) }

// Addr is node i's client address.
func (c *Cluster) Addr(i int) string { return fmt.Sprintf("127.0.0.1:%d", c.KVPorts[i]) }

// Addrs is every node's client address, by node id.
func (c *Cluster) Addrs() []string {
	out := make([]string, c.Size())
	for i := range out {
		out[i] = c.Addr(i)
	}
	return out
}

// DataDir is node i's data directory.
func (c *Cluster) DataDir(i int) string { return filepath.Join(c.Dir, fmt.Sprintf("node%d", i)) }

// LogPath is node i's log file under LogDir.
func (c *Cluster) LogPath(i int) string { return filepath.Join(c.LogDir, fmt.Sprintf("node%d.log", i)) }

// Args is node i's command line after the binary, as the seed's launcher
// writes it: its own ports, then the other nodes' in node-id order.
func (c *Cluster) Args(i int) []string {
	if c.mesh {
		return c.meshArgs(i)
	}
	others := func(ports []int) []string {
		var out []string
		for j, p := range ports {
			if j != i {
				out = append(out, strconv.Itoa(p))
			}
		}
		return out
	}
	args := []string{"--node-id", strconv.Itoa(i), "--kv-port", strconv.Itoa(c.KVPorts[i]),
		"--repl-port", strconv.Itoa(c.ReplPorts[i]), "--secondary-repl-ports"}
	args = append(args, others(c.ReplPorts)...)
	args = append(args, "--data-dir", c.DataDir(i), "--other-kv-ports")
	args = append(args, others(c.KVPorts)...)
	return c.withExtra(i, args)
}

// withExtra appends Extra and node i's NodeExtra to args.
func (c *Cluster) withExtra(i int, args []string) []string {
	args = append(args, c.Extra...)
	if i < len(c.NodeExtra) {
		args = append(args, c.NodeExtra[i]...)
	}
	return args
}

// Launch starts node i without waiting for it to serve. It fails if node i
// is running.
func (c *Cluster) Launch(i int) (*Process, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.procs[i]; p != nil && !p.Exited() {
		return nil, fmt.Errorf("nodeproc: node %d is running (pid %d)", i, p.Pid())
	}
	cmd := exec.Command(c.Bin, c.Args(i)...)
	// Its own process group: a Ctrl-C in the terminal reaches the
	// launcher only, which then stops the nodes itself, once.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var logFile *os.File
	var tee io.Writer
	if c.LogDir != "" {
		f, err := os.OpenFile(c.LogPath(i), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		logFile, tee = f, f
	}
	p, err := launch(cmd, c.DataDir(i), c.KVPorts[i], tee)
	if err != nil {
		if logFile != nil {
			logFile.Close()
		}
		return nil, err
	}
	if logFile != nil {
		// Exit returns once the last line is written.
		go func() { p.Exit(); logFile.Close() }()
	}
	c.procs[i] = p
	return p, nil
}

// Start starts node i and waits until it serves (it has recovered and
// listens; it need not know a leader yet).
func (c *Cluster) Start(i int) (*Process, error) {
	p, err := c.Launch(i)
	if err != nil {
		return nil, err
	}
	if err := p.WaitReady(readyTimeout); err != nil {
		p.Kill()
		return nil, fmt.Errorf("node %d: %w", i, err)
	}
	return p, nil
}

// StartAll starts every node that is not running, all at once, and waits
// until each serves; on a failure it kills the ones it started.
func (c *Cluster) StartAll() error {
	var started []int
	procs := map[int]*Process{}
	for i := range c.Size() {
		if c.Node(i) != nil {
			continue
		}
		p, err := c.Launch(i)
		if err != nil {
			for _, j := range started {
				c.Kill(j)
			}
			return err
		}
		started = append(started, i)
		procs[i] = p
	}
	for _, i := range started {
		// The process Launch gave, not c.Node(i): that is nil once the
		// process has exited (its port taken, say), which panicked here.
		if err := procs[i].WaitReady(readyTimeout); err != nil {
			for _, j := range started {
				c.Kill(j)
			}
			return fmt.Errorf("node %d: %w", i, err)
		}
	}
	return nil
}

// Node is node i's running process, or nil.
func (c *Cluster) Node(i int) *Process {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.procs[i]; p != nil && !p.Exited() {
		return p
	}
	return nil
}

// Process is node i's last process, running or not, or nil if it never
// started: its Stderr outlives it.
func (c *Cluster) Process(i int) *Process {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.procs[i]
}

// Kill SIGKILLs node i, if it runs, and waits for it to be gone.
func (c *Cluster) Kill(i int) {
	if p := c.Node(i); p != nil {
		p.Kill()
	}
}

// Stop sends node i SIGTERM and waits up to timeout for it to exit.
func (c *Cluster) Stop(i int, timeout time.Duration) error {
	if p := c.Node(i); p != nil {
		return p.Stop(timeout)
	}
	return nil
}

// KillAll SIGKILLs every node.
func (c *Cluster) KillAll() {
	for i := range c.Size() {
		c.Kill(i)
	}
}

// StopAll sends every node SIGTERM at once and waits for them; a node that
// has not exited within timeout is killed.
func (c *Cluster) StopAll(timeout time.Duration) error {
	var wg sync.WaitGroup
	errs := make([]error, c.Size())
	for i := range c.Size() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Stop(i, timeout); err != nil {
				errs[i] = fmt.Errorf("node %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Logs is every node's stderr so far (of its last process), for a failing
// test to print.
func (c *Cluster) Logs() string {
	var b strings.Builder
	for i := range c.Size() {
		fmt.Fprintf(&b, "---- node %d ----\n", i)
		if p := c.Process(i); p != nil {
			b.WriteString(p.Stderr())
		}
	}
	return b.String()
}

// NodeStatus is the part of a cluster node's status answer that launchers
// and tests look at (core.ClusterStatus has it all; this package speaks the
// protocol with the standard library only).
type NodeStatus struct {
	Keys int
	// SnapshotIndex is the index the node's newest snapshot covers.
	SnapshotIndex uint64
	ID            int    `json:"node_id"`
	Role          string `json:"role"`
	Term          uint64 `json:"term"`
	Leader        int    `json:"leader_id"` // -1: none known
	Commit        uint64 `json:"commit"`
	Applied       uint64 `json:"applied"`
	// Rejoining: started on an empty directory, it does not vote yet
	// (until it has heard every peer, and caught up unless the cluster is
	// new).
	Rejoining bool `json:"rejoining"`
}

// statusLine asks node i for its status, within timeout, and returns the
// answer's line for the caller to read the shape it expects.
func (c *Cluster) statusLine(i int, timeout time.Duration) ([]byte, error) {
	var nc net.Conn
	var err error
	if c.TLS != nil {
		nc, err = tls.DialWithDialer(&net.Dialer{Timeout: timeout}, "tcp", c.Addr(i), c.TLS)
	} else {
		nc, err = net.DialTimeout("tcp", c.Addr(i), timeout)
	}
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(timeout))
	req := []byte(`{"op":"status"}` + "\n")
	if c.Password != "" {
		auth, err := json.Marshal(map[string]string{"op": "auth", "password": c.Password})
		if err != nil {
			return nil, err
		}
		req = append(append(auth, '\n'), req...)
	}
	if _, err := nc.Write(req); err != nil {
		return nil, err
	}
	br := bufio.NewReader(nc)
	if c.Password != "" {
		line, err := br.ReadBytes('\n')
		if err != nil {
			return nil, err
		}
		var resp struct {
			OK bool `json:"ok"`
		}
		if err := json.Unmarshal(line, &resp); err != nil || !resp.OK {
			return nil, fmt.Errorf("node %d refused the password: %s", i, bytes.TrimSpace(line))
		}
	}
	return br.ReadBytes('\n')
}

// Status asks node i for its status, within timeout.
func (c *Cluster) Status(i int, timeout time.Duration) (*NodeStatus, error) {
	line, err := c.statusLine(i, timeout)
	if err != nil {
		return nil, err
	}
	var resp struct {
		OK     bool `json:"ok"`
		Status *struct {
			Keys          int         `json:"keys"`
			SnapshotIndex uint64      `json:"snapshot_index"`
			Cluster       *NodeStatus `json:"cluster"`
		} `json:"status"`
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(line, &resp); err != nil {
		return nil, fmt.Errorf("status of node %d: %w", i, err)
	}
	if !resp.OK || resp.Status == nil || resp.Status.Cluster == nil {
		return nil, fmt.Errorf("status of node %d: not a cluster node's answer: %s", i, line)
	}
	st := resp.Status.Cluster
	st.Keys, st.SnapshotIndex = resp.Status.Keys, resp.Status.SnapshotIndex
	return st, nil
}

// Statuses asks every running node for its status; a node that is down or
// does not answer has nil.
func (c *Cluster) Statuses(timeout time.Duration) []*NodeStatus {
	out := make([]*NodeStatus, c.Size())
	var wg sync.WaitGroup
	for i := range out {
		if c.Node(i) == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], _ = c.Status(i, timeout)
		}()
	}
	wg.Wait()
	return out
}

// describe is the status in words, for an error: "follower in term 3,
// following node 1", "no answer".
func (st *NodeStatus) describe() string {
	if st == nil {
		return "no answer"
	}
	d := fmt.Sprintf("%s in term %d", st.Role, st.Term)
	switch {
	case st.Rejoining:
		d += ", rejoining (no vote yet)"
	case st.Leader >= 0 && st.Leader != st.ID:
		d += fmt.Sprintf(", following node %d", st.Leader)
	case st.Leader < 0:
		d += ", knows no leader"
	}
	return d
}

// Leader returns the node that leads, judged from the answers of the
// running nodes: one that says it leads, in a term no answering node has
// gone past, and that a majority of the cluster (itself included) follows.
// It returns -1 when there is no such node.
func Leader(sts []*NodeStatus) (int, *NodeStatus) {
	var maxTerm uint64
	for _, st := range sts {
		if st != nil {
			maxTerm = max(maxTerm, st.Term)
		}
	}
	for i, st := range sts {
		if st == nil || st.Role != "leader" || st.Term != maxTerm {
			continue
		}
		votes := 0
		for _, o := range sts {
			if o != nil && o.Term == st.Term && o.Leader == i {
				votes++
			}
		}
		if 2*votes > len(sts) {
			return i, st
		}
	}
	return -1, nil
}

// WaitLeader polls the running nodes until one leads (see Leader) and
// returns it, or fails after timeout.
func (c *Cluster) WaitLeader(timeout time.Duration) (int, *NodeStatus, error) {
	deadline := time.Now().Add(timeout)
	for {
		sts := c.Statuses(time.Second)
		if i, st := Leader(sts); i >= 0 {
			return i, st, nil
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			for i, st := range sts {
				fmt.Fprintf(&b, "; node %d: %s", i, st.describe())
			}
			return -1, nil, fmt.Errorf("no leader after %v%s", timeout, b.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// FreePorts returns n distinct loopback TCP ports that were free a moment
// ago, below the kernel's range of ephemeral ports: a port in that range
// can be taken by any outgoing connection (a peer redialling, a client)
// while its node is down, and then the node cannot bind it again on
// restart. Ports are drawn at random, so that concurrent test processes
// rarely try the same ones, and each is checked by binding it.
func FreePorts(n int) ([]int, error) {
	low := ephemeralLow()
	const floor = 10000
	if low-floor < 1000 {
		return nil, fmt.Errorf("nodeproc: the ephemeral port range starts at %d, leaving too few ports below it", low)
	}
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for tries := 0; len(ports) < n; tries++ {
		if tries > 100*n {
			return nil, fmt.Errorf("nodeproc: no %d free ports in %d..%d", n, floor, low-1)
		}
		port := floor + rand.IntN(low-floor)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue // in use (or held by us already)
		}
		held = append(held, l)
		ports = append(ports, port)
	}
	return ports, nil
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux),
// or the IANA default elsewhere.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if low, err := strconv.Atoi(f[0]); err == nil && low > 0 {
				return low
			}
		}
	}
	return 49152
}

// WritePasswordFile writes secret as an --auth-file under dir, private to
// this user, and returns its path.
func WritePasswordFile(dir, secret string) (string, error) {
	path := filepath.Join(dir, "dkv.pass")
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return "", err
	}
	return path, nil
}
