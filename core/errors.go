package core

import "errors"

// ErrCorrupt marks data on disk that fails its checks in a way a torn write
// at the tail cannot explain; the node refuses to start rather than guess.
var ErrCorrupt = errors.New("corrupt data")

// ErrDiskFull marks a write that failed because the disk is full; the write
// was not persisted and not applied.
var ErrDiskFull = errors.New("disk full")
