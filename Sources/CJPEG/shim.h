#ifndef POSTCLASSD_CJPEG_SHIM_H
#define POSTCLASSD_CJPEG_SHIM_H
// libjpeg(-turbo). jpeglib.h needs stdio.h's FILE and size_t declared first.
#include <stdio.h>
#include <stddef.h>
#include <jpeglib.h>
#endif
