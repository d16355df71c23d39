package process

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/elasticache-local/elasticache-local/engine"
)

// File names inside a node directory (DataDir/nodes/<name>/).
const (
	labelFileName = "node.json"
	confFileName  = "redis.conf"
	logFileName   = "redis.log"
	rdbFileName   = "dump.rdb" // the server's default dbfilename
)

// label is the content of node.json, the runtime's record of a node. It is
// the source of truth for Inspect, List and Reap, also across emulator runs.
type label struct {
	Name       string            `json:"name"`
	EmulatorID string            `json:"emulatorId"`
	Labels     map[string]string `json:"labels,omitempty"`
	// PID is 0 from the label's first write, before the server starts,
	// until its pid is recorded right after (see reap.go for a run killed
	// in between).
	PID           int           `json:"pid"`
	Endpoint      endpointJSON  `json:"endpoint"`
	ReplicaOf     *endpointJSON `json:"replicaOf,omitempty"`
	Engine        string        `json:"engine,omitempty"`
	EngineVersion string        `json:"engineVersion,omitempty"`
	Binary        string        `json:"binary"`
	ServerVersion string        `json:"serverVersion,omitempty"`
	ConfigPath    string        `json:"configPath"`
	StartedAt     time.Time     `json:"startedAt"`
	// Kept marks the node's dump.rdb as its kept data: set by Suspend before
	// SHUTDOWN SAVE, and by a Start with Resume until its server answers
	// (so a Start that fails or is cut short keeps the data for the next
	// try). A dump.rdb without it (a snapshot's SAVE, say) is never resumed.
	Kept bool `json:"kept,omitempty"`
	// Paused is set by Pause and cleared by Resume. The kernel continues
	// a paused node when the emulator dies (setProcAttrs): Adopt stops it
	// again.
	Paused bool `json:"paused,omitempty"`
}

type endpointJSON struct {
	Host string `json:"host"`
	Port int    `json:"port"`
}

func toJSONEndpoint(ep engine.Endpoint) endpointJSON { return endpointJSON(ep) }

func (e endpointJSON) endpoint() engine.Endpoint { return engine.Endpoint(e) }

// readLabel reads dir/node.json; a missing file gives an error wrapping
// fs.ErrNotExist.
func readLabel(dir string) (label, error) {
	var l label
	b, err := os.ReadFile(filepath.Join(dir, labelFileName))
	if err != nil {
		return l, err
	}
	if err := json.Unmarshal(b, &l); err != nil {
		return l, fmt.Errorf("engine/process: %s: %w", filepath.Join(dir, labelFileName), err)
	}
	return l, nil
}

// writeLabel replaces dir/node.json atomically, so readers never see a
// partial file.
func writeLabel(dir string, l label) error {
	b, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, labelFileName+".tmp*")
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), filepath.Join(dir, labelFileName)); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}

func (l label) node(running bool) engine.Node {
	n := engine.Node{
		Name:     l.Name,
		Endpoint: l.Endpoint.endpoint(),
		Labels:   maps.Clone(l.Labels),
		Running:  running,
		PID:      l.PID,
		Paused:   running && processStopped(l.PID),
		HasData:  !running && l.hasKeptData(),
	}
	if l.PID > 0 {
		n.ID = strconv.Itoa(l.PID)
	}
	return n
}

// hasKeptData reports whether the node's directory holds data Suspend kept.
func (l label) hasKeptData() bool {
	if !l.Kept || l.ConfigPath == "" {
		return false
	}
	fi, err := os.Stat(filepath.Join(filepath.Dir(l.ConfigPath), rdbFileName))
	return err == nil && fi.Mode().IsRegular()
}
