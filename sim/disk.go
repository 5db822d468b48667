package sim

import (
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"time"

	"dkv/core"
)

// DiskFaults are the probabilities and sizes of a simulated disk's faults.
// The zero value is a perfect disk.
type DiskFaults struct {
	// SyncErrorProb is the chance that a File.Sync fails. A failed sync
	// loses the file's unsynced data, as Linux may drop dirty pages.
	SyncErrorProb float64
	// SyncErrorKeepsPagesEvery makes every n-th failed sync (1: every one;
	// 0: none) lose the unsynced data the way ext4 does ("fsyncgate"): the
	// pages that failed writeback are marked clean and stay in the page
	// cache, so reads (a restarted process's too) still return them and a
	// later sync reports success without writing them; only a power loss
	// shows that the medium never got them. The other failed syncs drop
	// the pages, and reads see the medium at once. A count, not a chance,
	// so that it draws nothing from the disk's random stream, and the
	// seeds kept as regressions (and those that catch the planted bugs)
	// run as they did before it.
	SyncErrorKeepsPagesEvery int
	// WriteErrorProb is the chance that an Append fails after writing a
	// random prefix of its data.
	WriteErrorProb float64
	// TornWriteProb is the chance, at a crash, that a file keeps some of
	// its unsynced data (otherwise all of it is lost): a random length of
	// it, in whole sectors (sectorBytes, written atomically) as far as the
	// content goes. HoleProb is the chance that those sectors reached the
	// medium in any order, each on its own, rather than in order: sectors
	// not written read as zeros, leaving holes.
	TornWriteProb float64
	HoleProb      float64
	// ReadFlipProb is the chance that a ReadFile returns one flipped bit.
	// The flip is transient: the medium is unchanged.
	ReadFlipProb float64
	// CapacityBytes bounds the bytes all files may hold; 0 means unbounded.
	CapacityBytes int64
	// WriteLatencyMax and SyncLatencyMax bound the time an Append or a
	// Sync takes (uniform, in steps of latencyQuantum). Calls still return
	// at once; the host reads the time with TakeLatency and keeps the node
	// busy for it, so requests arriving meanwhile pile up for the next turn.
	WriteLatencyMax, SyncLatencyMax time.Duration
	// Faults of synced data, drawn at each power loss for every file
	// (TigerBeetle's and FoundationDB's simulators inject all three):
	// CorruptProb is the chance that one synced sector is damaged at rest
	// (one bit flipped, or a burst of garbage); LatentProb the chance that one sector becomes
	// unreadable (a latent sector error), for good with LatentPersistProb,
	// else for the next read only. MisdirectProb is the chance, at each
	// File.Sync, that one sector written since the last sync lands on the
	// medium in place of another, synced sector of the file, which is lost,
	// while its own place keeps what it held before. The running node's
	// reads come from the page cache and see none of this until the power
	// goes.
	CorruptProb, LatentProb, LatentPersistProb, MisdirectProb float64
	// WritebackProb is the chance, at a Truncate of a file with unsynced
	// writes, that the kernel had already written those pages back: the
	// bytes are on the medium, and a crash before the truncate is synced
	// brings back what it cut (the size change is metadata, durable only
	// by fsync).
	WritebackProb float64
	// DirKeepProb is the chance that each directory change (create, rename,
	// remove) since the last SyncDir survives a crash on its own, as in
	// ALICE and lazyfs; the rest are lost.
	DirKeepProb float64
	// CrashOpProb is the chance that a mutating call (Create, Append, Sync,
	// Truncate, Rename, Remove, SyncDir) is where the machine dies: the call
	// panics with a *CrashPoint, just before or just after doing its work.
	// The host recovers the panic and crashes the node there, which puts
	// crashes between a write and its fsync, and between the steps of a
	// snapshot, without the node's help.
	CrashOpProb float64
	// SyncDirErrorEvery makes every n-th SyncDir fail (0: none): the
	// directory's changes since the last one that worked stay as a crash
	// finds them (each kept or lost on its own, DirKeepProb), and the
	// node hears an I/O error. Linux reports a failed journal commit so.
	// A count, not a chance, for the reason SyncErrorKeepsPagesEvery is.
	SyncDirErrorEvery int
}

// CrashPoint is the panic value of a crash injected at a disk call.
type CrashPoint struct {
	Op, Name string
	After    bool // the call did its work before the crash
}

func (c *CrashPoint) String() string {
	when := "before"
	if c.After {
		when = "after"
	}
	return fmt.Sprintf("crash %s %s %s", when, c.Op, c.Name)
}

// inode is one file's content: what a read sees, and what survives a crash.
type inode struct {
	data []byte
	// end is where the next Append lands: len(data), unless zeros were
	// reserved past it (core.Reserver).
	end int
	// syncedLen bytes of data are durable, except the sectors in
	// oldSectors: sectors of the durable part overwritten since the last
	// sync, kept as they were then, and those in diverged: sectors whose
	// medium content differs from what the node wrote (a misdirected
	// write), until the node writes them again. When a truncate has cut
	// into the durable part and no sync followed, the durable content is
	// kept whole in syncedOld instead.
	syncedLen  int
	oldSectors map[int][]byte
	diverged   map[int][]byte
	// keptClean: the sectors of diverged that a failed sync left in the
	// page cache, clean (keepFailedPages), which Disk.DropCache reverts
	// to what the medium holds. A write makes a sector dirty again.
	keptClean map[int]bool
	// oldDiverged: the sectors of oldSectors kept from diverged.
	oldDiverged map[int]bool
	syncedOld   []byte
	// syncedOldRight: for each sector that syncedOld holds as a
	// misdirected write left it, what it holds once the write is put right
	// (settleMisdirects): the node's content of a diverged sector, or nil
	// for a sector of oldDiverged, whose right content the misdirect keeps.
	syncedOldRight map[int][]byte
	// latent is a sector that cannot be read: reads of the file fail
	// while it is set, and a write over it clears it (the drive remaps
	// the sector). latentOnce: only the next read fails.
	latent     int
	latentSet  bool
	latentOnce bool
	// damaged: a fault of synced data (at rest, latent, misdirected) hit
	// this file, so a node may rightly refuse to start from it.
	damaged bool
	// dataSyncs counts the syncs that made new writes durable, and
	// misdirects the misdirected writes since the last crash, with the
	// sync they came in (see Crash).
	dataSyncs  int
	misdirects []misdirected
}

