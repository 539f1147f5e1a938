/* Conv (2-D, and 1-D as 2-D with a height of 1): oneDNN convolution, weights reordered once into the layout the
 * chosen implementation wants; Winograd for 3x3 stride-1 layers with enough
 * channels; optional fused post-ops (Relu/Clip/LeakyRelu, residual sum). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"

typedef struct conv_geom {
    int rank;                 /* 4, or 3 for 1-D (run as h = kh = 1, plain output) */
    int64_t n, c, h, w, m, g, kh, kw;
    occ_window win;
} conv_geom;

static occ_status conv_geometry(const occ_model *m, const occ_node *n, conv_geom *cg,
                                occ_error *e)
{
    occ_status st;
    const occ_tensor *x = occ_ops_in(m, n, 0), *w = occ_ops_in(m, n, 1),
                     *b = occ_ops_in(m, n, 2);
    if (!x || !w)
        return occ_fail(e, OCC_ERR_INVALID, "missing input or weights");
    if (x->ndim != 4 && x->ndim != 3)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "input of rank %d (1-D and 2-D convolution: "
                        "rank 3 or 4)", x->ndim);
    if (w->ndim != x->ndim)
        return occ_fail(e, OCC_ERR_SHAPE, "weights of rank %d, expected %d", w->ndim, x->ndim);
    const int r3 = x->ndim == 3;
    cg->rank = x->ndim;
    if (w->kind != OCC_TENSOR_WEIGHT)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "weights computed at run time are not supported");
    int64_t g;
    if ((st = occ_ops_attr_int(n, "group", 1, &g, e)))
        return st;
    cg->n = x->dims[0];
    cg->c = x->dims[1];
    cg->h = r3 ? 1 : x->dims[2];
    cg->w = x->dims[3 - r3];
    cg->m = w->dims[0];
    cg->kh = r3 ? 1 : w->dims[2];
    cg->kw = w->dims[3 - r3];
    if (g <= 0 || g > cg->c)
        return occ_fail(e, OCC_ERR_INVALID, "group = %lld out of range", (long long)g);
    cg->g = g;
    if (cg->c % g || cg->m % g)
        return occ_fail(e, OCC_ERR_SHAPE, "channels %lld/%lld not divisible by group %lld",
                        (long long)cg->c, (long long)cg->m, (long long)g);
    if (w->dims[1] != cg->c / g)
        return occ_fail(e, OCC_ERR_SHAPE, "weights have %lld input channels, expected %lld",
                        (long long)w->dims[1], (long long)(cg->c / g));
    if (b) {
        if (b->ndim != 1 || b->dims[0] != cg->m)
            return occ_fail(e, OCC_ERR_SHAPE, "bias must have shape [%lld]", (long long)cg->m);
        if (b->kind != OCC_TENSOR_WEIGHT)
            return occ_fail(e, OCC_ERR_UNSUPPORTED, "bias computed at run time is not supported");
    }
    const int64_t *ks;
    uint32_t kc;
    if ((st = occ_ops_attr_ints(n, "kernel_shape", 8, &ks, &kc, e)))
        return st;
    if (kc && (kc != (uint32_t)(x->ndim - 2) || ks[0] != w->dims[2] ||
               (!r3 && ks[1] != cg->kw)))
        return occ_fail(e, OCC_ERR_SHAPE, "kernel_shape does not match the weights");
    int64_t in[2] = {cg->h, cg->w}, k[2] = {cg->kh, cg->kw};
    return occ_ops_window_nd(n, x->ndim - 2, in + r3, k + r3, 0, &cg->win, e);
}

static occ_status conv_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    conv_geom cg;
    occ_status st = conv_geometry(m, n, &cg, e);
    if (st)
        return st;
    int64_t d[4] = {cg.n, cg.m, cg.win.out[0], cg.win.out[1]};
    if (cg.rank == 3)
        d[2] = cg.win.out[1];
    return occ_ops_set_out(m, n, 0, cg.rank, d, e);
}

