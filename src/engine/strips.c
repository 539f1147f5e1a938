/* Strip chains ("fused-layer" execution; docs/streaming.md, "Strip
 * chains"): when the feature maps alive at a step alone pass the budget
 * (VGG-16's second conv reads and writes 12.8 MB maps), a run of row-local
 * steps around it - Convs with their fused activations, MaxPool and
 * AveragePool - runs band by band of its last step's output rows. Each band
 * computes backwards the rows every earlier step must give it (the kernels'
 * overlap, striprows.c), so only the chain's input and output are whole and
 * every tensor between exists one band at a time in a small working buffer.
 *
 * Formed at plan time (occlumency mode: only then is the budget known;
 * batch 1, or the image-by-image steps of a batch), only when no plan fits
 * otherwise: the chain grows from
 * the plan's bottleneck step towards its larger whole boundary tensor, and
 * its bands are the tallest whose plan moves the bottleneck out of it.
 * Bands depend on shapes and the budget only, so which rows are read and
 * written when never depends on the input. The chain's weights stay
 * resident (memplan.c refuses the plan otherwise): every band needs all of
 * them. Types: exec_int.h (strip_chain). */
#include <dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/exec_int.h"
#include "engine/striprows.h"
#include "ops/ops_internal.h"

#define MAX_CHAIN 64
/* At most this many bands a chain: the pack's shapes are the host's, and a
 * map of 2^30 rows in one-row bands would loop (and allocate per band) for
 * minutes at create. A model whose chain needs more bands than this gets
 * taller ones, or the plan's refusal. */
#define MAX_BANDS 4096

int occ_engine_strips = 1;
int64_t occ_engine_strip_rows_max = 0;

/* A tensor of a chain as [outer][h][row bytes] (its storage layout). */
typedef struct lay {
    dnnl_format_tag_t tag;
    int64_t outer, row, h;
} lay;

typedef struct skern {
    uint32_t layer;
    int conv;
    occ_strip_geom g;
    void *state;
} skern;

/* A chain's band kernels: one per (layer, band geometry); bands of equal
 * geometry share one. */
struct strip_run {
    uint32_t n_layers, n_bands, n_k;
    lay lay[MAX_CHAIN + 1];
    occ_rows_win win[MAX_CHAIN];
    skern *k;
    uint32_t *band_k;  /* per (band, layer): index in k */
    uint64_t buf_size, scratch;
};

static int64_t align64(int64_t v)
{
    return (v + 63) & ~(int64_t)63;
}

static int32_t step_in(const occ_engine *eng, uint32_t i)
{
    return eng->m->nodes[eng->steps[i].node].inputs[0];
}

/* t's storage (plain: its plain form) as [outer][h][row]; 0 when its layout
 * is not one a band kernel takes. */
static int tensor_lay(const occ_engine *eng, int32_t t, int plain, lay *l)
{
    const occ_tensor *x = &eng->m->tensors[t];
    if (x->ndim != 4 || occ_tensor_dtype(x) != OCC_DTYPE_FLOAT)
        return 0;
    const int64_t N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3];
    l->h = H;
    const trt *tt = &eng->t[t];
    if (plain || !tt->blocked) {
        *l = (lay){dnnl_nchw, N * C, W * 4, H};
        return 1;
    }
    static const dnnl_format_tag_t tags[] = {dnnl_nChw8c, dnnl_nChw16c, dnnl_nhwc, dnnl_nchw};
    for (size_t i = 0; i < sizeof tags / sizeof tags[0]; i++) {
        dnnl_memory_desc_t md;
        dnnl_dims_t d = {N, C, H, W};
        if (dnnl_memory_desc_init_by_tag(&md, 4, d, dnnl_f32, tags[i]) != dnnl_success ||
            !dnnl_memory_desc_equal(&md, &tt->md))
            continue;
        int64_t blk = tags[i] == dnnl_nChw8c ? 8 : tags[i] == dnnl_nChw16c ? 16 : 0;
        if (blk)
            *l = (lay){tags[i], N * ((C + blk - 1) / blk), W * blk * 4, H};
        else if (tags[i] == dnnl_nhwc)
            *l = (lay){tags[i], N, W * C * 4, H};
        else
            *l = (lay){tags[i], N * C, W * 4, H};
        return 1;
    }
    return 0;
}

