//go:build unix

package respond

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockFile guards the state file between the running sensor and a
// `block` command run while the sensor is stopped: whoever holds it is the
// only writer of the state and the kernel objects.
const lockFile = "response.lock"

var errLocked = errors.New("response: the state is locked by another process")

// lockState takes the lock without waiting. The lock is an flock on a file
// that stays in place; the kernel drops it when the process dies, so a
// crash never leaves it held.
func lockState(dir string) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("response: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errLocked
		}
		return nil, fmt.Errorf("response: locking state: %w", err)
	}
	return func() { f.Close() }, nil
}
