/* Resize and Upsample. Scales, sizes (and roi) are folded into attributes.
 * Nearest mode: per-dimension index tables built at prepare time, then a
 * gather. Linear and cubic modes: separable, one pass per resized dimension,
 * each output index a weighted sum of 2 or 4 input taps (tables built at
 * prepare time; indices clamped to the edge, as the ONNX reference pads by
 * repeating it; exclude_outside drops the taps outside and renormalises).
 * Coordinate modes: asymmetric, half_pixel, pytorch_half_pixel, align_corners,
 * tf_half_pixel_for_nn, tf_crop_and_resize (roi, extrapolation_value);
 * nearest modes: floor, ceil, round_prefer_floor, round_prefer_ceil. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"

enum { CT_ASYM, CT_HALF, CT_PT_HALF, CT_ALIGN, CT_TF_NN, CT_TF_CROP };
enum { NM_FLOOR, NM_CEIL, NM_RPF, NM_RPC };
enum { RM_NEAREST, RM_LINEAR, RM_CUBIC };

typedef struct resize_params {
    int nd, coord, nearest, mode, exclude_outside;
    float cubic_a, extrapolation;
    float roi[2 * OCC_MAX_DIMS]; /* tf_crop_and_resize: starts then ends */
    float scale[OCC_MAX_DIMS];
    int64_t idims[OCC_MAX_DIMS], odims[OCC_MAX_DIMS];
} resize_params;

static int pick(const char *s, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

static occ_status resize_get(const occ_model *m, const occ_node *n, resize_params *p, occ_error *e)
{
    const occ_tensor *x = occ_ops_in(m, n, 0);
    int upsample = strcmp(n->op, "Upsample") == 0;
    const char *mode, *ct, *nm;
    occ_status st;
    for (uint32_t i = 1; i < n->n_inputs; i++)
        if (n->inputs[i] >= 0)
            return occ_fail(e, OCC_ERR_UNSUPPORTED,
                            "run-time roi/scales/sizes inputs are not supported");
    if ((st = occ_ops_attr_str(n, "mode", "nearest", &mode, e)) ||
        (st = occ_ops_attr_str(n, "coordinate_transformation_mode",
                               upsample ? "asymmetric" : "half_pixel", &ct, e)) ||
        (st = occ_ops_attr_str(n, "nearest_mode", upsample ? "floor" : "round_prefer_floor", &nm,
                               e)))
        return st;
    static const char *const modes[] = {"nearest", "linear", "cubic"};
    if (upsample && !strcmp(mode, "bilinear"))
        mode = "linear"; /* Upsample-7's name for it */
    if ((p->mode = pick(mode, modes, 3)) < 0)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "mode = %s is not supported (nearest, linear, "
                        "cubic)", mode);
    int64_t excl;
    if ((st = occ_ops_attr_float(n, "cubic_coeff_a", -0.75f, &p->cubic_a, e)) ||
        (st = occ_ops_attr_float(n, "extrapolation_value", 0.0f, &p->extrapolation, e)) ||
        (st = occ_ops_attr_int(n, "exclude_outside", 0, &excl, e)))
        return st;
    if (excl != 0 && excl != 1)
        return occ_fail(e, OCC_ERR_INVALID, "exclude_outside must be 0 or 1");
    p->exclude_outside = (int)excl;
    static const char *const cts[] = {"asymmetric", "half_pixel", "pytorch_half_pixel",
                                      "align_corners", "tf_half_pixel_for_nn",
                                      "tf_crop_and_resize"};
    static const char *const nms[] = {"floor", "ceil", "round_prefer_floor", "round_prefer_ceil"};
    if ((p->coord = pick(ct, cts, 6)) < 0)
        return occ_fail(e, OCC_ERR_UNSUPPORTED,
                        "coordinate_transformation_mode = %s is not supported", ct);
    if ((p->nearest = pick(nm, nms, 4)) < 0)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "nearest_mode = %s is not supported", nm);
    if (occ_ops_attr(n, "axes"))
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "attribute axes is not supported");
    const char *kar;
    if ((st = occ_ops_attr_str(n, "keep_aspect_ratio_policy", "stretch", &kar, e)))
        return st;
    if (strcmp(kar, "stretch") != 0)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "keep_aspect_ratio_policy = %s is not supported",
                        kar);
    p->nd = x->ndim;
    const occ_attr *sc = occ_ops_attr(n, "scales"), *sz = occ_ops_attr(n, "sizes");
    if (sz && sz->count) {
        const int64_t *v;
        uint32_t c;
        if ((st = occ_ops_attr_ints(n, "sizes", OCC_MAX_DIMS, &v, &c, e)))
            return st;
        if ((int)c != x->ndim)
            return occ_fail(e, OCC_ERR_INVALID, "sizes has %u values for rank %d", c, x->ndim);
        for (int d = 0; d < x->ndim; d++) {
            if (v[d] <= 0 || v[d] > (INT64_C(1) << 32))
                return occ_fail(e, OCC_ERR_INVALID, "sizes[%d] = %lld", d, (long long)v[d]);
            p->odims[d] = v[d];
            p->scale[d] = (float)v[d] / (float)x->dims[d];
        }
    } else if (sc) {
        if (sc->type != OCC_ATTR_FLOATS || (sc->count && !sc->floats))
            return occ_fail(e, OCC_ERR_INVALID, "attribute scales must be a list of floats");
        if ((int)sc->count != x->ndim)
            return occ_fail(e, OCC_ERR_INVALID, "scales has %u values for rank %d", sc->count,
                            x->ndim);
        for (int d = 0; d < x->ndim; d++) {
            float f = sc->floats[d];
            if (!(f > 0.0f) || !(f < 65536.0f))
                return occ_fail(e, OCC_ERR_INVALID, "scales[%d] = %g", d, (double)f);
            p->scale[d] = f;
            double o = floor((double)x->dims[d] * (double)f);
            if (o < 1.0 || o > (double)(INT64_C(1) << 40))
                return occ_fail(e, OCC_ERR_SHAPE, "scaled dimension %d is %g", d, o);
            p->odims[d] = (int64_t)o;
        }
    } else {
        return occ_fail(e, OCC_ERR_INVALID, "needs attribute scales or sizes");
    }
    for (int d = 0; d < x->ndim; d++)
        p->idims[d] = x->dims[d];
    if (p->coord == CT_TF_CROP) {
        const occ_attr *roi = occ_ops_attr(n, "roi");
        if (!roi || roi->type != OCC_ATTR_FLOATS || roi->count != 2u * (uint32_t)x->ndim ||
            !roi->floats)
            return occ_fail(e, OCC_ERR_INVALID, "tf_crop_and_resize needs a constant roi of %d "
                            "values", 2 * x->ndim);
        for (int d = 0; d < 2 * x->ndim; d++) {
            if (!isfinite(roi->floats[d]))
                return occ_fail(e, OCC_ERR_INVALID, "roi[%d] is not finite", d);
            p->roi[d] = roi->floats[d];
        }
    }
    return OCC_OK;
}

