/* Pack-time rewrites of the patterns exporters leave decomposed, into the
 * single operators the engine runs in one pass (and one kernel):
 *
 *   LayerNorm: ReduceMean(x) -> Sub -> Pow 2 (or Mul d d) -> ReduceMean ->
 *     Add eps -> Sqrt -> Div [-> Mul gamma] [-> Add beta], all over the last
 *     axis  =>  LayerNormalization(x, gamma, beta, axis -1, epsilon)
 *     (nine passes over the activations and eight buffers become one);
 *   GELU: x * 0.5 * (1 + Erf(x / sqrt 2)) in the orders torch and
 *     Hugging Face export it  =>  Gelu(x) (approximate none);
 *   MatMul with a constant 2-D B (a Linear) and A of rank >= 2: B stored
 *     in panels of 16 columns with attribute occ_packB = N (src/ops/matmul.c
 *     says why: the packing a GEMM kernel wants, done once), and the bias
 *     Add after it folded into the panels (occ_bias = 1); a Gemm over 16 or
 *     more rows likewise;
 *   Conv over [N, C, L] (1-D, group 1, explicit pads): OccIm2Col (one copy,
 *     src/ops/im2col.c) -> MatMul on the weight's panels (bias inside) ->
 *     Transpose back to [N, O, L'] (oneDNN 2.6 runs those convolutions on
 *     plain layouts through its gemm convolution at a third of the speed);
 *     when the Transpose feeds only layout-free element-wise ops that end
 *     in another such Conv or in a Transpose back, the rows stay time-major
 *     [N, L, C] between them (the next OccIm2Col has layout 1, its weight
 *     rows kernel-tap major) and the Transposes go;
 *   Conv over [N, C, L] (1-D, group G > 1, stride 1, explicit pads, at
 *     least 6 output channels a group): OccGroupConv1d (src/ops/gconv1d.c,
 *     the weight as it is, windows of the padded input read in place), in
 *     parts of at most 2 MiB of weight joined by a channel Concat.
 *
 * Every intermediate value must be read by the pattern alone (not by
 * another node, not a graph output) and every constant must have the value
 * or shape the pattern needs; anything else is left as it is. Replaced
 * nodes are marked dead; the first node of a pattern becomes the fused one
 * (its inputs are available there, and its consumers all come later). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops.h"
#include "pack/imp_graph.h"

typedef struct fctx {
    imp_ctx *c;
    uint32_t *use;  /* per value: reading node slots + graph-output uses */
    int32_t *cons;  /* per value: the last node that reads it */
    uint32_t nv;
} fctx;

static int live_op(const fctx *f, int32_t node, const char *op)
{
    return node >= 0 && (uint32_t)node < f->c->nn && !f->c->dead[node] &&
           strcmp(f->c->nodes[node].op, op) == 0;
}

/* The node producing value v when it is a live op. */
static int32_t prod(const fctx *f, int32_t v, const char *op)
{
    if (v < 0 || (uint32_t)v >= f->nv)
        return -1;
    int32_t p = f->c->v[v].producer;
    return live_op(f, p, op) ? p : -1;
}

/* The only reader of v when it is a live op (v read once, not an output). */
static int32_t only_cons(const fctx *f, int32_t v, const char *op)
{
    if (v < 0 || (uint32_t)v >= f->nv || f->use[v] != 1)
        return -1;
    return live_op(f, f->cons[v], op) ? f->cons[v] : -1;
}

static const imp_cval *fconst(const fctx *f, int32_t v)
{
    if (v < 0 || (uint32_t)v >= f->nv || !f->c->v[v].is_const)
        return NULL;
    const imp_cval *cv = &f->c->v[v].c;
    if (cv->type != CV_FLOAT || imp_cval_dtype(cv) != OCC_DTYPE_FLOAT || !cv->f)
        return NULL;
    return cv;
}

static int scalar_is(const fctx *f, int32_t v, float want, float tol)
{
    const imp_cval *cv = fconst(f, v);
    return cv && cv->count == 1 && fabsf(cv->f[0] - want) <= tol;
}

/* Binary node n with one input v: the other input (-1 when neither is v). */
static int32_t other_in(const occ_node *n, int32_t v)
{
    if (n->n_inputs != 2)
        return -1;
    return n->inputs[0] == v ? n->inputs[1] : n->inputs[1] == v ? n->inputs[0] : -1;
}

/* ReduceMean over the last axis of its input with keepdims. */
static int mean_last(const fctx *f, int32_t node)
{
    const occ_node *n = &f->c->nodes[node];
    if (n->n_inputs < 1 || n->inputs[0] < 0)
        return 0;
    for (uint32_t k = 1; k < n->n_inputs; k++)
        if (n->inputs[k] >= 0)
            return 0;
    const occ_attr *ax = occ_node_attr(n, "axes"), *kd = occ_node_attr(n, "keepdims");
    int rank = f->c->t[n->inputs[0]].ndim;
    if (!ax || ax->type != OCC_ATTR_INTS || ax->count != 1 ||
        !(ax->ints[0] == -1 || ax->ints[0] == rank - 1) || rank < 1)
        return 0;
    return !kd || (kd->type == OCC_ATTR_INT && kd->i == 1);
}

/* A float constant whose values run along the last axis of an activation of
 * rank r with last dim len: [len] or [1, ..., 1, len] of rank <= r. */
static int lastdim_const(const fctx *f, int32_t v, int64_t len, int r)
{
    const imp_cval *cv = fconst(f, v);
    if (!cv || cv->count != len || cv->ndim < 1 || cv->ndim > r || cv->dims[cv->ndim - 1] != len)
        return 0;
    return 1;
}

static int32_t new_const(fctx *f, const char *base, imp_cval *cv)
{
    imp_ctx *c = f->c;
    const char *nm = imp_unique_name(c, base);
    int32_t idx = nm ? imp_val_new(c, nm) : OCC_ERR_NOMEM;
    if (idx < 0) {
        imp_cval_clear(cv);
        return idx;
    }
    imp_val_set_const(c, idx, cv);
    return idx;
}

