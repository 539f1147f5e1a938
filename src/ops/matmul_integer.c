/* MatMulInteger(A, B, a_zero_point, b_zero_point) -> int32 and
 * QLinearMatMul(a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp) -> uint8 or
 * int8: (A - a_zp) @ (B - b_zp) accumulated in int32 (QLinearMatMul then
 * scaled by a_scale * b_scale / y_scale in float32, rounded half to even,
 * plus y_zp, saturated). A is [..., M, K], B [K, N] or with A's batch dims;
 * zero points and scales per tensor (one element). uint8/int8 data. Plain C
 * loops: the quantized node tests and small integer layers, not a fast path. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"

#define Q8 (OCC_DTM(OCC_DTYPE_UINT8) | OCC_DTM(OCC_DTYPE_INT8))

/* input index of A, B and their zero points */
static void mi_slots(const occ_node *n, int *ia, int *ib, int *za, int *zb)
{
    int q = !strcmp(n->op, "QLinearMatMul");
    *ia = 0;
    *ib = q ? 3 : 1;
    *za = 2;
    *zb = q ? 5 : 3;
}

static occ_status mi_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    int ia, ib, za, zb;
    mi_slots(n, &ia, &ib, &za, &zb);
    int q = ib == 3;
    const occ_tensor *a = occ_ops_in(m, n, (uint32_t)ia), *b = occ_ops_in(m, n, (uint32_t)ib);
    if (!a || !b)
        return occ_fail(e, OCC_ERR_INVALID, "A or B is absent");
    for (uint32_t i = q ? 1 : 2; i < n->n_inputs; i++) {
        const occ_tensor *t = occ_ops_in(m, n, i);
        if ((int)i == ib)
            continue;
        if (t && occ_ops_count(t->ndim, t->dims) != 1)
            return occ_fail(e, OCC_ERR_UNSUPPORTED, "input %u has %lld elements: only per-tensor "
                            "scales and zero points are supported", i,
                            (long long)occ_ops_count(t->ndim, t->dims));
    }
    if (q && n->n_inputs != 8)
        return occ_fail(e, OCC_ERR_INVALID, "QLinearMatMul takes 8 inputs");
    if (a->ndim < 2 || (b->ndim != 2 && b->ndim != a->ndim))
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "A must be [..., M, K] and B [K, N] or with A's "
                        "batch dims");
    for (int d = 0; b->ndim > 2 && d < a->ndim - 2; d++)
        if (a->dims[d] != b->dims[d])
            return occ_fail(e, OCC_ERR_UNSUPPORTED, "batch dim %d differs (%lld vs %lld)", d,
                            (long long)a->dims[d], (long long)b->dims[d]);
    if (a->dims[a->ndim - 1] != b->dims[b->ndim - 2])
        return occ_fail(e, OCC_ERR_SHAPE, "A has K = %lld, B %lld", (long long)a->dims[a->ndim - 1],
                        (long long)b->dims[b->ndim - 2]);
    int64_t d[OCC_MAX_DIMS];
    memcpy(d, a->dims, sizeof d);
    d[a->ndim - 1] = b->dims[b->ndim - 1];
    occ_status st = occ_ops_set_out(m, n, 0, a->ndim, d, e);
    if (st)
        return st;
    occ_ops_set_dtype(m, n, 0, q ? occ_ops_dtype(occ_ops_in(m, n, 7)) : OCC_DTYPE_INT32);
    return OCC_OK;
}

typedef struct mi_state {
    int q;
    uint32_t adt, bdt, azdt, bzdt, ydt;
    int64_t batch, mm, kk, nn, bstride;
} mi_state;

