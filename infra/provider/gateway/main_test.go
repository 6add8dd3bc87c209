package gateway_test

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
