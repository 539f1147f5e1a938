/* Broadcast iteration for the typed element-wise operators (comparisons,
 * logic, Where): simple per-element offsets, no collapsing (their tensors are
 * small masks and index arithmetic; the float hot path is binary.c). */
#include <string.h>

#include "ops/ops_internal.h"

occ_status occ_ops_broadcast_n(int nin, const occ_tensor *const *in, int *nout, int64_t *out,
                               occ_error *e)
{
    int nd = in[0]->ndim;
    int64_t d[OCC_MAX_DIMS];
    memcpy(d, in[0]->dims, sizeof d);
    for (int i = 1; i < nin; i++) {
        int64_t r[OCC_MAX_DIMS];
        int nr;
        occ_status st = occ_ops_broadcast(nd, d, in[i]->ndim, in[i]->dims, &nr, r, e);
        if (st)
            return st;
        nd = nr;
        memcpy(d, r, sizeof d);
    }
    *nout = nd;
    memcpy(out, d, sizeof d);
    return OCC_OK;
}

void occ_bcast_init(occ_bcast *b, int nin, const occ_tensor *const *in, const occ_tensor *y)
{
    memset(b, 0, sizeof *b);
    b->nd = y->ndim;
    b->nin = nin;
    for (int d = 0; d < y->ndim; d++)
        b->size[d] = y->dims[d];
    for (int i = 0; i < nin; i++) {
        int64_t acc = 1;
        for (int d = y->ndim - 1; d >= 0; d--) {
            int id = d - (y->ndim - in[i]->ndim);
            int64_t dim = id >= 0 ? in[i]->dims[id] : 1;
            b->st[i][d] = dim == 1 ? 0 : acc;
            acc *= dim;
        }
    }
    b->count = occ_ops_count(y->ndim, y->dims);
}

void occ_bcast_offsets(const occ_bcast *b, int64_t k, int64_t *off)
{
    for (int i = 0; i < b->nin; i++)
        off[i] = 0;
    for (int d = b->nd - 1; d >= 0; d--) {
        int64_t idx = k % b->size[d];
        k /= b->size[d];
        for (int i = 0; i < b->nin; i++)
            off[i] += idx * b->st[i][d];
    }
}