/* Step i's window along the height. */
static int step_win(const occ_engine *eng, uint32_t i, occ_rows_win *w)
{
    const occ_model *m = eng->m;
    const step *s = &eng->steps[i];
    const occ_node *n = &m->nodes[s->node];
    const occ_tensor *x = occ_ops_in(m, n, 0), *y = &m->tensors[s->out];
    if (!x || x->ndim != 4 || y->ndim != 4)
        return 0;
    int64_t in[2] = {x->dims[2], x->dims[3]}, k[2];
    int64_t ceil_mode = 0;
    if (s->kind == K_CONV) {
        const occ_tensor *wt = occ_ops_in(m, n, 1);
        if (!wt || wt->ndim != 4)
            return 0;
        k[0] = wt->dims[2];
        k[1] = wt->dims[3];
    } else {
        const int64_t *ks;
        uint32_t kc;
        if (occ_ops_attr_ints(n, "kernel_shape", 8, &ks, &kc, NULL) || kc != 2 ||
            occ_ops_attr_int(n, "ceil_mode", 0, &ceil_mode, NULL))
            return 0;
        k[0] = ks[0];
        k[1] = ks[1];
    }
    occ_window win;
    if (occ_ops_window(n, in, k, (int)ceil_mode, &win, NULL) || win.out[0] != y->dims[2])
        return 0;
    *w = (occ_rows_win){win.k[0], win.s[0], win.d[0], win.pb[0], x->dims[2], y->dims[2]};
    return 1;
}

/* Can step i be in a strip chain? A whole (unsplit) direct Conv without a
 * residual sum, or a MaxPool/AveragePool, 2-D, of one image, float, in
 * layouts a band kernel takes. Everything else ends a chain. */
static int step_rowlocal(const occ_engine *eng, uint32_t i)
{
    const occ_model *m = eng->m;
    const step *s = &eng->steps[i];
    const occ_node *n = &m->nodes[s->node];
    if (s->elided || s->fused || s->sum_src >= 0 || n->n_outputs != 1)
        return 0;
    if (eng->batch > 1 && i >= eng->split_k) /* a batch: the image-by-image steps only */
        return 0;
    if (s->kind == K_CONV) {
        if (s->n_parts != 1 || !s->sig || strstr(s->sig[0].impl, "wino"))
            return 0;
    } else if (!(s->kind == K_NONE &&
                 (!strcmp(n->op, "MaxPool") || !strcmp(n->op, "AveragePool")))) {
        return 0;
    }
    const occ_tensor *x = occ_ops_in(m, n, 0);
    lay a, b;
    occ_rows_win w;
    return x && x->ndim == 4 && x->dims[0] == 1 && tensor_lay(eng, n->inputs[0], s->in_plain[0], &a) &&
           tensor_lay(eng, s->out, 0, &b) && step_win(eng, i, &w);
}

/* May steps i and i + 1 be in one chain: i + 1 reads i's output, the only
 * one to, in its stored layout, and nothing else shares that storage? */
static int links(const occ_engine *eng, uint32_t i)
{
    int32_t t = eng->steps[i].out;
    const trt *tt = &eng->t[t];
    if (step_in(eng, i + 1) != t || eng->steps[i + 1].in_plain[0])
        return 0;
    if (tt->n_cons != 1 || tt->is_output || tt->need_plain || tt->alias >= 0 || tt->buf < 0)
        return 0;
    for (uint32_t u = 0; u < eng->m->n_tensors; u++)
        if (eng->t[u].alias == t)
            return 0;
    return 1;
}

int32_t occ_eng_chain_of(const occ_engine *eng, uint32_t i)
{
    for (uint32_t c = 0; c < eng->n_chains; c++)
        if (eng->chains[c].s0 <= i && i <= eng->chains[c].s1)
            return (int32_t)c;
    return -1;
}

const strip_chain *occ_eng_chain_at(const occ_engine *eng, uint32_t i)
{
    int32_t c = occ_eng_chain_of(eng, i);
    return c >= 0 && eng->chains[c].s0 == i ? &eng->chains[c] : NULL;
}

/* ---- band kernels ---- */

