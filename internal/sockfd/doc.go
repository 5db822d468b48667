// Package sockfd takes a socket out of the Go runtime's hands, for code that
// waits on it in an epoll of its own: realnet's event loops and cmd/bench's
// load generator. It has code on Linux only.
package sockfd
