/* QuantizeLinear(x, scale, zero_point) -> saturate(round_half_even(x / scale)
 * + zero_point), uint8 (default) or int8 like zero_point; DequantizeLinear(x,
 * scale, zero_point) -> (x - zero_point) * scale, float32, x uint8, int8 or
 * int32. scale and zero_point are scalars (per tensor) or 1-D along `axis`
 * (default 1, per channel), read at run time (weights or inputs). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"

static occ_status q_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    const occ_tensor *x = occ_ops_in(m, n, 0), *sc = occ_ops_in(m, n, 1),
                     *zp = occ_ops_in(m, n, 2);
    int quant = !strcmp(n->op, "QuantizeLinear");
    int64_t axis;
    occ_status st = occ_ops_attr_int(n, "axis", 1, &axis, e);
    if (st)
        return st;
    int64_t cnt = occ_ops_count(sc->ndim, sc->dims);
    if (sc->ndim > 1 || (zp && (zp->ndim != sc->ndim || occ_ops_count(zp->ndim, zp->dims) != cnt)))
        return occ_fail(e, OCC_ERR_SHAPE, "scale and zero point must be one scalar or two 1-D "
                        "tensors of one length");
    if (sc->ndim == 1) {
        int ax;
        if ((st = occ_ops_axis(axis, x->ndim, 0, &ax, e)))
            return st;
        if (x->dims[ax] != cnt)
            return occ_fail(e, OCC_ERR_SHAPE, "scale has %lld values, axis %d of x has %lld",
                            (long long)cnt, ax, (long long)x->dims[ax]);
    }
    if (zp && quant && occ_ops_dtype(zp) != OCC_DTYPE_UINT8 && occ_ops_dtype(zp) != OCC_DTYPE_INT8)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "zero point is %s (uint8 or int8 needed)",
                        occ_dtype_name(occ_ops_dtype(zp)));
    if (zp && !quant && occ_ops_dtype(zp) != occ_ops_dtype(x))
        return occ_fail(e, OCC_ERR_INVALID, "x is %s and its zero point %s (must be one type)",
                        occ_dtype_name(occ_ops_dtype(x)), occ_dtype_name(occ_ops_dtype(zp)));
    if ((st = occ_ops_set_out(m, n, 0, x->ndim, x->dims, e)))
        return st;
    occ_ops_set_dtype(m, n, 0, !quant ? OCC_DTYPE_FLOAT : zp ? occ_ops_dtype(zp) : OCC_DTYPE_UINT8);
    return OCC_OK;
}

typedef struct q_state {
    int quant;
    uint32_t xdt, zdt, ydt;
    int64_t count, chans, inner; /* element i uses channel (i / inner) % chans */
} q_state;

static occ_status q_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    q_state *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    const occ_tensor *x = occ_ops_in(p->m, p->n, 0), *sc = occ_ops_in(p->m, p->n, 1),
                     *zp = occ_ops_in(p->m, p->n, 2);
    s->quant = !strcmp(p->n->op, "QuantizeLinear");
    s->xdt = occ_ops_dtype(x);
    s->ydt = occ_tensor_dtype(&p->m->tensors[p->n->outputs[0]]);
    s->zdt = zp ? occ_ops_dtype(zp) : 0;
    s->count = occ_ops_count(x->ndim, x->dims);
    s->chans = s->inner = 1;
    if (sc->ndim == 1) {
        int64_t axis = 1;
        int ax = 0;
        occ_status st = occ_ops_attr_int(p->n, "axis", 1, &axis, e);
        if (!st)
            st = occ_ops_axis(axis, x->ndim, 0, &ax, e);
        if (st) {
            free(s);
            return st;
        }
        s->chans = x->dims[ax];
        for (int d = ax + 1; d < x->ndim; d++)
            s->inner *= x->dims[d];
    }
    *state = s;
    return OCC_OK;
}

static occ_status q_run(void *state, const occ_op_exec *x, occ_error *e)
{
    (void)e;
    const q_state *s = state;
    const float *scale = x->in[1];
    for (int64_t i = 0; i < s->count; i++) {
        int64_t c = (i / s->inner) % s->chans;
        int64_t zp = s->zdt ? occ_ops_load_i64(s->zdt, x->in[2], c) : 0;
        if (s->quant) {
            float v = rintf(((const float *)x->in[0])[i] / scale[c]) + (float)zp;
            float lo = s->ydt == OCC_DTYPE_INT8 ? -128.0f : 0.0f;
            float hi = s->ydt == OCC_DTYPE_INT8 ? 127.0f : 255.0f;
            v = v != v ? 0.0f : v < lo ? lo : v > hi ? hi : v;
            occ_ops_store_i64(s->ydt, x->out[0], i, (int64_t)v);
        } else {
            int64_t v = occ_ops_load_i64(s->xdt, x->in[0], i);
            ((float *)x->out[0])[i] = (float)(v - zp) * scale[c];
        }
    }
    return OCC_OK;
}

