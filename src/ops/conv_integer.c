/* ConvInteger(x, w, x_zero_point, w_zero_point) -> int32 and QLinearConv(x,
 * x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, B) -> uint8/int8: 2-D
 * grouped convolution of (x - x_zp) with (w - w_zp) accumulated in int32
 * (padding contributes zero); QLinearConv adds the int32 bias and scales by
 * x_scale * w_scale[m] / y_scale in float32, rounds half to even, adds y_zp
 * and saturates. x_zp, y_zp per tensor; w_zp and w_scale per tensor or per
 * output channel. Plain C loops (the quantized node tests and small layers). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"

#define Q8 (OCC_DTM(OCC_DTYPE_UINT8) | OCC_DTM(OCC_DTYPE_INT8))

typedef struct ci_geom {
    int q, iw, ixz, iwz;
    int64_t n, c, m, g, kh, kw;
    occ_window win;
} ci_geom;

static occ_status ci_geometry(const occ_model *m, const occ_node *n, ci_geom *cg, occ_error *e)
{
    memset(cg, 0, sizeof *cg);
    cg->q = !strcmp(n->op, "QLinearConv");
    cg->iw = cg->q ? 3 : 1;
    cg->ixz = 2;
    cg->iwz = cg->q ? 5 : 3;
    const occ_tensor *x = occ_ops_in(m, n, 0), *w = occ_ops_in(m, n, (uint32_t)cg->iw);
    if (!w)
        return occ_fail(e, OCC_ERR_INVALID, "the weights are absent");
    if (cg->q && (n->n_inputs < 8 || !occ_ops_in(m, n, 1) || !occ_ops_in(m, n, 4) ||
                  !occ_ops_in(m, n, 6) || !occ_ops_in(m, n, 7)))
        return occ_fail(e, OCC_ERR_INVALID, "QLinearConv needs its scales and zero points");
    if (cg->q) {
        uint32_t yz = occ_ops_dtype(occ_ops_in(m, n, 7));
        const occ_tensor *b = occ_ops_in(m, n, 8);
        if (yz != OCC_DTYPE_UINT8 && yz != OCC_DTYPE_INT8)
            return occ_fail(e, OCC_ERR_UNSUPPORTED, "y_zero_point is %s (uint8 or int8)",
                            occ_dtype_name(yz));
        if (b && occ_ops_dtype(b) != OCC_DTYPE_INT32)
            return occ_fail(e, OCC_ERR_UNSUPPORTED, "B is %s (int32 needed)",
                            occ_dtype_name(occ_ops_dtype(b)));
    }
    if (x->ndim != 4 || w->ndim != 4)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "only 2-D convolutions (rank-4 x and w)");
    int64_t g;
    occ_status st = occ_ops_attr_int(n, "group", 1, &g, e);
    if (st)
        return st;
    cg->n = x->dims[0];
    cg->c = x->dims[1];
    cg->m = w->dims[0];
    cg->kh = w->dims[2];
    cg->kw = w->dims[3];
    if (g < 1 || cg->c % g || cg->m % g || w->dims[1] != cg->c / g)
        return occ_fail(e, OCC_ERR_SHAPE, "group %lld does not fit %lld input and %lld output "
                        "channels", (long long)g, (long long)cg->c, (long long)cg->m);
    cg->g = g;
    for (uint32_t i = 1; i < n->n_inputs; i++) {
        const occ_tensor *t = occ_ops_in(m, n, i);
        if (!t || (int)i == cg->iw)
            continue;
        int64_t cnt = occ_ops_count(t->ndim, t->dims);
        if (cg->q && i == 8) { /* B: one int32 per output channel */
            if (t->ndim != 1 || cnt != cg->m)
                return occ_fail(e, OCC_ERR_SHAPE, "B has %lld elements, not one per output "
                                "channel (%lld)", (long long)cnt, (long long)cg->m);
            continue;
        }
        int per_m = (int)i == cg->iwz || (cg->q && i == 4);
        if (cnt != 1 && !(per_m && t->ndim == 1 && cnt == cg->m))
            return occ_fail(e, OCC_ERR_UNSUPPORTED, "input %u has %lld elements: scales and zero "
                            "points per tensor (weights' also per output channel)", i, (long long)cnt);
    }
    int64_t in[2] = {x->dims[2], x->dims[3]}, k[2] = {cg->kh, cg->kw};
    return occ_ops_window(n, in, k, 0, &cg->win, e);
}

static occ_status ci_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    ci_geom cg;
    occ_status st = ci_geometry(m, n, &cg, e);
    if (st)
        return st;
    int64_t d[4] = {cg.n, cg.m, cg.win.out[0], cg.win.out[1]};
    if ((st = occ_ops_set_out(m, n, 0, 4, d, e)))
        return st;
    occ_ops_set_dtype(m, n, 0, cg.q ? occ_ops_dtype(occ_ops_in(m, n, 7)) : OCC_DTYPE_INT32);
    return OCC_OK;
}

typedef struct ci_state {
    ci_geom g;
    uint32_t xdt, wdt, xzdt, wzdt, ydt;
    int64_t wz_n, ws_n; /* elements of w_zp and w_scale (1 or M) */
    int has_b;
} ci_state;

