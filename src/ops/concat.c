/* Concat: plain row-major block copies (any dtype: bytes), or oneDNN concat
 * along channels when float inputs arrive in blocked layouts (keeps
 * Inception-style graphs blocked). */
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"

static occ_status concat_params(const occ_model *m, const occ_node *n, int *axis, occ_error *e)
{
    const occ_tensor *x0 = occ_ops_in(m, n, 0);
    int64_t a;
    occ_status st;
    if (!occ_ops_attr(n, "axis"))
        return occ_fail(e, OCC_ERR_INVALID, "missing attribute axis");
    if ((st = occ_ops_attr_int(n, "axis", 0, &a, e)))
        return st;
    if (x0->ndim == 0)
        return occ_fail(e, OCC_ERR_SHAPE, "cannot concatenate scalars");
    if ((st = occ_ops_axis(a, x0->ndim, 0, axis, e)))
        return st;
    for (uint32_t i = 0; i < n->n_inputs; i++) {
        const occ_tensor *x = occ_ops_in(m, n, i);
        if (!x)
            return occ_fail(e, OCC_ERR_INVALID, "input %u is absent", i);
        if (occ_ops_dtype(x) != occ_ops_dtype(x0))
            return occ_fail(e, OCC_ERR_INVALID, "input %u is %s, input 0 %s", i,
                            occ_dtype_name(occ_ops_dtype(x)), occ_dtype_name(occ_ops_dtype(x0)));
        if (x->ndim != x0->ndim)
            return occ_fail(e, OCC_ERR_SHAPE, "input %u has rank %d, input 0 rank %d", i,
                            x->ndim, x0->ndim);
        for (int d = 0; d < x->ndim; d++)
            if (d != *axis && x->dims[d] != x0->dims[d])
                return occ_fail(e, OCC_ERR_SHAPE, "input %u differs in dimension %d", i, d);
    }
    return OCC_OK;
}

static occ_status concat_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    int axis;
    occ_status st = concat_params(m, n, &axis, e);
    if (st)
        return st;
    const occ_tensor *x0 = occ_ops_in(m, n, 0);
    /* empty inputs: all of them (an empty output, never run), or none (the
     * packer drops empty inputs next to others; the kernel never sees one) */
    uint32_t empty = 0;
    for (uint32_t i = 0; i < n->n_inputs; i++)
        empty += occ_ops_count(occ_ops_in(m, n, i)->ndim, occ_ops_in(m, n, i)->dims) == 0;
    if (empty && empty != n->n_inputs)
        return occ_fail(e, OCC_ERR_SHAPE, "%u of %u inputs are empty (drop them: they add "
                        "nothing)", empty, n->n_inputs);
    int64_t d[OCC_MAX_DIMS];
    memcpy(d, x0->dims, sizeof d);
    d[axis] = 0;
    for (uint32_t i = 0; i < n->n_inputs; i++) {
        int64_t v = occ_ops_in(m, n, i)->dims[axis];
        if (d[axis] > (INT64_C(1) << 40))
            return occ_fail(e, OCC_ERR_SHAPE, "concatenated dimension too large");
        d[axis] += v;
    }
    return occ_ops_set_out(m, n, 0, x0->ndim, d, e);
}

static uint64_t concat_flops(const occ_model *m, const occ_node *n)
{
    return 0;
}

static int concat_layout(const occ_model *m, const occ_node *n, const dnnl_memory_desc_t *const *md)
{
    int axis, any = 0;
    if (concat_params(m, n, &axis, NULL) || axis != 1 || occ_ops_in(m, n, 0)->ndim != 4 ||
        occ_ops_dtype(occ_ops_in(m, n, 0)) != OCC_DTYPE_FLOAT)
        return 0;
    for (uint32_t i = 0; i < n->n_inputs; i++) {
        if (occ_ops_is_weight(m, n, i))
            return 0;
        any |= md[i] != NULL;
    }
    return any;
}

typedef struct concat_state {
    uint32_t n_in;
    int64_t outer, inner, out_len;
    int64_t len[OCC_MAX_NODE_IO]; /* bytes: dims[axis] * inner * element size of each input */
    dnnl_primitive_t prim;
    dnnl_memory_t src[OCC_MAX_NODE_IO], dst;
    occ_dnnl_scratch scratch;
} concat_state;

static void concat_destroy(void *p)
{
    concat_state *s = p;
    if (!s)
        return;
    if (s->prim)
        dnnl_primitive_destroy(s->prim);
    for (uint32_t i = 0; i < s->n_in; i++)
        if (s->src[i])
            dnnl_memory_destroy(s->src[i]);
    if (s->dst)
        dnnl_memory_destroy(s->dst);
    occ_dnnl_scratch_free(&s->scratch);
    free(s);
}

