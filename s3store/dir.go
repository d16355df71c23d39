package s3store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Dir is a Store on a local directory. Its layout under root:
//
//	objects/<key>   the object's bytes, exactly as put (so a snapshot is a
//	                plain .rdb file an operator can copy)
//	meta/<key>      the object's metadata sidecar (JSON)
//	tmp/            puts in progress
//	lock            held shared by every open Dir on root (see NewDir)
//
// Keeping metadata in a parallel tree rather than beside the object as
// "<key>.json" means no key can collide with another key's sidecar; keeping
// temporary files in tmp/ means no key name is reserved. tmp/ is on the same
// file system as objects/ (both are under root), so the final rename is
// atomic: a crash leaves either the old object or the new one under the key,
// never half of one.
//
// S3 lets "a" and "a/b" exist together; a directory cannot, so Dir refuses
// the second of such a pair.
//
// Snapshots are users' data: directories are created 0700 and files 0600,
// readable by the emulator's user only.
type Dir struct {
	root string
	// lock is the open root/lock file, flock'ed shared for the Dir's life
	// (closing it, or the process dying, releases it).
	lock *os.File
	// removedTemps counts the temporary files NewDir removed.
	removedTemps int
	// keyLocks serialize the commit (two renames) of one key against readers
	// pairing an object with its sidecar, so that within this process a
	// reader never sees one put's data with another put's metadata.
	keyLocks [64]sync.RWMutex
}

// sidecar is the JSON in meta/<key>. Size lets a reader detect the pairing
// of a new object with an old sidecar that a crash between the two renames
// would leave.
type sidecar struct {
	Size     int64             `json:"size"`
	Metadata map[string]string `json:"metadata"`
}

// copyBuffers hold the buffers puts copy through: 256 KiB makes few
// syscalls, and pooling keeps a put's allocations near zero.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// staleTemp is the age past which NewDir removes files in tmp/ even while
// another Dir has the root open: leftovers of puts cut off by a crash. An
// hour is far beyond any put in progress.
const staleTemp = time.Hour

// Modes of what a Dir creates: snapshots are readable by their owner only.
const (
	dirMode  = 0o700
	fileMode = 0o600
)

// NewDir opens (creating if needed) a directory store at root.
//
// It removes the temporary files of puts that a crash cut off: all of them
// when no other Dir (in this process or another) has root open, which the
// shared lock on root/lock tells, so a restart after kill -9 leaves nothing
// behind; only those older than an hour otherwise, since a younger one may
// be a put in progress.
func NewDir(root string) (*Dir, error) {
	if root == "" {
		return nil, errors.New("s3store: empty directory store root")
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("s3store: directory store root: %w", err)
	}
	d := &Dir{root: abs}
	for _, sub := range []string{"objects", "meta", "tmp"} {
		if err := os.MkdirAll(filepath.Join(abs, sub), dirMode); err != nil {
			return nil, fmt.Errorf("s3store: create directory store: %w", err)
		}
	}
	// A store created by an older version is 0755: close it to other users
	// (what is under these directories is unreachable to them then). Best
	// effort: a root owned by another user (a mounted volume) keeps its mode.
	for _, p := range []string{abs, filepath.Join(abs, "objects"), filepath.Join(abs, "meta"), filepath.Join(abs, "tmp")} {
		_ = os.Chmod(p, dirMode)
	}
	lock, sole, err := lockRoot(filepath.Join(abs, "lock"))
	if err != nil {
		return nil, fmt.Errorf("s3store: directory store: %w", err)
	}
	d.lock = lock
	d.removedTemps = d.removeTemps(sole)
	return d, nil
}

// Close releases the Dir's hold on its root; the Dir must not be used after.
// A Dir that is not closed holds it until the process exits.
func (d *Dir) Close() error {
	if d.lock == nil {
		return nil
	}
	return d.lock.Close()
}

