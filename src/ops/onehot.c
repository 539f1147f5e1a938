/* OneHot(indices, depth, values): values[1] where the index along the new
 * axis (attribute, default -1, in [-r-1, r]) equals indices (a negative one
 * counts from depth), values[0] elsewhere; an index outside [-depth, depth)
 * gives an all-off row. depth is known at pack time (the packer turns the
 * constant input into the "depth" attribute); indices of any numeric type
 * (float truncated), values of any type. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"

static occ_status onehot_geom(const occ_model *m, const occ_node *n, int64_t *depth, int *axis,
                              occ_error *e)
{
    const occ_tensor *ix = occ_ops_in(m, n, 0), *v = occ_ops_in(m, n, 2);
    float d;
    int64_t a;
    occ_status st;
    if ((st = occ_ops_attr_float(n, "depth", NAN, &d, e)) || (st = occ_ops_attr_int(n, "axis", -1, &a, e)))
        return st;
    if (!(d >= 1.0f && d <= 1e9f))
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "depth must be a constant known at pack time, "
                        "at least 1");
    if (!v || occ_ops_count(v->ndim, v->dims) != 2)
        return occ_fail(e, OCC_ERR_SHAPE, "values must hold two elements (off, on)");
    if (ix->ndim + 1 > OCC_MAX_DIMS)
        return occ_fail(e, OCC_ERR_SHAPE, "indices have rank %d, too large", ix->ndim);
    *depth = (int64_t)d;
    return occ_ops_axis(a, ix->ndim, 1, axis, e);
}

static occ_status onehot_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    const occ_tensor *ix = occ_ops_in(m, n, 0);
    int64_t depth, d[OCC_MAX_DIMS];
    int ax;
    occ_status st = onehot_geom(m, n, &depth, &ax, e);
    if (st)
        return st;
    for (int i = 0, j = 0; i <= ix->ndim; i++)
        d[i] = i == ax ? depth : ix->dims[j++];
    if ((st = occ_ops_set_out(m, n, 0, ix->ndim + 1, d, e)))
        return st;
    occ_ops_set_dtype(m, n, 0, occ_ops_dtype(occ_ops_in(m, n, 2)));
    return OCC_OK;
}

typedef struct onehot_state {
    uint32_t idt;
    size_t esize;
    int64_t depth, outer, inner; /* indices = [outer, inner], output [outer, depth, inner] */
} onehot_state;

static occ_status onehot_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    onehot_state *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    const occ_tensor *ix = occ_ops_in(p->m, p->n, 0);
    int ax;
    occ_status st = onehot_geom(p->m, p->n, &s->depth, &ax, e);
    if (st) {
        free(s);
        return st;
    }
    s->idt = occ_ops_dtype(ix);
    s->esize = occ_ops_esize(occ_ops_in(p->m, p->n, 2));
    s->outer = s->inner = 1;
    for (int i = 0; i < ix->ndim; i++)
        *(i < ax ? &s->outer : &s->inner) *= ix->dims[i];
    *state = s;
    return OCC_OK;
}

static occ_status onehot_run(void *state, const occ_op_exec *x, occ_error *e)
{
    (void)e;
    const onehot_state *s = state;
    const uint8_t *v = x->in[2];
    uint8_t *o = x->out[0];
    for (int64_t a = 0; a < s->outer; a++)
        for (int64_t j = 0; j < s->inner; j++) {
            int64_t k = occ_ops_load_i64(s->idt, x->in[0], a * s->inner + j);
            if (k < 0 && k >= -s->depth)
                k += s->depth;
            for (int64_t d = 0; d < s->depth; d++)
                memcpy(o + (size_t)((a * s->depth + d) * s->inner + j) * s->esize,
                       v + (d == k ? s->esize : 0), s->esize);
        }
    return OCC_OK;
}

static void onehot_destroy(void *s)
{
    free(s);
}

const occ_op_vtable occ_op_onehot = {
    .op = "OneHot",
    .min_in = 1, /* depth (input 1) arrives as an attribute; values is checked by infer */
    .max_in = 3,
    .n_out = 1,
    .n_in_types = 3,
    .in_types = {OCC_DTM_NUM, OCC_DTM_NUM, OCC_DTM_ALL},
    .infer = onehot_infer,
    .prepare = onehot_prepare,
    .run = onehot_run,
    .destroy = onehot_destroy,
};
