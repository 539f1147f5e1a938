/* Conv through the engine against a naive 7-loop direct convolution: groups,
 * depthwise, dilation, stride, asymmetric pads, auto_pad, bias, Winograd-sized
 * layers, and the fused Conv+Relu / Conv+Clip / Conv+Add(+Relu) chains. */
#include "test_ops_util.h"

typedef struct cspec {
    int64_t n, c, h, w, m, kh, kw, g;
    int64_t sh, sw, dh, dw;
    int64_t pt, pl, pb, pr; /* explicit pads */
    const char *auto_pad;   /* NULL = NOTSET */
    int bias;
} cspec;

static void pads_for(const cspec *s, int64_t *pt, int64_t *pl, int64_t *oh, int64_t *ow)
{
    int64_t eh = (s->kh - 1) * s->dh + 1, ew = (s->kw - 1) * s->dw + 1;
    if (s->auto_pad && strcmp(s->auto_pad, "VALID") == 0) {
        *pt = *pl = 0;
        *oh = (s->h - eh) / s->sh + 1;
        *ow = (s->w - ew) / s->sw + 1;
    } else if (s->auto_pad) {
        *oh = (s->h + s->sh - 1) / s->sh;
        *ow = (s->w + s->sw - 1) / s->sw;
        int64_t th = (*oh - 1) * s->sh + eh - s->h, tw = (*ow - 1) * s->sw + ew - s->w;
        th = th < 0 ? 0 : th;
        tw = tw < 0 ? 0 : tw;
        int upper = strcmp(s->auto_pad, "SAME_UPPER") == 0;
        *pt = upper ? th / 2 : th - th / 2;
        *pl = upper ? tw / 2 : tw - tw / 2;
    } else {
        *pt = s->pt;
        *pl = s->pl;
        *oh = (s->h + s->pt + s->pb - eh) / s->sh + 1;
        *ow = (s->w + s->pl + s->pr - ew) / s->sw + 1;
    }
}

static void ref_conv(const cspec *s, const float *x, const float *w, const float *b, float *y)
{
    int64_t pt, pl, OH, OW;
    pads_for(s, &pt, &pl, &OH, &OW);
    int64_t cg = s->c / s->g, mg = s->m / s->g;
    for (int64_t n = 0; n < s->n; n++)
        for (int64_t m = 0; m < s->m; m++)
            for (int64_t oh = 0; oh < OH; oh++)
                for (int64_t ow = 0; ow < OW; ow++) {
                    double acc = b ? b[m] : 0.0;
                    int64_t g = m / mg;
                    for (int64_t c = 0; c < cg; c++)
                        for (int64_t kh = 0; kh < s->kh; kh++)
                            for (int64_t kw = 0; kw < s->kw; kw++) {
                                int64_t ih = oh * s->sh - pt + kh * s->dh;
                                int64_t iw = ow * s->sw - pl + kw * s->dw;
                                if (ih < 0 || ih >= s->h || iw < 0 || iw >= s->w)
                                    continue;
                                acc += (double)x[((n * s->c + g * cg + c) * s->h + ih) * s->w + iw] *
                                       w[((m * cg + c) * s->kh + kh) * s->kw + kw];
                            }
                    y[((n * s->m + m) * OH + oh) * OW + ow] = (float)acc;
                }
}

