/* Split along "axis" into the node's outputs: sizes from attribute "split"
 * (or the constant input, folded at pack), else equal parts (opset 18's
 * num_outputs: the last part may be smaller). Any dtype. */
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"

static occ_status split_get(const occ_model *m, const occ_node *n, int *ax, int64_t *len,
                            occ_error *e)
{
    const occ_tensor *x = occ_ops_in(m, n, 0);
    int64_t axis, nout_attr;
    const int64_t *sp;
    uint32_t c;
    occ_status st;
    if (n->n_inputs > 1 && n->inputs[1] >= 0)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "a run-time split input is not supported (it "
                        "sets the output shapes: a constant, folded at pack)");
    if ((st = occ_ops_attr_int(n, "axis", 0, &axis, e)) ||
        (st = occ_ops_attr_int(n, "num_outputs", 0, &nout_attr, e)) ||
        (st = occ_ops_attr_ints(n, "split", OCC_MAX_NODE_IO, &sp, &c, e)))
        return st;
    if (x->ndim < 1)
        return occ_fail(e, OCC_ERR_SHAPE, "cannot split a scalar");
    if ((st = occ_ops_axis(axis, x->ndim, 0, ax, e)))
        return st;
    if (nout_attr && nout_attr != (int64_t)n->n_outputs)
        return occ_fail(e, OCC_ERR_INVALID, "num_outputs = %lld but the node has %u outputs",
                        (long long)nout_attr, n->n_outputs);
    int64_t dim = x->dims[*ax], sum = 0;
    if (c) {
        if (c != n->n_outputs)
            return occ_fail(e, OCC_ERR_INVALID, "split has %u sizes for %u outputs", c,
                            n->n_outputs);
        for (uint32_t i = 0; i < c; i++) {
            if (sp[i] < 0 || sp[i] > dim)
                return occ_fail(e, OCC_ERR_INVALID, "split[%u] = %lld (0..%lld allowed)", i,
                                (long long)sp[i], (long long)dim);
            len[i] = sp[i];
            sum += sp[i];
        }
        if (sum != dim)
            return occ_fail(e, OCC_ERR_SHAPE, "split sizes add up to %lld, the axis has %lld",
                            (long long)sum, (long long)dim);
        return OCC_OK;
    }
    int64_t k = n->n_outputs, part = (dim + k - 1) / k;
    for (int64_t i = 0; i < k; i++) {
        len[i] = dim - sum < part ? dim - sum : part;
        if (len[i] < 1 && dim > 0)
            return occ_fail(e, OCC_ERR_SHAPE, "axis of %lld cannot be split into %lld parts",
                            (long long)dim, (long long)k);
        sum += len[i];
    }
    return OCC_OK;
}

static occ_status split_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    int ax;
    int64_t len[OCC_MAX_NODE_IO];
    occ_status st = split_get(m, n, &ax, len, e);
    if (st)
        return st;
    const occ_tensor *x = occ_ops_in(m, n, 0);
    for (uint32_t i = 0; i < n->n_outputs && !st; i++) {
        int64_t d[OCC_MAX_DIMS];
        memcpy(d, x->dims, sizeof d);
        d[ax] = len[i];
        st = occ_ops_set_out(m, n, i, x->ndim, d, e);
    }
    return st;
}

typedef struct split_state {
    uint32_t n_out;
    int64_t outer, in_row;            /* bytes of one outer row of the input */
    int64_t part[OCC_MAX_NODE_IO];    /* bytes of one outer row of each output */
} split_state;

static occ_status split_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    int ax;
    int64_t len[OCC_MAX_NODE_IO];
    occ_status st = split_get(p->m, p->n, &ax, len, e);
    if (st)
        return st;
    split_state *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    const occ_tensor *x = occ_ops_in(p->m, p->n, 0);
    int64_t inner = (int64_t)occ_ops_esize(x);
    s->outer = 1;
    for (int d = 0; d < ax; d++)
        s->outer *= x->dims[d];
    for (int d = ax + 1; d < x->ndim; d++)
        inner *= x->dims[d];
    s->n_out = p->n->n_outputs;
    s->in_row = x->dims[ax] * inner;
    for (uint32_t i = 0; i < s->n_out; i++)
        s->part[i] = len[i] * inner;
    *state = s;
    return OCC_OK;
}

static occ_status split_run(void *state, const occ_op_exec *x, occ_error *e)
{
    const split_state *s = state;
    const uint8_t *in = x->in[0];
    for (int64_t o = 0; o < s->outer; o++) {
        int64_t at = o * s->in_row;
        for (uint32_t i = 0; i < s->n_out; i++) {
            if (s->part[i]) /* a zero-size part may have no buffer */
                memcpy((uint8_t *)x->out[i] + o * s->part[i], in + at, (size_t)s->part[i]);
            at += s->part[i];
        }
    }
    return OCC_OK;
}

static void split_destroy(void *s)
{
    free(s);
}

static uint64_t split_flops(const occ_model *m, const occ_node *n)
{
    return 0;
}

const occ_op_vtable occ_op_split = {
    .op = "Split",
    .min_in = 1,
    .max_in = 2,
    .n_out = OCC_MAX_NODE_IO,
    .min_out = 1, /* Split: any count; TopK: indices may go unread */
    .flags = OCC_OPF_EMPTY, /* zero-size parts */
    .n_in_types = 2,
    .in_types = {OCC_DTM_ALL, OCC_DTM_INDEX},
    .infer = split_infer,
    .flops = split_flops,
    .prepare = split_prepare,
    .run = split_run,
    .destroy = split_destroy,
};
