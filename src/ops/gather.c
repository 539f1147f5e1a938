/* Gather(data, indices) along "axis": data of any type, int32/int64 indices
 * read at run time (a weight or an activation). Negative indices count from
 * the end; an index outside [-dim, dim) is an error naming it - never a read
 * outside data. */
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"

static occ_status gather_axis(const occ_model *m, const occ_node *n, int *ax, occ_error *e)
{
    const occ_tensor *d = occ_ops_in(m, n, 0);
    int64_t axis;
    occ_status st = occ_ops_attr_int(n, "axis", 0, &axis, e);
    if (st)
        return st;
    if (d->ndim < 1)
        return occ_fail(e, OCC_ERR_SHAPE, "data is a scalar");
    return occ_ops_axis(axis, d->ndim, 0, ax, e);
}

static occ_status gather_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    const occ_tensor *d = occ_ops_in(m, n, 0), *ix = occ_ops_in(m, n, 1);
    int ax;
    occ_status st = gather_axis(m, n, &ax, e);
    if (st)
        return st;
    int r = d->ndim - 1 + ix->ndim;
    if (r > OCC_MAX_DIMS)
        return occ_fail(e, OCC_ERR_SHAPE, "output rank %d exceeds %d", r, OCC_MAX_DIMS);
    int64_t o[OCC_MAX_DIMS];
    int q = 0;
    for (int i = 0; i < ax; i++)
        o[q++] = d->dims[i];
    for (int i = 0; i < ix->ndim; i++)
        o[q++] = ix->dims[i];
    for (int i = ax + 1; i < d->ndim; i++)
        o[q++] = d->dims[i];
    return occ_ops_set_out(m, n, 0, r, o, e);
}

typedef struct gather_state {
    int64_t outer, axis_dim, inner_bytes, n_idx;
    uint32_t idx_dtype;
} gather_state;

static occ_status gather_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    int ax;
    occ_status st = gather_axis(p->m, p->n, &ax, e);
    if (st)
        return st;
    gather_state *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    const occ_tensor *d = occ_ops_in(p->m, p->n, 0), *ix = occ_ops_in(p->m, p->n, 1);
    s->outer = 1;
    s->inner_bytes = (int64_t)occ_ops_esize(d);
    for (int i = 0; i < ax; i++)
        s->outer *= d->dims[i];
    for (int i = ax + 1; i < d->ndim; i++)
        s->inner_bytes *= d->dims[i];
    s->axis_dim = d->dims[ax];
    s->n_idx = occ_ops_count(ix->ndim, ix->dims);
    s->idx_dtype = occ_ops_dtype(ix);
    *state = s;
    return OCC_OK;
}

static occ_status gather_run(void *state, const occ_op_exec *x, occ_error *e)
{
    const gather_state *s = state;
    /* every index checked before any byte is written */
    for (int64_t j = 0; j < s->n_idx; j++) {
        int64_t k = occ_ops_load_i64(s->idx_dtype, x->in[1], j);
        if (k < -s->axis_dim || k >= s->axis_dim)
            return occ_fail(e, OCC_ERR_INVALID, "index %lld (element %lld of indices) is outside "
                            "[%lld, %lld)", (long long)k, (long long)j, (long long)-s->axis_dim,
                            (long long)s->axis_dim);
    }
    const uint8_t *d = x->in[0];
    uint8_t *o = x->out[0];
    for (int64_t oo = 0; oo < s->outer; oo++)
        for (int64_t j = 0; j < s->n_idx; j++) {
            int64_t k = occ_ops_load_i64(s->idx_dtype, x->in[1], j);
            if (k < 0)
                k += s->axis_dim;
            memcpy(o + (size_t)((oo * s->n_idx + j) * s->inner_bytes),
                   d + (size_t)((oo * s->axis_dim + k) * s->inner_bytes), (size_t)s->inner_bytes);
        }
    return OCC_OK;
}

int occ_gather_rows_splittable(const void *state, int64_t *rows, int64_t *row_bytes)
{
    const gather_state *s = state;
    *rows = s->axis_dim;
    *row_bytes = s->inner_bytes;
    return s->outer == 1 && s->inner_bytes > 0;
}

