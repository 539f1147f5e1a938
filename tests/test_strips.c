/* Strip chains (src/engine/strips.c, striprows.c): the rows a band of
 * output rows reads (checked tap by tap), and small CNNs whose feature maps
 * alone pass the budget: refused without strip chains, run with them equal
 * to native, peak within the budget - for plain 3x3 convolutions and pools,
 * a depthwise 3x3 and a 1x1, stride 2, dilation 2, padded max and average
 * pools, odd heights, bands capped so that the last is shorter, batch 2 and
 * a partial batch (the chain runs image by image), a chain ending at a
 * Flatten -> Gemm; a budget too small for one-row bands gets one clear
 * refusal; models that fit keep their plan (no chain); under an EPC cap
 * that pages inside the bands, two inputs give the same page-fault trace. */
#include "test_ops_util.h"

#include "engine/striprows.h"
#include "occ/boundary_emu.h"
#include "occ/epc.h"

/* ---- strip arithmetic ---- */

/* Band [o0, o1) of a layer, checked tap by tap: every tap the whole layer
 * takes from input row i, the band's kernel (its rows [lo, hi) with pt/pb
 * pad rows) takes from band row i - lo, and every tap in the layer's padding
 * falls in the band's; the band's kernel gives exactly o1 - o0 rows. */
static int band_ok(const occ_rows_win *w, int64_t o0, int64_t o1, const occ_rows *r)
{
    const int64_t ext = (w->k - 1) * w->d + 1, h = r->hi - r->lo;
    if (r->lo < 0 || r->hi > w->in || h <= 0 || r->pt < 0 || r->pb < 0)
        return 0;
    if (h + r->pt + r->pb < ext || (h + r->pt + r->pb - ext) / w->s + 1 != o1 - o0)
        return 0;
    for (int64_t o = o0; o < o1; o++)
        for (int64_t j = 0; j < w->k; j++) {
            int64_t i = o * w->s - w->pt + j * w->d;         /* the whole layer's row */
            int64_t bi = (o - o0) * w->s - r->pt + j * w->d; /* the band kernel's */
            int in_layer = i >= 0 && i < w->in, in_band = bi >= 0 && bi < h;
            if (in_layer != in_band || (in_layer && bi != i - r->lo))
                return 0;
        }
    return 1;
}

/* Does band [o0, o1) read any real row at all? */
static int band_reads(const occ_rows_win *w, int64_t o0, int64_t o1)
{
    for (int64_t o = o0; o < o1; o++)
        for (int64_t j = 0; j < w->k; j++) {
            int64_t i = o * w->s - w->pt + j * w->d;
            if (i >= 0 && i < w->in)
                return 1;
        }
    return 0;
}

static void test_rows_needed(void)
{
    int bad = 0, n = 0;
    for (int64_t k = 1; k <= 5; k++)
        for (int64_t s = 1; s <= 3; s++)
            for (int64_t d = 1; d <= 3; d++)
                for (int64_t pt = 0; pt < k; pt++)
                    for (int64_t in = 7; in <= 13; in += 3) {
                        int64_t ext = (k - 1) * d + 1;
                        for (int64_t pe = 0; pe < k; pe++) {
                            if (in + pt + pe < ext)
                                continue;
                            occ_rows_win w = {k, s, d, pt, in, (in + pt + pe - ext) / s + 1};
                            for (int64_t o0 = 0; o0 < w.out; o0++)
                                for (int64_t o1 = o0 + 1; o1 <= w.out; o1++) {
                                    if (!band_reads(&w, o0, o1))
                                        continue; /* only padding: no band of a chain */
                                    occ_rows r;
                                    occ_rows_needed(&w, o0, o1, &r);
                                    n++;
                                    bad += !band_ok(&w, o0, o1, &r);
                                }
                        }
                    }
    CHECK_MSG(n > 10000 && bad == 0, "%d of %d bands wrong", bad, n);
}

