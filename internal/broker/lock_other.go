//go:build !unix

package broker

import "io"

// lockDir does nothing where flock is unavailable: running two brokers on
// one DataDir there corrupts it.
func lockDir(string) (io.Closer, error) { return nil, nil }
