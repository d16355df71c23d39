// Command elasticache-local serves the Amazon ElastiCache API on a local
// endpoint, backed by real redis-server nodes.
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/elasticache-local/elasticache-local/emulator"
	"github.com/elasticache-local/elasticache-local/queryapi"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "version" {
		fmt.Println(versionLine())
		return
	}
	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
		// For container health checks: the image has no shell or curl.
		if err := healthcheck(env("LISTEN", emulator.DefaultListen)); err != nil {
			fmt.Fprintln(os.Stderr, "elasticache-local healthcheck:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "elasticache-local:", err)
		os.Exit(1)
	}
}

// healthcheck asks a running emulator listening on listen whether it is ready.
func healthcheck(listen string) error {
	if _, _, err := net.SplitHostPort(listen); err != nil {
		return err
	}
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + clientAddress(listen) + emulator.HealthPath)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

// env returns ELASTICACHE_LOCAL_<NAME> or def.
func env(name, def string) string {
	if v, ok := os.LookupEnv("ELASTICACHE_LOCAL_" + name); ok {
		return v
	}
	return def
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(env(name, "")); err == nil {
		return v
	}
	return def
}

func envBool(name string) bool {
	v, err := strconv.ParseBool(env(name, "false"))
	return err == nil && v
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(env(name, "")); err == nil {
		return v
	}
	return def
}

