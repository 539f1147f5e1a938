/* ConvTranspose (1-D, 2-D, 3-D): oneDNN deconvolution on plain NC[D]HW data.
 * ONNX's weights [C, M/group, k...] are oneDNN's "iohw" (grouped: "giohw"),
 * reordered once at prepare into the layout the implementation wants.
 *
 * Geometry (ONNX): out = s * (in - 1) + output_padding + (k - 1) * d + 1
 * - pad_begin - pad_end. With output_shape (or auto_pad SAME_*) the total
 * padding follows from the requested size and is split begin/end as the
 * spec says (SAME_UPPER puts the smaller half first). oneDNN has no
 * output_padding: it becomes a smaller right padding, which may go negative
 * (oneDNN takes that: the extra rows only see the bias). 1-D runs as 2-D with
 * a height of 1. */
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"

typedef struct deconv_geom {
    int nsp;                  /* spatial dims: 1..3 */
    int64_t n, c, m, g;
    int64_t in[3], k[3], s[3], d[3], pb[3], pe[3], op[3], out[3];
} deconv_geom;

static occ_status ints_n(const occ_node *n, const char *name, int count, int64_t def,
                         int64_t lo, int64_t *out, occ_error *e)
{
    const int64_t *v;
    uint32_t c;
    occ_status st = occ_ops_attr_ints(n, name, 16, &v, &c, e);
    if (st)
        return st;
    if (c && c != (uint32_t)count)
        return occ_fail(e, OCC_ERR_INVALID, "%s has %u values, expected %d", name, c, count);
    for (int i = 0; i < count; i++) {
        out[i] = c ? v[i] : def;
        if (out[i] < lo || out[i] > (1 << 20))
            return occ_fail(e, OCC_ERR_INVALID, "%s value %lld out of range", name,
                            (long long)out[i]);
    }
    return OCC_OK;
}

static occ_status deconv_geometry(const occ_model *m, const occ_node *n, deconv_geom *g,
                                  occ_error *e)
{
    occ_status st;
    const occ_tensor *x = occ_ops_in(m, n, 0), *w = occ_ops_in(m, n, 1), *b = occ_ops_in(m, n, 2);
    memset(g, 0, sizeof *g);
    if (x->ndim < 3 || x->ndim > 5)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "input of rank %d (1-D to 3-D: rank 3 to 5)",
                        x->ndim);
    if (!w || w->ndim != x->ndim)
        return occ_fail(e, OCC_ERR_SHAPE, "weights must have rank %d", x->ndim);
    if (w->kind != OCC_TENSOR_WEIGHT)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "weights computed at run time are not supported "
                        "(ConvTranspose needs constant W)");
    g->nsp = x->ndim - 2;
    if ((st = occ_ops_attr_int(n, "group", 1, &g->g, e)))
        return st;
    g->n = x->dims[0];
    g->c = x->dims[1];
    if (g->g <= 0 || g->c % g->g)
        return occ_fail(e, OCC_ERR_INVALID, "group = %lld does not divide %lld channels",
                        (long long)g->g, (long long)g->c);
    if (w->dims[0] != g->c)
        return occ_fail(e, OCC_ERR_SHAPE, "weights have %lld input channels, the input %lld",
                        (long long)w->dims[0], (long long)g->c);
    g->m = w->dims[1] * g->g;
    if (b) {
        if (b->ndim != 1 || b->dims[0] != g->m)
            return occ_fail(e, OCC_ERR_SHAPE, "bias must have shape [%lld]", (long long)g->m);
        if (b->kind != OCC_TENSOR_WEIGHT)
            return occ_fail(e, OCC_ERR_UNSUPPORTED, "bias computed at run time is not supported");
    }
    int ns = g->nsp;
    int64_t ks[3], pads[6], oshape[5];
    for (int i = 0; i < ns; i++) {
        g->in[i] = x->dims[2 + i];
        g->k[i] = w->dims[2 + i];
        /* keeps stride * input and the output formula far from overflow */
        if (g->in[i] > (1 << 24) || g->k[i] > (1 << 20))
            return occ_fail(e, OCC_ERR_UNSUPPORTED, "spatial size %lld or kernel %lld too large",
                            (long long)g->in[i], (long long)g->k[i]);
    }
    if ((st = ints_n(n, "kernel_shape", ns, 0, 0, ks, e)))
        return st;
    if (occ_ops_attr(n, "kernel_shape"))
        for (int i = 0; i < ns; i++)
            if (ks[i] != g->k[i])
                return occ_fail(e, OCC_ERR_SHAPE, "kernel_shape does not match the weights");
    if ((st = ints_n(n, "strides", ns, 1, 1, g->s, e)) ||
        (st = ints_n(n, "dilations", ns, 1, 1, g->d, e)) ||
        (st = ints_n(n, "output_padding", ns, 0, 0, g->op, e)) ||
        (st = ints_n(n, "pads", 2 * ns, 0, 0, pads, e)))
        return st;
    for (int i = 0; i < ns; i++)
        if (g->op[i] >= g->s[i] && g->op[i] >= g->d[i])
            return occ_fail(e, OCC_ERR_INVALID, "output_padding %lld must be smaller than the "
                            "stride or the dilation", (long long)g->op[i]);
    const char *ap;
    if ((st = occ_ops_attr_str(n, "auto_pad", "NOTSET", &ap, e)))
        return st;
    int upper = strcmp(ap, "SAME_UPPER") == 0, same = upper || strcmp(ap, "SAME_LOWER") == 0;
    if (!same && strcmp(ap, "NOTSET") && strcmp(ap, "VALID"))
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "auto_pad = %s is not supported", ap);
    const occ_attr *os = occ_ops_attr(n, "output_shape");
    int has_os = os != NULL;
    if (has_os) {
        /* spatial sizes, or the whole shape */
        if (os->type != OCC_ATTR_INTS || (os->count != (uint32_t)ns && os->count != (uint32_t)ns + 2))
            return occ_fail(e, OCC_ERR_INVALID, "output_shape must list %d spatial sizes", ns);
        for (int i = 0; i < ns; i++) {
            oshape[i] = os->ints[os->count - (uint32_t)ns + (uint32_t)i];
            if (oshape[i] <= 0 || oshape[i] > (1 << 24))
                return occ_fail(e, OCC_ERR_INVALID, "output_shape value out of range");
        }
    } else if (same) {
        for (int i = 0; i < ns; i++)
            oshape[i] = g->in[i] * g->s[i];
        has_os = 1;
    }
    for (int i = 0; i < ns; i++) {
        int64_t ext = (g->k[i] - 1) * g->d[i] + 1;
        int64_t full = g->s[i] * (g->in[i] - 1) + g->op[i] + ext;
        if (has_os) {
            /* negative when output_shape asks for more than the input gives:
             * the extra trailing rows see only the bias (half rounds down) */
            int64_t total = full - oshape[i];
            int64_t half = total >= 0 ? total / 2 : -((1 - total) / 2);
            if (total < -(1 << 20))
                return occ_fail(e, OCC_ERR_SHAPE, "output_shape %lld far larger than the %lld "
                                "the input gives", (long long)oshape[i], (long long)full);
            g->pb[i] = upper ? half : total - half;
            g->pe[i] = total - g->pb[i];
        } else if (strcmp(ap, "VALID") == 0) {
            g->pb[i] = g->pe[i] = 0;
        } else {
            g->pb[i] = pads[i];
            g->pe[i] = pads[i + ns];
        }
        g->out[i] = full - g->pb[i] - g->pe[i];
        if (g->out[i] <= 0)
            return occ_fail(e, OCC_ERR_SHAPE, "empty output in spatial dim %d", i);
    }
    return OCC_OK;
}