static uint64_t conv_flops(const occ_model *m, const occ_node *n)
{
    conv_geom cg;
    if (conv_geometry(m, n, &cg, NULL))
        return 0;
    uint64_t outs = (uint64_t)cg.n * cg.m * cg.win.out[0] * cg.win.out[1];
    return outs * 2u * (uint64_t)(cg.c / cg.g) * cg.kh * cg.kw + (n->n_inputs > 2 ? outs : 0);
}

static int conv_layout(const occ_model *m, const occ_node *n, const dnnl_memory_desc_t *const *md)
{
    /* 1-D: plain in and out (a 4-D blocked layout of a rank-3 tensor would
     * puzzle every consumer) */
    const occ_tensor *x = occ_ops_in(m, n, 0);
    return x && x->ndim == 4;
}

typedef struct conv_state {
    dnnl_primitive_t prim;
    dnnl_memory_t src, wei, bias, dst, scratch;
    int64_t o0, o1;          /* output channels computed: [o0, o1) */
    int64_t cin, kh, kw, g;  /* for packing plain weight rows */
    dnnl_memory_desc_t wmd;  /* chosen weight layout */
    uint64_t wsize;          /* bytes of reordered weights in the blob */
    uint64_t blob_size;      /* weights + bias (64-aligned) */
    uint64_t scratch_size;   /* working buffer: [input reorder | oneDNN scratchpad] */
    uint64_t in_off;         /* where the oneDNN scratchpad starts in it (64-aligned) */
    uint64_t dst_offset;     /* bytes into the full output where [o0, o1) starts (batch 1) */
    uint64_t src_offset;     /* grouped part: bytes into the input where its groups start */
    int has_bias;
    char impl[64];           /* oneDNN implementation chosen */
    /* vtable path only: the state owns its blob and scratchpad */
    void *blob, *own_scratch;
    /* input reorder when the producer's layout is not the one chosen; its
     * destination is the start of the working buffer, not op memory: one
     * buffer per conv summed to 42 MB of resident state in efficientnet_v2_s
     * (refused --budget 32M), while the engine shares one working buffer */
    dnnl_primitive_t in_reorder;
    dnnl_memory_t in_user;
    occ_dnnl_scratch in_scratch; /* the input reorder's own, if it asks for one */
} conv_state;

static void conv_destroy(void *p)
{
    conv_state *s = p;
    if (!s)
        return;
    if (s->prim)
        dnnl_primitive_destroy(s->prim);
    if (s->in_reorder)
        dnnl_primitive_destroy(s->in_reorder);
    dnnl_memory_t mems[] = {s->src, s->wei, s->bias, s->dst, s->in_user, s->scratch};
    for (size_t i = 0; i < sizeof mems / sizeof mems[0]; i++)
        if (mems[i])
            dnnl_memory_destroy(mems[i]);
    occ_ops_free(s->blob);
    occ_dnnl_scratch_free(&s->in_scratch);
    occ_ops_free(s->own_scratch);
    free(s);
}

