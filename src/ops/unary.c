/* Element-wise float functions of one tensor: the activations (Relu, LeakyRelu,
 * Clip, Sigmoid, Tanh, HardSigmoid, HardSwish, Elu, Selu, Celu, Softplus,
 * Softsign, ThresholdedRelu, Mish, Gelu, Shrink) and the math functions (Sqrt,
 * Exp, Log, Erf, Reciprocal, Neg, Abs, Floor, Ceil, Round, Sign, the
 * trigonometric and hyperbolic ones). Plain C loops the compiler vectorises:
 * one pass over memory, nothing a oneDNN eltwise primitive would do faster
 * for these sizes, and it keeps their exact ONNX formulas in one place.
 * Those with f(0) = 0 also run directly on blocked oneDNN layouts (the zero
 * padding stays zero). Every kind also takes float64, computed in double
 * (unary_f64: libm's double functions, a path beside the float32 loops).
 * Neg, Abs, Sign and Clip also take integers (signed ones; Abs, Sign and
 * Clip unsigned ones too): Neg and Abs wrap as two's
 * complement (-INT_MIN = INT_MIN, as numpy), Clip compares with its float
 * bounds. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"
#include "ops/par.h"
#include "ops/vecmath.h"

enum {
    U_RELU, U_LEAKY, U_CLIP, U_SIGMOID, U_TANH, U_HSIGMOID, U_HSWISH,
    U_ELU, U_SELU, U_CELU, U_SOFTPLUS, U_SOFTSIGN, U_THRELU, U_MISH, U_GELU, U_SHRINK,
    U_SQRT, U_EXP, U_LOG, U_ERF, U_RECIP, U_NEG, U_ABS, U_FLOOR, U_CEIL, U_ROUND, U_SIGN,
    U_SIN, U_COS, U_TAN, U_ASIN, U_ACOS, U_ATAN, U_SINH, U_COSH, U_ASINH, U_ACOSH, U_ATANH,
    U_COUNT
};
static const char *const unary_names[U_COUNT] = {
    "Relu", "LeakyRelu", "Clip", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish",
    "Elu", "Selu", "Celu", "Softplus", "Softsign", "ThresholdedRelu", "Mish", "Gelu", "Shrink",
    "Sqrt", "Exp", "Log", "Erf", "Reciprocal", "Neg", "Abs", "Floor", "Ceil", "Round", "Sign",
    "Sin", "Cos", "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh",
};

typedef struct unary_state {
    int kind;
    uint32_t dtype;
    float a, b;
    size_t count;
} unary_state;

static int unary_kind(const char *op)
{
    for (int i = 0; i < U_COUNT; i++)
        if (strcmp(op, unary_names[i]) == 0)
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
    case U_ELU:
    case U_CELU:
    case U_THRELU:
        st = occ_ops_attr_float(n, "alpha", 1.0f, a, e);
        break;
    case U_SELU:
        if ((st = occ_ops_attr_float(n, "alpha", 1.67326319217681884765625f, a, e)))
            return st;
        st = occ_ops_attr_float(n, "gamma", 1.05070102214813232421875f, b, e);
        break;
    case U_SHRINK:
        if ((st = occ_ops_attr_float(n, "bias", 0.0f, a, e)))
            return st;
        st = occ_ops_attr_float(n, "lambd", 0.5f, b, e);
        break;
    case U_GELU: {
        const char *approx;
        if ((st = occ_ops_attr_str(n, "approximate", "none", &approx, e)))
            return st;
        if (strcmp(approx, "none") && strcmp(approx, "tanh"))
            return occ_fail(e, OCC_ERR_INVALID, "Gelu approximate '%s' (none or tanh)", approx);
        *a = strcmp(approx, "tanh") == 0;
        break;
    }
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
    if (unary_params(n, kind, &a, &b, NULL) || occ_ops_dtype(occ_ops_in(m, n, 0)) != OCC_DTYPE_FLOAT)
        return 0;
    switch (kind) {
    case U_RELU:
    case U_LEAKY:
    case U_TANH:
    case U_HSWISH:
    case U_ELU:
    case U_SELU:
    case U_CELU:
    case U_SOFTSIGN:
    case U_MISH:
    case U_GELU:
    case U_NEG:
    case U_ABS:
    case U_SQRT:
    case U_SIN:
    case U_TAN:
    case U_ASIN:
    case U_ATAN:
    case U_SINH:
    case U_ASINH:
    case U_ATANH:
    case U_FLOOR:
    case U_CEIL:
    case U_ROUND:
    case U_SIGN:
    case U_ERF:
        return 1;
    case U_THRELU:
        return a >= 0.0f;
    case U_SHRINK:
        return b >= 0.0f; /* |0| <= lambd gives 0 */
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
    s->dtype = occ_ops_dtype(x);
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

