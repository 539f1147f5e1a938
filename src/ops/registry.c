/* Operator registry: op_type -> vtable, plus the checks every op shares
 * (indices, arity, input shapes) so each op's infer only sees sane inputs. */
#include <stdio.h>
#include <string.h>

#include "ops/ops_internal.h"

/* im2col.c: made only by the packer (a 1-D Conv run as a GEMM) */
extern const occ_op_vtable occ_op_im2col;
/* gconv1d.c: made only by the packer (a grouped 1-D Conv) */
extern const occ_op_vtable occ_op_gconv1d;

static const occ_op_vtable *const occ_ops_table[] = {
    &occ_op_conv,        &occ_op_gemm,        &occ_op_matmul,
    &occ_op_relu,        &occ_op_leakyrelu,   &occ_op_clip,
    &occ_op_sigmoid,     &occ_op_tanh,        &occ_op_hardsigmoid,
    &occ_op_hardswish,   &occ_op_add,         &occ_op_sub,
    &occ_op_mul,         &occ_op_div,         &occ_op_maxpool,
    &occ_op_averagepool, &occ_op_globalaveragepool, &occ_op_lrn,
    &occ_op_concat,      &occ_op_flatten,     &occ_op_reshape,
    &occ_op_transpose,   &occ_op_squeeze,     &occ_op_unsqueeze,
    &occ_op_softmax,     &occ_op_pad,         &occ_op_resize,
    &occ_op_upsample,    &occ_op_reducemean,  &occ_op_batchnorm,
    &occ_op_cast,        &occ_op_gather,
    &occ_op_where,       &occ_op_equal,       &occ_op_less,
    &occ_op_greater,     &occ_op_lessorequal, &occ_op_greaterorequal,
    &occ_op_not,         &occ_op_and,         &occ_op_or,
    &occ_op_xor,         &occ_op_slice,       &occ_op_expand,
    &occ_op_tile,        &occ_op_split,       &occ_op_argmax,
    &occ_op_argmin,      &occ_op_topk,        &occ_op_mod,
    &occ_op_gatherelements, &occ_op_gathernd, &occ_op_scatternd,
    /* unary.c */
    &occ_op_elu, &occ_op_selu, &occ_op_celu, &occ_op_softplus, &occ_op_softsign,
    &occ_op_thresholdedrelu, &occ_op_mish, &occ_op_gelu, &occ_op_shrink, &occ_op_sqrt,
    &occ_op_exp, &occ_op_log, &occ_op_erf, &occ_op_reciprocal, &occ_op_neg, &occ_op_abs,
    &occ_op_floor, &occ_op_ceil, &occ_op_round, &occ_op_sign, &occ_op_sin, &occ_op_cos,
    &occ_op_tan, &occ_op_asin, &occ_op_acos, &occ_op_atan, &occ_op_sinh, &occ_op_cosh,
    &occ_op_asinh, &occ_op_acosh, &occ_op_atanh,
    /* binary.c */
    &occ_op_pow, &occ_op_prelu, &occ_op_max, &occ_op_min, &occ_op_sum, &occ_op_mean,
    /* reduce.c */
    &occ_op_reducesum, &occ_op_reducemax, &occ_op_reducemin, &occ_op_reduceprod,
    &occ_op_reducel1, &occ_op_reducel2, &occ_op_reducelogsum, &occ_op_reducelogsumexp,
    &occ_op_reducesumsquare,
    /* softmax.c */
    &occ_op_logsoftmax, &occ_op_hardmax,
    &occ_op_convtranspose, &occ_op_depthtospace, &occ_op_spacetodepth,
    &occ_op_rnn, &occ_op_gru, &occ_op_lstm, &occ_op_identity, &occ_op_einsum,
    /* pool.c */
    &occ_op_lppool, &occ_op_globalmaxpool,
    /* norm.c */
    &occ_op_layernorm, &occ_op_instancenorm, &occ_op_lpnorm, &occ_op_mvn,
    &occ_op_groupnorm,
    &occ_op_trilu, &occ_op_isinf, &occ_op_isnan, &occ_op_eyelike, &occ_op_onehot, &occ_op_scatterelements, &occ_op_scatter, &occ_op_bitshift, &occ_op_det, &occ_op_reversesequence,
    &occ_op_dynamicquantizelinear, &occ_op_matmulinteger, &occ_op_qlinearmatmul,
    &occ_op_hannwindow, &occ_op_hammingwindow, &occ_op_blackmanwindow,
    &occ_op_convinteger, &occ_op_qlinearconv, &occ_op_cumsum, &occ_op_gridsample,
    &occ_op_quantizelinear, &occ_op_dequantizelinear, &occ_op_im2col, &occ_op_gconv1d,
    /* signal processing and detection: dft.c, stft.c, melweight.c, maxunpool.c, roialign.c */
    &occ_op_dft, &occ_op_stft, &occ_op_melweightmatrix, &occ_op_maxunpool, &occ_op_roialign,
};