static occ_status node_ins(fctx *f, occ_node *n, uint32_t count, const int32_t *ins)
{
    int32_t *ni = imp_alloc(f->c->A, count * sizeof *ni);
    if (!ni)
        return occ_fail(f->c->e, OCC_ERR_NOMEM, "out of memory");
    memcpy(ni, ins, count * sizeof *ni);
    n->inputs = ni;
    n->n_inputs = count;
    return OCC_OK;
}

/* Makes node `at` the fused node: op, inputs, attributes, output `out`;
 * kills the other nodes of the pattern. */
static occ_status replace(fctx *f, uint32_t at, const char *op, uint32_t nin, const int32_t *ins,
                          uint32_t nattr, const occ_attr *attrs, int32_t out,
                          const int32_t *kill, uint32_t nkill)
{
    imp_ctx *c = f->c;
    occ_node *n = &c->nodes[at];
    occ_status s = node_ins(f, n, nin, ins);
    if (s)
        return s;
    int32_t *no = imp_alloc(c->A, sizeof *no);
    occ_attr *na = nattr ? imp_alloc(c->A, nattr * sizeof *na) : NULL;
    if (!no || (nattr && !na))
        return occ_fail(c->e, OCC_ERR_NOMEM, "out of memory");
    if (nattr)
        memcpy(na, attrs, nattr * sizeof *na);
    no[0] = out;
    n->op = op;
    n->outputs = no;
    n->n_outputs = 1;
    n->attrs = na;
    n->n_attrs = nattr;
    for (uint32_t k = 0; k < nkill; k++)
        if (kill[k] >= 0 && (uint32_t)kill[k] != at)
            c->dead[kill[k]] = 1;
    c->v[out].producer = (int32_t)at;
    return OCC_OK;
}

static int32_t min_node(const int32_t *k, uint32_t n)
{
    int32_t m = -1;
    for (uint32_t i = 0; i < n; i++)
        if (k[i] >= 0 && (m < 0 || k[i] < m))
            m = k[i];
    return m;
}

/* The LayerNorm pattern ending at Div node `dv`; 1 when fused. */
static int fuse_layernorm(fctx *f, uint32_t dv, occ_status *st)
{
    imp_ctx *c = f->c;
    const occ_node *div = &c->nodes[dv];
    if (div->n_inputs != 2)
        return 0;
    int32_t d = div->inputs[0], sq = div->inputs[1];
    int32_t nsqrt = prod(f, sq, "Sqrt");
    if (nsqrt < 0 || f->use[sq] != 1)
        return 0;
    int32_t ve = c->nodes[nsqrt].inputs[0];
    int32_t nadd = prod(f, ve, "Add");
    if (nadd < 0 || f->use[ve] != 1)
        return 0;
    int32_t v = c->nodes[nadd].inputs[0], epsv = c->nodes[nadd].inputs[1];
    if (fconst(f, v)) {
        int32_t t = v;
        v = epsv;
        epsv = t;
    }
    const imp_cval *eps = fconst(f, epsv);
    int32_t nvar = prod(f, v, "ReduceMean");
    if (!eps || eps->count != 1 || !(eps->f[0] >= 0.0f) || nvar < 0 || f->use[v] != 1 ||
        !mean_last(f, nvar))
        return 0;
    int32_t p = c->nodes[nvar].inputs[0];
    int32_t npow = prod(f, p, "Pow"), nsq = prod(f, p, "Mul");
    if (f->use[p] != 1)
        return 0;
    if (npow >= 0) {
        const occ_node *pw = &c->nodes[npow];
        if (pw->n_inputs != 2 || pw->inputs[0] != d || !scalar_is(f, pw->inputs[1], 2.0f, 0.0f))
            return 0;
    } else if (nsq >= 0) {
        const occ_node *ml = &c->nodes[nsq];
        if (ml->n_inputs != 2 || ml->inputs[0] != d || ml->inputs[1] != d)
            return 0;
    } else {
        return 0;
    }
    int32_t nsub = prod(f, d, "Sub");
    /* d is read by the square and the Div only (Mul d d reads it twice) */
    if (nsub < 0 || f->use[d] != (npow >= 0 ? 2u : 3u))
        return 0;
    int32_t x = c->nodes[nsub].inputs[0], mu = c->nodes[nsub].inputs[1];
    int32_t nmean = prod(f, mu, "ReduceMean");
    if (nmean < 0 || f->use[mu] != 1 || !mean_last(f, nmean) || c->nodes[nmean].inputs[0] != x)
        return 0;
    const occ_tensor *xt = &c->t[x];
    if (xt->ndim < 1 || occ_tensor_dtype(xt) != OCC_DTYPE_FLOAT || fconst(f, x))
        return 0;
    int64_t len = xt->dims[xt->ndim - 1];
    int32_t y = div->outputs[0], gamma = -1, beta = -1;
    int32_t nmul = only_cons(f, y, "Mul"), nb = -1;
    if (nmul >= 0) {
        gamma = other_in(&c->nodes[nmul], y);
        if (!lastdim_const(f, gamma, len, xt->ndim))
            nmul = -1, gamma = -1;
        else
            y = c->nodes[nmul].outputs[0];
    }
    nb = only_cons(f, y, "Add");
    if (nb >= 0) {
        beta = other_in(&c->nodes[nb], y);
        if (!lastdim_const(f, beta, len, xt->ndim))
            nb = -1, beta = -1;
        else
            y = c->nodes[nb].outputs[0];
    }
    /* the fused output keeps the pattern's last value (its shape is x's) */
    const occ_tensor *yt = &c->t[y];
    if (yt->ndim != xt->ndim || memcmp(yt->dims, xt->dims, sizeof(int64_t) * (size_t)xt->ndim))
        return 0;
    float epsf = eps->f[0];
    if (gamma < 0) {
        imp_cval one = {.type = CV_FLOAT, .ndim = 1, .count = len};
        one.dims[0] = len;
        if ((*st = imp_cval_alloc(&one, c->e)))
            return 0;
        for (int64_t i = 0; i < len; i++)
            one.f[i] = 1.0f;
        gamma = new_const(f, "layernorm.scale", &one);
        if (gamma < 0) {
            *st = gamma;
            return 0;
        }
    }
    int32_t kill[9] = {nmean, nsub, npow >= 0 ? npow : nsq, nvar, nadd, nsqrt, (int32_t)dv, nmul,
                       nb};
    int32_t at = min_node(kill, 9);
    int32_t ins[3] = {x, gamma, beta};
    occ_attr at2[2];
    memset(at2, 0, sizeof at2);
    at2[0].name = "axis";
    at2[0].type = OCC_ATTR_INT;
    at2[0].i = -1;
    at2[1].name = "epsilon";
    at2[1].type = OCC_ATTR_FLOAT;
    at2[1].f = epsf;
    *st = replace(f, (uint32_t)at, "LayerNormalization", beta >= 0 ? 3 : 2, ins, 2, at2, y, kill,
                  9);
    return !*st;
}