static occ_status ci_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    ci_state *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    occ_status st = ci_geometry(p->m, p->n, &s->g, e);
    if (st) {
        free(s);
        return st;
    }
    const occ_tensor *xz = occ_ops_in(p->m, p->n, (uint32_t)s->g.ixz);
    const occ_tensor *wz = occ_ops_in(p->m, p->n, (uint32_t)s->g.iwz);
    s->xdt = occ_ops_dtype(occ_ops_in(p->m, p->n, 0));
    s->wdt = occ_ops_dtype(occ_ops_in(p->m, p->n, (uint32_t)s->g.iw));
    s->xzdt = xz ? occ_ops_dtype(xz) : 0;
    s->wzdt = wz ? occ_ops_dtype(wz) : 0;
    s->wz_n = wz ? occ_ops_count(wz->ndim, wz->dims) : 0;
    s->ydt = occ_tensor_dtype(&p->m->tensors[p->n->outputs[0]]);
    if (s->g.q) {
        const occ_tensor *ws = occ_ops_in(p->m, p->n, 4);
        s->ws_n = occ_ops_count(ws->ndim, ws->dims);
        s->has_b = occ_ops_in(p->m, p->n, 8) != NULL;
    }
    *state = s;
    return OCC_OK;
}

static occ_status ci_run(void *state, const occ_op_exec *x, occ_error *e)
{
    (void)e;
    const ci_state *s = state;
    const ci_geom *g = &s->g;
    const occ_window *w = &g->win;
    const void *X = x->in[0], *W = x->in[g->iw];
    int64_t xz = s->xzdt ? occ_ops_load_i64(s->xzdt, x->in[g->ixz], 0) : 0;
    int64_t cpg = g->c / g->g, mpg = g->m / g->g;
    int64_t H = w->in[0], Wd = w->in[1], OH = w->out[0], OW = w->out[1];
    float lo = s->ydt == OCC_DTYPE_INT8 ? -128.0f : 0.0f, hi = s->ydt == OCC_DTYPE_INT8 ? 127.0f : 255.0f;
    for (int64_t b = 0; b < g->n; b++)
        for (int64_t oc = 0; oc < g->m; oc++) {
            int64_t grp = oc / mpg;
            int64_t wz = s->wzdt ? occ_ops_load_i64(s->wzdt, x->in[g->iwz], s->wz_n > 1 ? oc : 0) : 0;
            float mult = 1.0f;
            int64_t yz = 0, bias = 0;
            if (g->q) {
                const float *xs = x->in[1], *wsc = x->in[4], *ys = x->in[6];
                mult = xs[0] * wsc[s->ws_n > 1 ? oc : 0] / ys[0];
                yz = occ_ops_load_i64(s->ydt, x->in[7], 0);
                if (s->has_b)
                    bias = ((const int32_t *)x->in[8])[oc];
            }
            for (int64_t oy = 0; oy < OH; oy++)
                for (int64_t ox = 0; ox < OW; ox++) {
                    int64_t acc = bias;
                    for (int64_t ic = 0; ic < cpg; ic++)
                        for (int64_t ky = 0; ky < g->kh; ky++) {
                            int64_t iy = oy * w->s[0] - w->pb[0] + ky * w->d[0];
                            if (iy < 0 || iy >= H)
                                continue;
                            for (int64_t kx = 0; kx < g->kw; kx++) {
                                int64_t ix = ox * w->s[1] - w->pb[1] + kx * w->d[1];
                                if (ix < 0 || ix >= Wd)
                                    continue;
                                int64_t xv = occ_ops_load_i64(
                                    s->xdt, X, ((b * g->c + grp * cpg + ic) * H + iy) * Wd + ix);
                                int64_t wv = occ_ops_load_i64(
                                    s->wdt, W, ((oc * cpg + ic) * g->kh + ky) * g->kw + kx);
                                acc += (xv - xz) * (wv - wz);
                            }
                        }
                    int64_t o = ((b * g->m + oc) * OH + oy) * OW + ox;
                    if (!g->q) {
                        ((int32_t *)x->out[0])[o] = (int32_t)(uint32_t)(uint64_t)acc;
                        continue;
                    }
                    float v = rintf((float)acc * mult) + (float)yz;
                    v = v != v ? 0.0f : v < lo ? lo : v > hi ? hi : v;
                    occ_ops_store_i64(s->ydt, x->out[0], o, (int64_t)v);
                }
        }
    return OCC_OK;
}

static void ci_destroy(void *s)
{
    free(s);
}

const occ_op_vtable occ_op_convinteger = {
    .op = "ConvInteger",
    .min_in = 2,
    .max_in = 4,
    .n_out = 1,
    .n_in_types = 1,
    .in_types = {Q8},
    .infer = ci_infer,
    .prepare = ci_prepare,
    .run = ci_run,
    .destroy = ci_destroy,
};

const occ_op_vtable occ_op_qlinearconv = {
    .op = "QLinearConv",
    .min_in = 8,
    .max_in = 9,
    .n_out = 1,
    .n_in_types = 8,
    .in_types = {Q8, OCC_DTM_FLOAT, Q8, Q8, OCC_DTM_FLOAT, Q8, OCC_DTM_FLOAT, Q8 | OCC_DTM(OCC_DTYPE_INT32)},
    .infer = ci_infer,
    .prepare = ci_prepare,
    .run = ci_run,
    .destroy = ci_destroy,
};
