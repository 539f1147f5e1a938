/* GatherND(data, indices, batch_dims) and ScatterND(data, indices, updates,
 * reduction): the last dimension of indices (r) addresses the leading r
 * dimensions of data (after batch_dims, GatherND only); each tuple selects a
 * slice of the remaining dimensions. Any data type; int64 (or int32)
 * indices checked at run time before anything is written. */
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"

typedef struct nd_geom {
    int b, r;              /* batch dims, index tuple length */
    int64_t batch;         /* elements of the batch dims */
    int64_t tuples;        /* index tuples per batch */
    int64_t slice;         /* elements per selected slice */
    int64_t ddims[OCC_MAX_DIMS];
    int64_t dbatch;        /* data elements per batch */
} nd_geom;

static occ_status nd_get(const occ_model *m, const occ_node *n, int scatter, nd_geom *g,
                         int *ond, int64_t *odims, occ_error *e)
{
    const occ_tensor *d = occ_ops_in(m, n, 0), *ix = occ_ops_in(m, n, 1);
    int64_t bd = 0;
    occ_status st = scatter ? OCC_OK : occ_ops_attr_int(n, "batch_dims", 0, &bd, e);
    if (st)
        return st;
    if (ix->ndim < 1 || d->ndim < 1)
        return occ_fail(e, OCC_ERR_SHAPE, "data and indices need rank >= 1");
    if (bd < 0 || bd >= ix->ndim || bd >= d->ndim)
        return occ_fail(e, OCC_ERR_INVALID, "batch_dims = %lld out of range", (long long)bd);
    g->b = (int)bd;
    int64_t r = ix->dims[ix->ndim - 1];
    if (r < 1 || r > d->ndim - g->b)
        return occ_fail(e, OCC_ERR_SHAPE, "index tuples of %lld for data of rank %d "
                        "(batch_dims %d)", (long long)r, d->ndim, g->b);
    g->r = (int)r;
    g->batch = 1;
    for (int i = 0; i < g->b; i++) {
        if (ix->dims[i] != d->dims[i])
            return occ_fail(e, OCC_ERR_SHAPE, "batch dimension %d differs", i);
        g->batch *= d->dims[i];
    }
    g->tuples = 1;
    for (int i = g->b; i < ix->ndim - 1; i++)
        g->tuples *= ix->dims[i];
    g->slice = 1;
    for (int i = g->b + g->r; i < d->ndim; i++)
        g->slice *= d->dims[i];
    g->dbatch = 1;
    for (int i = g->b; i < d->ndim; i++)
        g->dbatch *= d->dims[i];
    memcpy(g->ddims, d->dims, sizeof g->ddims);
    int q = 0;
    for (int i = 0; i < ix->ndim - 1; i++)
        odims[q++] = ix->dims[i];
    for (int i = g->b + g->r; i < d->ndim; i++) {
        if (q == OCC_MAX_DIMS)
            return occ_fail(e, OCC_ERR_SHAPE, "output rank exceeds %d", OCC_MAX_DIMS);
        odims[q++] = d->dims[i];
    }
    *ond = q;
    return OCC_OK;
}

static occ_status gnd_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    nd_geom g;
    int nd;
    int64_t od[OCC_MAX_DIMS];
    occ_status st = nd_get(m, n, 0, &g, &nd, od, e);
    return st ? st : occ_ops_set_out(m, n, 0, nd, od, e);
}

enum { RED_NONE, RED_ADD, RED_MUL };

static occ_status snd_reduction(const occ_node *n, int *red, occ_error *e)
{
    const char *r;
    occ_status st = occ_ops_attr_str(n, "reduction", "none", &r, e);
    if (st)
        return st;
    if (!strcmp(r, "none"))
        *red = RED_NONE;
    else if (!strcmp(r, "add"))
        *red = RED_ADD;
    else if (!strcmp(r, "mul"))
        *red = RED_MUL;
    else
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "reduction = %s is not supported (none, add, mul)", r);
    return OCC_OK;
}

static occ_status snd_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    nd_geom g;
    int nd, red;
    int64_t od[OCC_MAX_DIMS];
    occ_status st = nd_get(m, n, 1, &g, &nd, od, e);
    if (st || (st = snd_reduction(n, &red, e)))
        return st;
    const occ_tensor *d = occ_ops_in(m, n, 0), *u = occ_ops_in(m, n, 2);
    if (occ_ops_dtype(u) != occ_ops_dtype(d))
        return occ_fail(e, OCC_ERR_INVALID, "updates are %s, data %s",
                        occ_dtype_name(occ_ops_dtype(u)), occ_dtype_name(occ_ops_dtype(d)));
    if (red != RED_NONE && (occ_ops_dtype(d) == OCC_DTYPE_BOOL || occ_ops_dtype(d) == OCC_DTYPE_FLOAT16))
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "reduction on %s data",
                        occ_dtype_name(occ_ops_dtype(d)));
    int same = u->ndim == nd;
    for (int i = 0; same && i < nd; i++)
        same = u->dims[i] == od[i];
    if (!same)
        return occ_fail(e, OCC_ERR_SHAPE, "updates do not have the shape indices select");
    return occ_ops_set_out(m, n, 0, d->ndim, d->dims, e);
}

typedef struct nd_state {
    nd_geom g;
    uint32_t idx_dtype, dtype;
    size_t esize;
    int red;
    int64_t dcount;
} nd_state;

