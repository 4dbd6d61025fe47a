//go:build gocv

package vision

// gocv v0.31 does not wrap cv::setNumThreads; threads_gocv.cpp does.

/*
#cgo !windows pkg-config: opencv4
#cgo CXXFLAGS: --std=c++11
#include "threads_gocv.h"
*/
import "C"

import (
	"runtime"
	"sync"
)

// cvThreads is the OpenCV thread count set by setCVThreads (0: OpenCV's
// default, one per core).
var cvThreads struct {
	sync.Mutex
	n int
}

// setCVThreads sets the number of threads OpenCV's parallel loops
// (detectMultiScale, resize, …) use, for the whole process.
func setCVThreads(n int) {
	cvThreads.Lock()
	defer cvThreads.Unlock()
	cvThreads.n = n
	C.sv_set_num_threads(C.int(n))
}

// getCVThreads reports OpenCV's current thread count.
func getCVThreads() int { return int(C.sv_get_num_threads()) }

// threadsForSources is the OpenCV thread count for a pipeline with
// sources concurrent sources: the cores shared out between them, at least
// one. Every source runs its own goroutine, so with as many sources as
// cores each OpenCV call runs on the calling thread alone, which avoids
// the fork/join overhead of splitting small detection jobs when the cores
// are busy with the other sources anyway.
func threadsForSources(sources int) int {
	return max(1, runtime.NumCPU()/max(1, sources))
}
