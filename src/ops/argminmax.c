/* ArgMax / ArgMin along "axis" (keepdims, select_last_index): int64 indices
 * of the largest / smallest element. Float (NaN never wins) or integer input. */
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"

typedef struct arg_geom {
    int ax, keep, last, is_max;
} arg_geom;

static occ_status arg_get(const occ_model *m, const occ_node *n, arg_geom *g, occ_error *e)
{
    const occ_tensor *x = occ_ops_in(m, n, 0);
    int64_t axis, keep, last;
    occ_status st;
    if ((st = occ_ops_attr_int(n, "axis", 0, &axis, e)) ||
        (st = occ_ops_attr_int(n, "keepdims", 1, &keep, e)) ||
        (st = occ_ops_attr_int(n, "select_last_index", 0, &last, e)))
        return st;
    if (x->ndim < 1)
        return occ_fail(e, OCC_ERR_SHAPE, "input is a scalar");
    g->keep = keep != 0;
    g->last = last != 0;
    g->is_max = !strcmp(n->op, "ArgMax");
    return occ_ops_axis(axis, x->ndim, 0, &g->ax, e);
}

static occ_status arg_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    arg_geom g;
    occ_status st = arg_get(m, n, &g, e);
    if (st)
        return st;
    const occ_tensor *x = occ_ops_in(m, n, 0);
    int64_t d[OCC_MAX_DIMS];
    int r = 0;
    for (int i = 0; i < x->ndim; i++) {
        if (i != g.ax)
            d[r++] = x->dims[i];
        else if (g.keep)
            d[r++] = 1;
    }
    occ_ops_set_dtype(m, n, 0, OCC_DTYPE_INT64);
    return occ_ops_set_out(m, n, 0, r, d, e);
}

typedef struct arg_state {
    arg_geom g;
    uint32_t dtype;
    int64_t outer, len, inner;
} arg_state;

static occ_status arg_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    arg_state *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    occ_status st = arg_get(p->m, p->n, &s->g, e);
    if (st) {
        free(s);
        return st;
    }
    const occ_tensor *x = occ_ops_in(p->m, p->n, 0);
    s->dtype = occ_ops_dtype(x);
    s->outer = s->inner = 1;
    for (int d = 0; d < s->g.ax; d++)
        s->outer *= x->dims[d];
    for (int d = s->g.ax + 1; d < x->ndim; d++)
        s->inner *= x->dims[d];
    s->len = x->dims[s->g.ax];
    *state = s;
    return OCC_OK;
}

/* Does v beat the best so far (ties go to the first, or the last index)? */
static int better_d(const arg_geom *g, double v, double best)
{
    if (v != v)
        return 0;
    if (best != best)
        return 1;
    return g->is_max ? (g->last ? v >= best : v > best) : (g->last ? v <= best : v < best);
}

static int better_f(const arg_geom *g, float v, float best)
{
    if (v != v)
        return 0;
    if (best != best)
        return 1;
    return g->is_max ? (g->last ? v >= best : v > best) : (g->last ? v <= best : v < best);
}

static int better_i(const arg_geom *g, int64_t v, int64_t best)
{
    return g->is_max ? (g->last ? v >= best : v > best) : (g->last ? v <= best : v < best);
}

static occ_status arg_run(void *state, const occ_op_exec *x, occ_error *e)
{
    const arg_state *s = state;
    int64_t *o = x->out[0];
    for (int64_t a = 0; a < s->outer; a++)
        for (int64_t c = 0; c < s->inner; c++) {
            int64_t base = a * s->len * s->inner + c, bi = 0;
            if (s->dtype == OCC_DTYPE_FLOAT) {
                const float *in = x->in[0];
                float best = in[base];
                for (int64_t k = 1; k < s->len; k++)
                    if (better_f(&s->g, in[base + k * s->inner], best)) {
                        best = in[base + k * s->inner];
                        bi = k;
                    }
            } else if (s->dtype == OCC_DTYPE_DOUBLE) {
                const double *in = x->in[0];
                double best = in[base];
                for (int64_t k = 1; k < s->len; k++)
                    if (better_d(&s->g, in[base + k * s->inner], best)) {
                        best = in[base + k * s->inner];
                        bi = k;
                    }
            } else {
                int64_t best = occ_ops_load_key(s->dtype, x->in[0], base);
                for (int64_t k = 1; k < s->len; k++) {
                    int64_t v = occ_ops_load_key(s->dtype, x->in[0], base + k * s->inner);
                    if (better_i(&s->g, v, best)) {
                        best = v;
                        bi = k;
                    }
                }
            }
            o[a * s->inner + c] = bi;
        }
    return OCC_OK;
}

static void arg_destroy(void *s)
{
    free(s);
}

#define ARG(var, name)                                                                    \
    const occ_op_vtable var = {.op = name,                                                \
                               .min_in = 1,                                               \
                               .max_in = 1,                                               \
                               .n_out = 1,                                                \
                               .n_in_types = 1,                                           \
                               .in_types = {OCC_DTM_NUM},                                 \
                               .infer = arg_infer,                                        \
                               .prepare = arg_prepare,                                    \
                               .run = arg_run,                                            \
                               .destroy = arg_destroy}

ARG(occ_op_argmax, "ArgMax");
ARG(occ_op_argmin, "ArgMin");
