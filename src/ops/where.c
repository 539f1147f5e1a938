/* Where(cond, X, Y): X where cond else Y, numpy broadcasting of all three; X
 * and Y of one type (any), cond bool. Moves elements by size. */
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"

static occ_status where_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    const occ_tensor *in[3] = {occ_ops_in(m, n, 0), occ_ops_in(m, n, 1), occ_ops_in(m, n, 2)};
    if (occ_ops_dtype(in[1]) != occ_ops_dtype(in[2]))
        return occ_fail(e, OCC_ERR_INVALID, "X is %s and Y %s (must be one type)",
                        occ_dtype_name(occ_ops_dtype(in[1])), occ_dtype_name(occ_ops_dtype(in[2])));
    int64_t d[OCC_MAX_DIMS];
    int nd;
    occ_status st = occ_ops_broadcast_n(3, in, &nd, d, e);
    if (st)
        return st;
    occ_ops_set_dtype(m, n, 0, occ_ops_dtype(in[1]));
    return occ_ops_set_out(m, n, 0, nd, d, e);
}

typedef struct where_state {
    size_t esize;
    occ_bcast b;
} where_state;

static occ_status where_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    where_state *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    const occ_tensor *in[3] = {occ_ops_in(p->m, p->n, 0), occ_ops_in(p->m, p->n, 1),
                               occ_ops_in(p->m, p->n, 2)};
    s->esize = occ_ops_esize(in[1]);
    occ_bcast_init(&s->b, 3, in, &p->m->tensors[p->n->outputs[0]]);
    *state = s;
    return OCC_OK;
}

static occ_status where_run(void *state, const occ_op_exec *x, occ_error *e)
{
    const where_state *s = state;
    const uint8_t *c = x->in[0], *a = x->in[1], *b = x->in[2];
    uint8_t *o = x->out[0];
    for (int64_t k = 0; k < s->b.count; k++) {
        int64_t off[3];
        occ_bcast_offsets(&s->b, k, off);
        const uint8_t *src = c[off[0]] ? a + (size_t)off[1] * s->esize : b + (size_t)off[2] * s->esize;
        memcpy(o + (size_t)k * s->esize, src, s->esize);
    }
    return OCC_OK;
}

static void where_destroy(void *s)
{
    free(s);
}

const occ_op_vtable occ_op_where = {
    .op = "Where",
    .min_in = 3,
    .max_in = 3,
    .n_out = 1,
    .n_in_types = 2,
    .in_types = {OCC_DTM_BOOL, OCC_DTM_ALL},
    .infer = where_infer,
    .prepare = where_prepare,
    .run = where_run,
    .destroy = where_destroy,
};
