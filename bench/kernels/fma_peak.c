// The compute peak of this CPU for float32: a loop of independent FMAs on registers, no memory
// traffic, on `threads` threads (one per core), so "% of peak" means a share of what the cores can
// do, not of another library's product. The body is picked at run time as Sources/CKernels picks
// its bodies (pck_has_avx512 / pck_has_avx2_fma): AVX-512 where the CPU and OS have it, else
// AVX2 + FMA; KERNELS=avx2 forces the AVX2 body, as it does for the kernels.
//
// Two FMA ports with 4-cycle latency need 8 independent chains in flight: the AVX2 body keeps 12
// (12 accumulators + 2 constants fit its 16 ymm registers, so nothing spills), the AVX-512 body 16
// (of 32 zmm registers). Each thread's rate is the best of `repeats` timed runs (a shared machine
// only ever slows a run down).
//
// Usage: fma-peak [threads] [seconds per run]   (defaults 1 and 0.2)
// Prints one JSON object: body, threads, gflops (all threads), gflops_per_core.
#include <immintrin.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"

#define CHAINS_AVX2 12
#define CHAINS_AVX512 16
#define INNER 1000  // iterations between clock reads

__attribute__((target("avx2,fma"))) static double loop_avx2(long rounds) {
    enum { CHAINS = CHAINS_AVX2 };
    __m256 acc[CHAINS];
    const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < CHAINS; i++) acc[i] = _mm256_set1_ps((float)i);
    for (long r = 0; r < rounds; r++) {
        for (int k = 0; k < INNER; k++) {
#pragma clang loop unroll(full)
            for (int i = 0; i < CHAINS; i++) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
        }
    }
    float sink[8], total = 0;  // keep the result alive so the loop is not removed
    for (int i = 0; i < CHAINS; i++) { _mm256_storeu_ps(sink, acc[i]); total += sink[0]; }
    return total;
}

__attribute__((target("avx512f,avx2,fma"))) static double loop_avx512(long rounds) {
    enum { CHAINS = CHAINS_AVX512 };
    __m512 acc[CHAINS];
    const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_set1_ps((float)i);
    for (long r = 0; r < rounds; r++) {
        for (int k = 0; k < INNER; k++) {
#pragma clang loop unroll(full)
            for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
        }
    }
    float total = 0;
    for (int i = 0; i < CHAINS; i++) total += _mm512_reduce_add_ps(acc[i]);
    return total;
}

static int use_avx512;
static int lanes, chains;
static double seconds_per_run = 0.2;
static volatile double sink;

/// Calls the picked body: FLOPs done = 2 * lanes * chains * INNER * rounds.
static void run_body(long rounds) { sink = use_avx512 ? loop_avx512(rounds) : loop_avx2(rounds); }

/// One thread: sizes a run to about `seconds_per_run`, then keeps the best of five runs.
static void *measure(void *result) {
    long rounds = 16;
    double t;
    for (;;) {  // grow the run until it takes a measurable time
        t = now(); run_body(rounds); t = now() - t;
        if (t > seconds_per_run / 4) break;
        rounds *= 2;
    }
    rounds = (long)(rounds * seconds_per_run / t) + 1;
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        t = now(); run_body(rounds); t = now() - t;
        double gflops = 2.0 * lanes * chains * INNER * rounds / t / 1e9;
        if (gflops > best) best = gflops;
    }
    *(double *)result = best;
    return NULL;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    if (argc > 2) seconds_per_run = atof(argv[2]);
    if (threads < 1 || seconds_per_run <= 0) {
        fprintf(stderr, "usage: fma-peak [threads] [seconds per run]\n");
        return 2;
    }
    __builtin_cpu_init();
    const char *forced = getenv("KERNELS");
    int has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (!has_avx2) {
        fprintf(stderr, "fma-peak: this CPU has no AVX2 + FMA\n");
        return 1;
    }
    use_avx512 = __builtin_cpu_supports("avx512f") && !(forced && strcmp(forced, "avx2") == 0);
    lanes = use_avx512 ? 16 : 8;
    chains = use_avx512 ? CHAINS_AVX512 : CHAINS_AVX2;

    pthread_t *ids = calloc(threads, sizeof *ids);
    double *rates = calloc(threads, sizeof *rates), total = 0;
    for (int i = 0; i < threads; i++) pthread_create(&ids[i], NULL, measure, &rates[i]);
    for (int i = 0; i < threads; i++) { pthread_join(ids[i], NULL); total += rates[i]; }
    printf("{\"body\": \"%s\", \"threads\": %d, \"gflops\": %.1f, \"gflops_per_core\": %.1f}\n",
           use_avx512 ? "avx512" : "avx2", threads, total, total / threads);
    return 0;
}
