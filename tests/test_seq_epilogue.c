/* Element-wise work folded into the panel GEMM's store epilogue (issue 13;
 * src/pack/epifold.c, MatMul's occ_act, vecmath.c's act16):
 *  - occ_vec_gemm_panels_act with ReLU, GELU (erf) and GELU (tanh) equals
 *    a double reference of act(A B + bias) for every block height 1..6,
 *    more rows, k across the 256-step blocks, a partial last panel, with and
 *    without the bias row; and equals the GEMM followed by the separate
 *    op's formula bit for bit;
 *  - from ONNX through the packer: MatMul (+ bias Add) -> Relu, -> the
 *    exporters' Erf GELU, -> Gelu(tanh) become one MatMul with occ_act and
 *    equal the reference; occlumency (weight streamed in pieces of panels)
 *    equals native bit for bit;
 *  - an activation whose input is also read elsewhere (or is a graph
 *    output) is left alone;
 *  - an occ_act out of range, or without panels, is refused;
 *  - attention's Div by a constant and Add of a row mask before a Softmax
 *    become the Softmax's occ_div / occ_mask: bitwise the three separate
 *    ops' output (rows of 197: a tail), close to a double reference; a mask
 *    that varies along the rows, or a divisor that is not a constant, is
 *    left alone; a mask of the wrong size is refused. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "occ/crypto.h"
#include "occ/engine.h"
#include "occ/packer.h"
#include "ops/ops.h"
#include "ops/vecmath.h"
#include "test.h"
#include "test_pack_run.h"
#include "test_panels.h"

static float frnd(void)
{
    return 4.0f * ((float)rand() / (float)RAND_MAX - 0.5f);
}

static float *rnd(int64_t n)
{
    float *p = malloc(sizeof(float) * (size_t)(n ? n : 1));
    for (int64_t i = 0; i < n; i++)
        p[i] = frnd();
    return p;
}

static double act_d(int act, double v)
{
    switch (act) {
    case OCC_ACT_RELU: return v > 0.0 ? v : 0.0;
    case OCC_ACT_GELU: return 0.5 * v * (1.0 + erf(v / sqrt(2.0)));
    case OCC_ACT_GELU_TANH:
        return 0.5 * v * (1.0 + tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)));
    default: return v;
    }
}

static void ref_linear(const float *a, const float *w, const float *bv, int m, int k, int n,
                       int act, double *r)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = bv ? bv[j] : 0.0;
            for (int q = 0; q < k; q++)
                s += (double)a[i * k + q] * w[q * n + j];
            r[i * n + j] = act_d(act, s);
        }
}

static void test_kernel(void)
{
    const int ms[] = {1, 2, 3, 4, 5, 6, 13}, ks[] = {37, 300}, ns[] = {45, 48};
    for (int act = OCC_ACT_RELU; act <= OCC_ACT_GELU_TANH; act++)
        for (int a0 = 0; a0 < 7; a0++)
            for (int b0 = 0; b0 < 2; b0++)
                for (int c0 = 0; c0 < 2; c0++)
                    for (int hb = 0; hb < 2; hb++) {
                        const int m = ms[a0], k = ks[b0], n = ns[c0];
                        float *a = rnd(m * k), *w = rnd(k * n), *bv = rnd(n);
                        for (int i = 0; i < k * n; i++)
                            w[i] *= 0.1f;
                        float *p = panels_b(w, hb ? bv : NULL, k, n);
                        float *y = calloc((size_t)(m * n), sizeof *y);
                        float *y0 = calloc((size_t)(m * n), sizeof *y0);
                        double *r = malloc(sizeof(double) * (size_t)(m * n));
                        occ_vec_gemm_panels_act(a, m, k, k, p, (n + 15) / 16, hb, act, 0, n, y, n);
                        ref_linear(a, w, hb ? bv : NULL, m, k, n, act, r);
                        double worst = 0;
                        for (int i = 0; i < m * n; i++)
                            worst = fmax(worst, fabs(y[i] - r[i]) / (1.0 + fabs(r[i])));
                        CHECK_MSG(worst < 1e-5, "act %d %dx%dx%d bias %d: %g", act, m, k, n, hb,
                                  worst);
                        /* the separate op after the plain GEMM: the same bits
                         * (n = 48: occ_vec_gelu's 8 lanes cover every row) */
                        occ_vec_gemm_panels(a, m, k, k, p, (n + 15) / 16, hb, 0, n, y0, n);
                        if (act == OCC_ACT_RELU) {
                            for (int i = 0; i < m * n; i++)
                                y0[i] = y0[i] > 0.0f ? y0[i] : 0.0f;
                            CHECK_MSG(!memcmp(y, y0, sizeof(float) * (size_t)(m * n)),
                                      "relu %dx%dx%d bias %d: not the separate op's bits", m, k,
                                      n, hb);
                        } else if (act == OCC_ACT_GELU && n == 48) {
                            occ_vec_gelu(y0, y0, m * n);
                            CHECK_MSG(!memcmp(y, y0, sizeof(float) * (size_t)(m * n)),
                                      "gelu %dx%dx%d bias %d: not the separate op's bits", m, k,
                                      n, hb);
                        }
                        free(a), free(w), free(bv), free(p), free(y), free(y0), free(r);
                    }
    /* ReLU of NaN and -0 is +0, as the separate op's v > 0 ? v : 0 */
    float a[2] = {NAN, 1.0f}, w[16 * 2] = {0}, y[2];
    w[0] = -0.0f; /* (1 x 1) times panel column 0 */
    float yb[16];
    occ_vec_gemm_panels_act(a + 1, 1, 1, 1, w, 1, 0, OCC_ACT_RELU, 0, 1, yb, 1);
    CHECK(yb[0] == 0.0f && !signbit(yb[0]));
    w[0] = 1.0f;
    occ_vec_gemm_panels_act(a, 1, 1, 1, w, 1, 0, OCC_ACT_RELU, 0, 1, y, 1);
    CHECK(y[0] == 0.0f && !signbit(y[0]));
}