/* Round half to even, as ONNX Round (rintf under the default rounding mode). */
static float round_even(float x)
{
    return rintf(x);
}

/* erf as x P(x^2) / Q(x^2) on [-4, 4] (Eigen's fast float erf; outside,
 * erf is +-1 in float): branch-free, so the loop vectorizes - glibc's erff
 * is a scalar call (BERT's and ViT's GELU Erf took 90-150 ms). Measured
 * over [-6, 6] in steps of 1e-5: max |error| 4.2e-7 (relative 4.2e-7),
 * erff's 4.9e-8. */
static inline float fast_erf(float v)
{
    const float x = fminf(fmaxf(v, -4.0f), 4.0f), x2 = x * x;
    float p = -2.72614225801306e-10f;
    p = p * x2 + 2.77068142495902e-08f;
    p = p * x2 - 2.10102402082508e-06f;
    p = p * x2 - 5.69250639462346e-05f;
    p = p * x2 - 7.34990630326855e-04f;
    p = p * x2 - 2.95459980854025e-03f;
    p = p * x2 - 1.60960333262415e-02f;
    float q = -1.45660718464996e-05f;
    q = q * x2 - 2.13374055278905e-04f;
    q = q * x2 - 1.68282697438203e-03f;
    q = q * x2 - 7.37332916720468e-03f;
    q = q * x2 - 1.42647390514189e-02f;
    return x * p / q;
}

/* The kinds added for ONNX conformance: one loop each, written for accuracy
 * (expm1/log1p near 0) rather than speed. */
static void unary_more(int kind, const float *restrict in, float *restrict out, long n, float a,
                       float b)
{
#define LOOP(EXPR)                                                                            do {                                                                                          _Pragma("omp parallel for if (n > PAR_MIN) schedule(static)")                            for (long i = 0; i < n; i++) {                                                                const float v = in[i];                                                                    out[i] = (EXPR);                                                                      }                                                                                     } while (0)
    switch (kind) {
    case U_ELU: LOOP(v >= 0.0f ? v : a * expm1f(v)); break;
    case U_SELU: LOOP(v > 0.0f ? b * v : b * a * expm1f(v)); break;
    case U_CELU: LOOP(fmaxf(0.0f, v) + fminf(0.0f, a * expm1f(v / a))); break;
    case U_SOFTPLUS: LOOP(v > 0.0f ? v + log1pf(expf(-v)) : log1pf(expf(v))); break;
    case U_SOFTSIGN: LOOP(v / (1.0f + fabsf(v))); break;
    case U_THRELU: LOOP(v > a ? v : 0.0f); break;
    case U_MISH: LOOP(v * tanhf(v > 0.0f ? v + log1pf(expf(-v)) : log1pf(expf(v)))); break;
    case U_GELU:
        if (a != 0.0f)
            LOOP(0.5f * v *
                 (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v))));
        else
            LOOP(0.5f * v * (1.0f + fast_erf(v * 0.7071067811865476f)));
        break;
    case U_SHRINK: LOOP(v < -b ? v + a : (v > b ? v - a : 0.0f)); break;
    case U_SQRT: LOOP(sqrtf(v)); break;
    case U_EXP: LOOP(expf(v)); break;
    case U_LOG: LOOP(logf(v)); break;
    case U_ERF: LOOP(fast_erf(v)); break;
    case U_RECIP: LOOP(1.0f / v); break;
    case U_NEG: LOOP(-v); break;
    case U_ABS: LOOP(fabsf(v)); break;
    case U_FLOOR: LOOP(floorf(v)); break;
    case U_CEIL: LOOP(ceilf(v)); break;
    case U_ROUND: LOOP(round_even(v)); break;
    case U_SIGN: LOOP(v > 0.0f ? 1.0f : (v < 0.0f ? -1.0f : v)); break;
    case U_SIN: LOOP(sinf(v)); break;
    case U_COS: LOOP(cosf(v)); break;
    case U_TAN: LOOP(tanf(v)); break;
    case U_ASIN: LOOP(asinf(v)); break;
    case U_ACOS: LOOP(acosf(v)); break;
    case U_ATAN: LOOP(atanf(v)); break;
    case U_SINH: LOOP(sinhf(v)); break;
    case U_COSH: LOOP(coshf(v)); break;
    case U_ASINH: LOOP(asinhf(v)); break;
    case U_ACOSH: LOOP(acoshf(v)); break;
    case U_ATANH: LOOP(atanhf(v)); break;
    default: break;
    }