// misdirected is a misdirected write: sector from went to sector to, at
// data sync number at; fromGood and toGood are what the two should hold.
type misdirected struct {
	from, to, at     int
	fromGood, toGood []byte
}

// sectorBytes is the unit a simulated disk writes atomically: the sector
// core.SectorBytes assumes.
const sectorBytes = core.SectorBytes

// reserveBytesMax caps what a simulated Reserve zero-fills: enough to put
// reserved zeros after the log's end, and to overwrite them, at a cost the
// simulator can afford.
const reserveBytesMax = 16 << 10

func (ino *inode) synced() []byte {
	if ino.syncedOld != nil {
		return ino.syncedOld
	}
	if len(ino.oldSectors) == 0 && len(ino.diverged) == 0 {
		return ino.data[:ino.syncedLen]
	}
	out := slices.Clone(ino.data[:ino.syncedLen])
	for sec, old := range ino.diverged {
		copy(out[min(sec*sectorBytes, len(out)):], old)
	}
	for sec, old := range ino.oldSectors {
		copy(out[sec*sectorBytes:], old)
	}
	return out
}

// durableSector is the medium's content of sector sec of the durable part.
func (ino *inode) durableSector(sec int) []byte {
	from, to := sec*sectorBytes, min((sec+1)*sectorBytes, ino.syncedLen)
	if old, ok := ino.oldSectors[sec]; ok {
		return old
	}
	if old, ok := ino.diverged[sec]; ok {
		return old
	}
	return ino.data[from:to]
}

// writeAt writes p at off, which is at most len(data), keeping the durable
// content of any durable sector it overwrites.
func (ino *inode) writeAt(off int, p []byte) {
	for sec := off / sectorBytes; len(ino.keptClean) > 0 && sec*sectorBytes < off+len(p); sec++ {
		delete(ino.keptClean, sec)
	}
	if ino.syncedOld == nil {
		for sec := off / sectorBytes; sec*sectorBytes < min(off+len(p), ino.syncedLen); sec++ {
			if _, ok := ino.oldSectors[sec]; ok {
				continue
			}
			if ino.oldSectors == nil {
				ino.oldSectors = map[int][]byte{}
			}
			ino.oldSectors[sec] = slices.Clone(ino.durableSector(sec))
			if _, ok := ino.diverged[sec]; ok {
				if ino.oldDiverged == nil {
					ino.oldDiverged = map[int]bool{}
				}
				ino.oldDiverged[sec] = true
				delete(ino.diverged, sec) // the next sync writes it where it belongs
			}
		}
	}
	if ino.latentSet && off <= (ino.latent+1)*sectorBytes && ino.latent*sectorBytes < off+len(p) {
		ino.latentSet = false // a write over a bad sector remaps it
	}
	n := copy(ino.data[off:], p)
	ino.data = append(ino.data, p[n:]...)
}

// markSynced makes everything in data durable, as the node wrote it (but
// for sectors whose writes went astray).
func (ino *inode) markSynced() {
	ino.syncedLen = len(ino.data)
	ino.oldSectors = nil
	ino.oldDiverged = nil
	ino.syncedOld = nil
	ino.syncedOldRight = nil
	for sec := range ino.diverged {
		if sec*sectorBytes >= ino.syncedLen {
			delete(ino.diverged, sec)
		}
	}
}

// keepFailedPages is a failed sync that keeps the unsynced pages in the
// cache, clean (ext4's way): reads go on returning what the node wrote,
// no later sync writes it, and the medium keeps what it held: the durable
// content, and zeros where the file grew. Each sector whose content the
// medium lacks is held as diverged (the medium's content differs from the
// cache's until the node writes the sector again), as a misdirected
// write's place is; but nothing is damaged: a node that cuts what it
// could not sync finds the medium as it left it.
func (ino *inode) keepFailedPages() {
	if ino.syncedOld != nil {
		// A truncate cut into the durable part, unsynced: what the medium
		// holds is syncedOld, which the cache's content may not extend.
		// Drop the pages instead, as the other kind of failure does.
		ino.settleMisdirects()
		ino.data = slices.Clone(ino.synced())
		ino.diverged = nil
		ino.keptClean = nil
		ino.end = min(ino.end, len(ino.data))
		ino.markSynced()
		return
	}
	medium := ino.synced()
	var lost []int
	for sec := ino.syncedLen / sectorBytes; sec*sectorBytes < len(ino.data); sec++ {
		lost = append(lost, sec)
	}
	for sec := range ino.oldSectors {
		if sec*sectorBytes < ino.syncedLen/sectorBytes*sectorBytes {
			lost = append(lost, sec)
		}
	}
	held := make(map[int][]byte, len(lost))
	for _, sec := range lost {
		lo, hi := sec*sectorBytes, min((sec+1)*sectorBytes, len(ino.data))
		old := make([]byte, hi-lo)
		if lo < len(medium) {
			copy(old, medium[lo:min(hi, len(medium))])
		}
		held[sec] = old
	}
	ino.markSynced() // the size is the cache's; the content, the medium's
	if ino.diverged == nil {
		ino.diverged = map[int][]byte{}
	}
	if ino.keptClean == nil {
		ino.keptClean = map[int]bool{}
	}
	for sec, old := range held {
		ino.diverged[sec] = old
		ino.keptClean[sec] = true
	}
}