static void test_rows_chain(void)
{
    /* conv3x3 p1 -> conv3x3 s2 p1 -> maxpool 2x2 s2: 61 -> 61 -> 31 -> 15 */
    occ_rows_win w[3] = {{3, 1, 1, 1, 61, 61}, {3, 2, 1, 1, 61, 31}, {2, 2, 1, 0, 31, 15}};
    occ_rows r[3];
    occ_rows_chain(w, 3, 4, 6, r);
    /* pool rows 4..5 read conv2 rows 8..11, which read conv1 rows 15..23,
     * which read input rows 14..24 */
    CHECK(r[2].lo == 8 && r[2].hi == 12 && r[2].pt == 0 && r[2].pb == 0);
    CHECK(r[1].lo == 15 && r[1].hi == 24);
    CHECK(r[0].lo == 14 && r[0].hi == 25);
    occ_rows_chain(w, 3, 0, 1, r);
    CHECK(r[1].lo == 0 && r[1].pt == 1 && r[0].lo == 0 && r[0].pt == 1);
    occ_rows_chain(w, 3, 14, 15, r);
    CHECK(r[2].hi == 30 && r[1].hi == 60 && r[0].hi == 61 && r[0].pb == 0);
    int64_t mx[4];
    uint32_t nb = occ_rows_strips(w, 3, 4, mx); /* bands of 4, 4, 4, 3 rows */
    CHECK(nb == 4);
    /* the largest over bands, by brute force */
    int64_t want[4] = {0, 0, 0, 0};
    for (int64_t o0 = 0; o0 < 15; o0 += 4) {
        int64_t o1 = o0 + 4 < 15 ? o0 + 4 : 15;
        occ_rows_chain(w, 3, o0, o1, r);
        for (int i = 0; i < 3; i++)
            want[i] = r[i].hi - r[i].lo > want[i] ? r[i].hi - r[i].lo : want[i];
        want[3] = o1 - o0 > want[3] ? o1 - o0 : want[3];
    }
    CHECK(memcmp(want, mx, sizeof want) == 0);
    CHECK(occ_rows_strips(w, 3, 15, mx) == 1 && mx[0] == 61);
    CHECK(occ_rows_strips(w, 3, 0, mx) == 0);
}

/* ---- engines ---- */

enum { L_CONV, L_MAX, L_AVG };

typedef struct layer {
    int kind;
    int64_t c, k, s, d, p; /* out channels (conv), kernel, stride, dilation, pads */
    int64_t g;             /* conv groups */
} layer;

typedef struct spec {
    const char *name;
    int64_t c, h, w;
    int n;
    layer l[6];
    int fc; /* ends in Flatten -> Gemm(10) */
} spec;

