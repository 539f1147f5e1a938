/* The addressing GatherElements and ScatterElements share: element k of the
 * indices names the data element at k's own coordinates with the axis one
 * replaced by the index (ops_internal.h, occ_elem_geom). */
#include "ops/ops_internal.h"

void occ_elem_geom_init(occ_elem_geom *g, const occ_tensor *d, const occ_tensor *ix, int ax)
{
    g->nd = d->ndim;
    g->ax = ax;
    int64_t acc = 1;
    for (int i = d->ndim - 1; i >= 0; i--) {
        g->dstride[i] = acc;
        acc *= d->dims[i];
        g->idims[i] = ix->dims[i];
    }
    g->count = occ_ops_count(ix->ndim, ix->dims);
    g->axis_dim = d->dims[ax];
    g->idx_dtype = occ_ops_dtype(ix);
    g->esize = occ_ops_esize(d);
}

occ_status occ_elem_check(const occ_elem_geom *g, const void *idx, occ_error *e)
{
    for (int64_t k = 0; k < g->count; k++) {
        int64_t v = occ_ops_load_i64(g->idx_dtype, idx, k);
        if (v < -g->axis_dim || v >= g->axis_dim)
            return occ_fail(e, OCC_ERR_INVALID, "index %lld (element %lld of indices) is outside [%lld, %lld)",
                            (long long)v, (long long)k, (long long)-g->axis_dim, (long long)g->axis_dim);
    }
    return OCC_OK;
}

int64_t occ_elem_offset(const occ_elem_geom *g, const void *idx, int64_t k)
{
    int64_t rem = k, off = 0;
    for (int d = g->nd - 1; d >= 0; d--) {
        int64_t i = rem % g->idims[d];
        rem /= g->idims[d];
        if (d == g->ax) {
            i = occ_ops_load_i64(g->idx_dtype, idx, k);
            if (i < 0)
                i += g->axis_dim;
        }
        off += i * g->dstride[d];
    }
    return off;
}