func run(args []string) error {
	fs := flag.NewFlagSet("elasticache-local", flag.ContinueOnError)
	var cfg emulator.Config
	var logLevel string
	version := fs.Bool("version", false, "print the version, the ElastiCache API version and the Go version it was built with, and exit")
	fs.StringVar(&cfg.Listen, "listen", env("LISTEN", emulator.DefaultListen), "API listen address (env ELASTICACHE_LOCAL_LISTEN); loopback unless told otherwise")
	fs.StringVar(&cfg.DataDir, "data-dir", env("DATA_DIR", emulator.DefaultDataDir()), "directory for node data (env ELASTICACHE_LOCAL_DATA_DIR)")
	fs.BoolVar(&cfg.Fresh, "fresh", envBool("FRESH"), "start from an empty state: forget every resource an earlier run on --data-dir recorded and remove its nodes; snapshots stay in the snapshot store (env ELASTICACHE_LOCAL_FRESH=true). Without it a start brings back every resource, node and key of the last run")
	fs.StringVar(&cfg.Runtime, "runtime", env("RUNTIME", "process"), "node runtime: process (local redis-server processes) or docker (a container per node) (env ELASTICACHE_LOCAL_RUNTIME)")
	var images string
	fs.StringVar(&cfg.RedisServer, "redis-server", env("REDIS_SERVER", ""), "process runtime: the redis-server binary (a path, or a name on PATH; default redis-server), e.g. the one scripts/build-redis-jemalloc builds for activedefrag (env ELASTICACHE_LOCAL_REDIS_SERVER)")
	fs.StringVar(&images, "images", env("IMAGES", ""), "docker runtime images, e.g. redis=redis:7.2,valkey=valkey/valkey:8.1,redis:6.2=redis:6.2 (env ELASTICACHE_LOCAL_IMAGES)")
	fs.StringVar(&cfg.DockerNetwork, "docker-network", env("DOCKER_NETWORK", "auto"), "docker runtime: host (nodes on the host's network, listening on their endpoints), bridge (a bridge network, ports published) or auto (host with a local Linux daemon, else bridge) (env ELASTICACHE_LOCAL_DOCKER_NETWORK)")
	fs.StringVar(&cfg.Region, "region", env("REGION", emulator.DefaultRegion), "region for unsigned requests (env ELASTICACHE_LOCAL_REGION)")
	fs.StringVar(&cfg.AccountID, "account-id", env("ACCOUNT_ID", emulator.DefaultAccountID), "account id for requests whose access key is not a 12-digit account id (env ELASTICACHE_LOCAL_ACCOUNT_ID)")
	fs.StringVar(&cfg.AddressBase, "node-address-base", env("NODE_ADDRESS_BASE", ""), "first loopback address given to nodes, each node gets its own (env ELASTICACHE_LOCAL_NODE_ADDRESS_BASE; default 127.0.0.2)")
	fs.DurationVar(&cfg.HealthInterval, "health-interval", envDuration("HEALTH_INTERVAL", emulator.DefaultHealthInterval), "how often the health monitor runs: a failing node is PINGed every interval, one that answers every 10 intervals (env ELASTICACHE_LOCAL_HEALTH_INTERVAL)")
	fs.IntVar(&cfg.HealthMisses, "health-misses", envInt("HEALTH_MISSES", emulator.DefaultHealthMisses), "failed checks in a row that mark a hung node down and trigger failover/repair; a crashed node is down at its first failed check (env ELASTICACHE_LOCAL_HEALTH_MISSES)")
	fs.DurationVar(&cfg.ReaderEndpointRotation, "reader-endpoint-rotation", envDuration("READER_ENDPOINT_ROTATION", emulator.DefaultReaderEndpointRotation), "how long a reader endpoint stays on one healthy replica before moving on to the next (once that replica accepted a connection since; while nobody connects, the check backs off to every 8 rotations), like a short DNS TTL; new connections land on the replica it is on, existing ones stay (env ELASTICACHE_LOCAL_READER_ENDPOINT_ROTATION)")
	fs.IntVar(&cfg.NodeQuota, "node-quota", envInt("NODE_QUOTA", emulator.DefaultNodeQuota), "cache nodes allowed per account and region, AWS's default quota; creates and replica increases past it answer NodeQuotaForCustomerExceeded (env ELASTICACHE_LOCAL_NODE_QUOTA)")
	fs.IntVar(&cfg.ClusterNodeQuota, "cluster-node-quota", envInt("CLUSTER_NODE_QUOTA", emulator.DefaultClusterNodeQuota), "nodes allowed in one cluster-mode replication group, AWS's default quota; past it NodeQuotaForClusterExceeded (env ELASTICACHE_LOCAL_CLUSTER_NODE_QUOTA)")
	fs.IntVar(&cfg.MemcachedNodeQuota, "memcached-node-quota", envInt("MEMCACHED_NODE_QUOTA", emulator.DefaultMemcachedNodeQuota), "nodes allowed in one Memcached cluster, AWS's default quota; past it NodeQuotaForClusterExceeded (env ELASTICACHE_LOCAL_MEMCACHED_NODE_QUOTA)")
	fs.IntVar(&cfg.TestFailoverQuota, "test-failover-quota", envInt("TEST_FAILOVER_QUOTA", emulator.DefaultTestFailoverQuota), "TestFailover calls allowed per account and region in a rolling 24 hours (env ELASTICACHE_LOCAL_TEST_FAILOVER_QUOTA)")
	fs.StringVar(&cfg.SnapshotDir, "snapshot-dir", env("SNAPSHOT_DIR", ""), "directory for snapshots when no --snapshot-bucket is set (env ELASTICACHE_LOCAL_SNAPSHOT_DIR; default <data-dir>/snapshots)")
	fs.StringVar(&cfg.SnapshotBucket, "snapshot-bucket", env("SNAPSHOT_BUCKET", ""), "store snapshots in this S3 bucket on --s3-endpoint, created if missing (env ELASTICACHE_LOCAL_SNAPSHOT_BUCKET)")
	fs.StringVar(&cfg.S3Endpoint, "s3-endpoint", env("S3_ENDPOINT", ""), "S3/MinIO endpoint, host:port or URL, for --snapshot-bucket, CopySnapshot TargetBucket and SnapshotArns (env ELASTICACHE_LOCAL_S3_ENDPOINT)")
	fs.StringVar(&cfg.S3AccessKey, "s3-access-key", env("S3_ACCESS_KEY", ""), "S3 access key (env ELASTICACHE_LOCAL_S3_ACCESS_KEY)")
	fs.StringVar(&cfg.S3SecretKey, "s3-secret-key", env("S3_SECRET_KEY", ""), "S3 secret key (env ELASTICACHE_LOCAL_S3_SECRET_KEY)")
	fs.StringVar(&cfg.S3Region, "s3-region", env("S3_REGION", "us-east-1"), "S3 signing region (env ELASTICACHE_LOCAL_S3_REGION)")
	var allowedOrigins, allowedHosts string
	fs.StringVar(&allowedOrigins, "allowed-origins", env("ALLOWED_ORIGINS", ""), "comma-separated web origins (scheme://host[:port]) whose pages may call the API, * for any; requests from other pages are refused (env ELASTICACHE_LOCAL_ALLOWED_ORIGINS)")
	fs.StringVar(&allowedHosts, "allowed-hosts", env("ALLOWED_HOSTS", ""), "comma-separated host names requests may be addressed to besides localhost, loopback addresses and the listen address, e.g. a docker-compose service name; * for any (env ELASTICACHE_LOCAL_ALLOWED_HOSTS)")
	fs.IntVar(&cfg.MaxConnections, "max-connections", envInt("MAX_CONNECTIONS", emulator.DefaultMaxConnections), "API connections open at once; connections past it are closed at once (env ELASTICACHE_LOCAL_MAX_CONNECTIONS)")
	var credentials string
	fs.StringVar(&credentials, "credentials", "", "access keys whose SigV4 signatures the API accepts, AKID:SECRET[,AKID2:SECRET2]; when set every API request must be signed with one of them. Prefer the environment variable (env ELASTICACHE_LOCAL_CREDENTIALS), which other users' ps does not show; none (the default) accepts unsigned requests")
	fs.StringVar(&cfg.AdminAPI, "admin-api", env("ADMIN_API", emulator.AdminAPILoopback), "who may use the admin API (/_elasticache/nodes: kill, pause, resume nodes) and the web console (/_elasticache/console/), which --credentials does not cover: loopback (clients on this machine), any, or off (404) (env ELASTICACHE_LOCAL_ADMIN_API)")
	var shutdownTimeout time.Duration
	fs.DurationVar(&shutdownTimeout, "shutdown-timeout", envDuration("SHUTDOWN_TIMEOUT", emulator.DefaultShutdownTimeout), "how long SIGTERM/SIGINT may take to save every node's data and stop it; nodes still saving then are killed and restart empty (env ELASTICACHE_LOCAL_SHUTDOWN_TIMEOUT)")
	fs.StringVar(&logLevel, "log-level", env("LOG_LEVEL", "info"), "debug, info, warn or error (env ELASTICACHE_LOCAL_LOG_LEVEL)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: elasticache-local [flags]\n       elasticache-local healthcheck   (exit 0 when the emulator at $ELASTICACHE_LOCAL_LISTEN is ready)\n       elasticache-local version       (same as --version)\n\nServes the Amazon ElastiCache API (%s) with real redis-server nodes.\n\nFlags:\n", queryapi.APIVersion)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return nil
		}
		return err
	}
	if *version {
		fmt.Println(versionLine())
		return nil
	}
	if v, ok := os.LookupEnv("ELASTICACHE_LOCAL_FRESH"); ok {
		// A typo must not keep (or forget) state the user meant otherwise.
		if _, err := strconv.ParseBool(v); err != nil {
			return fmt.Errorf("ELASTICACHE_LOCAL_FRESH=%q is not true or false", v)
		}
	}
	if images != "" {
		cfg.Images = map[string]string{}
		for _, kv := range strings.Split(images, ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" || v == "" {
				return fmt.Errorf("--images: %q is not engine=image", kv)
			}
			cfg.Images[k] = v
		}
	}
	cfg.AllowedOrigins, cfg.AllowedHosts = splitList(allowedOrigins), splitList(allowedHosts)
	if credentials == "" {
		// Read here rather than as the flag's default, so --help never
		// prints the secrets.
		credentials = env("CREDENTIALS", "")
	}
	creds, err := parseCredentials(credentials)
	if err != nil {
		return err
	}
	cfg.Credentials = creds
	if cfg.MaxConnections < 1 {
		return fmt.Errorf("--max-connections: %d is not a positive number", cfg.MaxConnections)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(strings.ToUpper(logLevel))); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := emulator.Start(ctx, cfg)
	if err != nil {
		return explainStartError(err, cfg)
	}
	if len(cfg.Credentials) > 0 {
		keys := make([]string, 0, len(cfg.Credentials))
		for k := range cfg.Credentials {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		cfg.Logger.Info("API requests must be signed (SigV4) with one of the access keys", "accessKeys", strings.Join(keys, ","))
	}
	cfg.Logger.Info("try it", "command", firstCommand(srv.URL(), cmp.Or(cfg.Region, emulator.DefaultRegion), len(cfg.Credentials) > 0))
	<-ctx.Done()
	cfg.Logger.Info("shutting down: saving every node's data and stopping it; the next start brings them back")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	return srv.Shutdown(shutdownCtx)
}

// parseCredentials reads AKID:SECRET[,AKID2:SECRET2] into access key id →
// secret. Secrets may hold ':' (only the first one splits); a key given
// twice is a mistake, not a rotation.
func parseCredentials(v string) (map[string]string, error) {
	items := splitList(v)
	if len(items) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(items))
	for _, item := range items {
		key, secret, ok := strings.Cut(item, ":")
		key, secret = strings.TrimSpace(key), strings.TrimSpace(secret)
		switch {
		case !ok || key == "" || secret == "":
			// The item may hold a secret: name the position, not the text.
			return nil, fmt.Errorf("--credentials: item %d is not ACCESS_KEY_ID:SECRET_ACCESS_KEY", len(out)+1)
		case out[key] != "":
			return nil, fmt.Errorf("--credentials: access key %s is given twice", key)
		}
		out[key] = secret
	}
	return out, nil
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
