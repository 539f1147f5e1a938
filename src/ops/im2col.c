/* OccIm2Col: the packer's half of a 1-D convolution run as a GEMM
 * (src/pack/fuse.c rewrites Conv over [N, C, L] with group 1 into
 * OccIm2Col -> MatMul on weight panels [-> Add bias] -> Transpose).
 *   Y[n, t, c * k + j] = X[n, c, s t + d j - pad_l]   (0 outside [0, L))
 * for X [N, C, L], Y [N, L', C k], L' = (L + pad_l + pad_r - d (k - 1) - 1) / s + 1.
 * oneDNN 2.6 on AVX2 runs such convolutions (wav2vec2's feature encoder,
 * 512 -> 512 channels over 3199 steps) on plain layouts through its gemm
 * convolution at ~30 GFLOP/s; the copy here costs one pass over Y. Not an
 * ONNX operator: only packs make it. Attributes (all required but pads):
 * kernel, stride, dilation, pad_l, pad_r, and layout (optional, 0):
 *   layout 1 (time-major, X [N, L, C], the rows a previous such convolution's
 *   MatMul writes, kept when only element-wise ops lie between the two):
 *   Y[n, t, j * C + c] = X[n, s t + d j - pad_l, c], the columns kernel-tap
 *   major; with dilation 1 a row of Y is k consecutive rows of X, one copy.
 * Any element type (data movement). */
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"
#include "ops/par.h"

typedef struct im2col_state {
    int64_t n, c, l, k, s, d, pl, lo;
    int64_t tm; /* layout 1: X [N, L, C] */
    size_t es;
} im2col_state;

static occ_status im2col_params(const occ_model *m, const occ_node *n, im2col_state *s,
                                occ_error *e)
{
    const occ_tensor *x = occ_ops_in(m, n, 0);
    occ_status st;
    int64_t pr;
    if ((st = occ_ops_attr_int(n, "kernel", 0, &s->k, e)) ||
        (st = occ_ops_attr_int(n, "stride", 0, &s->s, e)) ||
        (st = occ_ops_attr_int(n, "dilation", 0, &s->d, e)) ||
        (st = occ_ops_attr_int(n, "pad_l", 0, &s->pl, e)) ||
        (st = occ_ops_attr_int(n, "pad_r", 0, &pr, e)) ||
        (st = occ_ops_attr_int(n, "layout", 0, &s->tm, e)))
        return st;
    if (s->tm != 0 && s->tm != 1)
        return occ_fail(e, OCC_ERR_INVALID, "OccIm2Col: layout %lld, want 0 ([N, C, L]) or 1 "
                        "([N, L, C])", (long long)s->tm);
    if (x->ndim != 3)
        return occ_fail(e, OCC_ERR_SHAPE, "OccIm2Col wants %s, got rank %d",
                        s->tm ? "[N, L, C]" : "[N, C, L]", x->ndim);
    const int64_t lim = INT64_C(1) << 31;
    if (s->k < 1 || s->s < 1 || s->d < 1 || s->pl < 0 || pr < 0 || s->k > lim || s->s > lim ||
        s->d > lim || s->pl > lim || pr > lim)
        return occ_fail(e, OCC_ERR_INVALID, "OccIm2Col: kernel %lld stride %lld dilation %lld "
                        "pads %lld, %lld", (long long)s->k, (long long)s->s, (long long)s->d,
                        (long long)s->pl, (long long)pr);
    s->n = x->dims[0];
    s->c = x->dims[s->tm ? 2 : 1];
    s->l = x->dims[s->tm ? 1 : 2];
    const int64_t span = s->d * (s->k - 1) + 1, padded = s->l + s->pl + pr;
    if (padded < span)
        return occ_fail(e, OCC_ERR_SHAPE, "OccIm2Col: window %lld longer than the input %lld",
                        (long long)span, (long long)padded);
    s->lo = (padded - span) / s->s + 1;
    s->es = occ_ops_esize(x);
    return OCC_OK;
}

static occ_status im2col_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    im2col_state s;
    occ_status st = im2col_params(m, n, &s, e);
    if (st)
        return st;
    int64_t d[3] = {s.n, s.lo, s.c * s.k};
    return occ_ops_set_out(m, n, 0, 3, d, e);
}

static uint64_t im2col_flops(const occ_model *m, const occ_node *n)
{
    return 0;
}

static occ_status im2col_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    im2col_state *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    occ_status st = im2col_params(p->m, p->n, s, e);
    if (st) {
        free(s);
        return st;
    }
    *state = s;
    return OCC_OK;
}

/* Blocks of output rows: each reads a short stretch of every input row and
 * fills its rows of Y (TB rows x C k values). */
enum { TB = 32 };

typedef struct im2col_job {
    const im2col_state *s;
    const uint8_t *in;
    uint8_t *out;
} im2col_job;

/* rows [t0, t1) read no padding */
static int interior(const im2col_state *s, int64_t t0, int64_t t1)
{
    return s->s * t0 - s->pl >= 0 && s->s * (t1 - 1) + s->d * (s->k - 1) - s->pl < s->l;
}

