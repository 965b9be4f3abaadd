//go:build !linux

package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "benchxdp: XDP needs Linux")
	os.Exit(1)
}