/* post: 0 none, 1 relu, 2 clip(0,6), 3 add residual, 4 add residual + relu */
static void run_case(const char *label, const cspec *s, int post)
{
    tb b;
    occ_error e = {0};
    tb_init(&b);
    int64_t xd[4] = {s->n, s->c, s->h, s->w};
    int64_t wd[4] = {s->m, s->c / s->g, s->kh, s->kw};
    int64_t bd[1] = {s->m};
    int64_t pt, pl, OH, OW;
    pads_for(s, &pt, &pl, &OH, &OW);
    int64_t ycount = s->n * s->m * OH * OW;
    float *x = rand_buf(s->n * s->c * s->h * s->w);
    float *w = rand_buf(s->m * (s->c / s->g) * s->kh * s->kw);
    float *bias = rand_buf(s->m);
    float *res = rand_buf(ycount);
    int tx = tb_input(&b, "x", 4, xd);
    int tr = -1;
    int64_t yd[4] = {s->n, s->m, OH, OW};
    if (post >= 3) {
        /* residual: produced by a relu of a second input, so it is an
         * activation (graph inputs are never aliased) */
        int ti = tb_input(&b, "r_in", 4, yd);
        tr = tb_act(&b, "r");
        int in1[1] = {ti};
        tb_node(&b, "Relu", 1, in1, tr, 0, NULL);
    }
    int tw = tb_weight(&b, "w", 4, wd, w);
    int tbias = s->bias ? tb_weight(&b, "b", 1, bd, bias) : -1;
    int ty = tb_act(&b, "y");
    occ_attr at[8];
    int na = 0;
    int64_t strides[2] = {s->sh, s->sw}, dil[2] = {s->dh, s->dw};
    int64_t pads[4] = {s->pt, s->pl, s->pb, s->pr}, ks[2] = {s->kh, s->kw};
    at[na++] = A_INT("group", s->g);
    at[na++] = A_INTS("strides", strides, 2);
    at[na++] = A_INTS("dilations", dil, 2);
    at[na++] = A_INTS("kernel_shape", ks, 2);
    if (s->auto_pad)
        at[na++] = A_STR("auto_pad", s->auto_pad);
    else
        at[na++] = A_INTS("pads", pads, 4);
    int cin[3] = {tx, tw, tbias};
    tb_node(&b, "Conv", s->bias ? 3 : 2, cin, ty, na, at);
    int last = ty;
    if (post == 1 || post == 2) {
        int t2 = tb_act(&b, "p");
        int in1[1] = {ty};
        occ_attr ca[2] = {A_FLOAT("min", 0.0f), A_FLOAT("max", 6.0f)};
        tb_node(&b, post == 1 ? "Relu" : "Clip", 1, in1, t2, post == 2 ? 2 : 0, ca);
        last = t2;
    } else if (post >= 3) {
        int t2 = tb_act(&b, "sum");
        int in2[2] = {ty, tr};
        tb_node(&b, "Add", 2, in2, t2, 0, NULL);
        last = t2;
        if (post == 4) {
            int t3 = tb_act(&b, "out");
            int in1[1] = {t2};
            tb_node(&b, "Relu", 1, in1, t3, 0, NULL);
            last = t3;
        }
    }
    tb_output(&b, last);
    occ_status st = tb_finish(&b, &e);
    CHECK_MSG(st == OCC_OK, "%s: finish: %s", label, e.msg);
    float *ref = malloc((size_t)ycount * 4);
    ref_conv(s, x, w, s->bias ? bias : NULL, ref);
    for (int64_t i = 0; i < ycount; i++) {
        float v = ref[i];
        if (post == 1)
            v = v > 0 ? v : 0;
        if (post == 2)
            v = v < 0 ? 0 : (v > 6 ? 6 : v);
        if (post >= 3)
            v += res[i] > 0 ? res[i] : 0;
        if (post == 4)
            v = v > 0 ? v : 0;
        ref[i] = v;
    }
    float *y = NULL;
    const float *ins[2] = {x, res};
    if (!st)
        st = tb_run(&b, ins, &y, &e);
    CHECK_MSG(st == OCC_OK, "%s: run: %s", label, e.msg);
    if (!st) {
        double err = max_rel_err(y, ref, ycount);
        CHECK_MSG(err < 2e-4, "%s: max rel err %g", label, err);
    }
    free(y);
    free(ref);
    free(x);
    free(w);
    free(bias);
    free(res);
    tb_free(&b);
}

