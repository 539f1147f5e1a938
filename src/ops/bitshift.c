/* BitShift(X, Y), direction "LEFT" or "RIGHT": X << Y or X >> Y element-wise
 * with numpy broadcasting, on the unsigned types (uint8, uint16, uint32,
 * uint64; X and Y of one type); a shift by the type's width or more gives 0
 * (no undefined shift). */
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"

static occ_status bs_dir(const occ_node *n, int *left, occ_error *e)
{
    const char *d;
    occ_status st = occ_ops_attr_str(n, "direction", "", &d, e);
    if (st)
        return st;
    if (strcmp(d, "LEFT") && strcmp(d, "RIGHT"))
        return occ_fail(e, OCC_ERR_INVALID, "direction is '%s' (LEFT or RIGHT)", d);
    *left = !strcmp(d, "LEFT");
    return OCC_OK;
}

static occ_status bs_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    const occ_tensor *in[2] = {occ_ops_in(m, n, 0), occ_ops_in(m, n, 1)};
    int left;
    int64_t d[OCC_MAX_DIMS];
    int nd;
    occ_status st;
    if ((st = bs_dir(n, &left, e)) || (st = occ_ops_broadcast_n(2, in, &nd, d, e)))
        return st;
    if (occ_ops_dtype(in[0]) != occ_ops_dtype(in[1]))
        return occ_fail(e, OCC_ERR_INVALID, "operands are %s and %s (must be one type)",
                        occ_dtype_name(occ_ops_dtype(in[0])), occ_dtype_name(occ_ops_dtype(in[1])));
    return occ_ops_set_out(m, n, 0, nd, d, e);
}

typedef struct bs_state {
    int left;
    uint32_t dtype;
    occ_bcast b;
} bs_state;

static occ_status bs_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    bs_state *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    occ_status st = bs_dir(p->n, &s->left, e);
    if (st) {
        free(s);
        return st;
    }
    const occ_tensor *in[2] = {occ_ops_in(p->m, p->n, 0), occ_ops_in(p->m, p->n, 1)};
    s->dtype = occ_ops_dtype(in[0]);
    occ_bcast_init(&s->b, 2, in, &p->m->tensors[p->n->outputs[0]]);
    *state = s;
    return OCC_OK;
}

static occ_status bs_run(void *state, const occ_op_exec *x, occ_error *e)
{
    (void)e;
    const bs_state *s = state;
    const unsigned bits = (unsigned)occ_dtype_size(s->dtype) * 8;
    for (int64_t k = 0; k < s->b.count; k++) {
        int64_t off[2];
        occ_bcast_offsets(&s->b, k, off);
        uint64_t v = (uint64_t)occ_ops_load_i64(s->dtype, x->in[0], off[0]);
        uint64_t sh = (uint64_t)occ_ops_load_i64(s->dtype, x->in[1], off[1]);
        /* the store truncates to the type: v << sh beyond its width drops out */
        occ_ops_store_i64(s->dtype, x->out[0], k,
                          (int64_t)(sh >= bits ? 0 : s->left ? v << sh : v >> sh));
    }
    return OCC_OK;
}

static void bs_destroy(void *s)
{
    free(s);
}

const occ_op_vtable occ_op_bitshift = {
    .op = "BitShift",
    .min_in = 2,
    .max_in = 2,
    .n_out = 1,
    .n_in_types = 1,
    .in_types = {OCC_DTM(OCC_DTYPE_UINT8) | OCC_DTM(OCC_DTYPE_UINT16) | OCC_DTM(OCC_DTYPE_UINT32) |
                 OCC_DTM(OCC_DTYPE_UINT64)},
    .infer = bs_infer,
    .prepare = bs_prepare,
    .run = bs_run,
    .destroy = bs_destroy,
};
