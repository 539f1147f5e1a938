/* RoiAlign (opset 16): for each region of interest rois[r] = (x1, y1, x2, y2)
 * (float32, in input coordinates times spatial_scale) of image
 * batch_indices[r] of X [N, C, H, W], an output_height x output_width grid of
 * bins, each the average (mode "avg", default) or maximum ("max") of
 * sampling_ratio^2 bilinear samples (sampling_ratio 0: ceil(roi size / bins)
 * per axis). coordinate_transformation_mode "half_pixel" (default) shifts by
 * -0.5 pixel; "output_half_pixel" (the opset-10 behaviour) does not and makes
 * each roi at least 1 x 1. Y [num_rois, C, output_height, output_width].
 *
 * Sampling and "max" follow ONNX Runtime's kernel (the ONNX reference
 * implementation is a port of it): samples outside [-1, H] x [-1, W] give 0,
 * "max" takes the largest weighted corner of each sample. Every batch index
 * is checked before anything is written. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"

typedef struct roi_geom {
    int max_mode, half_pixel;
    int64_t n, c, h, w, rois, oh, ow, sampling;
    float scale;
} roi_geom;

static occ_status roi_get(const occ_model *m, const occ_node *n, roi_geom *g, occ_error *e)
{
    const occ_tensor *x = occ_ops_in(m, n, 0), *r = occ_ops_in(m, n, 1), *b = occ_ops_in(m, n, 2);
    const char *mode, *ctm;
    occ_status st;
    if ((st = occ_ops_attr_str(n, "mode", "avg", &mode, e)) ||
        (st = occ_ops_attr_str(n, "coordinate_transformation_mode", "half_pixel", &ctm, e)) ||
        (st = occ_ops_attr_int(n, "output_height", 1, &g->oh, e)) ||
        (st = occ_ops_attr_int(n, "output_width", 1, &g->ow, e)) ||
        (st = occ_ops_attr_int(n, "sampling_ratio", 0, &g->sampling, e)) ||
        (st = occ_ops_attr_float(n, "spatial_scale", 1.0f, &g->scale, e)))
        return st;
    if (strcmp(mode, "avg") && strcmp(mode, "max"))
        return occ_fail(e, OCC_ERR_INVALID, "mode '%s' (avg or max)", mode);
    if (strcmp(ctm, "half_pixel") && strcmp(ctm, "output_half_pixel"))
        return occ_fail(e, OCC_ERR_INVALID, "coordinate_transformation_mode '%s' (half_pixel or "
                        "output_half_pixel)", ctm);
    g->max_mode = !strcmp(mode, "max");
    g->half_pixel = !strcmp(ctm, "half_pixel");
    if (g->oh < 1 || g->ow < 1 || g->oh > (1 << 16) || g->ow > (1 << 16) || g->sampling < 0 ||
        g->sampling > (1 << 16) || !isfinite(g->scale))
        return occ_fail(e, OCC_ERR_INVALID, "output %lld x %lld, sampling_ratio %lld, "
                        "spatial_scale %g", (long long)g->oh, (long long)g->ow,
                        (long long)g->sampling, (double)g->scale);
    if (x->ndim != 4)
        return occ_fail(e, OCC_ERR_SHAPE, "X has rank %d, RoiAlign needs [N, C, H, W]", x->ndim);
    if (r->ndim != 2 || r->dims[1] != 4)
        return occ_fail(e, OCC_ERR_SHAPE, "rois must be [num_rois, 4]");
    if (b->ndim != 1 || b->dims[0] != r->dims[0])
        return occ_fail(e, OCC_ERR_SHAPE, "batch_indices must be [num_rois]");
    g->n = x->dims[0];
    g->c = x->dims[1];
    g->h = x->dims[2];
    g->w = x->dims[3];
    g->rois = r->dims[0];
    return OCC_OK;
}

static occ_status roi_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    roi_geom g;
    occ_status st = roi_get(m, n, &g, e);
    if (st)
        return st;
    int64_t d[4] = {g.rois, g.c, g.oh, g.ow};
    return occ_ops_set_out(m, n, 0, 4, d, e);
}

static occ_status roi_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    roi_geom *g = calloc(1, sizeof *g);
    if (!g)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    occ_status st = roi_get(p->m, p->n, g, e);
    if (st) {
        free(g);
        return st;
    }
    *state = g;
    return OCC_OK;
}

/* One bilinear sample at (y, x): the four corners' offsets and weights
 * (all 0 outside [-1, h] x [-1, w]). */
typedef struct sample {
    int64_t o[4];
    float w[4];
} sample;

