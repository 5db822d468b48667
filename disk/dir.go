package disk

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"dkv/core"
)

// lockName is the file that holds the directory's flock. List hides it: it is
// the host's business, not part of the node's data.
const lockName = "LOCK"

// dirMode and fileMode are what a new data directory and the files in it are
// created with (before the umask): private to the server's user, since the
// files hold every key and value in the clear. A directory that exists keeps
// its permissions: the operator chose them.
const (
	dirMode  os.FileMode = 0o700
	fileMode os.FileMode = 0o600
)

// ErrLocked means another process holds the data directory.
var ErrLocked = errors.New("data directory is locked")

// lockedError names the directory and, when it could be read, the pid of the
// process holding it, so the operator knows what to stop.
type lockedError struct {
	dir string
	pid string // empty when the holder had not written it yet
}

func (e *lockedError) Error() string {
	if e.pid == "" {
		return fmt.Sprintf("data directory %q is in use by another dkv process", e.dir)
	}
	return fmt.Sprintf("data directory %q is in use by another dkv process (pid %s)", e.dir, e.pid)
}

func (e *lockedError) Unwrap() error { return ErrLocked }

// Options change how a Dir treats durability.
type Options struct {
	// UnsafeNoFsync turns File.Sync and SyncDir into no-ops. Acknowledged
	// writes can then be lost on a crash or power cut. It exists only to
	// measure how much of a benchmark is fsync.
	UnsafeNoFsync bool
}

// Dir is a locked data directory. It implements core.Disk.
//
// A Dir is used from the host's loop goroutine only, except Close, which the
// host calls after the loop has stopped; it needs no locking of its own.
type Dir struct {
	path   string
	opts   Options
	lock   *os.File // holds the flock for as long as it is open
	handle *os.File // the directory itself, kept open for SyncDir
}

var _ core.Disk = (*Dir)(nil)

// Open creates dir if needed, checks that it is writable and takes its lock.
// Close releases the lock.
func Open(dir string, opts Options) (*Dir, error) {
	if err := createDir(dir, !opts.UnsafeNoFsync); err != nil {
		return nil, fmt.Errorf("cannot create data directory %s: %w", dir, err)
	}
	// access(2) rather than a probe file, so a crash here leaves no litter
	// for List to report; the LOCK create below is the real test anyway.
	if err := syscall.Access(dir, 2 /* W_OK */); err != nil {
		return nil, notWritable(dir, err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, fileMode)
	if err != nil {
		if errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS) {
			return nil, notWritable(dir, err)
		}
		return nil, fmt.Errorf("cannot open lock file in data directory %s: %w", dir, err)
	}
	if err := flock(lock); err != nil {
		pid := readPID(lock)
		lock.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &lockedError{dir: dir, pid: pid}
		}
		return nil, fmt.Errorf("cannot lock data directory %s: %w", dir, err)
	}
	handle, err := os.Open(dir)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("cannot open data directory %s: %w", dir, err)
	}
	// The directory itself is locked too: LOCK can be removed under a
	// running server (taken for a stale one after a second server was
	// refused), and a second server would then make a new one, lock it
	// and append to the same log (found by review). The directory cannot
	// be removed while it holds the data. LOCK's lock stays for the pid
	// it names and for builds before this one. A file system that cannot
	// lock a directory (some network ones refuse a read-only descriptor)
	// leaves LOCK's alone.
	if err := flock(handle); errors.Is(err, syscall.EWOULDBLOCK) {
		handle.Close()
		lock.Close()
		return nil, &lockedError{dir: dir}
	}
	// The pid is only for the error message of a second process; it does not
	// need to be durable, and a stale one from a crashed run is overwritten.
	// A full disk may have no block for it: the server starts all the same
	// (it serves reads and deletes on a full disk), and a second process is
	// refused without the pid.
	if err := writePID(lock); err != nil && !isNoSpace(err) {
		handle.Close()
		lock.Close()
		return nil, fmt.Errorf("cannot write lock file in data directory %s: %w", dir, err)
	}
	return &Dir{path: dir, opts: opts, lock: lock, handle: handle}, nil
}

// createDir makes dir and any parents it lacks, and with sync fsyncs the
// parent of each directory it made. SyncDir makes durable the names inside
// the data directory, not the directory's own name in its parent: without
// this, the first writes acknowledged on a new data directory could vanish
// with the directory at a power cut (found by review).
func createDir(dir string, sync bool) error {
	var made []string // the directories that did not exist, deepest first
	for p := filepath.Clean(dir); ; {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			break
		}
		made = append(made, p)
		parent := filepath.Dir(p)
		if parent == p {
			break
		}
		p = parent
	}
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return err
	}
	if !sync {
		return nil
	}
	for _, p := range made {
		if err := syncPath(filepath.Dir(p)); err != nil {
			return err
		}
	}
	return nil
}

// syncPath fsyncs the directory at path.
func syncPath(path string) error {
	if testHookSyncPath != nil {
		testHookSyncPath(path)
	}
	d, err := os.Open(path)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync directory %s: %w", path, err)
	}
	return nil
}

