//go:build !unix

package respond

import "errors"

var errLocked = errors.New("response: the state is locked by another process")

// lockState is a no-op where flock does not exist: the sensor's response
// side is Linux only.
func lockState(string) (func(), error) { return func() {}, nil }