#undef LOOP
}

/* Every kind in double, the ONNX formulas of the float32 loops (libm's
 * double functions, erf included). */
static double unary_f64(int kind, double v, double a, double b)
{
    switch (kind) {
    case U_RELU: return v > 0.0 ? v : 0.0;
    case U_LEAKY: return v >= 0.0 ? v : a * v;
    case U_SIGMOID: return 1.0 / (1.0 + exp(-v));
    case U_TANH: return tanh(v);
    case U_HSIGMOID: return fmin(1.0, fmax(0.0, a * v + b));
    case U_HSWISH: return v * fmin(1.0, fmax(0.0, v / 6.0 + 0.5));
    case U_ELU: return v >= 0.0 ? v : a * expm1(v);
    case U_SELU: return v > 0.0 ? b * v : b * a * expm1(v);
    case U_CELU: return fmax(0.0, v) + fmin(0.0, a * expm1(v / a));
    case U_SOFTPLUS: return v > 0.0 ? v + log1p(exp(-v)) : log1p(exp(v));
    case U_SOFTSIGN: return v / (1.0 + fabs(v));
    case U_THRELU: return v > a ? v : 0.0;
    case U_MISH: return v * tanh(v > 0.0 ? v + log1p(exp(-v)) : log1p(exp(v)));
    case U_GELU:
        return a != 0.0 ? 0.5 * v * (1.0 + tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)))
                        : 0.5 * v * (1.0 + erf(v * 0.7071067811865476));
    case U_SHRINK: return v < -b ? v + a : (v > b ? v - a : 0.0);
    case U_SQRT: return sqrt(v);
    case U_EXP: return exp(v);
    case U_LOG: return log(v);
    case U_ERF: return erf(v);
    case U_RECIP: return 1.0 / v;
    case U_NEG: return -v;
    case U_ABS: return fabs(v);
    case U_FLOOR: return floor(v);
    case U_CEIL: return ceil(v);
    case U_ROUND: return rint(v); /* half to even */
    case U_SIGN: return v > 0.0 ? 1.0 : v < 0.0 ? -1.0 : v;
    case U_SIN: return sin(v);
    case U_COS: return cos(v);
    case U_TAN: return tan(v);
    case U_ASIN: return asin(v);
    case U_ACOS: return acos(v);
    case U_ATAN: return atan(v);
    case U_SINH: return sinh(v);
    case U_COSH: return cosh(v);
    case U_ASINH: return asinh(v);
    case U_ACOSH: return acosh(v);
    case U_ATANH: return atanh(v);
    default: return v < a ? a : v > b ? b : v; /* U_CLIP */
    }
}

