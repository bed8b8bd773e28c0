// What the kernel microbenchmarks share: a monotonic clock and filled buffers.
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static inline double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/// `count` floats v[i] = (i % period) * step + offset; exits when memory runs out.
static inline float *filled(size_t count, int period, float step, float offset) {
    float *v = malloc(count * sizeof(float));
    if (!v) { fprintf(stderr, "out of memory (%zu floats)\n", count); exit(1); }
    for (size_t i = 0; i < count; i++) v[i] = (float)(i % period) * step + offset;
    return v;
}

#endif