/* GELU around Erf node `ne`: Erf(x / sqrt2 | x * (1/sqrt2)) -> Add 1 -> then
 * Mul by x and by 0.5 in either order (x * 0.5 first, or the product last). */
static int fuse_gelu(fctx *f, uint32_t ne, occ_status *st)
{
    imp_ctx *c = f->c;
    const occ_node *erf = &c->nodes[ne];
    int32_t u = erf->inputs[0];
    int32_t ndiv = prod(f, u, "Div"), nsc = prod(f, u, "Mul");
    int32_t nscale = ndiv >= 0 ? ndiv : nsc;
    if (nscale < 0 || f->use[u] != 1 || c->nodes[nscale].n_inputs != 2)
        return 0;
    int32_t x;
    if (ndiv >= 0) {
        x = c->nodes[ndiv].inputs[0];
        if (!scalar_is(f, c->nodes[ndiv].inputs[1], 1.41421356f, 1e-5f))
            return 0;
    } else {
        const occ_node *m = &c->nodes[nsc];
        x = fconst(f, m->inputs[0]) ? m->inputs[1] : m->inputs[0];
        if (!scalar_is(f, other_in(m, x), 0.70710678f, 1e-6f))
            return 0;
    }
    if (x < 0 || fconst(f, x) || occ_tensor_dtype(&c->t[x]) != OCC_DTYPE_FLOAT)
        return 0;
    int32_t ev = erf->outputs[0];
    int32_t nadd = only_cons(f, ev, "Add");
    if (nadd < 0 || !scalar_is(f, other_in(&c->nodes[nadd], ev), 1.0f, 0.0f))
        return 0;
    int32_t a = c->nodes[nadd].outputs[0];
    int32_t m1 = only_cons(f, a, "Mul");
    if (m1 < 0)
        return 0;
    int32_t o1 = other_in(&c->nodes[m1], a), y = -1, m2 = -1, m0 = -1;
    if (o1 == x) {
        /* (x * (1 + erf)) * 0.5 */
        int32_t v1 = c->nodes[m1].outputs[0];
        m2 = only_cons(f, v1, "Mul");
        if (m2 < 0 || !scalar_is(f, other_in(&c->nodes[m2], v1), 0.5f, 0.0f))
            return 0;
        y = c->nodes[m2].outputs[0];
    } else if (scalar_is(f, o1, 0.5f, 0.0f)) {
        /* x * ((1 + erf) * 0.5) */
        int32_t v1 = c->nodes[m1].outputs[0];
        m2 = only_cons(f, v1, "Mul");
        if (m2 < 0 || other_in(&c->nodes[m2], v1) != x)
            return 0;
        y = c->nodes[m2].outputs[0];
    } else {
        /* (x * 0.5) * (1 + erf) */
        m0 = prod(f, o1, "Mul");
        if (m0 < 0 || f->use[o1] != 1 || other_in(&c->nodes[m0], x) < 0 ||
            !scalar_is(f, other_in(&c->nodes[m0], x), 0.5f, 0.0f))
            return 0;
        y = c->nodes[m1].outputs[0];
    }
    const occ_tensor *xt = &c->t[x], *yt = &c->t[y];
    if (yt->ndim != xt->ndim || memcmp(yt->dims, xt->dims, sizeof(int64_t) * (size_t)xt->ndim))
        return 0;
    int32_t kill[6] = {nscale, (int32_t)ne, nadd, m1, m2, m0};
    int32_t at = min_node(kill, 6);
    occ_attr ap;
    memset(&ap, 0, sizeof ap);
    ap.name = "approximate";
    ap.type = OCC_ATTR_STRING;
    ap.s = "none";
    ap.count = 4;
    *st = replace(f, (uint32_t)at, "Gelu", 1, &x, 1, &ap, y, kill, 6);
    return !*st;
}

static occ_attr mk_int(const char *name, int64_t v);
static int int_attr_is(const occ_attr *a, int64_t want);

/* Panels pay off for real layers only: under 16 columns the padding would
 * multiply the weight, and a tiny product runs as fast on sgemm. */
enum { PANEL_MIN_N = 16, PANEL_MIN_ELEMS = 4096 };

static occ_status infer_node(imp_ctx *c, uint32_t idx);

/* Node k becomes op(ins[0..n_in)) -> *out with the given attributes, and
 * its output's type and shape are inferred. */
static occ_status set_node(imp_ctx *c, uint32_t k, const char *name, const char *op,
                           int32_t *ins, uint32_t n_in, int32_t *out, occ_attr *attrs,
                           uint32_t n_attrs)
{
    occ_node *n = &c->nodes[k];
    n->name = name;
    n->op = op;
    n->n_inputs = n_in;
    n->inputs = ins;
    n->n_outputs = 1;
    n->outputs = out;
    n->n_attrs = n_attrs;
    n->attrs = attrs;
    return infer_node(c, k);
}

/* A constant of ceil(N / 16) panels of (K + bias rows) x 16 floats from
 * B [K, N] (tb: stored [N, K]), zero beyond column N, the bias row bv last
 * when given: the layout of occ_packB. Its value id, or negative. */
static int32_t make_panels(fctx *f, const char *base, const float *src, int64_t K, int64_t N,
                           int tb, const float *bv)
{
    const int64_t np = (N + 15) / 16, kb = K + (bv != NULL), ps = kb * 16;
    imp_cval t = {.type = CV_FLOAT, .ndim = 2, .count = np * ps};
    t.dims[0] = np;
    t.dims[1] = ps;
    occ_status s = imp_cval_alloc(&t, f->c->e);
    if (s)
        return s;
    for (int64_t j = 0; j < np; j++)
        for (int64_t i = 0; i < kb; i++)
            for (int64_t q = 0; q < 16; q++) {
                const int64_t col = j * 16 + q;
                t.f[j * ps + i * 16 + q] = col >= N  ? 0.0f
                                           : i == K ? bv[col]
                                           : tb     ? src[col * K + i]
                                                    : src[i * N + col];
            }
    return new_const(f, base, &t);
}

