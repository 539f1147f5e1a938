/* GridSample(X [N,C,H,W], grid [N,Ho,Wo,2]) -> [N,C,Ho,Wo] (opset 16): each
 * output samples X at the grid's (x, y) in [-1, 1] (align_corners: -1 and 1
 * are the corner pixels' centres, else their outer edges), mode bilinear
 * (default), nearest (half to even) or bicubic (A = -0.75), padding_mode
 * zeros (default), border or reflection, as the ONNX reference. float32. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"

enum { GS_BILINEAR, GS_NEAREST, GS_BICUBIC };
enum { GS_ZEROS, GS_BORDER, GS_REFLECT };

typedef struct gs_state {
    int mode, pad, align;
    int64_t n, c, h, w, oh, ow;
} gs_state;

static occ_status gs_params(const occ_node *n, gs_state *s, occ_error *e)
{
    const char *mode, *pad;
    int64_t al;
    occ_status st;
    if ((st = occ_ops_attr_str(n, "mode", "bilinear", &mode, e)) ||
        (st = occ_ops_attr_str(n, "padding_mode", "zeros", &pad, e)) ||
        (st = occ_ops_attr_int(n, "align_corners", 0, &al, e)))
        return st;
    s->mode = !strcmp(mode, "bilinear") ? GS_BILINEAR : !strcmp(mode, "nearest") ? GS_NEAREST
              : !strcmp(mode, "bicubic") ? GS_BICUBIC : -1;
    s->pad = !strcmp(pad, "zeros") ? GS_ZEROS : !strcmp(pad, "border") ? GS_BORDER
             : !strcmp(pad, "reflection") ? GS_REFLECT : -1;
    if (s->mode < 0 || s->pad < 0)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "mode '%s' / padding_mode '%s' not supported", mode, pad);
    s->align = al != 0;
    return OCC_OK;
}

static occ_status gs_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    const occ_tensor *x = occ_ops_in(m, n, 0), *g = occ_ops_in(m, n, 1);
    gs_state s;
    occ_status st = gs_params(n, &s, e);
    if (st)
        return st;
    if (x->ndim != 4 || g->ndim != 4 || g->dims[0] != x->dims[0] || g->dims[3] != 2)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "X must be [N,C,H,W] and grid [N,Ho,Wo,2] (2-D only)");
    int64_t d[4] = {x->dims[0], x->dims[1], g->dims[1], g->dims[2]};
    return occ_ops_set_out(m, n, 0, 4, d, e);
}

static occ_status gs_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    gs_state *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    occ_status st = gs_params(p->n, s, e);
    if (st) {
        free(s);
        return st;
    }
    const occ_tensor *x = occ_ops_in(p->m, p->n, 0), *g = occ_ops_in(p->m, p->n, 1);
    s->n = x->dims[0];
    s->c = x->dims[1];
    s->h = x->dims[2];
    s->w = x->dims[3];
    s->oh = g->dims[1];
    s->ow = g->dims[2];
    *state = s;
    return OCC_OK;
}

static double gs_denorm(double v, int64_t len, int align)
{
    return align ? (v + 1.0) / 2.0 * (double)(len - 1) : ((v + 1.0) * (double)len - 1.0) / 2.0;
}

static double gs_reflect(double x, double lo, double hi)
{
    double rng = hi - lo;
    if (rng <= 0.0)
        return lo;
    if (x < lo) {
        double dx = lo - x;
        double k = floor(dx / rng), r = dx - k * rng;
        return fmod(k, 2.0) == 0.0 ? lo + r : hi - r;
    }
    if (x > hi) {
        double dx = x - hi;
        double k = floor(dx / rng), r = dx - k * rng;
        return fmod(k, 2.0) == 0.0 ? hi - r : lo + r;
    }
    return x;
}

/* X[r, c] of one plane under the padding mode (bounds from the mode). */
static double gs_pixel(const gs_state *s, const float *img, double r, double c, const double *bd)
{
    int64_t ri, ci;
    if (s->pad == GS_ZEROS) {
        if (r < 0 || c < 0 || r >= (double)s->h || c >= (double)s->w)
            return 0.0;
        ri = (int64_t)r;
        ci = (int64_t)c;
    } else if (s->pad == GS_BORDER) {
        ri = (int64_t)(r < 0 ? 0 : r > (double)(s->h - 1) ? (double)(s->h - 1) : r);
        ci = (int64_t)(c < 0 ? 0 : c > (double)(s->w - 1) ? (double)(s->w - 1) : c);
    } else {
        /* clamped as doubles before the conversion: never outside, whatever
         * the rounding of a huge coordinate */
        double cr = gs_reflect(c, bd[0], bd[2]), rr = gs_reflect(r, bd[1], bd[3]);
        ci = (int64_t)(cr > 0 ? (cr < (double)(s->w - 1) ? cr : (double)(s->w - 1)) : 0);
        ri = (int64_t)(rr > 0 ? (rr < (double)(s->h - 1) ? rr : (double)(s->h - 1)) : 0);
    }
    return img[ri * s->w + ci];
}

