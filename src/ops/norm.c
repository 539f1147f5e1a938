/* Normalisations computed from statistics of the input itself:
 * LayerNormalization (over dims [axis, rank), optional Mean and InvStdDev
 * outputs), InstanceNormalization (per sample and channel over the spatial
 * dims), LpNormalization (p = 1 or 2 along one axis) and
 * MeanVarianceNormalization (over any axes, default 0, 2, 3) and
 * GroupNormalization (opset 18's scale and bias per group, or opset 21's per
 * channel, told apart by their size).
 * LayerNormalization (Scale and B over the whole block, Y alone) and
 * InstanceNormalization run on vecmath.c's row functions (float lanes, two
 * passes) with the rows shared by par.h's pool: oneDNN's primitive split
 * them statically over an OpenMP team, which waits for a descheduled
 * thread. LayerNormalization with Mean or InvStdDev outputs runs on oneDNN's
 * layer normalization (the input seen as [rows, normalised block]); the
 * other forms (a one-value Scale or B) and the rest, or a CPU without AVX2,
 * in plain C with double accumulators. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"
#include "ops/par.h"
#include "ops/vecmath.h"

enum { N_LAYER, N_INSTANCE, N_LP, N_MVN, N_GROUP };

typedef struct norm_state {
    int kind;
    int64_t outer, len, inner; /* rows of len elements, inner-strided (Lp only) */
    int64_t channels;          /* Instance, Group: scale/bias index = row % channels */
    int64_t spatial;           /* Group: elements of one channel */
    int per_channel;           /* Group: scale/bias have C values, not num_groups */
    int64_t wcount, bcount;    /* Layer: elements of scale and bias (len or 1; 0 = absent) */
    float eps;
    int64_t p;
    uint32_t n_out;            /* Layer: 1..3 (Y, Mean, InvStdDev) */
    /* MVN: input dims, per dim the stride in the statistics (0 if reduced) */
    int nd;
    int64_t dims[OCC_MAX_DIMS], gstride[OCC_MAX_DIMS], groups, total;
    double *stats;             /* MVN: sum and sum of squares per group */
    /* LayerNormalization on oneDNN */
    dnnl_primitive_t prim;
    dnnl_memory_t m_src, m_dst, m_scale, m_shift, m_mean, m_var;
    float *mean_buf, *var_buf; /* statistics nobody asked for, or the variance */
    occ_dnnl_scratch scratch;
} norm_state;

static int norm_kind(const char *op)
{
    return strcmp(op, "LayerNormalization") == 0          ? N_LAYER
           : strcmp(op, "InstanceNormalization") == 0     ? N_INSTANCE
           : strcmp(op, "MeanVarianceNormalization") == 0 ? N_MVN
           : strcmp(op, "GroupNormalization") == 0        ? N_GROUP
                                                          : N_LP;
}

