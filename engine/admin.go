package engine

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/elasticache-local/elasticache-local/engine/atomicfile"
)

// AdminUser is the name of the ACL user every node has for the emulator
// itself. Users of a node may change or disable its default user (CONFIG SET
// requirepass, ACL SETUSER default off); the control plane's connections and
// replication keep working because they never use it.
const AdminUser = "elasticache-local"

// Admin is how the control plane reaches nodes: every connection opened by
// its methods authenticates as AdminUser with the runtime's secret password.
// The zero value opens unauthenticated connections (the default user), which
// suits a node without the admin user only.
//
// A runtime gets one through its options (the emulator's from LoadAdmin,
// else NewAdmin), configures every node it starts with
// ServerDirectives and reports it through Runtime.Admin, so the credentials
// reach the node operations without any global state.
//
// Copies of one Admin share its TLS registry (see WithCA and UseTLS): the
// endpoints of TLS nodes, which its connections reach over TLS.
type Admin struct {
	user, password string
	// roots are the CAs TLS connections trust (WithCA); nil: the system's.
	roots *x509.CertPool
	// tls is the registry of TLS endpoints, shared by copies; nil only in
	// an Admin not made by NewAdmin, LoadAdmin or WithCA.
	tls *tlsRegistry
}

// NewAdmin returns credentials for AdminUser with a fresh random password,
// held in memory only. Nodes started with them can be reached by this run
// alone: the emulator uses LoadAdmin instead, so that the next run reaches
// the nodes it adopts; NewAdmin suits runtimes whose nodes do not outlive
// them (unit tests) and is what LoadAdmin stores on first use.
func NewAdmin() (Admin, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return Admin{}, fmt.Errorf("engine: generating the admin password: %w", err)
	}
	return Admin{user: AdminUser, password: hex.EncodeToString(b), tls: newTLSRegistry()}, nil
}

// adminFile is the content of the file LoadAdmin keeps the credentials in.
type adminFile struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

// credentialRE restricts the stored user and password to what every node
// configuration (redis.conf arguments, server command lines) carries
// unquoted, so a hand-edited file cannot inject directives.
var credentialRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

// LoadAdmin returns the admin credentials stored in the file at path (mode
// 0600, JSON), creating it with NewAdmin's credentials when it does not
// exist. Nodes outlive the emulator (see Keeper), so every run must
// authenticate with the password the nodes were started with. The file is
// created atomically (a temporary file, synced, then linked or renamed into
// place and the directory synced), so a crash never leaves a partial file
// and two concurrent first calls agree on one password. An existing file
// that cannot be read or does not hold valid credentials is an error naming
// path: replacing it would lock the control plane out of every running node.
func LoadAdmin(path string) (Admin, error) {
	a, err := readAdmin(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return a, err
	}
	fresh, err := NewAdmin()
	if err != nil {
		return Admin{}, err
	}
	if err := createAdminFile(path, fresh); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readAdmin(path) // created concurrently: use that one
		}
		return Admin{}, fmt.Errorf("engine: creating admin credentials %s: %w", path, err)
	}
	return fresh, nil
}

func readAdmin(path string) (Admin, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Admin{}, err
	}
	if err != nil {
		return Admin{}, fmt.Errorf("engine: reading admin credentials %s: %w", path, err)
	}
	var f adminFile
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return Admin{}, fmt.Errorf("engine: admin credentials %s are malformed (restore the file, or remove it together with every node of the data dir): %w", path, err)
	}
	if !credentialRE.MatchString(f.User) || !credentialRE.MatchString(f.Password) || len(f.Password) < 16 {
		return Admin{}, fmt.Errorf("engine: admin credentials %s are malformed: want a user and a password of at least 16 characters among letters, digits, '.', '_' and '-'", path)
	}
	return Admin{user: f.User, password: f.Password, tls: newTLSRegistry()}, nil
}

// createAdminFile writes a to path unless path exists (fs.ErrExist then).
func createAdminFile(path string, a Admin) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	b, err := json.MarshalIndent(adminFile{User: a.user, Password: a.password}, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Create(path, bytes.NewReader(append(b, '\n')))
}

// User returns the ACL user the connections authenticate as ("" for the
// default user).
func (a Admin) User() string { return a.user }

// String and LogValue keep the password out of logs and error messages.
func (a Admin) String() string { return "engine.Admin{user: " + a.user + "}" }

// LogValue implements slog.LogValuer.
func (a Admin) LogValue() slog.Value { return slog.StringValue(a.String()) }

// ServerDirectives are the redis.conf directives (name, then arguments) a
// node needs for Admin to work: the admin user with every permission, and
// the same credentials for a replica's connection to its primary (so a
// password set on the default user does not break replication). Nil for the
// zero Admin. ACL users need Redis 6.0 or later.
func (a Admin) ServerDirectives() [][]string {
	if a.user == "" {
		return nil
	}
	return [][]string{
		{"user", a.user, "on", ">" + a.password, "~*", "+@all"},
		{"masteruser", a.user},
		{"masterauth", a.password},
	}
}

