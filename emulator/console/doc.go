// Package console is the emulator's web console: one page, served on the
// API port under Path, that shows every account and region's replication
// groups, cache clusters and snapshots with their status, each node's role,
// endpoint, replication offset and lag, memory against maxmemory and keys,
// slots per shard and resharding progress, and the event stream, refreshed
// live by polling; its buttons run TestFailover, CreateSnapshot and the
// admin API's kill, pause and resume of a node.
//
// It reads and acts only through what the API itself runs (Source: the
// typed Describe, TestFailover and CreateSnapshot handlers, and the admin
// API's node inspection), never the records behind them. It is rendered
// on the server with html/template from embedded files; the little
// JavaScript it has (static/console.js) only polls and posts, with no build
// step.
//
// It stands behind the same front door as the API (the emulator refuses
// cross-site requests, foreign Origins and foreign Host names before this
// package sees them) and behind the admin API's gate, since its buttons
// kill nodes: loopback clients only by default, nothing at all with the
// admin API off. Its actions are POSTs that, like the admin API's, need
// the admin header, which no page of another site can send without a
// preflight the front door refuses.
//
// Many nodes stay cheap: a view is built at most once per refreshInterval
// whatever the number of open pages (one shared build, singleflight), each
// node costs one bounded INFO call, and the whole build has a deadline.
package console
