/* DFT (opset 17): the discrete Fourier transform of a float32 signal
 * [batch, ..., n, ..., 1 or 2] (last dim: real, or real and imaginary) along
 * `axis` (default 1, never the last), forward or `inverse` (1/n, e^+i), the
 * whole spectrum or (`onesided`) its first n/2 + 1 bins. dft_length (an
 * input known at pack time, arriving as an attribute) pads the signal with
 * zeros or truncates it. Output [..., bins, ..., 2].
 *
 * A direct O(n^2) sum over a table of twiddles, accumulated in double: the
 * exporters' signals here are short (a few hundred points), and a direct sum
 * is exact to float rounding for any n, not only powers of two. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"

typedef struct dft_geom {
    int axis, complex_in, inverse, onesided;
    int64_t n_in;     /* the signal's length along axis */
    int64_t n;        /* dft_length (default n_in) */
    int64_t bins;     /* n, or n/2 + 1 onesided */
    int64_t outer;    /* product of the dims before axis */
    int64_t inner;    /* product of the dims between axis and the last */
} dft_geom;

static occ_status dft_get(const occ_model *m, const occ_node *n, dft_geom *g, occ_error *e)
{
    const occ_tensor *x = occ_ops_in(m, n, 0);
    int64_t axis, inv, one;
    const int64_t *len;
    uint32_t nlen;
    occ_status st;
    if (n->n_inputs > 1 && n->inputs[1] >= 0)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "a run-time dft_length is not supported (it sets "
                        "the output shape: a constant, or --bind the input it comes from)");
    if ((st = occ_ops_attr_int(n, "axis", 1, &axis, e)) ||
        (st = occ_ops_attr_int(n, "inverse", 0, &inv, e)) ||
        (st = occ_ops_attr_int(n, "onesided", 0, &one, e)) ||
        (st = occ_ops_attr_ints(n, "dft_length", 1, &len, &nlen, e)))
        return st;
    if (x->ndim < 3)
        return occ_fail(e, OCC_ERR_SHAPE, "input has rank %d, DFT needs [batch, signal..., 1 or 2]",
                        x->ndim);
    if (x->dims[x->ndim - 1] != 1 && x->dims[x->ndim - 1] != 2)
        return occ_fail(e, OCC_ERR_SHAPE, "last dim is %lld (1: real, 2: complex)",
                        (long long)x->dims[x->ndim - 1]);
    /* axis in [-r, -2] or [0, r - 2]: never the real/imaginary dim */
    if (axis < -x->ndim || axis > x->ndim - 2 || axis == -1)
        return occ_fail(e, OCC_ERR_INVALID, "axis %lld out of range for rank %d (not the last)",
                        (long long)axis, x->ndim);
    g->axis = (int)(axis < 0 ? axis + x->ndim : axis);
    g->complex_in = x->dims[x->ndim - 1] == 2;
    g->inverse = inv != 0;
    g->onesided = one != 0;
    if (g->inverse && g->onesided)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "inverse with onesided = 1 is not supported");
    g->n_in = x->dims[g->axis];
    g->n = nlen ? len[0] : g->n_in;
    if (g->n < 1 || g->n > (1 << 20))
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "dft_length %lld (1 to 2^20 supported)",
                        (long long)g->n);
    g->bins = g->onesided ? g->n / 2 + 1 : g->n;
    g->outer = 1;
    for (int d = 0; d < g->axis; d++)
        g->outer *= x->dims[d];
    g->inner = 1;
    for (int d = g->axis + 1; d < x->ndim - 1; d++)
        g->inner *= x->dims[d];
    return OCC_OK;
}

static occ_status dft_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    dft_geom g;
    occ_status st = dft_get(m, n, &g, e);
    if (st)
        return st;
    const occ_tensor *x = occ_ops_in(m, n, 0);
    int64_t d[OCC_MAX_DIMS];
    memcpy(d, x->dims, sizeof d);
    d[g.axis] = g.bins;
    d[x->ndim - 1] = 2;
    return occ_ops_set_out(m, n, 0, x->ndim, d, e);
}