static void build(tb *b, const spec *sp, float **keep, int *n_keep)
{
    tb_init(b);
    int64_t xd[4] = {1, sp->c, sp->h, sp->w};
    int cur = tb_input(b, "x", 4, xd);
    int64_t c = sp->c;
    static int64_t pads[8][4], ks[8][2], st[8][2], dl[8][2];
    static occ_attr attrs[8][5];
    static char names[8][16];
    for (int i = 0; i < sp->n; i++) {
        const layer *L = &sp->l[i];
        int64_t p = L->p;
        pads[i][0] = pads[i][1] = pads[i][2] = pads[i][3] = p;
        ks[i][0] = ks[i][1] = L->k;
        st[i][0] = st[i][1] = L->s;
        dl[i][0] = dl[i][1] = L->d;
        snprintf(names[i], sizeof names[i], "l%d", i);
        int out = tb_act(b, names[i]);
        if (L->kind == L_CONV) {
            int64_t g = L->g;
            int64_t wd[4] = {L->c, c / g, L->k, L->k}, bd[1] = {L->c};
            float *wv = rand_buf(L->c * (c / g) * L->k * L->k), *bv = rand_buf(L->c);
            keep[(*n_keep)++] = wv;
            keep[(*n_keep)++] = bv;
            int wt = tb_weight(b, "w", 4, wd, wv), bt = tb_weight(b, "b", 1, bd, bv);
            attrs[i][0] = A_INTS("pads", pads[i], 4);
            attrs[i][1] = A_INTS("strides", st[i], 2);
            attrs[i][2] = A_INTS("dilations", dl[i], 2);
            attrs[i][3] = A_INT("group", g);
            int in[3] = {cur, wt, bt};
            tb_node(b, "Conv", 3, in, out, 4, attrs[i])->name = names[i];
            int r = tb_act(b, "r");
            int in2[1] = {out};
            tb_node(b, "Relu", 1, in2, r, 0, NULL);
            cur = r;
            c = L->c;
        } else {
            attrs[i][0] = A_INTS("pads", pads[i], 4);
            attrs[i][1] = A_INTS("strides", st[i], 2);
            attrs[i][2] = A_INTS("kernel_shape", ks[i], 2);
            int na = 3;
            if (L->kind == L_AVG)
                attrs[i][na++] = A_INT("count_include_pad", 1);
            int in[1] = {cur};
            tb_node(b, L->kind == L_MAX ? "MaxPool" : "AveragePool", 1, in, out, na, attrs[i])->name =
                names[i];
            cur = out;
        }
    }
    if (sp->fc) {
        occ_error e = {0};
        for (uint32_t i = 0; i < b->m.n_nodes; i++) /* shapes so far, to size the Gemm */
            CHECK_MSG(occ_op_infer(&b->m, &b->n[i], &e) == OCC_OK, "%s", e.msg);
        int64_t feat = b->t[cur].size / 4;
        int f = tb_act(b, "f"), y = tb_act(b, "y");
        int in[1] = {cur};
        tb_node(b, "Flatten", 1, in, f, 0, NULL);
        int64_t gd[2] = {10, feat}, gcd[1] = {10};
        float *gw = rand_buf(10 * feat), *gc = rand_buf(10);
        keep[(*n_keep)++] = gw;
        keep[(*n_keep)++] = gc;
        int gwt = tb_weight(b, "gw", 2, gd, gw), gct = tb_weight(b, "gc", 1, gcd, gc);
        static occ_attr ga[1];
        ga[0] = A_INT("transB", 1);
        int in2[3] = {f, gwt, gct};
        tb_node(b, "Gemm", 3, in2, y, 1, ga)->name = "fc";
        cur = y;
    }
    tb_output(b, cur);
    occ_error e = {0};
    occ_status s = tb_finish(b, &e);
    CHECK_MSG(s == OCC_OK, "%s: finish: %s", sp->name, e.msg);
}

static occ_status make(tb *b, occ_mode mode, uint64_t budget, uint32_t batch, occ_engine **eng,
                       occ_error *e)
{
    occ_engine_opts o = {.threads = 1, .mode = mode, .budget = budget, .batch = batch};
    return occ_engine_create(&b->m, &o, tb_read, b, eng, e);
}

/* Whether the plan has a strip chain; its band rows and count. */
static int chained(const occ_engine *eng, int64_t *rows, uint32_t *bands)
{
    occ_plan_summary sum;
    const occ_plan_layer *ly = NULL;
    uint32_t nl = 0;
    occ_engine_plan_summary(eng, &sum, &ly, &nl);
    for (uint32_t i = 0; i < nl; i++)
        if (ly[i].band_rows > 0) {
            *rows = ly[i].band_rows;
            *bands = ly[i].n_bands;
            return 1;
        }
    return 0;
}

/* The smallest budget (to 4 KiB) with which the plan fits without strip
 * chains. */
static uint64_t unchained_min(tb *b)
{
    uint64_t lo = 4096, hi = UINT64_C(64) << 20;
    occ_engine_strips = 0;
    while (hi - lo > 4096) {
        uint64_t mid = lo + (hi - lo) / 2;
        occ_engine *eng = NULL;
        occ_error e = {0};
        occ_engine_opts o = {.threads = 1, .mode = OCC_MODE_OCCLUMENCY, .budget = mid};
        if (occ_engine_plan_only(&b->m, &o, tb_read, b, &eng, &e) == OCC_OK)
            hi = mid;
        else
            lo = mid;
        occ_engine_free(eng);
    }
    occ_engine_strips = 1;
    return hi;
}