/* the imported model run once (chunks of 4 KiB): inputs ins, outputs outs */
static occ_status run_import_n(occ_import *im, const occ_engine_opts *o, const void *const *ins,
                               void *const *outs, occ_engine_stats *st, occ_error *e)
{
    return tb_run_import(im, 4u << 10, o, ins, outs, st, NULL, e);
}

static occ_status run_import(occ_import *im, const occ_engine_opts *o, const float *x, float *y,
                             occ_engine_stats *st, occ_error *e)
{
    const void *ins[1] = {x};
    void *outs[1] = {y};
    return run_import_n(im, o, ins, outs, st, e);
}

static int count_op(const occ_model *m, const char *op)
{
    int c = 0;
    for (uint32_t k = 0; k < m->n_nodes; k++)
        c += !strcmp(m->nodes[k].op, op);
    return c;
}

/* occ_act of the model's MatMul (-1: none there, 0: no attribute) */
static int64_t matmul_act(const occ_model *m)
{
    for (uint32_t k = 0; k < m->n_nodes; k++) {
        const occ_node *n = &m->nodes[k];
        if (strcmp(n->op, "MatMul"))
            continue;
        for (uint32_t q = 0; q < n->n_attrs; q++)
            if (!strcmp(n->attrs[q].name, "occ_act"))
                return n->attrs[q].i;
        return 0;
    }
    return -1;
}

enum { G_K = 300, G_N = 1000 }; /* 63 panels, the last partial: 1.2 MB */

/* x [1, M, K] -> MatMul W [K, N] (-> Add b) -> act -> y; shared: the
 * product is also a graph output */
