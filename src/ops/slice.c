/* Slice (attributes starts, ends, axes, steps - folded from the constant
 * inputs at pack time), negative and clamped bounds, negative steps. Any
 * dtype: a gather of elements by per-dimension index tables. */
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"

typedef struct slice_geom {
    int nd;
    int64_t begin[OCC_MAX_DIMS], step[OCC_MAX_DIMS], odims[OCC_MAX_DIMS];
} slice_geom;

static occ_status slice_get(const occ_model *m, const occ_node *n, slice_geom *g, occ_error *e)
{
    const occ_tensor *x = occ_ops_in(m, n, 0);
    const int64_t *st, *en, *ax, *sp;
    uint32_t nst, nen, nax, nsp;
    occ_status s;
    for (uint32_t i = 1; i < n->n_inputs; i++)
        if (n->inputs[i] >= 0)
            return occ_fail(e, OCC_ERR_UNSUPPORTED, "run-time starts/ends/axes/steps are not "
                            "supported (they set the output shape: constants, folded at pack)");
    if ((s = occ_ops_attr_ints(n, "starts", OCC_MAX_DIMS, &st, &nst, e)) ||
        (s = occ_ops_attr_ints(n, "ends", OCC_MAX_DIMS, &en, &nen, e)) ||
        (s = occ_ops_attr_ints(n, "axes", OCC_MAX_DIMS, &ax, &nax, e)) ||
        (s = occ_ops_attr_ints(n, "steps", OCC_MAX_DIMS, &sp, &nsp, e)))
        return s;
    if (!occ_ops_attr(n, "starts") || !occ_ops_attr(n, "ends") || nst != nen ||
        (nax && nax != nst) || (nsp && nsp != nst))
        return occ_fail(e, OCC_ERR_INVALID, "starts, ends, axes and steps must have one length "
                        "(%u, %u, %u, %u)", nst, nen, nax, nsp);
    g->nd = x->ndim;
    int seen[OCC_MAX_DIMS] = {0};
    for (int d = 0; d < x->ndim; d++) {
        g->begin[d] = 0;
        g->step[d] = 1;
        g->odims[d] = x->dims[d];
    }
    for (uint32_t k = 0; k < nst; k++) {
        int a;
        if ((s = occ_ops_axis(nax ? ax[k] : (int64_t)k, x->ndim, 0, &a, e)))
            return s;
        if (seen[a])
            return occ_fail(e, OCC_ERR_INVALID, "axis %d is sliced twice", a);
        seen[a] = 1;
        int64_t dim = x->dims[a], p = nsp ? sp[k] : 1, s0 = st[k], e0 = en[k], len;
        if (p == 0)
            return occ_fail(e, OCC_ERR_INVALID, "step 0 on axis %d", a);
        if (dim && p > dim)
            p = dim; /* same elements; keeps the arithmetic below small */
        if (dim && p < -dim)
            p = -dim;
        if (s0 < 0)
            s0 = s0 < -dim ? -1 : s0 + dim;
        if (e0 < 0)
            e0 = e0 < -dim ? -1 : e0 + dim;
        if (p > 0) {
            s0 = s0 < 0 ? 0 : s0 > dim ? dim : s0;
            e0 = e0 < 0 ? 0 : e0 > dim ? dim : e0;
            len = e0 > s0 ? (e0 - s0 - 1) / p + 1 : 0;
        } else {
            s0 = s0 < 0 ? 0 : s0 > dim - 1 ? dim - 1 : s0;
            e0 = e0 < -1 ? -1 : e0 > dim - 1 ? dim - 1 : e0;
            len = s0 > e0 ? (s0 - e0 - 1) / (-p) + 1 : 0;
        }
        /* len 0: an empty output (the node then never runs) */
        g->begin[a] = s0;
        g->step[a] = p;
        g->odims[a] = len;
    }
    return OCC_OK;
}

static occ_status slice_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    slice_geom g;
    occ_status st = slice_get(m, n, &g, e);
    return st ? st : occ_ops_set_out(m, n, 0, g.nd, g.odims, e);
}

typedef struct slice_state {
    slice_geom g;
    int64_t idims[OCC_MAX_DIMS];
    int64_t *tab[OCC_MAX_DIMS];
    size_t esize;
} slice_state;

static void slice_destroy(void *v)
{
    slice_state *s = v;
    if (!s)
        return;
    for (int d = 0; d < OCC_MAX_DIMS; d++)
        occ_ops_free(s->tab[d]);
    free(s);
}

static occ_status slice_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    slice_state *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    occ_status st = slice_get(p->m, p->n, &s->g, e);
    if (st) {
        slice_destroy(s);
        return st;
    }
    const occ_tensor *x = occ_ops_in(p->m, p->n, 0);
    s->esize = occ_ops_esize(x);
    for (int d = 0; d < s->g.nd; d++) {
        s->idims[d] = x->dims[d];
        if (!(s->tab[d] = occ_ops_alloc((uint64_t)s->g.odims[d] * sizeof(int64_t)))) {
            slice_destroy(s);
            return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
        }
        for (int64_t o = 0; o < s->g.odims[d]; o++)
            s->tab[d][o] = s->g.begin[d] + o * s->g.step[d];
    }
    *state = s;
    return OCC_OK;
}

static occ_status slice_run(void *state, const occ_op_exec *x, occ_error *e)
{
    const slice_state *s = state;
    static const uint8_t zero[8];
    occ_ops_gather_bytes(s->g.nd, s->g.odims, s->idims, (const int64_t *const *)s->tab, zero,
                         s->esize, x->in[0], x->out[0]);
    return OCC_OK;
}

static uint64_t slice_flops(const occ_model *m, const occ_node *n)
{
    return 0;
}

const occ_op_vtable occ_op_slice = {
    .op = "Slice",
    .min_in = 1,
    .max_in = 5,
    .n_out = 1,
    .flags = OCC_OPF_EMPTY, /* a slice to nothing: an empty output */
    .n_in_types = 2,
    .in_types = {OCC_DTM_ALL, OCC_DTM_INDEX},
    .infer = slice_infer,
    .flops = slice_flops,
    .prepare = slice_prepare,
    .run = slice_run,
    .destroy = slice_destroy,
};
