/* MaxPool, AveragePool (oneDNN pooling when its semantics match ONNX exactly,
 * in whatever layout the input arrives; else our plain NCHW loops), LpPool
 * (plain loop), all 2-D or 1-D (a height of 1), and GlobalAveragePool,
 * GlobalMaxPool (plain loops, any rank).
 *
 * Where oneDNN differs: AveragePool with count_include_pad=1 divides by the
 * full kernel area, while ONNX (and ONNX Runtime / PyTorch) clip the window to
 * the explicitly padded input; they differ when ceil_mode lets a window run
 * past the end padding. Those layers (and dilated average pools) use the C
 * path. MaxPool on int8/uint8, or with its Indices output (int64, the flat
 * index of each maximum in the input, first one on ties), runs a plain typed
 * loop. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"

enum { P_MAX, P_AVG, P_LP };

typedef struct pool_geom {
    int kind;
    int rank;
    float p;                  /* LpPool */
    int include_pad;
    int typed;                /* MaxPool on integers or with Indices: pool_max_typed */
    int col_major;            /* storage_order = 1: Indices count down the columns */
    uint32_t dtype;
    int64_t n, c;
    occ_window w;
} pool_geom;

static occ_status pool_geometry(const occ_model *m, const occ_node *n, pool_geom *g, occ_error *e)
{
    occ_status st;
    const occ_tensor *x = occ_ops_in(m, n, 0);
    const int64_t *ks;
    uint32_t kc;
    int64_t ceil_mode, cip = 0, so = 0;
    g->kind = strcmp(n->op, "MaxPool") == 0 ? P_MAX : strcmp(n->op, "LpPool") == 0 ? P_LP : P_AVG;
    if (g->kind == P_LP) {
        int64_t pv;
        if ((st = occ_ops_attr_int(n, "p", 2, &pv, e)))
            return st;
        if (pv < 1 || pv > 64)
            return occ_fail(e, OCC_ERR_INVALID, "LpPool p = %lld (1..64)", (long long)pv);
        g->p = (float)pv;
    }
    if (x->ndim < 3 || x->ndim > 5)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "input of rank %d (1-D to 3-D pooling: rank 3 "
                        "to 5)", x->ndim);
    g->rank = x->ndim;
    if ((st = occ_ops_attr_ints(n, "kernel_shape", 8, &ks, &kc, e)))
        return st;
    if (kc != (uint32_t)(x->ndim - 2))
        return occ_fail(e, OCC_ERR_INVALID, "kernel_shape must have %d values (has %u)",
                        x->ndim - 2, kc);
    if ((st = occ_ops_attr_int(n, "ceil_mode", 0, &ceil_mode, e)))
        return st;
    if (ceil_mode != 0 && ceil_mode != 1)
        return occ_fail(e, OCC_ERR_INVALID, "ceil_mode must be 0 or 1");
    if (g->kind == P_AVG) {
        if ((st = occ_ops_attr_int(n, "count_include_pad", 0, &cip, e)))
            return st;
        if (cip != 0 && cip != 1)
            return occ_fail(e, OCC_ERR_INVALID, "count_include_pad must be 0 or 1");
    } else if (g->kind == P_MAX) {
        if ((st = occ_ops_attr_int(n, "storage_order", 0, &so, e)))
            return st;
        if (so != 0 && (so != 1 || n->n_outputs < 2 || x->ndim > 4))
            return occ_fail(e, OCC_ERR_UNSUPPORTED, "storage_order = %lld is supported only for "
                            "the Indices of a 1-D or 2-D MaxPool", (long long)so);
        g->col_major = so == 1;
    }
    g->include_pad = (int)cip;
    g->dtype = occ_ops_dtype(x);
    g->typed = g->dtype != OCC_DTYPE_FLOAT || n->n_outputs > 1;
    if (g->typed && g->kind != P_MAX)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "%s takes float32 only", n->op);
    g->n = x->dims[0];
    g->c = x->dims[1];
    int64_t in[3] = {x->dims[2], x->ndim >= 4 ? x->dims[3] : 1, x->ndim == 5 ? x->dims[4] : 1};
    return occ_ops_window_nd(n, x->ndim - 2, in, ks, (int)ceil_mode, &g->w, e);
}