static void run_spec(const spec *sp)
{
    tb b;
    float *keep[32];
    int nk = 0;
    build(&b, sp, keep, &nk);
    const occ_tensor *xt = &b.t[b.gin[0]], *yt = &b.t[b.gout[0]];
    int64_t ny = (int64_t)(yt->size / 4);
    float *x = rand_buf((int64_t)(xt->size / 4)), *ref = malloc(yt->size), *y = malloc(yt->size);
    const float *ins[1] = {x};
    float *outs[1] = {ref};
    occ_error e = {0};
    occ_engine *eng = NULL;
    CHECK_MSG(make(&b, OCC_MODE_NATIVE, 0, 1, &eng, &e) == OCC_OK, "%s", e.msg);
    int64_t rows;
    uint32_t bands;
    CHECK_MSG(eng && !chained(eng, &rows, &bands), "%s: native has a strip chain", sp->name);
    CHECK(eng && occ_engine_run(eng, (const void *const *)ins, (void *const *)outs, &e) == OCC_OK);
    occ_engine_free(eng);
    eng = NULL;
    /* a budget that fits: the plan as ever */
    CHECK_MSG(make(&b, OCC_MODE_OCCLUMENCY, UINT64_C(64) << 20, 1, &eng, &e) == OCC_OK, "%s", e.msg);
    CHECK_MSG(eng && !chained(eng, &rows, &bands), "%s: a strip chain where the plan fits", sp->name);
    occ_engine_free(eng);
    eng = NULL;

    const uint64_t b0 = unchained_min(&b);
    const uint64_t budgets[2] = {b0 * 3 / 4, b0 * 5 / 8};
    const int64_t caps[4] = {0, 1, 3, 7};
    for (int bi = 0; bi < 2; bi++)
        for (int ci = 0; ci < 4; ci++) {
            uint64_t B = budgets[bi];
            occ_engine_strip_rows_max = caps[ci];
            occ_engine_strips = 0;
            occ_status st = make(&b, OCC_MODE_OCCLUMENCY, B, 1, &eng, &e);
            occ_engine_strips = 1;
            CHECK_MSG(st == OCC_ERR_BUDGET, "%s: fits at %llu without strip chains", sp->name,
                      (unsigned long long)B);
            occ_engine_free(eng);
            eng = NULL;
            st = make(&b, OCC_MODE_OCCLUMENCY, B, 1, &eng, &e);
            CHECK_MSG(st == OCC_OK, "%s at %llu, cap %lld: %s", sp->name, (unsigned long long)B,
                      (long long)caps[ci], e.msg);
            if (st) {
                occ_engine_strip_rows_max = 0;
                continue;
            }
            CHECK_MSG(chained(eng, &rows, &bands), "%s: no strip chain", sp->name);
            if (caps[ci])
                CHECK_MSG(rows <= caps[ci] && bands > 1, "%s: bands of %lld rows (cap %lld)", sp->name,
                          (long long)rows, (long long)caps[ci]);
            outs[0] = y;
            memset(y, 0xff, yt->size);
            for (int rep = 0; rep < 2; rep++) {
                st = occ_engine_run(eng, (const void *const *)ins, (void *const *)outs, &e);
                CHECK_MSG(st == OCC_OK, "%s: run: %s", sp->name, e.msg);
                CHECK_MSG(max_rel_err(y, ref, ny) <= 1e-5, "%s at %llu, %lld-row bands: %g vs native",
                          sp->name, (unsigned long long)B, (long long)rows, max_rel_err(y, ref, ny));
            }
            occ_engine_stats s;
            occ_engine_get_stats(eng, &s);
            CHECK_MSG(s.peak_enclave_bytes <= B, "%s: peak %llu > budget %llu", sp->name,
                      (unsigned long long)s.peak_enclave_bytes, (unsigned long long)B);
            fprintf(stderr, "   %s: budget %llu (unchained needs %llu): %lld-row bands x %u, peak %llu, %s\n",
                    sp->name, (unsigned long long)B, (unsigned long long)b0, (long long)rows, bands,
                    (unsigned long long)s.peak_enclave_bytes,
                    memcmp(y, ref, yt->size) ? "within 1e-5 of native" : "bitwise native");
            occ_engine_free(eng);
            eng = NULL;
            occ_engine_strip_rows_max = 0;
        }
    /* batch 2: the chain runs image by image (split_k); each image as alone */
    {
        int64_t nx = (int64_t)(xt->size / 4);
        float *x2 = malloc(2 * xt->size), *ref2 = malloc(yt->size), *y2 = malloc(2 * yt->size);
        memcpy(x2, x, xt->size);
        for (int64_t i = 0; i < nx; i++)
            x2[nx + i] = -0.5f * x[i] + 0.25f;
        occ_engine *nat = NULL;
        const float *in2[1] = {x2 + nx};
        float *o2[1] = {ref2};
        CHECK(make(&b, OCC_MODE_NATIVE, 0, 1, &nat, &e) == OCC_OK);
        CHECK(nat && occ_engine_run(nat, (const void *const *)in2, (void *const *)o2, &e) == OCC_OK);
        occ_engine_free(nat);
        occ_status st = make(&b, OCC_MODE_OCCLUMENCY, budgets[0], 2, &eng, &e);
        CHECK_MSG(st == OCC_OK, "%s: batch 2: %s", sp->name, e.msg);
        if (!st) {
            CHECK_MSG(chained(eng, &rows, &bands), "%s: batch 2 without a strip chain", sp->name);
            in2[0] = x2;
            o2[0] = y2;
            CHECK(occ_engine_run(eng, (const void *const *)in2, (void *const *)o2, &e) == OCC_OK);
            CHECK_MSG(max_rel_err(y2, ref, ny) <= 1e-5 && max_rel_err(y2 + ny, ref2, ny) <= 1e-5,
                      "%s: batch 2: %g %g", sp->name, max_rel_err(y2, ref, ny),
                      max_rel_err(y2 + ny, ref2, ny));
            /* a partial batch: one image */
            in2[0] = x2 + nx;
            CHECK(occ_engine_run_n(eng, 1, (const void *const *)in2, (void *const *)o2, &e) == OCC_OK);
            CHECK(max_rel_err(y2, ref2, ny) <= 1e-5);
            occ_engine_stats s;
            occ_engine_get_stats(eng, &s);
            CHECK(s.peak_enclave_bytes <= budgets[0]);
        }
        occ_engine_free(eng);
        eng = NULL;
        free(x2);
        free(ref2);
        free(y2);
    }
    /* far too small even for one-row bands: one line naming the chain */
    memset(&e, 0, sizeof e);
    occ_status st = make(&b, OCC_MODE_OCCLUMENCY, b0 / 8, 1, &eng, &e);
    CHECK_MSG(st == OCC_ERR_BUDGET && strstr(e.msg, "strip chain") && !strchr(e.msg, '\n'),
              "%s: tiny budget: %d %s", sp->name, (int)st, e.msg);
    occ_engine_free(eng);
    free(x);
    free(ref);
    free(y);
    for (int i = 0; i < nk; i++)
        free(keep[i]);
    tb_free(&b);
}