/* Node k becomes MatMul(a, panels of B) with occ_packB = N (and occ_bias =
 * 1 with a bias bv); see make_panels. */
static occ_status to_panel_matmul(fctx *f, uint32_t k, int32_t a, int32_t b, const float *src,
                                  int64_t K, int64_t N, int tb, const float *bv)
{
    imp_ctx *c = f->c;
    char base[200];
    snprintf(base, sizeof base, "%.180s.panels", c->t[b].name ? c->t[b].name : "B");
    int32_t bt = make_panels(f, base, src, K, N, tb, bv);
    if (bt < 0)
        return bt;
    occ_status s;
    occ_attr *na = imp_alloc(c->A, 2 * sizeof *na);
    if (!na)
        return occ_fail(c->e, OCC_ERR_NOMEM, "out of memory");
    na[0] = mk_int("occ_packB", N);
    na[1] = mk_int("occ_bias", 1);
    occ_node *w = &c->nodes[k];
    int32_t ins[2] = {a, bt};
    if ((s = node_ins(f, w, 2, ins)))
        return s;
    w->op = "MatMul";
    w->attrs = na;
    w->n_attrs = bv ? 2 : 1;
    return OCC_OK;
}

/* MatMul(A, B) with B a float constant [K, N] and A of rank >= 2: B in
 * panels of 16 columns, [ceil(N / 16), K * 16], zero-padded (matmul.c). */
static occ_status pack_matmul(fctx *f, uint32_t k)
{
    imp_ctx *c = f->c;
    occ_node *n = &c->nodes[k];
    if (n->n_inputs != 2 || n->n_attrs || n->inputs[0] < 0)
        return OCC_OK;
    int32_t a = n->inputs[0], b = n->inputs[1];
    const imp_cval *B = fconst(f, b);
    if (!B || B->ndim != 2 || fconst(f, a) || c->t[a].ndim < 2 ||
        occ_tensor_dtype(&c->t[a]) != OCC_DTYPE_FLOAT)
        return OCC_OK;
    int64_t K = B->dims[0], N = B->dims[1], np = (N + 15) / 16;
    if (K < 1 || N < PANEL_MIN_N || K * N < PANEL_MIN_ELEMS ||
        c->t[a].dims[c->t[a].ndim - 1] != K || imp_count(2, (int64_t[]){np * 16, K}) < 0)
        return OCC_OK;
    /* a bias Add that only this product feeds goes into the panels */
    int32_t y = n->outputs[0], nadd = only_cons(f, y, "Add"), bias = -1;
    if (nadd >= 0) {
        bias = other_in(&c->nodes[nadd], y);
        const occ_tensor *yt = &c->t[y], *zt = &c->t[c->nodes[nadd].outputs[0]];
        if (!lastdim_const(f, bias, N, yt->ndim) || zt->ndim != yt->ndim ||
            memcmp(zt->dims, yt->dims, sizeof(int64_t) * (size_t)yt->ndim))
            nadd = -1, bias = -1;
    }
    const float *bv = bias >= 0 ? c->v[bias].c.f : NULL;
    occ_status s = to_panel_matmul(f, k, a, b, c->v[b].c.f, K, N, 0, bv);
    if (s)
        return s;
    n = &c->nodes[k];
    if (bias >= 0) {
        /* the product now writes the Add's output */
        int32_t *no = imp_alloc(c->A, sizeof *no);
        if (!no)
            return occ_fail(c->e, OCC_ERR_NOMEM, "out of memory");
        no[0] = c->nodes[nadd].outputs[0];
        n->outputs = no;
        n->n_outputs = 1;
        c->v[no[0]].producer = (int32_t)k;
        c->dead[nadd] = 1;
    }
    return OCC_OK;
}

/* Makes room for cnt nodes before node `at` (later nodes and the producers
 * that name them move up). */
static occ_status insert_nodes(imp_ctx *c, uint32_t at, uint32_t cnt)
{
    uint32_t old = c->nn;
    for (uint32_t i = 0; i < cnt; i++) {
        occ_node *tmp;
        occ_status s = imp_add_node(c, &tmp);
        if (s)
            return s;
    }
    memmove(&c->nodes[at + cnt], &c->nodes[at], (old - at) * sizeof *c->nodes);
    memmove(&c->dead[at + cnt], &c->dead[at], old - at);
    memset(&c->nodes[at], 0, cnt * sizeof *c->nodes);
    memset(&c->dead[at], 0, cnt);
    for (uint32_t v = 0; v < c->nv; v++)
        if (c->v[v].producer >= (int32_t)at)
            c->v[v].producer += (int32_t)cnt;
    return OCC_OK;
}

static occ_status infer_node(imp_ctx *c, uint32_t idx)
{
    occ_model m;
    memset(&m, 0, sizeof m);
    m.tensors = c->t;
    m.n_tensors = c->nv;
    m.nodes = c->nodes;
    m.n_nodes = c->nn;
    occ_status s = occ_op_infer(&m, &c->nodes[idx], c->e);
    if (s)
        return s;
    const occ_node *n = &c->nodes[idx];
    for (uint32_t k = 0; k < n->n_outputs; k++) {
        occ_tensor *t = &c->t[n->outputs[k]];
        t->size = occ_dtype_size(occ_tensor_dtype(t)) * (uint64_t)imp_count(t->ndim, t->dims);
    }
    return OCC_OK;
}

static int32_t new_act(fctx *f, const char *base, uint32_t producer)
{
    const char *nm = imp_unique_name(f->c, base);
    int32_t idx = nm ? imp_val_new(f->c, nm) : OCC_ERR_NOMEM;
    if (idx >= 0)
        f->c->v[idx].producer = (int32_t)producer;
    return idx;
}

static int int_attr_is(const occ_attr *a, int64_t want)
{
    return a->type == OCC_ATTR_INT && a->i == want;
}

static occ_attr mk_int(const char *name, int64_t v)
{
    occ_attr a;
    memset(&a, 0, sizeof a);
    a.name = name;
    a.type = OCC_ATTR_INT;
    a.i = v;
    return a;
}

