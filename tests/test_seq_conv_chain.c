/* Chains of 1-D convolutions kept time-major (issue 13: wav2vec2's feature
 * encoder), from ONNX through the packer to the engine:
 *  - Conv (k 3, s 2, pads 1/1) -> Gelu -> Conv (k 3, s 2, dilation 2, pads
 *    2/1: rows gathered tap by tap) -> Relu -> Conv (k 2, s 2: one copy a
 *    row) -> Gelu -> Transpose (0, 2, 1), two images: no Transpose is
 *    left, the second and third OccIm2Col read [N, L, C] (layout 1), and the
 *    output equals a double-precision reference at 2 threads; occlumency
 *    within a 640 KiB budget equals native bit for bit;
 *  - the same chain with a Softmax over the channels after the first Conv
 *    (not element-wise): that layer keeps its Transpose and its consumer's
 *    OccIm2Col reads [N, C, L] (layout 0), the rest still chains;
 *  - an OccIm2Col layout other than 0 or 1 is refused with one line. */
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

static float *rnd(int64_t n, float scale)
{
    float *p = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++)
        p[i] = scale * ((float)rand() / (float)RAND_MAX - 0.5f);
    return p;
}

/* OccIm2Col nodes with layout 1 */
static int count_time_major(const occ_model *m)
{
    int c = 0;
    for (uint32_t k = 0; k < m->n_nodes; k++) {
        const occ_node *n = &m->nodes[k];
        if (strcmp(n->op, "OccIm2Col"))
            continue;
        for (uint32_t a = 0; a < n->n_attrs; a++)
            c += !strcmp(n->attrs[a].name, "layout") && n->attrs[a].type == OCC_ATTR_INT &&
                 n->attrs[a].i == 1;
    }
    return c;
}

enum { NL = 3, L0 = 301, NB = 2 }; /* two images: the per-image offsets */
typedef struct layer {
    int cin, cout, k, s, d, pl, pr;
} layer;
static const layer LY[NL] = {{24, 64, 3, 2, 1, 1, 1}, {64, 48, 3, 2, 2, 2, 1}, {48, 48, 2, 2, 1, 0, 0}};

static int out_len(const layer *l, int len)
{
    return (len + l->pl + l->pr - l->d * (l->k - 1) - 1) / l->s + 1;
}

/* x [C, L] -> y [O, L'] in double */
static void ref_conv(const layer *l, const double *x, int len, const float *w, const float *b,
                     double *y)
{
    const int lo = out_len(l, len);
    for (int o = 0; o < l->cout; o++)
        for (int t = 0; t < lo; t++) {
            double s = b[o];
            for (int c = 0; c < l->cin; c++)
                for (int j = 0; j < l->k; j++) {
                    const int p = t * l->s + j * l->d - l->pl;
                    if (p >= 0 && p < len)
                        s += (double)w[(o * l->cin + c) * l->k + j] * x[c * len + p];
                }
            y[o * lo + t] = s;
        }
}

/* the activation after layer i: Gelu, Relu, Gelu (softmax: channels first) */
static void ref_act(int i, int softmax, double *y, int ch, int len)
{
    if (i == 0 && softmax) {
        for (int t = 0; t < len; t++) {
            double mx = -INFINITY, sum = 0;
            for (int c = 0; c < ch; c++)
                mx = fmax(mx, y[c * len + t]);
            for (int c = 0; c < ch; c++)
                sum += exp(y[c * len + t] - mx);
            for (int c = 0; c < ch; c++)
                y[c * len + t] = exp(y[c * len + t] - mx) / sum;
        }
        return;
    }
    for (int q = 0; q < ch * len; q++)
        y[q] = i == 1 ? fmax(y[q], 0.0) : 0.5 * y[q] * (1.0 + erf(y[q] / sqrt(2.0)));
}