static void test_conv_relu_pool(void)
{
    spec sp = {"conv3x3-relu-conv3x3-relu-maxpool 1x3x64x61", 3, 64, 61, 3,
               {{L_CONV, 16, 3, 1, 1, 1, 1}, {L_CONV, 16, 3, 1, 1, 1, 1}, {L_MAX, 0, 2, 2, 1, 0, 1}}, 0};
    run_spec(&sp);
}

static void test_stride_dilation_pads(void)
{
    /* odd height, stride 2, dilation 2 (pad 2), a padded 3x3 max pool, a
     * padded average pool that counts its pads (count_include_pad) */
    spec sp = {"stride 2, dilation 2, padded max and avg pools 1x4x131x45", 4, 131, 45, 5,
               {{L_CONV, 32, 3, 2, 1, 1, 1},
                {L_CONV, 32, 3, 1, 2, 2, 1},
                {L_MAX, 0, 3, 2, 1, 1, 1},
                {L_CONV, 8, 3, 1, 1, 1, 1},
                {L_AVG, 0, 3, 1, 1, 1, 1}},
               0};
    run_spec(&sp);
}

static void test_depthwise_1x1(void)
{
    spec sp = {"conv-depthwise 3x3-conv 1x1-maxpool 1x3x75x50", 3, 75, 50, 4,
               {{L_CONV, 32, 3, 1, 1, 1, 1},
                {L_CONV, 32, 3, 1, 1, 1, 32},
                {L_CONV, 16, 1, 1, 1, 0, 1},
                {L_MAX, 0, 3, 2, 1, 0, 1}},
               0};
    run_spec(&sp);
}

