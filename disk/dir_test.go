package disk

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"dkv/core"
)

func mustOpen(t *testing.T, dir string, opts Options) *Dir {
	t.Helper()
	d, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestOpenCreatesDirAndLockFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	d := mustOpen(t, dir, Options{})
	b, err := os.ReadFile(filepath.Join(dir, lockName))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(string(b)), strconv.Itoa(os.Getpid()); got != want {
		t.Errorf("LOCK holds %q, want our pid %s", got, want)
	}
	names, err := d.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 0 {
		t.Errorf("List of a fresh dir = %q, want empty (LOCK hidden)", names)
	}
}

// A new data directory and its files are private to the server's user: they
// hold every key and value in the clear (docs/OPERATIONS.md, Security).
func TestNewDataIsPrivate(t *testing.T) {
	defer syscall.Umask(syscall.Umask(0o022))
	parent := t.TempDir()
	dir := filepath.Join(parent, "data")
	d := mustOpen(t, dir, Options{})
	f, err := d.Create("wal-1.log")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, lockName): 0o600, filepath.Join(dir, "wal-1.log"): 0o600} {
		info, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if got := info.Mode().Perm(); got != want {
			t.Errorf("%s: mode %v, want %v", name, got, want)
		}
	}

	// A directory that exists keeps the permissions its operator gave it.
	shared := filepath.Join(parent, "shared")
	if err := os.Mkdir(shared, 0o750); err != nil {
		t.Fatal(err)
	}
	mustOpen(t, shared, Options{})
	if info, err := os.Stat(shared); err != nil || info.Mode().Perm() != 0o750 {
		t.Errorf("an existing directory's mode changed: %v, %v", info.Mode().Perm(), err)
	}
}

func TestOpenTwiceInOneProcessIsLocked(t *testing.T) {
	dir := t.TempDir()
	d := mustOpen(t, dir, Options{})
	_, err := Open(dir, Options{})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: err = %v, want ErrLocked", err)
	}
	want := fmt.Sprintf("data directory %q is in use by another dkv process (pid %d)", dir, os.Getpid())
	if err.Error() != want {
		t.Errorf("second Open: err = %q, want %q", err, want)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	// Close released the lock, and a stale pid in LOCK does not matter.
	mustOpen(t, dir, Options{})
}

// The directory stays locked when its LOCK file is removed (taken for a
// stale one): a second Open makes a new LOCK, but the directory's own lock
// refuses it, and it leaves the first holder's lock as it was.
func TestLockHoldsWithTheLockFileRemoved(t *testing.T) {
	dir := t.TempDir()
	d := mustOpen(t, dir, Options{})
	if err := os.Remove(filepath.Join(dir, lockName)); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("Open with LOCK removed under the holder: err = %v, want ErrLocked", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	mustOpen(t, dir, Options{})
}

// The helper process is this test binary run again with lockHelperEnv set:
// it opens the directory named there and reports on stdout.
const lockHelperEnv = "DKV_DISK_LOCK_HELPER_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(lockHelperEnv); dir != "" {
		os.Exit(lockHelper(dir))
	}
	os.Exit(m.Run())
}

// lockHelper exits 3 with the error on stdout when the directory is locked;
// otherwise it prints "locked", holds the lock until stdin closes and exits 0.
func lockHelper(dir string) int {
	d, err := Open(dir, Options{})
	if errors.Is(err, ErrLocked) {
		fmt.Println(err)
		return 3
	}
	if err != nil {
		fmt.Println(err)
		return 1
	}
	fmt.Println("locked")
	bufio.NewReader(os.Stdin).ReadString('\n')
	d.Close()
	return 0
}

func helperCmd(t *testing.T, dir string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), lockHelperEnv+"="+dir)
	return cmd
}

func TestLockAgainstAnotherProcess(t *testing.T) {
	dir := t.TempDir()

	// We hold it: the other process is refused and names our pid.
	d := mustOpen(t, dir, Options{})
	out, err := helperCmd(t, dir).Output()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("helper while we hold the lock: err = %v, output %q; want exit 3", err, out)
	}
	want := fmt.Sprintf("(pid %d)", os.Getpid())
	if !strings.Contains(string(out), want) || !strings.Contains(string(out), "in use by another dkv process") {
		t.Errorf("helper's error %q does not say the dir is in use by pid %d", out, os.Getpid())
	}
	d.Close()

	// It holds it: we are refused with its pid; once it dies, the kernel
	// drops the lock and we get in, with no stale-lock cleanup.
	cmd := helperCmd(t, dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "locked\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper did not take the lock: %q, %v", line, err)
	}
	_, err = Open(dir, Options{})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), fmt.Sprintf("(pid %d)", cmd.Process.Pid)) {
		t.Errorf("Open while helper %d holds the lock: err = %v", cmd.Process.Pid, err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	mustOpen(t, dir, Options{})
}

func TestOpenUnwritable(t *testing.T) {
	t.Run("parent is a regular file", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "plain")
		if err := os.WriteFile(file, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(file, "data")
		_, err := Open(dir, Options{})
		if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "not a directory") {
			t.Errorf("Open under a file: err = %v, want one naming %s and saying not a directory", err, dir)
		}
	})
	t.Run("dir is a regular file", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "plain")
		if err := os.WriteFile(file, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(file, Options{}); err == nil || !strings.Contains(err.Error(), file) {
			t.Errorf("Open of a file: err = %v, want one naming %s", err, file)
		}
	})
	t.Run("read-only dir", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root bypasses permission bits")
		}
		dir := t.TempDir()
		if err := os.Chmod(dir, 0o500); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(dir, 0o755)
		_, err := Open(dir, Options{})
		want := "data directory " + dir + " is not writable: permission denied"
		if err == nil || err.Error() != want {
			t.Errorf("Open of a read-only dir: err = %v, want %q", err, want)
		}
	})
}

func TestFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	d := mustOpen(t, dir, Options{})

	f, err := d.Create("wal-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"hello ", "world"} {
		if err := f.Append([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	if f.Size() != 11 {
		t.Errorf("Size = %d, want 11", f.Size())
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	// Appends after a Truncate land at the new end, not at the old offset.
	if err := f.Truncate(5); err != nil {
		t.Fatal(err)
	}
	if err := f.Append([]byte("!")); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.SyncDir(); err != nil {
		t.Fatal(err)
	}
	assertContent(t, d, "wal-1", "hello!")

	f, err = d.OpenAppend("wal-1")
	if err != nil {
		t.Fatal(err)
	}
	if f.Size() != 6 {
		t.Errorf("OpenAppend: Size = %d, want 6", f.Size())
	}
	if err := f.Append([]byte(" more")); err != nil {
		t.Fatal(err)
	}
	f.Close()
	assertContent(t, d, "wal-1", "hello! more")

	// Create truncates an existing file.
	f, err = d.Create("wal-1")
	if err != nil {
		t.Fatal(err)
	}
	if f.Size() != 0 {
		t.Errorf("Create of an existing file: Size = %d, want 0", f.Size())
	}
	f.Append([]byte("new"))
	f.Close()
	assertContent(t, d, "wal-1", "new")

	tmp, err := d.Create("snap.tmp")
	if err != nil {
		t.Fatal(err)
	}
	tmp.Append([]byte("snapshot"))
	tmp.Close()
	if err := os.Mkdir(filepath.Join(dir, "subdir"), 0o755); err != nil {
		t.Fatal(err)
	}
	assertList(t, d, "snap.tmp", "wal-1")

	if err := d.Rename("snap.tmp", "snap-7"); err != nil {
		t.Fatal(err)
	}
	if err := d.SyncDir(); err != nil {
		t.Fatal(err)
	}
	assertList(t, d, "snap-7", "wal-1")
	assertContent(t, d, "snap-7", "snapshot")

	if err := d.Remove("wal-1"); err != nil {
		t.Fatal(err)
	}
	assertList(t, d, "snap-7")
	if _, err := d.ReadFile("wal-1"); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "wal-1") {
		t.Errorf("ReadFile of a removed file: err = %v, want ErrNotExist naming it", err)
	}
	if _, err := d.OpenAppend("wal-1"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("OpenAppend of a removed file: err = %v, want ErrNotExist", err)
	}
	if err := d.Remove("wal-1"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Remove of a removed file: err = %v, want ErrNotExist", err)
	}
}

func TestNamesStayInsideTheDir(t *testing.T) {
	d := mustOpen(t, t.TempDir(), Options{})
	for _, name := range []string{"", ".", "..", "../x", "a/b", lockName} {
		if _, err := d.Create(name); err == nil {
			t.Errorf("Create(%q) succeeded", name)
		}
		if _, err := d.ReadFile(name); err == nil {
			t.Errorf("ReadFile(%q) succeeded", name)
		}
		if err := d.Rename("x", name); err == nil {
			t.Errorf("Rename(x, %q) succeeded", name)
		}
		if err := d.Remove(name); err == nil {
			t.Errorf("Remove(%q) succeeded", name)
		}
	}
}

func TestClosedDirRefusesWork(t *testing.T) {
	d := mustOpen(t, t.TempDir(), Options{})
	d.Close()
	if _, err := d.List(); err == nil {
		t.Error("List after Close succeeded")
	}
	if _, err := d.Create("x"); err == nil {
		t.Error("Create after Close succeeded")
	}
	if err := d.SyncDir(); err == nil {
		t.Error("SyncDir after Close succeeded")
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestUnsafeNoFsyncSkipsSync(t *testing.T) {
	// A closed file cannot be synced, so only a Sync that does nothing
	// succeeds on one: that tells the two modes apart.
	for _, unsafe := range []bool{false, true} {
		d := mustOpen(t, t.TempDir(), Options{UnsafeNoFsync: unsafe})
		f, err := d.Create("x")
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		for _, sync := range []struct {
			name string
			call func() error
		}{{"Sync", f.Sync}, {"SyncHeld", f.(*File).SyncHeld}} {
			err = sync.call()
			if unsafe && err != nil {
				t.Errorf("UnsafeNoFsync: %s = %v, want a no-op", sync.name, err)
			}
			if !unsafe && (err == nil || !strings.Contains(err.Error(), "fdatasync x")) {
				t.Errorf("%s of a closed file = %v, want an error naming fdatasync and x", sync.name, err)
			}
		}
	}
}

// Both syncs pass on what the kernel answers: fdatasync of a pipe is
// EINVAL, reported with the file's name.
func TestSyncReportsTheKernelsError(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("fdatasync of a pipe is EINVAL on Linux; other systems answer otherwise")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	f := &File{f: w, name: "pipe"}
	for _, sync := range []struct {
		name string
		call func() error
	}{{"Sync", f.Sync}, {"SyncHeld", f.SyncHeld}} {
		err := sync.call()
		if !errors.Is(err, syscall.EINVAL) || !strings.Contains(err.Error(), "fdatasync pipe") {
			t.Errorf("%s of a pipe = %v, want EINVAL naming fdatasync and pipe", sync.name, err)
		}
	}
}

func TestAppendDiskFull(t *testing.T) {
	// /dev/full fails every write with ENOSPC, as a full disk would.
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("no /dev/full: %v", err)
	}
	f := &File{f: full, name: "wal-9"}
	defer f.Close()
	err = f.Append([]byte("data"))
	if !errors.Is(err, core.ErrDiskFull) {
		t.Fatalf("Append to a full disk: err = %v, want core.ErrDiskFull", err)
	}
	if !strings.Contains(err.Error(), "wal-9") {
		t.Errorf("Append error %q does not name the file", err)
	}
	if err := fileError("append to", "x", os.ErrPermission); errors.Is(err, core.ErrDiskFull) {
		t.Errorf("a permission error %v is reported as disk full", err)
	}
}

func assertContent(t *testing.T, d *Dir, name, want string) {
	t.Helper()
	b, err := d.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != want {
		t.Errorf("%s holds %q, want %q", name, b, want)
	}
}

func assertList(t *testing.T, d *Dir, want ...string) {
	t.Helper()
	got, err := d.List()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("List = %q, want %q", got, want)
	}
}

// Open of a data directory that does not exist fsyncs the parent of every
// directory it makes, so that the new directory's name, and with it every
// write acknowledged in it, survives a power cut; with UnsafeNoFsync it
// syncs nothing.
func TestOpenSyncsTheParentsOfTheDirsItMakes(t *testing.T) {
	var synced []string
	testHookSyncPath = func(path string) { synced = append(synced, path) }
	defer func() { testHookSyncPath = nil }()
	root := t.TempDir()
	dir := filepath.Join(root, "a", "b")
	mustOpen(t, dir, Options{})
	want := []string{filepath.Join(root, "a"), root}
	if !reflect.DeepEqual(synced, want) {
		t.Errorf("Open(%s) fsynced %q, want %q", dir, synced, want)
	}

	synced = nil
	d, err := Open(dir, Options{}) // exists: nothing made, nothing to sync
	if err == nil {
		d.Close()
	}
	if len(synced) != 0 {
		t.Errorf("Open of an existing dir fsynced %q, want nothing", synced)
	}
	mustOpen(t, filepath.Join(root, "c"), Options{UnsafeNoFsync: true})
	if len(synced) != 0 {
		t.Errorf("Open with UnsafeNoFsync fsynced %q, want nothing", synced)
	}
}

// On a full disk the lock file may get no block for the pid: the
// directory opens all the same (the pid only names the holder to a second
// process, which is still refused). Another failure of the write is still
// an error.
func TestOpenWithNoSpaceForThePID(t *testing.T) {
	defer func() { testHookWritePID = nil }()
	testHookWritePID = func(*os.File) error { return &os.PathError{Op: "write", Path: "LOCK", Err: syscall.ENOSPC} }
	dir := t.TempDir()
	d := mustOpen(t, dir, Options{})
	if _, err := Open(dir, Options{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("a second Open: %v, want ErrLocked", err)
	}
	d.Close()
	testHookWritePID = func(*os.File) error { return &os.PathError{Op: "write", Path: "LOCK", Err: syscall.EIO} }
	if _, err := Open(dir, Options{}); err == nil || !strings.Contains(err.Error(), "cannot write lock file") {
		t.Fatalf("Open with the pid's write failing EIO: %v", err)
	}
}

// Overwrite writes over bytes the file holds, in place: it neither grows
// the file nor moves its end, and refuses a range past the end.
func TestFileOverwrite(t *testing.T) {
	d := mustOpen(t, t.TempDir(), Options{})
	f, err := d.Create("state")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Append([]byte("hello world")); err != nil {
		t.Fatal(err)
	}
	if err := f.Overwrite([]byte("HELLO"), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Overwrite([]byte("D"), 10); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	assertContent(t, d, "state", "HELLO worlD")
	for _, off := range []int64{-1, 8} {
		if err := f.Overwrite([]byte("xyz1"), off); err == nil || !strings.Contains(err.Error(), "state") {
			t.Errorf("Overwrite of 4 bytes at %d in 11: %v, want an error naming the file", off, err)
		}
	}
	if err := f.Append([]byte("!")); err != nil {
		t.Fatal(err)
	}
	assertContent(t, d, "state", "HELLO worlD!")
}