/* Time-major chains between 1-D convolutions. A Conv rewritten as
 * OccIm2Col -> MatMul -> Transpose computes [N, L, C] rows and transposes
 * them to [N, C, L]; when that Transpose feeds only ops that are element-wise
 * and blind to shape (Gelu, Relu, ...) ending in the next Conv's OccIm2Col
 * or in a Transpose back to [N, L, C], the ops run on the rows as they are:
 * the Transpose goes, the OccIm2Col reads them (layout 1), a Transpose back
 * goes too. wav2vec2's feature encoder paid a transpose and a strided gather
 * per layer for nothing. */
enum { TM_CHAIN_MAX = 8 };

/* one input, one output, each output element a function of the same input
 * element alone (attributes are scalars) */
static int layout_free(const occ_node *n)
{
    static const char *const ops[] = {
        "Gelu", "Relu",    "LeakyRelu", "Elu",  "Selu", "Celu", "Sigmoid",     "HardSigmoid",
        "Tanh", "Softplus", "Softsign", "Mish", "Erf",  "Abs",  "Neg",         "Exp",
        "Log",  "Sqrt",    "Reciprocal", "Sin", "Cos",  "Identity", "HardSwish", "ThresholdedRelu"};
    if (n->n_inputs != 1 || n->n_outputs != 1 || n->inputs[0] < 0)
        return 0;
    for (size_t k = 0; k < sizeof ops / sizeof *ops; k++)
        if (!strcmp(n->op, ops[k]))
            return 1;
    return 0;
}

static int perm_021(const occ_node *n)
{
    const occ_attr *p = occ_node_attr(n, "perm");
    return n->n_inputs == 1 && n->n_outputs == 1 && n->inputs[0] >= 0 && n->n_attrs == 1 && p &&
           p->type == OCC_ATTR_INTS && p->count == 3 && p->ints && p->ints[0] == 0 &&
           p->ints[1] == 2 && p->ints[2] == 1;
}

/* v (read once) back through layout-free ops, each value read once, to a
 * Transpose (0, 2, 1) of a rank-3 float value: the Transpose's node, the ops
 * first to last in chain[0 .. *nc); -1 when v is not such a chain. */
static int32_t tm_chain(const fctx *f, int32_t v, int32_t *chain, uint32_t *nc)
{
    const imp_ctx *c = f->c;
    int32_t back[TM_CHAIN_MAX];
    uint32_t n = 0;
    for (;;) {
        if (v < 0 || (uint32_t)v >= f->nv || f->use[v] != 1 || c->v[v].is_const)
            return -1;
        int32_t p = c->v[v].producer;
        if (p < 0 || (uint32_t)p >= c->nn || c->dead[p])
            return -1;
        const occ_node *pn = &c->nodes[p];
        if (!strcmp(pn->op, "Transpose")) {
            if (!perm_021(pn) || c->t[pn->inputs[0]].ndim != 3 ||
                occ_tensor_dtype(&c->t[pn->inputs[0]]) != OCC_DTYPE_FLOAT)
                return -1;
            for (uint32_t i = 0; i < n; i++)
                chain[i] = back[n - 1 - i];
            *nc = n;
            return p;
        }
        if (!layout_free(pn) || n == TM_CHAIN_MAX)
            return -1;
        back[n++] = p;
        v = pn->inputs[0];
    }
}

/* Drops Transpose node t: chain[0] reads its input, every op's output takes
 * the [N, L, C] shape; *out: the value the chain now ends in. */
static occ_status tm_unwind(fctx *f, int32_t t, const int32_t *chain, uint32_t nc, int32_t *out)
{
    imp_ctx *c = f->c;
    int32_t src = c->nodes[t].inputs[0];
    c->dead[t] = 1;
    for (uint32_t i = 0; i < nc; i++) {
        occ_node *n = &c->nodes[chain[i]];
        occ_status s = node_ins(f, n, 1, &src);
        if (s || (s = infer_node(c, (uint32_t)chain[i])))
            return s;
        src = c->nodes[chain[i]].outputs[0];
    }
    *out = src;
    return OCC_OK;
}

/* Transpose node k (0, 2, 1) at the end of a chain from another: both go,
 * the chain's last op writes k's output. */
static occ_status cancel_transposes(fctx *f, uint32_t k)
{
    imp_ctx *c = f->c;
    const occ_node *n = &c->nodes[k];
    if (!perm_021(n))
        return OCC_OK;
    int32_t chain[TM_CHAIN_MAX], last, y = n->outputs[0];
    uint32_t nc = 0;
    int32_t t = tm_chain(f, n->inputs[0], chain, &nc);
    if (t < 0 || nc == 0)
        return OCC_OK;
    occ_status s = tm_unwind(f, t, chain, nc, &last);
    int32_t *no = imp_alloc(c->A, sizeof *no);
    if (s)
        return s;
    if (!no)
        return occ_fail(c->e, OCC_ERR_NOMEM, "out of memory");
    no[0] = y;
    occ_node *ln = &c->nodes[chain[nc - 1]];
    ln->outputs = no;
    c->v[y].producer = chain[nc - 1];
    c->dead[k] = 1;
    return infer_node(c, (uint32_t)chain[nc - 1]);
}

/* Conv node k over [N, C, L] with a constant W [O, C, kk] (bias optional),
 * group 1, explicit pads: into OccIm2Col -> MatMul (panels) [-> Add] ->
 * Transpose; *added = nodes inserted before it. */

/* A 1-D Conv's attributes, when every one is understood (auto_pad NOTSET,
 * kernel_shape [kk], one stride, one dilation, two pads): 0, else -1 and the
 * Conv is left to the generic kernel. */
typedef struct conv1d_attrs {
    int64_t group, stride, dil, pl, pr;
} conv1d_attrs;