static occ_status norm_params(const occ_model *m, const occ_node *n, norm_state *s, int *axis_out,
                              occ_error *e)
{
    const occ_tensor *x = occ_ops_in(m, n, 0);
    occ_status st;
    memset(s, 0, sizeof *s);
    s->kind = norm_kind(n->op);
    if (x->ndim == 0)
        return occ_fail(e, OCC_ERR_SHAPE, "%s of a scalar", n->op);
    int64_t total = occ_ops_count(x->ndim, x->dims);
    switch (s->kind) {
    case N_LAYER: {
        int64_t axis;
        int ax;
        if ((st = occ_ops_attr_int(n, "axis", -1, &axis, e)) ||
            (st = occ_ops_attr_float(n, "epsilon", 1e-5f, &s->eps, e)) ||
            (st = occ_ops_axis(axis, x->ndim, 0, &ax, e)))
            return st;
        s->len = 1;
        for (int i = ax; i < x->ndim; i++)
            s->len *= x->dims[i];
        s->outer = total / s->len;
        s->inner = 1;
        *axis_out = ax;
        for (uint32_t k = 1; k < n->n_inputs && k < 3; k++) {
            const occ_tensor *w = occ_ops_in(m, n, k);
            if (!w)
                continue;
            int64_t c = occ_ops_count(w->ndim, w->dims);
            /* Scale and B broadcast to dims[axis:]: the whole block or one value */
            int same = w->ndim <= x->ndim - ax;
            for (int i = 0; same && i < w->ndim; i++)
                same = w->dims[w->ndim - 1 - i] == x->dims[x->ndim - 1 - i];
            if (!(c == 1 || (same && c == s->len)))
                return occ_fail(e, OCC_ERR_SHAPE, "LayerNormalization %s has %lld elements, "
                                "not the normalised block's %lld (or 1)",
                                k == 1 ? "Scale" : "B", (long long)c, (long long)s->len);
            if (k == 1)
                s->wcount = c;
            else
                s->bcount = c;
        }
        if (!s->wcount)
            return occ_fail(e, OCC_ERR_INVALID, "LayerNormalization needs Scale");
        break;
    }
    case N_INSTANCE: {
        if ((st = occ_ops_attr_float(n, "epsilon", 1e-5f, &s->eps, e)))
            return st;
        if (x->ndim < 3)
            return occ_fail(e, OCC_ERR_SHAPE, "InstanceNormalization needs [N, C, D1, ...], "
                            "got rank %d", x->ndim);
        if (n->n_inputs != 3 || n->inputs[1] < 0 || n->inputs[2] < 0)
            return occ_fail(e, OCC_ERR_INVALID, "InstanceNormalization needs scale and B");
        s->channels = x->dims[1];
        for (uint32_t k = 1; k < 3; k++) {
            const occ_tensor *w = occ_ops_in(m, n, k);
            if (w->ndim != 1 || w->dims[0] != s->channels)
                return occ_fail(e, OCC_ERR_SHAPE, "InstanceNormalization %s must be [%lld]",
                                k == 1 ? "scale" : "B", (long long)s->channels);
        }
        s->len = total / (x->dims[0] * x->dims[1]);
        s->outer = x->dims[0] * x->dims[1];
        s->inner = 1;
        break;
    }
    case N_GROUP: {
        int64_t g;
        if ((st = occ_ops_attr_float(n, "epsilon", 1e-5f, &s->eps, e)) ||
            (st = occ_ops_attr_int(n, "num_groups", 0, &g, e)))
            return st;
        if (x->ndim < 3)
            return occ_fail(e, OCC_ERR_SHAPE, "GroupNormalization needs [N, C, D1, ...], got "
                            "rank %d", x->ndim);
        if (g < 1 || x->dims[1] % g)
            return occ_fail(e, OCC_ERR_INVALID, "num_groups = %lld does not divide %lld channels",
                            (long long)g, (long long)x->dims[1]);
        if (n->n_inputs != 3 || n->inputs[1] < 0 || n->inputs[2] < 0)
            return occ_fail(e, OCC_ERR_INVALID, "GroupNormalization needs scale and bias");
        const occ_tensor *sc = occ_ops_in(m, n, 1), *bi = occ_ops_in(m, n, 2);
        if (sc->ndim != 1 || bi->ndim != 1 || sc->dims[0] != bi->dims[0] ||
            (sc->dims[0] != g && sc->dims[0] != x->dims[1]))
            return occ_fail(e, OCC_ERR_SHAPE, "GroupNormalization scale and bias must be [%lld] "
                            "(per group) or [%lld] (per channel)", (long long)g,
                            (long long)x->dims[1]);
        s->per_channel = sc->dims[0] != g || g == x->dims[1];
        s->channels = g;
        s->spatial = total / (x->dims[0] * x->dims[1]);
        s->outer = x->dims[0] * g;
        s->len = total / s->outer;
        s->inner = 1;
        break;
    }
    case N_MVN: {
        static const int64_t def_axes[3] = {0, 2, 3};
        const int64_t *axes;
        uint32_t c;
        if ((st = occ_ops_attr_ints(n, "axes", OCC_MAX_DIMS, &axes, &c, e)))
            return st;
        if (!occ_ops_attr(n, "axes")) {
            axes = def_axes;
            c = 3;
        }
        int red[OCC_MAX_DIMS] = {0};
        for (uint32_t i = 0; i < c; i++) {
            int a;
            if ((st = occ_ops_axis(axes[i], x->ndim, 0, &a, e)))
                return st;
            red[a] = 1;
        }
        s->nd = x->ndim;
        s->total = total;
        int64_t acc = 1;
        for (int i = x->ndim - 1; i >= 0; i--) {
            s->dims[i] = x->dims[i];
            s->gstride[i] = red[i] ? 0 : acc;
            if (!red[i])
                acc *= x->dims[i];
        }
        s->groups = acc;
        s->len = total / acc;
        break;
    }
    default: {
        int64_t axis;
        int ax;
        if ((st = occ_ops_attr_int(n, "axis", -1, &axis, e)) ||
            (st = occ_ops_attr_int(n, "p", 2, &s->p, e)) ||
            (st = occ_ops_axis(axis, x->ndim, 0, &ax, e)))
            return st;
        if (s->p != 1 && s->p != 2)
            return occ_fail(e, OCC_ERR_INVALID, "LpNormalization p = %lld (1 or 2)",
                            (long long)s->p);
        if (n->n_inputs != 1)
            return occ_fail(e, OCC_ERR_INVALID, "LpNormalization takes one input");
        s->len = x->dims[ax];
        s->inner = 1;
        for (int i = ax + 1; i < x->ndim; i++)
            s->inner *= x->dims[i];
        s->outer = total / (s->len * s->inner);
        break;
    }
    }
    return OCC_OK;
}

