/* RNN, GRU and LSTM (ONNX semantics: forward, reverse, bidirectional, layout
 * 0 and 1, initial states, LSTM peepholes and input_forget, GRU
 * linear_before_reset, clip) with the default activations (sigmoid, tanh).
 *
 * Plain C around oneDNN's sgemm rather than oneDNN's RNN primitives: those
 * order the gates differently (LSTM ifco vs ONNX iofc, GRU's reset applied
 * another way unless linear_before_reset), have no peepholes in the vanilla
 * cell nor clip, and the weights would need a per-gate repack; the two sgemms
 * below carry all the arithmetic anyway. The input projection of every
 * time step is one sgemm up front; each step is one sgemm for the recurrence
 * (two for GRU without linear_before_reset) plus the gate loop.
 *
 * LSTM without peepholes and input_forget (what torch exports) takes a
 * faster path (lstm_fast): one sgemm for the input projections of both
 * directions, then per step an AVX2 GEMV of h against R with the projection
 * and biases as its starting sums (vecmath.c) and the gate functions on
 * whole gate blocks; the two directions of a bidirectional layer run on two
 * threads at once, with no barrier per step (a per-step sgemm over two
 * threads paid one, and collapsed when the other core was busy). They stay
 * on an OpenMP pair rather than par.h's pool: the layer's input projection
 * just before is oneDNN's sgemm on OpenMP, whose worker is still spinning on
 * the other core when the directions start, and a pool worker woken then
 * may share a core with the caller. Measured on the shared host (lstm_kws,
 * 2 threads, interleaved, load ~5): pool 30 vs OpenMP 17 ms (8 rounds),
 * then 19 vs 17 (15 rounds): no gain shown, so the pair stays.
 *
 * sequence_lens must be constant (the packer folds it into an attribute),
 * each in 1..S: entry b runs its first len[b] steps (a reverse direction
 * starts at len[b] - 1), Y is zero past them and Y_h / Y_c are the states
 * after its own last step, as ONNX specifies. Custom activations are refused, but for Relu in an
 * RNN (torch's nonlinearity='relu'). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "ops/ops_internal.h"
#include "ops/vecmath.h"

enum { K_RNN, K_GRU, K_LSTM };

typedef struct rnn_state {
    int kind, dirs, layout, lbr, input_forget, has_clip;
    int reverse;              /* one direction, reversed */
    int relu;                 /* RNN with activations = Relu (not tanh) */
    float clip;
    int64_t S, B, I, H, G;    /* sequence, batch, input size, hidden, gates */
    uint32_t n_in, n_out;
    float *xw, *hr, *h, *c, *tmp; /* scratch */
    int fast;                 /* lstm_fast: LSTM, no peepholes, no input_forget */
    float *fh[2], *fc[2], *fg[2], *ft[2]; /* lstm_fast, per direction: h, c, gates, tanh c */
    int64_t *len;             /* sequence_lens when some entry is shorter than S, else NULL */
} rnn_state;

/* The time index entry b works on at step `step` of a direction, or -1 once
 * its sequence has ended. */
static int64_t step_t(const rnn_state *s, int rev, int64_t step, int64_t b)
{
    const int64_t L = s->len ? s->len[b] : s->S;
    if (step >= L)
        return -1;
    return rev ? L - 1 - step : step;
}

static int rnn_kind(const char *op)
{
    return strcmp(op, "LSTM") == 0 ? K_LSTM : strcmp(op, "GRU") == 0 ? K_GRU : K_RNN;
}

static const occ_tensor *in_opt(const occ_model *m, const occ_node *n, uint32_t i)
{
    return i < n->n_inputs ? occ_ops_in(m, n, i) : NULL;
}

