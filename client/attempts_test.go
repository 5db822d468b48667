package client

import "testing"

// A call that gave up after one attempt says so in the singular (found by
// review: "1 attempts failed").
func TestAttemptsFailedCountsInWords(t *testing.T) {
	for n, want := range map[int]string{1: "1 attempt failed", 2: "2 attempts failed", 5: "5 attempts failed"} {
		if got := attemptsFailed(n); got != want {
			t.Errorf("attemptsFailed(%d) = %q, want %q", n, got, want)
		}
	}
}