static void q_destroy(void *s)
{
    free(s);
}

const occ_op_vtable occ_op_quantizelinear = {
    .op = "QuantizeLinear",
    .min_in = 2,
    .max_in = 3,
    .n_out = 1,
    .n_in_types = 3,
    .in_types = {OCC_DTM_FLOAT, OCC_DTM_FLOAT, OCC_DTM(OCC_DTYPE_UINT8) | OCC_DTM(OCC_DTYPE_INT8)},
    .infer = q_infer,
    .prepare = q_prepare,
    .run = q_run,
    .destroy = q_destroy,
};

const occ_op_vtable occ_op_dequantizelinear = {
    .op = "DequantizeLinear",
    .min_in = 2,
    .max_in = 3,
    .n_out = 1,
    .n_in_types = 3,
    .in_types = {OCC_DTM(OCC_DTYPE_UINT8) | OCC_DTM(OCC_DTYPE_INT8) | OCC_DTM(OCC_DTYPE_INT32),
                 OCC_DTM_FLOAT,
                 OCC_DTM(OCC_DTYPE_UINT8) | OCC_DTM(OCC_DTYPE_INT8) | OCC_DTM(OCC_DTYPE_INT32)},
    .infer = q_infer,
    .prepare = q_prepare,
    .run = q_run,
    .destroy = q_destroy,
};

/* DynamicQuantizeLinear(x) -> y (uint8), y_scale, y_zero_point (scalars):
 * the range [min(0, min x), max(0, max x)] mapped onto [0, 255]; y_scale =
 * range / 255, y_zero_point = saturate(round(-min / y_scale)), y as
 * QuantizeLinear with those (all zeros when x is all zero). */
static occ_status dq_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    const occ_tensor *x = occ_ops_in(m, n, 0);
    occ_status st = occ_ops_set_out(m, n, 0, x->ndim, x->dims, e);
    for (uint32_t i = 1; !st && i < n->n_outputs; i++)
        st = occ_ops_set_out(m, n, i, 0, x->dims, e);
    if (st)
        return st;
    occ_ops_set_dtype(m, n, 0, OCC_DTYPE_UINT8);
    if (n->n_outputs > 2)
        occ_ops_set_dtype(m, n, 2, OCC_DTYPE_UINT8);
    return OCC_OK;
}

static occ_status dq_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    q_state *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    const occ_tensor *x = occ_ops_in(p->m, p->n, 0);
    s->count = occ_ops_count(x->ndim, x->dims);
    s->chans = p->n->n_outputs; /* outputs present */
    *state = s;
    return OCC_OK;
}

static occ_status dq_run(void *state, const occ_op_exec *x, occ_error *e)
{
    (void)e;
    const q_state *s = state;
    const float *in = x->in[0];
    uint8_t *y = x->out[0];
    float lo = 0.0f, hi = 0.0f;
    for (int64_t i = 0; i < s->count; i++) {
        float v = in[i];
        lo = v < lo ? v : lo; /* NaN never wins */
        hi = v > hi ? v : hi;
    }
    float scale = (hi - lo) / 255.0f;
    float zp = 0.0f;
    if (scale > 0.0f) {
        zp = rintf(0.0f - lo / scale);
        zp = zp < 0.0f ? 0.0f : zp > 255.0f ? 255.0f : zp;
    }
    for (int64_t i = 0; i < s->count; i++) {
        float v = scale > 0.0f ? rintf(in[i] / scale) + zp : 0.0f;
        v = v != v ? 0.0f : v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v;
        y[i] = (uint8_t)v;
    }
    if (s->chans > 1)
        *(float *)x->out[1] = scale;
    if (s->chans > 2)
        *(uint8_t *)x->out[2] = (uint8_t)zp;
    return OCC_OK;
}

const occ_op_vtable occ_op_dynamicquantizelinear = {
    .op = "DynamicQuantizeLinear",
    .min_in = 1,
    .max_in = 1,
    .n_out = 3,
    .min_out = 1,
    .infer = dq_infer,
    .prepare = dq_prepare,
    .run = dq_run,
    .destroy = q_destroy,
};