// rightContent is what each sector of the durable content that a
// misdirected write left wrong holds once it is put right: for a diverged
// sector, the node's content of it (synced, so durable but for the
// misdirect); for a sector of oldDiverged, nil: the misdirect's record
// has it (settleMisdirects).
func (ino *inode) rightContent() map[int][]byte {
	if len(ino.diverged) == 0 && len(ino.oldDiverged) == 0 {
		return nil
	}
	right := map[int][]byte{}
	for sec := range ino.diverged {
		if lo := sec * sectorBytes; lo < ino.syncedLen {
			right[sec] = slices.Clone(ino.data[lo:min(lo+sectorBytes, ino.syncedLen)])
		}
	}
	for sec := range ino.oldDiverged {
		right[sec] = nil
	}
	return right
}

// settleMisdirects is called when what the medium holds comes to light (a
// power loss, or a failed sync that drops the page cache). A misdirected
// write of a log's last synced batch leaves its place as a sector a torn
// write never wrote leaves it: no single-copy log can tell the two apart,
// so nothing could refuse rightly. Such a write is put right here; it is
// kept once two more syncs wrote past it, when a recovery that reads
// carefully has the later batches to prove it was synced.
func (ino *inode) settleMisdirects() {
	for _, m := range ino.misdirects {
		if ino.dataSyncs >= m.at+2 {
			continue
		}
		for _, fix := range []struct {
			sec  int
			good []byte
		}{{m.from, m.fromGood}, {m.to, m.toGood}} {
			if right, ok := ino.syncedOldRight[fix.sec]; ok {
				// A truncate kept the durable content whole, as the
				// misdirect left it.
				if right == nil {
					right = fix.good
				}
				if lo := fix.sec * sectorBytes; lo < len(ino.syncedOld) {
					copy(ino.syncedOld[lo:], right)
				}
				delete(ino.syncedOldRight, fix.sec)
			}
			if _, ok := ino.diverged[fix.sec]; ok {
				delete(ino.diverged, fix.sec)
			} else if old, ok := ino.oldSectors[fix.sec]; ok && ino.oldDiverged[fix.sec] {
				copy(old, fix.good) // rewritten since, unsynced: the kept old content
			}
		}
	}
	ino.misdirects = nil
}

// dirOp is a directory change not yet made durable by SyncDir.
type dirOp struct {
	op       string // "create", "rename", "remove"
	name, to string
	ino      *inode
}

// Disk is a simulated core.Disk. It keeps written-but-unsynced state apart
// from durable state: file contents become durable on File.Sync, and the
// directory (creates, renames, removes) on SyncDir. Crash throws away
// everything that was not durable, tearing what it keeps as the faults say.
type Disk struct {
	rand    *rand.Rand
	faults  DiskFaults
	dir     map[string]*inode // what the running node sees
	durable map[string]*inode // the directory as of the last SyncDir
	dirLog  []dirOp           // the changes since, each of which a crash may keep
	open    []*file
	readers []*reader // open ranged reads (OpenRead)
	latency int64     // accrued by calls since the last TakeLatency
	async   AsyncHost
	// Observe, if set, hears of every fault the disk injects and every
	// sync, for the run's trace.
	Observe func(event, name string, n int64)
	// Counters, for the run's report.
	Syncs, SyncErrors, WriteErrors, Flips, Tears, CrashPoints int
	Corruptions, Latents, Misdirects, DirLost                 int
	// SyncDirs counts the SyncDir calls, SyncDirErrors those that failed.
	SyncDirs, SyncDirErrors int
	// FullErrors counts the appends refused for want of space.
	FullErrors int
}

// NewDisk returns an empty disk whose faults draw from r.
func NewDisk(r *rand.Rand, faults DiskFaults) *Disk {
	return &Disk{rand: r, faults: faults, dir: map[string]*inode{}, durable: map[string]*inode{}}
}

// SetFaults changes the fault mix (for example, to stop faults at the end).
func (d *Disk) SetFaults(f DiskFaults) { d.faults = f }

func (d *Disk) chance(p float64) bool { return p > 0 && d.rand.Float64() < p }

func (d *Disk) observe(event, name string, n int64) {
	if d.Observe != nil {
		d.Observe(event, name, n)
	}
}

// injected counts the transient faults that make a call fail or a read
// lie (latent read errors included: a transient one passes).
func (d *Disk) injected() int64 {
	return int64(d.SyncErrors + d.WriteErrors + d.Flips + d.Latents + d.SyncDirErrors)
}

