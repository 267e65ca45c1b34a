//go:build race

package pqwrite

// raceEnabled: the race detector slows arrow-go's reader and writer, which
// the differential tests run for every case, about fortyfold; under it
// they check fewer cases (the suite without -race checks them all).
const raceEnabled = true