static occ_status deconv_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    deconv_geom g;
    occ_status st = deconv_geometry(m, n, &g, e);
    if (st)
        return st;
    int64_t d[5] = {g.n, g.m};
    for (int i = 0; i < g.nsp; i++)
        d[2 + i] = g.out[i];
    return occ_ops_set_out(m, n, 0, g.nsp + 2, d, e);
}

static uint64_t deconv_flops(const occ_model *m, const occ_node *n)
{
    deconv_geom g;
    if (deconv_geometry(m, n, &g, NULL))
        return 0;
    uint64_t f = 2u * (uint64_t)g.n * (uint64_t)g.c * (uint64_t)(g.m / g.g);
    for (int i = 0; i < g.nsp; i++)
        f *= (uint64_t)g.in[i] * (uint64_t)g.k[i];
    return f;
}

typedef struct deconv_state {
    dnnl_primitive_t prim;
    dnnl_memory_t src, wei, bias, dst;
    void *wbuf, *bbuf;
    occ_dnnl_scratch scratch;
} deconv_state;

static void deconv_destroy(void *p)
{
    deconv_state *s = p;
    if (!s)
        return;
    if (s->prim)
        dnnl_primitive_destroy(s->prim);
    dnnl_memory_t mems[] = {s->src, s->wei, s->bias, s->dst};
    for (size_t i = 0; i < sizeof mems / sizeof mems[0]; i++)
        if (mems[i])
            dnnl_memory_destroy(mems[i]);
    occ_ops_free(s->wbuf);
    occ_ops_free(s->bbuf);
    occ_dnnl_scratch_free(&s->scratch);
    free(s);
}