static occ_status concat_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    int axis;
    occ_status st = concat_params(p->m, p->n, &axis, e);
    if (st)
        return st;
    concat_state *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    const occ_tensor *x0 = occ_ops_in(p->m, p->n, 0);
    s->n_in = p->n->n_inputs;
    s->outer = 1;
    s->inner = (int64_t)occ_ops_esize(x0);
    for (int d = 0; d < axis; d++)
        s->outer *= x0->dims[d];
    for (int d = axis + 1; d < x0->ndim; d++)
        s->inner *= x0->dims[d];
    for (uint32_t i = 0; i < s->n_in; i++) {
        s->len[i] = occ_ops_in(p->m, p->n, i)->dims[axis] * s->inner;
        s->out_len += s->len[i];
    }
    int blocked = 0;
    for (uint32_t i = 0; p->in_md && i < s->n_in; i++)
        blocked |= p->in_md[i] != NULL;
    if (blocked) {
        dnnl_memory_desc_t mds[OCC_MAX_NODE_IO], dmd;
        for (uint32_t i = 0; i < s->n_in; i++) {
            const occ_tensor *x = occ_ops_in(p->m, p->n, i);
            if (p->in_md[i])
                mds[i] = *p->in_md[i];
            else if ((st = occ_dnnl_plain_md(&mds[i], 4, x->dims, e)))
                goto fail;
            if ((st = occ_dnnl_mem(&s->src[i], &mds[i], p->eng, NULL, e)))
                goto fail;
        }
        const occ_tensor *y = &p->m->tensors[p->n->outputs[0]];
        dnnl_dims_t dd = {y->dims[0], y->dims[1], y->dims[2], y->dims[3]};
        if ((st = occ_dnnl_check(
                 dnnl_memory_desc_init_by_tag(&dmd, 4, dd, dnnl_f32, dnnl_format_tag_any),
                 "concat", e)))
            goto fail;
        dnnl_primitive_desc_t pd;
        dnnl_primitive_attr_t attr = NULL;
        if ((st = occ_dnnl_user_attr(&attr, e)))
            goto fail;
        st = occ_dnnl_check(dnnl_concat_primitive_desc_create(&pd, &dmd, (int)s->n_in, 1, mds,
                                                              attr, p->eng),
                            "concat", e);
        dnnl_primitive_attr_destroy(attr);
        if (st)
            goto fail;
        dnnl_status_t ds = dnnl_primitive_create(&s->prim, pd);
        const dnnl_memory_desc_t *q = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
        p->out_md = *q;
        p->out_blocked = !occ_dnnl_md_is_plain(q);
        if (!(st = occ_dnnl_check(ds, "concat", e)))
            st = occ_dnnl_scratch_init(&s->scratch, pd, p->eng, e);
        dnnl_primitive_desc_destroy(pd);
        if (st)
            goto fail;
        if ((st = occ_dnnl_mem(&s->dst, &p->out_md, p->eng, NULL, e)))
            goto fail;
    }
    *state = s;
    return OCC_OK;
fail:
    concat_destroy(s);
    return st;
}

static occ_status concat_run(void *state, const occ_op_exec *x, occ_error *e)
{
    concat_state *s = state;
    if (s->prim) {
        dnnl_exec_arg_t args[OCC_MAX_NODE_IO + 2];
        for (uint32_t i = 0; i < s->n_in; i++) {
            dnnl_memory_set_data_handle(s->src[i], (void *)x->in[i]);
            args[i].arg = DNNL_ARG_MULTIPLE_SRC + (int)i;
            args[i].memory = s->src[i];
        }
        dnnl_memory_set_data_handle(s->dst, x->out[0]);
        args[s->n_in].arg = DNNL_ARG_DST;
        args[s->n_in].memory = s->dst;
        return occ_dnnl_exec(s->prim, x->stream,
                             occ_dnnl_scratch_arg(&s->scratch, args, (int)s->n_in + 1), args, e);
    }
    for (int64_t o = 0; o < s->outer; o++) {
        uint8_t *dst = (uint8_t *)x->out[0] + o * s->out_len;
        for (uint32_t i = 0; i < s->n_in; i++) {
            memcpy(dst, (const uint8_t *)x->in[i] + o * s->len[i], (size_t)s->len[i]);
            dst += s->len[i];
        }
    }
    return OCC_OK;
}

const occ_op_vtable occ_op_concat = {
    .op = "Concat",
    .min_in = 1,
    .max_in = OCC_MAX_NODE_IO,
    .n_out = 1,
    .flags = OCC_OPF_EMPTY, /* all inputs empty: an empty output, never run */
    .n_in_types = 1,
    .in_types = {OCC_DTM_ALL},
    .infer = concat_infer,
    .flops = concat_flops,
    .layout = concat_layout,
    .prepare = concat_prepare,
    .run = concat_run,
    .destroy = concat_destroy,
};