static occ_status rnn_params(const occ_model *m, const occ_node *n, rnn_state *s, occ_error *e)
{
    occ_status st;
    const occ_tensor *x = occ_ops_in(m, n, 0), *w = occ_ops_in(m, n, 1), *r = occ_ops_in(m, n, 2);
    memset(s, 0, sizeof *s);
    s->kind = rnn_kind(n->op);
    s->G = s->kind == K_LSTM ? 4 : s->kind == K_GRU ? 3 : 1;
    int64_t hs, layout, lbr = 0, inf = 0;
    const char *dir;
    if ((st = occ_ops_attr_int(n, "hidden_size", 0, &hs, e)) ||
        (st = occ_ops_attr_int(n, "layout", 0, &layout, e)) ||
        (st = occ_ops_attr_str(n, "direction", "forward", &dir, e)))
        return st;
    if (s->kind == K_GRU && (st = occ_ops_attr_int(n, "linear_before_reset", 0, &lbr, e)))
        return st;
    if (s->kind == K_LSTM && (st = occ_ops_attr_int(n, "input_forget", 0, &inf, e)))
        return st;
    /* the packer drops default activations and turns an all-Relu RNN's list
     * into the one string "Relu" (onnx_import.c); nothing else is kept */
    const occ_attr *act = occ_ops_attr(n, "activations");
    if (act && s->kind == K_RNN && act->type == OCC_ATTR_STRING && !strcmp(act->s, "Relu")) {
        s->relu = 1;
        act = NULL;
    }
    if (act || occ_ops_attr(n, "activation_alpha") || occ_ops_attr(n, "activation_beta"))
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "%s with custom activations is not supported "
                        "(default sigmoid/tanh only)", n->op);
    const occ_attr *clip = occ_ops_attr(n, "clip");
    if (clip) {
        if (clip->type != OCC_ATTR_FLOAT || !(clip->f > 0))
            return occ_fail(e, OCC_ERR_INVALID, "clip must be a positive float");
        s->has_clip = 1;
        s->clip = clip->f;
    }
    if (layout != 0 && layout != 1)
        return occ_fail(e, OCC_ERR_INVALID, "layout must be 0 or 1");
    s->layout = (int)layout;
    s->lbr = lbr != 0;
    s->input_forget = inf != 0;
    if (!strcmp(dir, "forward") || !strcmp(dir, "reverse")) {
        s->dirs = 1;
        s->reverse = dir[0] == 'r';
    } else if (!strcmp(dir, "bidirectional")) {
        s->dirs = 2;
    } else {
        return occ_fail(e, OCC_ERR_INVALID, "direction = %s (forward, reverse, bidirectional)",
                        dir);
    }
    if (x->ndim != 3)
        return occ_fail(e, OCC_ERR_SHAPE, "X must be 3-D, got rank %d", x->ndim);
    s->S = x->dims[layout ? 1 : 0];
    s->B = x->dims[layout ? 0 : 1];
    s->I = x->dims[2];
    s->H = hs;
    if (hs <= 0 || hs > (1 << 20))
        return occ_fail(e, OCC_ERR_INVALID, "hidden_size = %lld", (long long)hs);
    const int64_t D = s->dirs, GH = s->G * s->H;
    if (w->ndim != 3 || w->dims[0] != D || w->dims[1] != GH || w->dims[2] != s->I)
        return occ_fail(e, OCC_ERR_SHAPE, "W must be [%lld, %lld, %lld]", (long long)D,
                        (long long)GH, (long long)s->I);
    if (r->ndim != 3 || r->dims[0] != D || r->dims[1] != GH || r->dims[2] != s->H)
        return occ_fail(e, OCC_ERR_SHAPE, "R must be [%lld, %lld, %lld]", (long long)D,
                        (long long)GH, (long long)s->H);
    if (w->kind != OCC_TENSOR_WEIGHT || r->kind != OCC_TENSOR_WEIGHT)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "W and R must be constant");
    const occ_tensor *b = in_opt(m, n, 3);
    if (b && (b->ndim != 2 || b->dims[0] != D || b->dims[1] != 2 * GH))
        return occ_fail(e, OCC_ERR_SHAPE, "B must be [%lld, %lld]", (long long)D,
                        (long long)(2 * GH));
    if (in_opt(m, n, 4))
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "sequence_lens must be a constant (folded at "
                        "pack time)");
    const occ_attr *sl = occ_ops_attr(n, "sequence_lens");
    if (sl) {
        if (sl->type != OCC_ATTR_INTS || sl->count != (uint32_t)s->B)
            return occ_fail(e, OCC_ERR_INVALID, "sequence_lens must have %lld values",
                            (long long)s->B);
        for (uint32_t i = 0; i < sl->count; i++)
            if (sl->ints[i] < 1 || sl->ints[i] > s->S)
                return occ_fail(e, OCC_ERR_INVALID, "sequence_lens[%u] = %lld is not in 1..%lld", i,
                                (long long)sl->ints[i], (long long)s->S);
    }
    int64_t sd[3] = {D, s->B, s->H};
    if (layout) {
        sd[0] = s->B;
        sd[1] = D;
    }
    for (uint32_t k = 5; k <= 6; k++) {
        const occ_tensor *t = in_opt(m, n, k);
        if (!t)
            continue;
        if (k == 6 && s->kind != K_LSTM)
            return occ_fail(e, OCC_ERR_INVALID, "%s has no input 6", n->op);
        if (t->ndim != 3 || memcmp(t->dims, sd, sizeof sd))
            return occ_fail(e, OCC_ERR_SHAPE, "initial_%c must be [%lld, %lld, %lld]",
                            k == 5 ? 'h' : 'c', (long long)sd[0], (long long)sd[1],
                            (long long)sd[2]);
    }
    const occ_tensor *p = in_opt(m, n, 7);
    if (p && (s->kind != K_LSTM || p->ndim != 2 || p->dims[0] != D || p->dims[1] != 3 * s->H))
        return occ_fail(e, OCC_ERR_SHAPE, "P must be [%lld, %lld]", (long long)D,
                        (long long)(3 * s->H));
    s->n_in = n->n_inputs;
    s->n_out = n->n_outputs;
    return OCC_OK;
}