// RemovedTemps is how many temporary files of interrupted puts NewDir
// removed, for the caller to log.
func (d *Dir) RemovedTemps() int { return d.removedTemps }

// Root returns the store's root directory.
func (d *Dir) Root() string { return d.root }

// ObjectPath returns the file holding key's bytes, for tools and tests that
// look at the stored bytes directly.
func (d *Dir) ObjectPath(key string) (string, error) {
	if err := ValidateKey(key); err != nil {
		return "", err
	}
	return d.path("objects", key), nil
}

// Describe implements Store.
func (d *Dir) Describe() string { return "dir:" + d.root }

func (d *Dir) path(tree, key string) string {
	return filepath.Join(d.root, tree, filepath.FromSlash(key))
}

func (d *Dir) keyLock(key string) *sync.RWMutex {
	h := fnv.New32a()
	h.Write([]byte(key))
	return &d.keyLocks[h.Sum32()%uint32(len(d.keyLocks))]
}

// removeTemps removes the files in tmp/: all of them when sole (no other
// Dir has the root open, so none is a put in progress), else the stale ones.
func (d *Dir) removeTemps(sole bool) int {
	entries, err := os.ReadDir(filepath.Join(d.root, "tmp"))
	if err != nil {
		return 0
	}
	removed := 0
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !sole && time.Since(info.ModTime()) <= staleTemp {
			continue
		}
		if os.Remove(filepath.Join(d.root, "tmp", e.Name())) == nil {
			removed++
		}
	}
	return removed
}

// Put implements Store: the object and its sidecar are written to temporary
// files, fsynced, then renamed into place (object first), then the
// directories are fsynced so the renames survive a crash.
func (d *Dir) Put(ctx context.Context, key string, r io.Reader, size int64, meta map[string]string) (Info, error) {
	if err := ValidateKey(key); err != nil {
		return Info{}, err
	}
	meta, err := normalizeMetadata(meta)
	if err != nil {
		return Info{}, err
	}
	dataTmp, err := d.tempFile()
	if err != nil {
		return Info{}, err
	}
	committed := false
	defer func() {
		if !committed {
			os.Remove(dataTmp.Name())
		}
	}()
	buf := copyBuffers.Get().(*[]byte)
	// The struct hides os.File's ReadFrom, which would copy through a fresh
	// 32 KiB buffer per put instead of the pooled, larger one.
	n, err := io.CopyBuffer(struct{ io.Writer }{dataTmp}, newExactReader(ctxReader{ctx, r}, size), *buf)
	copyBuffers.Put(buf)
	if err == nil {
		err = dataTmp.Sync()
	}
	if cerr := dataTmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Info{}, fmt.Errorf("s3store: put %s: %w", key, err)
	}

	sc, err := json.Marshal(sidecar{Size: n, Metadata: meta})
	if err != nil {
		return Info{}, err
	}
	metaTmp, err := d.tempFile()
	if err != nil {
		return Info{}, err
	}
	defer func() {
		if !committed {
			os.Remove(metaTmp.Name())
		}
	}()
	_, err = metaTmp.Write(sc)
	if err == nil {
		err = metaTmp.Sync()
	}
	if cerr := metaTmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return Info{}, fmt.Errorf("s3store: put %s: metadata: %w", key, err)
	}
	if err := ctx.Err(); err != nil {
		return Info{}, fmt.Errorf("s3store: put %s: %w", key, err)
	}

	l := d.keyLock(key)
	l.Lock()
	defer l.Unlock()
	dataPath, metaPath := d.path("objects", key), d.path("meta", key)
	if err := renameInto(dataTmp.Name(), dataPath); err != nil {
		return Info{}, fmt.Errorf("s3store: put %s: %w", key, err)
	}
	committed = true // the object is in place; the temp names are gone
	if err := renameInto(metaTmp.Name(), metaPath); err != nil {
		os.Remove(metaTmp.Name())
		return Info{}, fmt.Errorf("s3store: put %s: metadata: %w", key, err)
	}
	syncDir(filepath.Dir(dataPath))
	syncDir(filepath.Dir(metaPath))
	st, err := os.Stat(dataPath)
	if err != nil {
		return Info{}, fmt.Errorf("s3store: put %s: %w", key, err)
	}
	return Info{Key: key, Size: n, Modified: st.ModTime(), Metadata: cloneMeta(meta)}, nil
}