static occ_status resize_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    resize_params p;
    occ_status st = resize_get(m, n, &p, e);
    if (st)
        return st;
    return occ_ops_set_out(m, n, 0, p.nd, p.odims, e);
}

static uint64_t resize_flops(const occ_model *m, const occ_node *n)
{
    return 0;
}

typedef struct resize_state {
    resize_params p;
    int64_t *tab[OCC_MAX_DIMS];  /* nearest: input index; else taps' indices */
    float *wt[OCC_MAX_DIMS];     /* linear/cubic: taps' weights (ntap per output index) */
    uint8_t *oob[OCC_MAX_DIMS];  /* tf_crop_and_resize: output index outside the input */
    int ntap, pass[OCC_MAX_DIMS];
    float *buf[2];               /* intermediate results between passes */
} resize_state;

static void resize_destroy(void *v)
{
    resize_state *s = v;
    if (!s)
        return;
    for (int d = 0; d < OCC_MAX_DIMS; d++) {
        occ_ops_free(s->tab[d]);
        occ_ops_free(s->wt[d]);
        occ_ops_free(s->oob[d]);
    }
    occ_ops_free(s->buf[0]);
    occ_ops_free(s->buf[1]);
    free(s);
}

/* Input coordinate of output index o along d. */
static double resize_coord(const resize_params *p, int d, int64_t o)
{
    /* the reference's "output width" is scale * input, not the floored size */
    double in = (double)p->idims[d], sc = p->scale[d], out = sc * in;
    switch (p->coord) {
    case CT_ASYM: return (double)o / sc;
    case CT_HALF: return ((double)o + 0.5) / sc - 0.5;
    case CT_PT_HALF: return out > 1 ? ((double)o + 0.5) / sc - 0.5 : 0.0;
    case CT_ALIGN: return out > 1 ? (double)o * (in - 1) / (out - 1) : 0.0;
    case CT_TF_CROP: {
        double a = p->roi[d], b = p->roi[p->nd + d];
        out = (double)p->odims[d];
        return out > 1 ? a * (in - 1) + (double)o * (b - a) * (in - 1) / (out - 1)
                       : 0.5 * (a + b) * (in - 1);
    }
    default: return ((double)o + 0.5) / sc;
    }
}