static occ_status nd_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    int scatter = !strcmp(p->n->op, "ScatterND");
    nd_state *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    int nd;
    int64_t od[OCC_MAX_DIMS];
    occ_status st = nd_get(p->m, p->n, scatter, &s->g, &nd, od, e);
    if (!st && scatter)
        st = snd_reduction(p->n, &s->red, e);
    if (st) {
        free(s);
        return st;
    }
    const occ_tensor *d = occ_ops_in(p->m, p->n, 0);
    s->idx_dtype = occ_ops_dtype(occ_ops_in(p->m, p->n, 1));
    s->dtype = occ_ops_dtype(d);
    s->esize = occ_ops_esize(d);
    s->dcount = occ_ops_count(d->ndim, d->dims);
    *state = s;
    return OCC_OK;
}

/* Element offset (within a batch) of tuple t of batch bi, or -1 when an index
 * is out of range (then *bad holds it). */
static int64_t tuple_offset(const nd_state *s, const void *ix, int64_t bi, int64_t t, int64_t *bad)
{
    const nd_geom *g = &s->g;
    int64_t off = 0, base = (bi * g->tuples + t) * g->r;
    for (int k = 0; k < g->r; k++) {
        int64_t dim = g->ddims[g->b + k], v = occ_ops_load_i64(s->idx_dtype, ix, base + k);
        if (v < -dim || v >= dim) {
            *bad = v;
            return -1;
        }
        off = off * dim + (v < 0 ? v + dim : v);
    }
    return off * g->slice;
}

static occ_status check_indices(const nd_state *s, const void *ix, occ_error *e)
{
    for (int64_t bi = 0; bi < s->g.batch; bi++)
        for (int64_t t = 0; t < s->g.tuples; t++) {
            int64_t bad = 0;
            if (tuple_offset(s, ix, bi, t, &bad) < 0)
                return occ_fail(e, OCC_ERR_INVALID, "index %lld (tuple %lld) is out of range",
                                (long long)bad, (long long)(bi * s->g.tuples + t));
        }
    return OCC_OK;
}

static occ_status gnd_run(void *state, const occ_op_exec *x, occ_error *e)
{
    const nd_state *s = state;
    occ_status st = check_indices(s, x->in[1], e);
    if (st)
        return st;
    size_t sb = (size_t)s->g.slice * s->esize;
    for (int64_t bi = 0; bi < s->g.batch; bi++)
        for (int64_t t = 0; t < s->g.tuples; t++) {
            int64_t bad, off = tuple_offset(s, x->in[1], bi, t, &bad);
            memcpy((uint8_t *)x->out[0] + (size_t)(bi * s->g.tuples + t) * sb,
                   (const uint8_t *)x->in[0] + ((size_t)(bi * s->g.dbatch + off)) * s->esize, sb);
        }
    return OCC_OK;
}

static void combine(uint32_t dt, int red, void *dst, const void *src, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        if (dt == OCC_DTYPE_FLOAT) {
            float *o = (float *)dst + i, u = ((const float *)src)[i];
            *o = red == RED_ADD ? *o + u : *o * u;
        } else if (occ_dtype_is_float(dt)) { /* float64 in double, bfloat16 through it */
            double a = occ_ops_load_f64(dt, dst, i), b = occ_ops_load_f64(dt, src, i);
            occ_ops_store_f64(dt, dst, i, red == RED_ADD ? a + b : a * b);
        } else {
            int64_t a = occ_ops_load_i64(dt, dst, i), b = occ_ops_load_i64(dt, src, i);
            uint64_t r = red == RED_ADD ? (uint64_t)a + (uint64_t)b : (uint64_t)a * (uint64_t)b;
            occ_ops_store_i64(dt, dst, i, (int64_t)r); /* wraps to the type */
        }
    }
}

static occ_status snd_run(void *state, const occ_op_exec *x, occ_error *e)
{
    const nd_state *s = state;
    occ_status st = check_indices(s, x->in[1], e);
    if (st)
        return st;
    if (x->out[0] != x->in[0])
        memcpy(x->out[0], x->in[0], (size_t)s->dcount * s->esize);
    size_t sb = (size_t)s->g.slice * s->esize;
    for (int64_t t = 0; t < s->g.tuples; t++) {
        int64_t bad, off = tuple_offset(s, x->in[1], 0, t, &bad);
        uint8_t *dst = (uint8_t *)x->out[0] + (size_t)off * s->esize;
        const uint8_t *src = (const uint8_t *)x->in[2] + (size_t)t * sb;
        if (s->red == RED_NONE)
            memcpy(dst, src, sb);
        else
            combine(s->dtype, s->red, dst, src, s->g.slice);
    }
    return OCC_OK;
}

static void nd_destroy(void *s)
{
    free(s);
}

const occ_op_vtable occ_op_gathernd = {
    .op = "GatherND",
    .min_in = 2,
    .max_in = 2,
    .n_out = 1,
    .n_in_types = 2,
    .in_types = {OCC_DTM_ALL, OCC_DTM_INDEX},
    .infer = gnd_infer,
    .prepare = nd_prepare,
    .run = gnd_run,
    .destroy = nd_destroy,
};

const occ_op_vtable occ_op_scatternd = {
    .op = "ScatterND",
    .min_in = 3,
    .max_in = 3,
    .n_out = 1,
    .n_in_types = 3,
    .in_types = {OCC_DTM_ALL, OCC_DTM_INDEX, OCC_DTM_ALL},
    .infer = snd_infer,
    .prepare = nd_prepare,
    .run = snd_run,
    .destroy = nd_destroy,
};