static void bilinear(const roi_geom *g, float y, float x, sample *s)
{
    if (!(y >= -1.0f && y <= (float)g->h && x >= -1.0f && x <= (float)g->w)) { /* (NaN too) */
        memset(s, 0, sizeof *s);
        return;
    }
    if (y <= 0)
        y = 0;
    if (x <= 0)
        x = 0;
    int64_t yl = (int64_t)y, xl = (int64_t)x, yh, xh;
    if (yl >= g->h - 1) {
        yh = yl = g->h - 1;
        y = (float)yl;
    } else {
        yh = yl + 1;
    }
    if (xl >= g->w - 1) {
        xh = xl = g->w - 1;
        x = (float)xl;
    } else {
        xh = xl + 1;
    }
    float ly = y - (float)yl, lx = x - (float)xl, hy = 1.0f - ly, hx = 1.0f - lx;
    s->o[0] = yl * g->w + xl;
    s->o[1] = yl * g->w + xh;
    s->o[2] = yh * g->w + xl;
    s->o[3] = yh * g->w + xh;
    s->w[0] = hy * hx;
    s->w[1] = hy * lx;
    s->w[2] = ly * hx;
    s->w[3] = ly * lx;
}

static occ_status roi_run(void *state, const occ_op_exec *x, occ_error *e)
{
    const roi_geom *g = state;
    const float *in = x->in[0], *rois = x->in[1];
    const void *bi = x->in[2];
    float *out = x->out[0];
    for (int64_t r = 0; r < g->rois; r++) {
        int64_t b = ((const int64_t *)bi)[r];
        if (b < 0 || b >= g->n)
            return occ_fail(e, OCC_ERR_INVALID, "batch_indices[%lld] = %lld (X has %lld images)",
                            (long long)r, (long long)b, (long long)g->n);
        for (int k = 0; k < 4; k++)
            if (!isfinite(rois[r * 4 + k]))
                return occ_fail(e, OCC_ERR_INVALID, "roi %lld is not finite", (long long)r);
    }
    const float off = g->half_pixel ? 0.5f : 0.0f;
    for (int64_t r = 0; r < g->rois; r++) {
        const float *rr = rois + r * 4;
        int64_t b = ((const int64_t *)bi)[r];
        float x0 = rr[0] * g->scale - off, y0 = rr[1] * g->scale - off;
        float x1 = rr[2] * g->scale - off, y1 = rr[3] * g->scale - off;
        float rw = x1 - x0, rh = y1 - y0;
        if (!g->half_pixel) {
            rw = rw > 1.0f ? rw : 1.0f;
            rh = rh > 1.0f ? rh : 1.0f;
        }
        float bh = rh / (float)g->oh, bw = rw / (float)g->ow;
        /* samples per bin, at most 4096 per axis so that a huge roi cannot stall the run */
        double gh_d = g->sampling > 0 ? (double)g->sampling : ceil((double)rh / (double)g->oh);
        double gw_d = g->sampling > 0 ? (double)g->sampling : ceil((double)rw / (double)g->ow);
        /* (a negative or NaN size: no samples, the bin is 0) */
        int64_t gh = !(gh_d >= 0) ? 0 : gh_d > 4096 ? 4096 : (int64_t)gh_d;
        int64_t gw = !(gw_d >= 0) ? 0 : gw_d > 4096 ? 4096 : (int64_t)gw_d;
        float count = (float)(gh * gw > 1 ? gh * gw : 1);
        for (int64_t c = 0; c < g->c; c++) {
            const float *plane = in + (b * g->c + c) * g->h * g->w;
            float *dst = out + ((r * g->c + c) * g->oh) * g->ow;
            for (int64_t ph = 0; ph < g->oh; ph++)
                for (int64_t pw = 0; pw < g->ow; pw++) {
                    float acc = 0;
                    int first = 1;
                    for (int64_t iy = 0; iy < gh; iy++) {
                        float yy = y0 + (float)ph * bh + ((float)iy + 0.5f) * bh / (float)gh;
                        for (int64_t ix = 0; ix < gw; ix++) {
                            float xx = x0 + (float)pw * bw + ((float)ix + 0.5f) * bw / (float)gw;
                            sample s;
                            bilinear(g, yy, xx, &s);
                            if (g->max_mode) {
                                float v = s.w[0] * plane[s.o[0]];
                                for (int k = 1; k < 4; k++)
                                    v = fmaxf(v, s.w[k] * plane[s.o[k]]);
                                acc = first ? v : fmaxf(acc, v);
                                first = 0;
                            } else {
                                for (int k = 0; k < 4; k++)
                                    acc += s.w[k] * plane[s.o[k]];
                            }
                        }
                    }
                    dst[ph * g->ow + pw] = g->max_mode ? acc : acc / count;
                }
        }
    }
    return OCC_OK;
}

static void roi_destroy(void *s)
{
    free(s);
}

static uint64_t roi_flops(const occ_model *m, const occ_node *n)
{
    const occ_tensor *y = &m->tensors[n->outputs[0]];
    return (uint64_t)occ_ops_count(y->ndim, y->dims) * 16u;
}

const occ_op_vtable occ_op_roialign = {
    .op = "RoiAlign",
    .min_in = 3,
    .max_in = 3,
    .n_out = 1,
    .n_in_types = 3,
    .in_types = {OCC_DTM_FLOAT, OCC_DTM_FLOAT, OCC_DTM(OCC_DTYPE_INT64)},
    .infer = roi_infer,
    .flops = roi_flops,
    .prepare = roi_prepare,
    .run = roi_run,
    .destroy = roi_destroy,
};
