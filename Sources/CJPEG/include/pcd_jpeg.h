#ifndef POSTCLASSD_PCD_JPEG_H
#define POSTCLASSD_PCD_JPEG_H
// A small, reentrant C shim over libjpeg(-turbo) for postclassd.
//
// Why a shim: libjpeg reports fatal errors by calling `error_exit`, whose
// default prints to stderr and calls exit(). The only safe way to recover is a
// setjmp/longjmp error manager, and longjmp must never cross Swift frames, so
// every libjpeg call lives in C here and Swift only sees return codes.
//
// Reentrancy: all state is on the caller's stack (one decompress object per
// call); nothing global is written, so calls may run concurrently.

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Result codes of the shim's functions.
enum {
    PCD_JPEG_OK = 0,
    /// libjpeg reported a fatal error (corrupt or unsupported data); see message.
    PCD_JPEG_ERR_CORRUPT = 1,
    /// The data ended before the image was complete.
    PCD_JPEG_ERR_TRUNCATED = 2,
    /// A progressive file had more scans than allowed (CPU exhaustion guard).
    PCD_JPEG_ERR_TOO_MANY_SCANS = 3,
    /// The header's width x height is over max_pixels (checked before decoding).
    PCD_JPEG_ERR_TOO_MANY_PIXELS = 4,
    /// The output buffer is too small for the decoded image.
    PCD_JPEG_ERR_BUFFER = 5,
    /// The colour space cannot be turned into RGB (e.g. 2 components).
    PCD_JPEG_ERR_COLORSPACE = 6,
    /// Bad arguments (null pointers, scale not 1/2/4/8).
    PCD_JPEG_ERR_ARGUMENT = 7,
};

/// Colour space of the coded data, as libjpeg infers it from markers.
enum {
    PCD_JPEG_CS_UNKNOWN = 0,
    PCD_JPEG_CS_GRAY = 1,
    PCD_JPEG_CS_RGB = 2,
    PCD_JPEG_CS_YCBCR = 3,
    PCD_JPEG_CS_CMYK = 4,
    PCD_JPEG_CS_YCCK = 5,
};

/// What the frame header (SOF) and APP markers say, before any decoding.
typedef struct pcd_jpeg_header {
    int32_t width;
    int32_t height;
    int32_t num_components;
    int32_t color_space;      /* PCD_JPEG_CS_* */
    int32_t progressive;      /* 1 for progressive (SOF2) files */
    int32_t adobe_transform;  /* Adobe APP14 transform flag, -1 without the marker */
} pcd_jpeg_header;

/// What the decoder produced.
typedef struct pcd_jpeg_output {
    int32_t width;            /* after DCT scaling */
    int32_t height;
    int32_t components;       /* 3 (RGB) or 4 (Adobe-inverted CMYK, converted by the caller) */
    int32_t warnings;         /* libjpeg warnings seen (corrupt but recoverable data) */
} pcd_jpeg_output;

/// Reads only the headers. Returns PCD_JPEG_OK or an error code; on error a
/// NUL-terminated message is written to `message` (up to `message_cap` bytes).
int pcd_jpeg_read_header(const uint8_t *data, size_t size,
                         pcd_jpeg_header *header,
                         char *message, size_t message_cap);

/// Decodes the whole image into `out` (row-major, interleaved, no padding).
///
/// - `scale_denom`: 1, 2, 4 or 8 (libjpeg's DCT-domain downscaling); the
///   output is ceil(width / scale_denom) x ceil(height / scale_denom).
/// - `max_pixels`: the header's width*height must not exceed it (re-checked
///   here so that this function is safe on its own).
/// - `max_scans`: progressive files with more scans are refused.
/// - `fail_on_warning`: non-zero turns every libjpeg warning (corrupt but
///   recoverable data) into PCD_JPEG_ERR_CORRUPT; a premature end of data is
///   always PCD_JPEG_ERR_TRUNCATED.
/// Output is RGB for gray/RGB/YCbCr data and 4-channel CMYK (as stored, i.e.
/// Adobe-inverted) for CMYK/YCCK data; YCCK is turned into CMYK by libjpeg.
int pcd_jpeg_decode(const uint8_t *data, size_t size,
                    int scale_denom, uint64_t max_pixels, int max_scans, int fail_on_warning,
                    uint8_t *out, size_t out_cap,
                    pcd_jpeg_output *output,
                    char *message, size_t message_cap);

#ifdef __cplusplus
}
#endif
#endif