static occ_status build(int softmax, float *const *w, float *const *b, occ_import **im,
                        occ_error *e)
{
    tb t;
    tb_init(&t, 13);
    int64_t xd[] = {NB, LY[0].cin, L0};
    tb_input(&t, "x", 3, xd);
    const char *acts[NL] = {softmax ? "Softmax" : "Gelu", "Relu", "Gelu"};
    char in[16] = "x";
    for (int i = 0; i < NL; i++) {
        const layer *l = &LY[i];
        char wn[8], bn[8], cn[8], an[8];
        snprintf(wn, sizeof wn, "w%d", i);
        snprintf(bn, sizeof bn, "b%d", i);
        snprintf(cn, sizeof cn, "c%d", i);
        snprintf(an, sizeof an, "a%d", i);
        int64_t wd[] = {l->cout, l->cin, l->k}, bd[] = {l->cout};
        tb_init_f(&t, wn, 3, wd, w[i]);
        tb_init_f(&t, bn, 1, bd, b[i]);
        Onnx__NodeProto *cv = tb_node(&t, "Conv", cn, (const char *[]){in, wn, bn, NULL},
                                      (const char *[]){cn, NULL});
        int64_t ks[] = {l->k}, pads[] = {l->pl, l->pr}, st[] = {l->s}, dl[] = {l->d};
        tb_attr_ints(&t, cv, "kernel_shape", 1, ks);
        tb_attr_ints(&t, cv, "pads", 2, pads);
        tb_attr_ints(&t, cv, "strides", 1, st);
        tb_attr_ints(&t, cv, "dilations", 1, dl);
        Onnx__NodeProto *an_ = tb_node(&t, acts[i], an, (const char *[]){cn, NULL},
                                       (const char *[]){an, NULL});
        if (!strcmp(acts[i], "Softmax"))
            tb_attr_i(&t, an_, "axis", 1);
        snprintf(in, sizeof in, "%s", an);
    }
    Onnx__NodeProto *tr = tb_node(&t, "Transpose", "to_rows", (const char *[]){in, NULL},
                                  (const char *[]){"y", NULL});
    tb_attr_ints(&t, tr, "perm", 3, (const int64_t[]){0, 2, 1});
    tb_output(&t, "y");
    occ_status s = tb_import(&t, NULL, im, e);
    tb_free(&t);
    return s;
}

static void check_chain(const char *label, int softmax)
{
    float *w[NL], *b[NL];
    int len[NL + 1] = {L0};
    for (int i = 0; i < NL; i++) {
        w[i] = rnd((int64_t)LY[i].cout * LY[i].cin * LY[i].k, 1.0f / sqrtf((float)LY[i].cin));
        b[i] = rnd(LY[i].cout, 0.2f);
        len[i + 1] = out_len(&LY[i], len[i]);
    }
    const int co = LY[NL - 1].cout, lo = len[NL], ny = NB * co * lo, nx0 = LY[0].cin * L0;
    float *x = rnd((int64_t)NB * nx0, 2.0f);
    /* the reference per image, channels first, then [L', C'] as the
     * Transpose writes */
    double *ref = malloc(sizeof(double) * (size_t)ny);
    for (int img = 0; img < NB; img++) {
        double *cur = malloc(sizeof(double) * (size_t)nx0);
        for (int q = 0; q < nx0; q++)
            cur[q] = x[img * nx0 + q];
        for (int i = 0; i < NL; i++) {
            double *nx = malloc(sizeof(double) * (size_t)(LY[i].cout * len[i + 1]));
            ref_conv(&LY[i], cur, len[i], w[i], b[i], nx);
            ref_act(i, softmax, nx, LY[i].cout, len[i + 1]);
            free(cur);
            cur = nx;
        }
        for (int c = 0; c < co; c++)
            for (int t = 0; t < lo; t++)
                ref[(img * lo + t) * co + c] = cur[c * lo + t];
        free(cur);
    }
    float *yn = calloc((size_t)ny, sizeof(float)), *yo = calloc((size_t)ny, sizeof(float));
    occ_import *im = NULL;
    occ_error e;
    occ_status s = build(softmax, w, b, &im, &e);
    CHECK_MSG(s == OCC_OK, "%s: import: %s", label, e.msg);
    if (s == OCC_OK) {
        const occ_model *m = occ_import_model(im);
        CHECK_MSG(tb_count_op(m, "Conv") == 0 && tb_count_op(m, "OccIm2Col") == NL, "%s: %d Conv, %d "
                  "OccIm2Col", label, tb_count_op(m, "Conv"), tb_count_op(m, "OccIm2Col"));
        /* softmax: the first layer's Transpose stays, its consumer reads [N, C, L] */
        CHECK_MSG(tb_count_op(m, "Transpose") == softmax, "%s: %d Transpose, want %d", label,
                  tb_count_op(m, "Transpose"), softmax);
        CHECK_MSG(count_time_major(m) == NL - 1 - softmax, "%s: %d time-major OccIm2Col, want %d",
                  label, count_time_major(m), NL - 1 - softmax);
        const occ_tensor *yt = NULL;
        for (uint32_t k = 0; k < m->n_tensors; k++)
            if (m->tensors[k].name && !strcmp(m->tensors[k].name, "y"))
                yt = &m->tensors[k];
        CHECK_MSG(yt && yt->ndim == 3 && yt->dims[0] == NB && yt->dims[1] == lo &&
                      yt->dims[2] == co,
                  "%s: output shape", label);
        occ_engine_opts on = {.threads = 2};
        s = tb_run_import1(im, &on, x, yn, &e);
        CHECK_MSG(s == OCC_OK, "%s: native: %s", label, e.msg);
        double worst = 0;
        for (int i = 0; i < ny; i++)
            worst = fmax(worst, fabs(yn[i] - ref[i]) / (1.0 + fabs(ref[i])));
        CHECK_MSG(s == OCC_OK && worst < 1e-5, "%s: native vs reference %g", label, worst);
        /* occlumency within a small budget: the same products, the same bits */
        occ_engine_opts oo = {.threads = 1, .loader_threads = 1, .mode = OCC_MODE_OCCLUMENCY,
                              .budget = 640u << 10};
        s = tb_run_import1(im, &oo, x, yo, &e);
        CHECK_MSG(s == OCC_OK, "%s: occlumency: %s", label, e.msg);
        CHECK_MSG(s == OCC_OK && !memcmp(yo, yn, sizeof(float) * (size_t)ny),
                  "%s: occlumency differs from native", label);
    }
    occ_import_free(im);
    for (int i = 0; i < NL; i++)
        free(w[i]), free(b[i]);
    free(x), free(ref), free(yn), free(yo);
}