// testHookSyncPath, when set by a test, is told of each directory syncPath
// fsyncs.
var testHookSyncPath func(path string)

func notWritable(dir string, err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return fmt.Errorf("data directory %s is not writable: %w", dir, errno)
	}
	return fmt.Errorf("data directory %s is not writable: %w", dir, err)
}

func flock(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err != syscall.EINTR {
			return err
		}
	}
}

func readPID(f *os.File) string {
	var buf [32]byte
	n, _ := f.ReadAt(buf[:], 0)
	pid := strings.TrimSpace(string(buf[:n]))
	if _, err := strconv.Atoi(pid); err != nil {
		return ""
	}
	return pid
}

// isNoSpace reports a full disk or quota.
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// testHookWritePID, when set by a test, replaces the pid's write.
var testHookWritePID func(*os.File) error

func writePID(f *os.File) error {
	if testHookWritePID != nil {
		return testHookWritePID(f)
	}
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return err
}

// Path is the directory as given to Open.
func (d *Dir) Path() string { return d.path }

// Close releases the lock. Files the node still has open stay usable, but
// another process may now take the directory, so the host closes the Dir
// last.
func (d *Dir) Close() error {
	if d.lock == nil {
		return nil
	}
	errHandle := d.handle.Close()
	// Closing the descriptor drops the flock; truncating the pid first
	// would race with a new holder, so it is left for the next Open to
	// overwrite.
	errLock := d.lock.Close()
	d.lock, d.handle = nil, nil
	return errors.Join(errHandle, errLock)
}

// name checks that a node asks for a plain file of the directory: a path
// separator or the lock file would let a bug escape or clobber the lock.
func (d *Dir) name(name string) (string, error) {
	if d.lock == nil {
		return "", fmt.Errorf("data directory %s is closed", d.path)
	}
	if name == "" || name == "." || name == ".." || name == lockName || strings.ContainsRune(name, '/') {
		return "", fmt.Errorf("invalid file name %q in data directory %s", name, d.path)
	}
	return filepath.Join(d.path, name), nil
}

// List returns the regular files of the directory, sorted, without LOCK.
func (d *Dir) List() ([]string, error) {
	if d.lock == nil {
		return nil, fmt.Errorf("data directory %s is closed", d.path)
	}
	entries, err := os.ReadDir(d.path)
	if err != nil {
		return nil, fmt.Errorf("list data directory %s: %w", d.path, err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if e.IsDir() || e.Name() == lockName {
			continue
		}
		names = append(names, e.Name())
	}
	// os.ReadDir sorts already; sorting again keeps the contract true even
	// if that ever changes.
	sort.Strings(names)
	return names, nil
}

// ReadFile returns the whole content of a file. A missing file is an error
// for which errors.Is(err, fs.ErrNotExist) holds.
func (d *Dir) ReadFile(name string) ([]byte, error) {
	path, err := d.name(name)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return b, nil
}

// Create makes a new empty file, truncating any existing one. The new name is
// durable only after SyncDir.
func (d *Dir) Create(name string) (core.File, error) {
	return d.open(name, os.O_CREATE|os.O_TRUNC)
}

// OpenAppend opens an existing file for appending at its end.
func (d *Dir) OpenAppend(name string) (core.File, error) {
	return d.open(name, 0)
}

func (d *Dir) open(name string, flag int) (core.File, error) {
	path, err := d.name(name)
	if err != nil {
		return nil, err
	}
	// Writes land at the File's own idea of its end (pwrite), not with
	// O_APPEND: the file may hold reserved zeros past that end.
	f, err := os.OpenFile(path, os.O_WRONLY|flag, fileMode)
	if err != nil {
		return nil, fileError("open", name, err)
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fileError("stat", name, err)
	}
	if !info.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("open %s: not a regular file", name)
	}
	return &File{f: f, name: name, size: info.Size(), disk: info.Size(), noSync: d.opts.UnsafeNoFsync}, nil
}

// Rename replaces to with from. It is durable only after SyncDir.
func (d *Dir) Rename(from, to string) error {
	fromPath, err := d.name(from)
	if err != nil {
		return err
	}
	toPath, err := d.name(to)
	if err != nil {
		return err
	}
	if err := os.Rename(fromPath, toPath); err != nil {
		return fmt.Errorf("rename %s to %s: %w", from, to, err)
	}
	return nil
}

// Remove deletes a file. It is durable only after SyncDir.
func (d *Dir) Remove(name string) error {
	path, err := d.name(name)
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	return nil
}

// SyncDir fsyncs the directory, making creates, renames and removes durable.
func (d *Dir) SyncDir() error {
	if d.lock == nil {
		return fmt.Errorf("data directory %s is closed", d.path)
	}
	if d.opts.UnsafeNoFsync {
		return nil
	}
	if err := d.handle.Sync(); err != nil {
		return fileError("fsync directory", d.path, err)
	}
	return nil
}
