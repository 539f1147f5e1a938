/* The Reduce family (Mean, Sum, Max, Min, Prod, L1, L2, LogSum, LogSumExp,
 * SumSquare) over the axes in attribute "axes" (all when absent; the packer
 * folds a constant axes input into it), keepdims, noop_with_empty_axes.
 * Plain C: one pass over the input accumulating into the output (two for
 * LogSumExp, whose running maximum keeps exp() from overflowing). float64
 * takes a plain loop in double (reduce_run_f64); float32's path is unchanged. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"

enum { R_MEAN, R_SUM, R_MAX, R_MIN, R_PROD, R_L1, R_L2, R_LOGSUM, R_LOGSUMEXP, R_SUMSQUARE, R_N };
static const char *const reduce_names[R_N] = {
    "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
    "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare",
};

static int reduce_kind(const char *op)
{
    for (int k = 0; k < R_N; k++)
        if (strcmp(op, reduce_names[k]) == 0)
            return k;
    return R_MEAN;
}

typedef struct reduce_state {
    int kind;
    int f64;                       /* float64 data */
    int noop;                      /* nothing reduced: the output is the input */
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
    s->kind = reduce_kind(n->op);
    s->noop = !c && noop;
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
    s->f64 = occ_ops_dtype(occ_ops_in(p->m, p->n, 0)) == OCC_DTYPE_DOUBLE;
    *state = s;
    return OCC_OK;
}

/* Accumulation of one kind: SUM (with a pre-transform), MAX, MIN, PROD. */
enum { ACC_SUM, ACC_MAX, ACC_MIN, ACC_PROD };
enum { PRE_NONE, PRE_ABS, PRE_SQUARE, PRE_EXP_SHIFTED };

/* out[o(i)] = out[o(i)] acc pre(in[i]) for every input element i; shift is the
 * per-output maximum for PRE_EXP_SHIFTED. */
static void reduce_pass(const reduce_state *s, const float *in, float *out, const float *shift,
                        int acc, int pre)
{
    const int64_t inner = s->idims[s->nd - 1], os = s->ostride[s->nd - 1];
    const int64_t rows = s->icount / inner;
    for (int64_t r = 0; r < rows; r++) {
        int64_t rem = r, off = 0;
        for (int d = s->nd - 2; d >= 0; d--) {
            off += (rem % s->idims[d]) * s->ostride[d];
            rem /= s->idims[d];
        }
        const float *row = in + r * inner;
        if (acc == ACC_SUM && pre == PRE_NONE && os == 0) {
            /* the common case (ReduceMean over the last axis): vectorised */
            float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
            for (int64_t i = 0; i < inner; i++)
                sum += row[i];
            out[off] += sum;
            continue;
        }
        if (acc == ACC_SUM && pre == PRE_NONE && os == 1) {
            /* kept last axis (a reduction over a middle one): a vector add */
            float *o = out + off;
#pragma omp simd
            for (int64_t i = 0; i < inner; i++)
                o[i] += row[i];
            continue;
        }
        for (int64_t i = 0; i < inner; i++) {
            const int64_t o = off + i * os;
            float v = row[i];
            switch (pre) {
            case PRE_ABS: v = fabsf(v); break;
            case PRE_SQUARE: v = v * v; break;
            case PRE_EXP_SHIFTED: v = isinf(shift[o]) ? expf(v) : expf(v - shift[o]); break;
            default: break;
            }
            switch (acc) {
            case ACC_MAX: out[o] = v > out[o] || v != v ? v : out[o]; break;
            case ACC_MIN: out[o] = v < out[o] || v != v ? v : out[o]; break;
            case ACC_PROD: out[o] *= v; break;
            default: out[o] += v; break;
            }
        }
    }
}

static void reduce_fill(float *out, int64_t n, float v)
{
    for (int64_t i = 0; i < n; i++)
        out[i] = v;
}

/* Output offset of input element k. */
static int64_t reduce_off(const reduce_state *s, int64_t k)
{
    int64_t off = 0;
    for (int d = s->nd - 1; d >= 0; d--) {
        off += (k % s->idims[d]) * s->ostride[d];
        k /= s->idims[d];
    }
    return off;
}

/* float64: every kind in double, element by element. */
static occ_status reduce_run_f64(const reduce_state *s, const double *in, double *out,
                                 occ_error *e)
{
    const int64_t n = s->ocount;
    if (s->noop) {
        memcpy(out, in, (size_t)s->icount * sizeof(double));
        return OCC_OK;
    }
    double init = s->kind == R_MAX ? -INFINITY : s->kind == R_MIN ? INFINITY
                  : s->kind == R_PROD ? 1.0 : s->kind == R_LOGSUMEXP ? -INFINITY : 0.0;
    for (int64_t i = 0; i < n; i++)
        out[i] = init;
    double *sum = NULL;
    if (s->kind == R_LOGSUMEXP) { /* max first (into out), then the shifted sums */
        sum = occ_ops_alloc((uint64_t)n * sizeof(double));
        if (!sum)
            return occ_fail(e, OCC_ERR_NOMEM, "out of memory for ReduceLogSumExp");
        for (int64_t i = 0; i < n; i++)
            sum[i] = 0.0;
    }
    for (int64_t k = 0; k < s->icount; k++) {
        const int64_t o = reduce_off(s, k);
        double v = in[k];
        switch (s->kind) {
        case R_MAX: case R_LOGSUMEXP: out[o] = v > out[o] || v != v ? v : out[o]; break;
        case R_MIN: out[o] = v < out[o] || v != v ? v : out[o]; break;
        case R_PROD: out[o] *= v; break;
        case R_L1: out[o] += fabs(v); break;
        case R_L2: case R_SUMSQUARE: out[o] += v * v; break;
        default: out[o] += v; break;
        }
    }
    if (sum) {
        for (int64_t k = 0; k < s->icount; k++) {
            const int64_t o = reduce_off(s, k);
            sum[o] += isinf(out[o]) ? exp(in[k]) : exp(in[k] - out[o]);
        }
        for (int64_t i = 0; i < n; i++)
            out[i] = isinf(out[i]) ? log(sum[i]) : out[i] + log(sum[i]);
        occ_ops_free(sum);
    }
    for (int64_t i = 0; i < n; i++) {
        if (s->kind == R_MEAN)
            out[i] *= (double)n / (double)s->icount;
        else if (s->kind == R_L2)
            out[i] = sqrt(out[i]);
        else if (s->kind == R_LOGSUM)
            out[i] = log(out[i]);
    }
    return OCC_OK;
}

