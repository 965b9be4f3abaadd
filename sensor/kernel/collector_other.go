//go:build !linux

package kernel

import (
	"context"
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/attackmap/attackmap/sensor/event"
)

// errNotLinux is the answer of every entry point off Linux.
var errNotLinux = errors.New("kernel: eBPF collectors need Linux")

// Available reports that the eBPF collectors need Linux.
func Available() error { return errNotLinux }

// Collector is the Linux eBPF collector; off Linux it cannot be started.
type Collector struct{}

// Start fails off Linux.
func Start(Config) (*Collector, error) { return nil, errNotLinux }

// Net returns nil off Linux.
func (c *Collector) Net() <-chan event.Event { return nil }

// Proc returns nil off Linux.
func (c *Collector) Proc() <-chan event.Event { return nil }

// Run fails off Linux.
func (c *Collector) Run(context.Context) error { return errNotLinux }

// Drops returns zeros off Linux.
func (c *Collector) Drops() (kernel, user uint64) { return 0, 0 }

// Register does nothing off Linux.
func (c *Collector) Register(prometheus.Registerer) error { return nil }
