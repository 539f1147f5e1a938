/* MelWeightMatrix (opset 17): the [dft_length/2 + 1, num_mel_bins] float32
 * matrix of triangular mel filters (mel(f) = 2595 log10(1 + f/700)) between
 * lower_edge_hertz and upper_edge_hertz, each with a peak of 1. All five
 * inputs are known at pack time and arrive as attributes (they set the
 * shape); the node has no run-time input.
 *
 * The filter edges follow the ONNX definition (its reference implementation
 * and ONNX Runtime's kernel): num_mel_bins + 2 points evenly spaced in mel
 * with a step of (high - low) / (num_mel_bins + 2), mapped to the spectrogram
 * bin floor((dft_length + 1) * f / sample_rate). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"

typedef struct mel_geom {
    int64_t mels, dft, rate;
    float lo, hi;
} mel_geom;

static occ_status int_attr(const occ_node *n, const char *name, int64_t *v, occ_error *e)
{
    const int64_t *p;
    uint32_t c;
    occ_status st = occ_ops_attr_ints(n, name, 1, &p, &c, e);
    if (st)
        return st;
    if (c != 1)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "%s must be one value known at pack time "
                        "(a constant, or --bind the input it comes from)", name);
    *v = p[0];
    return OCC_OK;
}

static occ_status mel_get(const occ_node *n, mel_geom *g, occ_error *e)
{
    int64_t odt;
    occ_status st;
    for (uint32_t i = 0; i < n->n_inputs; i++)
        if (n->inputs[i] >= 0)
            return occ_fail(e, OCC_ERR_UNSUPPORTED, "run-time inputs are not supported (they set "
                            "the output shape: constants, or --bind the inputs they come from)");
    if ((st = int_attr(n, "num_mel_bins", &g->mels, e)) ||
        (st = int_attr(n, "dft_length", &g->dft, e)) ||
        (st = int_attr(n, "sample_rate", &g->rate, e)) ||
        (st = occ_ops_attr_float(n, "lower_edge_hertz", NAN, &g->lo, e)) ||
        (st = occ_ops_attr_float(n, "upper_edge_hertz", NAN, &g->hi, e)) ||
        (st = occ_ops_attr_int(n, "output_datatype", OCC_DTYPE_FLOAT, &odt, e)))
        return st;
    if (odt != OCC_DTYPE_FLOAT)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "output_datatype %lld (float32 only)",
                        (long long)odt);
    if (g->mels < 1 || g->mels > (1 << 16) || g->dft < 1 || g->dft > (1 << 24) || g->rate < 1 ||
        g->rate > (1 << 30))
        return occ_fail(e, OCC_ERR_INVALID, "num_mel_bins %lld, dft_length %lld, sample_rate %lld "
                        "(each at least 1)", (long long)g->mels, (long long)g->dft,
                        (long long)g->rate);
    if (!isfinite(g->lo) || !isfinite(g->hi) || g->lo < 0 || g->hi < g->lo)
        return occ_fail(e, OCC_ERR_INVALID, "edges %g..%g Hz (0 <= lower <= upper, both given)",
                        (double)g->lo, (double)g->hi);
    return OCC_OK;
}

/* The num_mel_bins + 2 filter edges as spectrogram bins; each checked to lie
 * in [0, bins) so the matrix is written in bounds. */
static occ_status mel_edges(const mel_geom *g, int64_t *edge, occ_error *e)
{
    const int64_t bins = g->dft / 2 + 1, np = g->mels + 2;
    const double lo = 2595.0 * log10(1.0 + (double)g->lo / 700.0);
    const double hi = 2595.0 * log10(1.0 + (double)g->hi / 700.0);
    const double step = (hi - lo) / (double)np;
    for (int64_t i = 0; i < np; i++) {
        double hz = 700.0 * (pow(10.0, ((double)i * step + lo) / 2595.0) - 1.0);
        double b = floor((double)(g->dft + 1) * hz / (double)g->rate);
        if (!(b >= 0 && b < (double)bins))
            return occ_fail(e, OCC_ERR_INVALID, "filter edge %lld falls on bin %g, outside the "
                            "%lld bins (upper_edge_hertz above sample_rate / 2?)", (long long)i, b,
                            (long long)bins);
        edge[i] = (int64_t)b;
    }
    return OCC_OK;
}

static occ_status mel_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    mel_geom g;
    occ_status st = mel_get(n, &g, e);
    if (st)
        return st;
    int64_t *edge = malloc((size_t)(g.mels + 2) * sizeof *edge);
    if (!edge)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    st = mel_edges(&g, edge, e);
    free(edge);
    if (st)
        return st;
    int64_t d[2] = {g.dft / 2 + 1, g.mels};
    occ_ops_set_dtype(m, n, 0, OCC_DTYPE_FLOAT);
    return occ_ops_set_out(m, n, 0, 2, d, e);
}

typedef struct mel_state {
    mel_geom g;
    int64_t *edge;
} mel_state;

static void mel_destroy(void *v)
{
    mel_state *s = v;
    if (!s)
        return;
    occ_ops_free(s->edge);
    free(s);
}

static occ_status mel_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    mel_state *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    occ_status st = mel_get(p->n, &s->g, e);
    if (!st && !(s->edge = occ_ops_alloc((uint64_t)(s->g.mels + 2) * sizeof *s->edge)))
        st = occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    if (!st)
        st = mel_edges(&s->g, s->edge, e);
    if (st) {
        mel_destroy(s);
        return st;
    }
    *state = s;
    return OCC_OK;
}

static occ_status mel_run(void *state, const occ_op_exec *x, occ_error *e)
{
    (void)e;
    const mel_state *s = state;
    const int64_t bins = s->g.dft / 2 + 1, mels = s->g.mels;
    float *out = x->out[0];
    memset(out, 0, (size_t)(bins * mels) * sizeof *out);
    for (int64_t i = 0; i < mels; i++) {
        int64_t l = s->edge[i], c = s->edge[i + 1], h = s->edge[i + 2];
        /* rising edge l..c (a point when l = c), then falling c..h; a later
         * write wins, as in the definition */
        if (c == l)
            out[c * mels + i] = 1.0f;
        else
            for (int64_t j = l; j <= c; j++)
                out[j * mels + i] = (float)((double)(j - l) / (double)(c - l));
        for (int64_t j = c; j < h; j++)
            out[j * mels + i] = (float)((double)(h - j) / (double)(h - c));
    }
    return OCC_OK;
}

const occ_op_vtable occ_op_melweightmatrix = {
    .op = "MelWeightMatrix",
    .min_in = 0,
    .max_in = 5,
    .n_out = 1,
    .n_in_types = 5,
    .in_types = {OCC_DTM_INDEX, OCC_DTM_INDEX, OCC_DTM_INDEX, OCC_DTM_FLOAT, OCC_DTM_FLOAT},
    .infer = mel_infer,
    .flops = NULL,
    .prepare = mel_prepare,
    .run = mel_run,
    .destroy = mel_destroy,
};
