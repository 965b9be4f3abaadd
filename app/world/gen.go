package world

// The input is fetched from npm by `make world` into .cache/ (not committed);
// the outputs (web/world.svg and the country names table in app/live) are
// committed so a build needs neither npm nor the network. The names come
// from the 10m file, which names the small countries the 110m outline
// leaves out; their generator is a module of its own (it needs
// golang.org/x/text, which the map must not carry).
//go:generate go run ../cmd/worldgen -in ../../.cache/world-atlas/package/countries-110m.json -out ../../web/world.svg -icons ../../web
//go:generate go run -C ../cmd/worldgen/countries . -in ../../../../.cache/world-atlas/package/countries-10m.json -out ../../../live/countries_table.go