static occ_status norm_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    norm_state s;
    int ax = 0;
    occ_status st = norm_params(m, n, &s, &ax, e);
    if (st)
        return st;
    const occ_tensor *x = occ_ops_in(m, n, 0);
    if (s.kind != N_LAYER && n->n_outputs != 1)
        return occ_fail(e, OCC_ERR_INVALID, "%s has one output", n->op);
    if ((st = occ_ops_set_out(m, n, 0, x->ndim, x->dims, e)))
        return st;
    /* Mean and InvStdDev: dims[:axis] followed by ones */
    int64_t d[OCC_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++)
        d[i] = i < ax ? x->dims[i] : 1;
    for (uint32_t k = 1; k < n->n_outputs; k++)
        if ((st = occ_ops_set_out(m, n, k, x->ndim, d, e)))
            return st;
    return OCC_OK;
}

static uint64_t norm_flops(const occ_model *m, const occ_node *n)
{
    const occ_tensor *x = occ_ops_in(m, n, 0);
    return 5u * (uint64_t)occ_ops_count(x->ndim, x->dims);
}

static void norm_destroy(void *p);
static occ_status layer_dnnl(occ_op_prep *p, norm_state *s, occ_error *e);
static occ_status layer_dnnl_run(const norm_state *s, const occ_op_exec *x, occ_error *e);

static occ_status norm_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    norm_state *s = calloc(1, sizeof *s);
    int ax = 0;
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    occ_status st = norm_params(p->m, p->n, s, &ax, e);
    if (st) {
        free(s);
        return st;
    }
    s->n_out = p->n->n_outputs;
    if (s->kind == N_MVN &&
        !(s->stats = occ_ops_alloc((uint64_t)s->groups * 2u * sizeof(double)))) {
        free(s);
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    }
    if (s->kind == N_LAYER && s->wcount == s->len && (s->bcount == 0 || s->bcount == s->len) &&
        (s->n_out > 1 || !occ_vec_fast()) && (st = layer_dnnl(p, s, e))) {
        norm_destroy(s);
        return st;
    }
    *state = s;
    return OCC_OK;
}

typedef struct norm_job {
    const norm_state *s;
    const float *in, *scale, *bias;
    float *out, *mean_out, *inv_out;
} norm_job;

