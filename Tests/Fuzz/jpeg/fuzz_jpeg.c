// libFuzzer target: the JPEG decoder through its C shim (Sources/CJPEG/pcd_jpeg.c), called the
// way Sources/Model/Image/JPEGDecoder.swift calls it for the daemon: envelope checks, the header,
// the pixel limit, a DCT scale for a 224x224 model input (or full size for small pictures), the
// data and memory checks from the header, then the decode into a buffer of exactly the size the
// Swift side allocates. Built by scripts/fuzz.sh with clang -fsanitize=fuzzer,address -ljpeg.
//
// Beyond "no crash, no ASan report, no exit() from libjpeg", it checks the shim's contract: the
// output has the promised size, and the header's memory estimate is never below what libjpeg
// really allocates (the decode runs with libjpeg's own limit set to exactly the estimate, so an
// underestimate shows up as PCD_JPEG_ERR_MEMORY).

#include "pcd_jpeg.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// JPEGDecodeLimits' defaults.
enum { MAX_BYTES = 32 << 20, MAX_SCANS = 1000 };
static const uint64_t MAX_PIXELS = 40000000ull;
static const uint64_t MAX_MEMORY = 256ull << 20;

static void fail(const char *what, const uint8_t *data, size_t size, int code, const char *message) {
    fprintf(stderr, "fuzz_jpeg: %s (code %d, %zu bytes): %s\n", what, code, size, message);
    (void)data;
    abort();
}

/// JPEGDecoder.denominator(for:downscale: .atLeast(width: 224, height: 224)).
static int denominator_for_model(int width, int height) {
    static const int denoms[] = {8, 4, 2};
    for (int i = 0; i < 3; i++) {
        int d = denoms[i];
        if ((width + d - 1) / d >= 224 && (height + d - 1) / d >= 224) return d;
    }
    return 1;
}

static void decode(const uint8_t *data, size_t size, const pcd_jpeg_header *header, int denom, int strict) {
    int out_w = (header->width + denom - 1) / denom, out_h = (header->height + denom - 1) / denom;
    int channels = (header->color_space == PCD_JPEG_CS_CMYK || header->color_space == PCD_JPEG_CS_YCCK) ? 4 : 3;
    size_t capacity = (size_t)out_w * (size_t)out_h * (size_t)channels;
    // JPEGDecoder.checkMemory.
    if (header->coded_blocks / 8 > size) return;
    uint64_t estimate = header->coefficient_blocks * 128 + header->working_bytes;
    if (estimate + capacity > MAX_MEMORY) return;

    uint8_t *out = malloc(capacity ? capacity : 1);
    if (out == NULL) return;
    pcd_jpeg_output output;
    char message[256];
    int code = pcd_jpeg_decode(data, size, denom, MAX_PIXELS, MAX_SCANS, strict, estimate,
                               out, capacity, &output, message, sizeof message);
    if (code == PCD_JPEG_ERR_MEMORY) fail("libjpeg needed more memory than the header's estimate", data, size, code, message);
    if (code == PCD_JPEG_ERR_ARGUMENT || code == PCD_JPEG_ERR_BUFFER || code == PCD_JPEG_ERR_TOO_MANY_PIXELS)
        fail("the shim disagrees with the Swift side's checks", data, size, code, message);
    if (code == PCD_JPEG_OK) {
        if (output.width != out_w || output.height != out_h || output.components != channels)
            fail("output size differs from the header's", data, size, code, message);
        // Touch every byte: ASan and MSan-style checks see a short write as garbage later.
        volatile uint8_t sum = 0;
        for (size_t i = 0; i < capacity; i++) sum ^= out[i];
        (void)sum;
    }
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    // JPEGDecoder.checkEnvelope.
    if (size < 2 || size > MAX_BYTES || data[0] != 0xFF || data[1] != 0xD8) return 0;
    pcd_jpeg_header header;
    char message[256];
    if (pcd_jpeg_read_header(data, size, &header, message, sizeof message) != PCD_JPEG_OK) return 0;
    if (header.width <= 0 || header.height <= 0) fail("header accepted with no size", data, size, 0, "");
    if ((uint64_t)header.width * (uint64_t)header.height > MAX_PIXELS) return 0;
    if (header.color_space == PCD_JPEG_CS_UNKNOWN) return 0;
    int strict = size & 1;  // both modes, decided by something the fuzzer controls
    decode(data, size, &header, denominator_for_model(header.width, header.height), strict);
    // Full size too while that stays cheap: it takes other code paths (no DCT scaling).
    if ((uint64_t)header.width * (uint64_t)header.height <= 1000000ull) decode(data, size, &header, 1, strict);
    return 0;
}
