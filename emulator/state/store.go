package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/elasticache-local/elasticache-local/engine/atomicfile"
)

// Store keeps the state files of every scope in one directory.
type Store struct {
	dir string
}

// CorruptError is a state file that cannot be used: unreadable, not JSON,
// truncated, of another format or version, or naming another scope.
type CorruptError struct {
	Path string
	Err  error
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("state file %s cannot be used: %v", e.Path, e.Err)
}

func (e *CorruptError) Unwrap() error { return e.Err }

// tempPrefix starts the name of a file being written; one left by a crash
// is removed by Open.
const tempPrefix = atomicfile.TempPrefix

// Open returns the store in dir, creating the directory (private to the
// user) if needed and removing temporary files a crash left mid-write.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	for _, ent := range ents {
		if strings.HasPrefix(ent.Name(), tempPrefix) {
			if err := os.Remove(filepath.Join(dir, ent.Name())); err != nil {
				return nil, fmt.Errorf("state: removing a temporary file: %w", err)
			}
		}
	}
	return &Store{dir: dir}, nil
}

// Dir is the directory of the state files.
func (s *Store) Dir() string { return s.dir }

var (
	accountPattern = regexp.MustCompile(`^[0-9]{12}$`)
	regionPattern  = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
)

// Path is the file of a scope. Account and region were validated by the
// API; they are checked again here because they name a file.
func (s *Store) Path(sc Scope) (string, error) {
	if !accountPattern.MatchString(sc.Account) || !regionPattern.MatchString(sc.Region) {
		return "", fmt.Errorf("state: %q/%q is not an account id and region", sc.Account, sc.Region)
	}
	return filepath.Join(s.dir, sc.Account+"-"+sc.Region+".json"), nil
}

// Load reads every scope's file, sorted by account then region. Any file
// that cannot be used stops the load with a *CorruptError naming it; no
// file is changed.
func (s *Store) Load() ([]Region, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	var out []Region
	for _, ent := range ents {
		name := ent.Name()
		if strings.HasPrefix(name, tempPrefix) || !strings.HasSuffix(name, ".json") {
			continue
		}
		path := filepath.Join(s.dir, name)
		rec, err := readRegion(path)
		if err != nil {
			return nil, &CorruptError{Path: path, Err: err}
		}
		if want, _ := s.Path(rec.Scope); want != path {
			return nil, &CorruptError{Path: path, Err: fmt.Errorf("it holds the state of %s in %s, which belongs in %s", rec.Account, rec.Region, filepath.Base(want))}
		}
		out = append(out, rec)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Account != out[j].Account {
			return out[i].Account < out[j].Account
		}
		return out[i].Region < out[j].Region
	})
	return out, nil
}

func readRegion(path string) (Region, error) {
	var rec Region
	b, err := os.ReadFile(path)
	if err != nil {
		return rec, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rec); err != nil {
		return rec, fmt.Errorf("not a complete state record (%v)", err)
	}
	if dec.More() {
		return rec, errors.New("data after the state record")
	}
	switch {
	case rec.Format != Format:
		return rec, fmt.Errorf("format %q, expected %q", rec.Format, Format)
	case rec.Version != Version:
		return rec, fmt.Errorf("version %d, this build reads version %d", rec.Version, Version)
	}
	return rec, nil
}

// Save writes a scope's records crash-safely: the previous file stays until
// the new one is complete on disk and replaces it in one rename.
func (s *Store) Save(rec *Region) error {
	b, err := Encode(rec)
	if err != nil {
		return err
	}
	return s.WriteEncoded(rec.Scope, b)
}

// Remove deletes every state file (a fresh start).
func (s *Store) Remove() error {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	for _, ent := range ents {
		if strings.HasSuffix(ent.Name(), ".json") {
			if err := os.Remove(filepath.Join(s.dir, ent.Name())); err != nil {
				return fmt.Errorf("state: %w", err)
			}
		}
	}
	return atomicfile.SyncDir(s.dir)
}

// Encode returns the file content of a scope's records; WriteEncoded
// writes it. They split Save so a caller can skip writing content that did
// not change.
func Encode(rec *Region) ([]byte, error) {
	rec.Format, rec.Version = Format, Version
	// Compact: a scope at the node quota encodes in a fifth of the time and
	// three quarters of the space of an indented file
	// (BenchmarkEncodeQuotaRegion); jq shows it.
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	return append(b, '\n'), nil
}

// WriteEncoded writes content from Encode as the file of scope sc,
// crash-safely.
func (s *Store) WriteEncoded(sc Scope, content []byte) error {
	path, err := s.Path(sc)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(path, bytes.NewReader(content)); err != nil {
		return fmt.Errorf("state: writing %s: %w", path, err)
	}
	return nil
}
