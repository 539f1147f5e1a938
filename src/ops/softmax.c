/* Softmax, LogSoftmax and Hardmax. Opset-13 semantics: along one axis
 * (default -1). Older opsets coerce the input to 2-D [prod(dims[:axis]),
 * prod(dims[axis:])] and normalise each row: the packer marks those nodes
 * with the attribute coerce_2d = 1 (and writes their default axis, 1), so
 * that here it is only a longer "axis" with inner = 1. Softmax and
 * LogSoftmax run on oneDNN's softmax (v2) over the input seen as [outer, len,
 * inner], axis 1; Hardmax (no oneDNN primitive) and the fallback when oneDNN
 * declines are plain C: a few passes over each row, the inner stride lets
 * any axis run in place. Softmax along the last axis (attention's, over
 * [batch, heads, queries, keys]) runs on vecmath.c's AVX2 row with the rows
 * shared by par.h's pool (oneDNN's static split waits for a descheduled
 * thread).
 *
 * occ_div = c, occ_mask = 1 (attributes only the packer sets,
 * src/pack/epifold.c; Softmax over the last axis only): the row is
 * softmax(x / c + mask), mask a second input of len floats shared by every
 * row: attention's scale and padding mask, which were two passes over
 * [heads, queries, keys] before this one. Same roundings as Div and Add. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"
#include "ops/par.h"
#include "ops/vecmath.h"

enum { SM_SOFTMAX, SM_LOGSOFTMAX, SM_HARDMAX };

typedef struct softmax_state {
    int kind;
    int64_t outer, len, inner;
    float div;   /* occ_div (1: none) */
    int mask;    /* occ_mask: input 1 is a row of len floats added first */
    int rows;    /* last-axis Softmax on vecmath.c's rows (else oneDNN or the loops) */
    dnnl_primitive_t prim; /* Softmax, LogSoftmax */
    dnnl_memory_t src, dst;
} softmax_state;

static occ_status softmax_params(const occ_model *m, const occ_node *n, softmax_state *s,
                                 occ_error *e)
{
    const occ_tensor *x = occ_ops_in(m, n, 0);
    int64_t axis, coerce, mask;
    int ax;
    occ_status st;
    if ((st = occ_ops_attr_int(n, "axis", -1, &axis, e)) ||
        (st = occ_ops_attr_int(n, "coerce_2d", 0, &coerce, e)) ||
        (st = occ_ops_attr_int(n, "occ_mask", 0, &mask, e)) ||
        (st = occ_ops_attr_float(n, "occ_div", 1.0f, &s->div, e)))
        return st;
    if (coerce != 0 && coerce != 1)
        return occ_fail(e, OCC_ERR_INVALID, "coerce_2d must be 0 or 1");
    if (x->ndim == 0)
        return occ_fail(e, OCC_ERR_SHAPE, "%s of a scalar", n->op);
    if ((st = occ_ops_axis(axis, x->ndim, 0, &ax, e)))
        return st;
    s->kind = strcmp(n->op, "LogSoftmax") == 0 ? SM_LOGSOFTMAX
              : strcmp(n->op, "Hardmax") == 0  ? SM_HARDMAX
                                               : SM_SOFTMAX;
    s->outer = s->inner = 1;
    for (int i = 0; i < ax; i++)
        s->outer *= x->dims[i];
    for (int i = ax + 1; i < x->ndim; i++)
        s->inner *= x->dims[i];
    s->len = x->dims[ax];
    if (coerce) {
        s->len *= s->inner;
        s->inner = 1;
    }
    if (mask != 0 && mask != 1)
        return occ_fail(e, OCC_ERR_INVALID, "occ_mask must be 0 or 1");
    s->mask = (int)mask;
    if ((uint32_t)(1 + s->mask) != n->n_inputs)
        return occ_fail(e, OCC_ERR_INVALID, "%s has %u inputs (2 only with occ_mask = 1)",
                        n->op, n->n_inputs);
    if ((s->mask || s->div != 1.0f) &&
        (s->kind != SM_SOFTMAX || s->inner != 1 || !(s->div == s->div) || s->div == 0.0f))
        return occ_fail(e, OCC_ERR_INVALID, "occ_div/occ_mask need a Softmax over the last axis "
                        "and a non-zero divisor");
    if (s->mask) {
        const occ_tensor *mt = occ_ops_in(m, n, 1);
        if (occ_tensor_dtype(mt) != OCC_DTYPE_FLOAT ||
            occ_ops_count(mt->ndim, mt->dims) != s->len || mt->ndim < 1 ||
            mt->dims[mt->ndim - 1] != s->len)
            return occ_fail(e, OCC_ERR_SHAPE, "occ_mask: the mask must be %lld floats along "
                            "the last axis", (long long)s->len);
    }
    return OCC_OK;
}

static occ_status softmax_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    softmax_state s;
    occ_status st = softmax_params(m, n, &s, e);
    if (st)
        return st;
    const occ_tensor *x = occ_ops_in(m, n, 0);
    return occ_ops_set_out(m, n, 0, x->ndim, x->dims, e);
}

static uint64_t softmax_flops(const occ_model *m, const occ_node *n)
{
    const occ_tensor *x = occ_ops_in(m, n, 0);
    return 3u * (uint64_t)occ_ops_count(x->ndim, x->dims);
}

