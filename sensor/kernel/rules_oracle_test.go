package kernel

import "strings"

// matches is the Go twin of rule_matches in collector.bpf.c: the oracle the
// rule tests and the decoder's fuzz target check the kernel's matching against.
func (r rule) matches(path string) bool {
	rest, ok := strings.CutPrefix(path, r.prefix)
	if !ok {
		return false
	}
	if !r.wild {
		return true
	}
	i := strings.IndexByte(rest, '/')
	// The kernel looks for the end of the component within 63 bytes.
	if i <= 0 || i >= maxRulePrefix+1 {
		return false
	}
	return strings.HasPrefix(rest[i:], r.tail)
}