/* float rows [t0, t1) of one image, all inside the input: no bounds checks,
 * the kernel taps of a channel stored side by side */
static void fill_interior(const im2col_state *s, const float *x, float *y, int64_t t0,
                          int64_t t1)
{
    const int64_t ck = s->c * s->k, k = s->k, st = s->s, d = s->d;
    for (int64_t c = 0; c < s->c; c++) {
        const float *xr = x + c * s->l - s->pl;
        float *yc = y + c * k;
        for (int64_t t = t0; t < t1; t++) {
            const float *xp = xr + st * t;
            float *yr = yc + t * ck;
            for (int64_t j = 0; j < k; j++)
                yr[j] = xp[d * j];
        }
    }
}

static void im2col_blocks(void *ctx, int64_t q0, int64_t q1)
{
    const im2col_job *jb = ctx;
    const im2col_state *s = jb->s;
    const int64_t ck = s->c * s->k, nb = (s->lo + TB - 1) / TB;
    const size_t es = s->es;
    for (int64_t q = q0; q < q1; q++) {
        const int64_t n = q / nb, t0 = (q % nb) * TB, t1 = t0 + TB < s->lo ? t0 + TB : s->lo;
        if (es == 4 && interior(s, t0, t1)) {
            fill_interior(s, (const float *)(const void *)jb->in + n * s->c * s->l,
                          (float *)(void *)jb->out + n * s->lo * ck, t0, t1);
            continue;
        }
        for (int64_t c = 0; c < s->c; c++) {
            const uint8_t *xr = jb->in + ((size_t)(n * s->c + c) * (size_t)s->l) * es;
            for (int64_t t = t0; t < t1; t++) {
                uint8_t *yr =
                    jb->out + ((size_t)(n * s->lo + t) * (size_t)ck + (size_t)(c * s->k)) * es;
                for (int64_t j = 0; j < s->k; j++) {
                    const int64_t pos = s->s * t + s->d * j - s->pl;
                    if (es == 4) {
                        ((float *)(void *)yr)[j] =
                            pos >= 0 && pos < s->l ? ((const float *)(const void *)xr)[pos] : 0.0f;
                    } else if (pos >= 0 && pos < s->l) {
                        memcpy(yr + (size_t)j * es, xr + (size_t)pos * es, es);
                    } else {
                        memset(yr + (size_t)j * es, 0, es);
                    }
                }
            }
        }
    }
}

/* layout 1: row t of Y is the input rows s t + d j - pad_l, j < k, each C
 * values (zeros outside [0, L)); dilation 1 and no padding in the row make
 * them one stretch of k C values */
static void im2col_tm_blocks(void *ctx, int64_t q0, int64_t q1)
{
    const im2col_job *jb = ctx;
    const im2col_state *s = jb->s;
    const int64_t ck = s->c * s->k, nb = (s->lo + TB - 1) / TB;
    const size_t es = s->es, row = (size_t)s->c * es;
    for (int64_t q = q0; q < q1; q++) {
        const int64_t n = q / nb, t0 = (q % nb) * TB, t1 = t0 + TB < s->lo ? t0 + TB : s->lo;
        const uint8_t *x = jb->in + (size_t)(n * s->l) * row;
        for (int64_t t = t0; t < t1; t++) {
            uint8_t *yr = jb->out + (size_t)(n * s->lo + t) * (size_t)ck * es;
            const int64_t p0 = s->s * t - s->pl, plast = p0 + s->d * (s->k - 1);
            if (s->d == 1 && p0 >= 0 && plast < s->l) {
                memcpy(yr, x + (size_t)p0 * row, (size_t)s->k * row);
                continue;
            }
            for (int64_t j = 0; j < s->k; j++) {
                const int64_t pos = p0 + s->d * j;
                if (pos >= 0 && pos < s->l)
                    memcpy(yr + (size_t)j * row, x + (size_t)pos * row, row);
                else
                    memset(yr + (size_t)j * row, 0, row);
            }
        }
    }
}

/* the blocks shared by par.h's pool */
static occ_status im2col_run(void *state, const occ_op_exec *x, occ_error *e)
{
    const im2col_state *s = state;
    im2col_job j = {.s = s, .in = x->in[0], .out = x->out[0]};
    const int64_t nq = s->n * ((s->lo + TB - 1) / TB);
    occ_par_for(nq, s->n * s->lo * s->c * s->k > 65536 ? 1 : nq,
                s->tm ? im2col_tm_blocks : im2col_blocks, &j);
    return OCC_OK;
}

static void im2col_destroy(void *s)
{
    free(s);
}

const occ_op_vtable occ_op_im2col = {
    .op = "OccIm2Col",
    .min_in = 1,
    .max_in = 1,
    .n_out = 1,
    .n_in_types = 1,
    .in_types = {OCC_DTM_ALL},
    .infer = im2col_infer,
    .flops = im2col_flops,
    .prepare = im2col_prepare,
    .run = im2col_run,
    .destroy = im2col_destroy,
};