// Options returns go-redis client options for the node at ep that
// authenticate as the admin user over RESP2 without retries, client
// identity or maintenance notifications, with short dial and I/O timeouts
// and context deadlines applied to the socket, over TLS when ep is a TLS
// node's (UseTLS) at the time of the call. Callers keeping a connection
// open (the health monitor) may adjust pool sizes and timeouts.
func (a Admin) Options(ep Endpoint) *redis.Options {
	return &redis.Options{
		Addr:                  ep.Addr(),
		Username:              a.user,
		Password:              a.password,
		Protocol:              2,
		DialTimeout:           dialTimeout,
		ReadTimeout:           ioTimeout,
		WriteTimeout:          ioTimeout,
		ContextTimeoutEnabled: true,
		MaxRetries:            -1,
		// One dial: go-redis otherwise dials up to 5 times, 100 ms apart,
		// so a dead node's refused connection would take 400 ms to say
		// so (the health monitor's check, a failover's release of it).
		DialerRetries:   1,
		PoolSize:        1,
		DisableIdentity: true,
		MaintNotificationsConfig: &maintnotifications.Config{
			Mode: maintnotifications.ModeDisabled,
		},
		TLSConfig: a.tlsConfig(ep),
	}
}

// IsReply reports whether err is a reply of the server (an error reply such
// as BUSY, NOAUTH, WRONGPASS, LOADING or MASTERDOWN, or a nil reply): proof
// that the node is alive even though the command failed. Timeouts, refused
// or reset connections and cancelled contexts are not replies.
func IsReply(err error) bool {
	var rerr redis.Error
	return errors.As(err, &rerr)
}

// Alive checks that the node at ep is alive: it returns nil for any reply
// to PING, including errors (a node busy with a script, loading its data, or
// whose default user a client disabled, is alive), and an error only when
// the connection is refused or reset or nothing answers before ctx is done.
func (a Admin) Alive(ctx context.Context, ep Endpoint) error {
	err := a.Ping(ctx, ep)
	if err != nil && IsReply(err) {
		return nil
	}
	return err
}

// shutdownSaveRecheck is how long SaveAndAwaitExit waits for a node's exit
// after SHUTDOWN SAVE before it checks that the server got the command: a
// server that saves answers nothing until it exits.
const shutdownSaveRecheck = time.Second

// SaveAndAwaitExit sends the node at ep SHUTDOWN SAVE and reports whether it
// exited before ctx is done, as exited (a runtime's wait for its process
// or container, for at most the given time) tells. A save outlasting the
// client's I/O timeout ends in a timeout error, yet the server goes on: its
// exit is what counts. A server that still answers a PING a while after
// the command is not saving (the command never reached it, through a
// failure the admin could not tell from the server's exit) and gets it
// again. A refusal to exit (its save failed) returns false at once, logged.
func (a Admin) SaveAndAwaitExit(ctx context.Context, ep Endpoint, exited func(ctx context.Context, d time.Duration) bool, log *slog.Logger, node string) bool {
	for {
		err := a.ShutdownSave(ctx, ep)
		if err != nil && IsReply(err) {
			log.Warn("node could not save its data; killing it, keeping what it saved before", "node", node, "err", err)
			return false
		}
		for {
			if exited(ctx, shutdownSaveRecheck) {
				return true
			}
			if ctx.Err() != nil {
				return false
			}
			pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			alive := a.Ping(pctx, ep)
			cancel()
			if alive == nil {
				log.Warn("node still answers after SHUTDOWN SAVE; sending it again", "node", node, "err", err)
				break
			}
		}
	}
}

// ShutdownSave asks the node at ep to save its dataset and exit (SHUTDOWN
// SAVE NOW: not waiting for lagging replicas; SHUTDOWN SAVE on servers
// older than 7.0, which know no NOW). It returns nil once the server closed
// the connection, which it does when it exits after the save; an error
// reply means the save failed and the server keeps running. A save longer
// than the client's I/O timeout returns a timeout although the server goes
// on and exits: callers wait for the exit, not for this reply.
func (a Admin) ShutdownSave(ctx context.Context, ep Endpoint) error {
	if a.Memcached(ep) {
		return ErrNoShutdownCommand
	}
	return a.WithClient(ctx, ep, func(ctx context.Context, c *redis.Client) error {
		err := shutdown(ctx, c, "SAVE", "NOW")
		var rerr redis.Error
		if errors.As(err, &rerr) && strings.Contains(strings.ToLower(rerr.Error()), "syntax") {
			err = shutdown(ctx, c, "SAVE")
		}
		return err
	})
}