/* rows [o0, o1) of Layer, Instance and Group normalisation */
static void norm_rows(void *ctx, int64_t o0, int64_t o1)
{
    const norm_job *j = ctx;
    const norm_state *s = j->s;
    const float *scale = j->scale, *bias = j->bias;
    const int64_t len = s->len;
    const int fast = occ_vec_fast();
    for (int64_t o = o0; o < o1; o++) {
        const float *r = j->in + o * len;
        float *w = j->out + o * len;
        if (fast && (s->kind == N_INSTANCE ||
                     (s->kind == N_LAYER && s->wcount == len && s->bcount != 1))) {
            float mu, var;
            occ_vec_moments(r, len, &mu, &var);
            const float inv = 1.0f / sqrtf(var + s->eps);
            if (s->kind == N_INSTANCE) {
                const int64_t c = o % s->channels;
                occ_vec_affine(r, w, len, inv * scale[c], bias[c] - mu * inv * scale[c]);
                continue;
            }
            occ_vec_normalize(r, w, len, mu, inv, scale, s->bcount ? bias : NULL);
            if (j->mean_out)
                j->mean_out[o] = mu;
            if (j->inv_out)
                j->inv_out[o] = inv;
            continue;
        }
        double sum = 0.0, sq = 0.0;
        for (int64_t i = 0; i < len; i++)
            sum += r[i];
        const double mean = sum / (double)len;
        for (int64_t i = 0; i < len; i++) {
            double d = r[i] - mean;
            sq += d * d;
        }
        const double inv = 1.0 / sqrt(sq / (double)len + (double)s->eps);
        if (s->kind == N_GROUP) {
            const int64_t g = o % s->channels, cpg = len / s->spatial;
            for (int64_t i = 0; i < len; i++) {
                const int64_t c = s->per_channel ? g * cpg + i / s->spatial : g;
                w[i] = (float)((r[i] - mean) * inv * scale[c] + bias[c]);
            }
            continue;
        }
        if (s->kind == N_INSTANCE) {
            const int64_t c = o % s->channels;
            const double a = inv * scale[c], b = bias[c] - mean * a;
            for (int64_t i = 0; i < len; i++)
                w[i] = (float)(r[i] * a + b);
            continue;
        }
        for (int64_t i = 0; i < len; i++) {
            double y = (r[i] - mean) * inv * scale[s->wcount == 1 ? 0 : i];
            if (s->bcount)
                y += bias[s->bcount == 1 ? 0 : i];
            w[i] = (float)y;
        }
        if (j->mean_out)
            j->mean_out[o] = (float)mean;
        if (j->inv_out)
            j->inv_out[o] = (float)inv;
    }
}

static occ_status norm_run(void *state, const occ_op_exec *x, occ_error *e)
{
    const norm_state *s = state;
    const float *in = x->in[0];
    float *out = x->out[0];
    const int64_t len = s->len, inner = s->inner;
    (void)e;
    if (s->prim)
        return layer_dnnl_run(s, x, e);
    if (s->kind == N_MVN) {
        /* (x - mean) / (sqrt(E[x^2] - mean^2) + 1e-9), as the ONNX function */
        double *sum = s->stats, *sq = s->stats + s->groups;
        memset(s->stats, 0, (size_t)s->groups * 2u * sizeof(double));
        for (int pass = 0; pass < 2; pass++) {
            int64_t idx[OCC_MAX_DIMS] = {0}, g = 0;
            for (int64_t i = 0; i < s->total; i++) {
                if (pass == 0) {
                    sum[g] += in[i];
                    sq[g] += (double)in[i] * in[i];
                } else {
                    const double mean = sum[g] / (double)len;
                    const double var = sq[g] / (double)len - mean * mean;
                    out[i] = (float)((in[i] - mean) / (sqrt(var > 0 ? var : 0) + 1e-9));
                }
                for (int d = s->nd - 1; d >= 0; d--) {
                    idx[d]++;
                    g += s->gstride[d];
                    if (idx[d] < s->dims[d])
                        break;
                    g -= s->gstride[d] * s->dims[d];
                    idx[d] = 0;
                }
            }
        }
        return OCC_OK;
    }
    if (s->kind == N_LP) {
        for (int64_t o = 0; o < s->outer; o++)
            for (int64_t j = 0; j < inner; j++) {
                const float *r = in + o * len * inner + j;
                float *w = out + o * len * inner + j;
                double acc = 0.0;
                for (int64_t i = 0; i < len; i++)
                    acc += s->p == 1 ? fabs((double)r[i * inner])
                                     : (double)r[i * inner] * (double)r[i * inner];
                const float norm = (float)(s->p == 1 ? acc : sqrt(acc));
                for (int64_t i = 0; i < len; i++)
                    w[i * inner] = r[i * inner] / norm;
            }
        return OCC_OK;
    }
    norm_job j = {.s = s, .in = in, .out = out, .scale = x->in[1], .bias = x->in[2]};
    if (s->kind == N_LAYER) {
        /* optional outputs: only those the node declares exist */
        if (s->n_out > 1)
            j.mean_out = x->out[1];
        if (s->n_out > 2)
            j.inv_out = x->out[2];
    }
    /* chunks of ~16 K elements; small tensors on the caller alone */
    const int64_t grain = s->outer * len > 65536 ? (16384 + len - 1) / len : s->outer;
    occ_par_for(s->outer, grain, norm_rows, &j);
    return OCC_OK;
}