static occ_status pool_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    pool_geom g;
    occ_status st = pool_geometry(m, n, &g, e);
    if (st)
        return st;
    int64_t d[5] = {g.n, g.c, g.w.out[0], g.w.out[1]};
    if (g.rank == 3)
        d[2] = g.w.out[1];
    if (g.rank == 5) {
        d[2] = g.w.out[2];
        d[3] = g.w.out[0];
        d[4] = g.w.out[1];
    }
    if (n->n_outputs > 1) {
        if ((st = occ_ops_set_out(m, n, 1, g.rank, d, e)))
            return st;
        occ_ops_set_dtype(m, n, 1, OCC_DTYPE_INT64);
    }
    return occ_ops_set_out(m, n, 0, g.rank, d, e);
}

static uint64_t pool_flops(const occ_model *m, const occ_node *n)
{
    pool_geom g;
    if (pool_geometry(m, n, &g, NULL))
        return 0;
    return (uint64_t)g.n * g.c * g.w.out[0] * g.w.out[1] * g.w.out[2] * g.w.k[0] * g.w.k[1] *
           g.w.k[2];
}

/* Right padding that makes oneDNN's output size formula give ours. */
static int64_t dnnl_pad_r(const occ_window *w, int i)
{
    int64_t ext = (w->k[i] - 1) * w->d[i] + 1;
    int64_t need = (w->out[i] - 1) * w->s[i] + ext - w->in[i] - w->pb[i];
    return need > w->pe[i] ? need : w->pe[i];
}

static int pool_dnnl_exact(const pool_geom *g)
{
    if (g->rank != 4 || g->kind == P_LP || g->typed)
        return 0; /* 1-D, LpPool and typed MaxPool: the plain loops, plain layout */
    for (int i = 0; i < 2; i++) {
        int64_t pr = dnnl_pad_r(&g->w, i);
        int64_t ext = (g->w.k[i] - 1) * g->w.d[i] + 1;
        if ((g->w.in[i] + g->w.pb[i] + pr - ext) / g->w.s[i] + 1 != g->w.out[i])
            return 0;
        /* oneDNN wants padding smaller than the kernel */
        if (g->w.pb[i] >= ext || pr >= ext)
            return 0;
        if (g->kind == P_AVG) {
            if (g->w.d[i] != 1)
                return 0;
            if (g->include_pad && pr != g->w.pe[i])
                return 0;
        }
    }
    return 1;
}

static int pool_layout(const occ_model *m, const occ_node *n, const dnnl_memory_desc_t *const *md)
{
    pool_geom g;
    if (pool_geometry(m, n, &g, NULL))
        return 0;
    return pool_dnnl_exact(&g);
}

typedef struct pool_state {
    pool_geom g;
    int has_idx; /* MaxPool's Indices output is read */
    dnnl_primitive_t prim;
    dnnl_memory_t src, dst;
    occ_dnnl_scratch scratch;
} pool_state;

static void pool_destroy(void *p)
{
    pool_state *s = p;
    if (!s)
        return;
    if (s->prim)
        dnnl_primitive_destroy(s->prim);
    if (s->src)
        dnnl_memory_destroy(s->src);
    if (s->dst)
        dnnl_memory_destroy(s->dst);
    occ_dnnl_scratch_free(&s->scratch);
    free(s);
}