static void softmax_destroy(void *p)
{
    softmax_state *s = p;
    if (!s)
        return;
    if (s->prim)
        dnnl_primitive_destroy(s->prim);
    if (s->src)
        dnnl_memory_destroy(s->src);
    if (s->dst)
        dnnl_memory_destroy(s->dst);
    free(s);
}

static occ_status softmax_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    softmax_state *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    occ_status st = softmax_params(p->m, p->n, s, e);
    if (st) {
        free(s);
        return st;
    }
    s->rows = s->kind == SM_SOFTMAX && s->inner == 1 &&
              (occ_vec_fast() || s->mask || s->div != 1.0f);
    if (s->kind != SM_HARDMAX && !s->rows) {
        dnnl_memory_desc_t md;
        dnnl_softmax_v2_desc_t desc;
        dnnl_primitive_desc_t pd = NULL;
        int64_t d[3] = {s->outer, s->len, s->inner};
        if ((st = occ_dnnl_plain_md(&md, 3, d, e)))
            goto fail;
        /* oneDNN may decline a shape; the C loops below then do it */
        if (dnnl_softmax_v2_forward_desc_init(&desc, dnnl_forward_inference,
                                              s->kind == SM_LOGSOFTMAX ? dnnl_softmax_log
                                                                       : dnnl_softmax_accurate,
                                              &md, &md, 1) == dnnl_success &&
            dnnl_primitive_desc_create(&pd, &desc, NULL, p->eng, NULL) == dnnl_success) {
            dnnl_status_t ds = dnnl_primitive_create(&s->prim, pd);
            dnnl_primitive_desc_destroy(pd);
            if ((st = occ_dnnl_check(ds, "softmax", e)) ||
                (st = occ_dnnl_mem(&s->src, &md, p->eng, NULL, e)) ||
                (st = occ_dnnl_mem(&s->dst, &md, p->eng, NULL, e)))
                goto fail;
        }
    }
    *state = s;
    return OCC_OK;
fail:
    softmax_destroy(s);
    return st;
}

typedef struct sm_job {
    const float *in, *mask;
    float *out;
    int64_t len;
    float div;
} sm_job;

static void sm_rows(void *ctx, int64_t r0, int64_t r1)
{
    const sm_job *j = ctx;
    for (int64_t r = r0; r < r1; r++)
        if (j->mask || j->div != 1.0f)
            occ_vec_softmax_scaled(j->in + r * j->len, j->out + r * j->len, j->len, j->div,
                                   j->mask);
        else
            occ_vec_softmax(j->in + r * j->len, j->out + r * j->len, j->len);
}

static occ_status softmax_run(void *state, const occ_op_exec *x, occ_error *e)
{
    const softmax_state *s = state;
    if (s->prim) {
        const float *in = x->in[0];
        float *out = x->out[0];
        dnnl_memory_set_data_handle(s->src, (void *)in);
        dnnl_memory_set_data_handle(s->dst, out);
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_SRC, s->src}, {DNNL_ARG_DST, s->dst}};
        return occ_dnnl_exec(s->prim, x->stream, 2, args, e);
    }
    const int64_t len = s->len, inner = s->inner;
    const float *src = x->in[0]; /* typed once: works whatever pointer type exec has */
    float *dst = x->out[0];
    if (s->rows) {
        sm_job j = {.in = src, .out = dst, .len = len, .div = s->div,
                    .mask = s->mask ? (const float *)x->in[1] : NULL};
        occ_par_for(s->outer, s->outer * len > 65536 ? (8192 + len - 1) / len : s->outer,
                    sm_rows, &j);
        return OCC_OK;
    }
#pragma omp parallel for if (s->outer * len * inner > 65536) schedule(static)
    for (int64_t o = 0; o < s->outer; o++) {
        for (int64_t j = 0; j < inner; j++) {
            const float *in = src + o * len * inner + j;
            float *out = dst + o * len * inner + j;
            float mx = -INFINITY;
            int64_t arg = 0;
            for (int64_t i = 0; i < len; i++)
                if (in[i * inner] > mx) {
                    mx = in[i * inner];
                    arg = i;
                }
            if (s->kind == SM_HARDMAX) {
                /* 1 at the first maximum */
                for (int64_t i = 0; i < len; i++)
                    out[i * inner] = i == arg ? 1.0f : 0.0f;
                continue;
            }
            float sum = 0.0f;
            for (int64_t i = 0; i < len; i++) {
                float v = expf(in[i * inner] - mx);
                out[i * inner] = v;
                sum += v;
            }
            if (s->kind == SM_LOGSOFTMAX) {
                const float lse = mx + logf(sum);
                for (int64_t i = 0; i < len; i++)
                    out[i * inner] = in[i * inner] - lse;
                continue;
            }
            float inv = 1.0f / sum;
            for (int64_t i = 0; i < len; i++)
                out[i * inner] *= inv;
        }
    }
    return OCC_OK;
}


#define SOFTMAX(var, name)                                                                \
    const occ_op_vtable var = {.op = name,                                                \
                               .min_in = 1,                                               \
                               .max_in = 2, /* the mask of occ_mask */                    \
                               .n_out = 1,                                                \
                               .infer = softmax_infer,                                    \
                               .flops = softmax_flops,                                    \
                               .prepare = softmax_prepare,                                \
                               .run = softmax_run,                                        \
                               .destroy = softmax_destroy}

SOFTMAX(occ_op_softmax, "Softmax");
SOFTMAX(occ_op_logsoftmax, "LogSoftmax");
SOFTMAX(occ_op_hardmax, "Hardmax");
