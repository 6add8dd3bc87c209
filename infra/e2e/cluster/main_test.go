// Package cluster runs the stack as `segflow up --nodes 3` and injects
// faults into it: apart from infra/e2e so that go test runs it beside
// the other end-to-end tests, not after them.
package cluster

import (
	"os"
	"testing"

	"github.com/segflow/segflow/infra/internal/testgw"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testgw.Cleanup()
	os.Exit(code)
}
