/* OccGroupConv1d: the packer's form of a grouped 1-D convolution with
 * stride 1 (src/pack/fuse.c; wav2vec2's positional convolution: 768
 * channels in 16 groups, kernel 128, pads 64).
 *   Y[n, o, t] = B[o] + sum_{c < C/G, j < k} W[o, c, j] X[n, c_in + g C/G + c, t + d j - pad_l]
 * for o in group g = o / (O/G), X [N, C, L], W [O, C/G, k], B [O] optional,
 * Y [N, O, L + pad_l + pad_r - d (k - 1)]. oneDNN 2.6 runs it through its
 * gemm convolution at ~24 GFLOP/s on AVX2 with a static OpenMP split; here
 * the input is zero-padded once and each group is a product of W's rows
 * with windows of the padded rows read in place (vecmath.c, the 6x16
 * kernel), blocks of 6 output channels shared by par.h's pool. Not an ONNX
 * operator: only packs make it. Attributes: group, dilation, pad_l, pad_r
 * (required) and c_in (default 0): the op reads input channels c_in ..
 * c_in + group C/G - 1 (the packer splits a large grouped convolution into
 * parts of whole groups, each with its slice of the weight, so that each
 * part's weight streams as one segment). Below, C is the channels read. */
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"
#include "ops/par.h"
#include "ops/vecmath.h"

typedef struct gconv_state {
    int64_t n, c, l, o, g, k, d, pl, pr, lo, lp;
    int64_t c_in, cx; /* first channel read, channels of X */
    int bias;
    float *xp; /* padded input [N, C, lp] + 16 floats of slack */
} gconv_state;

static occ_status gconv_params(const occ_model *m, const occ_node *n, gconv_state *s,
                               occ_error *e)
{
    const occ_tensor *x = occ_ops_in(m, n, 0), *w = occ_ops_in(m, n, 1);
    const occ_tensor *b = n->n_inputs > 2 ? occ_ops_in(m, n, 2) : NULL;
    occ_status st;
    if ((st = occ_ops_attr_int(n, "group", 0, &s->g, e)) ||
        (st = occ_ops_attr_int(n, "dilation", 0, &s->d, e)) ||
        (st = occ_ops_attr_int(n, "pad_l", -1, &s->pl, e)) ||
        (st = occ_ops_attr_int(n, "pad_r", -1, &s->pr, e)) ||
        (st = occ_ops_attr_int(n, "c_in", 0, &s->c_in, e)))
        return st;
    if (x->ndim != 3 || w->ndim != 3 || (b && b->ndim != 1))
        return occ_fail(e, OCC_ERR_SHAPE, "OccGroupConv1d wants X [N, C, L], W [O, C/G, k] "
                        "and B [O], got ranks %d, %d, %d", x->ndim, w->ndim, b ? b->ndim : 1);
    const int64_t lim = INT64_C(1) << 31;
    s->n = x->dims[0];
    s->cx = x->dims[1];
    s->c = s->g >= 1 && s->g <= lim && w->dims[1] >= 1 && w->dims[1] <= lim ? w->dims[1] * s->g
                                                                             : -1;
    s->l = x->dims[2];
    s->o = w->dims[0];
    s->k = w->dims[2];
    if (s->g < 1 || s->g > lim || s->d < 1 || s->d > lim || s->pl < 0 || s->pl > lim ||
        s->pr < 0 || s->pr > lim || s->k < 1 || s->k > lim || s->o % s->g || s->c < 1 ||
        s->c_in < 0 || s->c_in > s->cx || s->c > s->cx - s->c_in || (b && b->dims[0] != s->o))
        return occ_fail(e, OCC_ERR_INVALID, "OccGroupConv1d: group %lld, dilation %lld, pads "
                        "%lld/%lld, c_in %lld do not fit X [%lld, %lld, %lld], W [%lld, %lld, %lld]",
                        (long long)s->g, (long long)s->d, (long long)s->pl, (long long)s->pr,
                        (long long)s->c_in, (long long)s->n, (long long)s->cx, (long long)s->l,
                        (long long)s->o, (long long)w->dims[1], (long long)s->k);
    s->lp = s->l + s->pl + s->pr;
    const int64_t span = s->d * (s->k - 1) + 1;
    if (s->lp < span)
        return occ_fail(e, OCC_ERR_SHAPE, "OccGroupConv1d: window %lld longer than the padded "
                        "input %lld", (long long)span, (long long)s->lp);
    s->lo = s->lp - span + 1;
    s->bias = b != NULL;
    return OCC_OK;
}