static int conv1d_attrs_get(const occ_node *n, int64_t kk, conv1d_attrs *ca)
{
    *ca = (conv1d_attrs){.group = 1, .stride = 1, .dil = 1};
    for (uint32_t a = 0; a < n->n_attrs; a++) {
        const occ_attr *at = &n->attrs[a];
        if (!strcmp(at->name, "group")) {
            if (at->type != OCC_ATTR_INT || at->i < 1)
                return -1;
            ca->group = at->i;
        } else if (!strcmp(at->name, "auto_pad")) {
            if (at->type != OCC_ATTR_STRING || strcmp(at->s, "NOTSET"))
                return -1;
        } else if (!strcmp(at->name, "kernel_shape")) {
            if (at->type != OCC_ATTR_INTS || at->count != 1 || at->ints[0] != kk)
                return -1;
        } else if (!strcmp(at->name, "strides") || !strcmp(at->name, "dilations")) {
            if (at->type != OCC_ATTR_INTS || at->count != 1 || at->ints[0] < 1)
                return -1;
            *(at->name[0] == 's' ? &ca->stride : &ca->dil) = at->ints[0];
        } else if (!strcmp(at->name, "pads")) {
            if (at->type != OCC_ATTR_INTS || at->count != 2 || at->ints[0] < 0 || at->ints[1] < 0)
                return -1;
            ca->pl = at->ints[0];
            ca->pr = at->ints[1];
        } else {
            return -1;
        }
    }
    return 0;
}
static occ_status conv1d_gemm(fctx *f, uint32_t k, uint32_t *added)
{
    imp_ctx *c = f->c;
    *added = 0;
    const occ_node *n = &c->nodes[k];
    if (n->n_inputs < 2 || n->n_inputs > 3 || n->n_outputs != 1 || n->inputs[0] < 0)
        return OCC_OK;
    int32_t x = n->inputs[0], y = n->outputs[0];
    int32_t bias = n->n_inputs == 3 ? n->inputs[2] : -1;
    const imp_cval *W = fconst(f, n->inputs[1]);
    const occ_tensor *xt = &c->t[x];
    if (!W || W->ndim != 3 || fconst(f, x) || xt->ndim != 3 ||
        occ_tensor_dtype(xt) != OCC_DTYPE_FLOAT || W->dims[1] != xt->dims[1])
        return OCC_OK;
    const int64_t O = W->dims[0], C = W->dims[1], kk = W->dims[2], K = C * kk;
    if (O < PANEL_MIN_N || K * O < PANEL_MIN_ELEMS)
        return OCC_OK;
    if (bias >= 0) {
        const imp_cval *bv = fconst(f, bias);
        if (!bv || bv->count != O || bv->ndim != 1)
            return OCC_OK;
    }
    conv1d_attrs ca;
    if (conv1d_attrs_get(n, kk, &ca) || ca.group != 1)
        return OCC_OK;
    const int64_t stride = ca.stride, dil = ca.dil, pl = ca.pl, pr = ca.pr;
    /* the weight as panels of B = W^T [C kk, O], each with its bias row */
    if (imp_count(2, (int64_t[]){(O + 15) / 16 * 16, K + (bias >= 0)}) < 0)
        return OCC_OK;
    /* x the end of a time-major chain: B's rows kernel-tap major (j C + c),
     * the order of layout 1's columns */
    int32_t chain[TM_CHAIN_MAX];
    uint32_t nc = 0;
    const int32_t tnode = tm_chain(f, x, chain, &nc);
    const float *wsrc = W->f;
    float *wtm = NULL;
    if (tnode >= 0) {
        if (!(wtm = malloc((size_t)(O * K) * sizeof *wtm)))
            return occ_fail(c->e, OCC_ERR_NOMEM, "out of memory");
        for (int64_t o = 0; o < O; o++)
            for (int64_t ch = 0; ch < C; ch++)
                for (int64_t j = 0; j < kk; j++)
                    wtm[o * K + j * C + ch] = W->f[o * K + ch * kk + j];
        wsrc = wtm;
    }
    char base[220];
    const char *cn = n->name ? n->name : "conv";
    snprintf(base, sizeof base, "%.180s.panels", cn);
    int32_t wp = make_panels(f, base, wsrc, K, O, 1, bias >= 0 ? c->v[bias].c.f : NULL);
    free(wtm);
    if (wp < 0)
        return wp;
    occ_status s;
    if (tnode >= 0 && (s = tm_unwind(f, tnode, chain, nc, &x)))
        return s;
    const uint32_t cnt = 2;
    if ((s = insert_nodes(c, k, cnt)))
        return s;
    /* k .. k + cnt - 1: the new nodes; k + cnt: the Conv, to be the Transpose */
    snprintf(base, sizeof base, "%.180s/im2col", cn);
    int32_t vcol = new_act(f, base, k);
    snprintf(base, sizeof base, "%.180s/gemm", cn);
    int32_t vmm = new_act(f, base, k + 1);
    if (vcol < 0 || vmm < 0)
        return occ_fail(c->e, OCC_ERR_NOMEM, "out of memory");
    occ_attr *ia = imp_alloc(c->A, 6 * sizeof *ia), *ma = imp_alloc(c->A, 2 * sizeof *ma),
             *ta = imp_alloc(c->A, sizeof *ta);
    int64_t *perm = imp_alloc(c->A, 3 * sizeof *perm);
    int32_t *io = imp_alloc(c->A, 7 * sizeof *io);
    if (!ia || !ma || !ta || !perm || !io)
        return occ_fail(c->e, OCC_ERR_NOMEM, "out of memory");
    ia[0] = mk_int("kernel", kk);
    ia[1] = mk_int("stride", stride);
    ia[2] = mk_int("dilation", dil);
    ia[3] = mk_int("pad_l", pl);
    ia[4] = mk_int("pad_r", pr);
    ia[5] = mk_int("layout", 1);
    ma[0] = mk_int("occ_packB", O);
    ma[1] = mk_int("occ_bias", 1);
    perm[0] = 0;
    perm[1] = 2;
    perm[2] = 1;
    memset(ta, 0, sizeof *ta);
    ta->name = "perm";
    ta->type = OCC_ATTR_INTS;
    ta->count = 3;
    ta->ints = perm;
    const char *conv_name = c->nodes[k + cnt].name;
    /* x -> im2col -> vcol; (vcol, panels) -> MatMul -> vmm; vmm -> Transpose -> y */
    io[0] = x;
    io[1] = vcol;
    io[2] = vcol;
    io[3] = wp;
    io[4] = vmm;
    io[5] = vmm;
    io[6] = y;
    if ((s = set_node(c, k, c->t[vcol].name, "OccIm2Col", &io[0], 1, &io[1], ia,
                      tnode >= 0 ? 6 : 5)) ||
        (s = set_node(c, k + 1, c->t[vmm].name, "MatMul", &io[2], 2, &io[4], ma,
                      bias >= 0 ? 2 : 1)) ||
        (s = set_node(c, k + cnt, conv_name, "Transpose", &io[5], 1, &io[6], ta, 1)))
        return s;
    *added = cnt;
    return OCC_OK;
}

