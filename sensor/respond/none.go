package respond

import (
	"context"
	"net/netip"
	"time"
)

// noneBackend is the dry run: it holds nothing and changes nothing. The
// responder never calls Add on it (a dry run stops at the decision); it
// exists so that every code path has a backend to name and close.
type noneBackend struct{}

func (noneBackend) Name() string                                         { return "none" }
func (noneBackend) Ensure(context.Context) error                         { return nil }
func (noneBackend) Add(context.Context, netip.Addr, time.Duration) error { return nil }
func (noneBackend) Remove(context.Context, netip.Addr) error             { return nil }
func (noneBackend) List(context.Context) ([]Entry, error)                { return nil, nil }
func (noneBackend) Flush(context.Context) error                          { return nil }
func (noneBackend) Close() error                                         { return nil }
