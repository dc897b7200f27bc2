//go:build !linux

package e2e

import "testing"

// TestNAT needs Linux network namespaces; see nat_test.go.
func TestNAT(t *testing.T) {
	t.Skip("the NAT test builds Linux network namespaces; this is not Linux")
}