static void run_free(struct strip_run *r)
{
    for (uint32_t k = 0; r->k && k < r->n_k; k++) {
        if (r->k[k].conv)
            occ_conv_part_destroy(r->k[k].state);
        else
            occ_pool_strip_destroy(r->k[k].state);
    }
    free(r->k);
    free(r->band_k);
    memset(r, 0, sizeof *r);
}

/* Chain ch's kernels for every band, its tensors' layouts and its sizes. */
static occ_status run_make(occ_engine *eng, const strip_chain *ch, struct strip_run *r, occ_error *e)
{
    const occ_model *m = eng->m;
    const uint32_t L = ch->s1 - ch->s0 + 1;
    memset(r, 0, sizeof *r);
    if (L > MAX_CHAIN)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "strip chain of %u steps (at most %d)", L, MAX_CHAIN);
    r->n_layers = L;
    if (!tensor_lay(eng, step_in(eng, ch->s0), eng->steps[ch->s0].in_plain[0], &r->lay[0]))
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "strip chain: input layout");
    for (uint32_t k = 0; k < L; k++)
        if (!step_win(eng, ch->s0 + k, &r->win[k]) ||
            !tensor_lay(eng, eng->steps[ch->s0 + k].out, 0, &r->lay[k + 1]))
            return occ_fail(e, OCC_ERR_UNSUPPORTED, "strip chain: step %u", ch->s0 + k);
    int64_t mx[MAX_CHAIN + 1];
    const int64_t rows_out = r->win[L - 1].out;
    if (ch->rows < 1 || (rows_out + ch->rows - 1) / ch->rows > MAX_BANDS)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "strip chain: more than %d bands", MAX_BANDS);
    r->n_bands = occ_rows_strips(r->win, L, ch->rows, mx);
    if (!r->n_bands)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "strip chain: a band reads no input row");
    for (uint32_t k = 0; k <= L; k++) {
        int64_t b = align64(r->lay[k].outer * mx[k] * r->lay[k].row);
        if ((uint64_t)b > r->buf_size)
            r->buf_size = (uint64_t)b;
    }
    r->band_k = calloc((size_t)r->n_bands * L, sizeof *r->band_k);
    r->k = calloc((size_t)L * 4u, sizeof *r->k);
    uint32_t cap = L * 4u;
    if (!r->band_k || !r->k) {
        run_free(r);
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    }
    const int64_t out = r->win[L - 1].out;
    occ_status st = OCC_OK;
    for (uint32_t b = 0; b < r->n_bands && !st; b++) {
        int64_t o0 = (int64_t)b * ch->rows, o1 = o0 + ch->rows < out ? o0 + ch->rows : out;
        occ_rows rr[MAX_CHAIN];
        occ_rows_chain(r->win, L, o0, o1, rr);
        for (uint32_t k = 0; k < L && !st; k++) {
            occ_strip_geom g = {rr[k].hi - rr[k].lo, rr[k].pt, rr[k].pb,
                                k + 1 < L ? rr[k + 1].hi - rr[k + 1].lo : o1 - o0,
                                r->lay[k].tag, r->lay[k + 1].tag};
            uint32_t j = 0;
            while (j < r->n_k && !(r->k[j].layer == k && !memcmp(&r->k[j].g, &g, sizeof g)))
                j++;
            if (j == r->n_k) {
                if (r->n_k == cap) {
                    skern *nk = realloc(r->k, (size_t)cap * 2u * sizeof *nk);
                    if (!nk) {
                        st = occ_fail(e, OCC_ERR_NOMEM, "out of memory");
                        break;
                    }
                    r->k = nk;
                    cap *= 2u;
                }
                const step *s = &eng->steps[ch->s0 + k];
                const occ_node *n = &m->nodes[s->node];
                const void *w[OCC_MAX_NODE_IO] = {0};
                occ_op_prep p;
                memset(&p, 0, sizeof p);
                p.m = m;
                p.n = n;
                p.w = w;
                p.eng = eng->deng;
                p.n_post = s->n_post;
                memcpy(p.post, s->post, sizeof p.post);
                skern *sk = &r->k[j];
                memset(sk, 0, sizeof *sk);
                sk->layer = k;
                sk->g = g;
                sk->conv = s->kind == K_CONV;
                if (sk->conv && (!s->parts || !s->parts[0]))
                    st = occ_fail(e, OCC_ERR_INTERNAL, "strip chain: a Conv without its kernel");
                else
                    st = sk->conv ? occ_conv_strip_prepare(&p, s->parts[0], &g, &sk->state, e)
                                  : occ_pool_strip_prepare(&p, &g, &sk->state, e);
                if (st) {
                    occ_error_prefix(e, "node %s (%s)", nm(n->name), nm(n->op));
                    break;
                }
                r->n_k++;
                uint64_t sc = sk->conv ? occ_conv_strip_scratch(sk->state)
                                       : occ_pool_strip_scratch(sk->state);
                if ((uint64_t)align64((int64_t)sc) > r->scratch)
                    r->scratch = (uint64_t)align64((int64_t)sc);
            }
            r->band_k[b * L + k] = j;
        }
    }
    if (st)
        run_free(r);
    return st;
}

