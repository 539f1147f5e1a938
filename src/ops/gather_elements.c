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

static occ_status ge_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    int ax;
    occ_status st = ge_axis(p->m, p->n, &ax, e);
    if (st)
        return st;
    occ_elem_geom *g = calloc(1, sizeof *g);
    if (!g)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    occ_elem_geom_init(g, occ_ops_in(p->m, p->n, 0), occ_ops_in(p->m, p->n, 1), ax);
    *state = g;
    return OCC_OK;
}

static occ_status ge_run(void *state, const occ_op_exec *x, occ_error *e)
{
    const occ_elem_geom *g = state;
    occ_status st = occ_elem_check(g, x->in[1], e);
    if (st)
        return st;
    for (int64_t k = 0; k < g->count; k++)
        memcpy((uint8_t *)x->out[0] + (size_t)k * g->esize,
               (const uint8_t *)x->in[0] + (size_t)occ_elem_offset(g, x->in[1], k) * g->esize, g->esize);
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