func (d *Dir) tempFile() (*os.File, error) {
	var b [8]byte
	rand.Read(b[:])
	f, err := os.OpenFile(filepath.Join(d.root, "tmp", "put-"+hex.EncodeToString(b[:])), os.O_RDWR|os.O_CREATE|os.O_EXCL, fileMode)
	if err != nil {
		return nil, fmt.Errorf("s3store: temporary file: %w", err)
	}
	return f, nil
}

// renameInto renames src to dst, creating dst's parents. It tries again when
// a concurrent Delete pruned a freshly created parent in between.
func renameInto(src, dst string) error {
	var err error
	for range 5 {
		if err = os.MkdirAll(filepath.Dir(dst), dirMode); err != nil {
			if errors.Is(err, syscall.ENOTDIR) {
				return fmt.Errorf("%w: a parent of the key is an object", ErrInvalidKey)
			}
			continue
		}
		if err = os.Rename(src, dst); err == nil || !errors.Is(err, fs.ErrNotExist) {
			break
		}
	}
	if err != nil {
		if st, serr := os.Stat(dst); serr == nil && st.IsDir() {
			return fmt.Errorf("%w: the key is a prefix of other keys", ErrInvalidKey)
		}
	}
	return err
}

// syncDir makes a rename in dir durable. Best effort: some file systems
// refuse to fsync a directory, and the data itself is already synced.
func syncDir(dir string) {
	if f, err := os.Open(dir); err == nil {
		f.Sync()
		f.Close()
	}
}

// Get implements Store. The open file keeps the bytes it had even if a
// later Put replaces the key mid-read.
func (d *Dir) Get(ctx context.Context, key string) (io.ReadCloser, Info, error) {
	if err := ValidateKey(key); err != nil {
		return nil, Info{}, err
	}
	l := d.keyLock(key)
	l.RLock()
	defer l.RUnlock()
	f, err := os.Open(d.path("objects", key))
	if err != nil {
		return nil, Info{}, d.notFound(key, err)
	}
	info, err := d.info(f, key)
	if err != nil {
		f.Close()
		return nil, Info{}, err
	}
	return f, info, nil
}

// GetObject opens the object at key whatever its sidecar says. Put renames
// the object into place before its sidecar, so a crash between the two
// leaves a whole object, the new one, beside the previous one's sidecar,
// which Get reports as ErrCorrupt (its size no longer matches). A reader
// whose objects check themselves and carry no metadata (the snapshot
// records, JSON) reads such an object with GetObject.
func (d *Dir) GetObject(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := ValidateKey(key); err != nil {
		return nil, err
	}
	l := d.keyLock(key)
	l.RLock()
	defer l.RUnlock()
	f, err := os.Open(d.path("objects", key))
	if err != nil {
		return nil, d.notFound(key, err)
	}
	return f, nil
}

// Stat implements Store.
func (d *Dir) Stat(ctx context.Context, key string) (Info, error) {
	if err := ValidateKey(key); err != nil {
		return Info{}, err
	}
	l := d.keyLock(key)
	l.RLock()
	defer l.RUnlock()
	f, err := os.Open(d.path("objects", key))
	if err != nil {
		return Info{}, d.notFound(key, err)
	}
	defer f.Close()
	return d.info(f, key)
}