static void norm_destroy(void *p)
{
    norm_state *s = p;
    if (!s)
        return;
    occ_ops_free(s->stats);
    if (s->prim)
        dnnl_primitive_destroy(s->prim);
    dnnl_memory_t mems[] = {s->m_src, s->m_dst, s->m_scale, s->m_shift, s->m_mean, s->m_var};
    for (size_t i = 0; i < sizeof mems / sizeof mems[0]; i++)
        if (mems[i])
            dnnl_memory_destroy(mems[i]);
    occ_ops_free(s->mean_buf);
    occ_ops_free(s->var_buf);
    occ_dnnl_scratch_free(&s->scratch);
    free(s);
}

/* oneDNN layer normalization over [outer, len]: statistics computed (forward
 * training) when the node asks for Mean or InvStdDev. */
static occ_status layer_dnnl(occ_op_prep *p, norm_state *s, occ_error *e)
{
    dnnl_memory_desc_t dmd, smd, wmd;
    int64_t dd[2] = {s->outer, s->len}, sd[1] = {s->outer}, wd[1] = {s->len};
    dnnl_layer_normalization_desc_t desc;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_attr_t attr = NULL;
    unsigned flags = dnnl_use_scale | (s->bcount ? dnnl_use_shift : 0u);
    int stats = s->n_out > 1;
    occ_status st;
    if ((st = occ_dnnl_plain_md(&dmd, 2, dd, e)) || (st = occ_dnnl_plain_md(&smd, 1, sd, e)) ||
        (st = occ_dnnl_plain_md(&wmd, 1, wd, e)))
        return st;
    if ((st = occ_dnnl_check(dnnl_layer_normalization_forward_desc_init(
                                 &desc, stats ? dnnl_forward_training : dnnl_forward_inference,
                                 &dmd, &smd, s->eps, flags),
                             "layer normalization", e)) ||
        (st = occ_dnnl_user_attr(&attr, e)))
        return st;
    st = occ_dnnl_check(dnnl_primitive_desc_create(&pd, &desc, attr, p->eng, NULL),
                        "layer normalization", e);
    dnnl_primitive_attr_destroy(attr);
    if (st)
        return st;
    st = occ_dnnl_check(dnnl_primitive_create(&s->prim, pd), "layer normalization", e);
    if (!st)
        st = occ_dnnl_scratch_init(&s->scratch, pd, p->eng, e);
    dnnl_primitive_desc_destroy(pd);
    if (st)
        return st;
    if ((st = occ_dnnl_mem(&s->m_src, &dmd, p->eng, NULL, e)) ||
        (st = occ_dnnl_mem(&s->m_dst, &dmd, p->eng, NULL, e)) ||
        (st = occ_dnnl_mem(&s->m_scale, &wmd, p->eng, NULL, e)) ||
        (s->bcount && (st = occ_dnnl_mem(&s->m_shift, &wmd, p->eng, NULL, e))))
        return st;
    if (stats) {
        s->mean_buf = occ_ops_alloc((uint64_t)s->outer * sizeof(float));
        s->var_buf = occ_ops_alloc((uint64_t)s->outer * sizeof(float));
        if (!s->mean_buf || !s->var_buf)
            return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
        if ((st = occ_dnnl_mem(&s->m_mean, &smd, p->eng, s->mean_buf, e)) ||
            (st = occ_dnnl_mem(&s->m_var, &smd, p->eng, s->var_buf, e)))
            return st;
    }
    return OCC_OK;
}

