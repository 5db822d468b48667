package nodeproc

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// NewMesh prepares a master-less mesh of n nodes on free ports: the same
// processes and helpers as a cluster's (Start, Kill, Logs, ...), started
// with the mesh's command line (see Args). No process starts until Start
// or StartAll.
func NewMesh(bin, dir string, n int, extra ...string) (*Cluster, error) {
	ports, err := FreePorts(2 * n)
	if err != nil {
		return nil, err
	}
	return NewMeshOnPorts(bin, dir, ports[:n], ports[n:], extra...)
}

// NewMeshOnPorts prepares a mesh on the given ports. A node keeps its
// ports across restarts, as it must: the mesh id derives from them.
func NewMeshOnPorts(bin, dir string, kvPorts, replPorts []int, extra ...string) (*Cluster, error) {
	c, err := NewClusterOnPorts(bin, dir, kvPorts, replPorts, extra...)
	if err != nil {
		return nil, err
	}
	c.mesh = true
	return c, nil
}

// IsMesh reports whether the nodes are a mesh's.
func (c *Cluster) IsMesh() bool { return c.mesh }

// meshArgs is node i's mesh command line, as the launch line
// writes it: its own ports, then the other nodes' replication ports in
// node-id order.
func (c *Cluster) meshArgs(i int) []string {
	args := []string{"--mode", "mesh", "--node-id", strconv.Itoa(i), "--kv-port", strconv.Itoa(c.KVPorts[i]),
		"--repl-port", strconv.Itoa(c.ReplPorts[i]), "--peer-repl-ports"}
	for j, p := range c.ReplPorts {
		if j != i {
			args = append(args, strconv.Itoa(p))
		}
	}
	args = append(args, "--data-dir", c.DataDir(i))
	return c.withExtra(i, args)
}

// MeshStatus is the part of a mesh node's status answer that launchers,
// tests and benchmarks look at (core.MeshStatus has it all).
type MeshStatus struct {
	Keys          int              // live keys
	ID            int              `json:"node_id"`
	Tombstones    int              `json:"tombstones"`
	Horizon       string           `json:"horizon"`
	QuorumWaiting int              `json:"quorum_waiting"`
	Peers         []MeshPeerStatus `json:"peers"`
	Removed       []int            `json:"removed"` // nodes removed for good (--removed-nodes)
}

// MeshPeerStatus is what a mesh node tells of one peer.
type MeshPeerStatus struct {
	ID           int   `json:"node_id"`
	HeardAgoMs   int64 `json:"heard_ago_ms"`
	Passes       int   `json:"passes"` // complete anti-entropy passes with it
	PassAgoMs    int64 `json:"pass_ago_ms"`
	ItemsSent    int64 `json:"items_sent"`    // by anti-entropy
	ItemsFetched int64 `json:"items_fetched"` // by anti-entropy
	Replicated   int64 `json:"replicated"`    // writes sent to it as they happened
	Unreachable  bool  `json:"unreachable"`
}

// MinPasses is the fewest complete anti-entropy passes the node has made
// with any one peer since it started.
func (st *MeshStatus) MinPasses() int {
	m := -1
	for _, p := range st.Peers {
		if m < 0 || p.Passes < m {
			m = p.Passes
		}
	}
	return max(m, 0)
}

// MeshStatus asks node i of a mesh for its status, within timeout.
func (c *Cluster) MeshStatus(i int, timeout time.Duration) (*MeshStatus, error) {
	line, err := c.statusLine(i, timeout)
	if err != nil {
		return nil, err
	}
	var resp struct {
		OK     bool `json:"ok"`
		Status *struct {
			Keys int         `json:"keys"`
			Mesh *MeshStatus `json:"mesh"`
		} `json:"status"`
	}
	if err := json.Unmarshal(line, &resp); err != nil {
		return nil, fmt.Errorf("status of node %d: %w", i, err)
	}
	if !resp.OK || resp.Status == nil || resp.Status.Mesh == nil {
		return nil, fmt.Errorf("status of node %d: not a mesh node's answer: %s", i, line)
	}
	st := resp.Status.Mesh
	st.Keys = resp.Status.Keys
	return st, nil
}

// WaitMeshPasses waits until every running node has completed, with every
// peer, more anti-entropy passes than before[i] (a status from earlier,
// nil for none), and returns their statuses: after it, whatever a node
// held when the wait began has been offered to every running peer. Nodes
// that are down are skipped, and so are their peers' passes with them.
func (c *Cluster) WaitMeshPasses(before []*MeshStatus, timeout time.Duration) ([]*MeshStatus, error) {
	deadline := time.Now().Add(timeout)
	for {
		sts := make([]*MeshStatus, c.Size())
		done := true
		var last error
		for i := range sts {
			if c.Node(i) == nil {
				continue
			}
			st, err := c.MeshStatus(i, time.Second)
			if err != nil {
				done, last = false, err
				continue
			}
			sts[i] = st
			for _, p := range st.Peers {
				if c.Node(p.ID) == nil {
					continue
				}
				passes := 0
				if i < len(before) && before[i] != nil {
					for _, q := range before[i].Peers {
						if q.ID == p.ID {
							passes = q.Passes
						}
					}
				}
				if p.Passes <= passes {
					done = false
					last = fmt.Errorf("node %d has made %d passes with node %d, waiting for more than %d", i, p.Passes, p.ID, passes)
				}
			}
		}
		if done {
			return sts, nil
		}
		if time.Now().After(deadline) {
			return sts, fmt.Errorf("anti-entropy passes not done after %v: %v", timeout, last)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
