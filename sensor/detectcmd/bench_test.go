package detectcmd

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/attackmap/attackmap/sensor/detect"
	"github.com/attackmap/attackmap/sensor/logparse"
	"github.com/attackmap/attackmap/sensor/logsrc"
)

// benchLines builds n realistic lines from 1,000 attacking addresses.
func benchLines(n int, sshd bool) [][]byte {
	t := time.Date(2026, 3, 22, 0, 0, 0, 0, time.UTC)
	users := []string{"root", "admin", "ubuntu", "test", "oracle", "postgres", "git", "pi"}
	paths := []string{"/", "/index.php", "/.env", "/wp-login.php", "/static/app.js", "/post/17", "/admin/", "/img/logo.png"}
	out := make([][]byte, 0, n)
	for i := range n {
		ts := t.Add(time.Duration(i) * 2 * time.Millisecond)
		ip := fmt.Sprintf("45.%d.%d.%d", 10+i%1000/250, (i%1000)%250, 7)
		var l string
		if sshd {
			u := users[i%len(users)]
			switch i % 4 {
			case 0:
				l = fmt.Sprintf("%s web-1 sshd[%d]: Invalid user %s from %s port %d", ts.Format(time.Stamp), 1000+i%30000, u, ip, 30000+i%30000)
			case 1:
				l = fmt.Sprintf("%s web-1 sshd[%d]: Failed password for invalid user %s from %s port %d ssh2", ts.Format(time.Stamp), 1000+i%30000, u, ip, 30000+i%30000)
			case 2:
				l = fmt.Sprintf("%s web-1 sshd[%d]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=%s  user=root", ts.Format(time.Stamp), 1000+i%30000, ip)
			default:
				l = fmt.Sprintf("%s web-1 sshd[%d]: Connection closed by authenticating user root %s port %d [preauth]", ts.Format(time.Stamp), 1000+i%30000, ip, 30000+i%30000)
			}
		} else {
			st := []int{200, 404, 404, 401, 200, 200, 403, 304}[i%8]
			m := "GET"
			if i%8 == 3 {
				m = "POST"
			}
			l = fmt.Sprintf(`%s - - [%s] "%s %s?id=%d HTTP/1.1" %d %d "https://example.org/" "Mozilla/5.0 (X11; Linux x86_64; rv:124.0) Gecko/20100101 Firefox/124.0"`,
				ip, ts.Format("02/Jan/2006:15:04:05 -0700"), m, paths[i%len(paths)], i, st, 512+i%4096)
		}
		out = append(out, []byte(l))
	}
	return out
}

func benchParseDetect(b *testing.B, kind logsrc.Kind, lines [][]byte, detectToo bool) {
	opts := logparse.Options{Year: 2026, Location: time.UTC}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		d := logsrc.NewDecoder(kind, opts)
		e := detect.New(detect.DefaultConfig())
		for _, l := range lines {
			ev, ok := d.Decode(l)
			if ok && detectToo {
				e.Handle(ev)
			}
		}
		n += len(lines)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "lines/s")
	b.ReportMetric(0, "ns/op")
}

func BenchmarkSSHDParse(b *testing.B) {
	benchParseDetect(b, logsrc.Auth, benchLines(100_000, true), false)
}

func BenchmarkSSHDParseDetect(b *testing.B) {
	benchParseDetect(b, logsrc.Auth, benchLines(100_000, true), true)
}

func BenchmarkNginxParse(b *testing.B) {
	benchParseDetect(b, logsrc.Access, benchLines(100_000, false), false)
}

func BenchmarkNginxParseDetect(b *testing.B) {
	benchParseDetect(b, logsrc.Access, benchLines(100_000, false), true)
}

// BenchmarkMillionSources streams 1,000,000 failed logins, each from a
// distinct address, within two minutes of event time (so idle eviction
// cannot help and the cap must), and reports the tracked keys per
// detector (must stay <= max_keys) and the live heap afterwards.
func BenchmarkMillionSources(b *testing.B) {
	const n = 1_000_000
	cfg := detect.DefaultConfig()
	t0 := time.Date(2026, 3, 22, 0, 0, 0, 0, time.UTC)
	for b.Loop() {
		d := logsrc.NewDecoder(logsrc.Auth, logparse.Options{Year: 2026, Location: time.UTC})
		e := detect.New(cfg)
		line := make([]byte, 0, 160)
		for i := range n {
			ts := t0.Add(time.Duration(i) * 120 * time.Microsecond)
			line = line[:0]
			line = ts.AppendFormat(line, time.Stamp)
			line = fmt.Appendf(line, " web-1 sshd[%d]: Failed password for root from %d.%d.%d.%d port 22 ssh2",
				i%30000+1, 11+i>>24&0x3f, i>>16&0xff, i>>8&0xff, i&0xff)
			if ev, ok := d.Decode(line); ok {
				e.Handle(ev)
			}
		}
		st := e.Stats()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(st.Keys)/2, "keys/detector")
		b.ReportMetric(float64(cfg.MaxKeys), "cap")
		b.ReportMetric(float64(st.Evicted), "evicted")
		b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-inuse-MiB")
		b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "heap-live-MiB")
		if st.Keys > 2*cfg.MaxKeys { // two detectors see ssh_failed
			b.Fatalf("%d keys over the cap", st.Keys)
		}
		runtime.KeepAlive(e)
	}
	b.ReportMetric(0, "ns/op")
}