static void test_basic(void)
{
    cspec s = {1, 3, 9, 11, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, NULL, 1};
    run_case("3x3 pad1 bias", &s, 0);
    s.bias = 0;
    run_case("3x3 no bias", &s, 0);
    cspec st = {2, 4, 10, 9, 6, 3, 2, 1, 2, 3, 1, 1, 0, 2, 1, 0, NULL, 1};
    run_case("stride 2x3, asym pads, 3x2 kernel, batch 2", &st, 0);
    cspec dl = {1, 5, 12, 12, 7, 3, 3, 1, 1, 1, 2, 3, 2, 3, 2, 3, NULL, 1};
    run_case("dilation 2x3", &dl, 0);
    cspec k1 = {1, 16, 7, 7, 32, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, NULL, 1};
    run_case("1x1", &k1, 0);
    cspec k7 = {1, 3, 32, 32, 16, 7, 7, 1, 2, 2, 1, 1, 3, 3, 3, 3, NULL, 1};
    run_case("7x7 s2 first layer", &k7, 0);
}

static void test_groups(void)
{
    cspec g = {1, 8, 8, 8, 12, 3, 3, 4, 1, 1, 1, 1, 1, 1, 1, 1, NULL, 1};
    run_case("groups 4", &g, 0);
    cspec dw = {1, 32, 10, 10, 32, 3, 3, 32, 1, 1, 1, 1, 1, 1, 1, 1, NULL, 1};
    run_case("depthwise 3x3", &dw, 0);
    cspec dw2 = {1, 24, 11, 11, 24, 3, 3, 24, 2, 2, 1, 1, 1, 1, 1, 1, NULL, 0};
    run_case("depthwise stride 2", &dw2, 2);
    cspec dwm = {1, 6, 9, 9, 12, 5, 5, 6, 1, 1, 1, 1, 2, 2, 2, 2, NULL, 1};
    run_case("depthwise multiplier 2", &dwm, 0);
}

static void test_auto_pad(void)
{
    const char *modes[] = {"SAME_UPPER", "SAME_LOWER", "VALID"};
    for (int i = 0; i < 3; i++) {
        cspec s = {1, 3, 10, 7, 4, 4, 3, 1, 2, 2, 1, 1, 0, 0, 0, 0, modes[i], 1};
        run_case(modes[i], &s, 0);
    }
}

static void test_winograd_and_fusion(void)
{
    /* 64 channels 3x3 s1: the Winograd path */
    cspec w = {1, 64, 14, 14, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, NULL, 1};
    run_case("winograd-sized 3x3", &w, 0);
    run_case("winograd-sized 3x3 + relu", &w, 1);
    run_case("winograd-sized 3x3 + add", &w, 3);
    run_case("winograd-sized 3x3 + add + relu", &w, 4);
    cspec k1 = {1, 32, 8, 8, 48, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, NULL, 1};
    run_case("1x1 + clip", &k1, 2);
    run_case("1x1 + add + relu", &k1, 4);
    cspec odd = {1, 5, 9, 9, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, NULL, 1};
    run_case("odd channels + add + relu", &odd, 4);
}

/* Three convs in a chain sharing a residual: exercises layout propagation
 * (blocked between convs), aliasing of the residual buffer and the plain
 * output at the end. x0 = relu(conv0(x)), y = relu(conv2(relu(conv1(x0))) + x0) */
