// Microbenchmark of the bf16 packed product (pck_gemm_packed_bf16) against the fp32 one
// (pck_gemm_packed) in the same run, one thread, on MiniLM's products:
//   - shapes: rows x inputs -> outputs, one weight used again and again (in cache);
//   - passes: the four products of six MiniLM layers with distinct weights (42 MB in fp32, 21 MB
//     in bf16), so the weights stream from memory as in a real forward pass.
// Each cell runs ROUNDS rounds (default 5) that alternate which precision goes first; a round
// takes each precision's best run over its slice of time. The table gives the medians of the
// rounds' times and of their per-round ratios. It names the bodies that ran: the fp32 product's
// widest body, and the bf16 product's (amx-bf16, avx512-bf16, or portable on a CPU without
// AVX512-BF16, which is a check that it runs, not a speed). BF16_BODY=avx512 holds the bf16
// product to its AVX512-BF16 body on a CPU with AMX. Build and run with bench/kernels/run.sh, or:
//   ROUNDS=3 SECONDS_PER_CELL=0.6 .build-model/kernels/bf16-product
#include "bench_common.h"
#include "pck_kernels.h"

#include <stdint.h>
#include <string.h>

enum { MAX_ROUNDS = 15, LAYERS = 6 };

typedef struct { const float *fp32[LAYERS][4]; const uint16_t *bf16[LAYERS][4]; size_t rows, layers, shapes[4][2]; float *x, *y; } work;

static void run(const work *w, int bf16) {
    for (size_t l = 0; l < w->layers; l++) {
        for (size_t s = 0; s < 4 && w->shapes[s][0]; s++) {
            const size_t in = w->shapes[s][0], out = w->shapes[s][1];
            if (bf16) pck_gemm_packed_bf16(w->x, w->rows, in, w->bf16[l][s], NULL, NULL, out, PCK_ACT_NONE, w->y);
            else pck_gemm_packed(w->x, w->rows, in, w->fp32[l][s], NULL, NULL, out, PCK_ACT_NONE, w->y);
        }
    }
}

static int by_value(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, by_value);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/// Medians over `rounds` of each precision's best time (seconds) and of the per-round ratio fp32 / bf16.
static void measure(const work *w, int rounds, double seconds, double *fp32, double *bf16, double *ratio) {
    double t[2][MAX_ROUNDS], r[MAX_ROUNDS];
    for (int round = 0; round < rounds; round++) {
        for (int turn = 0; turn < 2; turn++) {
            const int precision = (turn + round) % 2;  // odd rounds start with bf16
            double best = 1e30;
            const double until = now() + seconds / (2 * rounds);
            do {
                const double t0 = now();
                run(w, precision);
                const double dt = now() - t0;
                if (dt < best) best = dt;
            } while (now() < until);
            t[precision][round] = best;
        }
        r[round] = t[0][round] / t[1][round];
    }
    *fp32 = median(t[0], rounds);
    *bf16 = median(t[1], rounds);
    *ratio = median(r, rounds);
}

static void pack(size_t in, size_t out, const float **fp32, const uint16_t **bf16) {
    float *w = filled(in * out, 5, 0.01f, -0.02f);
    float *p = malloc(pck_packed_weight_count(out, in) * sizeof(float));
    uint16_t *q = malloc(pck_packed_bf16_count(out, in) * sizeof(uint16_t));
    if (!p || !q) { fprintf(stderr, "out of memory\n"); exit(1); }
    pck_pack_weight(w, out, in, p);
    pck_pack_weight_bf16(w, out, in, q);
    free(w);
    *fp32 = p;
    *bf16 = q;
}

int main(void) {
    const char *env = getenv("ROUNDS");
    int rounds = env ? atoi(env) : 5;
    if (rounds < 1 || rounds > MAX_ROUNDS) { fprintf(stderr, "ROUNDS must be from 1 to %d\n", MAX_ROUNDS); return 2; }
    env = getenv("SECONDS_PER_CELL");
    const double seconds = env ? atof(env) : 2.0;
    env = getenv("BF16_BODY");
    if (env && strcmp(env, "avx512") == 0) pck_force_avx512_bf16(1);
    const char *widest = pck_uses_avx512() ? "avx512" : (pck_uses_avx2() ? "avx2" : "portable");
    const char *bf16_body = pck_uses_amx_bf16() ? "amx-bf16"
        : pck_uses_avx512_bf16() ? "avx512-bf16" : "portable (no AVX512-BF16 here: not a speed result)";
    printf("fp32 body %s, bf16 body %s; %d rounds, medians\n", widest, bf16_body, rounds);

    // MiniLM's products, then 1x1 convolutions of EfficientNet-Lite0 (which still run fp32: a
    // measure of what bf16 would give them).
    static const size_t shapes[][3] = {{14, 384, 1152}, {14, 1536, 384}, {64, 384, 1536}, {256, 384, 1152}, {256, 1536, 384},
                                       {12544, 16, 96}, {3136, 144, 24}, {784, 240, 40}, {196, 480, 112}, {49, 1152, 320}};
    printf("\nshapes (weights in cache), GFLOP/s\n| rows x in -> out | fp32 | bf16 | bf16 / fp32 speed |\n|---|---:|---:|---:|\n");
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        work w = {.rows = shapes[i][0], .layers = 1, .shapes = {{shapes[i][1], shapes[i][2]}}};
        pack(shapes[i][1], shapes[i][2], &w.fp32[0][0], &w.bf16[0][0]);
        w.x = filled(w.rows * shapes[i][1], 7, 0.1f, -0.3f);
        w.y = filled(w.rows * shapes[i][2], 1, 0, 0);
        double f, b, ratio;
        measure(&w, rounds, seconds, &f, &b, &ratio);
        const double flops = 2.0 * w.rows * shapes[i][1] * shapes[i][2];
        printf("| %zu x %zu -> %zu | %.1f | %.1f | %.2fx |\n", shapes[i][0], shapes[i][1], shapes[i][2], flops / f / 1e9,
               flops / b / 1e9, ratio);
        free((void *)w.fp32[0][0]); free((void *)w.bf16[0][0]); free(w.x); free(w.y);
    }

    printf("\npasses over six MiniLM layers' distinct weights, ms per pass\n| rows | fp32 | bf16 | bf16 / fp32 speed |\n|---:|---:|---:|---:|\n");
    work p = {.layers = LAYERS, .shapes = {{384, 1152}, {384, 384}, {384, 1536}, {1536, 384}}};
    for (int l = 0; l < LAYERS; l++) {
        for (int s = 0; s < 4; s++) pack(p.shapes[s][0], p.shapes[s][1], &p.fp32[l][s], &p.bf16[l][s]);
    }
    static const size_t pass_rows[] = {1, 14, 64, 256};
    for (size_t i = 0; i < sizeof pass_rows / sizeof pass_rows[0]; i++) {
        p.rows = pass_rows[i];
        p.x = filled(p.rows * 1536, 7, 0.1f, -0.3f);
        p.y = filled(p.rows * 1536, 1, 0, 0);
        double f, b, ratio;
        measure(&p, rounds, 2 * seconds, &f, &b, &ratio);
        printf("| %zu | %.3f | %.3f | %.2fx |\n", p.rows, f * 1e3, b * 1e3, ratio);
        free(p.x); free(p.y);
    }
    for (int l = 0; l < LAYERS; l++) {
        for (int s = 0; s < 4; s++) { free((void *)p.fp32[l][s]); free((void *)p.bf16[l][s]); }
    }
    return 0;
}
