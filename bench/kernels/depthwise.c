// Microbenchmark of pck_depthwise_row (Sources/CKernels) over the depthwise layers of
// EfficientNet-Lite0 at 224 x 224: each layer's whole map, row by row as DepthwiseConv.swift
// calls it (a row of zeros for the padding above and below), for the widest body this CPU has and
// for the AVX2 one. GFLOP/s of the best run per layer, and the network's depthwise time per image
// (each layer times how often the network has it). One thread. Build and run with
// bench/kernels/run.sh.
#include "bench_common.h"
#include "pck_kernels.h"


/// One depthwise layer of the network: input side, channels, kernel, stride, and how many times
/// the network has it.
typedef struct { size_t side, channels, kernel, stride, repeats; } layer;
static const layer layers[] = {
    {112, 32, 3, 1, 1}, {112, 96, 3, 2, 1}, {56, 144, 3, 1, 1}, {56, 144, 5, 2, 1}, {28, 240, 5, 1, 1},
    {28, 240, 3, 2, 1}, {14, 480, 3, 1, 2}, {14, 480, 5, 1, 1}, {14, 672, 5, 1, 2}, {14, 672, 5, 2, 1},
    {7, 1152, 5, 1, 3}, {7, 1152, 3, 1, 1},
};

typedef struct { layer l; size_t out_side, pad; float *x, *w, *b, *zeros, *y; } map_run;

/// TensorFlow's "same" padding: the padding before is half the total, rounded down.
static size_t pad_before(size_t side, size_t kernel, size_t stride) {
    const size_t out = (side + stride - 1) / stride;
    const long total = (long)((out - 1) * stride + kernel) - (long)side;
    return total > 0 ? (size_t)total / 2 : 0;
}

static void run_map(map_run *m) {
    const size_t k = m->l.kernel, c = m->l.channels, w = m->l.side;
    const float *rows[5];
    for (size_t oy = 0; oy < m->out_side; oy++) {
        for (size_t ky = 0; ky < k; ky++) {
            const long iy = (long)(oy * m->l.stride + ky) - (long)m->pad;
            rows[ky] = iy < 0 || iy >= (long)w ? m->zeros : m->x + (size_t)iy * w * c;
        }
        pck_depthwise_row(rows, k, m->w, m->b, c, w, m->pad, m->l.stride, m->out_side, 1,
                          m->y + oy * m->out_side * c);
    }
}

int main(void) {
    const char *widest = pck_uses_avx512() ? "avx512" : (pck_uses_avx2() ? "avx2" : "portable");
    printf("depthwise layers of EfficientNet-Lite0 (one image), GFLOP/s, best run\n"
           "| side x channels, k, stride (times) | %s | avx2 |\n|---|---:|---:|\n", widest);
    double total[2] = {0, 0};
    for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++) {
        map_run m = {layers[i], 0, 0, NULL, NULL, NULL, NULL, NULL};
        const size_t side = m.l.side, c = m.l.channels, k = m.l.kernel;
        m.out_side = (side + m.l.stride - 1) / m.l.stride;
        m.pad = pad_before(side, k, m.l.stride);
        m.x = filled(side * side * c, 7, 0.1f, -0.2f);
        m.w = filled(k * k * c, 5, 0.05f, -0.2f);
        m.b = filled(c, 3, 0.01f, -0.2f);
        m.zeros = filled(side * c, 1, 0, 0);
        m.y = filled(m.out_side * m.out_side * c, 1, 0, 0);
        double best[2] = {1e30, 1e30};
        for (int turn = 0; turn < 6; turn++) {
            for (int body = 0; body < 2; body++) {
                pck_force_avx2(body);
                const double until = now() + 0.05;
                do {
                    const double t0 = now();
                    run_map(&m);
                    const double t = now() - t0;
                    if (t < best[body]) best[body] = t;
                } while (now() < until);
            }
        }
        pck_force_avx2(0);
        const double flops = 2.0 * m.out_side * m.out_side * c * k * k;
        printf("| %zu x %zu, %zu, %zu (%zu) | %.1f | %.1f |\n", side, c, k, m.l.stride, m.l.repeats,
               flops / best[0] / 1e9, flops / best[1] / 1e9);
        for (int body = 0; body < 2; body++) total[body] += best[body] * (double)m.l.repeats;
        free(m.x); free(m.w); free(m.b); free(m.zeros); free(m.y);
    }
    printf("| all depthwise layers, ms per image | %.3f | %.3f |\n", total[0] * 1e3, total[1] * 1e3);
    return 0;
}