static void test_resblock(void)
{
    tb b;
    occ_error e = {0};
    tb_init(&b);
    int64_t C = 32, H = 12, W = 10;
    int64_t xd[4] = {1, C, H, W}, wd[4] = {C, C, 3, 3}, bd[1] = {C};
    float *x = rand_buf(C * H * W), *w1 = rand_buf(C * C * 9), *w2 = rand_buf(C * C * 9);
    float *b1 = rand_buf(C), *b2 = rand_buf(C);
    for (int64_t i = 0; i < C * C * 9; i++) {
        w1[i] *= 0.1f;
        w2[i] *= 0.1f;
    }
    int64_t w0d[4] = {C, C, 1, 1};
    float *w0 = rand_buf(C * C);
    int tx = tb_input(&b, "x", 4, xd);
    int tc0 = tb_act(&b, "c0");
    int t0 = tb_act(&b, "x0");
    int t1 = tb_act(&b, "c1"), t2 = tb_act(&b, "r1"), t3 = tb_act(&b, "c2"), t4 = tb_act(&b, "s");
    int t5 = tb_act(&b, "y");
    int tw1 = tb_weight(&b, "w1", 4, wd, w1), tb1 = tb_weight(&b, "b1", 1, bd, b1);
    int tw2 = tb_weight(&b, "w2", 4, wd, w2), tb2 = tb_weight(&b, "b2", 1, bd, b2);
    int64_t pads[4] = {1, 1, 1, 1};
    occ_attr at[1] = {A_INTS("pads", pads, 4)};
    int tw0 = tb_weight(&b, "w0", 4, w0d, w0);
    int ic[2] = {tx, tw0};
    tb_node(&b, "Conv", 2, ic, tc0, 0, NULL);
    int i0[1] = {tc0};
    tb_node(&b, "Relu", 1, i0, t0, 0, NULL);
    int i1[3] = {t0, tw1, tb1};
    tb_node(&b, "Conv", 3, i1, t1, 1, at);
    int i2[1] = {t1};
    tb_node(&b, "Relu", 1, i2, t2, 0, NULL);
    int i3[3] = {t2, tw2, tb2};
    tb_node(&b, "Conv", 3, i3, t3, 1, at);
    int i4[2] = {t0, t3};
    tb_node(&b, "Add", 2, i4, t4, 0, NULL);
    int i5[1] = {t4};
    tb_node(&b, "Relu", 1, i5, t5, 0, NULL);
    tb_output(&b, t5);
    occ_status st = tb_finish(&b, &e);
    CHECK_MSG(st == OCC_OK, "finish: %s", e.msg);

    int64_t n = C * H * W;
    float *r0 = malloc(n * 4), *r1 = malloc(n * 4), *r2 = malloc(n * 4);
    cspec s0 = {1, C, H, W, C, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, NULL, 0};
    ref_conv(&s0, x, w0, NULL, r0);
    for (int64_t i = 0; i < n; i++)
        r0[i] = r0[i] > 0 ? r0[i] : 0;
    cspec s = {1, C, H, W, C, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, NULL, 1};
    ref_conv(&s, r0, w1, b1, r1);
    for (int64_t i = 0; i < n; i++)
        r1[i] = r1[i] > 0 ? r1[i] : 0;
    ref_conv(&s, r1, w2, b2, r2);
    for (int64_t i = 0; i < n; i++) {
        float v = r2[i] + r0[i];
        r2[i] = v > 0 ? v : 0;
    }
    occ_engine *eng = NULL;
    occ_engine_opts o = {.threads = 1};
    st = occ_engine_create(&b.m, &o, tb_read, &b, &eng, &e);
    CHECK_MSG(st == OCC_OK, "create: %s", e.msg);
    if (!st) {
        occ_engine_info info;
        occ_engine_get_info(eng, &info);
        CHECK_MSG(info.n_fused == 4, "fused %u nodes", info.n_fused);
        CHECK(info.n_steps == 3);
        float *y = malloc(n * 4);
        const float *ins[1] = {x};
        float *outs[1] = {y};
        for (int rep = 0; rep < 2 && !st; rep++) { /* twice: aliasing must not leak state */
            st = occ_engine_run(eng, (const void *const *)ins, (void *const *)outs, &e);
            CHECK_MSG(st == OCC_OK, "run: %s", e.msg);
            double err = max_rel_err(y, r2, n);
            CHECK_MSG(err < 2e-4, "resblock rep %d: max rel err %g", rep, err);
        }
        free(y);
        occ_engine_free(eng);
    }
    free(x), free(w0), free(w1), free(w2), free(b1), free(b2), free(r0), free(r1), free(r2);
    tb_free(&b);
}

/* An Inception/fire-style channel Concat of two convs: the convs write
 * straight into the Concat's output (no copy) unless a conv's output is read
 * elsewhere too (here: also a graph output); both ways equal the reference. */
