/* EyeLike(X): a 2-D tensor of X's shape with ones on the k-th diagonal
 * (attribute k, default 0) and zeros elsewhere, of type dtype (attribute,
 * default X's type). Only X's shape is read. */
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"

static occ_status eyelike_dtype(const occ_model *m, const occ_node *n, uint32_t *dt, occ_error *e)
{
    int64_t v;
    occ_status st = occ_ops_attr_int(n, "dtype", 0, &v, e);
    if (st)
        return st;
    *dt = v ? (uint32_t)v : occ_ops_dtype(occ_ops_in(m, n, 0));
    if (v < 0 || v > 255 || !occ_dtype_size(*dt))
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "dtype = %lld is not a supported output type "
                        "(float32, float64, float16, bfloat16, int8..int64, uint8..uint64, "
                        "bool)", (long long)v);
    return OCC_OK;
}

static occ_status eyelike_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    const occ_tensor *x = occ_ops_in(m, n, 0);
    uint32_t dt;
    int64_t k;
    occ_status st;
    if ((st = eyelike_dtype(m, n, &dt, e)) || (st = occ_ops_attr_int(n, "k", 0, &k, e)))
        return st;
    if (x->ndim != 2)
        return occ_fail(e, OCC_ERR_SHAPE, "input has rank %d, EyeLike needs 2", x->ndim);
    if ((st = occ_ops_set_out(m, n, 0, 2, x->dims, e)))
        return st;
    occ_ops_set_dtype(m, n, 0, dt);
    return OCC_OK;
}

typedef struct eyelike_state {
    uint32_t dtype;
    int64_t k, rows, cols;
} eyelike_state;

static occ_status eyelike_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    eyelike_state *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    const occ_tensor *x = occ_ops_in(p->m, p->n, 0);
    occ_status st;
    if ((st = eyelike_dtype(p->m, p->n, &s->dtype, e)) ||
        (st = occ_ops_attr_int(p->n, "k", 0, &s->k, e))) {
        free(s);
        return st;
    }
    s->rows = x->dims[0];
    s->cols = x->dims[1];
    *state = s;
    return OCC_OK;
}

static occ_status eyelike_run(void *state, const occ_op_exec *x, occ_error *e)
{
    (void)e;
    const eyelike_state *s = state;
    size_t es = occ_dtype_size(s->dtype);
    uint8_t *o = x->out[0];
    memset(o, 0, (size_t)(s->rows * s->cols) * es);
    if (s->k >= s->cols || s->k <= -s->rows)
        return OCC_OK; /* the diagonal is outside (and i + k cannot overflow below) */
    for (int64_t i = 0; i < s->rows; i++) {
        int64_t j = i + s->k;
        if (j < 0 || j >= s->cols)
            continue;
        occ_ops_scalar_from_double(s->dtype, 1.0, o + (size_t)(i * s->cols + j) * es);
    }
    return OCC_OK;
}

static void eyelike_destroy(void *s)
{
    free(s);
}

const occ_op_vtable occ_op_eyelike = {
    .op = "EyeLike",
    .min_in = 1,
    .max_in = 1,
    .n_out = 1,
    .n_in_types = 1,
    .in_types = {OCC_DTM_ALL},
    .infer = eyelike_infer,
    .prepare = eyelike_prepare,
    .run = eyelike_run,
    .destroy = eyelike_destroy,
};