/* cos and sin of 2 pi k / n for k < n, in double (shared with stft.c) */
int occ_ops_twiddles(occ_twiddles *t, int64_t n)
{
    t->cs = occ_ops_alloc((uint64_t)n * sizeof(double));
    t->sn = occ_ops_alloc((uint64_t)n * sizeof(double));
    if (!t->cs || !t->sn) {
        occ_ops_twiddles_free(t);
        return -1;
    }
    const double pi = 3.14159265358979323846;
    for (int64_t k = 0; k < n; k++) {
        t->cs[k] = cos(2.0 * pi * (double)k / (double)n);
        t->sn[k] = sin(2.0 * pi * (double)k / (double)n);
    }
    return 0;
}

void occ_ops_twiddles_free(occ_twiddles *t)
{
    occ_ops_free(t->cs);
    occ_ops_free(t->sn);
    t->cs = t->sn = NULL;
}

typedef struct dft_state {
    dft_geom g;
    occ_twiddles tw; /* of n */
} dft_state;

static void dft_destroy(void *v)
{
    dft_state *s = v;
    if (!s)
        return;
    occ_ops_twiddles_free(&s->tw);
    free(s);
}

static occ_status dft_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    dft_state *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    occ_status st = dft_get(p->m, p->n, &s->g, e);
    if (st) {
        dft_destroy(s);
        return st;
    }
    if (occ_ops_twiddles(&s->tw, s->g.n)) {
        dft_destroy(s);
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    }
    *state = s;
    return OCC_OK;
}

static occ_status dft_run(void *state, const occ_op_exec *x, occ_error *e)
{
    (void)e;
    const dft_state *s = state;
    const dft_geom *g = &s->g;
    const float *in = x->in[0];
    float *out = x->out[0];
    const int64_t ci = g->complex_in ? 2 : 1, nn = g->n;
    const int64_t used = g->n_in < nn ? g->n_in : nn; /* the rest: zero padding */
    /* forward: e^{-i 2 pi jk/n}; inverse: e^{+i 2 pi jk/n} / n */
    const double sg = g->inverse ? 1.0 : -1.0, scale = g->inverse ? 1.0 / (double)nn : 1.0;
    for (int64_t o = 0; o < g->outer; o++)
        for (int64_t i = 0; i < g->inner; i++) {
            const float *src = in + (o * g->n_in * g->inner + i) * ci;
            float *dst = out + (o * g->bins * g->inner + i) * 2;
            for (int64_t k = 0; k < g->bins; k++) {
                double re = 0, im = 0;
                int64_t t = 0; /* j k mod n, kept exact */
                for (int64_t j = 0; j < used; j++) {
                    double a = src[j * g->inner * ci], b = ci == 2 ? src[j * g->inner * ci + 1] : 0;
                    double c = s->tw.cs[t], sv = sg * s->tw.sn[t];
                    re += a * c - b * sv;
                    im += a * sv + b * c;
                    t += k;
                    if (t >= nn)
                        t -= nn;
                }
                dst[k * g->inner * 2] = (float)(re * scale);
                dst[k * g->inner * 2 + 1] = (float)(im * scale);
            }
        }
    return OCC_OK;
}

static uint64_t dft_flops(const occ_model *m, const occ_node *n)
{
    dft_geom g;
    occ_error e;
    if (dft_get(m, n, &g, &e))
        return 0;
    return (uint64_t)(g.outer * g.inner) * (uint64_t)g.bins * (uint64_t)g.n * 8u;
}

const occ_op_vtable occ_op_dft = {
    .op = "DFT",
    .min_in = 1,
    .max_in = 2,
    .n_out = 1,
    .n_in_types = 2,
    .in_types = {OCC_DTM_FLOAT, OCC_DTM_INDEX},
    .infer = dft_infer,
    .flops = dft_flops,
    .prepare = dft_prepare,
    .run = dft_run,
    .destroy = dft_destroy,
};