static occ_status rnn_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    rnn_state s;
    occ_status st = rnn_params(m, n, &s, e);
    if (st)
        return st;
    if (s.kind != K_LSTM && n->n_outputs > 2)
        return occ_fail(e, OCC_ERR_INVALID, "%s has at most 2 outputs", n->op);
    int64_t y[4] = {s.S, s.dirs, s.B, s.H}, yh[3] = {s.dirs, s.B, s.H};
    if (s.layout) {
        int64_t y1[4] = {s.B, s.S, s.dirs, s.H}, yh1[3] = {s.B, s.dirs, s.H};
        memcpy(y, y1, sizeof y);
        memcpy(yh, yh1, sizeof yh);
    }
    if ((st = occ_ops_set_out(m, n, 0, 4, y, e)))
        return st;
    for (uint32_t k = 1; k < n->n_outputs; k++)
        if ((st = occ_ops_set_out(m, n, k, 3, yh, e)))
            return st;
    return OCC_OK;
}

static uint64_t rnn_flops(const occ_model *m, const occ_node *n)
{
    rnn_state s;
    if (rnn_params(m, n, &s, NULL))
        return 0;
    return 2u * (uint64_t)s.dirs * (uint64_t)s.S * (uint64_t)s.B * (uint64_t)(s.G * s.H) *
           (uint64_t)(s.I + s.H);
}

static void rnn_destroy(void *p)
{
    rnn_state *s = p;
    if (!s)
        return;
    occ_ops_free(s->xw);
    occ_ops_free(s->hr);
    occ_ops_free(s->h);
    occ_ops_free(s->c);
    occ_ops_free(s->tmp);
    free(s->len);
    for (int d = 0; d < 2; d++) {
        occ_ops_free(s->fh[d]);
        occ_ops_free(s->fc[d]);
        occ_ops_free(s->fg[d]);
        occ_ops_free(s->ft[d]);
    }
    free(s);
}

