/* Grouped 1-D convolutions as OccGroupConv1d (issue 13: wav2vec2's
 * positional convolution), from ONNX through the packer to the engine:
 *  - a grouped Conv (stride 1, dilation 2, unequal pads, bias, 8 outputs a
 *    group: a partial 6-row block, a partial 16-column panel) becomes one
 *    OccGroupConv1d and equals a naive reference at 2 threads;
 *  - one whose weight is over 2 MiB becomes parts of whole groups (c_in)
 *    joined by a Concat: native equals the reference, occlumency at a
 *    6 MiB budget equals native bit for bit;
 *  - a depthwise or strided grouped Conv is left to oneDNN;
 *  - OccGroupConv1d attributes that do not fit the tensors are refused. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "occ/crypto.h"
#include "occ/engine.h"
#include "occ/packer.h"
#include "ops/ops.h"
#include "test.h"
#include "test_pack_run.h"

static float frnd(void)
{
    return (float)rand() / (float)RAND_MAX - 0.5f;
}

static float *rnd(int64_t n)
{
    float *p = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++)
        p[i] = frnd();
    return p;
}

typedef struct gc {
    int C, L, O, G, K, D, S, PL, PR;
} gc;

static int lo_of(const gc *g)
{
    return (g->L + g->PL + g->PR - g->D * (g->K - 1) - 1) / g->S + 1;
}

static void ref_conv(const gc *g, const float *x, const float *w, const float *b, float *y)
{
    const int cg = g->C / g->G, og = g->O / g->G, lo = lo_of(g);
    for (int o = 0; o < g->O; o++)
        for (int t = 0; t < lo; t++) {
            double s = b[o];
            for (int c = 0; c < cg; c++)
                for (int j = 0; j < g->K; j++) {
                    const int p = t * g->S + j * g->D - g->PL;
                    if (p >= 0 && p < g->L)
                        s += (double)w[(o * cg + c) * g->K + j] * x[((o / og) * cg + c) * g->L + p];
                }
            y[o * lo + t] = (float)s;
        }
}

static occ_status build(const gc *g, const float *w, const float *b, occ_import **im,
                        occ_error *e)
{
    tb t;
    tb_init(&t, 13);
    int64_t xd[] = {1, g->C, g->L}, wd[] = {g->O, g->C / g->G, g->K}, bd[] = {g->O};
    tb_input(&t, "x", 3, xd);
    tb_init_f(&t, "w", 3, wd, w);
    tb_init_f(&t, "b", 1, bd, b);
    Onnx__NodeProto *cv = tb_node(&t, "Conv", "pos_conv", (const char *[]){"x", "w", "b", NULL},
                                  (const char *[]){"y", NULL});
    int64_t ks[] = {g->K}, pads[] = {g->PL, g->PR}, st[] = {g->S}, dl[] = {g->D};
    tb_attr_ints(&t, cv, "kernel_shape", 1, ks);
    tb_attr_ints(&t, cv, "pads", 2, pads);
    tb_attr_ints(&t, cv, "strides", 1, st);
    tb_attr_ints(&t, cv, "dilations", 1, dl);
    tb_attr_i(&t, cv, "group", g->G);
    tb_output(&t, "y");
    occ_status s = tb_import(&t, NULL, im, e);
    tb_free(&t);
    return s;
}

/* imports g, checks the ops it became, runs native (2 threads) against the
 * reference and, when budget, occlumency against native */
