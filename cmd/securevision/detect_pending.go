package main

import (
	"context"
	"fmt"
	"io"
)

// runDetect is replaced by the vision pipeline's command (ingest/vision).
func runDetect(_ context.Context, _ []string, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "securevision detect: the vision pipeline is not part of this build yet")
	return 2
}