static occ_status rnn_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    rnn_state *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    occ_status st = rnn_params(p->m, p->n, s, e);
    if (st) {
        free(s);
        return st;
    }
    const occ_attr *sl = occ_ops_attr(p->n, "sequence_lens");
    for (uint32_t i = 0; sl && i < sl->count; i++)
        if (sl->ints[i] != s->S) { /* some entry is shorter: keep them all */
            if (!(s->len = malloc((size_t)s->B * sizeof *s->len))) {
                rnn_destroy(s);
                return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
            }
            memcpy(s->len, sl->ints, (size_t)s->B * sizeof *s->len);
            break;
        }
    const uint64_t GH = (uint64_t)(s->G * s->H), BH = (uint64_t)(s->B * s->H);
    uint64_t xw_size;
    /* S * B * G * H floats: each factor is bounded by a checked tensor, not
     * their product */
    if (__builtin_mul_overflow((uint64_t)s->S * (uint64_t)s->B, GH * 4u, &xw_size)) {
        rnn_destroy(s);
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "%s state too large", p->n->op);
    }
    s->fast = s->kind == K_LSTM && !s->input_forget && !in_opt(p->m, p->n, 7);
    if (s->fast) {
        /* the projections of both directions side by side: [S * B, dirs * G * H] */
        s->xw = occ_ops_alloc(xw_size * (uint64_t)s->dirs);
        int ok = s->xw != NULL;
        for (int d = 0; d < s->dirs; d++) {
            s->fh[d] = occ_ops_alloc(BH * 4u);
            s->fc[d] = occ_ops_alloc(BH * 4u);
            s->ft[d] = occ_ops_alloc(BH * 4u);
            s->fg[d] = occ_ops_alloc((uint64_t)s->B * GH * 4u);
            ok &= s->fh[d] && s->fc[d] && s->ft[d] && s->fg[d];
        }
        if (!ok) {
            rnn_destroy(s);
            return occ_fail(e, OCC_ERR_NOMEM, "out of memory for %s state", p->n->op);
        }
        *state = s;
        return OCC_OK;
    }
    s->xw = occ_ops_alloc(xw_size);
    s->hr = occ_ops_alloc((uint64_t)s->B * GH * 4u);
    s->h = occ_ops_alloc(BH * 4u);
    s->c = occ_ops_alloc(BH * 4u);
    s->tmp = occ_ops_alloc(BH * 4u);
    if (!s->xw || !s->hr || !s->h || !s->c || !s->tmp) {
        rnn_destroy(s);
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory for %s state", p->n->op);
    }
    *state = s;
    return OCC_OK;
}

static float sigm(float v)
{
    return 1.0f / (1.0f + expf(-v));
}

static float clipv(const rnn_state *s, float v)
{
    if (!s->has_clip)
        return v;
    return v < -s->clip ? -s->clip : (v > s->clip ? s->clip : v);
}

/* Index of (t, b) in X's rows and in Y (dir d). */
static int64_t x_row(const rnn_state *s, int64_t t, int64_t b)
{
    return s->layout ? b * s->S + t : t * s->B + b;
}
static int64_t y_off(const rnn_state *s, int64_t t, int d, int64_t b)
{
    return (s->layout ? ((b * s->S + t) * s->dirs + d) : ((t * s->dirs + d) * s->B + b)) * s->H;
}
static int64_t st_off(const rnn_state *s, int d, int64_t b)
{
    return (s->layout ? b * s->dirs + d : d * s->B + b) * s->H;
}

static occ_status sgemm_nt(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                           const float *b, int64_t ldb, float beta, float *c, int64_t ldc,
                           occ_error *e)
{
    /* C[m x n] = A[m x k] * B[n x k]^T + beta * C */
    return occ_dnnl_check(dnnl_sgemm('N', 'T', m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc),
                          "sgemm", e);
}