static occ_status pool_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    pool_state *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    occ_status st = pool_geometry(p->m, p->n, &s->g, e);
    if (st)
        goto fail;
    s->has_idx = p->n->n_outputs > 1;
    if (pool_dnnl_exact(&s->g)) {
        const pool_geom *g = &s->g;
        dnnl_memory_desc_t smd, dmd;
        int64_t sd[4] = {g->n, g->c, g->w.in[0], g->w.in[1]};
        dnnl_dims_t dd = {g->n, g->c, g->w.out[0], g->w.out[1]};
        if (p->in_md && p->in_md[0])
            smd = *p->in_md[0];
        else if ((st = occ_dnnl_plain_md(&smd, 4, sd, e)))
            goto fail;
        if ((st = occ_dnnl_check(dnnl_memory_desc_init_by_tag(&dmd, 4, dd, dnnl_f32,
                                                              dnnl_format_tag_any),
                                 "pooling", e)))
            goto fail;
        dnnl_dims_t strides = {g->w.s[0], g->w.s[1]}, kernel = {g->w.k[0], g->w.k[1]};
        dnnl_dims_t dil = {g->w.d[0] - 1, g->w.d[1] - 1};
        dnnl_dims_t pl = {g->w.pb[0], g->w.pb[1]};
        dnnl_dims_t pr = {dnnl_pad_r(&g->w, 0), dnnl_pad_r(&g->w, 1)};
        dnnl_alg_kind_t alg = g->kind == P_MAX          ? dnnl_pooling_max
                              : g->include_pad ? dnnl_pooling_avg_include_padding
                                               : dnnl_pooling_avg_exclude_padding;
        dnnl_pooling_v2_desc_t pdsc;
        dnnl_primitive_desc_t pd = NULL;
        if ((st = occ_dnnl_check(dnnl_pooling_v2_forward_desc_init(&pdsc, dnnl_forward_inference,
                                                                   alg, &smd, &dmd, strides,
                                                                   kernel, dil, pl, pr),
                                 "pooling", e)))
            goto fail;
        dnnl_primitive_attr_t attr = NULL;
        if ((st = occ_dnnl_user_attr(&attr, e)))
            goto fail;
        st = occ_dnnl_check(dnnl_primitive_desc_create(&pd, &pdsc, attr, p->eng, NULL),
                            "pooling", e);
        dnnl_primitive_attr_destroy(attr);
        if (st)
            goto fail;
        dnnl_status_t ds = dnnl_primitive_create(&s->prim, pd);
        const dnnl_memory_desc_t *q = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
        p->out_md = *q;
        p->out_blocked = !occ_dnnl_md_is_plain(q);
        if (!(st = occ_dnnl_check(ds, "pooling", e)))
            st = occ_dnnl_scratch_init(&s->scratch, pd, p->eng, e);
        dnnl_primitive_desc_destroy(pd);
        if (st)
            goto fail;
        if ((st = occ_dnnl_mem(&s->src, &smd, p->eng, NULL, e)) ||
            (st = occ_dnnl_mem(&s->dst, &p->out_md, p->eng, NULL, e)))
            goto fail;
    }
    *state = s;
    return OCC_OK;
fail:
    pool_destroy(s);
    return st;
}

/* Any window of up to 3 spatial dims (the depth, slot 2, is trivial for 1-D
 * and 2-D). */
static void pool_plain(const pool_geom *g, const float *in, float *out)
{
    const occ_window *w = &g->w;
    const int64_t Z = w->in[2], H = w->in[0], W = w->in[1];
    const int64_t OZ = w->out[2], OH = w->out[0], OW = w->out[1];
    const int64_t planes = g->n * g->c;
#pragma omp parallel for schedule(static)
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *src = in + pl * Z * H * W;
        float *dst = out + pl * OZ * OH * OW;
        for (int64_t oz = 0; oz < OZ; oz++)
            for (int64_t oh = 0; oh < OH; oh++)
                for (int64_t ow = 0; ow < OW; ow++) {
                    int64_t z0 = oz * w->s[2] - w->pb[2];
                    int64_t h0 = oh * w->s[0] - w->pb[0], w0 = ow * w->s[1] - w->pb[1];
                    float acc = g->kind == P_MAX ? -INFINITY : 0.0f;
                    int64_t cnt = 0;
                    for (int64_t kz = 0; kz < w->k[2]; kz++) {
                        int64_t z = z0 + kz * w->d[2];
                        if (z < 0 || z >= Z)
                            continue;
                        for (int64_t kh = 0; kh < w->k[0]; kh++) {
                            int64_t h = h0 + kh * w->d[0];
                            if (h < 0 || h >= H)
                                continue;
                            for (int64_t kw = 0; kw < w->k[1]; kw++) {
                                int64_t x = w0 + kw * w->d[1];
                                if (x < 0 || x >= W)
                                    continue;
                                float v = src[(z * H + h) * W + x];
                                if (g->kind == P_MAX)
                                    acc = v > acc ? v : acc;
                                else if (g->kind == P_LP)
                                    acc += powf(fabsf(v), g->p);
                                else
                                    acc += v;
                                cnt++;
                            }
                        }
                    }
                    if (g->kind == P_LP)
                        acc = powf(acc, 1.0f / g->p);
                    if (g->kind == P_AVG) {
                        if (g->include_pad) {
                            /* window clipped to the padded input [-pb, in + pe) */
                            int64_t n_in[3];
                            const int64_t st[3] = {h0, w0, z0};
                            for (int i = 0; i < 3; i++) {
                                int64_t end = st[i] + (w->k[i] - 1) * w->d[i] + 1;
                                if (end > w->in[i] + w->pe[i])
                                    end = w->in[i] + w->pe[i];
                                n_in[i] = (end - st[i] + w->d[i] - 1) / w->d[i];
                            }
                            cnt = n_in[0] * n_in[1] * n_in[2];
                        }
                        acc = cnt ? acc / (float)cnt : 0.0f;
                    }
                    dst[(oz * OH + oh) * OW + ow] = acc;
                }
    }
}