static void test_chain(void)
{
    check_chain("chain", 0);
    check_chain("softmax", 1);
}

/* OccIm2Col with layout 2 or -1, built directly: refused at inference with a
 * line that names the attribute; layout 1 on [1, 30, 4] gives [1, L', 4 k] */
static void test_layout_attr(void)
{
    const int64_t vals[3] = {2, -1, 1};
    for (int i = 0; i < 3; i++) {
        occ_model m;
        occ_tensor t[2];
        occ_node n;
        memset(&m, 0, sizeof m);
        memset(t, 0, sizeof t);
        memset(&n, 0, sizeof n);
        t[0] = (occ_tensor){.name = "x", .kind = OCC_TENSOR_INPUT, .ndim = 3, .dims = {1, 30, 4}};
        t[1] = (occ_tensor){.name = "y", .kind = OCC_TENSOR_ACT};
        occ_attr at[6];
        memset(at, 0, sizeof at);
        const char *names[6] = {"kernel", "stride", "dilation", "pad_l", "pad_r", "layout"};
        const int64_t v[6] = {3, 2, 1, 1, 0, vals[i]};
        for (int k = 0; k < 6; k++) {
            at[k].name = names[k];
            at[k].type = OCC_ATTR_INT;
            at[k].i = v[k];
        }
        int32_t in[1] = {0}, out[1] = {1};
        n.op = "OccIm2Col";
        n.name = "cols";
        n.inputs = in;
        n.n_inputs = 1;
        n.outputs = out;
        n.n_outputs = 1;
        n.attrs = at;
        n.n_attrs = 6;
        m.tensors = t;
        m.n_tensors = 2;
        m.nodes = &n;
        m.n_nodes = 1;
        occ_error e = {0};
        occ_status s = occ_op_infer(&m, &n, &e);
        if (vals[i] == 1) {
            CHECK_MSG(s == OCC_OK, "layout 1: %s", e.msg);
            CHECK(t[1].ndim == 3 && t[1].dims[1] == 15 && t[1].dims[2] == 12);
        } else {
            CHECK_MSG(s != OCC_OK && strstr(e.msg, "layout") && !strchr(e.msg, '\n'),
                      "layout %lld: '%s'", (long long)vals[i], e.msg);
        }
    }
}

int main(void)
{
    srand(13);
    RUN(test_chain);
    RUN(test_layout_attr);
    TEST_DONE();
}