static void check_case(const char *label, const gc *g, int want_parts, uint64_t budget)
{
    const int lo = lo_of(g);
    float *x = rnd((int64_t)g->C * g->L), *w = rnd((int64_t)g->O * (g->C / g->G) * g->K);
    float *b = rnd(g->O), *ref = malloc(sizeof(float) * (size_t)(g->O * lo));
    float *yn = calloc((size_t)(g->O * lo), sizeof(float));
    float *yo = calloc((size_t)(g->O * lo), sizeof(float));
    ref_conv(g, x, w, b, ref);
    occ_import *im = NULL;
    occ_error e;
    occ_status s = build(g, w, b, &im, &e);
    CHECK_MSG(s == OCC_OK, "%s: import: %s", label, e.msg);
    if (s == OCC_OK) {
        const occ_model *m = occ_import_model(im);
        const int parts = tb_count_op(m, "OccGroupConv1d");
        CHECK_MSG(parts == want_parts, "%s: %d OccGroupConv1d, want %d", label, parts,
                  want_parts);
        CHECK_MSG(tb_count_op(m, "Conv") == (want_parts ? 0 : 1), "%s: Conv left", label);
        CHECK_MSG(tb_count_op(m, "Concat") == (want_parts > 1), "%s: Concat", label);
        occ_engine_opts on = {.threads = 2};
        s = tb_run_import1(im, &on, x, yn, &e);
        CHECK_MSG(s == OCC_OK, "%s: native: %s", label, e.msg);
        double worst = 0;
        for (int i = 0; i < g->O * lo; i++)
            worst = fmax(worst, fabs(yn[i] - ref[i]) / (1.0 + fabs(ref[i])));
        CHECK_MSG(s == OCC_OK && worst < 1e-5, "%s: native vs reference %g", label, worst);
        if (budget) {
            occ_engine_opts oo = {.threads = 1, .loader_threads = 1,
                                  .mode = OCC_MODE_OCCLUMENCY, .budget = budget};
            s = tb_run_import1(im, &oo, x, yo, &e);
            CHECK_MSG(s == OCC_OK, "%s: occlumency: %s", label, e.msg);
            CHECK_MSG(s == OCC_OK && !memcmp(yo, yn, sizeof(float) * (size_t)(g->O * lo)),
                      "%s: occlumency differs from native", label);
        }
    }
    occ_import_free(im);
    free(x), free(w), free(b), free(ref), free(yn), free(yo);
}

static void test_grouped(void)
{
    const gc small = {.C = 32, .L = 70, .O = 32, .G = 4, .K = 9, .D = 2, .S = 1, .PL = 4,
                      .PR = 3};
    check_case("grouped", &small, 1, 0);
    /* 96 x 24 x 256 floats = 2.25 MiB: two parts of two groups */
    const gc big = {.C = 96, .L = 40, .O = 96, .G = 4, .K = 256, .D = 1, .S = 1, .PL = 128,
                    .PR = 128};
    check_case("parts", &big, 2, 6u << 20);
    const gc dw = {.C = 24, .L = 50, .O = 24, .G = 24, .K = 5, .D = 1, .S = 1, .PL = 2, .PR = 2};
    check_case("depthwise", &dw, 0, 0);
    const gc strided = {.C = 24, .L = 50, .O = 24, .G = 2, .K = 5, .D = 1, .S = 2, .PL = 2,
                        .PR = 2};
    check_case("strided", &strided, 0, 0);
}

static void test_refused(void)
{
    /* c_in past the input's channels, and a group that does not divide O */
    const int64_t bad[][2] = {{2, 20}, {3, 0}};
    for (int i = 0; i < 2; i++) {
        occ_model m;
        occ_tensor t[3];
        occ_node n;
        memset(&m, 0, sizeof m);
        memset(t, 0, sizeof t);
        memset(&n, 0, sizeof n);
        t[0] = (occ_tensor){.name = "x", .kind = OCC_TENSOR_INPUT, .ndim = 3, .dims = {1, 24, 30}};
        t[1] = (occ_tensor){.name = "w", .kind = OCC_TENSOR_WEIGHT, .ndim = 3, .dims = {16, 6, 3}};
        t[2] = (occ_tensor){.name = "y", .kind = OCC_TENSOR_ACT};
        occ_attr at[5];
        memset(at, 0, sizeof at);
        const char *names[5] = {"group", "dilation", "pad_l", "pad_r", "c_in"};
        const int64_t vals[5] = {bad[i][0], 1, 1, 1, bad[i][1]};
        for (int k = 0; k < 5; k++) {
            at[k].name = names[k];
            at[k].type = OCC_ATTR_INT;
            at[k].i = vals[k];
        }
        int32_t ins[2] = {0, 1}, outs[1] = {2};
        n.op = "OccGroupConv1d";
        n.name = "g";
        n.inputs = ins;
        n.n_inputs = 2;
        n.outputs = outs;
        n.n_outputs = 1;
        n.attrs = at;
        n.n_attrs = 5;
        m.tensors = t;
        m.n_tensors = 3;
        m.nodes = &n;
        m.n_nodes = 1;
        occ_error e = {0};
        CHECK_MSG(occ_op_infer(&m, &n, &e) != OCC_OK, "case %d accepted", i);
        CHECK_MSG(strstr(e.msg, "OccGroupConv1d") != NULL, "case %d: '%s'", i, e.msg);
    }
}

int main(void)
{
    RUN(test_grouped);
    RUN(test_refused);
    TEST_DONE();
}