static void test_concat_in_place(void)
{
    enum { C = 16, M0 = 16, M1 = 32, H = 7, W = 5 };
    float *x = rand_buf(C * H * W), *w0 = rand_buf(M0 * C * 9), *w1 = rand_buf(M1 * C);
    float *b0 = rand_buf(M0), *r = malloc((M0 + M1) * H * W * 4);
    cspec s0 = {1, C, H, W, M0, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, NULL, 1};
    cspec s1 = {1, C, H, W, M1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, NULL, 0};
    ref_conv(&s0, x, w0, b0, r);
    ref_conv(&s1, x, w1, NULL, r + M0 * H * W);
    for (int64_t i = 0; i < (M0 + M1) * H * W; i++)
        r[i] = r[i] > 0 ? r[i] : 0;
    for (int shared = 0; shared < 2; shared++) {
        tb b;
        occ_error e = {0};
        tb_init(&b);
        int64_t xd[4] = {1, C, H, W}, w0d[4] = {M0, C, 3, 3}, w1d[4] = {M1, C, 1, 1}, bd[1] = {M0};
        int tx = tb_input(&b, "x", 4, xd);
        int tw0 = tb_weight(&b, "w0", 4, w0d, w0), tb0 = tb_weight(&b, "b0", 1, bd, b0);
        int tw1 = tb_weight(&b, "w1", 4, w1d, w1);
        int c0 = tb_act(&b, "c0"), r0 = tb_act(&b, "r0"), c1 = tb_act(&b, "c1");
        int r1 = tb_act(&b, "r1"), y = tb_act(&b, "y");
        int64_t pads[4] = {1, 1, 1, 1};
        occ_attr at[1] = {A_INTS("pads", pads, 4)}, ax[1] = {A_INT("axis", 1)};
        int i0[3] = {tx, tw0, tb0}, i1[2] = {tx, tw1}, i2[1] = {c0}, i3[1] = {c1}, i4[2] = {r0, r1};
        tb_node(&b, "Conv", 3, i0, c0, 1, at);
        tb_node(&b, "Relu", 1, i2, r0, 0, NULL);
        tb_node(&b, "Conv", 2, i1, c1, 0, NULL);
        tb_node(&b, "Relu", 1, i3, r1, 0, NULL);
        tb_node(&b, "Concat", 2, i4, y, 1, ax);
        tb_output(&b, y);
        if (shared)
            tb_output(&b, r1);
        CHECK_MSG(tb_finish(&b, &e) == OCC_OK, "finish: %s", e.msg);
        occ_engine *eng = NULL;
        occ_engine_opts o = {.threads = 1};
        CHECK_MSG(occ_engine_create(&b.m, &o, tb_read, &b, &eng, &e) == OCC_OK, "create: %s", e.msg);
        if (eng) {
            occ_engine_info info;
            occ_engine_get_info(eng, &info);
            CHECK_MSG(info.n_concats_elided == (shared ? 0u : 1u), "shared %d: %u elided", shared,
                      info.n_concats_elided);
            float *out = malloc((M0 + M1) * H * W * 4), *o1 = malloc(M1 * H * W * 4);
            const float *ins[1] = {x};
            float *outs[2] = {out, o1};
            for (int rep = 0; rep < 2; rep++) {
                CHECK_MSG(occ_engine_run(eng, (const void *const *)ins, (void *const *)outs, &e) ==
                              OCC_OK, "run: %s", e.msg);
                double err = max_rel_err(out, r, (M0 + M1) * H * W);
                CHECK_MSG(err < 2e-4, "shared %d rep %d: max rel err %g", shared, rep, err);
                if (shared)
                    CHECK(max_rel_err(o1, r + M0 * H * W, M1 * H * W) < 2e-4);
            }
            free(out);
            free(o1);
            occ_engine_free(eng);
        }
        tb_free(&b);
    }
    free(x), free(w0), free(w1), free(b0), free(r);
}

int main(void)
{
    RUN(test_basic);
    RUN(test_groups);
    RUN(test_auto_pad);
    RUN(test_winograd_and_fusion);
    RUN(test_resblock);
    RUN(test_concat_in_place);
    TEST_DONE();
}
