/* ReduceMean over the axes in attribute "axes" (all when absent), keepdims. */
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"

typedef struct reduce_state {
    int nd;
    int64_t idims[OCC_MAX_DIMS];
    int64_t ostride[OCC_MAX_DIMS]; /* output stride per input dim, 0 if reduced */
    int64_t icount, ocount;
    int out_nd;
    int64_t odims[OCC_MAX_DIMS];
    float inv;
} reduce_state;

static occ_status reduce_params(const occ_model *m, const occ_node *n, reduce_state *s,
                                occ_error *e)
{
    const occ_tensor *x = occ_ops_in(m, n, 0);
    const int64_t *axes;
    uint32_t c;
    int64_t keep, noop;
    occ_status st;
    if (n->n_inputs > 1 && n->inputs[1] >= 0)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "run-time axes are not supported");
    if ((st = occ_ops_attr_ints(n, "axes", OCC_MAX_DIMS, &axes, &c, e)) ||
        (st = occ_ops_attr_int(n, "keepdims", 1, &keep, e)) ||
        (st = occ_ops_attr_int(n, "noop_with_empty_axes", 0, &noop, e)))
        return st;
    if ((keep != 0 && keep != 1) || (noop != 0 && noop != 1))
        return occ_fail(e, OCC_ERR_INVALID, "keepdims/noop_with_empty_axes must be 0 or 1");
    int red[OCC_MAX_DIMS] = {0};
    for (uint32_t i = 0; i < c; i++) {
        int a;
        if ((st = occ_ops_axis(axes[i], x->ndim, 0, &a, e)))
            return st;
        if (red[a])
            return occ_fail(e, OCC_ERR_INVALID, "axis %d repeated", a);
        red[a] = 1;
    }
    if (!c && !noop)
        for (int i = 0; i < x->ndim; i++)
            red[i] = 1;
    s->nd = x->ndim;
    s->out_nd = 0;
    int64_t rc = 1;
    for (int i = 0; i < x->ndim; i++) {
        s->idims[i] = x->dims[i];
        if (red[i]) {
            rc *= x->dims[i];
            if (keep)
                s->odims[s->out_nd++] = 1;
        } else {
            s->odims[s->out_nd++] = x->dims[i];
        }
    }
    int64_t acc = 1;
    for (int i = x->ndim - 1; i >= 0; i--) {
        s->ostride[i] = red[i] ? 0 : acc;
        if (!red[i])
            acc *= x->dims[i];
    }
    s->ocount = acc;
    s->icount = occ_ops_count(x->ndim, x->dims);
    s->inv = 1.0f / (float)rc;
    return OCC_OK;
}

static occ_status reduce_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    reduce_state s;
    occ_status st = reduce_params(m, n, &s, e);
    if (st)
        return st;
    return occ_ops_set_out(m, n, 0, s.out_nd, s.odims, e);
}

static uint64_t reduce_flops(const occ_model *m, const occ_node *n)
{
    const occ_tensor *x = occ_ops_in(m, n, 0);
    return (uint64_t)occ_ops_count(x->ndim, x->dims);
}

static occ_status reduce_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    reduce_state *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    occ_status st = reduce_params(p->m, p->n, s, e);
    if (st) {
        free(s);
        return st;
    }
    *state = s;
    return OCC_OK;
}

static occ_status reduce_run(void *state, const occ_op_exec *x, occ_error *e)
{
    const reduce_state *s = state;
    const float *in = x->in[0];
    float *out = x->out[0];
    memset(out, 0, (size_t)s->ocount * sizeof(float));
    if (s->nd == 0) {
        out[0] = in[0];
        return OCC_OK;
    }
    const int64_t inner = s->idims[s->nd - 1], os = s->ostride[s->nd - 1];
    const int64_t rows = s->icount / inner;
    for (int64_t r = 0; r < rows; r++) {
        int64_t rem = r, off = 0;
        for (int d = s->nd - 2; d >= 0; d--) {
            off += (rem % s->idims[d]) * s->ostride[d];
            rem /= s->idims[d];
        }
        const float *row = in + r * inner;
        if (os == 0) {
            float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
            for (int64_t i = 0; i < inner; i++)
                acc += row[i];
            out[off] += acc;
        } else {
            for (int64_t i = 0; i < inner; i++)
                out[off + i] += row[i];
        }
    }
    for (int64_t i = 0; i < s->ocount; i++)
        out[i] *= s->inv;
    return OCC_OK;
}

static void reduce_destroy(void *s)
{
    free(s);
}

const occ_op_vtable occ_op_reducemean = {
    .op = "ReduceMean",
    .min_in = 1,
    .max_in = 2,
    .n_out = 1,
    .infer = reduce_infer,
    .flops = reduce_flops,
    .prepare = reduce_prepare,
    .run = reduce_run,
    .destroy = reduce_destroy,
};