/* float64 (every kind, in double) and unsigned Neg, Abs, Sign, Clip (through
 * double: unsigned values only meet Clip's bounds there, Abs is the value). */
static occ_status unary_run_wide(const unary_state *s, const occ_op_exec *x, occ_error *e)
{
    const int is_u = occ_dtype_is_unsigned(s->dtype);
    for (size_t i = 0; i < s->count; i++) {
        const int64_t k = (int64_t)i;
        if (is_u && s->kind != U_CLIP) {
            int64_t v = occ_ops_load_i64(s->dtype, x->in[0], k);
            occ_ops_store_i64(s->dtype, x->out[0], k, s->kind == U_SIGN ? v != 0 : v);
            continue;
        }
        double v = occ_ops_load_f64(s->dtype, x->in[0], k);
        if (!is_u) {
            ((double *)x->out[0])[i] = unary_f64(s->kind, v, s->a, s->b);
            continue;
        }
        if (s->kind != U_CLIP)
            return occ_fail(e, OCC_ERR_INTERNAL, "%s has no unsigned kernel", unary_names[s->kind]);
        if (v < s->a)
            occ_ops_store_f64(s->dtype, x->out[0], k, ceil(s->a));
        else if (v > s->b)
            occ_ops_store_f64(s->dtype, x->out[0], k, floor(s->b));
        else /* in range: the bits as they are (uint64 is not exact in double) */
            occ_ops_store_i64(s->dtype, x->out[0], k, occ_ops_load_i64(s->dtype, x->in[0], k));
    }
    return OCC_OK;
}

/* Integer Neg, Abs, Sign, Clip (the only kinds whose vtables take integers). */
static occ_status unary_run_int(const unary_state *s, const occ_op_exec *x, occ_error *e)
{
    if (s->dtype == OCC_DTYPE_DOUBLE || s->dtype == OCC_DTYPE_UINT64 ||
        s->dtype == OCC_DTYPE_UINT32 || s->dtype == OCC_DTYPE_UINT16)
        return unary_run_wide(s, x, e);
    for (size_t i = 0; i < s->count; i++) {
        int64_t v = occ_ops_load_i64(s->dtype, x->in[0], (int64_t)i);
        switch (s->kind) {
        case U_NEG: v = (int64_t)(0 - (uint64_t)v); break;
        case U_ABS: v = v < 0 ? (int64_t)(0 - (uint64_t)v) : v; break;
        case U_SIGN: v = (v > 0) - (v < 0); break;
        case U_CLIP:
            if ((double)v < s->a)
                v = (int64_t)ceil(s->a);
            if ((double)v > s->b)
                v = (int64_t)floor(s->b);
            break;
        default:
            return occ_fail(e, OCC_ERR_INTERNAL, "%s has no integer kernel", unary_names[s->kind]);
        }
        occ_ops_store_i64(s->dtype, x->out[0], (int64_t)i, v);
    }
    return OCC_OK;
}

enum { ERF_BLK = 8192 };

typedef struct erf_job {
    const float *in;
    float *out;
    long n;
    int erf; /* else GELU */
} erf_job;

static void erf_blocks(void *ctx, int64_t k0, int64_t k1)
{
    const erf_job *j = ctx;
    for (int64_t k = k0; k < k1; k++) {
        const long i0 = (long)k * ERF_BLK, c = j->n - i0 < ERF_BLK ? j->n - i0 : ERF_BLK;
        if (j->erf)
            occ_vec_erf(j->in + i0, j->out + i0, c);
        else
            occ_vec_gelu(j->in + i0, j->out + i0, c);
    }
}

