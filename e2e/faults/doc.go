// Package faults is the fault-injection suite: it drives the real sensor
// and relay binaries (built into a temporary directory) through the faults
// that used to lose or repeat incidents - SIGKILLs mid-burst, torn journal
// lines, corrupt cursors, full disks on small tmpfs mounts, clocks stepped
// back across midnight, rotation edge cases - and checks exact counts:
// incidents written, delivered exactly once, lost and duplicated, read back
// from the relay.
//
// Each case calls record once with its counts; TestMain prints one summary
// line at the end of the run:
//
//	faults: N cases, W incidents written, D delivered exactly once, L lost, X duplicated
//
// Cases that mount tmpfs need root and skip with a message saying so; CI
// runs the suite as root so nothing is skipped there. Cases that need a
// clock run the packages in process with an injected clock rather than
// faking time inside the binaries.
//
// The suite builds both binaries from this tree once per run. With
// ATTACKMAP_FAULTS_BIN=DIR it runs the attackmap-sensor and attackmap-relay
// found in DIR instead, e.g. to check that each case fails on an older
// build.
package faults
