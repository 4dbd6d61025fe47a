//go:build gocv

#include <opencv2/core.hpp>
#include "threads_gocv.h"

void sv_set_num_threads(int n) { cv::setNumThreads(n); }
int sv_get_num_threads(void) { return cv::getNumThreads(); }
