/* Image decoding and preprocessing with stb_image / stb_image_resize. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb/stb_image.h>
#include <stb/stb_image_resize.h>

#include "occ/client.h"

#define MAX_SIDE 16384

occ_status occ_image_preprocess_mem(const unsigned char *buf, size_t size, const occ_preproc *pre, float *out,
                                    size_t out_count, occ_error *e)
{
    if (!pre || !pre->present)
        return occ_fail(e, OCC_ERR_INVALID, "the model has no preprocessing metadata; pack it with --input-size "
                                            "and friends, or pass a tensor with --input");
    size_t need = (size_t)pre->channels * (size_t)pre->height * (size_t)pre->width;
    if (out_count != need)
        return occ_fail(e, OCC_ERR_SHAPE, "the model input has %zu elements but its preprocessing makes %zu",
                        out_count, need);
    if (size > INT_MAX)
        return occ_fail(e, OCC_ERR_INVALID, "image file is too large");
    int w = 0, h = 0, n = 0;
    if (!stbi_info_from_memory(buf, (int)size, &w, &h, &n))
        return occ_fail(e, OCC_ERR_FORMAT, "cannot decode image: %s", stbi_failure_reason());
    if (w <= 0 || h <= 0 || w > MAX_SIDE || h > MAX_SIDE)
        return occ_fail(e, OCC_ERR_INVALID, "image of %dx%d pixels is out of range", w, h);
    int want = pre->channels == 1 ? 1 : 3;
    unsigned char *px = stbi_load_from_memory(buf, (int)size, &w, &h, &n, want);
    if (!px)
        return occ_fail(e, OCC_ERR_FORMAT, "cannot decode image: %s", stbi_failure_reason());
    unsigned char *rs = px;
    if (w != pre->width || h != pre->height) {
        rs = malloc((size_t)pre->width * (size_t)pre->height * (size_t)want);
        if (!rs) {
            stbi_image_free(px);
            return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
        }
        if (!stbir_resize_uint8(px, w, h, 0, rs, pre->width, pre->height, 0, want)) {
            free(rs);
            stbi_image_free(px);
            return occ_fail(e, OCC_ERR_INTERNAL, "image resize failed");
        }
    }
    size_t plane = (size_t)pre->width * (size_t)pre->height;
    int bgr = !strcmp(pre->channel_order, "BGR");
    for (int c = 0; c < want; c++) {
        int src_c = bgr ? 2 - c : c;
        float *o = out + (size_t)c * plane;
        for (size_t i = 0; i < plane; i++)
            o[i] = ((float)rs[i * (size_t)want + (size_t)src_c] * pre->scale - pre->mean[c]) / pre->std[c];
    }
    if (rs != px)
        free(rs);
    stbi_image_free(px);
    return OCC_OK;
}

occ_status occ_image_preprocess(const char *path, const occ_preproc *pre, float *out, size_t out_count,
                                occ_error *e)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return occ_fail(e, OCC_ERR_IO, "cannot open image %s", path);
    unsigned char *buf = NULL;
    size_t size = 0, cap = 0;
    occ_status s = OCC_OK;
    for (;;) {
        if (size == cap) {
            cap = cap ? cap * 2 : 1 << 16;
            if (cap > (256u << 20)) {
                s = occ_fail(e, OCC_ERR_INVALID, "image file %s is larger than 256 MiB", path);
                break;
            }
            unsigned char *nb = realloc(buf, cap);
            if (!nb) {
                s = occ_fail(e, OCC_ERR_NOMEM, "out of memory");
                break;
            }
            buf = nb;
        }
        size_t n = fread(buf + size, 1, cap - size, f);
        size += n;
        if (n == 0)
            break;
    }
    if (!s && ferror(f))
        s = occ_fail(e, OCC_ERR_IO, "cannot read image %s", path);
    fclose(f);
    if (!s)
        s = occ_image_preprocess_mem(buf, size, pre, out, out_count, e);
    if (s && s != OCC_ERR_NOMEM)
        occ_error_prefix(e, "%s", path);
    free(buf);
    return s;
}

size_t occ_topk(const float *v, size_t count, size_t k, size_t *idx)
{
    if (k > count)
        k = count;
    size_t n = 0;
    for (size_t i = 0; i < count; i++) {
        /* insertion into the sorted top list */
        size_t pos = n;
        while (pos > 0 && v[idx[pos - 1]] < v[i])
            pos--;
        if (pos >= k)
            continue;
        size_t end = n < k ? n : k - 1;
        for (size_t j = end; j > pos; j--)
            idx[j] = idx[j - 1];
        idx[pos] = i;
        if (n < k)
            n++;
    }
    return n;
}
