package reliability

import (
	"os"
	"path/filepath"
	"testing"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" && os.Getenv("SV_BINARY") == "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}
