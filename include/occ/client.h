/* Client-side helpers (untrusted side; also used by `occ run`). */
#ifndef OCC_CLIENT_H
#define OCC_CLIENT_H

#include <stddef.h>

#include "occ/model.h"

/* Decodes an image file (PNG, JPEG, BMP, ...; with stb_image), converts it to
 * the pack's channel order, resizes it to the pack's input size and applies
 * scale/mean/std, writing an NCHW float tensor of
 * pre->channels * pre->height * pre->width elements into out (caller
 * allocates). Refuses images larger than 16384x16384. */
occ_status occ_image_preprocess(const char *path, const occ_preproc *pre, float *out, size_t out_count,
                                occ_error *e) OCC_MUST_CHECK;

/* Same, from an encoded image in memory. */
occ_status occ_image_preprocess_mem(const unsigned char *buf, size_t size, const occ_preproc *pre, float *out,
                                    size_t out_count, occ_error *e) OCC_MUST_CHECK;

/* Indices of the k largest values of v (count elements), best first; ties
 * keep the lower index first. Returns the number written (min(k, count)). */
size_t occ_topk(const float *v, size_t count, size_t k, size_t *idx);

#endif
