// Command countries writes the map's country names table
// (app/live/countries_table.go): ISO 3166-1 alpha-2 code to English name,
// from the Natural Earth names in world-atlas's countries TopoJSON (the
// data `make world` fetches into .cache/). world-atlas identifies a
// country by its ISO 3166-1 numeric code; golang.org/x/text/language's
// region data turns that into the alpha-2 code GeoIP databases report.
//
// It is a module of its own so that golang.org/x/text is needed only here,
// at generation time, and never in the main module or app.wasm.
// `make world` runs it through go generate in app/world.
package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"go/format"
	"io"
	"os"
	"slices"
	"strings"

	"golang.org/x/text/language"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "countries:", err)
		os.Exit(2)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("countries", flag.ContinueOnError)
	fs.SetOutput(stderr)
	in := fs.String("in", "", "world-atlas countries TopoJSON `file` (countries-10m.json: it names the most territories)")
	out := fs.String("out", "", "Go `file` to write (app/live/countries_table.go)")
	pkg := fs.String("pkg", "live", "package `name` of the output")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *in == "" || *out == "" {
		return errors.New("need -in and -out")
	}
	data, err := os.ReadFile(*in)
	if err != nil {
		return err
	}
	table, err := names(data)
	if err != nil {
		return err
	}
	src, err := render(*pkg, table)
	if err != nil {
		return err
	}
	if err := os.WriteFile(*out, src, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %d countries\n", *out, len(table))
	return nil
}

type country struct{ code, name string }

// topology is the part of a world-atlas TopoJSON file this reads.
type topology struct {
	Objects struct {
		Countries struct {
			Geometries []struct {
				ID         *string         `json:"id"`
				Arcs       json.RawMessage `json:"arcs"`
				Properties struct {
					Name string `json:"name"`
				} `json:"properties"`
			} `json:"geometries"`
		} `json:"countries"`
	} `json:"objects"`
}

// unnumbered are territories Natural Earth gives no ISO numeric code but
// GeoIP databases report under a user-assigned alpha-2 code.
var unnumbered = map[string]string{"Kosovo": "XK"}

// spelled replaces Natural Earth's abbreviated names where expanding the
// abbreviations word by word would not give the usual English name.
var spelled = map[string]string{
	"Dem. Rep. Congo":        "Democratic Republic of the Congo",
	"S. Geo. and the Is.":    "South Georgia and the South Sandwich Islands",
	"Fr. S. Antarctic Lands": "French Southern and Antarctic Lands",
	"St. Vin. and Gren.":     "Saint Vincent and the Grenadines",
	"Antigua and Barb.":      "Antigua and Barbuda",
	"Bosnia and Herz.":       "Bosnia and Herzegovina",
	"Faeroe Is.":             "Faroe Islands",
	"eSwatini":               "Eswatini",
	"Macedonia":              "North Macedonia", // renamed in 2019
}

// words expands the abbreviations Natural Earth uses in short names.
var words = map[string]string{
	"Is.": "Islands", "I.": "Island", "Rep.": "Republic", "Dem.": "Democratic",
	"St.": "Saint", "Br.": "British", "Fr.": "French", "Eq.": "Equatorial",
	"Ter.": "Territory", "W.": "Western", "N.": "Northern", "S.": "South",
}

func expand(name string) string {
	if s, ok := spelled[name]; ok {
		return s
	}
	f := strings.Fields(name)
	for i, w := range f {
		if x, ok := words[w]; ok {
			f[i] = x
		}
	}
	return strings.Join(f, " ")
}

// names maps each ISO numeric id to its alpha-2 code and name. A code
// named by several geometries (Australia and its Ashmore and Cartier
// Islands share 036) takes the name of the one drawn with the most arcs,
// the main territory.
func names(data []byte) ([]country, error) {
	var t topology
	if err := json.Unmarshal(data, &t); err != nil {
		return nil, fmt.Errorf("not TopoJSON: %w", err)
	}
	type pick struct {
		name string
		size int
	}
	best := map[string]pick{}
	for _, g := range t.Objects.Countries.Geometries {
		name := strings.TrimSpace(g.Properties.Name)
		if name == "" {
			continue
		}
		var code string
		if g.ID == nil {
			code = unnumbered[name]
		} else {
			r, err := language.ParseRegion(*g.ID)
			if err != nil || !r.IsCountry() {
				return nil, fmt.Errorf("%q (%s): no ISO 3166-1 country for this numeric code", name, *g.ID)
			}
			code = r.String()
		}
		if len(code) != 2 {
			continue // a territory without a code (Somaliland, Siachen Glacier...)
		}
		size := bytes.Count(g.Arcs, []byte{','}) + 1
		if p, ok := best[code]; !ok || size > p.size {
			best[code] = pick{expand(name), size}
		}
	}
	if len(best) < 200 {
		return nil, fmt.Errorf("only %d countries: not the world-atlas countries file", len(best))
	}
	out := make([]country, 0, len(best))
	for code, p := range best {
		out = append(out, country{code, p.name})
	}
	slices.SortFunc(out, func(a, b country) int { return cmp.Compare(a.code, b.code) })
	return out, nil
}

func render(pkg string, table []country) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "// Code generated by app/cmd/worldgen/countries from world-atlas (Natural Earth, public domain); DO NOT EDIT.\n\npackage %s\n\n", pkg)
	b.WriteString("// countryCodes holds the ISO 3166-1 alpha-2 codes, two bytes each, sorted;\n// countryNames[i] is the name of the i-th code.\n")
	b.WriteString("const countryCodes = \"")
	for _, c := range table {
		b.WriteString(c.code)
	}
	b.WriteString("\"\n\nvar countryNames = [...]string{\n")
	for _, c := range table {
		fmt.Fprintf(&b, "\t%q, // %s\n", c.name, c.code)
	}
	b.WriteString("}\n")
	return format.Source(b.Bytes())
}