/* MaxPool of any numeric type (compared as double: exact for 8-bit and float),
 * with the flat input index of each maximum into idx when asked. */
static void pool_max_typed(const pool_geom *g, const void *in, void *out, int64_t *idx)
{
    const occ_window *w = &g->w;
    const int64_t Z = w->in[2], H = w->in[0], W = w->in[1];
    const int64_t OZ = w->out[2], OH = w->out[0], OW = w->out[1];
    const size_t es = occ_dtype_size(g->dtype);
    for (int64_t pl = 0; pl < g->n * g->c; pl++)
        for (int64_t oz = 0; oz < OZ; oz++)
            for (int64_t oh = 0; oh < OH; oh++)
                for (int64_t ow = 0; ow < OW; ow++) {
                    int64_t z0 = oz * w->s[2] - w->pb[2];
                    int64_t h0 = oh * w->s[0] - w->pb[0], w0 = ow * w->s[1] - w->pb[1];
                    int64_t best = -1;
                    double bv = 0.0;
                    for (int64_t kz = 0; kz < w->k[2]; kz++) {
                        int64_t z = z0 + kz * w->d[2];
                        if (z < 0 || z >= Z)
                            continue;
                        for (int64_t kh = 0; kh < w->k[0]; kh++) {
                            int64_t h = h0 + kh * w->d[0];
                            if (h < 0 || h >= H)
                                continue;
                            for (int64_t kw = 0; kw < w->k[1]; kw++) {
                                int64_t xw = w0 + kw * w->d[1];
                                if (xw < 0 || xw >= W)
                                    continue;
                                int64_t at = pl * Z * H * W + (z * H + h) * W + xw;
                                double v = occ_ops_load_f64(g->dtype, in, at);
                                if (best < 0 || v > bv || (v != v && bv == bv)) {
                                    best = at;
                                    bv = v;
                                }
                            }
                        }
                    }
                    int64_t o = ((pl * OZ + oz) * OH + oh) * OW + ow;
                    if (best >= 0)
                        memcpy((uint8_t *)out + (size_t)o * es,
                               (const uint8_t *)in + (size_t)best * es, es);
                    else /* a window entirely in the padding */
                        occ_ops_scalar_from_double(g->dtype, g->dtype == OCC_DTYPE_FLOAT ? -INFINITY : 0.0,
                                                   (uint8_t *)out + (size_t)o * es);
                    if (idx && best >= 0 && g->col_major) {
                        int64_t r = best % (H * W); /* 2-D: Z = 1 */
                        best = best - r + (r % W) * H + r / W;
                    }
                    if (idx)
                        idx[o] = best < 0 ? 0 : best;
                }
}

static occ_status pool_run(void *state, const occ_op_exec *x, occ_error *e)
{
    pool_state *s = state;
    if (s->g.typed) {
        pool_max_typed(&s->g, x->in[0], x->out[0], s->has_idx ? (int64_t *)x->out[1] : NULL);
        return OCC_OK;
    }
    if (!s->prim) {
        pool_plain(&s->g, x->in[0], x->out[0]);
        return OCC_OK;
    }
    dnnl_memory_set_data_handle(s->src, (void *)x->in[0]);
    dnnl_memory_set_data_handle(s->dst, x->out[0]);
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, s->src}, {DNNL_ARG_DST, s->dst}};
    return occ_dnnl_exec(s->prim, x->stream, occ_dnnl_scratch_arg(&s->scratch, args, 2), args, e);
}

/* ---- strips (the engine's strip chains, src/engine/strips.c) ----
 * A 2-D MaxPool or AveragePool that oneDNN computes exactly (pool_layout)
 * over a band of rows: the band's height and top/bottom padding (the
 * layer's own, at the input's edges only, so a max still ignores them and
 * an average counts them as the whole layer does), src and dst in the given
 * tags; the scratchpad, if any, is the caller's. */
