/* Element-wise activations: Relu, LeakyRelu, Clip, Sigmoid, Tanh, HardSigmoid,
 * HardSwish. Plain C loops the compiler vectorises. Those with f(0) = 0 also
 * run directly on blocked oneDNN layouts (the zero padding stays zero). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"

enum { U_RELU, U_LEAKY, U_CLIP, U_SIGMOID, U_TANH, U_HSIGMOID, U_HSWISH };

typedef struct unary_state {
    int kind;
    float a, b;
    size_t count;
} unary_state;

static int unary_kind(const char *op)
{
    static const char *const names[] = {"Relu", "LeakyRelu", "Clip", "Sigmoid",
                                        "Tanh", "HardSigmoid", "HardSwish"};
    for (int i = 0; i < 7; i++)
        if (strcmp(op, names[i]) == 0)
            return i;
    return -1;
}

static occ_status unary_params(const occ_node *n, int kind, float *a, float *b, occ_error *e)
{
    occ_status st = OCC_OK;
    *a = 0.0f;
    *b = 0.0f;
    switch (kind) {
    case U_LEAKY:
        st = occ_ops_attr_float(n, "alpha", 0.01f, a, e);
        break;
    case U_CLIP:
        if ((st = occ_ops_attr_float(n, "min", -INFINITY, a, e)))
            return st;
        if ((st = occ_ops_attr_float(n, "max", INFINITY, b, e)))
            return st;
        if (isnan(*a) || isnan(*b) || *a > *b)
            return occ_fail(e, OCC_ERR_INVALID, "Clip min %g > max %g", (double)*a, (double)*b);
        break;
    case U_HSIGMOID:
        if ((st = occ_ops_attr_float(n, "alpha", 0.2f, a, e)))
            return st;
        st = occ_ops_attr_float(n, "beta", 0.5f, b, e);
        break;
    default:
        break;
    }
    return st;
}

static occ_status unary_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    float a, b;
    for (uint32_t i = 1; i < n->n_inputs; i++) {
        if (strcmp(n->op, "Clip") != 0)
            return occ_fail(e, OCC_ERR_INVALID, "%u inputs, expected 1", n->n_inputs);
        if (n->inputs[i] >= 0)
            return occ_fail(e, OCC_ERR_UNSUPPORTED,
                            "Clip min/max as inputs are not supported (fold into attributes)");
    }
    occ_status st = unary_params(n, unary_kind(n->op), &a, &b, e);
    if (st)
        return st;
    const occ_tensor *x = occ_ops_in(m, n, 0);
    return occ_ops_set_out(m, n, 0, x->ndim, x->dims, e);
}

static uint64_t unary_flops(const occ_model *m, const occ_node *n)
{
    const occ_tensor *x = occ_ops_in(m, n, 0);
    return x ? (uint64_t)occ_ops_count(x->ndim, x->dims) : 0;
}

static int unary_layout(const occ_model *m, const occ_node *n, const dnnl_memory_desc_t *const *md)
{
    float a, b;
    int kind = unary_kind(n->op);
    if (unary_params(n, kind, &a, &b, NULL))
        return 0;
    switch (kind) {
    case U_RELU:
    case U_LEAKY:
    case U_TANH:
    case U_HSWISH:
        return 1;
    case U_CLIP:
        return a <= 0.0f && b >= 0.0f;
    default:
        return 0;
    }
}

static occ_status unary_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    unary_state *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    s->kind = unary_kind(p->n->op);
    occ_status st = unary_params(p->n, s->kind, &s->a, &s->b, e);
    if (st) {
        free(s);
        return st;
    }
    const occ_tensor *x = occ_ops_in(p->m, p->n, 0);
    if (p->in_md && p->in_md[0]) {
        s->count = dnnl_memory_desc_get_size(p->in_md[0]) / 4;
        p->out_blocked = 1;
        p->out_md = *p->in_md[0];
    } else {
        s->count = (size_t)occ_ops_count(x->ndim, x->dims);
    }
    *state = s;
    return OCC_OK;
}

#define PAR_MIN 32768

static occ_status unary_run(void *state, const occ_op_exec *x, occ_error *e)
{
    const unary_state *s = state;
    const float *restrict in = x->in[0];
    float *restrict out = x->out[0];
    const long n = (long)s->count;
    const float a = s->a, b = s->b;
    switch (s->kind) {
    case U_RELU:
#pragma omp parallel for simd if (n > PAR_MIN) schedule(static)
        for (long i = 0; i < n; i++)
            out[i] = in[i] > 0.0f ? in[i] : 0.0f;
        break;
    case U_LEAKY:
#pragma omp parallel for simd if (n > PAR_MIN) schedule(static)
        for (long i = 0; i < n; i++)
            out[i] = in[i] >= 0.0f ? in[i] : a * in[i];
        break;
    case U_CLIP:
#pragma omp parallel for simd if (n > PAR_MIN) schedule(static)
        for (long i = 0; i < n; i++) {
            float v = in[i] < a ? a : in[i];
            out[i] = v > b ? b : v;
        }
        break;
    case U_SIGMOID:
#pragma omp parallel for if (n > PAR_MIN) schedule(static)
        for (long i = 0; i < n; i++)
            out[i] = 1.0f / (1.0f + expf(-in[i]));
        break;
    case U_TANH:
#pragma omp parallel for if (n > PAR_MIN) schedule(static)
        for (long i = 0; i < n; i++)
            out[i] = tanhf(in[i]);
        break;
    case U_HSIGMOID:
#pragma omp parallel for simd if (n > PAR_MIN) schedule(static)
        for (long i = 0; i < n; i++) {
            float v = a * in[i] + b;
            v = v < 0.0f ? 0.0f : v;
            out[i] = v > 1.0f ? 1.0f : v;
        }
        break;
    case U_HSWISH:
#pragma omp parallel for simd if (n > PAR_MIN) schedule(static)
        for (long i = 0; i < n; i++) {
            float v = in[i] * (1.0f / 6.0f) + 0.5f;
            v = v < 0.0f ? 0.0f : v;
            v = v > 1.0f ? 1.0f : v;
            out[i] = in[i] * v;
        }
        break;
    default:
        return occ_fail(e, OCC_ERR_INTERNAL, "bad unary kind");
    }
    return OCC_OK;
}

static void unary_destroy(void *s)
{
    free(s);
}

#define UNARY(var, name)                                                                  \
    const occ_op_vtable var = {.op = name,                                                \
                               .min_in = 1,                                               \
                               .max_in = 3,                                               \
                               .n_out = 1,                                                \
                               .infer = unary_infer,                                      \
                               .flops = unary_flops,                                      \
                               .layout = unary_layout,                                    \
                               .prepare = unary_prepare,                                  \
                               .run = unary_run,                                          \
                               .destroy = unary_destroy}

UNARY(occ_op_relu, "Relu");
UNARY(occ_op_leakyrelu, "LeakyRelu");
UNARY(occ_op_clip, "Clip");
UNARY(occ_op_sigmoid, "Sigmoid");
UNARY(occ_op_tanh, "Tanh");
UNARY(occ_op_hardsigmoid, "HardSigmoid");
UNARY(occ_op_hardswish, "HardSwish");