// Damaged lists the files that a fault of synced data (corruption at rest,
// a persistent unreadable sector, a misdirected write) has hit: a node that
// refuses to start from one of them, naming it, is right to.
func (d *Disk) Damaged() []string {
	var names []string
	for name, ino := range d.dir {
		if ino.damaged {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// Faults returns the current fault mix.
func (d *Disk) Faults() DiskFaults { return d.faults }

// Used is the number of bytes all files hold, as the running node sees them.
func (d *Disk) Used() int64 { return d.used() }

// TakeLatency returns the time the calls since the last TakeLatency took,
// and starts counting afresh.
func (d *Disk) TakeLatency() time.Duration {
	l := d.latency
	d.latency = 0
	return time.Duration(l)
}

// Latency is the time accrued since the last TakeLatency.
func (d *Disk) Latency() time.Duration { return time.Duration(d.latency) }

func (d *Disk) delay(maxD time.Duration) {
	if steps := int64(maxD / latencyQuantum); steps > 0 {
		d.latency += d.rand.Int64N(steps+1) * int64(latencyQuantum)
	}
}

// crashPoint panics, at random, where a mutating call begins (after=false)
// or ends (after=true). Each call asks twice, so each point is equally
// likely.
func (d *Disk) crashPoint(op, name string, after bool) {
	if d.chance(d.faults.CrashOpProb) {
		d.CrashPoints++
		panic(&CrashPoint{Op: op, Name: name, After: after})
	}
}
func (d *Disk) used() int64 {
	var n int64
	for _, ino := range d.dir {
		n += int64(len(ino.data))
	}
	return n
}

// List implements core.Disk.
func (d *Disk) List() ([]string, error) {
	return slices.Sorted(maps.Keys(d.dir)), nil
}

// ReadFile implements core.Disk.
func (d *Disk) ReadFile(name string) ([]byte, error) {
	ino, ok := d.dir[name]
	if !ok {
		return nil, fmt.Errorf("read %s: file does not exist", name)
	}
	if ino.latentSet {
		off := ino.latent * sectorBytes
		if ino.latentOnce {
			ino.latentSet = false
			d.Latents++ // transient: counted with the faults a retry clears
		}
		d.observe("read-error", name, int64(off))
		return nil, fmt.Errorf("read %s: input/output error (unreadable sector at offset %d)", name, off)
	}
	data := slices.Clone(ino.data)
	if len(data) > 0 && d.chance(d.faults.ReadFlipProb) {
		i := d.rand.IntN(len(data))
		data[i] ^= 1 << d.rand.IntN(8)
		d.Flips++
		d.observe("read-flip", name, int64(i))
	}
	return data, nil
}

// reader is a file open for ranged reads (core.ReadHandle). It holds the
// inode, as a descriptor does: a rename or remove of the name, or a new
// file under it, does not change what it reads.
type reader struct {
	disk   *Disk
	name   string
	ino    *inode
	size   int64
	closed bool
}

var _ core.RangeReader = (*Disk)(nil)

// OpenRead implements core.RangeReader.
func (d *Disk) OpenRead(name string) (core.ReadHandle, error) {
	ino, ok := d.dir[name]
	if !ok {
		return nil, fmt.Errorf("open %s: file does not exist", name)
	}
	r := &reader{disk: d, name: name, ino: ino, size: int64(len(ino.data))}
	d.readers = append(d.readers, r)
	return r, nil
}

func (d *Disk) closeReaders() {
	for _, r := range d.readers {
		r.closed = true
	}
	d.readers = nil
}

// ReadAt implements core.ReadHandle with ReadFile's faults, drawn from the
// disk's rand as ReadFile draws them. An unreadable sector fails the reads
// that cover it (ReadFile fails whatever it is asked, as it covers all),
// and a transient one the first of them only. A flipped bit comes with the
// chance ReadFlipProb scaled by the share of the file read: reading a file
// a chunk at a time sees as many flips as reading it whole, where
// ReadFlipProb a read would have a snapshot of hundreds of simulated
// chunks (SnapChunkBytes 512) sent with a flip nearly every time, and
// never arrive.
func (r *reader) ReadAt(p []byte, off int64) (int, error) {
	d, ino := r.disk, r.ino
	if r.closed {
		return 0, fmt.Errorf("read %s: file closed", r.name)
	}
	if off < 0 {
		return 0, fmt.Errorf("read %s: negative offset %d", r.name, off)
	}
	if off >= int64(len(ino.data)) {
		return 0, io.EOF
	}
	end := min(int(off)+len(p), len(ino.data))
	if ino.latentSet && ino.latent*sectorBytes < end && int(off) < (ino.latent+1)*sectorBytes {
		at := ino.latent * sectorBytes
		if ino.latentOnce {
			ino.latentSet = false
			d.Latents++
		}
		d.observe("read-error", r.name, int64(at))
		return 0, fmt.Errorf("read %s: input/output error (unreadable sector at offset %d)", r.name, at)
	}
	n := copy(p, ino.data[off:end])
	if d.chance(d.faults.ReadFlipProb * float64(n) / float64(len(ino.data))) {
		i := d.rand.IntN(n)
		p[i] ^= 1 << d.rand.IntN(8)
		d.Flips++
		d.observe("read-flip", r.name, off+int64(i))
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Size implements core.ReadHandle.
func (r *reader) Size() int64 { return r.size }

// Close implements core.ReadHandle.
func (r *reader) Close() error {
	if !r.closed {
		r.closed = true
		r.disk.readers = slices.DeleteFunc(r.disk.readers, func(o *reader) bool { return o == r })
	}
	return nil
}

// DropCache implements core.CacheDropper: the sectors a failed sync kept
// clean in the cache (SyncErrorKeepsPagesEvery) read as the medium holds
// them from now on. Only those: the other clean sectors already read as
// the medium holds them, but for misdirected writes, whose wrong places
// the simulator brings to light at a power loss alone (settleMisdirects).
func (d *Disk) DropCache(name string) error {
	ino, ok := d.dir[name]
	if !ok {
		return fmt.Errorf("drop cache of %s: file does not exist", name)
	}
	dropped := 0
	for sec := range ino.keptClean { // each sector on its own: order does not matter
		medium, ok := ino.diverged[sec]
		lo := sec * sectorBytes
		if !ok || lo >= len(ino.data) {
			continue // cut off since, or rewritten in full
		}
		copy(ino.data[lo:min(lo+len(medium), len(ino.data))], medium)
		delete(ino.diverged, sec)
		dropped++
	}
	ino.keptClean = nil
	if dropped > 0 {
		d.observe("drop-cache", name, int64(dropped))
	}
	return nil
}

// Create implements core.Disk.
func (d *Disk) Create(name string) (core.File, error) {
	d.crashPoint("create", name, false)
	defer d.crashPoint("create", name, true)
	ino := &inode{}
	d.dir[name] = ino
	d.dirLog = append(d.dirLog, dirOp{op: "create", name: name, ino: ino})
	d.observe("create", name, 0)
	f := &file{disk: d, name: name, ino: ino}
	d.open = append(d.open, f)
	return d.wrap(f), nil
}

// OpenAppend implements core.Disk.
func (d *Disk) OpenAppend(name string) (core.File, error) {
	ino, ok := d.dir[name]
	if !ok {
		return nil, fmt.Errorf("open %s: file does not exist", name)
	}
	ino.end = len(ino.data) // as a reopened file's length: reserved zeros included
	f := &file{disk: d, name: name, ino: ino}
	d.open = append(d.open, f)
	return d.wrap(f), nil
}

// wrap hands out files that can also sync in the background when a host
// offers it, as realnet's does.
func (d *Disk) wrap(f *file) core.File {
	if d.async == nil {
		return f
	}
	return &asyncFile{file: f, cutTo: -1}
}

// Rename implements core.Disk.
func (d *Disk) Rename(from, to string) error {
	d.crashPoint("rename", from, false)
	ino, ok := d.dir[from]
	if !ok {
		return fmt.Errorf("rename %s: file does not exist", from)
	}
	delete(d.dir, from)
	d.dir[to] = ino
	d.dirLog = append(d.dirLog, dirOp{op: "rename", name: from, to: to, ino: ino})
	d.observe("rename", from+" -> "+to, 0)
	d.crashPoint("rename", to, true)
	return nil
}

// Remove implements core.Disk.
func (d *Disk) Remove(name string) error {
	d.crashPoint("remove", name, false)
	ino, ok := d.dir[name]
	if !ok {
		return fmt.Errorf("remove %s: file does not exist", name)
	}
	delete(d.dir, name)
	d.dirLog = append(d.dirLog, dirOp{op: "remove", name: name, ino: ino})
	d.observe("remove", name, 0)
	d.crashPoint("remove", name, true)
	return nil
}

// SyncDir implements core.Disk.
func (d *Disk) SyncDir() error {
	d.crashPoint("syncdir", "", false)
	d.delay(d.faults.SyncLatencyMax)
	d.SyncDirs++
	if n := d.faults.SyncDirErrorEvery; n > 0 && d.SyncDirs%n == 0 {
		d.SyncDirErrors++
		d.observe("syncdir-error", "", int64(len(d.dirLog)))
		return fmt.Errorf("sync of the directory: simulated I/O error")
	}
	d.durable = make(map[string]*inode, len(d.dir))
	for name, ino := range d.dir {
		d.durable[name] = ino
	}
	d.dirLog = nil
	d.observe("syncdir", "", int64(len(d.dir)))
	d.crashPoint("syncdir", "", true)
	return nil
}

// ProcessCrash simulates the death of the process alone (kill -9, a panic):
// its open files are closed, but the kernel keeps every write, synced or
// not, so the directory and contents stay as the node last saw them.
func (d *Disk) ProcessCrash() {
	for _, f := range d.open {
		f.closed = true
	}
	d.open = nil
	d.closeReaders()
}

// Wipe loses everything, as an operator who removes a data directory (or
// replaces a dead disk) does. The node must be down.
func (d *Disk) Wipe() {
	if len(d.open) != 0 || len(d.readers) != 0 {
		panic("sim: Wipe with files open")
	}
	d.dir, d.durable, d.dirLog = map[string]*inode{}, map[string]*inode{}, nil
}

// Crash simulates power loss: open files are gone, the directory reverts to
// its last sync plus whichever later changes survive, each file to its
// synced content plus, perhaps, a torn part of what was written after; and
// synced data may be damaged at rest.
func (d *Disk) Crash() {
	for _, f := range d.open {
		f.closed = true
	}
	d.open = nil
	d.closeReaders()
	dir := make(map[string]*inode, len(d.durable))
	for name, ino := range d.durable {
		dir[name] = ino
	}
	// Each change since the last SyncDir reached the disk or not, on its
	// own; one whose file is not there (its create was lost) is moot.
	for _, op := range d.dirLog {
		if !d.chance(d.faults.DirKeepProb) {
			d.DirLost++
			continue
		}
		switch op.op {
		case "create":
			dir[op.name] = op.ino
		case "rename":
			if dir[op.name] == op.ino {
				delete(dir, op.name)
				dir[op.to] = op.ino
			}
		case "remove":
			if dir[op.name] == op.ino {
				delete(dir, op.name)
			}
		}
	}
	d.dirLog = nil
	names := slices.Sorted(maps.Keys(dir)) // the tear of each file draws from rand: fix the order
	d.dir = dir
	seen := map[*inode]bool{}
	for _, name := range names {
		ino := dir[name]
		if seen[ino] {
			continue
		}
		seen[ino] = true
		ino.settleMisdirects()
		kept := slices.Clone(ino.synced())
		// The sector the durable content ends inside, if a write has
		// overwritten its durable part: its bytes past the end belong to
		// the same sector, so they reach the medium with that part or
		// not at all.
		edge, edgeReached := -1, false
		if _, ok := ino.oldSectors[ino.syncedLen/sectorBytes]; ok && ino.syncedLen%sectorBytes != 0 {
			edge = ino.syncedLen / sectorBytes
		}
		if ino.syncedOld == nil && len(ino.oldSectors) > 0 && d.chance(d.faults.TornWriteProb) {
			// Overwritten durable sectors may have reached the medium,
			// each on its own: the kernel writes dirty pages back in no
			// order, and a disk writes only sectors atomically.
			for _, sec := range slices.Sorted(maps.Keys(ino.oldSectors)) {
				if d.rand.IntN(2) == 0 {
					copy(kept[sec*sectorBytes:], ino.data[sec*sectorBytes:min((sec+1)*sectorBytes, ino.syncedLen)])
					edgeReached = edgeReached || sec == edge
				}
			}
		}
		if ino.syncedOld == nil && len(ino.data) > ino.syncedLen && d.chance(d.faults.TornWriteProb) {
			torn := d.tear(ino, name)
			if edge >= 0 && !edgeReached {
				// The edge sector kept its old content: its bytes past the
				// old end were never written (a seed of the cluster mode
				// once kept them, new, behind the sector's old bytes,
				// which no disk that writes sectors whole can do, and a
				// node rightly refused the log it made).
				clear(torn[:min(len(torn), (edge+1)*sectorBytes-ino.syncedLen)])
			}
			kept = append(kept, torn...)
		}
		d.damageAtRest(name, ino, kept)
		ino.data = kept
		ino.end = len(kept)
		ino.diverged = nil // what the medium holds is now what reads see
		ino.keptClean = nil
		ino.markSynced()
	}
	d.durable = make(map[string]*inode, len(d.dir))
	for name, ino := range d.dir {
		d.durable[name] = ino
	}
}

// tear returns what a crash keeps of a file's unsynced data: a prefix of
// random length (the file's size reached the disk), whose sectors were all
// written, or with HoleProb each on its own, those not written reading as
// zeros.
func (d *Disk) tear(ino *inode, name string) []byte {
	extra := ino.data[ino.syncedLen:]
	n := d.rand.IntN(len(extra) + 1)
	torn := slices.Clone(extra[:n])
	if n > 0 && d.chance(d.faults.HoleProb) {
		for sec := ino.syncedLen / sectorBytes; sec*sectorBytes < ino.syncedLen+n; sec++ {
			if d.rand.IntN(2) == 0 {
				from := max(sec*sectorBytes, ino.syncedLen) - ino.syncedLen
				clear(torn[from:min((sec+1)*sectorBytes-ino.syncedLen, n)])
			}
		}
	}
	d.Tears++
	d.observe("torn", name, int64(n))
	return torn
}

// damageAtRest draws the faults of synced data for one file at a power loss.
func (d *Disk) damageAtRest(name string, ino *inode, kept []byte) {
	if len(kept) == 0 {
		return
	}
	sectors := (len(kept) + sectorBytes - 1) / sectorBytes
	if d.chance(d.faults.CorruptProb) {
		// Bit rot flips one bit; a sector the drive scrambles holds a
		// burst of garbage.
		sec := d.rand.IntN(sectors)
		from, to := sec*sectorBytes, min((sec+1)*sectorBytes, len(kept))
		if d.rand.IntN(2) == 0 {
			kept[from+d.rand.IntN(to-from)] ^= 1 << d.rand.IntN(8)
		} else {
			at := from + d.rand.IntN(to-from)
			for i := at; i < min(at+1+d.rand.IntN(to-from), to); i++ {
				kept[i] = byte(d.rand.Uint32())
			}
		}
		ino.damaged = true
		d.Corruptions++
		d.observe("corrupt", name, int64(from))
	}
	if d.chance(d.faults.LatentProb) {
		ino.latent, ino.latentSet = d.rand.IntN(sectors), true
		ino.latentOnce = !d.chance(d.faults.LatentPersistProb)
		ino.damaged = ino.damaged || !ino.latentOnce
		d.observe("latent", name, int64(ino.latent*sectorBytes))
	}
}

// Describe lists the files as the node sees them, with their sizes and how
// much of each is synced, for failure reports.
func (d *Disk) Describe() string {
	names, _ := d.List()
	var b strings.Builder
	for _, name := range names {
		ino := d.dir[name]
		durable := "not in the synced directory"
		if d.durable[name] == ino {
			durable = fmt.Sprintf("%d synced", len(ino.synced()))
		}
		fmt.Fprintf(&b, "%s: %d bytes, %s; ", name, len(ino.data), durable)
	}
	return b.String()
}

// DurableBytes returns the synced content of a durable file, for tests.
func (d *Disk) DurableBytes(name string) ([]byte, bool) {
	ino, ok := d.durable[name]
	if !ok {
		return nil, false
	}
	return slices.Clone(ino.synced()), true
}

// Corrupt flips one bit of a file's durable content at offset, for tests
// of recovery from damaged media.
func (d *Disk) Corrupt(name string, offset int) {
	ino := d.dir[name]
	if ino.syncedOld != nil && offset < len(ino.syncedOld) {
		ino.syncedOld[offset] ^= 0x10
	}
	if old, ok := ino.oldSectors[offset/sectorBytes]; ok {
		old[offset%sectorBytes] ^= 0x10
	}
	ino.data[offset] ^= 0x10
}

// Truncate cuts a file's durable content, for tests of torn tails.
func (d *Disk) Truncate(name string, size int) {
	ino := d.dir[name]
	ino.data = ino.data[:size:size]
	ino.end = min(ino.end, size)
	ino.syncedLen = min(ino.syncedLen, size)
	ino.syncedOld = nil
	ino.syncedOldRight = nil
	ino.oldSectors = nil
	ino.diverged = nil
	ino.keptClean = nil
}

type file struct {
	disk   *Disk
	name   string
	ino    *inode
	closed bool
}

func (f *file) Append(p []byte) error {
	if f.closed {
		return fmt.Errorf("append %s: file closed", f.name)
	}
	d := f.disk
	d.crashPoint("append", f.name, false)
	defer d.crashPoint("append", f.name, true)
	d.delay(d.faults.WriteLatencyMax)
	ino := f.ino
	grow := int64(max(0, ino.end+len(p)-len(ino.data))) // beyond reserved space
	if d.faults.CapacityBytes > 0 && d.used()+grow > d.faults.CapacityBytes {
		n := int(d.faults.CapacityBytes-d.used()) + (len(ino.data) - ino.end)
		if n > 0 {
			ino.writeAt(ino.end, p[:min(n, len(p))])
			ino.end += min(n, len(p))
		}
		d.FullErrors++
		return fmt.Errorf("append %s: %w", f.name, core.ErrDiskFull)
	}
	if d.chance(d.faults.WriteErrorProb) {
		n := d.rand.IntN(len(p) + 1)
		ino.writeAt(ino.end, p[:n])
		ino.end += n
		d.WriteErrors++
		d.observe("write-error", f.name, int64(n))
		return fmt.Errorf("append %s: simulated I/O error", f.name)
	}
	ino.writeAt(ino.end, p)
	ino.end += len(p)
	return nil
}

// Overwrite implements core.File: it writes over bytes the file holds, so
// it needs no space (as on ext4, xfs or tmpfs), and it makes the sectors
// it covers dirty again, a failed sync's kept-clean ones too (writeAt), so
// that the next sync makes them durable.
func (f *file) Overwrite(p []byte, off int64) error {
	if f.closed {
		return fmt.Errorf("overwrite %s: file closed", f.name)
	}
	if off < 0 || off+int64(len(p)) > int64(f.ino.end) {
		return fmt.Errorf("overwrite %s: %d bytes at %d, past its end %d", f.name, len(p), off, f.ino.end)
	}
	d := f.disk
	d.crashPoint("overwrite", f.name, false)
	defer d.crashPoint("overwrite", f.name, true)
	d.delay(d.faults.WriteLatencyMax)
	if d.chance(d.faults.WriteErrorProb) {
		n := d.rand.IntN(len(p) + 1)
		f.ino.writeAt(int(off), p[:n])
		d.WriteErrors++
		d.observe("write-error", f.name, int64(n))
		return fmt.Errorf("overwrite %s: simulated I/O error", f.name)
	}
	f.ino.writeAt(int(off), p)
	return nil
}

// Reserve implements core.Reserver: zeros past the end, which reads see and
// Appends overwrite (up to reserveBytesMax of them).
func (f *file) Reserve(n int64) error {
	if f.closed {
		return fmt.Errorf("reserve %s: file closed", f.name)
	}
	d := f.disk
	ino := f.ino
	n = min(n, reserveBytesMax)
	if int64(len(ino.data)-ino.end) >= n/2 {
		return nil
	}
	grow := int64(ino.end) + n - int64(len(ino.data))
	if d.faults.CapacityBytes > 0 && d.used()+grow > d.faults.CapacityBytes {
		grow = max(0, d.faults.CapacityBytes-d.used())
		ino.data = append(ino.data, make([]byte, grow)...)
		return fmt.Errorf("reserve %s: %w", f.name, core.ErrDiskFull)
	}
	ino.data = append(ino.data, make([]byte, grow)...)
	return nil
}

func (f *file) Sync() error {
	if f.closed {
		return fmt.Errorf("sync %s: file closed", f.name)
	}
	d := f.disk
	d.crashPoint("sync", f.name, false)
	d.delay(d.faults.SyncLatencyMax)
	if err := f.sync(); err != nil {
		return err
	}
	d.crashPoint("sync", f.name, true)
	return nil
}

// sync makes the file's content durable, or fails and loses what was not.
func (f *file) sync() error {
	d := f.disk
	d.Syncs++
	if d.chance(d.faults.SyncErrorProb) {
		d.SyncErrors++
		if n := d.faults.SyncErrorKeepsPagesEvery; n > 0 && d.SyncErrors%n == 0 {
			f.ino.keepFailedPages()
			d.observe("sync-error-kept-pages", f.name, int64(len(f.ino.data)))
			return fmt.Errorf("sync %s: simulated I/O error (pages kept clean in the cache)", f.name)
		}
		// The kernel dropped the dirty pages: what was unsynced is gone for
		// good, whatever a later sync reports.
		f.ino.settleMisdirects()
		f.ino.data = slices.Clone(f.ino.synced())
		f.ino.diverged = nil // reads now see the medium
		f.ino.keptClean = nil
		f.ino.end = min(f.ino.end, len(f.ino.data))
		f.ino.markSynced()
		d.observe("sync-error", f.name, int64(len(f.ino.data)))
		return fmt.Errorf("sync %s: simulated I/O error", f.name)
	}
	if d.chance(d.faults.MisdirectProb) {
		d.misdirect(f.name, f.ino)
	}
	if len(f.ino.data) > f.ino.syncedLen || len(f.ino.oldSectors) > 0 {
		f.ino.dataSyncs++
	}
	f.ino.markSynced()
	d.observe("sync", f.name, int64(len(f.ino.data)))
	return nil
}

// misdirect sends one sector written since the last sync to the place of
// another, synced one, as a disk's firmware or driver may: the medium gets
// the sector's new content at the wrong place, and keeps its old content
// (zeros, if it was new) at the right one. Called before markSynced.
func (d *Disk) misdirect(name string, ino *inode) {
	if ino.syncedOld != nil {
		return
	}
	var dirty []int
	for sec := ino.syncedLen / sectorBytes; sec*sectorBytes < len(ino.data); sec++ {
		dirty = append(dirty, sec)
	}
	for sec := range ino.oldSectors {
		if sec*sectorBytes < ino.syncedLen/sectorBytes*sectorBytes {
			dirty = append(dirty, sec)
		}
	}
	whole := ino.syncedLen / sectorBytes // sectors synced whole, candidates to be hit
	if len(dirty) == 0 || whole == 0 {
		return
	}
	slices.Sort(dirty)
	from := dirty[d.rand.IntN(len(dirty))]
	to := d.rand.IntN(whole)
	if _, ok := ino.oldSectors[to]; ok || to == from {
		return
	}
	// The right place keeps what the medium held: the synced bytes, then
	// zeros where the sector was new.
	lo, hi := from*sectorBytes, min((from+1)*sectorBytes, len(ino.data))
	stale := make([]byte, hi-lo)
	if lo < ino.syncedLen {
		copy(stale, ino.durableSector(from))
	}
	wrong := make([]byte, sectorBytes)
	copy(wrong, ino.data[lo:hi])
	if ino.diverged == nil {
		ino.diverged = map[int][]byte{}
	}
	toGood := slices.Clone(ino.durableSector(to))
	ino.diverged[from] = stale
	ino.diverged[to] = wrong
	delete(ino.keptClean, from) // the misdirect is what the medium holds now
	delete(ino.keptClean, to)
	ino.misdirects = append(ino.misdirects, misdirected{from: from, to: to, at: ino.dataSyncs + 1,
		fromGood: slices.Clone(ino.data[lo:hi]), toGood: toGood})
	ino.damaged = true
	d.Misdirects++
	d.observe("misdirect", name, int64(to*sectorBytes))
}

// AsyncHost is what a Disk needs to offer core.AsyncFile: a way to run the
// fsync later, outside the node, and to hand its outcome to the node in a
// later turn.
type AsyncHost interface {
	// Later runs f after d (the fsync itself, which the kernel runs while
	// the node goes on).
	Later(d time.Duration, f func())
	// Deliver runs f in a turn of the node after d (the outcome, posted
	// back into the node's loop).
	Deliver(d time.Duration, f func())
}

// SetAsync makes the disk hand out core.AsyncFiles whose background syncs
// run through h; nil turns it off. Only files opened afterwards are async.
func (d *Disk) SetAsync(h AsyncHost) { d.async = h }

// asyncFile is a file that can sync in the background, as realnet's files
// do: the fsync runs at a random point within the sync latency — covering
// whatever was appended by then, as an fdatasync that starts late does —
// and its outcome reaches the node at the end of the latency.
type asyncFile struct {
	*file
	inFlight bool
	cutTo    int64 // core.SyncCutter: where a failed sync cuts; -1 nowhere
}

// CutOnSyncFailure implements core.SyncCutter.
func (f *asyncFile) CutOnSyncFailure(size int64) { f.cutTo = size }

var _ core.AsyncFile = (*asyncFile)(nil)

// SyncAsync implements core.AsyncFile.
func (f *asyncFile) SyncAsync(done func(error)) {
	d := f.disk
	if f.inFlight {
		// The contract allows one at a time per file: a node that breaks
		// it is a node bug, reported as its panic.
		panic(fmt.Sprintf("core.AsyncFile contract broken: SyncAsync on %s with one already in flight", f.name))
	}
	if f.closed {
		d.async.Deliver(0, func() { done(fmt.Errorf("sync %s: file closed", f.name)) })
		return
	}
	d.crashPoint("sync", f.name, false)
	f.inFlight = true
	total := int64(0)
	if steps := int64(d.faults.SyncLatencyMax / latencyQuantum); steps > 0 {
		total = d.rand.Int64N(steps+1) * int64(latencyQuantum)
	}
	at := d.rand.Int64N(total + 1)
	cutTo := f.cutTo
	f.cutTo = -1
	var err error
	d.async.Later(time.Duration(at), func() {
		if f.closed {
			err = fmt.Errorf("sync %s: file closed", f.name)
			return
		}
		err = f.sync()
		if err != nil && cutTo >= 0 && cutTo <= int64(len(f.ino.data)) {
			// As the host's syncer does, at once: no crash point between.
			f.disk.observe("truncate", f.name, cutTo)
			f.ino.cutTo(int(cutTo))
			if serr := f.sync(); serr != nil {
				err = fmt.Errorf("%w; syncing the cut failed too (%v)", err, serr)
			}
		}
	})
	d.async.Deliver(time.Duration(total), func() {
		f.inFlight = false
		done(err)
	})
}

func (f *file) Truncate(size int64) error {
	if f.closed {
		return fmt.Errorf("truncate %s: file closed", f.name)
	}
	if size > int64(len(f.ino.data)) {
		return fmt.Errorf("truncate %s: size %d beyond end %d", f.name, size, len(f.ino.data))
	}
	f.disk.observe("truncate", f.name, size)
	f.disk.crashPoint("truncate", f.name, false)
	dirty := len(f.ino.data) > f.ino.syncedLen || len(f.ino.oldSectors) > 0
	if int(size) < len(f.ino.data) && dirty && f.ino.syncedOld == nil && f.disk.chance(f.disk.faults.WritebackProb) {
		f.ino.markSynced() // written back before the cut: on the medium now
		f.disk.observe("writeback", f.name, int64(len(f.ino.data)))
	}
	f.ino.cutTo(int(size))
	f.disk.crashPoint("truncate", f.name, true)
	return nil
}

// cutTo truncates the file's content to size, keeping its durable content
// whole until a sync.
func (ino *inode) cutTo(size int) {
	if size < ino.syncedLen && ino.syncedOld == nil {
		ino.syncedOld = slices.Clone(ino.synced())
		ino.syncedOldRight = ino.rightContent()
		ino.oldSectors = nil
	}
	ino.data = ino.data[:size:size]
	ino.end = size
	for sec := range ino.diverged {
		if (sec+1)*sectorBytes > size {
			delete(ino.diverged, sec) // rewritten in full if at all
		}
	}
}

func (f *file) Size() int64 { return int64(f.ino.end) }

var _ core.Reserver = (*file)(nil)

func (f *file) Close() error {
	f.closed = true
	return nil
}
