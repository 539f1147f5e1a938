/* ScatterElements(data, indices, updates) along "axis" (and the deprecated
 * Scatter, opset 9-10, the same): a copy of data where, for each element of
 * indices, out[i.. with i[axis] = indices[i..]] = updates[i..] (reduction
 * "none"; "add" and "mul", opset 16, combine with what is there, numeric data
 * only). indices and updates share one shape, of data's rank, no larger than
 * data off the axis. Any data type for "none" (moved by size); int32/int64
 * indices checked at run time (negative count from the end; outside [-dim,
 * dim) is an error, never an out-of-bounds write). */
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"

enum { SR_NONE, SR_ADD, SR_MUL };

static occ_status se_geom(const occ_model *m, const occ_node *n, int *ax, int *red, occ_error *e)
{
    const occ_tensor *d = occ_ops_in(m, n, 0), *ix = occ_ops_in(m, n, 1), *u = occ_ops_in(m, n, 2);
    int64_t axis;
    const char *r;
    occ_status st;
    if ((st = occ_ops_attr_int(n, "axis", 0, &axis, e)) ||
        (st = occ_ops_attr_str(n, "reduction", "none", &r, e)))
        return st;
    *red = !strcmp(r, "none") ? SR_NONE : !strcmp(r, "add") ? SR_ADD : !strcmp(r, "mul") ? SR_MUL : -1;
    if (*red < 0)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "reduction '%s' is not supported (none, add, mul)", r);
    uint32_t dt = occ_ops_dtype(d);
    if (*red != SR_NONE && (dt == OCC_DTYPE_BOOL || dt == OCC_DTYPE_FLOAT16))
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "reduction '%s' on %s data is not supported", r,
                        occ_dtype_name(dt));
    if (occ_ops_dtype(u) != dt)
        return occ_fail(e, OCC_ERR_INVALID, "updates are %s, data %s (must be one type)",
                        occ_dtype_name(occ_ops_dtype(u)), occ_dtype_name(dt));
    if (d->ndim < 1 || ix->ndim != d->ndim || u->ndim != ix->ndim)
        return occ_fail(e, OCC_ERR_SHAPE, "indices have rank %d, updates %d, data %d (must be "
                        "equal, >= 1)", ix->ndim, u->ndim, d->ndim);
    if ((st = occ_ops_axis(axis, d->ndim, 0, ax, e)))
        return st;
    for (int i = 0; i < d->ndim; i++) {
        if (u->dims[i] != ix->dims[i])
            return occ_fail(e, OCC_ERR_SHAPE, "updates and indices differ at dimension %d", i);
        if (i != *ax && ix->dims[i] > d->dims[i])
            return occ_fail(e, OCC_ERR_SHAPE, "indices dimension %d is %lld, data's %lld", i,
                            (long long)ix->dims[i], (long long)d->dims[i]);
    }
    return OCC_OK;
}

static occ_status se_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    int ax, red;
    occ_status st = se_geom(m, n, &ax, &red, e);
    if (st)
        return st;
    const occ_tensor *d = occ_ops_in(m, n, 0);
    return occ_ops_set_out(m, n, 0, d->ndim, d->dims, e);
}

typedef struct se_state {
    occ_elem_geom g;
    int red;
    int64_t dcount; /* data elements */
    uint32_t dtype;
} se_state;

static occ_status se_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    int ax, red;
    occ_status st = se_geom(p->m, p->n, &ax, &red, e);
    if (st)
        return st;
    se_state *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    const occ_tensor *d = occ_ops_in(p->m, p->n, 0);
    occ_elem_geom_init(&s->g, d, occ_ops_in(p->m, p->n, 1), ax);
    s->red = red;
    s->dcount = occ_ops_count(d->ndim, d->dims);
    s->dtype = occ_ops_dtype(d);
    *state = s;
    return OCC_OK;
}

static occ_status se_run(void *state, const occ_op_exec *x, occ_error *e)
{
    const se_state *s = state;
    const occ_elem_geom *g = &s->g;
    occ_status st = occ_elem_check(g, x->in[1], e);
    if (st)
        return st;
    memcpy(x->out[0], x->in[0], (size_t)s->dcount * g->esize);
    for (int64_t k = 0; k < g->count; k++) {
        int64_t off = occ_elem_offset(g, x->in[1], k);
        if (s->red == SR_NONE) {
            memcpy((uint8_t *)x->out[0] + (size_t)off * g->esize,
                   (const uint8_t *)x->in[2] + (size_t)k * g->esize, g->esize);
        } else if (s->dtype == OCC_DTYPE_FLOAT) {
            float *o = x->out[0];
            const float *u = x->in[2];
            o[off] = s->red == SR_ADD ? o[off] + u[k] : o[off] * u[k];
        } else if (occ_dtype_is_float(s->dtype)) { /* float64 in double, bfloat16 through it */
            double a = occ_ops_load_f64(s->dtype, x->out[0], off);
            double b = occ_ops_load_f64(s->dtype, x->in[2], k);
            occ_ops_store_f64(s->dtype, x->out[0], off, s->red == SR_ADD ? a + b : a * b);
        } else {
            uint64_t a = (uint64_t)occ_ops_load_i64(s->dtype, x->out[0], off);
            uint64_t b = (uint64_t)occ_ops_load_i64(s->dtype, x->in[2], k);
            occ_ops_store_i64(s->dtype, x->out[0], off, (int64_t)(s->red == SR_ADD ? a + b : a * b));
        }
    }
    return OCC_OK;
}

static void se_destroy(void *s)
{
    free(s);
}

#define SCATTER_EL(var, name)                                                             \
    const occ_op_vtable var = {.op = name,                                                \
                               .min_in = 3,                                               \
                               .max_in = 3,                                               \
                               .n_out = 1,                                                \
                               .n_in_types = 3,                                           \
                               .in_types = {OCC_DTM_ALL, OCC_DTM_INDEX, OCC_DTM_ALL},     \
                               .infer = se_infer,                                         \
                               .prepare = se_prepare,                                     \
                               .run = se_run,                                             \
                               .destroy = se_destroy}

SCATTER_EL(occ_op_scatterelements, "ScatterElements");
SCATTER_EL(occ_op_scatter, "Scatter");