/* The operation descriptor of a convolution with the given algorithm. */
static dnnl_status_t conv_desc(const conv_geom *cg, dnnl_alg_kind_t alg, int has_bias,
                               const dnnl_memory_desc_t *src, dnnl_format_tag_t dst_tag,
                               dnnl_convolution_desc_t *cd)
{
    dnnl_memory_desc_t smd, wmd, bmd, dmd;
    dnnl_dims_t sd = {cg->n, cg->c, cg->h, cg->w};
    dnnl_dims_t dd = {cg->n, cg->m, cg->win.out[0], cg->win.out[1]};
    dnnl_dims_t bd = {cg->m};
    dnnl_dims_t strides = {cg->win.s[0], cg->win.s[1]};
    dnnl_dims_t dil = {cg->win.d[0] - 1, cg->win.d[1] - 1};
    dnnl_dims_t pl = {cg->win.pb[0], cg->win.pb[1]}, pr = {cg->win.pe[0], cg->win.pe[1]};
    dnnl_status_t s;
    if (src)
        smd = *src;
    else if ((s = dnnl_memory_desc_init_by_tag(&smd, 4, sd, dnnl_f32, dnnl_format_tag_any)))
        return s;
    if ((s = dnnl_memory_desc_init_by_tag(&dmd, 4, dd, dnnl_f32, dst_tag)))
        return s;
    if (cg->g == 1) {
        dnnl_dims_t wd = {cg->m, cg->c, cg->kh, cg->kw};
        s = dnnl_memory_desc_init_by_tag(&wmd, 4, wd, dnnl_f32, dnnl_format_tag_any);
    } else {
        dnnl_dims_t wd = {cg->g, cg->m / cg->g, cg->c / cg->g, cg->kh, cg->kw};
        s = dnnl_memory_desc_init_by_tag(&wmd, 5, wd, dnnl_f32, dnnl_format_tag_any);
    }
    if (s)
        return s;
    if ((s = dnnl_memory_desc_init_by_tag(&bmd, 1, bd, dnnl_f32, dnnl_x)))
        return s;
    return dnnl_dilated_convolution_forward_desc_init(cd, dnnl_forward_inference, alg, &smd, &wmd,
                                                      has_bias ? &bmd : NULL, &dmd, strides, dil,
                                                      pl, pr);
}

/* Tries to build a primitive descriptor with the given algorithm. */
static dnnl_status_t conv_pd(const conv_geom *cg, dnnl_alg_kind_t alg, int has_bias,
                             const dnnl_memory_desc_t *src, dnnl_format_tag_t dst_tag,
                             const dnnl_primitive_attr_t attr, dnnl_engine_t eng,
                             dnnl_primitive_desc_t *pd)
{
    dnnl_convolution_desc_t cd;
    dnnl_status_t s = conv_desc(cg, alg, has_bias, src, dst_tag, &cd);
    if (s)
        return s;
    return dnnl_primitive_desc_create(pd, &cd, attr, eng, NULL);
}

/* The blocked activation layout convolutions hand each other (see conv_make). */
dnnl_format_tag_t occ_conv_canonical_tag(void)
{
    return (dnnl_get_effective_cpu_isa() & dnnl_cpu_isa_avx512_core) == dnnl_cpu_isa_avx512_core
               ? dnnl_nChw16c
               : dnnl_nChw8c;
}

/* The primitive attributes of a Conv: user scratchpad (the working buffer
 * the caller provides and counts) and the fused post-ops. */
static occ_status conv_attr(const occ_op_prep *p, dnnl_primitive_attr_t *out, occ_error *e)
{
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    occ_status st;
    *out = NULL;
    if ((st = occ_dnnl_check(dnnl_primitive_attr_create(&attr), "attr", e)))
        return st;
    if ((st = occ_dnnl_check(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user),
                             "scratchpad mode", e)))
        goto fail;
    if (p->n_post) {
        if ((st = occ_dnnl_check(dnnl_post_ops_create(&po), "post-ops", e)))
            goto fail;
        for (int i = 0; i < p->n_post && !st; i++) {
            const occ_post *q = &p->post[i];
            if (q->kind == OCC_POST_SUM)
                st = occ_dnnl_check(dnnl_post_ops_append_sum(po, 1.0f), "sum post-op", e);
            else if (q->kind == OCC_POST_RELU)
                st = occ_dnnl_check(
                    dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, q->a, 0.0f),
                    "relu post-op", e);
            else
                st = occ_dnnl_check(
                    dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_clip, q->a, q->b),
                    "clip post-op", e);
        }
        if (st)
            goto fail;
        if ((st = occ_dnnl_check(dnnl_primitive_attr_set_post_ops(attr, po), "post-ops", e)))
            goto fail;
        dnnl_post_ops_destroy(po); /* the attributes keep a copy */
    }
    *out = attr;
    return OCC_OK;
fail:
    if (po)
        dnnl_post_ops_destroy(po);
    dnnl_primitive_attr_destroy(attr);
    return st;
}