static int64_t nearest_index(const resize_params *p, int d, int64_t o)
{
    double in = (double)p->idims[d], x = resize_coord(p, d, o);
    double r;
    switch (p->nearest) {
    case NM_FLOOR: r = floor(x); break;
    case NM_CEIL: r = ceil(x); break;
    case NM_RPF: r = (x == floor(x) + 0.5) ? floor(x) : round(x); break;
    default: r = (x == floor(x) + 0.5) ? ceil(x) : round(x); break;
    }
    if (r < 0)
        r = 0;
    if (r > in - 1)
        r = in - 1;
    return (int64_t)r;
}

static occ_status interp_tables(resize_state *s, occ_error *e);

static occ_status resize_prepare(occ_op_prep *pp, void **state, occ_error *e)
{
    resize_state *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    occ_status st = resize_get(pp->m, pp->n, &s->p, e);
    if (st) {
        resize_destroy(s);
        return st;
    }
    if (s->p.mode != RM_NEAREST) {
        if ((st = interp_tables(s, e))) {
            resize_destroy(s);
            return st;
        }
        *state = s;
        return OCC_OK;
    }
    for (int d = 0; d < s->p.nd; d++) {
        s->tab[d] = occ_ops_alloc((uint64_t)s->p.odims[d] * sizeof(int64_t));
        if (!s->tab[d]) {
            resize_destroy(s);
            return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
        }
        for (int64_t o = 0; o < s->p.odims[d]; o++)
            s->tab[d][o] = nearest_index(&s->p, d, o);
    }
    *state = s;
    return OCC_OK;
}

/* One resized dim: out[a, o, b] = sum_t w[o, t] * in[a, idx[o, t], b]. */
static void interp_pass(const resize_state *s, int d, const int64_t *cur, const float *in,
                        float *out)
{
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < d; i++)
        outer *= cur[i];
    for (int i = d + 1; i < s->p.nd; i++)
        inner *= cur[i];
    const int64_t n_in = s->p.idims[d], n_out = s->p.odims[d];
    const int nt = s->ntap;
#pragma omp parallel for if (outer * n_out * inner > 65536) schedule(static)
    for (int64_t a = 0; a < outer; a++) {
        const float *src = in + a * n_in * inner;
        float *dst = out + a * n_out * inner;
        for (int64_t o = 0; o < n_out; o++) {
            float *row = dst + o * inner;
            if (s->oob[d] && s->oob[d][o]) {
                for (int64_t b = 0; b < inner; b++)
                    row[b] = s->p.extrapolation;
                continue;
            }
            const int64_t *ix = s->tab[d] + o * nt;
            const float *w = s->wt[d] + o * nt;
            for (int64_t b = 0; b < inner; b++) {
                float acc = 0.0f;
                for (int t = 0; t < nt; t++)
                    acc += w[t] * src[ix[t] * inner + b];
                row[b] = acc;
            }
        }
    }
}