/* Sizes chain ch for its rows (its kernels made, measured, released). */
static occ_status chain_size(occ_engine *eng, strip_chain *ch, occ_error *e)
{
    struct strip_run r;
    occ_status st = run_make(eng, ch, &r, e);
    if (st)
        return st;
    ch->buf_size = r.buf_size;
    ch->scratch = r.scratch;
    ch->work = 2u * r.buf_size + r.scratch;
    run_free(&r);
    return OCC_OK;
}

occ_status occ_eng_strips_prepare(occ_engine *eng, occ_error *e)
{
    eng->srun = NULL;
    if (!eng->n_chains)
        return OCC_OK;
    if (!(eng->srun = calloc(eng->n_chains, sizeof *eng->srun)))
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    for (uint32_t c = 0; c < eng->n_chains; c++) {
        occ_status st = run_make(eng, &eng->chains[c], &eng->srun[c], e);
        if (st)
            return st;
        if (eng->srun[c].buf_size != eng->chains[c].buf_size ||
            eng->srun[c].scratch > eng->chains[c].scratch)
            return occ_fail(e, OCC_ERR_INTERNAL,
                            "this context's strip kernels need another working buffer than the "
                            "compiled model's: make contexts with the compiled model's thread count");
    }
    return OCC_OK;
}

void occ_eng_strips_free(occ_engine *eng)
{
    for (uint32_t c = 0; eng->srun && c < eng->n_chains; c++)
        run_free(&eng->srun[c]);
    free(eng->srun);
    eng->srun = NULL;
}

/* ---- run ---- */

occ_status occ_eng_strips_run(occ_engine *eng, const strip_chain *ch, const void *in, void *out,
                              uint8_t *work, occ_error *e)
{
    const struct strip_run *r = &eng->srun[ch - eng->chains];
    const uint32_t L = r->n_layers;
    uint8_t *buf[2] = {work, work + ch->buf_size}, *scratch = work + 2u * ch->buf_size;
    const int64_t rows_out = r->win[L - 1].out;
    const uint8_t *blob[MAX_CHAIN];
    for (uint32_t k = 0; k < L; k++) {
        const step *s = &eng->steps[ch->s0 + k];
        blob[k] = NULL;
        if (s->kind == K_CONV) {
            const seg *g = &eng->segs[s->first_seg];
            if (g->streamed || !g->res)
                return occ_fail(e, OCC_ERR_INTERNAL, "strip chain: streamed weights");
            blob[k] = g->res;
        }
    }
    for (uint32_t b = 0; b < r->n_bands; b++) {
        int64_t o0 = (int64_t)b * ch->rows, o1 = o0 + ch->rows < rows_out ? o0 + ch->rows : rows_out;
        occ_rows rr[MAX_CHAIN];
        occ_rows_chain(r->win, L, o0, o1, rr);
        /* the input's rows, then each step from one band buffer into the other */
        const lay *li = &r->lay[0];
        int64_t hb = rr[0].hi - rr[0].lo;
        for (int64_t o = 0; o < li->outer; o++)
            memcpy(buf[0] + o * hb * li->row,
                   (const uint8_t *)in + (o * li->h + rr[0].lo) * li->row, (size_t)(hb * li->row));
        int cur = 0;
        for (uint32_t k = 0; k < L; k++) {
            const skern *sk = &r->k[r->band_k[b * L + k]];
            occ_status st =
                sk->conv ? occ_conv_part_run(sk->state, (const float *)(const void *)buf[cur],
                                             (float *)(void *)buf[!cur], blob[k], scratch,
                                             eng->stream, e)
                         : occ_pool_strip_run(sk->state, buf[cur], buf[!cur], scratch, eng->stream, e);
            if (st) {
                const occ_node *n = &eng->m->nodes[eng->steps[ch->s0 + k].node];
                occ_error_prefix(e, "node %s (%s), band %u", nm(n->name), nm(n->op), b);
                return st;
            }
            cur = !cur;
        }
        const lay *lo = &r->lay[L];
        hb = o1 - o0;
        for (int64_t o = 0; o < lo->outer; o++)
            memcpy((uint8_t *)out + (o * lo->h + o0) * lo->row, buf[cur] + o * hb * lo->row,
                   (size_t)(hb * lo->row));
    }
    return OCC_OK;
}