/* Makes s's primitive from pd and records which kernel oneDNN picked. */
static occ_status conv_prim(conv_state *s, dnnl_primitive_desc_t pd, const char *what, occ_error *e)
{
    occ_status st = occ_dnnl_check(dnnl_primitive_create(&s->prim, pd), what, e);
    if (st)
        return st;
    const char *impl = "";
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    snprintf(s->impl, sizeof s->impl, "%s", impl ? impl : "");
    return OCC_OK;
}

/* The reorder of s's input from the layout its producer wrote (from) to the
 * one the kernel reads (to), its user-mode scratchpad, and the room the
 * reordered copy takes at the front of the working buffer. */
static occ_status conv_in_reorder(conv_state *s, const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to,
                                  dnnl_engine_t eng, const char *what, occ_error *e)
{
    dnnl_primitive_desc_t rpd;
    dnnl_primitive_attr_t rattr = NULL;
    occ_status st = occ_dnnl_user_attr(&rattr, e);
    if (st)
        return st;
    st = occ_dnnl_check(dnnl_reorder_primitive_desc_create(&rpd, from, eng, to, eng, rattr), what, e);
    dnnl_primitive_attr_destroy(rattr);
    if (st)
        return st;
    if (!(st = occ_dnnl_check(dnnl_primitive_create(&s->in_reorder, rpd), what, e)))
        st = occ_dnnl_scratch_init(&s->in_scratch, rpd, eng, e);
    dnnl_primitive_desc_destroy(rpd);
    if (st || (st = occ_dnnl_mem(&s->in_user, from, eng, NULL, e)))
        return st;
    s->in_off = (dnnl_memory_desc_get_size(to) + 63u) & ~UINT64_C(63);
    s->scratch_size += s->in_off;
    return OCC_OK;
}

