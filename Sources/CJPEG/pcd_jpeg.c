// libjpeg shim for postclassd: a setjmp/longjmp error manager so that bad
// input becomes an error code instead of exit(), plus header and decode calls.
// See include/pcd_jpeg.h for the contract.

#include "pcd_jpeg.h"

#include <setjmp.h>
#include <stdio.h> /* jpeglib.h needs FILE and size_t declared first */
#include <limits.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

/// Error manager: libjpeg's public part first so that `cinfo->err` can be cast
/// back to it from the callbacks.
typedef struct pcd_error_mgr {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    int code;            /* PCD_JPEG_ERR_* to return after the longjmp */
    int fail_on_eof;     /* premature end of data is fatal while pixels are missing */
    int max_scans;       /* 0: no limit */
    int fail_on_warning; /* strict mode: any warning is fatal */
    char *message;
    size_t message_cap;
} pcd_error_mgr;

static void pcd_set_message(pcd_error_mgr *err, const char *text) {
    if (err->message == NULL || err->message_cap == 0) return;
    snprintf(err->message, err->message_cap, "%s", text);
}

static void pcd_set_libjpeg_message(j_common_ptr cinfo) {
    pcd_error_mgr *err = (pcd_error_mgr *)cinfo->err;
    char buffer[JMSG_LENGTH_MAX];
    buffer[0] = '\0';
    (*cinfo->err->format_message)(cinfo, buffer);
    pcd_set_message(err, buffer);
}

/// Replaces libjpeg's default, which prints and calls exit().
static void pcd_error_exit(j_common_ptr cinfo) {
    pcd_error_mgr *err = (pcd_error_mgr *)cinfo->err;
    // libjpeg asks for backing store when a whole-image buffer does not fit
    // in max_memory_to_use (there is none in libjpeg-turbo), and reports
    // a failed malloc as out of memory: both mean "over the budget".
    int msg = cinfo->err->msg_code;
    if (err->code == PCD_JPEG_OK && (msg == JERR_NO_BACKING_STORE || msg == JERR_OUT_OF_MEMORY))
        err->code = PCD_JPEG_ERR_MEMORY;
    if (err->code == PCD_JPEG_OK) err->code = PCD_JPEG_ERR_CORRUPT;
    pcd_set_libjpeg_message(cinfo);
    if (err->code == PCD_JPEG_ERR_MEMORY && err->message != NULL && err->message_cap > 0) {
        char reason[JMSG_LENGTH_MAX];
        snprintf(reason, sizeof reason, "%s", err->message);
        snprintf(err->message, err->message_cap,
                 "libjpeg needs more memory than allowed (%s)", reason);
    }
    longjmp(err->jump, 1);
}

/// Warnings (level < 0) are counted and tolerated, except a premature end of
/// data: libjpeg would fill the rest with grey and report success, and a
/// half-grey picture would be classified as if it were real.
static void pcd_emit_message(j_common_ptr cinfo, int msg_level) {
    pcd_error_mgr *err = (pcd_error_mgr *)cinfo->err;
    if (msg_level >= 0) return; /* trace messages: ignore */
    cinfo->err->num_warnings++;
    if (cinfo->err->msg_code == JWRN_JPEG_EOF && err->fail_on_eof) {
        err->code = PCD_JPEG_ERR_TRUNCATED;
        pcd_set_libjpeg_message(cinfo);
        longjmp(err->jump, 1);
    }
    if (err->fail_on_warning) {
        err->code = PCD_JPEG_ERR_CORRUPT;
        pcd_set_libjpeg_message(cinfo);
        longjmp(err->jump, 1);
    }
}

/// Never print to stderr: the daemon owns its logs.
static void pcd_output_message(j_common_ptr cinfo) { (void)cinfo; }

/// Progress callback: refuses progressive files with absurd scan counts
/// (each scan can be a few bytes, yet costs a pass over the whole image).
static void pcd_progress(j_common_ptr cinfo) {
    pcd_error_mgr *err = (pcd_error_mgr *)cinfo->err;
    if (!cinfo->is_decompressor || err->max_scans <= 0) return;
    j_decompress_ptr dinfo = (j_decompress_ptr)cinfo;
    if (dinfo->input_scan_number > err->max_scans) {
        char text[128];
        snprintf(text, sizeof text, "progressive JPEG has more than %d scans", err->max_scans);
        err->code = PCD_JPEG_ERR_TOO_MANY_SCANS;
        pcd_set_message(err, text);
        longjmp(err->jump, 1);
    }
}

static void pcd_init_error_mgr(pcd_error_mgr *err, char *message, size_t message_cap) {
    memset(err, 0, sizeof *err);
    jpeg_std_error(&err->pub);
    err->pub.error_exit = pcd_error_exit;
    err->pub.emit_message = pcd_emit_message;
    err->pub.output_message = pcd_output_message;
    err->code = PCD_JPEG_OK;
    err->fail_on_eof = 1;
    err->message = message;
    err->message_cap = message_cap;
    if (message != NULL && message_cap > 0) message[0] = '\0';
}