static occ_status unary_run(void *state, const occ_op_exec *x, occ_error *e)
{
    const unary_state *s = state;
    if (s->dtype != OCC_DTYPE_FLOAT)
        return unary_run_int(s, x, e);
    const float *restrict in = x->in[0];
    float *restrict out = x->out[0];
    const long n = (long)s->count;
    const float a = s->a, b = s->b;
    if (s->kind == U_ERF || (s->kind == U_GELU && a == 0.0f)) {
        /* AVX2 when the CPU has it (vecmath.c): BERT's 12 GELUs over
         * [128, 3072] took 52 ms as the scalar loop at -O2 */
        /* blocks shared by par.h's pool (no wait for a descheduled thread) */
        erf_job j = {.in = in, .out = out, .n = n, .erf = s->kind == U_ERF};
        const long nb = (n + ERF_BLK - 1) / ERF_BLK;
        occ_par_for(nb, n > PAR_MIN ? 1 : nb, erf_blocks, &j);
        return OCC_OK;
    }
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
        if (s->kind < 0 || s->kind >= U_COUNT)
            return occ_fail(e, OCC_ERR_INTERNAL, "bad unary kind");
        unary_more(s->kind, in, out, n, a, b);
        break;
    }
    return OCC_OK;
}

static void unary_destroy(void *s)
{
    free(s);
}

#define UNARY_T(var, name, TYPES)                                                         \
    const occ_op_vtable var = {.op = name,                                                \
                               .min_in = 1,                                               \
                               .max_in = 3,                                               \
                               .n_out = 1,                                                \
                               .flags = OCC_OPF_EMPTY, /* empty X: empty Y, never run */  \
                               .n_in_types = 1,                                           \
                               .in_types = {TYPES},                                       \
                               .infer = unary_infer,                                      \
                               .flops = unary_flops,                                      \
                               .layout = unary_layout,                                    \
                               .prepare = unary_prepare,                                  \
                               .run = unary_run,                                          \
                               .destroy = unary_destroy}
#define UNARY(var, name) UNARY_T(var, name, OCC_DTM_FLOAT | OCC_DTM_F64)
#define SIGNED_INT (OCC_DTM(OCC_DTYPE_INT8) | OCC_DTM(OCC_DTYPE_INT16) | OCC_DTM_INDEX)

UNARY(occ_op_relu, "Relu");
UNARY(occ_op_leakyrelu, "LeakyRelu");
UNARY_T(occ_op_clip, "Clip", OCC_DTM_NUM);
UNARY(occ_op_sigmoid, "Sigmoid");
UNARY(occ_op_tanh, "Tanh");
UNARY(occ_op_hardsigmoid, "HardSigmoid");
UNARY(occ_op_hardswish, "HardSwish");
UNARY(occ_op_elu, "Elu");
UNARY(occ_op_selu, "Selu");
UNARY(occ_op_celu, "Celu");
UNARY(occ_op_softplus, "Softplus");
UNARY(occ_op_softsign, "Softsign");
UNARY(occ_op_thresholdedrelu, "ThresholdedRelu");
UNARY(occ_op_mish, "Mish");
UNARY(occ_op_gelu, "Gelu");
UNARY(occ_op_shrink, "Shrink");
UNARY(occ_op_sqrt, "Sqrt");
UNARY(occ_op_exp, "Exp");
UNARY(occ_op_log, "Log");
UNARY(occ_op_erf, "Erf");
UNARY(occ_op_reciprocal, "Reciprocal");
UNARY_T(occ_op_neg, "Neg", OCC_DTM_FLOAT | OCC_DTM_F64 | SIGNED_INT);
UNARY_T(occ_op_abs, "Abs", OCC_DTM_NUM);
UNARY(occ_op_floor, "Floor");
UNARY(occ_op_ceil, "Ceil");
UNARY(occ_op_round, "Round");
UNARY_T(occ_op_sign, "Sign", OCC_DTM_NUM);
UNARY(occ_op_sin, "Sin");
UNARY(occ_op_cos, "Cos");
UNARY(occ_op_tan, "Tan");
UNARY(occ_op_asin, "Asin");
UNARY(occ_op_acos, "Acos");
UNARY(occ_op_atan, "Atan");
UNARY(occ_op_sinh, "Sinh");
UNARY(occ_op_cosh, "Cosh");
UNARY(occ_op_asinh, "Asinh");
UNARY(occ_op_acosh, "Acosh");
UNARY(occ_op_atanh, "Atanh");
