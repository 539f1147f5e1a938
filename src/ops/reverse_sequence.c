/* ReverseSequence(X, sequence_lens): for each batch entry b (batch_axis, 1 by
 * default; time_axis 0, the other of the first two dims), the first
 * sequence_lens[b] steps along time_axis reversed, the rest copied. X of any
 * type; sequence_lens int64, read at run time and checked (1..time steps). */
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"

static occ_status rs_axes(const occ_node *n, int *bax, int *tax, occ_error *e)
{
    int64_t b, t;
    occ_status st;
    if ((st = occ_ops_attr_int(n, "batch_axis", 1, &b, e)) ||
        (st = occ_ops_attr_int(n, "time_axis", 0, &t, e)))
        return st;
    if (!((b == 0 && t == 1) || (b == 1 && t == 0)))
        return occ_fail(e, OCC_ERR_INVALID, "batch_axis %lld and time_axis %lld must be 0 and 1",
                        (long long)b, (long long)t);
    *bax = (int)b;
    *tax = (int)t;
    return OCC_OK;
}

static occ_status rs_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    const occ_tensor *x = occ_ops_in(m, n, 0), *l = occ_ops_in(m, n, 1);
    int bax, tax;
    occ_status st = rs_axes(n, &bax, &tax, e);
    if (st)
        return st;
    if (x->ndim < 2 || l->ndim != 1 || l->dims[0] != x->dims[bax])
        return occ_fail(e, OCC_ERR_SHAPE, "sequence_lens must be 1-D with one length per batch "
                        "entry of a rank >= 2 input");
    return occ_ops_set_out(m, n, 0, x->ndim, x->dims, e);
}

typedef struct rs_state {
    int bax;
    int64_t d0, d1, inner;
    size_t esize;
} rs_state;

static occ_status rs_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    rs_state *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    int tax;
    occ_status st = rs_axes(p->n, &s->bax, &tax, e);
    if (st) {
        free(s);
        return st;
    }
    const occ_tensor *x = occ_ops_in(p->m, p->n, 0);
    s->d0 = x->dims[0];
    s->d1 = x->dims[1];
    s->inner = occ_ops_count(x->ndim, x->dims) / (s->d0 * s->d1);
    s->esize = occ_ops_esize(x);
    *state = s;
    return OCC_OK;
}

static occ_status rs_run(void *state, const occ_op_exec *x, occ_error *e)
{
    const rs_state *s = state;
    const int64_t *lens = x->in[1];
    int64_t nb = s->bax ? s->d1 : s->d0, nt = s->bax ? s->d0 : s->d1;
    for (int64_t b = 0; b < nb; b++)
        if (lens[b] < 1 || lens[b] > nt)
            return occ_fail(e, OCC_ERR_INVALID, "sequence_lens[%lld] = %lld is outside [1, %lld]",
                            (long long)b, (long long)lens[b], (long long)nt);
    size_t row = (size_t)s->inner * s->esize;
    const uint8_t *in = x->in[0];
    uint8_t *out = x->out[0];
    for (int64_t b = 0; b < nb; b++)
        for (int64_t t = 0; t < nt; t++) {
            int64_t src = t < lens[b] ? lens[b] - 1 - t : t;
            int64_t o = s->bax ? t * s->d1 + b : b * s->d1 + t;
            int64_t i = s->bax ? src * s->d1 + b : b * s->d1 + src;
            memcpy(out + (size_t)o * row, in + (size_t)i * row, row);
        }
    return OCC_OK;
}

static void rs_destroy(void *s)
{
    free(s);
}

const occ_op_vtable occ_op_reversesequence = {
    .op = "ReverseSequence",
    .min_in = 2,
    .max_in = 2,
    .n_out = 1,
    .n_in_types = 2,
    .in_types = {OCC_DTM_ALL, OCC_DTM(OCC_DTYPE_INT64)},
    .infer = rs_infer,
    .prepare = rs_prepare,
    .run = rs_run,
    .destroy = rs_destroy,
};
