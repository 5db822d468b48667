package clustertest

import (
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"dkv/client"
	"dkv/core"
	"dkv/internal/nodeproc"
)

// exitCode waits for p to exit by itself and returns its status.
func exitCode(t *testing.T, p *nodeproc.Process) int {
	t.Helper()
	err := p.Wait(waitMax)
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return exit.ExitCode()
	}
	t.Fatalf("%v; stderr:\n%s", err, p.Stderr())
	return -1
}

// waitLog waits until p has logged want.
func waitLog(t *testing.T, p *nodeproc.Process, want string) {
	t.Helper()
	deadline := time.Now().Add(waitMax)
	for !strings.Contains(p.Stderr(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q logged after %v; stderr:\n%s", want, waitMax, p.Stderr())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A node given other peer lists than the rest derives another cluster id:
// it starts, but the others refuse its connections and it refuses theirs,
// both saying why. The two consistent nodes, new, wait for it: a new
// cluster elects its first leader only once every node has answered, and
// a client is told which node they wait for. Started again with the right
// lists (on a new directory: its own holds the other cluster's id), it
// answers, and the cluster takes writes.
func TestInconsistentPeerListsCannotTalk(t *testing.T) {
	c, err := nodeproc.NewCluster(bin, t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.KillAll)
	for i := range 2 {
		if _, err := c.Launch(i); err != nil {
			t.Fatal(err)
		}
	}
	// Node 2 lists the replication ports of nodes 0 and 1 swapped.
	odd, err := nodeproc.NewClusterOnPorts(bin, c.Dir, c.KVPorts,
		[]int{c.ReplPorts[1], c.ReplPorts[0], c.ReplPorts[2]})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(odd.KillAll)
	p2, err := odd.Start(2)
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, p2, "wrong cluster id")
	waitLog(t, c.Process(0), "wrong cluster id")
	waitLog(t, c.Process(1), "wrong cluster id")

	direct, err := client.Dial(c.Addr(0))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	// Node 1 is heard within an election timeout or two.
	for deadline := time.Now().Add(waitMax); ; time.Sleep(50 * time.Millisecond) {
		var se *client.ServerError
		err := direct.Set(ctxT(t), "k", "v")
		if errors.As(err, &se) && se.Code == core.CodeUnavailable && strings.Contains(se.Message, "not yet heard: node [2];") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a write to node 0 while node 2 cannot be heard: %v; want unavailable naming node 2 alone", err)
		}
	}
	if st, err := odd.Status(2, 5*time.Second); err != nil || st.Leader != -1 || st.Applied != 0 {
		t.Errorf("the odd node knows a leader or applied entries: %+v, %v", st, err)
	}

	odd.Kill(2)
	if err := os.RemoveAll(c.DataDir(2)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(2); err != nil {
		t.Fatal(err)
	}
	kv := dialCluster(t, c.Addrs())
	if err := kv.Set(ctxT(t), "k", "v"); err != nil {
		t.Fatalf("the cluster, its third node right, takes no write: %v", err)
	}
}

// A cluster node refuses a single node's data directory, and another
// cluster's (a node restarted with other ports), saying why.
func TestForeignDataDirIsRefused(t *testing.T) {
	c, err := nodeproc.NewCluster(bin, t.TempDir(), 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.KillAll)

	single, err := nodeproc.Start(bin, c.DataDir(0))
	if err != nil {
		t.Fatal(err)
	}
	if err := single.Stop(waitMax); err != nil {
		t.Fatal(err)
	}
	p, err := c.Launch(0)
	if err != nil {
		t.Fatal(err)
	}
	if code := exitCode(t, p); code != 1 || !strings.Contains(p.Stderr(), "it is a single node's, not a cluster node's") {
		t.Errorf("cluster node on a single node's directory: exit %d; stderr:\n%s", code, p.Stderr())
	}

	// Node 1 of this cluster, stopped, then started with another
	// replication port for node 2: another cluster.
	if _, err := c.Start(1); err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(1, waitMax); err != nil {
		t.Fatal(err)
	}
	free, err := nodeproc.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	moved, err := nodeproc.NewClusterOnPorts(bin, c.Dir, c.KVPorts, []int{c.ReplPorts[0], c.ReplPorts[1], free[0]})
	if err != nil {
		t.Fatal(err)
	}
	p, err = moved.Launch(1)
	if err != nil {
		t.Fatal(err)
	}
	code := exitCode(t, p)
	m := belongsTo.FindStringSubmatch(p.Stderr())
	if code != 1 || m == nil || !strings.Contains(p.Stderr(), "start every node with --cluster-id set to the id the data directory names") {
		t.Fatalf("node on its directory with other ports: exit %d; want 1, the refusal and the hint; stderr:\n%s", code, p.Stderr())
	}
	// With the old id given, the moved node takes its directory.
	moved.Extra = []string{"--cluster-id", m[1]}
	if _, err := moved.Start(1); err != nil {
		t.Fatal(err)
	}
	moved.Kill(1)
	// With its old ports it starts again, of course.
	if _, err := c.Start(1); err != nil {
		t.Fatal(err)
	}
}

var belongsTo = regexp.MustCompile(`the data directory belongs to node 1 of cluster ([0-9a-f]{16})`)
