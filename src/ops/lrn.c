/* LRN (across channels): y = x / (bias + alpha / size * sum x^2)^beta over
 * channels [c - floor((size-1)/2), c + ceil((size-1)/2)]. Plain NCHW. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"

typedef struct lrn_state {
    int64_t n, c, plane, size;
    float alpha, beta, bias;
} lrn_state;

static occ_status lrn_params(const occ_model *m, const occ_node *n, lrn_state *s, occ_error *e)
{
    const occ_tensor *x = occ_ops_in(m, n, 0);
    occ_status st;
    if (!occ_ops_attr(n, "size"))
        return occ_fail(e, OCC_ERR_INVALID, "missing attribute size");
    if ((st = occ_ops_attr_int(n, "size", 1, &s->size, e)) ||
        (st = occ_ops_attr_float(n, "alpha", 1e-4f, &s->alpha, e)) ||
        (st = occ_ops_attr_float(n, "beta", 0.75f, &s->beta, e)) ||
        (st = occ_ops_attr_float(n, "bias", 1.0f, &s->bias, e)))
        return st;
    if (s->size < 1 || s->size > 4096)
        return occ_fail(e, OCC_ERR_INVALID, "size = %lld out of range", (long long)s->size);
    if (x->ndim < 3)
        return occ_fail(e, OCC_ERR_SHAPE, "input of rank %d, expected at least 3", x->ndim);
    s->n = x->dims[0];
    s->c = x->dims[1];
    s->plane = occ_ops_count(x->ndim, x->dims) / (s->n * s->c);
    return OCC_OK;
}

static occ_status lrn_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    lrn_state s;
    occ_status st = lrn_params(m, n, &s, e);
    if (st)
        return st;
    const occ_tensor *x = occ_ops_in(m, n, 0);
    return occ_ops_set_out(m, n, 0, x->ndim, x->dims, e);
}

static uint64_t lrn_flops(const occ_model *m, const occ_node *n)
{
    lrn_state s;
    if (lrn_params(m, n, &s, NULL))
        return 0;
    return (uint64_t)s.n * s.c * s.plane * (2u * (uint64_t)s.size + 4u);
}

static occ_status lrn_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    lrn_state *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    occ_status st = lrn_params(p->m, p->n, s, e);
    if (st) {
        free(s);
        return st;
    }
    *state = s;
    return OCC_OK;
}

static occ_status lrn_run(void *state, const occ_op_exec *x, occ_error *e)
{
    const lrn_state *s = state;
    const int64_t lo = (s->size - 1) / 2, hi = s->size - 1 - lo, P = s->plane;
    const float k = s->alpha / (float)s->size;
    const float *src = x->in[0]; /* typed once: works whatever pointer type exec has */
    float *dst = x->out[0];
#pragma omp parallel for collapse(2) if (s->n * s->c * P > 65536) schedule(static)
    for (int64_t b = 0; b < s->n; b++) {
        for (int64_t c = 0; c < s->c; c++) {
            const float *in = src + b * s->c * P;
            float *out = dst + (b * s->c + c) * P;
            int64_t c0 = c - lo < 0 ? 0 : c - lo, c1 = c + hi >= s->c ? s->c - 1 : c + hi;
            memset(out, 0, (size_t)P * sizeof(float));
            for (int64_t j = c0; j <= c1; j++) {
                const float *r = in + j * P;
#pragma omp simd
                for (int64_t i = 0; i < P; i++)
                    out[i] += r[i] * r[i];
            }
            const float *xc = in + c * P;
            for (int64_t i = 0; i < P; i++)
                out[i] = xc[i] / powf(s->bias + k * out[i], s->beta);
        }
    }
    return OCC_OK;
}

static void lrn_destroy(void *s)
{
    free(s);
}

const occ_op_vtable occ_op_lrn = {
    .op = "LRN",
    .min_in = 1,
    .max_in = 1,
    .n_out = 1,
    .infer = lrn_infer,
    .flops = lrn_flops,
    .prepare = lrn_prepare,
    .run = lrn_run,
    .destroy = lrn_destroy,
};
