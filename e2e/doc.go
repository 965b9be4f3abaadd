// Package e2e holds the end-to-end test of the whole path: the drill attacks
// this machine for real (a real sshd, a port scan seen by eBPF, a web scan
// and login stuffing against a server writing a real access log), the
// sensor (eBPF and log collectors, detectors, journal, cursor, enrichment)
// delivers to the relay inside it, and headless Chromium shows the map.
// It also measures the latency from the line or kernel event that completed
// a detection to the browser's EventSource message. The test needs root
// and Debian's chromium and openssh-server; .ci/run installs them.
package e2e
