// Package state holds the control plane's persisted records: plain,
// exported values for every resource of one account in one region
// (replication groups and their node groups, cache clusters and their
// nodes, parameter and subnet groups, tags, events, the TestFailover quota
// and the operations still running), and the Store that keeps them on disk.
//
// One file per account+region scope, rewritten whole on every change: the
// new content goes to a temporary file in the same directory, which is
// fsynced, renamed over the old file, and the directory fsynced. rename(2)
// replaces a name atomically, so a kill -9 or a power cut at any instant
// leaves either the previous file or the next one, never a torn mix; the
// fsyncs order the data before the name. This was chosen over an embedded
// database (bbolt) because a scope's records are small (a few hundred KB
// for the 300-node quota), every change touches few of them, and a plain
// JSON file is a mechanism with nothing to recover, that a user can read
// and that needs no dependency. Every file carries a format name and a
// version; a file that is unreadable, truncated, of another format or of a
// version this build does not know is reported as a *CorruptError and left
// untouched, so a start never silently forgets state.
//
// Snapshots are not here: each one keeps its own record beside its RDB
// objects in the snapshot store (a directory or an S3 bucket), so that a
// snapshot survives even a fresh start, as it survives its cluster on AWS.
//
// The package does no locking: the emulator holds one lock per scope while
// it changes a scope's records and writes them after releasing it (Save is
// the only disk work and runs outside every lock).
package state