static occ_status conv_make(occ_op_prep *p, int64_t o0, int64_t o1, conv_state **out,
                            occ_error *e)
{
    conv_geom cg;
    occ_status st = conv_geometry(p->m, p->n, &cg, e);
    *out = NULL;
    if (st)
        return st;
    if (o1 <= 0 || o1 > cg.m)
        o1 = cg.m;
    /* a grouped 1-D Conv (plain layout) splits at group boundaries: a part
     * is the convolution of its groups' input channels (wav2vec2's 19 MB
     * positional conv, 16 groups, must stream at 32M) */
    const int64_t mper = cg.m / cg.g;
    const int part = o0 || o1 != cg.m;
    if (o0 < 0 || o0 >= o1 ||
        (part && cg.g != 1 && (cg.rank != 3 || o0 % mper || o1 % mper)))
        return occ_fail(e, OCC_ERR_INTERNAL, "bad output-channel range [%lld, %lld)",
                        (long long)o0, (long long)o1);
    int64_t full_m = cg.m;
    uint64_t src_offset = 0;
    if (part && cg.g != 1) {
        int64_t cin = cg.c / cg.g, gn = (o1 - o0) / mper;
        src_offset = (uint64_t)(o0 / mper) * (uint64_t)cin * (uint64_t)cg.h * (uint64_t)cg.w * 4u;
        cg.g = gn;
        cg.c = gn * cin;
    }
    cg.m = o1 - o0;
    if ((o0 || o1 != full_m) && cg.n != 1)
        return occ_fail(e, OCC_ERR_INTERNAL, "partitioned convolution needs batch 1");
    conv_state *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    s->o0 = o0;
    s->o1 = o1;
    s->src_offset = src_offset;
    s->cin = cg.c / cg.g;
    s->kh = cg.kh;
    s->kw = cg.kw;
    s->g = cg.g;
    s->dst_offset = (uint64_t)o0 * (uint64_t)cg.win.out[0] * (uint64_t)cg.win.out[1] * 4u;
    (void)full_m;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    int has_bias = p->n->n_inputs > 2 && p->n->inputs[2] >= 0;
    s->has_bias = has_bias;

    if ((st = conv_attr(p, &attr, e)))
        goto fail;
    /* Winograd pays off for 3x3 stride-1 layers with enough channels (measured
     * 1.3-3x faster than direct on this class of CPU); otherwise direct. The
     * decision uses the whole layer's channel counts so that every piece of a
     * partitioned layer uses the same algorithm as the unpartitioned one. */
    int wino = !p->no_winograd && cg.g == 1 && cg.kh == 3 && cg.kw == 3 && cg.win.s[0] == 1 &&
               cg.win.s[1] == 1 && cg.win.d[0] == 1 && cg.win.d[1] == 1 && cg.c >= 32 &&
               full_m >= 32;
    /* Layouts: keep one canonical blocked layout between convs so that no
     * reorders are needed and Winograd (blocked only) is possible: nChw16c
     * where oneDNN runs AVX-512 kernels, nChw8c where it runs AVX2 ones (its
     * AVX2 direct kernels take no 16c layout; asking for it got a reference
     * kernel or a reorder per layer). Try, in order: (the producer's layout
     * -> canonical), (any -> canonical), (any -> any); the first that is not
     * a reference kernel wins. */
    const dnnl_memory_desc_t *in_blk = (p->in_md && p->in_md[0]) ? p->in_md[0] : NULL;
    const dnnl_format_tag_t canon = occ_conv_canonical_tag();
    struct {
        const dnnl_memory_desc_t *src;
        dnnl_format_tag_t dst;
    } cand[3] = {{in_blk, canon}, {NULL, canon}, {NULL, dnnl_format_tag_any}};
    dnnl_status_t ds = dnnl_unimplemented;
    /* 1-D (rank 3): the output must be plain (conv_layout; a blocked 4-D
     * layout of a rank-3 tensor cannot be reordered to its plain shadow),
     * so only the fallback below, with a plain nchw destination */
    for (int c = cg.rank == 3 ? 3 : in_blk ? 0 : 1; c < 3 && !pd; c++) {
        for (int a = wino ? 0 : 1; a < 2 && !pd; a++) {
            dnnl_primitive_desc_t t = NULL;
            ds = conv_pd(&cg, a == 0 ? dnnl_convolution_winograd : dnnl_convolution_direct,
                         has_bias, cand[c].src, cand[c].dst, attr, p->eng, &t);
            if (ds != dnnl_success)
                continue;
            const char *impl = "";
            dnnl_primitive_desc_query(t, dnnl_query_impl_info_str, 0, &impl);
            if (impl && strncmp(impl, "ref", 3) == 0 && c < 2) {
                dnnl_primitive_desc_destroy(t);
                continue;
            }
            pd = t;
        }
    }
    if (!pd)
        ds = conv_pd(&cg, dnnl_convolution_direct, has_bias, NULL,
                     cg.rank == 3 ? dnnl_nchw : dnnl_format_tag_any, attr, p->eng, &pd);
    if ((st = occ_dnnl_check(ds, "convolution", e)))
        goto fail;
    if ((st = conv_prim(s, pd, "convolution", e)))
        goto fail;

    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    const dnnl_memory_desc_t *wmd = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *dmd = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    const dnnl_memory_desc_t *spmd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    s->wmd = *wmd;
    s->wsize = dnnl_memory_desc_get_size(wmd);
    s->blob_size = (s->wsize + 63u) & ~UINT64_C(63);
    if (has_bias)
        s->blob_size += ((uint64_t)cg.m * 4u + 63u) & ~UINT64_C(63);
    s->scratch_size = spmd ? dnnl_memory_desc_get_size(spmd) : 0;
    if ((st = occ_dnnl_mem(&s->wei, wmd, p->eng, NULL, e)))
        goto fail;
    if (has_bias) {
        dnnl_memory_desc_t bmd;
        int64_t bd[1] = {cg.m};
        if ((st = occ_dnnl_plain_md(&bmd, 1, bd, e)) ||
            (st = occ_dnnl_mem(&s->bias, &bmd, p->eng, NULL, e)))
            goto fail;
    }
    if (s->scratch_size && (st = occ_dnnl_mem(&s->scratch, spmd, p->eng, NULL, e)))
        goto fail;
    if ((st = occ_dnnl_mem(&s->src, smd, p->eng, NULL, e)))
        goto fail;
    if ((st = occ_dnnl_mem(&s->dst, dmd, p->eng, NULL, e)))
        goto fail;

    /* source layout: whatever the producer wrote; reorder if it differs */
    dnnl_memory_desc_t in_md;
    if (in_blk)
        in_md = *in_blk;
    else {
        int64_t sd[4] = {cg.n, cg.c, cg.h, cg.w};
        if ((st = occ_dnnl_plain_md(&in_md, 4, sd, e)))
            goto fail;
    }
    if (!dnnl_memory_desc_equal(&in_md, smd) &&
        (st = conv_in_reorder(s, &in_md, smd, p->eng, "input reorder", e)))
        goto fail;
    p->out_blocked = !occ_dnnl_md_is_plain(dmd);
    p->out_md = *dmd;
    dnnl_primitive_desc_destroy(pd);
    dnnl_primitive_attr_destroy(attr);
    *out = s;
    return OCC_OK;
fail:
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    conv_destroy(s);
    return st;
}

