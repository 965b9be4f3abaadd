//go:build !race

package webrule

const raceEnabled = false
