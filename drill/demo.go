package drill

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// DemoTarget is where the drill's sensor says it stands, so the map draws
// arcs from every attacker to it.
const DemoTarget = "Amsterdam"

// DemoFiles are the files of a drill sensor setup in one directory.
type DemoFiles struct {
	Dir       string // the directory
	Config    string // the sensor's JSON configuration
	AuthLog   string // where the drill's sshd lines go and the sensor reads
	AccessLog string // where the drill's web server writes and the sensor reads
	Overlay   string // the drill GeoIP overlay
	DataDir   string // the sensor's data directory (journals, relay history)
}

// DemoOptions configure WriteDemoWith.
type DemoOptions struct {
	// GeoIP are databases consulted after the drill overlay.
	GeoIP []string
	// Block turns the sensor's response on: the nftables backend in a table
	// of the drill's own (DemoNFTable), for ssh_bruteforce only (the other
	// attacks must keep reaching their servers), private sources allowed
	// (the drill attacks from 127.10.0.x) and a short TTL (DemoBlockTTL),
	// so a drill never leaves loopback addresses blocked for long. It needs
	// root; pair it with Config.ExpectBlock.
	Block bool
}

// The drill sensor's response settings (DemoOptions.Block).
const (
	DemoNFTable  = "attackmap_drill"
	DemoBlockTTL = "2m"
)

// WriteDemoWith prepares dir for a sensor that watches the drill: it writes
// the GeoIP overlay, creates the (empty) auth and access logs so the sensor
// follows them from the start, and writes a sensor configuration that reads
// those logs, places attackers with the overlay first (then the databases
// in o.GeoIP, if any), reports loopback sources (the drill attacks from
// 127.10.0.x) and stands in DemoTarget. Only this configuration uses the
// overlay: ordinary runs never do.
func WriteDemoWith(dir string, o DemoOptions) (DemoFiles, error) {
	extraGeoIP := o.GeoIP
	abs, err := filepath.Abs(dir)
	if err != nil {
		return DemoFiles{}, fmt.Errorf("drill: %w", err)
	}
	f := DemoFiles{
		Dir:       abs,
		Config:    filepath.Join(abs, "sensor.json"),
		AuthLog:   filepath.Join(abs, "auth.log"),
		AccessLog: filepath.Join(abs, "access.log"),
		Overlay:   filepath.Join(abs, "geoip-drill.mmdb"),
		DataDir:   filepath.Join(abs, "sensor"),
	}
	if err := os.MkdirAll(f.DataDir, 0o750); err != nil {
		return f, fmt.Errorf("drill: %w", err)
	}
	if err := WriteOverlay(f.Overlay); err != nil {
		return f, err
	}
	for _, p := range []string{f.AuthLog, f.AccessLog} {
		lf, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o640)
		if err != nil {
			return f, fmt.Errorf("drill: %w", err)
		}
		lf.Close()
	}
	cfg := map[string]any{
		"data_dir": f.DataDir,
		"host":     "drill",
		"logs": map[string]any{
			"auth": []string{f.AuthLog}, "access": []string{f.AccessLog}, "firewall": []string{},
			// The drill's own logs: a line the drill writes before the
			// sensor's follower opens the file must count, so a file
			// without a saved offset is read from its start (a saved
			// offset still wins, so a second run replays nothing).
			"from_start": true,
		},
		"geoip":  map[string]any{"paths": append([]string{f.Overlay}, extraGeoIP...)},
		"target": map[string]any{"city": DemoTarget},
		"detect": map[string]any{"include_private": true},
	}
	if o.Block {
		// Every other attacker is on the allow list: the SSH credential
		// stuffer also trips ssh_bruteforce, and blocking it mid-run
		// would fail its own attack.
		allow := []string{}
		for _, a := range Plan() {
			if a.Name != SSHBruteForce {
				allow = append(allow, a.Addr.String())
			}
		}
		cfg["response"] = map[string]any{
			"enabled": true, "backend": "nftables", "detectors": []string{"ssh_bruteforce"},
			"allow_private": true, "allow": allow, "ttl": []string{DemoBlockTTL},
			"nftables": map[string]any{"table": DemoNFTable},
		}
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return f, fmt.Errorf("drill: %w", err)
	}
	if err := os.WriteFile(f.Config, append(b, '\n'), 0o640); err != nil {
		return f, fmt.Errorf("drill: %w", err)
	}
	return f, nil
}
