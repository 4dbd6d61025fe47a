package httpd_test

import (
	"log/slog"

	"github.com/securevision/events/internal/testbin"
)

func newDebugLogger(w *testbin.LockedBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
