// Microbenchmark of pck_gemm_packed (Sources/CKernels), the product behind every BERT layer and
// every 1x1 convolution. Two tables, each for the widest body this CPU has and for the AVX2 one:
//   - shapes: rows x inputs -> outputs of MiniLM and EfficientNet-Lite0, one weight used again
//     and again (so it sits in cache), GFLOP/s of the best run in 0.1 s slices;
//   - passes: the four products of six MiniLM layers with distinct weights (42 MB packed, more
//     than most L3s), so the weights stream from memory as in a real pass; ms per pass.
// One thread. Build and run with bench/kernels/run.sh.
#include "bench_common.h"
#include "pck_kernels.h"


static float *packed_weight(size_t in, size_t out) {
    float *w = filled(in * out, 5, 0.01f, 0);
    float *p = malloc(pck_packed_weight_count(out, in) * sizeof(float));
    if (!p) { fprintf(stderr, "out of memory\n"); exit(1); }
    pck_pack_weight(w, out, in, p);
    free(w);
    return p;
}

/// Best seconds of `product` over `seconds` of runs, for body 0 (widest) and 1 (AVX2), in turns.
typedef void (*product_fn)(void *context);
static void best_of(product_fn product, void *context, double seconds, double best[2]) {
    best[0] = best[1] = 1e30;
    for (int turn = 0; turn < 6; turn++) {
        for (int body = 0; body < 2; body++) {
            pck_force_avx2(body);
            const double until = now() + seconds / 12;
            do {
                const double t0 = now();
                product(context);
                const double t = now() - t0;
                if (t < best[body]) best[body] = t;
            } while (now() < until);
        }
    }
    pck_force_avx2(0);
}

typedef struct { size_t rows, in, out; float *x, *w, *y; } shape_run;
static void run_shape(void *c) {
    shape_run *s = c;
    pck_gemm_packed(s->x, s->rows, s->in, s->w, NULL, NULL, s->out, PCK_ACT_NONE, s->y);
}

enum { LAYERS = 6 };
static const size_t layer_shapes[4][2] = {{384, 1152}, {384, 384}, {384, 1536}, {1536, 384}};
typedef struct { size_t rows; float *x, *y, *w[LAYERS][4]; } pass_run;
static void run_pass(void *c) {
    pass_run *p = c;
    for (int l = 0; l < LAYERS; l++) {
        for (int s = 0; s < 4; s++) {
            pck_gemm_packed(p->x, p->rows, layer_shapes[s][0], p->w[l][s], NULL, NULL, layer_shapes[s][1],
                            PCK_ACT_NONE, p->y);
        }
    }
}

int main(void) {
    const char *widest = pck_uses_avx512() ? "avx512" : (pck_uses_avx2() ? "avx2" : "portable");
    static const size_t shapes[][3] = {
        {256, 384, 1152}, {256, 384, 384}, {256, 384, 1536}, {256, 1536, 384}, {14, 384, 1152}, {14, 1536, 384},
        {12544, 32, 16}, {3136, 144, 24}, {12544, 16, 96}, {784, 144, 40}, {196, 240, 80}, {49, 1152, 192}};
    printf("shapes (weights in cache), GFLOP/s, best run\n| rows x in -> out | %s | avx2 |\n|---|---:|---:|\n", widest);
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        shape_run s = {shapes[i][0], shapes[i][1], shapes[i][2], NULL, NULL, NULL};
        s.x = filled(s.rows * s.in, 7, 0.1f, 0);
        s.w = packed_weight(s.in, s.out);
        s.y = filled(s.rows * s.out, 1, 0, 0);
        double best[2];
        best_of(run_shape, &s, 1.2, best);
        const double flops = 2.0 * s.rows * s.in * s.out;
        printf("| %zu x %zu -> %zu | %.1f | %.1f |\n", s.rows, s.in, s.out, flops / best[0] / 1e9, flops / best[1] / 1e9);
        free(s.x); free(s.w); free(s.y);
    }
    printf("\npasses over six MiniLM layers' distinct weights, ms per pass, best run\n| rows | %s | avx2 |\n|---:|---:|---:|\n", widest);
    pass_run p;
    for (int l = 0; l < LAYERS; l++) {
        for (int s = 0; s < 4; s++) p.w[l][s] = packed_weight(layer_shapes[s][0], layer_shapes[s][1]);
    }
    static const size_t pass_rows[] = {1, 14, 64, 256};
    for (size_t i = 0; i < sizeof pass_rows / sizeof pass_rows[0]; i++) {
        p.rows = pass_rows[i];
        p.x = filled(p.rows * 1536, 7, 0.1f, 0);
        p.y = filled(p.rows * 1536, 1, 0, 0);
        double best[2];
        best_of(run_pass, &p, 4.0, best);
        printf("| %zu | %.3f | %.3f |\n", p.rows, best[0] * 1e3, best[1] * 1e3);
        free(p.x); free(p.y);
    }
    for (int l = 0; l < LAYERS; l++) {
        for (int s = 0; s < 4; s++) free(p.w[l][s]);
    }
    return 0;
}
