// Package disktest checks, for the packages that implement core.Disk
// (disk, on a real directory; sim, in memory), the parts of its contract
// both must keep alike, so that a test of the one does not drift from the
// other's.
package disktest
