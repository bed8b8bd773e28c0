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
    /// Decoding would need more memory than `max_memory` (checked from the
    /// header before libjpeg allocates, and enforced by libjpeg itself).
    PCD_JPEG_ERR_MEMORY = 8,
    /// A multi-scan (progressive) file is too short to hold the image its
    /// header claims: fewer bytes than one bit per 8x8 block (see
    /// pcd_jpeg_header.coefficient_blocks). Refused before its whole-image
    /// coefficient buffer is allocated.
    PCD_JPEG_ERR_TOO_LITTLE_DATA = 9,
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
    /// 8x8 blocks libjpeg keeps for the whole image while decoding (edges
    /// padded to the sampling factors): non-zero only for multi-scan files
    /// (progressive, or sequential with one scan per component), which
    /// buffer every coefficient, 128 bytes a block, before the first row.
    uint64_t coefficient_blocks;
    /// The blocks a multi-scan file codes (no padding). Each costs at least
    /// one bit of Huffman-coded data in its first scan, so a complete file
    /// has at least coded_blocks / 8 bytes; 0 for single-scan files.
    uint64_t coded_blocks;
    /// An upper estimate of libjpeg's other working memory in bytes (row
    /// buffers, tables), which grows with the width only.
    uint64_t working_bytes;
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
/// Multi-scan files shorter than coded_blocks / 8 bytes are refused
/// (PCD_JPEG_ERR_TOO_LITTLE_DATA) before any image-sized buffer exists.
/// - `max_memory`: most bytes libjpeg may allocate (0: no limit). The
///   header's estimate (coefficient_blocks * 128 + working_bytes) is checked
///   against it before decoding starts, and libjpeg's own max_memory_to_use is
///   set to it, so a buffer libjpeg would need beyond it fails the decode
///   (PCD_JPEG_ERR_MEMORY) instead of being allocated.
/// - `fail_on_warning`: non-zero turns every libjpeg warning (corrupt but
///   recoverable data) into PCD_JPEG_ERR_CORRUPT; a premature end of data is
///   always PCD_JPEG_ERR_TRUNCATED.
/// Output is RGB for gray/RGB/YCbCr data and 4-channel CMYK (as stored, i.e.
/// Adobe-inverted) for CMYK/YCCK data; YCCK is turned into CMYK by libjpeg.
int pcd_jpeg_decode(const uint8_t *data, size_t size,
                    int scale_denom, uint64_t max_pixels, int max_scans, int fail_on_warning,
                    uint64_t max_memory,
                    uint8_t *out, size_t out_cap,
                    pcd_jpeg_output *output,
                    char *message, size_t message_cap);

#ifdef __cplusplus
}
#endif
#endif