typedef struct pool_strip {
    dnnl_primitive_t prim;
    dnnl_memory_t src, dst, scratch;
    uint64_t scratch_size;
} pool_strip;

void occ_pool_strip_destroy(void *state)
{
    pool_strip *s = state;
    if (!s)
        return;
    if (s->prim)
        dnnl_primitive_destroy(s->prim);
    dnnl_memory_t mems[] = {s->src, s->dst, s->scratch};
    for (size_t i = 0; i < sizeof mems / sizeof mems[0]; i++)
        if (mems[i])
            dnnl_memory_destroy(mems[i]);
    free(s);
}

occ_status occ_pool_strip_prepare(occ_op_prep *p, const occ_strip_geom *sg, void **state,
                                  occ_error *e)
{
    pool_geom g;
    occ_status st = pool_geometry(p->m, p->n, &g, e);
    *state = NULL;
    if (st)
        return st;
    if (g.kind == P_LP || !pool_dnnl_exact(&g) || p->n->n_outputs != 1)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "strips: a pool oneDNN computes exactly only");
    pool_strip *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    dnnl_memory_desc_t smd, dmd;
    dnnl_dims_t sd = {g.n, g.c, sg->h_in, g.w.in[1]}, dd = {g.n, g.c, sg->h_out, g.w.out[1]};
    dnnl_dims_t strides = {g.w.s[0], g.w.s[1]}, kernel = {g.w.k[0], g.w.k[1]};
    dnnl_dims_t dil = {g.w.d[0] - 1, g.w.d[1] - 1};
    dnnl_dims_t pl = {sg->pt, g.w.pb[1]}, pr = {sg->pb, dnnl_pad_r(&g.w, 1)};
    dnnl_alg_kind_t alg = g.kind == P_MAX    ? dnnl_pooling_max
                          : g.include_pad ? dnnl_pooling_avg_include_padding
                                          : dnnl_pooling_avg_exclude_padding;
    dnnl_pooling_v2_desc_t pdsc;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_attr_t attr = NULL;
    if ((st = occ_dnnl_check(dnnl_memory_desc_init_by_tag(&smd, 4, sd, dnnl_f32, sg->src_tag),
                             "strip pooling", e)) ||
        (st = occ_dnnl_check(dnnl_memory_desc_init_by_tag(&dmd, 4, dd, dnnl_f32, sg->dst_tag),
                             "strip pooling", e)) ||
        (st = occ_dnnl_check(dnnl_pooling_v2_forward_desc_init(&pdsc, dnnl_forward_inference, alg,
                                                               &smd, &dmd, strides, kernel, dil,
                                                               pl, pr),
                             "strip pooling", e)) ||
        (st = occ_dnnl_user_attr(&attr, e)))
        goto fail;
    st = occ_dnnl_check(dnnl_primitive_desc_create(&pd, &pdsc, attr, p->eng, NULL), "strip pooling", e);
    dnnl_primitive_attr_destroy(attr);
    if (st)
        goto fail;
    const dnnl_memory_desc_t *spmd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    s->scratch_size = spmd ? dnnl_memory_desc_get_size(spmd) : 0;
    if ((st = occ_dnnl_check(dnnl_primitive_create(&s->prim, pd), "strip pooling", e)) ||
        (st = occ_dnnl_mem(&s->src, &smd, p->eng, NULL, e)) ||
        (st = occ_dnnl_mem(&s->dst, &dmd, p->eng, NULL, e)) ||
        (s->scratch_size && (st = occ_dnnl_mem(&s->scratch, spmd, p->eng, NULL, e))))
        goto fail;
    dnnl_primitive_desc_destroy(pd);
    *state = s;
    return OCC_OK;
fail:
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    occ_pool_strip_destroy(s);
    return st;
}

uint64_t occ_pool_strip_scratch(const void *state)
{
    return ((const pool_strip *)state)->scratch_size;
}

occ_status occ_pool_strip_run(void *state, const void *src, void *dst, void *scratch,
                              dnnl_stream_t stream, occ_error *e)
{
    pool_strip *s = state;
    dnnl_memory_set_data_handle(s->src, (void *)src);
    dnnl_memory_set_data_handle(s->dst, dst);
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, s->src}, {DNNL_ARG_DST, s->dst}};
    int n = 2;
    if (s->scratch) {
        dnnl_memory_set_data_handle(s->scratch, scratch);
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, s->scratch};
    }
    return occ_dnnl_exec(s->prim, stream, n, args, e);
}