static occ_status layer_dnnl_run(const norm_state *s, const occ_op_exec *x, occ_error *e)
{
    const float *in = x->in[0];
    const float *scale = x->in[1];
    const float *bias = s->bcount ? x->in[2] : NULL;
    float *out = x->out[0];
    dnnl_memory_set_data_handle(s->m_src, (void *)in);
    dnnl_memory_set_data_handle(s->m_dst, out);
    dnnl_memory_set_data_handle(s->m_scale, (void *)scale);
    dnnl_exec_arg_t args[7] = {{DNNL_ARG_SRC, s->m_src}, {DNNL_ARG_DST, s->m_dst},
                               {DNNL_ARG_SCALE, s->m_scale}};
    int na = 3;
    if (bias) {
        dnnl_memory_set_data_handle(s->m_shift, (void *)bias);
        args[na++] = (dnnl_exec_arg_t){DNNL_ARG_SHIFT, s->m_shift};
    }
    if (s->m_mean) {
        args[na++] = (dnnl_exec_arg_t){DNNL_ARG_MEAN, s->m_mean};
        args[na++] = (dnnl_exec_arg_t){DNNL_ARG_VARIANCE, s->m_var};
    }
    na = occ_dnnl_scratch_arg(&s->scratch, args, na);
    occ_status st = occ_dnnl_exec(s->prim, x->stream, na, args, e);
    if (st || !s->m_mean)
        return st;
    float *mean_out = x->out[1];
    float *inv_out = s->n_out > 2 ? x->out[2] : NULL;
    for (int64_t o = 0; o < s->outer; o++) {
        mean_out[o] = s->mean_buf[o];
        if (inv_out)
            inv_out[o] = 1.0f / sqrtf(s->var_buf[o] + s->eps);
    }
    return OCC_OK;
}

const occ_op_vtable occ_op_layernorm = {
    .op = "LayerNormalization",
    .min_in = 2,
    .max_in = 3,
    .n_out = 3,
    .min_out = 1,
    .infer = norm_infer,
    .flops = norm_flops,
    .prepare = norm_prepare,
    .run = norm_run,
    .destroy = norm_destroy,
};

const occ_op_vtable occ_op_instancenorm = {
    .op = "InstanceNormalization",
    .min_in = 3,
    .max_in = 3,
    .n_out = 1,
    .infer = norm_infer,
    .flops = norm_flops,
    .prepare = norm_prepare,
    .run = norm_run,
    .destroy = norm_destroy,
};

const occ_op_vtable occ_op_lpnorm = {
    .op = "LpNormalization",
    .min_in = 1,
    .max_in = 1,
    .n_out = 1,
    .infer = norm_infer,
    .flops = norm_flops,
    .prepare = norm_prepare,
    .run = norm_run,
    .destroy = norm_destroy,
};

const occ_op_vtable occ_op_mvn = {
    .op = "MeanVarianceNormalization",
    .min_in = 1,
    .max_in = 1,
    .n_out = 1,
    .infer = norm_infer,
    .flops = norm_flops,
    .prepare = norm_prepare,
    .run = norm_run,
    .destroy = norm_destroy,
};

const occ_op_vtable occ_op_groupnorm = {
    .op = "GroupNormalization",
    .min_in = 3,
    .max_in = 3,
    .n_out = 1,
    .infer = norm_infer,
    .flops = norm_flops,
    .prepare = norm_prepare,
    .run = norm_run,
    .destroy = norm_destroy,
};