const occ_op_vtable *occ_op_find(const char *op)
{
    if (!op)
        return NULL;
    for (size_t i = 0; i < sizeof occ_ops_table / sizeof occ_ops_table[0]; i++)
        if (strcmp(occ_ops_table[i]->op, op) == 0)
            return occ_ops_table[i];
    return NULL;
}

int occ_op_supported(const char *op)
{
    return occ_op_find(op) != NULL;
}

static occ_status check_tensor(const occ_tensor *t, const char *what, uint32_t i, occ_error *e)
{
    if (t->ndim < 0 || t->ndim > OCC_MAX_DIMS)
        return occ_fail(e, OCC_ERR_SHAPE, "%s %u has rank %d (0..%d allowed)", what, i, t->ndim,
                        OCC_MAX_DIMS);
    for (int d = 0; d < t->ndim; d++)
        if (t->dims[d] < 0)
            return occ_fail(e, OCC_ERR_SHAPE, "%s %u has dimension %d = %lld (must be >= 0)",
                            what, i, d, (long long)t->dims[d]);
    if (!occ_ops_shape_ok(t->ndim, t->dims))
        return occ_fail(e, OCC_ERR_SHAPE, "%s %u is too large", what, i);
    return OCC_OK;
}

static int is_empty(const occ_tensor *t)
{
    for (int d = 0; d < t->ndim; d++)
        if (t->dims[d] == 0)
            return 1;
    return 0;
}

/* Ops without OCC_OPF_EMPTY never see an empty tensor (their kernels divide by
 * dims and index from them): one line naming the tensor instead. */
static occ_status check_empty(const occ_tensor *t, const char *what, uint32_t i,
                              const occ_op_vtable *v, occ_error *e)
{
    if ((v->flags & OCC_OPF_EMPTY) || !is_empty(t))
        return OCC_OK;
    char sh[16 * OCC_MAX_DIMS + 4];
    size_t at = 0;
    sh[at++] = '[';
    for (int d = 0; d < t->ndim && at < sizeof sh - 24; d++)
        at += (size_t)snprintf(sh + at, sizeof sh - at, "%s%lld", d ? "," : "",
                               (long long)t->dims[d]);
    snprintf(sh + at, sizeof sh - at, "]");
    return occ_fail(e, OCC_ERR_SHAPE, "%s %u ('%s') is empty, shape %s, which %s does not "
                    "take (zero-size tensors: data movement ops only)", what, i,
                    t->name ? t->name : "?", sh, v->op);
}

static occ_status empty_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    (void)p;
    (void)e;
    *state = NULL;
    return OCC_OK;
}

static occ_status empty_run(void *state, const occ_op_exec *x, occ_error *e)
{
    (void)state;
    (void)x;
    (void)e;
    return OCC_OK;
}

static void empty_destroy(void *state)
{
    (void)state;
}

/* Shapes come from the node's own op (infer is never called through this one). */
static const occ_op_vtable occ_op_empty = {
    .op = "(empty)",
    .flags = OCC_OPF_EMPTY,
    .prepare = empty_prepare,
    .run = empty_run,
    .destroy = empty_destroy,
};

const occ_op_vtable *occ_op_node_vtable(const occ_model *m, const occ_node *n)
{
    const occ_op_vtable *v = occ_op_find(n ? n->op : NULL);
    if (!v || !m || !n->n_outputs || !n->outputs)
        return v;
    for (uint32_t i = 0; i < n->n_outputs; i++) {
        int32_t t = n->outputs[i];
        if (t < 0 || (uint32_t)t >= m->n_tensors || !is_empty(&m->tensors[t]))
            return v;
    }
    return &occ_op_empty;
}

