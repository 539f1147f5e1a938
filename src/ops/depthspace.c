/* DepthToSpace (DCR and CRD) and SpaceToDepth: pure data movement on NCHW,
 * one output row at a time (plain C; oneDNN has no primitive for them). */
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"

typedef struct d2s_state {
    int to_space, crd;
    int64_t n, c, h, w, b; /* input dims, blocksize */
} d2s_state;

static occ_status d2s_params(const occ_model *m, const occ_node *n, d2s_state *s, occ_error *e)
{
    const occ_tensor *x = occ_ops_in(m, n, 0);
    occ_status st;
    const char *mode;
    memset(s, 0, sizeof *s);
    s->to_space = strcmp(n->op, "DepthToSpace") == 0;
    if ((st = occ_ops_attr_int(n, "blocksize", 0, &s->b, e)) ||
        (st = occ_ops_attr_str(n, "mode", "DCR", &mode, e)))
        return st;
    if (s->b < 1 || s->b > 4096)
        return occ_fail(e, OCC_ERR_INVALID, "blocksize = %lld (needs 1..4096)", (long long)s->b);
    if (!s->to_space && occ_ops_attr(n, "mode"))
        return occ_fail(e, OCC_ERR_INVALID, "SpaceToDepth has no mode");
    if (strcmp(mode, "DCR") && strcmp(mode, "CRD"))
        return occ_fail(e, OCC_ERR_INVALID, "mode = %s (DCR or CRD)", mode);
    s->crd = strcmp(mode, "CRD") == 0;
    if (x->ndim != 4)
        return occ_fail(e, OCC_ERR_SHAPE, "%s needs a rank-4 NCHW input, got rank %d", n->op,
                        x->ndim);
    s->n = x->dims[0];
    s->c = x->dims[1];
    s->h = x->dims[2];
    s->w = x->dims[3];
    if (s->to_space && s->c % (s->b * s->b))
        return occ_fail(e, OCC_ERR_SHAPE, "%lld channels not divisible by blocksize^2 = %lld",
                        (long long)s->c, (long long)(s->b * s->b));
    if (!s->to_space && (s->h % s->b || s->w % s->b))
        return occ_fail(e, OCC_ERR_SHAPE, "%lldx%lld not divisible by blocksize %lld",
                        (long long)s->h, (long long)s->w, (long long)s->b);
    return OCC_OK;
}

static occ_status d2s_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    d2s_state s;
    occ_status st = d2s_params(m, n, &s, e);
    if (st)
        return st;
    int64_t bb = s.b * s.b;
    int64_t d[4] = {s.n, s.to_space ? s.c / bb : s.c * bb, s.to_space ? s.h * s.b : s.h / s.b,
                    s.to_space ? s.w * s.b : s.w / s.b};
    return occ_ops_set_out(m, n, 0, 4, d, e);
}

static occ_status d2s_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    d2s_state *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    occ_status st = d2s_params(p->m, p->n, s, e);
    if (st) {
        free(s);
        return st;
    }
    *state = s;
    return OCC_OK;
}

static occ_status d2s_run(void *state, const occ_op_exec *x, occ_error *e)
{
    const d2s_state *s = state;
    const float *in = x->in[0];
    float *out = x->out[0];
    const int64_t b = s->b, H = s->h, W = s->w;
    (void)e;
    if (s->to_space) {
        /* out[n, c, h*b + i, w*b + j] = in[n, src(c, i, j), h, w] */
        const int64_t C = s->c / (b * b), OH = H * b, OW = W * b;
        for (int64_t n = 0; n < s->n; n++)
            for (int64_t c = 0; c < C; c++)
                for (int64_t oh = 0; oh < OH; oh++) {
                    const int64_t h = oh / b, i = oh % b;
                    float *row = out + ((n * C + c) * OH + oh) * OW;
                    for (int64_t ow = 0; ow < OW; ow++) {
                        const int64_t w = ow / b, j = ow % b;
                        const int64_t ci = s->crd ? c * b * b + i * b + j : (i * b + j) * C + c;
                        row[ow] = in[((n * s->c + ci) * H + h) * W + w];
                    }
                }
        return OCC_OK;
    }
    /* out[n, (i*b + j)*C + c, h, w] = in[n, c, h*b + i, w*b + j] */
    const int64_t C = s->c, OH = H / b, OW = W / b;
    for (int64_t n = 0; n < s->n; n++)
        for (int64_t i = 0; i < b; i++)
            for (int64_t j = 0; j < b; j++)
                for (int64_t c = 0; c < C; c++) {
                    float *plane = out + ((n * C * b * b) + (i * b + j) * C + c) * OH * OW;
                    const float *src = in + (n * C + c) * H * W;
                    for (int64_t h = 0; h < OH; h++)
                        for (int64_t w = 0; w < OW; w++)
                            plane[h * OW + w] = src[(h * b + i) * W + w * b + j];
                }
    return OCC_OK;
}

static void d2s_destroy(void *s)
{
    free(s);
}

const occ_op_vtable occ_op_depthtospace = {
    .op = "DepthToSpace",
    .min_in = 1,
    .max_in = 1,
    .n_out = 1,
    .infer = d2s_infer,
    .prepare = d2s_prepare,
    .run = d2s_run,
    .destroy = d2s_destroy,
};

const occ_op_vtable occ_op_spacetodepth = {
    .op = "SpaceToDepth",
    .min_in = 1,
    .max_in = 1,
    .n_out = 1,
    .infer = d2s_infer,
    .prepare = d2s_prepare,
    .run = d2s_run,
    .destroy = d2s_destroy,
};
