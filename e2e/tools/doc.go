// Package tools holds the end-to-end test that attacks this machine with
// the real tools attackers use (hydra, medusa, ncrack, patator, nmap,
// sqlmap, wapiti, gobuster, ffuf, dirb, wfuzz, whatweb) against a real
// OpenSSH server and Debian's nginx on loopback, and checks that the real
// sensor binary, reading their logs, raises the incident each attack
// deserves and none for a normal visitor and a normal SSH login.
//
// Every tool comes from its own 127.20.0.x address: tools that can bind a
// source address do so, the others run as their own system user whose
// loopback connections an nftables rule rewrites to that address (snat by
// socket owner). The test needs root and the Debian packages .ci/run
// installs (the tools, nginx, nftables, openssh-server, sshpass); a missing
// tool skips only its own attack.
//
// Run it with
//
//	go test -count=1 -v -run . ./e2e/tools/ -timeout 10m
//
// The log shows one row per attack: its address, how the tool run went,
// the log lines and sensor events from its address and the incidents
// raised for it; a missing incident also says where the chain broke (no
// line, a line the parser did not understand, or no detector). Two
// environment variables help when working on it: ATTACKMAP_SENSOR names a
// prebuilt sensor binary to test instead of building this tree's, and
// ATTACKMAP_KEEP keeps the work directory (logs, journals, tool output).
package tools