/* ---- forming chains at plan time ---- */

static occ_status replan(occ_engine *eng, occ_error *e)
{
    occ_eng_drop_plan(eng);
    return occ_eng_make_plan_once(eng, e);
}

/* Chain c with bands of `rows`: sized, then the whole model planned. */
static occ_status try_rows(occ_engine *eng, uint32_t c, int64_t rows, occ_error *e)
{
    strip_chain *ch = &eng->chains[c];
    ch->rows = rows;
    occ_status st = chain_size(eng, ch, e);
    if (st) {
        occ_eng_drop_plan(eng);
        return st;
    }
    return replan(eng, e);
}

static int bn_in(const occ_engine *eng, uint32_t c)
{
    return eng->plan_bn >= (int32_t)eng->chains[c].s0 && eng->plan_bn <= (int32_t)eng->chains[c].s1;
}

static int64_t out_rows(const occ_engine *eng, uint32_t c)
{
    return eng->m->tensors[eng->steps[eng->chains[c].s1].out].dims[2];
}

/* The tallest bands, up to `max` rows, with which the plan fits or fails
 * elsewhere than in chain c (planned with them): 1; none (planned with
 * bands of one row): 0; an error: -1 (*st). */
static int fit_rows(occ_engine *eng, uint32_t c, int64_t max, occ_status *st, occ_error *e)
{
    if (occ_engine_strip_rows_max > 0 && max > occ_engine_strip_rows_max)
        max = occ_engine_strip_rows_max;
    const int64_t out = out_rows(eng, c), least = (out + MAX_BANDS - 1) / MAX_BANDS;
    int64_t a = least, b = max, good = 0;
    while (a <= b) {
        int64_t mid = a + (b - a) / 2;
        occ_status s = try_rows(eng, c, mid, e);
        /* (a band height without kernels - a band reading only padding - counts as not fitting) */
        if (s == OCC_OK || (s == OCC_ERR_BUDGET && !bn_in(eng, c))) {
            good = mid;
            a = mid + 1;
        } else {
            b = mid - 1;
        }
    }
    *st = try_rows(eng, c, good ? good : least, e);
    if (*st != OCC_OK && *st != OCC_ERR_BUDGET)
        return -1;
    return good ? 1 : 0;
}

/* Lengthens chain c by one step towards its larger whole boundary tensor
 * (the other way if that one cannot), merging a chain it meets; planned with
 * one band. 0 when neither way can. */
