// Command export writes the static site (`make static`):
//
//	go run ./app/cmd/export -out static -web web -wasm web/app.wasm
//
// See package export.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/attackmap/attackmap/app/export"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "export:", err)
		os.Exit(2)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("export", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var opt export.Options
	fs.StringVar(&opt.Dir, "out", "static", "write the site into `dir`")
	fs.StringVar(&opt.Web, "web", "web", "static resources `dir` (CSS, icons, world.svg)")
	fs.StringVar(&opt.Wasm, "wasm", "web/app.wasm", "the built app.wasm `file`")
	fs.StringVar(&opt.Version, "version", "", "build `version` for the service worker (default: a hash of the content)")
	fs.IntVar(&opt.BrotliQuality, "brotli", 11, "brotli `quality` for app.wasm.br, 1-11; negative skips it")
	if err := fs.Parse(args); err != nil {
		return err
	}
	v, err := export.Export(opt)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "exported %s (version %s)\n", opt.Dir, v)
	return nil
}