occ_status occ_conv_part_prepare(occ_op_prep *p, int64_t o0, int64_t o1, void **state,
                                 occ_error *e)
{
    conv_state *s = NULL;
    occ_status st = conv_make(p, o0, o1, &s, e);
    *state = s;
    return st;
}

void occ_conv_part_info(const void *state, occ_conv_info *info)
{
    const conv_state *s = state;
    info->blob_size = s->blob_size;
    info->scratch_size = s->scratch_size;
    info->dst_offset = s->dst_offset;
    info->reorders_input = s->in_reorder != NULL;
    info->o0 = s->o0;
    info->o1 = s->o1;
    info->impl = s->impl;
}

occ_status occ_conv_part_pack(void *state, dnnl_engine_t eng, const float *w_rows,
                              const float *bias_rows, void *blob, occ_error *e)
{
    conv_state *s = state;
    dnnl_memory_desc_t wplain;
    occ_status st;
    int64_t m = s->o1 - s->o0;
    if (s->g == 1) {
        int64_t wd[4] = {m, s->cin, s->kh, s->kw};
        st = occ_dnnl_plain_md(&wplain, 4, wd, e);
    } else {
        int64_t wd[5] = {s->g, m / s->g, s->cin, s->kh, s->kw};
        st = occ_dnnl_plain_md(&wplain, 5, wd, e);
    }
    if (st)
        return st;
    if ((st = occ_dnnl_reorder_into(eng, &wplain, w_rows, &s->wmd, blob, e)))
        return st;
    if (s->has_bias)
        memcpy((uint8_t *)blob + ((s->wsize + 63u) & ~UINT64_C(63)), bias_rows, (size_t)m * 4u);
    return OCC_OK;
}

occ_status occ_conv_part_run(void *state, const float *src, float *dst, const void *blob,
                             void *scratch, dnnl_stream_t stream, occ_error *e)
{
    conv_state *s = state;
    occ_status st;
    src = (const float *)(const void *)((const uint8_t *)src + s->src_offset);
    if (s->in_reorder) {
        dnnl_memory_set_data_handle(s->src, scratch);
        dnnl_memory_set_data_handle(s->in_user, (void *)src);
        dnnl_exec_arg_t ra[3] = {{DNNL_ARG_FROM, s->in_user}, {DNNL_ARG_TO, s->src}};
        if ((st = occ_dnnl_exec(s->in_reorder, stream, occ_dnnl_scratch_arg(&s->in_scratch, ra, 2),
                                ra, e)))
            return st;
    } else {
        dnnl_memory_set_data_handle(s->src, (void *)src);
    }
    dnnl_memory_set_data_handle(s->dst, (uint8_t *)dst + s->dst_offset);
    dnnl_memory_set_data_handle(s->wei, (void *)blob);
    dnnl_exec_arg_t args[5];
    int n = 0;
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SRC, s->src};
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, s->wei};
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_DST, s->dst};
    if (s->bias) {
        dnnl_memory_set_data_handle(s->bias,
                                    (uint8_t *)blob + ((s->wsize + 63u) & ~UINT64_C(63)));
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, s->bias};
    }
    if (s->scratch) {
        dnnl_memory_set_data_handle(s->scratch, (uint8_t *)scratch + s->in_off);
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, s->scratch};
    }
    return occ_dnnl_exec(s->prim, stream, n, args, e);
}