static occ_status deconv_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    deconv_geom g;
    occ_status st = deconv_geometry(p->m, p->n, &g, e);
    if (st)
        return st;
    deconv_state *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    /* 1-D as 2-D: a leading spatial dim of 1 */
    const int ns = g.nsp == 1 ? 2 : g.nsp, off = ns - g.nsp;
    int64_t in[3] = {1, 1, 1}, k[3] = {1, 1, 1}, out[3] = {1, 1, 1};
    dnnl_dims_t strides = {1, 1, 1}, dil = {0, 0, 0}, pl = {0, 0, 0}, pr = {0, 0, 0};
    for (int i = 0; i < g.nsp; i++) {
        in[off + i] = g.in[i];
        k[off + i] = g.k[i];
        out[off + i] = g.out[i];
        strides[off + i] = g.s[i];
        dil[off + i] = g.d[i] - 1;
        pl[off + i] = g.pb[i];
        pr[off + i] = g.pe[i] - g.op[i];
    }
    int64_t sd[5] = {g.n, g.c}, dd[5] = {g.n, g.m};
    for (int i = 0; i < ns; i++) {
        sd[2 + i] = in[i];
        dd[2 + i] = out[i];
    }
    /* oneDNN's logical weight dims are (g,) o, i, k...: tags say where ONNX's
     * i-major data sits */
    dnnl_dims_t wl = {0};
    int wnd;
    dnnl_format_tag_t wtag;
    if (g.g == 1) {
        wnd = ns + 2;
        wl[0] = g.m;
        wl[1] = g.c;
        for (int i = 0; i < ns; i++)
            wl[2 + i] = k[i];
        wtag = ns == 2 ? dnnl_iohw : dnnl_iodhw;
    } else {
        wnd = ns + 3;
        wl[0] = g.g;
        wl[1] = g.m / g.g;
        wl[2] = g.c / g.g;
        for (int i = 0; i < ns; i++)
            wl[3 + i] = k[i];
        wtag = ns == 2 ? dnnl_giohw : dnnl_giodhw;
    }
    dnnl_memory_desc_t smd, dmd, wany, wuser, bmd;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_deconvolution_desc_t dsc;
    int has_bias = p->n->n_inputs > 2 && p->n->inputs[2] >= 0;
    int64_t bd[1] = {g.m};
    if ((st = occ_dnnl_plain_md(&smd, ns + 2, sd, e)) ||
        (st = occ_dnnl_plain_md(&dmd, ns + 2, dd, e)) ||
        (st = occ_dnnl_plain_md(&bmd, 1, bd, e)) ||
        (st = occ_dnnl_check(dnnl_memory_desc_init_by_tag(&wany, wnd, wl, dnnl_f32,
                                                          dnnl_format_tag_any),
                             "deconvolution weights", e)) ||
        (st = occ_dnnl_check(dnnl_memory_desc_init_by_tag(&wuser, wnd, wl, dnnl_f32, wtag),
                             "deconvolution weights", e)))
        goto fail;
    if ((st = occ_dnnl_check(dnnl_dilated_deconvolution_forward_desc_init(
                                 &dsc, dnnl_forward_inference, dnnl_deconvolution_direct, &smd,
                                 &wany, has_bias ? &bmd : NULL, &dmd, strides, dil, pl, pr),
                             "deconvolution", e)) ||
        (st = occ_dnnl_user_attr(&attr, e)) ||
        (st = occ_dnnl_check(dnnl_primitive_desc_create(&pd, &dsc, attr, p->eng, NULL),
                             "deconvolution", e)) ||
        (st = occ_dnnl_scratch_init(&s->scratch, pd, p->eng, e)))
        goto fail;
    const dnnl_memory_desc_t *wmd = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    if ((st = occ_dnnl_reorder_new(p->eng, &wuser, p->w[1], wmd, &s->wbuf, e)) ||
        (st = occ_dnnl_mem(&s->wei, wmd, p->eng, s->wbuf, e)) ||
        (st = occ_dnnl_mem(&s->src, &smd, p->eng, NULL, e)) ||
        (st = occ_dnnl_mem(&s->dst, &dmd, p->eng, NULL, e)))
        goto fail;
    if (has_bias) {
        s->bbuf = occ_ops_alloc((uint64_t)g.m * sizeof(float));
        if (!s->bbuf) {
            st = occ_fail(e, OCC_ERR_NOMEM, "out of memory");
            goto fail;
        }
        memcpy(s->bbuf, p->w[2], (size_t)g.m * sizeof(float));
        if ((st = occ_dnnl_mem(&s->bias, &bmd, p->eng, s->bbuf, e)))
            goto fail;
    }
    if ((st = occ_dnnl_check(dnnl_primitive_create(&s->prim, pd), "deconvolution", e)))
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
    deconv_destroy(s);
    return st;
}

static occ_status deconv_run(void *state, const occ_op_exec *x, occ_error *e)
{
    deconv_state *s = state;
    const float *in = x->in[0];
    float *out = x->out[0];
    dnnl_memory_set_data_handle(s->src, (void *)in);
    dnnl_memory_set_data_handle(s->dst, out);
    dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, s->src},
                               {DNNL_ARG_WEIGHTS, s->wei},
                               {DNNL_ARG_DST, s->dst},
                               {DNNL_ARG_BIAS, s->bias}};
    return occ_dnnl_exec(s->prim, x->stream,
                         occ_dnnl_scratch_arg(&s->scratch, args, s->bias ? 4 : 3), args, e);
}

const occ_op_vtable occ_op_convtranspose = {
    .op = "ConvTranspose",
    .min_in = 2,
    .max_in = 3,
    .n_out = 1,
    .flags = OCC_OPF_COPIES_WEIGHTS,
    .infer = deconv_infer,
    .flops = deconv_flops,
    .prepare = deconv_prepare,
    .run = deconv_run,
    .destroy = deconv_destroy,
};
