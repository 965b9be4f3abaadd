package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
)

func TestDispatch(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string // substring of the error; "" for success
	}{
		{nil, "no command"},
		{[]string{"fly"}, `unknown command "fly"`},
		{[]string{"help"}, ""},
		{[]string{"run", "--print-config"}, ""},
		{[]string{"run", "--bogus"}, "flag provided but not defined"},
		{[]string{"detect", "--auth-log", "/nonexistent/auth.log"}, "nonexistent"},
	} {
		var out bytes.Buffer
		err := run(context.Background(), c.args, func(string) string { return "" }, &out, io.Discard)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%v: err = %v, want %q", c.args, err, c.want)
		}
	}
}
