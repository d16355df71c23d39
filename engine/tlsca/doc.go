// Package tlsca is the emulator's own certificate authority for TLS in
// transit: ElastiCache serves TLS with certificates clients verify, so
// every TLS node of elasticache-local gets a server certificate issued by
// one CA per data dir, whose certificate (ca.pem) clients and the control
// plane trust.
//
// LoadOrCreate creates the CA once (ECDSA P-256, self-signed, valid ten
// years) and loads it on every later run, so certificates of nodes that
// outlive a run (engine.Keeper) stay valid and a client configured with
// ca.pem once keeps working. The key never leaves its file (mode 0600).
// Issue signs a certificate for a node's addresses (IP SANs, or DNS SANs
// for names) usable both as a server and as a client certificate: Redis
// presents the same one when it connects to its primary (tls-replication)
// and to its cluster peers (tls-cluster).
package tlsca