static occ_status mi_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    mi_state *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    int ia, ib, za, zb;
    mi_slots(p->n, &ia, &ib, &za, &zb);
    const occ_tensor *a = occ_ops_in(p->m, p->n, (uint32_t)ia), *b = occ_ops_in(p->m, p->n, (uint32_t)ib);
    const occ_tensor *az = occ_ops_in(p->m, p->n, (uint32_t)za), *bz = occ_ops_in(p->m, p->n, (uint32_t)zb);
    s->q = ib == 3;
    s->adt = occ_ops_dtype(a);
    s->bdt = occ_ops_dtype(b);
    s->azdt = az ? occ_ops_dtype(az) : 0;
    s->bzdt = bz ? occ_ops_dtype(bz) : 0;
    s->ydt = occ_tensor_dtype(&p->m->tensors[p->n->outputs[0]]);
    s->mm = a->dims[a->ndim - 2];
    s->kk = a->dims[a->ndim - 1];
    s->nn = b->dims[b->ndim - 1];
    s->batch = occ_ops_count(a->ndim, a->dims) / (s->mm * s->kk);
    s->bstride = b->ndim > 2 ? s->kk * s->nn : 0;
    *state = s;
    return OCC_OK;
}

static occ_status mi_run(void *state, const occ_op_exec *x, occ_error *e)
{
    (void)e;
    const mi_state *s = state;
    const void *A = x->in[0], *B = x->in[s->q ? 3 : 1];
    const void *AZ = s->azdt ? x->in[2] : NULL, *BZ = s->bzdt ? x->in[s->q ? 5 : 3] : NULL;
    int64_t az = AZ ? occ_ops_load_i64(s->azdt, AZ, 0) : 0;
    int64_t bz = BZ ? occ_ops_load_i64(s->bzdt, BZ, 0) : 0;
    float mult = 1.0f;
    int64_t yz = 0;
    if (s->q) {
        const float *as = x->in[1], *bs = x->in[4], *ys = x->in[6];
        mult = as[0] * bs[0] / ys[0];
        yz = occ_ops_load_i64(s->ydt, x->in[7], 0);
    }
    float lo = s->ydt == OCC_DTYPE_INT8 ? -128.0f : 0.0f, hi = s->ydt == OCC_DTYPE_INT8 ? 127.0f : 255.0f;
    for (int64_t bt = 0; bt < s->batch; bt++)
        for (int64_t i = 0; i < s->mm; i++)
            for (int64_t j = 0; j < s->nn; j++) {
                int32_t acc = 0;
                for (int64_t k = 0; k < s->kk; k++) {
                    int64_t av = occ_ops_load_i64(s->adt, A, (bt * s->mm + i) * s->kk + k) - az;
                    int64_t bv = occ_ops_load_i64(s->bdt, B, bt * s->bstride + k * s->nn + j) - bz;
                    acc = (int32_t)((uint32_t)acc + (uint32_t)(int32_t)(av * bv)); /* wraps */
                }
                int64_t o = (bt * s->mm + i) * s->nn + j;
                if (!s->q) {
                    ((int32_t *)x->out[0])[o] = acc;
                    continue;
                }
                float v = rintf((float)acc * mult) + (float)yz;
                v = v != v ? 0.0f : v < lo ? lo : v > hi ? hi : v;
                occ_ops_store_i64(s->ydt, x->out[0], o, (int64_t)v);
            }
    return OCC_OK;
}

static void mi_destroy(void *s)
{
    free(s);
}

const occ_op_vtable occ_op_matmulinteger = {
    .op = "MatMulInteger",
    .min_in = 2,
    .max_in = 4,
    .n_out = 1,
    .n_in_types = 1,
    .in_types = {Q8},
    .infer = mi_infer,
    .prepare = mi_prepare,
    .run = mi_run,
    .destroy = mi_destroy,
};

const occ_op_vtable occ_op_qlinearmatmul = {
    .op = "QLinearMatMul",
    .min_in = 8,
    .max_in = 8,
    .n_out = 1,
    .n_in_types = 8,
    .in_types = {Q8, OCC_DTM_FLOAT, Q8, Q8, OCC_DTM_FLOAT, Q8, OCC_DTM_FLOAT, Q8},
    .infer = mi_infer,
    .prepare = mi_prepare,
    .run = mi_run,
    .destroy = mi_destroy,
};