const occ_op_vtable occ_op_maxpool = {
    .op = "MaxPool",
    .min_in = 1,
    .max_in = 1,
    .n_out = 2,
    .min_out = 1,
    .n_in_types = 1,
    .in_types = {OCC_DTM_FLOAT | OCC_DTM(OCC_DTYPE_UINT8) | OCC_DTM(OCC_DTYPE_INT8)},
    .infer = pool_infer,
    .flops = pool_flops,
    .layout = pool_layout,
    .prepare = pool_prepare,
    .run = pool_run,
    .destroy = pool_destroy,
};

const occ_op_vtable occ_op_lppool = {
    .op = "LpPool",
    .min_in = 1,
    .max_in = 1,
    .n_out = 1,
    .infer = pool_infer,
    .flops = pool_flops,
    .prepare = pool_prepare,
    .run = pool_run,
    .destroy = pool_destroy,
};

const occ_op_vtable occ_op_averagepool = {
    .op = "AveragePool",
    .min_in = 1,
    .max_in = 1,
    .n_out = 1,
    .infer = pool_infer,
    .flops = pool_flops,
    .layout = pool_layout,
    .prepare = pool_prepare,
    .run = pool_run,
    .destroy = pool_destroy,
};

/* ---- GlobalAveragePool ---- */

static occ_status gap_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    const occ_tensor *x = occ_ops_in(m, n, 0);
    if (x->ndim < 3)
        return occ_fail(e, OCC_ERR_SHAPE, "input of rank %d, expected at least 3", x->ndim);
    int64_t d[OCC_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++)
        d[i] = i < 2 ? x->dims[i] : 1;
    return occ_ops_set_out(m, n, 0, x->ndim, d, e);
}

static uint64_t gap_flops(const occ_model *m, const occ_node *n)
{
    const occ_tensor *x = occ_ops_in(m, n, 0);
    return (uint64_t)occ_ops_count(x->ndim, x->dims);
}

typedef struct gap_state {
    int64_t rows, len;
    int max;
} gap_state;

static occ_status gap_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    gap_state *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    const occ_tensor *x = occ_ops_in(p->m, p->n, 0);
    s->rows = x->dims[0] * x->dims[1];
    s->len = occ_ops_count(x->ndim, x->dims) / s->rows;
    s->max = strcmp(p->n->op, "GlobalMaxPool") == 0;
    *state = s;
    return OCC_OK;
}

static occ_status gap_run(void *state, const occ_op_exec *x, occ_error *e)
{
    const gap_state *s = state;
    const float *in = x->in[0];
    float *out = x->out[0];
    const float inv = 1.0f / (float)s->len;
    if (s->max) {
        for (int64_t r = 0; r < s->rows; r++) {
            const float *row = in + r * s->len;
            float mx = -INFINITY;
            for (int64_t i = 0; i < s->len; i++)
                mx = row[i] > mx || row[i] != row[i] ? row[i] : mx;
            out[r] = mx;
        }
        return OCC_OK;
    }
#pragma omp parallel for if (s->rows * s->len > 65536) schedule(static)
    for (int64_t r = 0; r < s->rows; r++) {
        const float *row = in + r * s->len;
        float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
        for (int64_t i = 0; i < s->len; i++)
            acc += row[i];
        out[r] = acc * inv;
    }
    return OCC_OK;
}

static void gap_destroy(void *s)
{
    free(s);
}

const occ_op_vtable occ_op_globalaveragepool = {
    .op = "GlobalAveragePool",
    .min_in = 1,
    .max_in = 1,
    .n_out = 1,
    .infer = gap_infer,
    .flops = gap_flops,
    .prepare = gap_prepare,
    .run = gap_run,
    .destroy = gap_destroy,
};

const occ_op_vtable occ_op_globalmaxpool = {
    .op = "GlobalMaxPool",
    .min_in = 1,
    .max_in = 1,
    .n_out = 1,
    .infer = gap_infer,
    .flops = gap_flops,
    .prepare = gap_prepare,
    .run = gap_run,
    .destroy = gap_destroy,
};