static occ_status reduce_run(void *state, const occ_op_exec *x, occ_error *e)
{
    const reduce_state *s = state;
    if (s->f64)
        return reduce_run_f64(s, x->in[0], x->out[0], e);
    const float *in = x->in[0];
    float *out = x->out[0];
    const int64_t n = s->ocount;
    (void)e;
    if (s->noop || s->nd == 0) {
        memcpy(out, in, (size_t)s->icount * sizeof(float));
        if (s->noop)
            return OCC_OK;
    }
    if (s->nd == 0) {
        /* a scalar "reduced" over nothing still goes through the function */
        float v = in[0];
        switch (s->kind) {
        case R_L1: v = fabsf(v); break;
        case R_L2: v = fabsf(v); break;
        case R_LOGSUM: v = logf(v); break;
        case R_SUMSQUARE: v = v * v; break;
        default: break;
        }
        out[0] = v;
        return OCC_OK;
    }
    switch (s->kind) {
    case R_MAX:
        reduce_fill(out, n, -INFINITY);
        reduce_pass(s, in, out, NULL, ACC_MAX, PRE_NONE);
        break;
    case R_MIN:
        reduce_fill(out, n, INFINITY);
        reduce_pass(s, in, out, NULL, ACC_MIN, PRE_NONE);
        break;
    case R_PROD:
        reduce_fill(out, n, 1.0f);
        reduce_pass(s, in, out, NULL, ACC_PROD, PRE_NONE);
        break;
    case R_LOGSUMEXP: {
        /* max first (into the output), sums into a scratch of the same size */
        float *sum = occ_ops_alloc((uint64_t)n * sizeof(float));
        if (!sum)
            return occ_fail(e, OCC_ERR_NOMEM, "out of memory for ReduceLogSumExp");
        reduce_fill(out, n, -INFINITY);
        reduce_pass(s, in, out, NULL, ACC_MAX, PRE_NONE);
        reduce_pass(s, in, sum, out, ACC_SUM, PRE_EXP_SHIFTED);
        for (int64_t i = 0; i < n; i++)
            out[i] = isinf(out[i]) ? logf(sum[i]) : out[i] + logf(sum[i]);
        occ_ops_free(sum);
        break;
    }
    default: {
        int pre = s->kind == R_L1 ? PRE_ABS
                  : (s->kind == R_L2 || s->kind == R_SUMSQUARE) ? PRE_SQUARE : PRE_NONE;
        reduce_fill(out, n, 0.0f);
        reduce_pass(s, in, out, NULL, ACC_SUM, pre);
        for (int64_t i = 0; i < n; i++) {
            if (s->kind == R_MEAN)
                out[i] *= s->inv;
            else if (s->kind == R_L2)
                out[i] = sqrtf(out[i]);
            else if (s->kind == R_LOGSUM)
                out[i] = logf(out[i]);
        }
        break;
    }
    }
    return OCC_OK;
}

static void reduce_destroy(void *s)
{
    free(s);
}

#define REDUCE(var, name)                                                                 \
    const occ_op_vtable var = {.op = name,                                                \
                               .min_in = 1,                                               \
                               .max_in = 2,                                               \
                               .n_out = 1,                                                \
                               .n_in_types = 1,                                           \
                               .in_types = {OCC_DTM_FLOAT | OCC_DTM_F64},                 \
                               .infer = reduce_infer,                                     \
                               .flops = reduce_flops,                                     \
                               .prepare = reduce_prepare,                                 \
                               .run = reduce_run,                                         \
                               .destroy = reduce_destroy}

REDUCE(occ_op_reducemean, "ReduceMean");
REDUCE(occ_op_reducesum, "ReduceSum");
REDUCE(occ_op_reducemax, "ReduceMax");
REDUCE(occ_op_reducemin, "ReduceMin");
REDUCE(occ_op_reduceprod, "ReduceProd");
REDUCE(occ_op_reducel1, "ReduceL1");
REDUCE(occ_op_reducel2, "ReduceL2");
REDUCE(occ_op_reducelogsum, "ReduceLogSum");
REDUCE(occ_op_reducelogsumexp, "ReduceLogSumExp");
REDUCE(occ_op_reducesumsquare, "ReduceSumSquare");