/* Taps and weights of every resized dim; scratch for the passes between. */
static occ_status interp_tables(resize_state *s, occ_error *e)
{
    resize_params *p = &s->p;
    const int nt = s->ntap = p->mode == RM_LINEAR ? 2 : 4;
    const double A = p->cubic_a;
    int64_t cur[OCC_MAX_DIMS];
    uint64_t cnt[OCC_MAX_DIMS] = {0}; /* elements written by each pass */
    int last = -1, n_pass = 0;
    memcpy(cur, p->idims, sizeof cur);
    for (int d = 0; d < p->nd; d++) {
        const int64_t n_in = p->idims[d], n_out = p->odims[d];
        s->tab[d] = occ_ops_alloc((uint64_t)n_out * (uint64_t)nt * sizeof(int64_t));
        s->wt[d] = occ_ops_alloc((uint64_t)n_out * (uint64_t)nt * sizeof(float));
        if (p->coord == CT_TF_CROP)
            s->oob[d] = occ_ops_alloc((uint64_t)n_out);
        if (!s->tab[d] || !s->wt[d] || (p->coord == CT_TF_CROP && !s->oob[d]))
            return occ_fail(e, OCC_ERR_NOMEM, "out of memory for Resize tables");
        int identity = n_in == n_out;
        for (int64_t o = 0; o < n_out; o++) {
            double x = resize_coord(p, d, o);
            if (p->coord == CT_TF_CROP && (x < 0 || x > (double)(n_in - 1))) {
                s->oob[d][o] = 1;
                identity = 0;
                continue;
            }
            double x0 = floor(x), t = x - x0;
            double w[4];
            int64_t first;
            if (nt == 2) {
                w[0] = 1.0 - t;
                w[1] = t;
                first = (int64_t)x0;
            } else {
                double t1 = t + 1, t2 = 1 - t, t3 = 2 - t;
                w[0] = ((A * t1 - 5 * A) * t1 + 8 * A) * t1 - 4 * A;
                w[1] = ((A + 2) * t - (A + 3)) * t * t + 1;
                w[2] = ((A + 2) * t2 - (A + 3)) * t2 * t2 + 1;
                w[3] = ((A * t3 - 5 * A) * t3 + 8 * A) * t3 - 4 * A;
                first = (int64_t)x0 - 1;
            }
            double sum = 0;
            for (int k = 0; k < nt; k++) {
                int64_t i = first + k;
                if (p->exclude_outside && (i < 0 || i >= n_in))
                    w[k] = 0;
                sum += w[k];
            }
            for (int k = 0; k < nt; k++) {
                int64_t i = first + k;
                i = i < 0 ? 0 : (i >= n_in ? n_in - 1 : i);
                s->tab[d][o * nt + k] = i;
                s->wt[d][o * nt + k] = (float)(p->exclude_outside && sum != 0 ? w[k] / sum : w[k]);
                if (w[k] != 0 && (i != o || fabs(w[k] - 1.0) > 1e-12))
                    identity = 0;
            }
        }
        s->pass[d] = !identity;
        if (s->pass[d]) {
            cur[d] = n_out;
            cnt[d] = (uint64_t)occ_ops_count(p->nd, cur);
            if (!cnt[d])
                return occ_fail(e, OCC_ERR_UNSUPPORTED, "Resize intermediate too large");
            last = d;
            n_pass++;
        }
    }
    if (last < 0) {
        /* every dim maps onto itself: one copying pass, straight into the output */
        s->pass[0] = 1;
        return OCC_OK;
    }
    /* The last pass writes the output itself: the buffers (held for the
     * model's life) need only the passes before it, and a second one only
     * from three passes on. Sized by the output, fcn_resnet50's 21x256x256
     * upsampling held 11 MB; by the first pass, 0.7 MB. */
    uint64_t big = 0;
    for (int d = 0; d < last; d++)
        big = cnt[d] > big ? cnt[d] : big;
    for (int b = 0; b < 2 && b < n_pass - 1; b++)
        if (!(s->buf[b] = occ_ops_alloc(big * sizeof(float))))
            return occ_fail(e, OCC_ERR_NOMEM, "out of memory for Resize");
    return OCC_OK;
}

static occ_status resize_run(void *state, const occ_op_exec *x, occ_error *e)
{
    const resize_state *s = state;
    if (s->p.mode != RM_NEAREST) {
        int64_t cur[OCC_MAX_DIMS];
        int last = 0, k = 0;
        memcpy(cur, s->p.idims, sizeof cur);
        for (int d = 0; d < s->p.nd; d++)
            if (s->pass[d])
                last = d;
        const float *src = x->in[0];
        for (int d = 0; d <= last; d++) {
            if (!s->pass[d])
                continue;
            float *dst = d == last ? x->out[0] : s->buf[k];
            interp_pass(s, d, cur, src, dst);
            cur[d] = s->p.odims[d];
            src = dst;
            k ^= 1;
        }
        (void)e;
        return OCC_OK;
    }
    occ_ops_gather(s->p.nd, s->p.odims, s->p.idims, (const int64_t *const *)s->tab, 0.0f,
                   x->in[0], x->out[0]);
    return OCC_OK;
}

const occ_op_vtable occ_op_resize = {
    .op = "Resize",
    .min_in = 1,
    .max_in = 4,
    .n_out = 1,
    .infer = resize_infer,
    .flops = resize_flops,
    .prepare = resize_prepare,
    .run = resize_run,
    .destroy = resize_destroy,
};

const occ_op_vtable occ_op_upsample = {
    .op = "Upsample",
    .min_in = 1,
    .max_in = 2,
    .n_out = 1,
    .infer = resize_infer,
    .flops = resize_flops,
    .prepare = resize_prepare,
    .run = resize_run,
    .destroy = resize_destroy,
};
