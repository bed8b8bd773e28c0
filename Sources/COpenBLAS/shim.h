#ifndef POSTCLASSD_COPENBLAS_SHIM_H
#define POSTCLASSD_COPENBLAS_SHIM_H
// OpenBLAS's CBLAS interface (cblas_sgemm) and its thread-count controls.
#include <cblas.h>
#endif
