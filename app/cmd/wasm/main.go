// Command wasm is the map's browser program, built for js/wasm only
// (`make wasm` writes web/app.wasm):
//
//	GOOS=js GOARCH=wasm go build -trimpath -ldflags="-s -w" -o web/app.wasm ./app/cmd/wasm
//
// Built for the host it compiles too (so `go build ./...` and `go vet ./...`
// work) but does nothing: app.RunWhenOnBrowser returns at once there.
package main

import (
	app "github.com/maxence-charriere/go-app/v10/pkg/app"

	"github.com/attackmap/attackmap/app/ui"
)

func main() {
	ui.Routes()
	app.RunWhenOnBrowser()
}
