// Package integration holds end-to-end tests: the emulator runs in-process
// on a random port with a temporary data dir, driven by the real AWS SDK
// client (and the AWS CLI), with a real Redis client on the endpoints it
// returns. Nothing is mocked.
package integration