void occ_conv_part_destroy(void *state)
{
    conv_destroy(state);
}

/* The format tag of a part's source layout (4-D), 0 if none of those a
 * band takes. */
static dnnl_format_tag_t conv_src_tag(const conv_state *ps)
{
    const dnnl_memory_desc_t *md = NULL;
    if (dnnl_memory_get_memory_desc(ps->src, &md) != dnnl_success || !md || md->ndims != 4)
        return (dnnl_format_tag_t)0;
    static const dnnl_format_tag_t tags[] = {dnnl_nchw, dnnl_nhwc, dnnl_nChw8c, dnnl_nChw16c};
    for (size_t i = 0; i < sizeof tags / sizeof tags[0]; i++) {
        dnnl_memory_desc_t t;
        if (dnnl_memory_desc_init_by_tag(&t, 4, md->dims, dnnl_f32, tags[i]) == dnnl_success &&
            dnnl_memory_desc_equal(&t, md))
            return tags[i];
    }
    return (dnnl_format_tag_t)0;
}

/* ---- strips (the engine's strip chains, src/engine/strips.c) ----
 * The whole layer (part o0 = 0, o1 = 0) over a band of rows: the band's own
 * height and top/bottom padding, src and dst in the given format tags, the
 * part's weight layout (so the part's blob serves every band). Direct only:
 * each output pixel is then computed as in the whole layer. */