/* Conv node k over [N, C, L] with a constant W [O, C/G, kk] (bias
 * optional), group G > 1 with O/G >= 6 (the kernel's 6-row block; a
 * depthwise convolution stays on oneDNN), stride 1, explicit pads:
 * OccGroupConv1d, in parts of whole groups (attribute c_in: the first input
 * channel a part reads) joined by a channel Concat when the weight is
 * large; *added = nodes inserted before it. */
enum { GCONV_PART = 2 << 20 };

static occ_status conv1d_group(fctx *f, uint32_t k, uint32_t *added)
{
    imp_ctx *c = f->c;
    occ_node *n = &c->nodes[k];
    if (n->n_inputs < 2 || n->n_inputs > 3 || n->n_outputs != 1 || n->inputs[0] < 0)
        return OCC_OK;
    int32_t x = n->inputs[0], bias = n->n_inputs == 3 ? n->inputs[2] : -1;
    const imp_cval *W = fconst(f, n->inputs[1]);
    const occ_tensor *xt = &c->t[x];
    if (!W || W->ndim != 3 || fconst(f, x) || xt->ndim != 3 ||
        occ_tensor_dtype(xt) != OCC_DTYPE_FLOAT)
        return OCC_OK;
    const int64_t O = W->dims[0], kk = W->dims[2];
    if (bias >= 0) {
        const imp_cval *bv = fconst(f, bias);
        if (!bv || bv->count != O || bv->ndim != 1)
            return OCC_OK;
    }
    conv1d_attrs a1;
    if (conv1d_attrs_get(n, kk, &a1) || a1.stride != 1)
        return OCC_OK;
    const int64_t group = a1.group, dil = a1.dil, pl = a1.pl, pr = a1.pr;
    if (group < 2 || O % group || O / group < 6 || xt->dims[1] % group ||
        W->dims[1] != xt->dims[1] / group)
        return OCC_OK;
    /* parts of whole groups, each weight within GCONV_PART bytes: a step's
     * weight is loaded whole (occlumency streams it as one segment), and
     * wav2vec2's is 18 MiB; the parts' outputs meet in a channel Concat */
    const int64_t cg = W->dims[1], wsize = O * cg * kk * 4;
    int64_t parts = 1;
    while (parts < group && (wsize / parts > GCONV_PART || group % parts))
        parts++;
    const int64_t gp = group / parts, op = O / parts;
    const float *wf = W->f, *bf = bias >= 0 ? c->v[bias].c.f : NULL;
    const char *cn = n->name ? n->name : "conv";
    int32_t y = n->outputs[0];
    if (parts == 1) {
        occ_attr *ga = imp_alloc(c->A, 4 * sizeof *ga);
        if (!ga)
            return occ_fail(c->e, OCC_ERR_NOMEM, "out of memory");
        ga[0] = mk_int("group", group);
        ga[1] = mk_int("dilation", dil);
        ga[2] = mk_int("pad_l", pl);
        ga[3] = mk_int("pad_r", pr);
        n->op = "OccGroupConv1d";
        n->attrs = ga;
        n->n_attrs = 4;
        return infer_node(c, k);
    }
    occ_status s;
    if ((s = insert_nodes(c, k, (uint32_t)parts)))
        return s;
    /* k .. k + parts - 1: the parts; k + parts: the Conv, to be the Concat */
    int32_t *cat_in = imp_alloc(c->A, (size_t)parts * sizeof *cat_in);
    occ_attr *ca = imp_alloc(c->A, sizeof *ca);
    if (!cat_in || !ca)
        return occ_fail(c->e, OCC_ERR_NOMEM, "out of memory");
    for (int64_t q = 0; q < parts; q++) {
        char base[220];
        imp_cval tw = {.type = CV_FLOAT, .ndim = 3, .count = op * cg * kk};
        tw.dims[0] = op;
        tw.dims[1] = cg;
        tw.dims[2] = kk;
        if ((s = imp_cval_alloc(&tw, c->e)))
            return s;
        memcpy(tw.f, wf + q * op * cg * kk, (size_t)(op * cg * kk) * sizeof(float));
        snprintf(base, sizeof base, "%.180s.w%lld", cn, (long long)q);
        int32_t vw = new_const(f, base, &tw), vb = -1;
        if (vw < 0)
            return vw;
        if (bf) {
            imp_cval tb = {.type = CV_FLOAT, .ndim = 1, .count = op};
            tb.dims[0] = op;
            if ((s = imp_cval_alloc(&tb, c->e)))
                return s;
            memcpy(tb.f, bf + q * op, (size_t)op * sizeof(float));
            snprintf(base, sizeof base, "%.180s.b%lld", cn, (long long)q);
            if ((vb = new_const(f, base, &tb)) < 0)
                return vb;
        }
        snprintf(base, sizeof base, "%.180s/part%lld", cn, (long long)q);
        int32_t vy = new_act(f, base, (uint32_t)(k + q));
        occ_attr *ga = imp_alloc(c->A, 5 * sizeof *ga);
        int32_t *io = imp_alloc(c->A, 4 * sizeof *io);
        if (vy < 0 || !ga || !io)
            return occ_fail(c->e, OCC_ERR_NOMEM, "out of memory");
        ga[0] = mk_int("group", gp);
        ga[1] = mk_int("dilation", dil);
        ga[2] = mk_int("pad_l", pl);
        ga[3] = mk_int("pad_r", pr);
        ga[4] = mk_int("c_in", q * gp * cg);
        io[0] = x;
        io[1] = vw;
        io[2] = vb;
        io[3] = vy;
        cat_in[q] = vy;
        if ((s = set_node(c, (uint32_t)(k + q), c->t[vy].name, "OccGroupConv1d", io,
                          bf ? 3 : 2, &io[3], ga, 5)))
            return s;
    }
    int32_t *yo = imp_alloc(c->A, sizeof *yo);
    if (!yo)
        return occ_fail(c->e, OCC_ERR_NOMEM, "out of memory");
    yo[0] = y;
    *ca = mk_int("axis", 1);
    const uint32_t at = (uint32_t)(k + parts);
    if ((s = set_node(c, at, c->nodes[at].name, "Concat", cat_in, (uint32_t)parts, yo, ca, 1)))
        return s;
    *added = (uint32_t)parts;
    return OCC_OK;
}