static int32_t pcd_color_space(J_COLOR_SPACE cs) {
    switch (cs) {
    case JCS_GRAYSCALE: return PCD_JPEG_CS_GRAY;
    case JCS_RGB: return PCD_JPEG_CS_RGB;
    case JCS_YCbCr: return PCD_JPEG_CS_YCBCR;
    case JCS_CMYK: return PCD_JPEG_CS_CMYK;
    case JCS_YCCK: return PCD_JPEG_CS_YCCK;
    default: return PCD_JPEG_CS_UNKNOWN;
    }
}

/// Fills the memory fields of the header from what jpeg_read_header worked
/// out at the first SOS (component sizes in blocks, whether there are several
/// scans); see pcd_jpeg.h. Mirrors jdcoefct.c's whole-image buffer request.
static void pcd_fill_memory(j_decompress_ptr cinfo, pcd_jpeg_header *header) {
    uint64_t padded = 0, coded = 0;
    int max_v = 1;
    for (int ci = 0; ci < cinfo->num_components; ci++) {
        const jpeg_component_info *c = &cinfo->comp_info[ci];
        uint64_t h = c->h_samp_factor > 0 ? (uint64_t)c->h_samp_factor : 1;
        uint64_t v = c->v_samp_factor > 0 ? (uint64_t)c->v_samp_factor : 1;
        uint64_t w = c->width_in_blocks, hb = c->height_in_blocks;
        padded += (w + h - 1) / h * h * ((hb + v - 1) / v * v);
        coded += w * hb;
        if (c->v_samp_factor > max_v) max_v = c->v_samp_factor;
    }
    int multi_scan = cinfo->progressive_mode || cinfo->comps_in_scan < cinfo->num_components;
    header->coefficient_blocks = multi_scan ? padded : 0;
    header->coded_blocks = multi_scan ? coded : 0;
    // Row buffers (with the context rows fancy upsampling needs), upsampling
    // and colour conversion rows: a generous 64 bytes per column per
    // component per row group, plus tables and fixed state.
    header->working_bytes = (uint64_t)cinfo->num_components * ((uint64_t)cinfo->image_width + 64)
                            * (uint64_t)max_v * 64 + ((uint64_t)1 << 20);
}

static void pcd_fill_header(j_decompress_ptr cinfo, pcd_jpeg_header *header) {
    header->width = (int32_t)cinfo->image_width;
    header->height = (int32_t)cinfo->image_height;
    header->num_components = (int32_t)cinfo->num_components;
    header->color_space = pcd_color_space(cinfo->jpeg_color_space);
    header->progressive = cinfo->progressive_mode ? 1 : 0;
    header->adobe_transform = cinfo->saw_Adobe_marker ? (int32_t)cinfo->Adobe_transform : -1;
    pcd_fill_memory(cinfo, header);
}

