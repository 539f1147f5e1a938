/* Ops that only change the shape, not the bytes: Flatten, Reshape, Squeeze,
 * Unsqueeze, Identity. Any dtype. Run is a copy (a planner may alias them
 * later). */
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"

static occ_status flatten_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    const occ_tensor *x = occ_ops_in(m, n, 0);
    int64_t axis;
    int ax;
    occ_status st = occ_ops_attr_int(n, "axis", 1, &axis, e);
    if (st)
        return st;
    /* axis in [-r, r], a negative one counts from r (not r + 1 as Unsqueeze's) */
    if (axis < -x->ndim || axis > x->ndim)
        return occ_fail(e, OCC_ERR_INVALID, "axis %lld out of range for rank %d", (long long)axis,
                        x->ndim);
    ax = (int)(axis < 0 ? axis + x->ndim : axis);
    int64_t d[2] = {1, 1};
    for (int i = 0; i < x->ndim; i++)
        d[i < ax ? 0 : 1] *= x->dims[i]; /* bounded: the input count was checked */
    return occ_ops_set_out(m, n, 0, 2, d, e);
}

static occ_status reshape_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    const occ_tensor *x = occ_ops_in(m, n, 0);
    const int64_t *sh;
    uint32_t c;
    int64_t allowzero;
    occ_status st;
    if (n->n_inputs > 1 && n->inputs[1] >= 0)
        return occ_fail(e, OCC_ERR_UNSUPPORTED,
                        "a run-time shape input is not supported (fold into attribute shape)");
    if ((st = occ_ops_attr_ints(n, "shape", OCC_MAX_DIMS, &sh, &c, e)))
        return st;
    if (!occ_ops_attr(n, "shape"))
        return occ_fail(e, OCC_ERR_INVALID, "missing attribute shape");
    if ((st = occ_ops_attr_int(n, "allowzero", 0, &allowzero, e)))
        return st;
    /* shape[i] = 0 copies the input's dim i, or (allowzero = 1) is a literal 0:
     * the output is then empty, as the input must be */
    int64_t d[OCC_MAX_DIMS];
    int infer_at = -1;
    int64_t known = 1, nz = 1, total = occ_ops_count(x->ndim, x->dims);
    for (uint32_t i = 0; i < c; i++) {
        if (sh[i] == 0 && !allowzero) {
            if ((int)i >= x->ndim)
                return occ_fail(e, OCC_ERR_SHAPE, "shape[%u] = 0 but the input has rank %d", i,
                                x->ndim);
            d[i] = x->dims[i];
        } else if (sh[i] == -1) {
            if (infer_at >= 0)
                return occ_fail(e, OCC_ERR_INVALID, "more than one -1 in shape");
            infer_at = (int)i;
            continue;
        } else if (sh[i] < 0) {
            return occ_fail(e, OCC_ERR_INVALID, "shape[%u] = %lld", i, (long long)sh[i]);
        } else {
            d[i] = sh[i];
        }
        /* bounded by the input's size, or (a 0 elsewhere) by the same limit */
        int64_t lim = total ? total : INT64_C(1) << 40;
        if (d[i] > lim || (d[i] && nz > lim / d[i]))
            return occ_fail(e, OCC_ERR_SHAPE, "shape has more elements than the input");
        nz *= d[i] ? d[i] : 1;
        known *= d[i];
    }
    if (infer_at >= 0) {
        if (known == 0)
            return occ_fail(e, OCC_ERR_SHAPE, "cannot infer -1 next to a 0 dim (allowzero = 1)");
        if (total % known)
            return occ_fail(e, OCC_ERR_SHAPE, "cannot infer -1: %lld elements not divisible by %lld",
                            (long long)total, (long long)known);
        d[infer_at] = total / known;
        known = total;
    }
    if (known != total)
        return occ_fail(e, OCC_ERR_SHAPE, "shape has %lld elements, the input %lld",
                        (long long)known, (long long)total);
    return occ_ops_set_out(m, n, 0, (int)c, d, e);
}

