/* Resize and Upsample, nearest mode: per-dimension index tables built at
 * prepare time, then a gather. Scales or sizes are folded into attributes.
 * Coordinate modes: asymmetric, half_pixel, pytorch_half_pixel, align_corners,
 * tf_half_pixel_for_nn; nearest modes: floor, ceil, round_prefer_floor,
 * round_prefer_ceil. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"

enum { CT_ASYM, CT_HALF, CT_PT_HALF, CT_ALIGN, CT_TF_NN };
enum { NM_FLOOR, NM_CEIL, NM_RPF, NM_RPC };

typedef struct resize_params {
    int nd, coord, nearest;
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
    if (strcmp(mode, "nearest") != 0)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "mode = %s is not supported (nearest only)", mode);
    static const char *const cts[] = {"asymmetric", "half_pixel", "pytorch_half_pixel",
                                      "align_corners", "tf_half_pixel_for_nn"};
    static const char *const nms[] = {"floor", "ceil", "round_prefer_floor", "round_prefer_ceil"};
    if ((p->coord = pick(ct, cts, 5)) < 0)
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
    int64_t *tab[OCC_MAX_DIMS];
} resize_state;

static void resize_destroy(void *v)
{
    resize_state *s = v;
    if (!s)
        return;
    for (int d = 0; d < OCC_MAX_DIMS; d++)
        occ_ops_free(s->tab[d]);
    free(s);
}

static int64_t nearest_index(const resize_params *p, int d, int64_t o)
{
    double in = (double)p->idims[d], out = (double)p->odims[d], sc = p->scale[d], x;
    switch (p->coord) {
    case CT_ASYM: x = (double)o / sc; break;
    case CT_HALF: x = ((double)o + 0.5) / sc - 0.5; break;
    case CT_PT_HALF: x = out > 1 ? ((double)o + 0.5) / sc - 0.5 : 0.0; break;
    case CT_ALIGN: x = out > 1 ? (double)o * (in - 1) / (out - 1) : 0.0; break;
    default: x = ((double)o + 0.5) / sc; break;
    }
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

static occ_status resize_run(void *state, const occ_op_exec *x, occ_error *e)
{
    const resize_state *s = state;
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
