/* CumSum(x, axis): running sums along one axis (known at pack time: the packer
 * turns the constant axis input into the "axis" attribute), exclusive (start
 * from 0) and/or reverse (from the end) as ONNX. float32, float64 (summed
 * in double), int32, int64, uint32, uint64 (integers wrap). */
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"

static occ_status cs_params(const occ_model *m, const occ_node *n, int *ax, int *excl, int *rev,
                            occ_error *e)
{
    const occ_tensor *x = occ_ops_in(m, n, 0);
    const int64_t *av;
    uint32_t ac;
    int64_t ex, rv;
    occ_status st;
    if ((st = occ_ops_attr_ints(n, "axis", 1, &av, &ac, e)) ||
        (st = occ_ops_attr_int(n, "exclusive", 0, &ex, e)) ||
        (st = occ_ops_attr_int(n, "reverse", 0, &rv, e)))
        return st;
    if (ac != 1)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "axis must be one value known at pack time");
    *excl = ex != 0;
    *rev = rv != 0;
    return occ_ops_axis(av[0], x->ndim, 0, ax, e);
}

static occ_status cs_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    const occ_tensor *x = occ_ops_in(m, n, 0);
    int ax, ex, rv;
    occ_status st = cs_params(m, n, &ax, &ex, &rv, e);
    if (st)
        return st;
    if (x->ndim < 1)
        return occ_fail(e, OCC_ERR_SHAPE, "input must have rank >= 1");
    return occ_ops_set_out(m, n, 0, x->ndim, x->dims, e);
}

typedef struct cs_state {
    int excl, rev;
    uint32_t dtype;
    int64_t outer, len, inner;
} cs_state;

static occ_status cs_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    cs_state *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    int ax;
    occ_status st = cs_params(p->m, p->n, &ax, &s->excl, &s->rev, e);
    if (st) {
        free(s);
        return st;
    }
    const occ_tensor *x = occ_ops_in(p->m, p->n, 0);
    s->dtype = occ_ops_dtype(x);
    s->outer = s->inner = 1;
    for (int i = 0; i < x->ndim; i++)
        if (i < ax)
            s->outer *= x->dims[i];
        else if (i > ax)
            s->inner *= x->dims[i];
    s->len = x->dims[ax];
    *state = s;
    return OCC_OK;
}

static occ_status cs_run(void *state, const occ_op_exec *x, occ_error *e)
{
    (void)e;
    const cs_state *s = state;
    for (int64_t o = 0; o < s->outer; o++)
        for (int64_t j = 0; j < s->inner; j++) {
            float fa = 0.0f;
            double da = 0.0;
            uint64_t ia = 0;
            for (int64_t t = 0; t < s->len; t++) {
                int64_t k = s->rev ? s->len - 1 - t : t;
                int64_t at = (o * s->len + k) * s->inner + j;
                if (s->dtype == OCC_DTYPE_FLOAT) {
                    float v = ((const float *)x->in[0])[at];
                    if (!s->excl)
                        fa += v;
                    ((float *)x->out[0])[at] = fa;
                    if (s->excl)
                        fa += v;
                } else if (s->dtype == OCC_DTYPE_DOUBLE) {
                    double v = ((const double *)x->in[0])[at];
                    if (!s->excl)
                        da += v;
                    ((double *)x->out[0])[at] = da;
                    if (s->excl)
                        da += v;
                } else {
                    uint64_t v = (uint64_t)occ_ops_load_i64(s->dtype, x->in[0], at);
                    if (!s->excl)
                        ia += v;
                    occ_ops_store_i64(s->dtype, x->out[0], at, (int64_t)ia);
                    if (s->excl)
                        ia += v;
                }
            }
        }
    return OCC_OK;
}

static void cs_destroy(void *s)
{
    free(s);
}

const occ_op_vtable occ_op_cumsum = {
    .op = "CumSum",
    .min_in = 1, /* axis (input 1) arrives as an attribute */
    .max_in = 2,
    .n_out = 1,
    .n_in_types = 2,
    .in_types = {OCC_DTM_FLOAT | OCC_DTM_F64 | OCC_DTM_INDEX | OCC_DTM(OCC_DTYPE_UINT32) |
                     OCC_DTM(OCC_DTYPE_UINT64),
                 OCC_DTM_INDEX},
    .infer = cs_infer,
    .prepare = cs_prepare,
    .run = cs_run,
    .destroy = cs_destroy,
};
