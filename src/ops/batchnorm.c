/* BatchNormalization, inference form (a BN the packer could not fold into a
 * preceding Conv): y = x * a[c] + b[c], a = scale / sqrt(var + eps),
 * b = B - mean * a. Channel is dim 1. */
#include <math.h>
#include <stdlib.h>

#include "ops/ops_internal.h"

static occ_status bn_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    const occ_tensor *x = occ_ops_in(m, n, 0);
    float eps;
    occ_status st = occ_ops_attr_float(n, "epsilon", 1e-5f, &eps, e);
    if (st)
        return st;
    if (!(eps >= 0.0f))
        return occ_fail(e, OCC_ERR_INVALID, "epsilon must be >= 0");
    int64_t tm;
    if ((st = occ_ops_attr_int(n, "training_mode", 0, &tm, e)))
        return st;
    if (tm != 0)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "training_mode = %lld is not supported",
                        (long long)tm);
    if (x->ndim < 2)
        return occ_fail(e, OCC_ERR_SHAPE, "input of rank %d, expected at least 2", x->ndim);
    for (uint32_t i = 1; i < 5; i++) {
        const occ_tensor *p = occ_ops_in(m, n, i);
        if (p->ndim != 1 || p->dims[0] != x->dims[1])
            return occ_fail(e, OCC_ERR_SHAPE, "parameter %u must have shape [%lld]", i,
                            (long long)x->dims[1]);
        if (p->kind != OCC_TENSOR_WEIGHT)
            return occ_fail(e, OCC_ERR_UNSUPPORTED, "run-time parameter %u is not supported", i);
    }
    return occ_ops_set_out(m, n, 0, x->ndim, x->dims, e);
}

static uint64_t bn_flops(const occ_model *m, const occ_node *n)
{
    const occ_tensor *x = occ_ops_in(m, n, 0);
    return 2u * (uint64_t)occ_ops_count(x->ndim, x->dims);
}

typedef struct bn_state {
    int64_t n, c, plane;
    float *a, *b;
} bn_state;

static void bn_destroy(void *p)
{
    bn_state *s = p;
    if (!s)
        return;
    occ_ops_free(s->a);
    occ_ops_free(s->b);
    free(s);
}

static occ_status bn_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    bn_state *s = calloc(1, sizeof *s);
    float eps;
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    occ_status st = occ_ops_attr_float(p->n, "epsilon", 1e-5f, &eps, e);
    if (st) {
        bn_destroy(s);
        return st;
    }
    const occ_tensor *x = occ_ops_in(p->m, p->n, 0);
    s->n = x->dims[0];
    s->c = x->dims[1];
    s->plane = occ_ops_count(x->ndim, x->dims) / (s->n * s->c);
    s->a = occ_ops_alloc((uint64_t)s->c * 4u);
    s->b = occ_ops_alloc((uint64_t)s->c * 4u);
    if (!s->a || !s->b) {
        bn_destroy(s);
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    }
    const float *scale = p->w[1], *bias = p->w[2], *mean = p->w[3], *var = p->w[4];
    for (int64_t c = 0; c < s->c; c++) {
        s->a[c] = scale[c] / sqrtf(var[c] + eps);
        s->b[c] = bias[c] - mean[c] * s->a[c];
    }
    *state = s;
    return OCC_OK;
}

static occ_status bn_run(void *state, const occ_op_exec *x, occ_error *e)
{
    const bn_state *s = state;
    const int64_t planes = s->n * s->c, len = s->plane;
    const float *src = x->in[0]; /* typed once: works whatever pointer type exec has */
    float *dst = x->out[0];
#pragma omp parallel for if (planes * len > 65536) schedule(static)
    for (int64_t p = 0; p < planes; p++) {
        const float a = s->a[p % s->c], b = s->b[p % s->c];
        const float *in = src + p * len;
        float *out = dst + p * len;
#pragma omp simd
        for (int64_t i = 0; i < len; i++)
            out[i] = in[i] * a + b;
    }
    return OCC_OK;
}

const occ_op_vtable occ_op_batchnorm = {
    .op = "BatchNormalization",
    .min_in = 5,
    .max_in = 5,
    .n_out = 1,
    .flags = OCC_OPF_COPIES_WEIGHTS,
    .infer = bn_infer,
    .flops = bn_flops,
    .prepare = bn_prepare,
    .run = bn_run,
    .destroy = bn_destroy,
};
