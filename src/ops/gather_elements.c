/* GatherElements(data, indices) along "axis": out[i..] = data[i.. with
 * i[axis] = indices[i..]]. Output shape = indices' shape (same rank as data,
 * no larger than data off the axis). Any data type, int32/int64 indices
 * checked at run time (negative count from the end; outside [-dim, dim) is
 * an error, never an out-of-bounds read). */
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"

static occ_status ge_axis(const occ_model *m, const occ_node *n, int *ax, occ_error *e)
{
    const occ_tensor *d = occ_ops_in(m, n, 0), *ix = occ_ops_in(m, n, 1);
    int64_t axis;
    occ_status st = occ_ops_attr_int(n, "axis", 0, &axis, e);
    if (st)
        return st;
    if (d->ndim < 1 || ix->ndim != d->ndim)
        return occ_fail(e, OCC_ERR_SHAPE, "indices have rank %d, data %d (must be equal, >= 1)",
                        ix->ndim, d->ndim);
    if ((st = occ_ops_axis(axis, d->ndim, 0, ax, e)))
        return st;
    for (int i = 0; i < d->ndim; i++)
        if (i != *ax && ix->dims[i] > d->dims[i])
            return occ_fail(e, OCC_ERR_SHAPE, "indices dimension %d is %lld, data's %lld", i,
                            (long long)ix->dims[i], (long long)d->dims[i]);
    return OCC_OK;
}

static occ_status ge_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    int ax;
    occ_status st = ge_axis(m, n, &ax, e);
    if (st)
        return st;
    const occ_tensor *ix = occ_ops_in(m, n, 1);
    return occ_ops_set_out(m, n, 0, ix->ndim, ix->dims, e);
}

typedef struct ge_state {
    int nd, ax;
    int64_t idims[OCC_MAX_DIMS], dstride[OCC_MAX_DIMS];
    int64_t count, axis_dim;
    uint32_t idx_dtype;
    size_t esize;
} ge_state;

static occ_status ge_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    int ax;
    occ_status st = ge_axis(p->m, p->n, &ax, e);
    if (st)
        return st;
    ge_state *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    const occ_tensor *d = occ_ops_in(p->m, p->n, 0), *ix = occ_ops_in(p->m, p->n, 1);
    s->nd = d->ndim;
    s->ax = ax;
    int64_t acc = 1;
    for (int i = d->ndim - 1; i >= 0; i--) {
        s->dstride[i] = acc;
        acc *= d->dims[i];
        s->idims[i] = ix->dims[i];
    }
    s->count = occ_ops_count(ix->ndim, ix->dims);
    s->axis_dim = d->dims[ax];
    s->idx_dtype = occ_ops_dtype(ix);
    s->esize = occ_ops_esize(d);
    *state = s;
    return OCC_OK;
}

static occ_status ge_run(void *state, const occ_op_exec *x, occ_error *e)
{
    const ge_state *s = state;
    for (int64_t k = 0; k < s->count; k++) {
        int64_t v = occ_ops_load_i64(s->idx_dtype, x->in[1], k);
        if (v < -s->axis_dim || v >= s->axis_dim)
            return occ_fail(e, OCC_ERR_INVALID, "index %lld (element %lld of indices) is outside "
                            "[%lld, %lld)", (long long)v, (long long)k, (long long)-s->axis_dim,
                            (long long)s->axis_dim);
    }
    for (int64_t k = 0; k < s->count; k++) {
        int64_t rem = k, off = 0;
        for (int d = s->nd - 1; d >= 0; d--) {
            int64_t i = rem % s->idims[d];
            rem /= s->idims[d];
            if (d == s->ax) {
                i = occ_ops_load_i64(s->idx_dtype, x->in[1], k);
                if (i < 0)
                    i += s->axis_dim;
            }
            off += i * s->dstride[d];
        }
        memcpy((uint8_t *)x->out[0] + (size_t)k * s->esize,
               (const uint8_t *)x->in[0] + (size_t)off * s->esize, s->esize);
    }
    return OCC_OK;
}

static void ge_destroy(void *s)
{
    free(s);
}

const occ_op_vtable occ_op_gatherelements = {
    .op = "GatherElements",
    .min_in = 2,
    .max_in = 2,
    .n_out = 1,
    .n_in_types = 2,
    .in_types = {OCC_DTM_ALL, OCC_DTM_INDEX},
    .infer = ge_infer,
    .prepare = ge_prepare,
    .run = ge_run,
    .destroy = ge_destroy,
};