occ_status occ_gather_check(const void *state, const void *idx, occ_error *e)
{
    const gather_state *s = state;
    /* validity only: an out-of-range request fails whatever the other ids */
    for (int64_t j = 0; j < s->n_idx; j++) {
        int64_t k = occ_ops_load_i64(s->idx_dtype, idx, j);
        if (k < -s->axis_dim || k >= s->axis_dim)
            return occ_fail(e, OCC_ERR_INVALID, "index %lld (element %lld of indices) is outside "
                            "[%lld, %lld)", (long long)k, (long long)j, (long long)-s->axis_dim,
                            (long long)s->axis_dim);
    }
    return OCC_OK;
}

/* The ids must not decide which memory is read nor how long it takes
 * (docs/security.md, "Embedding lookups"): the piece is taken in blocks of
 * GATHER_BLOCK bytes; each block's pages are read in order, then every id's
 * row is blended in from it with masks, not branches (from the block's first
 * row when the id names none of it). A block just swept is the most recently
 * used memory, so the select's reads fault on no page the sweep did not
 * touch, even when the table is larger than the EPC. What stays
 * id-dependent is the cache line read within a block. */
#define GATHER_BLOCK (UINT64_C(1) << 20)

void occ_gather_select_rows(const void *state, const void *idx, const void *piece, int64_t r0,
                            int64_t r1, void *out)
{
    const gather_state *s = state;
    const uint64_t rb = (uint64_t)s->inner_bytes;
    const uint64_t per = GATHER_BLOCK / rb ? GATHER_BLOCK / rb : 1; /* rows per block */
    const int words = rb % 4u == 0;
    for (int64_t b0 = r0; b0 < r1; b0 += (int64_t)per) {
        const int64_t b1 = b0 + (int64_t)per < r1 ? b0 + (int64_t)per : r1;
        const uint8_t *pc = (const uint8_t *)piece + (uint64_t)(b0 - r0) * rb;
        const uint64_t nrows = (uint64_t)(b1 - b0), psize = nrows * rb;
        volatile uint8_t sink = 0;
        for (uint64_t off = 0; off < psize; off += 4096u)
            sink ^= *(const volatile uint8_t *)(pc + off);
        sink ^= *(const volatile uint8_t *)(pc + psize - 1u);
        (void)sink;
        for (int64_t j = 0; j < s->n_idx; j++) {
            int64_t k = occ_ops_load_i64(s->idx_dtype, idx, j);
            k += s->axis_dim & -(int64_t)(k < 0); /* negative: from the end */
            uint64_t local = (uint64_t)(k - b0);
            uint64_t in = (uint64_t)0 - (uint64_t)(local < nrows); /* all ones when in the block */
            const uint8_t *src = pc + (local & in) * rb;
            uint8_t *dst = (uint8_t *)out + (uint64_t)j * rb;
            if (words) {
                uint32_t m = (uint32_t)in;
                const uint32_t *sw = (const uint32_t *)(const void *)src;
                uint32_t *dw = (uint32_t *)(void *)dst;
                for (uint64_t w = 0; w < rb / 4u; w++)
                    dw[w] = (dw[w] & ~m) | (sw[w] & m);
            } else {
                uint8_t m = (uint8_t)in;
                for (uint64_t w = 0; w < rb; w++)
                    dst[w] = (uint8_t)((dst[w] & ~m) | (src[w] & m));
            }
        }
    }
}

static void gather_destroy(void *s)
{
    free(s);
}

static uint64_t gather_flops(const occ_model *m, const occ_node *n)
{
    return 0;
}

const occ_op_vtable occ_op_gather = {
    .op = "Gather",
    .min_in = 2,
    .max_in = 2,
    .n_out = 1,
    .n_in_types = 2,
    .in_types = {OCC_DTM_ALL, OCC_DTM_INDEX},
    .infer = gather_infer,
    .flops = gather_flops,
    .prepare = gather_prepare,
    .run = gather_run,
    .destroy = gather_destroy,
};
