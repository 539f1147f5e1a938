/* Trilu(X, k): the upper (upper = 1, default: j - i >= k) or lower (j - i <= k)
 * triangle of each matrix in X's last two dims, the rest zero. X of any type
 * (moved by element size); k an optional int64 scalar, read at run time. */
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"

static occ_status trilu_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    const occ_tensor *x = occ_ops_in(m, n, 0), *k = occ_ops_in(m, n, 1);
    int64_t up;
    occ_status st = occ_ops_attr_int(n, "upper", 1, &up, e);
    if (st)
        return st;
    if (x->ndim < 2)
        return occ_fail(e, OCC_ERR_SHAPE, "input has rank %d, Trilu needs 2 or more", x->ndim);
    if (k && (occ_ops_count(k->ndim, k->dims) != 1 || occ_ops_dtype(k) != OCC_DTYPE_INT64))
        return occ_fail(e, OCC_ERR_SHAPE, "k must be one int64 value");
    return occ_ops_set_out(m, n, 0, x->ndim, x->dims, e);
}

typedef struct trilu_state {
    int upper, has_k;
    size_t esize;
    int64_t mats, rows, cols;
} trilu_state;

static occ_status trilu_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    trilu_state *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    const occ_tensor *x = occ_ops_in(p->m, p->n, 0);
    int64_t up = 1;
    occ_status st = occ_ops_attr_int(p->n, "upper", 1, &up, e);
    if (st) {
        free(s);
        return st;
    }
    s->upper = up != 0;
    s->has_k = occ_ops_in(p->m, p->n, 1) != NULL;
    s->esize = occ_ops_esize(x);
    s->rows = x->dims[x->ndim - 2];
    s->cols = x->dims[x->ndim - 1];
    s->mats = occ_ops_count(x->ndim, x->dims) / (s->rows * s->cols);
    *state = s;
    return OCC_OK;
}

static occ_status trilu_run(void *state, const occ_op_exec *x, occ_error *e)
{
    (void)e;
    const trilu_state *s = state;
    int64_t k = 0;
    if (s->has_k)
        memcpy(&k, x->in[1], sizeof k);
    const uint8_t *in = x->in[0];
    uint8_t *out = x->out[0];
    for (int64_t m = 0; m < s->mats; m++)
        for (int64_t i = 0; i < s->rows; i++)
            for (int64_t j = 0; j < s->cols; j++) {
                size_t off = (size_t)((m * s->rows + i) * s->cols + j) * s->esize;
                int keep = s->upper ? j - i >= k : j - i <= k; /* |j - i| < 2^62: no overflow */
                if (keep)
                    memcpy(out + off, in + off, s->esize);
                else
                    memset(out + off, 0, s->esize);
            }
    return OCC_OK;
}

static void trilu_destroy(void *s)
{
    free(s);
}

const occ_op_vtable occ_op_trilu = {
    .op = "Trilu",
    .min_in = 1,
    .max_in = 2,
    .n_out = 1,
    .flags = OCC_OPF_EMPTY, /* an empty X: an empty Y, never run */
    .n_in_types = 2,
    .in_types = {OCC_DTM_ALL, OCC_DTM(OCC_DTYPE_INT64)},
    .infer = trilu_infer,
    .prepare = trilu_prepare,
    .run = trilu_run,
    .destroy = trilu_destroy,
};