// info pairs an open object with its sidecar.
func (d *Dir) info(f *os.File, key string) (Info, error) {
	st, err := f.Stat()
	if err != nil {
		return Info{}, fmt.Errorf("s3store: stat %s: %w", key, err)
	}
	if !st.Mode().IsRegular() {
		return Info{}, fmt.Errorf("s3store: %s: %w", key, ErrNotFound)
	}
	info := Info{Key: key, Size: st.Size(), Modified: st.ModTime(), Metadata: map[string]string{}}
	raw, err := os.ReadFile(d.path("meta", key))
	if errors.Is(err, fs.ErrNotExist) {
		// An object copied in by hand has no sidecar: it has no metadata.
		return info, nil
	}
	if err != nil {
		return Info{}, fmt.Errorf("s3store: %s: metadata: %w", key, err)
	}
	var sc sidecar
	if err := json.Unmarshal(raw, &sc); err != nil {
		return Info{}, fmt.Errorf("s3store: %s: metadata: %w: %v", key, ErrCorrupt, err)
	}
	if sc.Size != st.Size() {
		return Info{}, fmt.Errorf("s3store: %s: %w: metadata is for a %d-byte object, the object has %d (a put was interrupted?)",
			key, ErrCorrupt, sc.Size, st.Size())
	}
	info.Metadata = cloneMeta(sc.Metadata)
	return info, nil
}

func (d *Dir) notFound(key string, err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return fmt.Errorf("s3store: %s: %w", key, ErrNotFound)
	}
	return fmt.Errorf("s3store: %s: %w", key, err)
}

// Delete implements Store. It removes the object, then its sidecar, then
// the parent directories the key left empty, so that a later key may use
// the freed name.
func (d *Dir) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	l := d.keyLock(key)
	l.Lock()
	defer l.Unlock()
	dataPath := d.path("objects", key)
	if st, err := os.Lstat(dataPath); err != nil || !st.Mode().IsRegular() {
		if err == nil {
			err = fs.ErrNotExist
		}
		return d.notFound(key, err)
	}
	if err := os.Remove(dataPath); err != nil {
		return d.notFound(key, err)
	}
	if err := os.Remove(d.path("meta", key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("s3store: delete %s: metadata: %w", key, err)
	}
	d.prune("objects", key)
	d.prune("meta", key)
	return nil
}

// prune removes key's parent directories up to the tree root while they are
// empty; os.Remove refuses a non-empty one, which ends the walk.
func (d *Dir) prune(tree, key string) {
	top := filepath.Join(d.root, tree)
	for dir := filepath.Dir(d.path(tree, key)); dir != top && strings.HasPrefix(dir, top); dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil {
			return
		}
	}
}

// List implements Store. It walks only the directory the prefix names, not
// the whole tree.
func (d *Dir) List(ctx context.Context, prefix string) ([]Info, error) {
	if err := validatePrefix(prefix); err != nil {
		return nil, err
	}
	top := filepath.Join(d.root, "objects")
	start := top
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		start = d.path("objects", prefix[:i])
	}
	var out []Info
	err := filepath.WalkDir(start, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
				return nil // the prefix's directory is absent, or vanished mid-walk
			}
			return err
		}
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		rel, rerr := filepath.Rel(top, p)
		if rerr != nil || rel == "." {
			return nil
		}
		key := filepath.ToSlash(rel)
		if e.IsDir() {
			// Skip directories that cannot hold a match: neither a prefix of
			// the prefix nor under it.
			if !strings.HasPrefix(key+"/", prefix) && !strings.HasPrefix(prefix, key+"/") {
				return filepath.SkipDir
			}
			return nil
		}
		if !e.Type().IsRegular() || !strings.HasPrefix(key, prefix) || ValidateKey(key) != nil {
			return nil
		}
		st, serr := e.Info()
		if serr != nil {
			return nil // deleted mid-walk
		}
		out = append(out, Info{Key: key, Size: st.Size(), Modified: st.ModTime()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("s3store: list %q: %w", prefix, err)
	}
	// WalkDir's order is per directory ("a/b" before "a-c" is not byte
	// order); sort to match S3.
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

var _ Store = (*Dir)(nil)