static void test_chain_then_fc(void)
{
    spec sp = {"conv-conv-conv-maxpool -> Flatten -> Gemm 1x3x57x40", 3, 57, 40, 4,
               {{L_CONV, 16, 3, 1, 1, 1, 1},
                {L_CONV, 16, 5, 1, 1, 2, 1},
                {L_CONV, 4, 3, 1, 1, 1, 1},
                {L_MAX, 0, 4, 4, 1, 0, 1}},
               1};
    run_spec(&sp);
}

/* MaxPool's padding is -inf, never 0: a chain whose pool sees only
 * negative values (no Relu before it). */
static void test_maxpool_pad_negative(void)
{
    tb b;
    tb_init(&b);
    int64_t xd[4] = {1, 8, 40, 33}, wd[4] = {16, 8, 3, 3}, bd[1] = {16};
    int64_t w2d[4] = {16, 16, 3, 3};
    float *wv = rand_buf(16 * 8 * 9), *w2v = rand_buf(16 * 16 * 9), *bv = malloc(16 * 4);
    for (int i = 0; i < 16; i++)
        bv[i] = -50.0f; /* every output of both convs negative */
    for (int i = 0; i < 16 * 16 * 9; i++)
        w2v[i] = fabsf(w2v[i]);
    int x = tb_input(&b, "x", 4, xd), wt = tb_weight(&b, "w", 4, wd, wv), bt = tb_weight(&b, "b", 1, bd, bv);
    int w2 = tb_weight(&b, "w2", 4, w2d, w2v), c1 = tb_act(&b, "c1"), c2 = tb_act(&b, "c2"),
        p = tb_act(&b, "p");
    static int64_t pads[4] = {1, 1, 1, 1}, k3[2] = {3, 3}, s2[2] = {2, 2};
    occ_attr ca[1] = {A_INTS("pads", pads, 4)};
    occ_attr pa[3] = {A_INTS("pads", pads, 4), A_INTS("kernel_shape", k3, 2), A_INTS("strides", s2, 2)};
    int i1[3] = {x, wt, bt}, i2[3] = {c1, w2, bt}, i3[1] = {c2};
    tb_node(&b, "Conv", 3, i1, c1, 1, ca)->name = "c1";
    tb_node(&b, "Conv", 3, i2, c2, 1, ca)->name = "c2";
    tb_node(&b, "MaxPool", 1, i3, p, 3, pa)->name = "pool";
    tb_output(&b, p);
    occ_error e = {0};
    CHECK_MSG(tb_finish(&b, &e) == OCC_OK, "%s", e.msg);
    const occ_tensor *yt = &b.t[p];
    int64_t ny = (int64_t)(yt->size / 4);
    float *xv = rand_buf(8 * 40 * 33), *ref = malloc(yt->size), *y = malloc(yt->size);
    const float *ins[1] = {xv};
    float *outs[1] = {ref};
    occ_engine *eng = NULL;
    CHECK(make(&b, OCC_MODE_NATIVE, 0, 1, &eng, &e) == OCC_OK);
    CHECK(eng && occ_engine_run(eng, (const void *const *)ins, (void *const *)outs, &e) == OCC_OK);
    occ_engine_free(eng);
    eng = NULL;
    int neg = 1;
    for (int64_t i = 0; i < ny; i++)
        neg &= ref[i] < 0.0f;
    CHECK_MSG(neg, "the reference's maxima are not all negative");
    uint64_t b0 = unchained_min(&b);
    occ_engine_strip_rows_max = 2;
    occ_status st = make(&b, OCC_MODE_OCCLUMENCY, b0 * 3 / 4, 1, &eng, &e);
    occ_engine_strip_rows_max = 0;
    CHECK_MSG(st == OCC_OK, "%s", e.msg);
    int64_t rows;
    uint32_t bands;
    CHECK(eng && chained(eng, &rows, &bands) && bands > 1);
    outs[0] = y;
    CHECK(eng && occ_engine_run(eng, (const void *const *)ins, (void *const *)outs, &e) == OCC_OK);
    CHECK_MSG(max_rel_err(y, ref, ny) <= 1e-5, "padded max pool in bands: %g", max_rel_err(y, ref, ny));
    occ_engine_free(eng);
    free(wv);
    free(bv);
    free(w2v);
    free(xv);
    free(ref);
    free(y);
    tb_free(&b);
}

