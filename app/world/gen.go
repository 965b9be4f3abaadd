package world

// The input is fetched from npm by `make world` into .cache/ (not committed);
// the output web/world.svg is committed so a build needs neither npm nor the
// network.
//go:generate go run ../cmd/worldgen -in ../../.cache/world-atlas/package/countries-110m.json -out ../../web/world.svg -icons ../../web