static occ_status build(int M, int act, int bias, int shared, const float *w, const float *b,
                        occ_import **im, occ_error *e)
{
    tb t;
    tb_init(&t, 20);
    int64_t xd[] = {1, M, G_K}, wd[] = {G_K, G_N}, bd[] = {G_N}, one[] = {1};
    tb_input(&t, "x", 3, xd);
    tb_init_f(&t, "w", 2, wd, w);
    tb_node(&t, "MatMul", "mm", (const char *[]){"x", "w", NULL}, (const char *[]){"p", NULL});
    const char *lin = "p";
    if (bias) {
        tb_init_f(&t, "b", 1, bd, b);
        tb_node(&t, "Add", "add", (const char *[]){"p", "b", NULL}, (const char *[]){"h", NULL});
        lin = "h";
    }
    if (act == OCC_ACT_RELU) {
        tb_node(&t, "Relu", "relu", (const char *[]){lin, NULL}, (const char *[]){"y", NULL});
    } else if (act == OCC_ACT_GELU) {
        /* torch's export: x / sqrt2 -> Erf -> + 1 -> * x -> * 0.5 */
        const float r2 = 1.4142135381698608f, f1 = 1.0f, fh = 0.5f;
        tb_init_f(&t, "r2", 0, one, &r2);
        tb_init_f(&t, "one", 0, one, &f1);
        tb_init_f(&t, "half", 0, one, &fh);
        tb_node(&t, "Div", "g0", (const char *[]){lin, "r2", NULL}, (const char *[]){"g1", NULL});
        tb_node(&t, "Erf", "g2", (const char *[]){"g1", NULL}, (const char *[]){"g3", NULL});
        tb_node(&t, "Add", "g4", (const char *[]){"g3", "one", NULL}, (const char *[]){"g5", NULL});
        tb_node(&t, "Mul", "g6", (const char *[]){lin, "g5", NULL}, (const char *[]){"g7", NULL});
        tb_node(&t, "Mul", "g8", (const char *[]){"g7", "half", NULL},
                (const char *[]){"y", NULL});
    } else {
        Onnx__NodeProto *g = tb_node(&t, "Gelu", "gelu", (const char *[]){lin, NULL},
                                     (const char *[]){"y", NULL});
        Onnx__AttributeProto *a =
            tb_attr(&t, g, "approximate", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
        a->has_s = 1;
        a->s.data = (uint8_t *)tb_str(&t, "tanh");
        a->s.len = 4;
    }
    tb_output(&t, "y");
    if (shared)
        tb_output(&t, lin);
    occ_status s = tb_import(&t, NULL, im, e);
    tb_free(&t);
    return s;
}

static void test_packed(void)
{
    const char *names[] = {"", "relu", "gelu", "gelu tanh"};
    for (int act = OCC_ACT_RELU; act <= OCC_ACT_GELU_TANH; act++)
        for (int M = 1; M <= 13; M += (M < 6 ? 1 : 7))
            for (int bias = 0; bias < 2; bias++) {
                float *x = rnd(M * G_K), *w = rnd(G_K * G_N), *b = rnd(G_N);
                for (int i = 0; i < G_K * G_N; i++)
                    w[i] *= 0.1f;
                double *r = malloc(sizeof(double) * (size_t)(M * G_N));
                float *yn = calloc((size_t)(M * G_N), sizeof(float));
                float *yo = calloc((size_t)(M * G_N), sizeof(float));
                ref_linear(x, w, bias ? b : NULL, M, G_K, G_N, act, r);
                occ_import *im = NULL;
                occ_error e;
                occ_status s = build(M, act, bias, 0, w, b, &im, &e);
                CHECK_MSG(s == OCC_OK, "%s M %d: import: %s", names[act], M, e.msg);
                if (s == OCC_OK) {
                    const occ_model *m = occ_import_model(im);
                    CHECK_MSG(m->n_nodes == 1 && matmul_act(m) == act,
                              "%s M %d bias %d: %u nodes, occ_act %lld", names[act], M, bias,
                              m->n_nodes, (long long)matmul_act(m));
                    occ_engine_opts on = {.threads = 2};
                    s = run_import(im, &on, x, yn, NULL, &e);
                    CHECK_MSG(s == OCC_OK, "%s: native: %s", names[act], e.msg);
                    double worst = 0;
                    for (int i = 0; i < M * G_N; i++)
                        worst = fmax(worst, fabs(yn[i] - r[i]) / (1.0 + fabs(r[i])));
                    CHECK_MSG(s == OCC_OK && worst < 1e-5, "%s M %d bias %d: vs reference %g",
                              names[act], M, bias, worst);
                    /* the weight (1.2 MB) streamed in pieces through 1152 KiB */
                    occ_engine_opts oo = {.threads = 1, .loader_threads = 1,
                                          .mode = OCC_MODE_OCCLUMENCY, .budget = 1152u << 10};
                    occ_engine_stats so;
                    memset(&so, 0, sizeof so);
                    s = run_import(im, &oo, x, yo, &so, &e);
                    CHECK_MSG(s == OCC_OK, "%s: occlumency: %s", names[act], e.msg);
                    CHECK_MSG(s || so.plan_stream_bytes > 0, "%s M %d: nothing streamed",
                              names[act], M);
                    CHECK_MSG(s == OCC_OK && !memcmp(yo, yn, sizeof(float) * (size_t)(M * G_N)),
                              "%s M %d: occlumency differs from native", names[act], M);
                }
                occ_import_free(im);
                free(x), free(w), free(b), free(r), free(yn), free(yo);
            }
}

static void test_not_folded(void)
{
    /* the product (with its bias) is a graph output too: it must stay */
    float *w = rnd(G_K * G_N), *b = rnd(G_N);
    for (int act = OCC_ACT_RELU; act <= OCC_ACT_GELU_TANH; act++) {
        occ_import *im = NULL;
        occ_error e;
        occ_status s = build(6, act, 1, 1, w, b, &im, &e);
        CHECK_MSG(s == OCC_OK, "shared %d: import: %s", act, e.msg);
        if (s == OCC_OK) {
            const occ_model *m = occ_import_model(im);
            CHECK_MSG(matmul_act(m) == 0 && count_op(m, act == OCC_ACT_RELU ? "Relu" : "Gelu") == 1,
                      "shared %d: folded (occ_act %lld)", act, (long long)matmul_act(m));
        }
        occ_import_free(im);
    }
    free(w), free(b);
}

/* an occ_act the kernel does not have, or on a MatMul without panels */
static void test_refused(void)
{
    occ_tensor t[3];
    memset(t, 0, sizeof t);
    t[0].ndim = 2, t[0].dims[0] = 6, t[0].dims[1] = 16;
    t[1].ndim = 2, t[1].dims[0] = 1, t[1].dims[1] = 16 * 16;
    t[2].ndim = 2;
    int32_t ins[2] = {0, 1}, outs[1] = {2};
    const int64_t bad[][2] = {{16, 4}, {16, -1}, {0, 1}};
    for (int c = 0; c < 3; c++) {
        occ_attr at[2];
        memset(at, 0, sizeof at);
        at[0].name = "occ_packB", at[0].type = OCC_ATTR_INT, at[0].i = bad[c][0];
        at[1].name = "occ_act", at[1].type = OCC_ATTR_INT, at[1].i = bad[c][1];
        occ_node n = {.name = "mm", .op = "MatMul", .n_inputs = 2, .n_outputs = 1,
                      .inputs = ins, .outputs = outs, .n_attrs = 2, .attrs = at};
        occ_model m;
        memset(&m, 0, sizeof m);
        m.tensors = t, m.n_tensors = 3, m.nodes = &n, m.n_nodes = 1;
        occ_error e = {0};
        occ_status s = occ_op_infer(&m, &n, &e);
        CHECK_MSG(s == OCC_ERR_INVALID && strstr(e.msg, "occ_act"), "case %d: %d %s", c, (int)s,
                  e.msg);
    }
}

/* s [1, H, Q, L] -> Div c -> Add mask (dims md) -> Softmax -> y; keep: the
 * Div's and the Add's outputs are graph outputs too (nothing folds); cdiv: the divisor is
 * the graph input "c" instead of a constant */
enum { A_H = 3, A_Q = 7, A_L = 197 };

static occ_status build_attn(const int64_t *md, int keep, int cdiv, occ_import **im, occ_error *e)
{
    tb t;
    tb_init(&t, 13);
    int64_t sd[] = {1, A_H, A_Q, A_L}, one[] = {1};
    const float c = 8.0f;
    tb_input(&t, "s", 4, sd);
    tb_input(&t, "mask", 4, md);
    if (cdiv)
        tb_input(&t, "c", 1, one);
    else
        tb_init_f(&t, "c", 0, one, &c);
    tb_node(&t, "Div", "div", (const char *[]){"s", "c", NULL}, (const char *[]){"d", NULL});
    tb_node(&t, "Add", "add", (const char *[]){"d", "mask", NULL}, (const char *[]){"a", NULL});
    Onnx__NodeProto *sm = tb_node(&t, "Softmax", "sm", (const char *[]){"a", NULL},
                                  (const char *[]){"y", NULL});
    tb_attr_i(&t, sm, "axis", -1);
    tb_output(&t, "y");
    if (keep) {
        tb_output(&t, "d");
        tb_output(&t, "a");
    }
    occ_status s = tb_import(&t, NULL, im, e);
    tb_free(&t);
    return s;
}

static int64_t attr_i(const occ_model *m, const char *op, const char *name, int64_t def)
{
    for (uint32_t k = 0; k < m->n_nodes; k++)
        if (!strcmp(m->nodes[k].op, op))
            for (uint32_t q = 0; q < m->nodes[k].n_attrs; q++)
                if (!strcmp(m->nodes[k].attrs[q].name, name))
                    return m->nodes[k].attrs[q].type == OCC_ATTR_FLOAT
                               ? (int64_t)m->nodes[k].attrs[q].f
                               : m->nodes[k].attrs[q].i;
    return def;
}

static void test_softmax_fold(void)
{
    enum { N = A_H * A_Q * A_L };
    float *x = rnd(N), *mask = rnd(A_L), *yf = calloc(N, sizeof(float));
    float *yu = calloc(N, sizeof(float)), *du = calloc(2 * N, sizeof(float));
    for (int i = 0; i < N; i++)
        x[i] *= 10.0f;
    mask[3] = mask[100] = mask[196] = -10000.0f; /* padded keys */
    const int64_t md[] = {1, 1, 1, A_L};
    occ_import *im = NULL, *iu = NULL;
    occ_error e;
    occ_status s = build_attn(md, 0, 0, &im, &e);
    CHECK_MSG(s == OCC_OK, "fold: import: %s", e.msg);
    if (s == OCC_OK) {
        const occ_model *m = occ_import_model(im);
        CHECK_MSG(m->n_nodes == 1 && count_op(m, "Softmax") == 1 &&
                      attr_i(m, "Softmax", "occ_div", 0) == 8 &&
                      attr_i(m, "Softmax", "occ_mask", 0) == 1,
                  "fold: %u nodes", m->n_nodes);
        occ_engine_opts on = {.threads = 2};
        const void *ins[2] = {x, mask};
        void *outs[1] = {yf};
        s = run_import_n(im, &on, ins, outs, NULL, &e);
        CHECK_MSG(s == OCC_OK, "fold: run: %s", e.msg);
    }
    s = build_attn(md, 1, 0, &iu, &e);
    CHECK_MSG(s == OCC_OK, "unfolded: import: %s", e.msg);
    if (s == OCC_OK) {
        const occ_model *m = occ_import_model(iu);
        CHECK_MSG(count_op(m, "Div") == 1 && count_op(m, "Add") == 1 &&
                      attr_i(m, "Softmax", "occ_mask", 0) == 0 &&
                      attr_i(m, "Softmax", "occ_div", 1) == 1,
                  "unfolded: folded anyway");
        occ_engine_opts on = {.threads = 2};
        const void *ins[2] = {x, mask};
        void *outs[3] = {yu, du, du + N};
        s = run_import_n(iu, &on, ins, outs, NULL, &e);
        CHECK_MSG(s == OCC_OK, "unfolded: run: %s", e.msg);
    }
    CHECK_MSG(!memcmp(yf, yu, sizeof(float) * N), "fold: not the separate ops' bits");
    double worst = 0;
    for (int r = 0; r < A_H * A_Q; r++) {
        double t[A_L], mx = -1e300, sum = 0;
        for (int i = 0; i < A_L; i++) {
            t[i] = (double)x[r * A_L + i] / 8.0 + mask[i];
            mx = fmax(mx, t[i]);
        }
        for (int i = 0; i < A_L; i++)
            sum += exp(t[i] - mx);
        for (int i = 0; i < A_L; i++)
            worst = fmax(worst, fabs(yf[r * A_L + i] - exp(t[i] - mx) / sum));
    }
    CHECK_MSG(worst < 1e-6, "fold vs double: %g", worst);
    occ_import_free(im);
    occ_import_free(iu);
    /* a mask per query row (then the Div, read by the Add, stays too), or a
     * run-time divisor: left alone */
    const int64_t mq[] = {1, 1, A_Q, A_L};
    s = build_attn(mq, 0, 0, &im, &e);
    CHECK_MSG(s == OCC_OK && count_op(occ_import_model(im), "Add") == 1 &&
                  count_op(occ_import_model(im), "Div") == 1 &&
                  attr_i(occ_import_model(im), "Softmax", "occ_mask", 0) == 0,
              "row mask: %s", e.msg);
    occ_import_free(im);
    s = build_attn(md, 0, 1, &im, &e);
    CHECK_MSG(s == OCC_OK && count_op(occ_import_model(im), "Div") == 1 &&
                  attr_i(occ_import_model(im), "Softmax", "occ_mask", 0) == 1,
              "run-time divisor: %s", e.msg);
    occ_import_free(im);
    free(x), free(mask), free(yf), free(yu), free(du);
}

/* a Softmax's occ_mask without its input, with a mask of the wrong size,
 * or occ_div on a LogSoftmax: refused */
static void test_softmax_refused(void)
{
    occ_tensor t[3];
    memset(t, 0, sizeof t);
    t[0].ndim = 2, t[0].dims[0] = 4, t[0].dims[1] = 10;
    t[1].ndim = 1, t[1].dims[0] = 9;
    int32_t ins[2] = {0, 1}, outs[1] = {2};
    struct {
        const char *op;
        uint32_t nin;
        int64_t mask;
        float div;
    } cases[] = {{"Softmax", 1, 1, 1.0f}, {"Softmax", 2, 0, 1.0f}, {"Softmax", 2, 1, 1.0f},
                 {"LogSoftmax", 1, 0, 2.0f}, {"Softmax", 1, 0, 0.0f}};
    for (int c = 0; c < 5; c++) {
        occ_attr at[2];
        memset(at, 0, sizeof at);
        at[0].name = "occ_mask", at[0].type = OCC_ATTR_INT, at[0].i = cases[c].mask;
        at[1].name = "occ_div", at[1].type = OCC_ATTR_FLOAT, at[1].f = cases[c].div;
        occ_node n = {.name = "sm", .op = cases[c].op, .n_inputs = cases[c].nin,
                      .n_outputs = 1, .inputs = ins, .outputs = outs, .n_attrs = 2,
                      .attrs = at};
        occ_model m;
        memset(&m, 0, sizeof m);
        m.tensors = t, m.n_tensors = 3, m.nodes = &n, m.n_nodes = 1;
        occ_error e = {0};
        occ_status s = occ_op_infer(&m, &n, &e);
        CHECK_MSG(s != OCC_OK && e.msg[0], "softmax case %d accepted", c);
    }
}

int main(void)
{
    srand(13);
    RUN(test_kernel);
    RUN(test_packed);
    RUN(test_not_folded);
    RUN(test_refused);
    RUN(test_softmax_fold);
    RUN(test_softmax_refused);
    TEST_DONE();
}