static occ_status gconv_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    gconv_state s;
    occ_status st = gconv_params(m, n, &s, e);
    if (st)
        return st;
    int64_t d[3] = {s.n, s.o, s.lo};
    return occ_ops_set_out(m, n, 0, 3, d, e);
}

static uint64_t gconv_flops(const occ_model *m, const occ_node *n)
{
    gconv_state s;
    if (gconv_params(m, n, &s, NULL))
        return 0;
    return 2u * (uint64_t)s.n * s.o * s.lo * (s.c / s.g) * s.k;
}

static void gconv_destroy(void *p)
{
    gconv_state *s = p;
    if (!s)
        return;
    occ_ops_free(s->xp);
    free(s);
}

static occ_status gconv_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    gconv_state *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    occ_status st = gconv_params(p->m, p->n, s, e);
    if (st) {
        free(s);
        return st;
    }
    uint64_t cnt;
    if (__builtin_mul_overflow((uint64_t)(s->n * s->c), (uint64_t)s->lp, &cnt) ||
        !(s->xp = occ_ops_alloc((cnt + 16u) * sizeof(float)))) {
        gconv_destroy(s);
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory for OccGroupConv1d's padded input");
    }
    memset(s->xp, 0, (cnt + 16u) * sizeof(float)); /* pads and slack stay zero */
    *state = s;
    return OCC_OK;
}

typedef struct gconv_job {
    const gconv_state *s;
    const float *w, *b;
    float *y;
    int64_t ob; /* blocks of 6 output channels per group */
} gconv_job;

/* tasks (n, group, block of 6 output channels) */
static void gconv_tasks(void *ctx, int64_t q0, int64_t q1)
{
    const gconv_job *j = ctx;
    const gconv_state *s = j->s;
    const int64_t og = s->o / s->g, cg = s->c / s->g;
    for (int64_t q = q0; q < q1; q++) {
        const int64_t blk = q % j->ob, g = (q / j->ob) % s->g, n = q / (j->ob * s->g);
        const int64_t o0 = g * og + blk * 6, rows = og - blk * 6 < 6 ? og - blk * 6 : 6;
        float *y = j->y + (n * s->o + o0) * s->lo;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t t = 0; t < s->lo; t++)
                y[r * s->lo + t] = j->b ? j->b[o0 + r] : 0.0f;
        occ_vec_gconv1d(j->w + o0 * cg * s->k, rows, cg, s->k,
                        s->xp + (n * s->c + g * cg) * s->lp, s->lp, s->d, s->lo, y);
    }
}

static occ_status gconv_run(void *state, const occ_op_exec *x, occ_error *e)
{
    const gconv_state *s = state;
    const float *in = x->in[0];
    for (int64_t n = 0; n < s->n; n++)
        for (int64_t c = 0; c < s->c; c++)
            memcpy(s->xp + (n * s->c + c) * s->lp + s->pl, in + (n * s->cx + s->c_in + c) * s->l,
                   (size_t)s->l * sizeof(float));
    gconv_job j = {.s = s, .w = x->in[1], .b = s->bias ? x->in[2] : NULL, .y = x->out[0],
                   .ob = (s->o / s->g + 5) / 6};
    const int64_t tasks = s->n * s->g * j.ob;
    occ_par_for(tasks, 1, gconv_tasks, &j);
    return OCC_OK;
}

const occ_op_vtable occ_op_gconv1d = {
    .op = "OccGroupConv1d",
    .min_in = 2,
    .max_in = 3,
    .n_out = 1,
    .infer = gconv_infer,
    .flops = gconv_flops,
    .prepare = gconv_prepare,
    .run = gconv_run,
    .destroy = gconv_destroy,
};
