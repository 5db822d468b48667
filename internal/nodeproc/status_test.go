package nodeproc

import "testing"

// A cluster that elects no leader is reported node by node in words, not
// as Go structs (found by review: "&{Keys:0 SnapshotIndex:0 ...}").
func TestNodeStatusDescribe(t *testing.T) {
	for _, tc := range []struct {
		st   *NodeStatus
		want string
	}{
		{nil, "no answer"},
		{&NodeStatus{ID: 0, Role: "follower", Term: 3, Leader: 1}, "follower in term 3, following node 1"},
		{&NodeStatus{ID: 2, Role: "candidate", Term: 4, Leader: -1}, "candidate in term 4, knows no leader"},
		{&NodeStatus{ID: 1, Role: "leader", Term: 4, Leader: 1}, "leader in term 4"},
		{&NodeStatus{ID: 1, Role: "follower", Term: 0, Leader: -1, Rejoining: true}, "follower in term 0, rejoining (no vote yet)"},
	} {
		if got := tc.st.describe(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.st, got, tc.want)
		}
	}
}