static int grow(occ_engine *eng, uint32_t *cp, occ_status *st, occ_error *e)
{
    uint32_t c = *cp;
    const strip_chain ch0 = eng->chains[c];
    uint64_t in_size = eng->t[step_in(eng, ch0.s0)].size, out_size = eng->t[eng->steps[ch0.s1].out].size;
    int back_ok = ch0.s0 > 0 && step_rowlocal(eng, ch0.s0 - 1) && links(eng, ch0.s0 - 1);
    int fwd_ok = ch0.s1 + 1 < eng->n_steps && step_rowlocal(eng, ch0.s1 + 1) && links(eng, ch0.s1);
    int first_back = in_size > out_size;
    for (int pass = 0; pass < 2; pass++) {
        int back = pass ? !first_back : first_back;
        if (back ? !back_ok : !fwd_ok)
            continue;
        strip_chain saved[MAX_CHAIN];
        uint32_t n_saved = eng->n_chains < MAX_CHAIN ? eng->n_chains : MAX_CHAIN;
        memcpy(saved, eng->chains, n_saved * sizeof *saved);
        strip_chain *ch = &eng->chains[c];
        uint32_t s = back ? ch->s0 - 1 : ch->s1 + 1;
        int32_t other = occ_eng_chain_of(eng, s);
        if (back)
            ch->s0 = other >= 0 ? eng->chains[other].s0 : s;
        else
            ch->s1 = other >= 0 ? eng->chains[other].s1 : s;
        uint32_t nc = c;
        if (other >= 0) {
            memmove(&eng->chains[other], &eng->chains[other + 1],
                    (eng->n_chains - (uint32_t)other - 1u) * sizeof *eng->chains);
            eng->n_chains--;
            if ((uint32_t)other < c)
                nc = c - 1;
        }
        *st = try_rows(eng, nc, out_rows(eng, nc), e);
        if (*st == OCC_OK || *st == OCC_ERR_BUDGET) {
            *cp = nc;
            return 1;
        }
        eng->n_chains = n_saved;
        memcpy(eng->chains, saved, n_saved * sizeof *saved);
    }
    return 0;
}

occ_status occ_eng_plan_strips(occ_engine *eng, occ_error *e)
{
    occ_status st = OCC_ERR_BUDGET;
    occ_error own = {0};
    if (!e) /* messages are kept and restored below */
        e = &own;
    if (!eng->chains && !(eng->chains = calloc(MAX_CHAIN, sizeof *eng->chains)))
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    for (int round = 0; round < 256 && st == OCC_ERR_BUDGET; round++) {
        int32_t bn = eng->plan_bn;
        if (bn < 0 || (uint32_t)bn >= eng->n_steps)
            return st;
        int32_t c = occ_eng_chain_of(eng, (uint32_t)bn);
        if (c < 0) {
            if (!step_rowlocal(eng, (uint32_t)bn) || eng->n_chains >= MAX_CHAIN)
                return st; /* the plan's own message */
            occ_error before = *e;
            uint32_t at = 0;
            while (at < eng->n_chains && eng->chains[at].s0 < (uint32_t)bn)
                at++;
            memmove(&eng->chains[at + 1], &eng->chains[at], (eng->n_chains - at) * sizeof *eng->chains);
            eng->chains[at] = (strip_chain){(uint32_t)bn, (uint32_t)bn, 0, 0, 0, 0};
            eng->n_chains++;
            if (fit_rows(eng, at, out_rows(eng, at), &st, e) < 0) {
                /* no band kernel for it: as if never tried */
                memmove(&eng->chains[at], &eng->chains[at + 1],
                        (eng->n_chains - at - 1u) * sizeof *eng->chains);
                eng->n_chains--;
                *e = before;
                replan(eng, e);
                return OCC_ERR_BUDGET;
            }
            continue;
        }
        /* the bottleneck is in chain c: lower bands, else a longer chain */
        int r = fit_rows(eng, (uint32_t)c, eng->chains[c].rows, &st, e);
        if (r < 0)
            return st;
        if (r > 0)
            continue;
        uint32_t uc = (uint32_t)c;
        occ_error one_row = *e; /* the plan with its lowest bands (one row, or MAX_BANDS) */
        if (!grow(eng, &uc, &st, e)) {
            *e = one_row;
            const strip_chain *ch = &eng->chains[uc];
            const occ_model *m = eng->m;
            char rows[64] = "one row";
            if (ch->rows > 1)
                snprintf(rows, sizeof rows, "%lld rows (at most %d bands)", (long long)ch->rows, MAX_BANDS);
            occ_error_prefix(e, "even as a strip chain of layers %s..%s in bands of %s",
                             nm(m->nodes[eng->steps[ch->s0].node].name),
                             nm(m->nodes[eng->steps[ch->s1].node].name), rows);
            return OCC_ERR_BUDGET;
        }
    }
    return st;
}
