/* STFT (opset 17): the short-time Fourier transform of a float32 signal
 * [batch, length, 1 or 2]: frames of frame_length samples every frame_step,
 * each multiplied by the optional window [frame_length] (else ones), then a
 * DFT of frame_length points, all bins or (onesided, the default, real
 * signals only) the first frame_length/2 + 1. frame_step and frame_length
 * (inputs known at pack time) arrive as attributes. Output
 * [batch, frames, bins, 2], frames = (length - frame_length) / frame_step + 1.
 *
 * A direct sum per bin over a twiddle table, in double (frames are short). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"

typedef struct stft_geom {
    int complex_in, has_window;
    int64_t batch, len, step, flen, frames, bins;
} stft_geom;

static occ_status one_int(const occ_node *n, const char *name, int64_t *v, int *have,
                          occ_error *e)
{
    const int64_t *p;
    uint32_t c;
    occ_status st = occ_ops_attr_ints(n, name, 1, &p, &c, e);
    if (st)
        return st;
    *have = c == 1;
    if (c)
        *v = p[0];
    return OCC_OK;
}

static occ_status stft_get(const occ_model *m, const occ_node *n, stft_geom *g, occ_error *e)
{
    const occ_tensor *x = occ_ops_in(m, n, 0), *w = occ_ops_in(m, n, 2);
    int64_t one;
    int have_step = 0, have_len = 0;
    occ_status st;
    if ((n->n_inputs > 1 && n->inputs[1] >= 0) || (n->n_inputs > 3 && n->inputs[3] >= 0))
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "a run-time frame_step or frame_length is not "
                        "supported (they set the output shape: constants, or --bind the input "
                        "they come from)");
    if ((st = occ_ops_attr_int(n, "onesided", 1, &one, e)) ||
        (st = one_int(n, "frame_step", &g->step, &have_step, e)) ||
        (st = one_int(n, "frame_length", &g->flen, &have_len, e)))
        return st;
    if (!have_step)
        return occ_fail(e, OCC_ERR_INVALID, "frame_step is missing");
    if (x->ndim != 3 || (x->dims[2] != 1 && x->dims[2] != 2))
        return occ_fail(e, OCC_ERR_SHAPE, "signal must be [batch, length, 1 or 2]");
    g->complex_in = x->dims[2] == 2;
    g->has_window = w != NULL;
    if (w) {
        if (w->ndim != 1)
            return occ_fail(e, OCC_ERR_SHAPE, "window must be 1-D");
        if (have_len && g->flen != w->dims[0])
            return occ_fail(e, OCC_ERR_SHAPE, "frame_length %lld but the window has %lld values",
                            (long long)g->flen, (long long)w->dims[0]);
        g->flen = w->dims[0];
        have_len = 1;
    }
    if (!have_len)
        return occ_fail(e, OCC_ERR_INVALID, "neither frame_length nor a window is given");
    g->batch = x->dims[0];
    g->len = x->dims[1];
    if (g->step < 1 || g->flen < 1 || g->flen > g->len || g->flen > (1 << 20))
        return occ_fail(e, OCC_ERR_SHAPE, "frame_step %lld, frame_length %lld for a signal of %lld "
                        "(step >= 1, 1 <= length <= signal)", (long long)g->step,
                        (long long)g->flen, (long long)g->len);
    if (one && g->complex_in)
        return occ_fail(e, OCC_ERR_INVALID, "onesided = 1 needs a real signal");
    g->frames = (g->len - g->flen) / g->step + 1;
    g->bins = one ? g->flen / 2 + 1 : g->flen;
    return OCC_OK;
}

static occ_status stft_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    stft_geom g;
    occ_status st = stft_get(m, n, &g, e);
    if (st)
        return st;
    int64_t d[4] = {g.batch, g.frames, g.bins, 2};
    return occ_ops_set_out(m, n, 0, 4, d, e);
}

typedef struct stft_state {
    stft_geom g;
    occ_twiddles tw; /* of flen */
} stft_state;

static void stft_destroy(void *v)
{
    stft_state *s = v;
    if (!s)
        return;
    occ_ops_twiddles_free(&s->tw);
    free(s);
}

static occ_status stft_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    stft_state *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    occ_status st = stft_get(p->m, p->n, &s->g, e);
    if (st) {
        stft_destroy(s);
        return st;
    }
    if (occ_ops_twiddles(&s->tw, s->g.flen)) {
        stft_destroy(s);
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    }
    *state = s;
    return OCC_OK;
}

static occ_status stft_run(void *state, const occ_op_exec *x, occ_error *e)
{
    (void)e;
    const stft_state *s = state;
    const stft_geom *g = &s->g;
    const float *in = x->in[0], *win = g->has_window ? x->in[2] : NULL;
    float *out = x->out[0];
    const int64_t ci = g->complex_in ? 2 : 1, nn = g->flen;
    for (int64_t b = 0; b < g->batch; b++)
        for (int64_t f = 0; f < g->frames; f++) {
            const float *src = in + (b * g->len + f * g->step) * ci;
            float *dst = out + ((b * g->frames + f) * g->bins) * 2;
            for (int64_t k = 0; k < g->bins; k++) {
                double re = 0, im = 0;
                int64_t t = 0; /* j k mod n */
                for (int64_t j = 0; j < nn; j++) {
                    double w = win ? win[j] : 1.0;
                    double a = src[j * ci] * w, c2 = ci == 2 ? src[j * ci + 1] * w : 0;
                    double c = s->tw.cs[t], sv = -s->tw.sn[t]; /* e^{-i 2 pi jk/n} */
                    re += a * c - c2 * sv;
                    im += a * sv + c2 * c;
                    t += k;
                    if (t >= nn)
                        t -= nn;
                }
                dst[2 * k] = (float)re;
                dst[2 * k + 1] = (float)im;
            }
        }
    return OCC_OK;
}

static uint64_t stft_flops(const occ_model *m, const occ_node *n)
{
    stft_geom g;
    occ_error e;
    if (stft_get(m, n, &g, &e))
        return 0;
    return (uint64_t)(g.batch * g.frames) * (uint64_t)g.bins * (uint64_t)g.flen * 8u;
}

const occ_op_vtable occ_op_stft = {
    .op = "STFT",
    .min_in = 1,
    .max_in = 4,
    .n_out = 1,
    .n_in_types = 4,
    .in_types = {OCC_DTM_FLOAT, OCC_DTM_INDEX, OCC_DTM_FLOAT, OCC_DTM_INDEX},
    .infer = stft_infer,
    .flops = stft_flops,
    .prepare = stft_prepare,
    .run = stft_run,
    .destroy = stft_destroy,
};
