// Package proxy emulates the stable DNS endpoints of an ElastiCache
// replication group (PrimaryEndpoint, ReaderEndpoint) with one TCP forwarder
// per endpoint.
//
// On AWS those endpoints are DNS names that never change: a failover flips the
// record to the new primary and ElastiCache closes the connections to the old
// one, so clients reconnect and land on the new node. Locally a Proxy listens
// on a fixed address and forwards every accepted connection to one of its
// backends:
//
//   - New connections are spread round-robin over the backends (a reader
//     endpoint has one per replica, a primary endpoint has exactly one). A
//     backend that refuses the dial is skipped; when no backend is set or none
//     answers, the client connection is closed at once, like a DNS record that
//     points to a dead node, and the client's own retry logic takes over; with
//     Options.ParkFor a connection accepted while no backend is set waits for
//     one instead (a failover in progress), up to that long.
//
//   - SetBackends replaces the set atomically. Connections whose backend left
//     the set are closed on both sides immediately (the DNS flip plus the
//     server closing its client connections); connections to backends that
//     stayed are left alone, so calling it with an unchanged set is a no-op.
//
// The data path is meant to cost next to nothing next to redis-server itself:
// bytes move with io.Copy between two *net.TCPConn, which on Linux ends in
// (*net.TCPConn).ReadFrom and splice(2), so payloads never enter user space;
// there is no per-byte work, no wrapper type that would hide ReadFrom, and no
// lock on the data path (locks are taken once per connection, to register and
// unregister it). Each forwarded connection costs two goroutines and two
// splice pipes. A half-close (FIN) on one side is passed on with CloseWrite,
// so a client that shuts down its write side still receives the rest of the
// replies; an error on either side closes both.
//
// Close stops listening, closes every connection and returns once every
// goroutine of the proxy has exited.
package proxy