int pcd_jpeg_read_header(const uint8_t *data, size_t size,
                         pcd_jpeg_header *header,
                         char *message, size_t message_cap) {
    if (data == NULL || header == NULL || size == 0) return PCD_JPEG_ERR_ARGUMENT;
    struct jpeg_decompress_struct cinfo;
    pcd_error_mgr err;
    memset(&cinfo, 0, sizeof cinfo);
    memset(header, 0, sizeof *header);
    pcd_init_error_mgr(&err, message, message_cap);
    cinfo.err = &err.pub;
    if (setjmp(err.jump)) {
        jpeg_destroy_decompress(&cinfo);
        return err.code;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    pcd_fill_header(&cinfo, header);
    jpeg_destroy_decompress(&cinfo);
    return PCD_JPEG_OK;
}

int pcd_jpeg_decode(const uint8_t *data, size_t size,
                    int scale_denom, uint64_t max_pixels, int max_scans, int fail_on_warning,
                    uint64_t max_memory,
                    uint8_t *out, size_t out_cap,
                    pcd_jpeg_output *output,
                    char *message, size_t message_cap) {
    if (data == NULL || size == 0 || out == NULL || output == NULL) return PCD_JPEG_ERR_ARGUMENT;
    if (scale_denom != 1 && scale_denom != 2 && scale_denom != 4 && scale_denom != 8)
        return PCD_JPEG_ERR_ARGUMENT;
    memset(output, 0, sizeof *output);

    struct jpeg_decompress_struct cinfo;
    struct jpeg_progress_mgr progress;
    pcd_error_mgr err;
    memset(&cinfo, 0, sizeof cinfo);
    memset(&progress, 0, sizeof progress);
    pcd_init_error_mgr(&err, message, message_cap);
    err.max_scans = max_scans;
    err.fail_on_warning = fail_on_warning;
    cinfo.err = &err.pub;
    // Everything touched after a longjmp lives in memory (cinfo, err, output),
    // so no local needs to be volatile.
    if (setjmp(err.jump)) {
        output->warnings = (int32_t)err.pub.num_warnings;
        jpeg_destroy_decompress(&cinfo);
        return err.code;
    }
    jpeg_create_decompress(&cinfo);
    progress.progress_monitor = pcd_progress;
    cinfo.progress = &progress;
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);

    // The bomb check comes before any buffer proportional to the image exists
    // (a progressive file allocates a whole-image coefficient buffer).
    uint64_t pixels = (uint64_t)cinfo.image_width * (uint64_t)cinfo.image_height;
    if (max_pixels > 0 && pixels > max_pixels) {
        char text[160];
        snprintf(text, sizeof text, "header says %ux%u, over the pixel limit",
                 (unsigned)cinfo.image_width, (unsigned)cinfo.image_height);
        pcd_set_message(&err, text);
        jpeg_destroy_decompress(&cinfo);
        return PCD_JPEG_ERR_TOO_MANY_PIXELS;
    }

    // The memory checks, also before any image-sized buffer: a few hundred
    // bytes of progressive header can claim a 40-megapixel coefficient buffer
    // (240 MB), and several such posts decode at once.
    pcd_jpeg_header sizes;
    memset(&sizes, 0, sizeof sizes);
    pcd_fill_memory(&cinfo, &sizes);
    if (sizes.coded_blocks / 8 > (uint64_t)size) {
        char text[200];
        snprintf(text, sizeof text,
                 "multi-scan JPEG claims %ux%u (%llu blocks) in %zu bytes, under one bit per block",
                 (unsigned)cinfo.image_width, (unsigned)cinfo.image_height,
                 (unsigned long long)sizes.coded_blocks, size);
        pcd_set_message(&err, text);
        jpeg_destroy_decompress(&cinfo);
        return PCD_JPEG_ERR_TOO_LITTLE_DATA;
    }
    uint64_t needed = sizes.coefficient_blocks * (uint64_t)sizeof(JBLOCK) + sizes.working_bytes;
    if (max_memory > 0 && needed > max_memory) {
        char text[200];
        snprintf(text, sizeof text, "decoding %ux%u needs about %llu bytes, over the %llu allowed",
                 (unsigned)cinfo.image_width, (unsigned)cinfo.image_height,
                 (unsigned long long)needed, (unsigned long long)max_memory);
        pcd_set_message(&err, text);
        jpeg_destroy_decompress(&cinfo);
        return PCD_JPEG_ERR_MEMORY;
    }
    // libjpeg's own limit: a whole-image buffer that would not fit fails in
    // jpeg_start_decompress (no backing store) instead of being allocated.
    if (max_memory > 0) cinfo.mem->max_memory_to_use = (long)(max_memory > (uint64_t)LONG_MAX ? (uint64_t)LONG_MAX : max_memory);

    switch (cinfo.jpeg_color_space) {
    case JCS_GRAYSCALE:
    case JCS_RGB:
    case JCS_YCbCr:
        cinfo.out_color_space = JCS_RGB; /* 3 bytes per pixel in libjpeg-turbo */
        break;
    case JCS_CMYK:
    case JCS_YCCK:
        cinfo.out_color_space = JCS_CMYK; /* libjpeg has no CMYK->RGB; done by the caller */
        break;
    default: {
        char text[160];
        snprintf(text, sizeof text, "unsupported JPEG colour space with %d components",
                 cinfo.num_components);
        pcd_set_message(&err, text);
        jpeg_destroy_decompress(&cinfo);
        return PCD_JPEG_ERR_COLORSPACE;
    }
    }
    cinfo.scale_num = 1;
    cinfo.scale_denom = (unsigned int)scale_denom;
    // Same settings as Pillow's decoder, so the pixels agree with it:
    // accurate integer IDCT and fancy (smooth) chroma upsampling.
    cinfo.dct_method = JDCT_ISLOW;
    cinfo.do_fancy_upsampling = TRUE;

    jpeg_start_decompress(&cinfo);
    size_t row_bytes = (size_t)cinfo.output_width * (size_t)cinfo.output_components;
    if (cinfo.output_height != 0 && row_bytes > out_cap / (size_t)cinfo.output_height) {
        pcd_set_message(&err, "output buffer too small for the decoded image");
        jpeg_destroy_decompress(&cinfo);
        return PCD_JPEG_ERR_BUFFER;
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = out + (size_t)cinfo.output_scanline * row_bytes;
        if (jpeg_read_scanlines(&cinfo, &row, 1) != 1) {
            // Only a suspending data source returns no row; the memory source
            // never suspends, but never loop forever on that assumption.
            pcd_set_message(&err, "decoder returned no scanline");
            jpeg_destroy_decompress(&cinfo);
            return PCD_JPEG_ERR_TRUNCATED;
        }
    }
    output->width = (int32_t)cinfo.output_width;
    output->height = (int32_t)cinfo.output_height;
    output->components = (int32_t)cinfo.output_components;
    output->warnings = (int32_t)err.pub.num_warnings;
    // All pixels are in; whatever follows (a missing EOI, trailing bytes) cannot
    // change them, so skip jpeg_finish_decompress and just free everything.
    jpeg_destroy_decompress(&cinfo);
    return PCD_JPEG_OK;
}
