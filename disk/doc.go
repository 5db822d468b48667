// Package disk implements core.Disk on a real directory of the host's file
// system: the production counterpart of the simulator's faulty disk.
//
// The node sees a flat directory of append-only files and makes its own
// durability decisions; this package only has to make them true. File.Sync is
// fdatasync on Linux (F_FULLFSYNC on macOS, fsync elsewhere: Datasync),
// SyncDir fsyncs the directory so that creates, renames and removes
// survive a crash, and Append reports a full disk as core.ErrDiskFull so the
// node can refuse the write instead of failing it as an I/O error. Open takes
// an exclusive flock on a LOCK file, and on the directory itself (which,
// unlike the file, cannot be removed under the holder), because two
// processes appending to the same write-ahead log would corrupt it; the
// kernel drops the locks when the holder dies, so a crash never leaves a
// stale lock behind.
package disk