/* Gemm(A, B[, C]) with A a run-time [M, K] of M >= 16 rows (a transformer's
 * tokens; a CNN's batch-1 classifier keeps its Gemm), B a constant, C a
 * constant row of N or absent, alpha = beta = 1, transA = 0: the same panel
 * MatMul, bias inside. */
static occ_status gemm_to_panels(fctx *f, uint32_t k)
{
    imp_ctx *c = f->c;
    const occ_node *n = &c->nodes[k];
    if (n->n_inputs < 2 || n->n_inputs > 3 || n->n_outputs != 1 || n->inputs[0] < 0)
        return OCC_OK;
    int32_t a = n->inputs[0], b = n->inputs[1], cb = n->n_inputs == 3 ? n->inputs[2] : -1;
    const imp_cval *B = fconst(f, b);
    const occ_tensor *at = &c->t[a];
    if (!B || B->ndim != 2 || fconst(f, a) || at->ndim != 2 || at->dims[0] < 16 ||
        occ_tensor_dtype(at) != OCC_DTYPE_FLOAT)
        return OCC_OK;
    int64_t tb = 0;
    for (uint32_t q = 0; q < n->n_attrs; q++) {
        const occ_attr *x = &n->attrs[q];
        if (!strcmp(x->name, "transB") && x->type == OCC_ATTR_INT && (x->i == 0 || x->i == 1))
            tb = x->i;
        else if (!strcmp(x->name, "transA") && int_attr_is(x, 0))
            continue;
        else if ((!strcmp(x->name, "alpha") || !strcmp(x->name, "beta")) &&
                 x->type == OCC_ATTR_FLOAT && x->f == 1.0f)
            continue;
        else
            return OCC_OK;
    }
    const int64_t K = tb ? B->dims[1] : B->dims[0], N = tb ? B->dims[0] : B->dims[1];
    if (at->dims[1] != K || N < PANEL_MIN_N || K * N < PANEL_MIN_ELEMS)
        return OCC_OK;
    const float *bv = NULL;
    if (cb >= 0) {
        const imp_cval *C = fconst(f, cb);
        if (!C || C->count != N || C->dims[C->ndim - 1] != N)
            return OCC_OK;
        bv = C->f;
    }
    if (imp_count(2, (int64_t[]){(N + 15) / 16 * 16, K + (bv != NULL)}) < 0)
        return OCC_OK;
    return to_panel_matmul(f, k, a, b, B->f, K, N, (int)tb, bv);
}

static occ_status count_uses(fctx *f, const int32_t *gouts, uint32_t ngouts)
{
    imp_ctx *c = f->c;
    free(f->use);
    free(f->cons);
    f->nv = c->nv;
    f->use = calloc(f->nv + 1, sizeof *f->use);
    f->cons = malloc((f->nv + 1) * sizeof *f->cons);
    if (!f->use || !f->cons)
        return occ_fail(c->e, OCC_ERR_NOMEM, "out of memory");
    for (uint32_t v = 0; v < f->nv; v++)
        f->cons[v] = -1;
    for (uint32_t k = 0; k < ngouts; k++)
        if (gouts[k] >= 0 && (uint32_t)gouts[k] < f->nv)
            f->use[gouts[k]] += 2; /* a graph output is never an intermediate */
    for (uint32_t k = 0; k < c->nn; k++) {
        if (c->dead[k])
            continue;
        const occ_node *n = &c->nodes[k];
        for (uint32_t j = 0; j < n->n_inputs; j++) {
            int32_t v = n->inputs[j];
            if (v >= 0 && (uint32_t)v < f->nv) {
                f->use[v]++;
                f->cons[v] = (int32_t)k;
            }
        }
    }
    return OCC_OK;
}

occ_status imp_fuse(imp_ctx *c, const int32_t *gouts, uint32_t ngouts)
{
    fctx f = {c, NULL, NULL, 0};
    occ_status s = count_uses(&f, gouts, ngouts);
    /* LayerNorm and GELU: a pattern fused changes the use counts of values
     * outside it only through its new constants, which nothing else reads */
    for (uint32_t k = 0; k < c->nn && !s; k++) {
        if (c->dead[k])
            continue;
        if (strcmp(c->nodes[k].op, "Div") == 0)
            fuse_layernorm(&f, k, &s);
        else if (strcmp(c->nodes[k].op, "Erf") == 0)
            fuse_gelu(&f, k, &s);
        if (!s && c->nv != f.nv)
            s = count_uses(&f, gouts, ngouts);
    }
    /* 1-D convolutions first: their MatMuls already carry panels */
    for (uint32_t k = 0; k < c->nn && !s; k++) {
        uint32_t added = 0;
        if (!c->dead[k] && strcmp(c->nodes[k].op, "Conv") == 0) {
            s = conv1d_gemm(&f, k, &added);
            if (!s && !added)
                s = conv1d_group(&f, k, &added);
            k += added;
            if (!s && added)
                s = count_uses(&f, gouts, ngouts);
        }
    }
    /* a time-major chain that ends in a Transpose back: the pair goes */
    for (uint32_t k = 0; k < c->nn && !s; k++)
        if (!c->dead[k] && strcmp(c->nodes[k].op, "Transpose") == 0) {
            s = cancel_transposes(&f, k);
            if (!s && c->dead[k])
                s = count_uses(&f, gouts, ngouts);
        }
    for (uint32_t k = 0; k < c->nn && !s; k++)
        if (!c->dead[k] && strcmp(c->nodes[k].op, "MatMul") == 0)
            s = pack_matmul(&f, k);
    for (uint32_t k = 0; k < c->nn && !s; k++)
        if (!c->dead[k] && strcmp(c->nodes[k].op, "Gemm") == 0)
            s = gemm_to_panels(&f, k);
    free(f.use);
    free(f.cons);
    return s;
}