/* One direction d of lstm_fast over the whole sequence (xw holds the input
 * projections plus both biases). No oneDNN call: it may run on a thread of
 * its own, beside the other direction. */
static void lstm_dir(const rnn_state *s, const occ_op_exec *x, int d)
{
    const int64_t S = s->S, B = s->B, H = s->H, GH = 4 * H, DG = s->dirs * GH;
    const int rev = s->dirs == 2 ? d == 1 : s->reverse;
    const float *R = (const float *)x->in[2] + (int64_t)d * GH * H;
    const float *h0 = s->n_in > 5 ? x->in[5] : NULL;
    const float *c0 = s->n_in > 6 ? x->in[6] : NULL;
    float *Y = x->out[0];
    float *Yh = s->n_out > 1 ? x->out[1] : NULL;
    float *Yc = s->n_out > 2 ? x->out[2] : NULL;
    float *h = s->fh[d], *c = s->fc[d], *g = s->fg[d], *th = s->ft[d];
    for (int64_t b = 0; b < B; b++)
        for (int64_t j = 0; j < H; j++) {
            h[b * H + j] = h0 ? h0[st_off(s, d, b) + j] : 0.0f;
            c[b * H + j] = c0 ? c0[st_off(s, d, b) + j] : 0.0f;
        }
    for (int64_t step = 0; step < S; step++) {
        /* gates = (X W^T + Wb + Rb) + H_{t-1} R^T, every batch row before h moves */
        for (int64_t b = 0; b < B; b++) {
            const int64_t t = step_t(s, rev, step, b);
            if (t >= 0)
                occ_vec_gemv(R, GH, H, H, h + b * H, s->xw + x_row(s, t, b) * DG + d * GH,
                             g + b * GH);
        }
        for (int64_t b = 0; b < B; b++) {
            const int64_t t = step_t(s, rev, step, b);
            if (t < 0)
                continue; /* its sequence has ended: h and c stay its final states */
            float *gb = g + b * GH, *cb = c + b * H, *hb = h + b * H, *tb = th + b * H;
            if (s->has_clip)
                for (int64_t j = 0; j < GH; j++)
                    gb[j] = clipv(s, gb[j]);
            /* ONNX order i, o, f, c: three sigmoids side by side, then tanh */
            occ_vec_sigmoid(gb, gb, 3 * H);
            occ_vec_tanh(gb + 3 * H, gb + 3 * H, H);
            for (int64_t j = 0; j < H; j++)
                cb[j] = gb[2 * H + j] * cb[j] + gb[j] * gb[3 * H + j];
            occ_vec_tanh(cb, tb, H);
            for (int64_t j = 0; j < H; j++)
                hb[j] = gb[H + j] * tb[j];
            memcpy(Y + y_off(s, t, d, b), hb, (size_t)H * sizeof(float));
        }
    }
    for (int64_t b = 0; b < B; b++) {
        if (Yh)
            memcpy(Yh + st_off(s, d, b), h + b * H, (size_t)H * sizeof(float));
        if (Yc)
            memcpy(Yc + st_off(s, d, b), c + b * H, (size_t)H * sizeof(float));
    }
}

static occ_status lstm_fast(rnn_state *s, const occ_op_exec *x, occ_error *e)
{
    const int64_t S = s->S, B = s->B, I = s->I, GH = 4 * s->H, DG = s->dirs * GH;
    const float *Bias = s->n_in > 3 ? x->in[3] : NULL;
    /* W is [dirs, 4H, I]: both directions' projections in one sgemm */
    occ_status st = sgemm_nt(S * B, DG, I, x->in[0], I, x->in[1], I, 0.0f, s->xw, DG, e);
    if (st)
        return st;
    if (Bias)
        for (int64_t r = 0; r < S * B; r++)
            for (int d = 0; d < s->dirs; d++) {
                const float *wb = Bias + (int64_t)d * 2 * GH, *rb = wb + GH;
                float *row = s->xw + r * DG + d * GH;
                for (int64_t j = 0; j < GH; j++)
                    row[j] += wb[j] + rb[j];
            }
    if (s->len) /* Y is zero past each entry's length */
        memset(x->out[0], 0, (size_t)(S * s->dirs * B * s->H) * sizeof(float));
    const int par = s->dirs == 2 && omp_get_max_threads() > 1;
#pragma omp parallel for num_threads(2) if (par) schedule(static, 1)
    for (int d = 0; d < s->dirs; d++)
        lstm_dir(s, x, d);
    return OCC_OK;
}