occ_status occ_op_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    if (!m || !n)
        return occ_fail(e, OCC_ERR_INVALID, "no model or node");
    const occ_op_vtable *v = occ_op_find(n->op);
    if (!v)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "operator %s is not supported",
                        n->op ? n->op : "(null)");
    if (n->n_inputs < v->min_in || n->n_inputs > v->max_in)
        return occ_fail(e, OCC_ERR_INVALID, "%u inputs, expected %u..%u", n->n_inputs, v->min_in,
                        v->max_in);
    uint32_t min_out = v->min_out ? v->min_out : v->n_out;
    if (n->n_outputs < min_out || n->n_outputs > v->n_out)
        return occ_fail(e, OCC_ERR_INVALID, "%u outputs, expected %u..%u", n->n_outputs, min_out,
                        v->n_out);
    if ((n->n_inputs && !n->inputs) || !n->outputs)
        return occ_fail(e, OCC_ERR_INVALID, "missing input or output list");
    if (n->n_attrs && !n->attrs)
        return occ_fail(e, OCC_ERR_INVALID, "missing attribute list");
    for (uint32_t i = 0; i < n->n_attrs; i++)
        if (!n->attrs[i].name)
            return occ_fail(e, OCC_ERR_INVALID, "attribute %u has no name", i);
    for (uint32_t i = 0; i < n->n_inputs; i++) {
        int32_t t = n->inputs[i];
        if (t == -1 && i >= v->min_in)
            continue; /* absent optional input */
        if (t < 0 || (uint32_t)t >= m->n_tensors)
            return occ_fail(e, OCC_ERR_INVALID, "input %u refers to tensor %d (of %u)", i, t,
                            m->n_tensors);
        occ_status st = check_tensor(&m->tensors[t], "input", i, e);
        if (!st)
            st = check_empty(&m->tensors[t], "input", i, v, e);
        if (st)
            return st;
    }
    for (uint32_t i = 0; i < n->n_outputs; i++) {
        int32_t t = n->outputs[i];
        if (t < 0 || (uint32_t)t >= m->n_tensors)
            return occ_fail(e, OCC_ERR_INVALID, "output %u refers to tensor %d (of %u)", i, t,
                            m->n_tensors);
        if (m->tensors[t].kind == OCC_TENSOR_WEIGHT || m->tensors[t].kind == OCC_TENSOR_INPUT)
            return occ_fail(e, OCC_ERR_INVALID, "output %u is a weight or graph input", i);
        for (uint32_t j = 0; j < n->n_inputs; j++)
            if (n->inputs[j] == t)
                return occ_fail(e, OCC_ERR_INVALID, "output %u is also input %u", i, j);
    }
    for (uint32_t i = 0; i < n->n_inputs; i++) {
        const occ_tensor *t = occ_ops_in(m, n, i);
        if (!t)
            continue;
        uint32_t dt = occ_tensor_dtype(t);
        uint32_t mask = !v->n_in_types ? OCC_DTM_FLOAT
                        : v->in_types[i < v->n_in_types ? i : v->n_in_types - 1];
        if (!occ_dtype_size(dt))
            return occ_fail(e, OCC_ERR_INVALID, "input %u ('%s') has unknown dtype %u", i,
                            t->name ? t->name : "?", dt);
        if (!(mask & OCC_DTM(dt))) {
            /* name what it takes when that is a short list: "(float32 and float64 only)" */
            char takes[96] = "";
            int nt = 0;
            for (uint32_t d = 1; d < 32; d++)
                nt += (mask >> d) & 1u;
            for (uint32_t d = 1, k = 0; nt <= 4 && d < 32; d++) {
                if (!((mask >> d) & 1u) || !occ_dtype_name(d))
                    continue;
                size_t l = strlen(takes);
                snprintf(takes + l, sizeof takes - l, "%s%s", k == 0 ? " (" : k + 1 == (uint32_t)nt ? " and " : ", ",
                         occ_dtype_name(d));
                if (++k == (uint32_t)nt) {
                    l = strlen(takes);
                    snprintf(takes + l, sizeof takes - l, " only)");
                }
            }
            return occ_fail(e, OCC_ERR_UNSUPPORTED, "input %u ('%s') is %s, which %s does not take%s",
                            i, t->name ? t->name : "?", occ_dtype_name(dt), v->op, takes);
        }
    }
    /* default output type: that of the first present input (float32 without) */
    uint32_t odt = OCC_DTYPE_FLOAT;
    for (uint32_t i = 0; i < n->n_inputs; i++)
        if (occ_ops_in(m, n, i)) {
            odt = occ_tensor_dtype(occ_ops_in(m, n, i));
            break;
        }
    for (uint32_t i = 0; i < n->n_outputs; i++)
        m->tensors[n->outputs[i]].dtype = odt;
    occ_status st = v->infer(m, n, e);
    if (st)
        return st;
    for (uint32_t i = 0; i < n->n_outputs; i++)
        if ((st = check_empty(&m->tensors[n->outputs[i]], "output", i, v, e)))
            return st;
    /* sizes follow the final dtypes (an op may have set the type after the shape) */
    for (uint32_t i = 0; i < n->n_outputs; i++) {
        occ_tensor *t = &m->tensors[n->outputs[i]];
        t->size = (uint64_t)occ_ops_count(t->ndim, t->dims) * occ_dtype_size(occ_tensor_dtype(t));
    }
    return OCC_OK;
}

uint64_t occ_op_flops(const occ_model *m, const occ_node *n)
{
    const occ_op_vtable *v = occ_op_find(n ? n->op : NULL);
    if (!v || !m)
        return 0;
    if (v->flops)
        return v->flops(m, n);
    /* default: one op per output element */
    uint64_t f = 0;
    for (uint32_t i = 0; i < n->n_outputs; i++)
        if (n->outputs && n->outputs[i] >= 0 && (uint32_t)n->outputs[i] < m->n_tensors)
            f += (uint64_t)occ_ops_count(m->tensors[n->outputs[i]].ndim,
                                         m->tensors[n->outputs[i]].dims);
    return f;
}