occ_status occ_conv_strip_prepare(occ_op_prep *p, const void *part, const occ_strip_geom *g,
                                  void **state, occ_error *e)
{
    const conv_state *ps = part;
    conv_geom cg;
    occ_status st = conv_geometry(p->m, p->n, &cg, e);
    *state = NULL;
    if (st)
        return st;
    if (cg.rank != 4 || ps->o0 != 0 || ps->o1 != cg.m || cg.n != 1)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "strips: a whole 2-D layer of batch 1 only");
    cg.h = g->h_in;
    cg.win.out[0] = g->h_out;
    cg.win.pb[0] = g->pt;
    cg.win.pe[0] = g->pb;
    conv_state *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    s->o0 = 0;
    s->o1 = cg.m;
    s->wsize = ps->wsize;
    s->has_bias = ps->has_bias;
    s->wmd = ps->wmd;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_memory_desc_t smd, umd;
    dnnl_dims_t sd = {cg.n, cg.c, cg.h, cg.w};
    /* the kernel takes its source in the layout the whole layer's does (a
     * layer that converts its input converts each band, as it would) */
    dnnl_format_tag_t ktag = conv_src_tag(ps);
    if (!ktag) {
        st = occ_fail(e, OCC_ERR_UNSUPPORTED, "strips: the layer's source layout");
        goto fail;
    }
    if ((st = conv_attr(p, &attr, e)) ||
        (st = occ_dnnl_check(dnnl_memory_desc_init_by_tag(&smd, 4, sd, dnnl_f32, ktag),
                             "strip source", e)) ||
        (st = occ_dnnl_check(dnnl_memory_desc_init_by_tag(&umd, 4, sd, dnnl_f32, g->src_tag),
                             "strip source", e)))
        goto fail;
    dnnl_convolution_desc_t cd;
    dnnl_primitive_desc_iterator_t pit = NULL;
    if ((st = occ_dnnl_check(conv_desc(&cg, dnnl_convolution_direct, ps->has_bias, &smd,
                                       g->dst_tag, &cd),
                             "strip convolution", e)) ||
        (st = occ_dnnl_check(dnnl_primitive_desc_iterator_create(&pit, &cd, attr, p->eng, NULL),
                             "strip convolution", e)))
        goto fail;
    /* the first implementation that takes the part's weight layout */
    do {
        dnnl_primitive_desc_t t = dnnl_primitive_desc_iterator_fetch(pit);
        const dnnl_memory_desc_t *wmd =
            t ? dnnl_primitive_desc_query_md(t, dnnl_query_weights_md, 0) : NULL;
        if (wmd && dnnl_memory_desc_equal(wmd, &ps->wmd)) {
            pd = t;
            break;
        }
        if (t)
            dnnl_primitive_desc_destroy(t);
    } while (dnnl_primitive_desc_iterator_next(pit) == dnnl_success);
    dnnl_primitive_desc_iterator_destroy(pit);
    if (!pd) {
        st = occ_fail(e, OCC_ERR_UNSUPPORTED,
                      "strips: no convolution kernel for a band takes the layer's weight layout");
        goto fail;
    }
    if ((st = conv_prim(s, pd, "strip convolution", e)))
        goto fail;
    const dnnl_memory_desc_t *dmd = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    const dnnl_memory_desc_t *spmd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    s->scratch_size = spmd ? dnnl_memory_desc_get_size(spmd) : 0;
    if ((st = occ_dnnl_mem(&s->wei, &ps->wmd, p->eng, NULL, e)) ||
        (st = occ_dnnl_mem(&s->src, &smd, p->eng, NULL, e)) ||
        (st = occ_dnnl_mem(&s->dst, dmd, p->eng, NULL, e)))
        goto fail;
    if (s->has_bias) {
        dnnl_memory_desc_t bmd;
        int64_t bd[1] = {cg.m};
        if ((st = occ_dnnl_plain_md(&bmd, 1, bd, e)) ||
            (st = occ_dnnl_mem(&s->bias, &bmd, p->eng, NULL, e)))
            goto fail;
    }
    if (s->scratch_size && (st = occ_dnnl_mem(&s->scratch, spmd, p->eng, NULL, e)))
        goto fail;
    if (!dnnl_memory_desc_equal(&umd, &smd) &&
        (st = conv_in_reorder(s, &umd, &smd, p->eng, "strip input reorder", e)))
        goto fail;
    dnnl_primitive_desc_destroy(pd);
    dnnl_primitive_attr_destroy(attr);
    *state = s;
    return OCC_OK;
fail:
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    if (attr)
        dnnl_primitive_attr_destroy(attr);
    conv_destroy(s);
    return st;
}

uint64_t occ_conv_strip_scratch(const void *state)
{
    return ((const conv_state *)state)->scratch_size;
}

/* The self-contained vtable path (tests, tools): one part, owns its blob. */
static occ_status conv_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    conv_state *s = NULL;
    occ_status st = conv_make(p, 0, 0, &s, e);
    if (st)
        return st;
    s->blob = occ_ops_alloc(s->blob_size);
    s->own_scratch = s->scratch_size ? occ_ops_alloc(s->scratch_size) : NULL;
    if (!s->blob || (s->scratch_size && !s->own_scratch)) {
        conv_destroy(s);
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    }
    int has_bias = p->n->n_inputs > 2 && p->n->inputs[2] >= 0;
    if ((st = occ_conv_part_pack(s, p->eng, p->w[1], has_bias ? p->w[2] : NULL, s->blob, e))) {
        conv_destroy(s);
        return st;
    }
    *state = s;
    return OCC_OK;
}

static occ_status conv_run(void *state, const occ_op_exec *x, occ_error *e)
{
    conv_state *s = state;
    return occ_conv_part_run(s, x->in[0], x->out[0], s->blob, s->own_scratch, x->stream, e);
}

const occ_op_vtable occ_op_conv = {
    .op = "Conv",
    .min_in = 2,
    .max_in = 3,
    .n_out = 1,
    .flags = OCC_OPF_COPIES_WEIGHTS,
    .infer = conv_infer,
    .flops = conv_flops,
    .layout = conv_layout,
    .prepare = conv_prepare,
    .run = conv_run,
    .destroy = conv_destroy,
};