static occ_status rnn_run(void *state, const occ_op_exec *x, occ_error *e)
{
    if (((rnn_state *)state)->fast)
        return lstm_fast(state, x, e);
    rnn_state *s = state;
    const int64_t S = s->S, B = s->B, I = s->I, H = s->H, G = s->G, GH = G * H;
    const float *X = x->in[0];
    const float *W = x->in[1];
    const float *R = x->in[2];
    const float *Bias = s->n_in > 3 ? x->in[3] : NULL;
    const float *h0 = s->n_in > 5 ? x->in[5] : NULL;
    const float *c0 = s->n_in > 6 ? x->in[6] : NULL;
    const float *P = s->n_in > 7 ? x->in[7] : NULL;
    float *Y = x->out[0];
    float *Yh = s->n_out > 1 ? x->out[1] : NULL;
    float *Yc = s->n_out > 2 ? x->out[2] : NULL;
    occ_status st;
    if (s->len) /* Y is zero past each entry's length */
        memset(Y, 0, (size_t)(S * s->dirs * B * H) * sizeof(float));
    for (int d = 0; d < s->dirs; d++) {
        const int rev = s->dirs == 2 ? d == 1 : s->reverse;
        const float *Wd = W + (int64_t)d * GH * I, *Rd = R + (int64_t)d * GH * H;
        const float *wb = Bias ? Bias + (int64_t)d * 2 * GH : NULL, *rb = wb ? wb + GH : NULL;
        const float *Pd = P ? P + (int64_t)d * 3 * H : NULL;
        /* input projections of every step: rows in X's order */
        if ((st = sgemm_nt(S * B, GH, I, X, I, Wd, I, 0.0f, s->xw, GH, e)))
            return st;
        for (int64_t b = 0; b < B; b++) {
            for (int64_t j = 0; j < H; j++) {
                s->h[b * H + j] = h0 ? h0[st_off(s, d, b) + j] : 0.0f;
                s->c[b * H + j] = c0 ? c0[st_off(s, d, b) + j] : 0.0f;
            }
        }
        for (int64_t step = 0; step < S; step++) {
            /* recurrence: hr = H_{t-1} R^T (+ Rb) */
            if ((st = sgemm_nt(B, GH, H, s->h, H, Rd, H, 0.0f, s->hr, GH, e)))
                return st;
            if (s->kind == K_GRU && !s->lbr) {
                /* h gate: (r . H_{t-1}) Rh^T, r first */
                for (int64_t b = 0; b < B; b++) {
                    const int64_t t = step_t(s, rev, step, b);
                    if (t < 0) { /* ended: its row of the product is not used */
                        memset(s->tmp + b * H, 0, (size_t)H * sizeof(float));
                        continue;
                    }
                    const float *xw = s->xw + x_row(s, t, b) * GH, *hr = s->hr + b * GH;
                    for (int64_t j = 0; j < H; j++) {
                        float r = xw[H + j] + hr[H + j] + (wb ? wb[H + j] + rb[H + j] : 0.0f);
                        s->tmp[b * H + j] = sigm(clipv(s, r)) * s->h[b * H + j];
                    }
                }
                if ((st = sgemm_nt(B, H, H, s->tmp, H, Rd + 2 * H * H, H, 0.0f, s->hr + 2 * H,
                                   GH, e)))
                    return st;
            }
            for (int64_t b = 0; b < B; b++) {
                const int64_t t = step_t(s, rev, step, b);
                if (t < 0) { /* ended: h and c stay its final states */
                    memcpy(s->tmp + b * H, s->h + b * H, (size_t)H * sizeof(float));
                    continue;
                }
                const float *xw = s->xw + x_row(s, t, b) * GH, *hr = s->hr + b * GH;
                float *h = s->h + b * H, *c = s->c + b * H;
                for (int64_t j = 0; j < H; j++) {
                    float gv[4];
                    for (int64_t g = 0; g < G; g++) {
                        gv[g] = xw[g * H + j] + (wb ? wb[g * H + j] : 0.0f);
                        /* GRU's h gate gets its recurrent part below */
                        if (!(s->kind == K_GRU && g == 2))
                            gv[g] += hr[g * H + j] + (rb ? rb[g * H + j] : 0.0f);
                    }
                    float hn;
                    if (s->kind == K_RNN) {
                        const float a = clipv(s, gv[0]);
                        hn = s->relu ? (a > 0.0f ? a : 0.0f) : tanhf(a);
                    } else if (s->kind == K_GRU) {
                        const float z = sigm(clipv(s, gv[0]));
                        const float r = sigm(clipv(s, gv[1]));
                        const float rbh = rb ? rb[2 * H + j] : 0.0f;
                        const float rec = s->lbr ? r * (hr[2 * H + j] + rbh) : hr[2 * H + j] + rbh;
                        const float hh = tanhf(clipv(s, gv[2] + rec));
                        hn = (1.0f - z) * hh + z * h[j];
                    } else {
                        /* gates i, o, f, c; peepholes i, o, f */
                        float gi = gv[0], go = gv[1], gf = gv[2], gc = gv[3];
                        if (Pd) {
                            gi += Pd[j] * c[j];
                            gf += Pd[2 * H + j] * c[j];
                        }
                        const float i_ = sigm(clipv(s, gi));
                        const float f_ = s->input_forget ? 1.0f - i_ : sigm(clipv(s, gf));
                        const float c_ = tanhf(clipv(s, gc));
                        const float cn = f_ * c[j] + i_ * c_;
                        if (Pd)
                            go += Pd[H + j] * cn;
                        const float o_ = sigm(clipv(s, go));
                        c[j] = cn;
                        hn = o_ * tanhf(cn);
                    }
                    s->tmp[b * H + j] = hn;
                }
            }
            memcpy(s->h, s->tmp, (size_t)(B * H) * sizeof(float));
            for (int64_t b = 0; b < B; b++) {
                const int64_t t = step_t(s, rev, step, b);
                if (t >= 0)
                    memcpy(Y + y_off(s, t, d, b), s->h + b * H, (size_t)H * sizeof(float));
            }
        }
        for (int64_t b = 0; b < B; b++) {
            if (Yh)
                memcpy(Yh + st_off(s, d, b), s->h + b * H, (size_t)H * sizeof(float));
            if (Yc)
                memcpy(Yc + st_off(s, d, b), s->c + b * H, (size_t)H * sizeof(float));
        }
    }
    return OCC_OK;
}

#define RNN_OP(var, name, maxin, nout)                                                    \
    const occ_op_vtable var = {.op = name,                                                \
                               .min_in = 3,                                               \
                               .max_in = maxin,                                           \
                               .n_out = nout,                                             \
                               .min_out = 1,                                              \
                               .infer = rnn_infer,                                        \
                               .flops = rnn_flops,                                        \
                               .prepare = rnn_prepare,                                    \
                               .run = rnn_run,                                            \
                               .destroy = rnn_destroy}

RNN_OP(occ_op_rnn, "RNN", 6, 2);
RNN_OP(occ_op_gru, "GRU", 6, 2);
RNN_OP(occ_op_lstm, "LSTM", 8, 3);