static void gs_cubic(double x, double *k)
{
    const double a = -0.75;
    x = fabs(x);
    k[0] = ((a * (x + 1) - 5 * a) * (x + 1) + 8 * a) * (x + 1) - 4 * a;
    k[1] = ((a + 2) * x - (a + 3)) * x * x + 1;
    k[2] = ((a + 2) * (1 - x) - (a + 3)) * (1 - x) * (1 - x) + 1;
    k[3] = ((a * (2 - x) - 5 * a) * (2 - x) + 8 * a) * (2 - x) - 4 * a;
}

static occ_status gs_run(void *state, const occ_op_exec *x, occ_error *e)
{
    (void)e;
    const gs_state *s = state;
    const float *X = x->in[0], *G = x->in[1];
    float *Y = x->out[0];
    double bd[4]; /* x_min, y_min, x_max, y_max for reflection */
    if (s->align) {
        bd[0] = 0;
        bd[1] = 0;
        bd[2] = (double)(s->w - 1);
        bd[3] = (double)(s->h - 1);
    } else {
        bd[0] = -0.5;
        bd[1] = -0.5;
        bd[2] = (double)s->w - 0.5;
        bd[3] = (double)s->h - 0.5;
    }
    for (int64_t b = 0; b < s->n; b++)
        for (int64_t oy = 0; oy < s->oh; oy++)
            for (int64_t ox = 0; ox < s->ow; ox++) {
                const float *gp = G + ((b * s->oh + oy) * s->ow + ox) * 2;
                double px = gs_denorm(gp[0], s->w, s->align), py = gs_denorm(gp[1], s->h, s->align);
                if (s->mode != GS_BICUBIC) {
                    if (s->pad == GS_BORDER) {
                        px = px < 0 ? 0 : px > (double)(s->w - 1) ? (double)(s->w - 1) : px;
                        py = py < 0 ? 0 : py > (double)(s->h - 1) ? (double)(s->h - 1) : py;
                    } else if (s->pad == GS_REFLECT) {
                        px = gs_reflect(px, bd[0], bd[2]);
                        py = gs_reflect(py, bd[1], bd[3]);
                    }
                }
                for (int64_t ch = 0; ch < s->c; ch++) {
                    const float *img = X + (b * s->c + ch) * s->h * s->w;
                    double v;
                    if (!isfinite(px) || !isfinite(py)) { /* NaN or infinite grid: 0 */
                        v = 0.0;
                    } else if (s->mode == GS_NEAREST) {
                        v = gs_pixel(s, img, nearbyint(py), nearbyint(px), bd);
                    } else if (s->mode == GS_BILINEAR) {
                        double x1 = floor(px), y1 = floor(py), dx = px - x1, dy = py - y1;
                        v = gs_pixel(s, img, y1, x1, bd) * (1 - dx) * (1 - dy) +
                            gs_pixel(s, img, y1, x1 + 1, bd) * dx * (1 - dy) +
                            gs_pixel(s, img, y1 + 1, x1, bd) * (1 - dx) * dy +
                            gs_pixel(s, img, y1 + 1, x1 + 1, bd) * dx * dy;
                    } else {
                        double x0 = floor(px) - 1, y0 = floor(py) - 1, kx[4], ky[4];
                        gs_cubic(px - floor(px), kx);
                        gs_cubic(py - floor(py), ky);
                        v = 0.0;
                        for (int i = 0; i < 4; i++) {
                            double row = 0.0;
                            for (int j = 0; j < 4; j++)
                                row += kx[j] * gs_pixel(s, img, y0 + i, x0 + j, bd);
                            v += ky[i] * row;
                        }
                    }
                    Y[((b * s->c + ch) * s->oh + oy) * s->ow + ox] = (float)v;
                }
            }
    return OCC_OK;
}

static void gs_destroy(void *s)
{
    free(s);
}

const occ_op_vtable occ_op_gridsample = {
    .op = "GridSample",
    .min_in = 2,
    .max_in = 2,
    .n_out = 1,
    .infer = gs_infer,
    .prepare = gs_prepare,
    .run = gs_run,
    .destroy = gs_destroy,
};
