//go:build !linux

package respond

import "fmt"

func newNFTables(NFTablesOptions) (Backend, error) {
	return nil, fmt.Errorf("nftables: %w: nftables is Linux only", ErrUnsupported)
}