/* ---- access pattern ---- */

static tb *ap_net;

static occ_status ap_read(void *host, uint32_t pack, uint64_t off, void *dst, uint64_t size,
                          occ_error *e)
{
    if (pack != 0)
        return occ_fail(e, OCC_ERR_INVALID, "no pack %u", pack);
    return tb_read(host, off, dst, size, e);
}

/* The page-fault trace of two inferences of x with a strip chain, in a
 * fresh EPC of `cap` bytes (below the budget: pages fault inside the
 * chain's bands) and a fresh engine; one compute thread, nothing streamed,
 * so the order of faults is the program's. */
static char *ap_trace(uint64_t cap, uint64_t budget, const float *x, float *y)
{
    occ_error e = {0};
    occ_epc_opts eo;
    occ_epc_opts_default(&eo);
    eo.cap_size = cap;
    eo.region_size = 64ull << 20;
    eo.cost = OCC_EPC_COST_NONE;
    occ_epc *epc = NULL;
    char *out = NULL;
    if (occ_epc_create(&eo, &epc, &e) != OCC_OK)
        return NULL;
    occ_ocalls host = {.host = ap_net, .read_chunk = ap_read};
    occ_boundary *b = NULL;
    occ_boundary_opts bo = {.epc = epc};
    occ_mem_provider mem;
    occ_epc_provider(epc, &mem);
    occ_engine *eng = NULL;
    if (occ_boundary_create(&bo, &host, NULL, &b, &e) == OCC_OK) {
        occ_ocall_reader rd = {occ_boundary_ocalls(b), 0};
        occ_engine_opts o = {.threads = 1, .loader_threads = 1, .mode = OCC_MODE_OCCLUMENCY,
                             .budget = budget, .mem = &mem};
        occ_status st = occ_engine_create(&ap_net->m, &o, occ_ocall_read, &rd, &eng, &e);
        CHECK_MSG(st == OCC_OK, "%s", e.msg);
        int64_t rows;
        uint32_t bands;
        CHECK(eng && chained(eng, &rows, &bands) && bands > 1);
        occ_epc_trace_start(epc, NULL, 1);
        const float *ins[1] = {x};
        float *outs[1] = {y};
        for (int r = 0; eng && r < 2; r++)
            CHECK_MSG(occ_engine_run(eng, (const void *const *)ins, (void *const *)outs, &e) == OCC_OK,
                      "%s", e.msg);
        occ_epc_trace_stop(epc);
        size_t len;
        CHECK(occ_epc_trace_take(epc, &out, &len, &e) == OCC_OK);
        occ_engine_free(eng);
        occ_boundary_free(b);
    }
    occ_epc_destroy(epc);
    return out;
}

