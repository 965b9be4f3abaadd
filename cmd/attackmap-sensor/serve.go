package main

import (
	"encoding/json"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/relay"
	"github.com/attackmap/attackmap/sensor/daemon"
	"github.com/attackmap/attackmap/static"
)

// embedRelay builds the relay `run --serve` embeds: the real relay with the
// map's static site, on the sensor's registry. It lives here, above both
// the sensor and the relay, so that package daemon does not import the
// relay (see daemon.Embedded).
func embedRelay(c daemon.EmbedConfig) (daemon.Embedded, error) {
	r, err := relay.New(relay.Config{
		DataDir:      c.DataDir,
		TokenFile:    c.TokenFile,
		AllowOrigins: c.AllowOrigins,
		Site:         static.Handler(),
		Registry:     c.Registry,
		Logger:       c.Logger,
		// The store syncs in the background every c.SyncInterval
		// (daemon.EmbedSyncInterval) instead of once per message: the
		// sensor's journal is the durable record, and the sensor's
		// cursor for this relay trails its acks by a few intervals.
		// Close syncs the store, so what was acknowledged before a
		// clean stop is on disk.
		NATSSyncInterval: c.SyncInterval,
	})
	if err != nil {
		return nil, err
	}
	if !static.Built() {
		// Said once at start: the relay works, but /live only explains
		// how to build the map (a binary built before `make static`).
		c.Logger.Warn("the map is not built into this binary: /live shows a placeholder; run make static and rebuild")
	}
	return embeddedRelay{Relay: r, host: relay.Host{Name: c.Host, Target: c.Target}}, nil
}

// embeddedRelay binds the relay to this sensor's host for PublishDurable.
type embeddedRelay struct {
	*relay.Relay
	host relay.Host
}

// PublishDurable stores this sensor's incidents under its own host.
func (e embeddedRelay) PublishDurable(batch []json.RawMessage) (incident.Ack, error) {
	return e.Relay.PublishDurable(e.host, batch)
}
