package geo_test

import (
	"fmt"

	"github.com/attackmap/attackmap/app/geo"
	"github.com/paulmach/orb"
)

func ExampleProject() {
	p := geo.Project(orb.Point{8.68, 50.11}) // Frankfurt, [lon, lat]
	fmt.Printf("%.1f %.1f\n", p[0], p[1])
	// Output: 524.1 338.7
}

func ExampleGreatCircle() {
	line := geo.GreatCircle(orb.Point{13.4, 52.5}, orb.Point{-74.0, 40.7}, 20)
	for _, p := range line {
		fmt.Printf("%.1f,%.1f ", p[0], p[1])
	}
	fmt.Println()
	// Output: 13.4,52.5 -19.2,56.8 -51.4,52.0 -74.0,40.7
}

func ExampleSplitAntimeridian() {
	tokyo, sanFrancisco := orb.Point{139.7, 35.7}, orb.Point{-122.4, 37.8}
	parts := geo.SplitAntimeridian(geo.GreatCircle(tokyo, sanFrancisco, 0))
	fmt.Println(len(parts), "parts; the first ends at", parts[0][len(parts[0])-1][0])
	// Output: 2 parts; the first ends at 180
}