static void test_access_pattern(void)
{
    spec sp = {"access pattern", 3, 64, 61, 3,
               {{L_CONV, 16, 3, 1, 1, 1, 1}, {L_CONV, 16, 3, 1, 1, 1, 1}, {L_MAX, 0, 2, 2, 1, 0, 1}}, 0};
    tb b;
    float *keep[32];
    int nk = 0;
    build(&b, &sp, keep, &nk);
    ap_net = &b;
    uint64_t b0 = unchained_min(&b);
    int64_t nx = (int64_t)(b.t[b.gin[0]].size / 4), ny = (int64_t)(b.t[b.gout[0]].size / 4);
    float *x1 = rand_buf(nx), *x2 = malloc((size_t)nx * 4), *y1 = malloc((size_t)ny * 4),
          *y2 = malloc((size_t)ny * 4);
    for (int64_t i = 0; i < nx; i++)
        x2[i] = i % 7 ? -3.0f * x1[i] : 0.0f; /* another image: other maxima, zeros */
    occ_engine_strip_rows_max = 5;
    char *t1 = ap_trace(128u << 10, b0 * 3 / 4, x1, y1), *t2 = ap_trace(128u << 10, b0 * 3 / 4, x2, y2);
    occ_engine_strip_rows_max = 0;
    CHECK(t1 && t2);
    if (t1 && t2) {
        size_t faults = 0;
        for (const char *p = t1; (p = strstr(p, "fault")); p++)
            faults++;
        CHECK_MSG(faults > 50, "only %zu faults: the cap does not page", faults);
        CHECK_MSG(memcmp(y1, y2, (size_t)ny * 4) != 0, "the two inputs gave the same output");
        CHECK_MSG(strcmp(t1, t2) == 0, "strip chain: the page-fault traces of two inputs differ");
        fprintf(stderr, "   two inputs, %zu faults each: identical traces\n", faults);
    }
    free(t1);
    free(t2);
    free(x1);
    free(x2);
    free(y1);
    free(y2);
    for (int i = 0; i < nk; i++)
        free(keep[i]);
    tb_free(&b);
}

/* A map of 2^20 rows whose chain cannot fit at any band height: the search
 * stops at the tallest bands that keep a chain within 4096 of them (no
 * one-row bands over a million rows at create), and says so. */
static void test_band_cap(void)
{
    spec sp = {"1x1x1048576x1, chain boundary maps past the budget", 1, 1 << 20, 1, 2,
               {{L_CONV, 1, 3, 1, 1, 1, 1}, {L_CONV, 1, 3, 1, 1, 1, 1}}, 0};
    tb b;
    float *keep[16];
    int n_keep = 0;
    build(&b, &sp, keep, &n_keep);
    occ_engine *eng = NULL;
    occ_error e = {0};
    occ_engine_opts o = {.threads = 1, .mode = OCC_MODE_OCCLUMENCY, .budget = UINT64_C(2) << 20};
    occ_status st = occ_engine_plan_only(&b.m, &o, tb_read, &b, &eng, &e);
    CHECK_MSG(st == OCC_ERR_BUDGET && strstr(e.msg, "in bands of 256 rows (at most 4096 bands)"), "%d %s", st,
              e.msg);
    occ_engine_free(eng);
    for (int i = 0; i < n_keep; i++)
        free(keep[i]);
    tb_free(&b);
}

int main(void)
{
    srand(11);
    RUN(test_rows_needed);
    RUN(test_rows_chain);
    RUN(test_conv_relu_pool);
    RUN(test_stride_dilation_pads);
    RUN(test_depthwise_1x1);
    RUN(test_chain_then_fc);
    RUN(test_maxpool_pad_negative);
    RUN(test_access_pattern);
    RUN(test_band_cap);
    TEST_DONE();
}