static occ_status squeeze_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    const occ_tensor *x = occ_ops_in(m, n, 0);
    const int64_t *axes;
    uint32_t c;
    occ_status st;
    if (n->n_inputs > 1 && n->inputs[1] >= 0)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "run-time axes are not supported");
    if ((st = occ_ops_attr_ints(n, "axes", OCC_MAX_DIMS, &axes, &c, e)))
        return st;
    int drop[OCC_MAX_DIMS] = {0};
    for (uint32_t i = 0; i < c; i++) {
        int a;
        if ((st = occ_ops_axis(axes[i], x->ndim, 0, &a, e)))
            return st;
        if (x->dims[a] != 1)
            return occ_fail(e, OCC_ERR_SHAPE, "cannot squeeze axis %d of size %lld", a,
                            (long long)x->dims[a]);
        drop[a] = 1;
    }
    if (!c)
        for (int i = 0; i < x->ndim; i++)
            drop[i] = x->dims[i] == 1;
    int64_t d[OCC_MAX_DIMS];
    int r = 0;
    for (int i = 0; i < x->ndim; i++)
        if (!drop[i])
            d[r++] = x->dims[i];
    return occ_ops_set_out(m, n, 0, r, d, e);
}

static occ_status unsqueeze_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    const occ_tensor *x = occ_ops_in(m, n, 0);
    const int64_t *axes;
    uint32_t c;
    occ_status st;
    if (n->n_inputs > 1 && n->inputs[1] >= 0)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "run-time axes are not supported");
    if ((st = occ_ops_attr_ints(n, "axes", OCC_MAX_DIMS, &axes, &c, e)))
        return st;
    if (!c)
        return occ_fail(e, OCC_ERR_INVALID, "missing attribute axes");
    int r = x->ndim + (int)c;
    if (r > OCC_MAX_DIMS)
        return occ_fail(e, OCC_ERR_SHAPE, "output rank %d exceeds %d", r, OCC_MAX_DIMS);
    int ins[OCC_MAX_DIMS] = {0};
    for (uint32_t i = 0; i < c; i++) {
        int a;
        if ((st = occ_ops_axis(axes[i], r, 0, &a, e)))
            return st;
        if (ins[a])
            return occ_fail(e, OCC_ERR_INVALID, "axis %d repeated", a);
        ins[a] = 1;
    }
    int64_t d[OCC_MAX_DIMS];
    int j = 0;
    for (int i = 0; i < r; i++)
        d[i] = ins[i] ? 1 : x->dims[j++];
    return occ_ops_set_out(m, n, 0, r, d, e);
}

static occ_status identity_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    const occ_tensor *x = occ_ops_in(m, n, 0);
    return occ_ops_set_out(m, n, 0, x->ndim, x->dims, e);
}

typedef struct copy_state {
    size_t size;
} copy_state;

static occ_status copy_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    copy_state *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    const occ_tensor *x = occ_ops_in(p->m, p->n, 0);
    s->size = (size_t)occ_ops_count(x->ndim, x->dims) * occ_ops_esize(x);
    *state = s;
    return OCC_OK;
}

static occ_status copy_run(void *state, const occ_op_exec *x, occ_error *e)
{
    const copy_state *s = state;
    if (x->out[0] != x->in[0])
        memcpy(x->out[0], x->in[0], s->size);
    return OCC_OK;
}

static uint64_t copy_flops(const occ_model *m, const occ_node *n)
{
    return 0;
}

static void copy_destroy(void *s)
{
    free(s);
}

#define SHAPE_OP(var, name, maxin, fn)                                                    \
    const occ_op_vtable var = {.op = name,                                                \
                               .min_in = 1,                                               \
                               .max_in = maxin,                                           \
                               .n_out = 1,                                                \
                               .flags = OCC_OPF_EMPTY,                                    \
                               .n_in_types = 2,                                           \
                               .in_types = {OCC_DTM_ALL, OCC_DTM_INDEX},                  \
                               .infer = fn,                                               \
                               .flops = copy_flops,                                       \
                               .prepare = copy_prepare,                                   \
                               .run = copy_run,                                           \
                               .destroy = copy_destroy}

SHAPE_OP(occ_op_flatten, "Flatten", 1, flatten_infer);
SHAPE_OP(occ_op_reshape, "Reshape", 2, reshape_infer);
SHAPE_OP(occ_op_squeeze, "Squeeze", 2, squeeze_infer);
SHAPE_OP(occ_op_unsqueeze, "Unsqueeze", 2, unsqueeze_infer);
SHAPE_OP(occ_op_identity, "Identity", 1, identity_infer);
