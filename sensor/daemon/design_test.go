package daemon

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
)

// The defaults docs/DESIGN.md shows under "Sensor configuration file" are
// the embedded ones (default.json), value for value: the document is the
// contract, so a default changed in one place and not the other fails here.
func TestDesignShowsTheEmbeddedDefaults(t *testing.T) {
	doc, err := os.ReadFile("../../docs/DESIGN.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n## Sensor configuration file\n")
	if !ok {
		t.Fatal(`docs/DESIGN.md has no "## Sensor configuration file" section`)
	}
	_, block, ok := strings.Cut(section, "```json\n")
	if !ok {
		t.Fatal("the section has no json block")
	}
	block, _, _ = strings.Cut(block, "```")
	var shown, embedded any
	if err := json.Unmarshal([]byte(block), &shown); err != nil {
		t.Fatalf("DESIGN's defaults block: %v", err)
	}
	if err := json.Unmarshal(defaultConfig, &embedded); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(shown, embedded) {
		s, _ := json.Marshal(shown)
		e, _ := json.Marshal(embedded)
		t.Errorf("docs/DESIGN.md's defaults differ from default.json:\nDESIGN:  %s\nembedded: %s", s, e)
	}
}
