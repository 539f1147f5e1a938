/* Expand (attribute "shape", folded from the constant input at pack time) and
 * Tile (attribute "repeats", likewise): any dtype, a gather of elements by
 * per-dimension index tables. Expand broadcasts numpy-style (the output rank
 * is the larger of the two); Tile repeats each dimension. */
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"

/* Output dims and the input dims aligned to them (leading 1s). */
static occ_status rep_get(const occ_model *m, const occ_node *n, int *nd, int64_t *odims,
                          int64_t *idims, occ_error *e)
{
    const occ_tensor *x = occ_ops_in(m, n, 0);
    int tile = !strcmp(n->op, "Tile");
    const char *an = tile ? "repeats" : "shape";
    const int64_t *v;
    uint32_t c;
    if (n->n_inputs > 1 && n->inputs[1] >= 0)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "a run-time %s is not supported (it sets the "
                        "output shape: a constant, folded at pack)", an);
    occ_status st = occ_ops_attr_ints(n, an, OCC_MAX_DIMS, &v, &c, e);
    if (st)
        return st;
    if (!occ_ops_attr(n, an))
        return occ_fail(e, OCC_ERR_INVALID, "missing attribute %s", an);
    if (tile) {
        if ((int)c != x->ndim)
            return occ_fail(e, OCC_ERR_INVALID, "repeats has %u values for rank %d", c, x->ndim);
        *nd = x->ndim;
        for (int d = 0; d < x->ndim; d++) {
            if (v[d] < 1 || v[d] > (INT64_C(1) << 40) / x->dims[d])
                return occ_fail(e, OCC_ERR_UNSUPPORTED, "repeats[%d] = %lld (must be >= 1 and "
                                "keep the dimension under 2^40)", d, (long long)v[d]);
            idims[d] = x->dims[d];
            odims[d] = x->dims[d] * v[d];
        }
        return OCC_OK;
    }
    for (uint32_t i = 0; i < c; i++)
        if (v[i] < 1)
            return occ_fail(e, OCC_ERR_UNSUPPORTED, "shape[%u] = %lld (must be >= 1)", i,
                            (long long)v[i]);
    if ((st = occ_ops_broadcast(x->ndim, x->dims, (int)c, v, nd, odims, e)))
        return st;
    for (int d = 0; d < *nd; d++) {
        int id = d - (*nd - x->ndim);
        idims[d] = id >= 0 ? x->dims[id] : 1;
    }
    return OCC_OK;
}

static occ_status rep_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    int nd;
    int64_t o[OCC_MAX_DIMS], i[OCC_MAX_DIMS];
    occ_status st = rep_get(m, n, &nd, o, i, e);
    return st ? st : occ_ops_set_out(m, n, 0, nd, o, e);
}

typedef struct rep_state {
    int nd;
    int64_t odims[OCC_MAX_DIMS], idims[OCC_MAX_DIMS];
    int64_t *tab[OCC_MAX_DIMS];
    size_t esize;
} rep_state;

static void rep_destroy(void *v)
{
    rep_state *s = v;
    if (!s)
        return;
    for (int d = 0; d < OCC_MAX_DIMS; d++)
        occ_ops_free(s->tab[d]);
    free(s);
}

static occ_status rep_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    rep_state *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    occ_status st = rep_get(p->m, p->n, &s->nd, s->odims, s->idims, e);
    if (st) {
        rep_destroy(s);
        return st;
    }
    s->esize = occ_ops_esize(occ_ops_in(p->m, p->n, 0));
    for (int d = 0; d < s->nd; d++) {
        if (!(s->tab[d] = occ_ops_alloc((uint64_t)s->odims[d] * sizeof(int64_t)))) {
            rep_destroy(s);
            return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
        }
        for (int64_t o = 0; o < s->odims[d]; o++)
            s->tab[d][o] = o % s->idims[d]; /* broadcast (idims 1) or repeat */
    }
    *state = s;
    return OCC_OK;
}

static occ_status rep_run(void *state, const occ_op_exec *x, occ_error *e)
{
    const rep_state *s = state;
    static const uint8_t zero[8];
    occ_ops_gather_bytes(s->nd, s->odims, s->idims, (const int64_t *const *)s->tab, zero, s->esize,
                         x->in[0], x->out[0]);
    return OCC_OK;
}

static uint64_t rep_flops(const occ_model *m, const occ_node *n)
{
    return 0;
}

#define REP(var, name)                                                                    \
    const occ_op_vtable var = {.op = name,                                                \
                               .min_in = 1,                                               \
                               .max_in = 2,                                               \
                               .n_out = 1,                                                \
                               .n_in_types = 2,                                           \
                               .in_types = {OCC_DTM_ALL, OCC_DTM_INDEX},                  \
                               .infer = rep_infer,                                        \
                               .flops = rep_flops,                                        \
                               .prepare = rep_prepare,                                    \
                               .run = rep_run,                                            \
                               .destroy = rep_destroy}

REP(occ_op_expand, "Expand");
REP(occ_op_tile, "Tile");
