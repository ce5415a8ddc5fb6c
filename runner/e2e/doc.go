// Package e2e holds the end-to-end tests: they start the real binaries from
// bin/ (ours, and Pushpin 1.36's from Debian's package for interop) on
// ephemeral ports and temp dirs, and talk to them over loopback with real
// HTTP clients and ZeroMQ sockets.
package e2e
