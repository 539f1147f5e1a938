/* The ONNX importer on models built here with protobuf-c: folding (constants,
 * BatchNormalization, Identity/Dropout), operand -> attribute conversion,
 * ordering, and refusal of bad or unsupported input. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "occ/packer.h"
#include "test.h"
#include "test_pack_onnx.h"

/* Every model the importer accepts must lay out, encode, and decode with the
 * trusted manifest decoder, weights landing at their offsets. */
static void check_roundtrip(occ_import *im)
{
    occ_model *m = occ_import_model(im);
    occ_error e = {0};
    uint8_t *data = NULL, *man = NULL;
    size_t man_size = 0;
    occ_status s = occ_import_layout(im, 4096, &data, &e);
    CHECK_MSG(s == OCC_OK, "layout: %s", e.msg);
    if (s)
        return;
    for (uint32_t k = 0; k < m->n_tensors; k++) {
        const occ_tensor *t = &m->tensors[k];
        if (t->kind == OCC_TENSOR_WEIGHT)
            CHECK(t->data_offset + t->size <= m->data_size &&
                  !memcmp(data + t->data_offset, occ_import_weight(im, k), t->size));
    }
    s = occ_manifest_encode(m, &man, &man_size, &e);
    CHECK_MSG(s == OCC_OK, "encode: %s", e.msg);
    occ_model *back = NULL;
    if (!s) {
        s = occ_manifest_decode(man, man_size, &back, &e);
        CHECK_MSG(s == OCC_OK, "decode: %s", e.msg);
    }
    if (back) {
        CHECK(back->n_nodes == m->n_nodes && back->n_tensors == m->n_tensors);
        occ_model_free(back);
    }
    free(man);
    free(data);
}

static occ_status import_tb(tb *b, const occ_pack_options *o, occ_import **im, occ_error *e)
{
    uint8_t *buf;
    size_t size;
    tb_pack(b, &buf, &size);
    memset(e, 0, sizeof *e);
    occ_status s = occ_import_onnx(buf, size, o, im, e);
    free(buf);
    if (s == OCC_OK)
        check_roundtrip(*im);
    return s;
}

static const occ_node *find_op(const occ_model *m, const char *op)
{
    for (uint32_t k = 0; k < m->n_nodes; k++)
        if (!strcmp(m->nodes[k].op, op))
            return &m->nodes[k];
    return NULL;
}

static const occ_attr *attr(const occ_node *n, const char *name)
{
    for (uint32_t k = 0; n && k < n->n_attrs; k++)
        if (!strcmp(n->attrs[k].name, name))
            return &n->attrs[k];
    return NULL;
}

static uint32_t rng_state = 12345;
static float frand(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)((rng_state >> 8) & 0xFFFF) / 32768.0f - 1.0f;
}

/* Naive NCHW conv, stride 1, pad p, no groups. */
static void conv_ref(const float *x, int C, int H, int W, const float *w, const float *bias, int M,
                     int K, int p, float *y)
{
    int OH = H + 2 * p - K + 1, OW = W + 2 * p - K + 1;
    for (int m = 0; m < M; m++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                double acc = bias ? bias[m] : 0;
                for (int c = 0; c < C; c++)
                    for (int i = 0; i < K; i++)
                        for (int j = 0; j < K; j++) {
                            int ih = oh + i - p, iw = ow + j - p;
                            if (ih < 0 || iw < 0 || ih >= H || iw >= W)
                                continue;
                            acc += (double)x[(c * H + ih) * W + iw] * w[((m * C + c) * K + i) * K + j];
                        }
                y[(m * OH + oh) * OW + ow] = (float)acc;
            }
}

static void test_conv_bn_relu(void)
{
    enum { C = 2, H = 5, W = 5, M = 3, K = 3 };
    float w[M * C * K * K], bias[M], gamma[M], beta[M], mean[M], var[M];
    for (size_t k = 0; k < sizeof w / sizeof w[0]; k++)
        w[k] = frand();
    for (int m = 0; m < M; m++) {
        bias[m] = frand();
        gamma[m] = 1.0f + 0.5f * frand();
        beta[m] = frand();
        mean[m] = 0.3f * frand();
        var[m] = 0.5f + 0.4f * frand();
    }
    tb b;
    tb_init(&b, 13);
    int64_t xd[] = {1, C, H, W}, wd[] = {M, C, K, K}, md[] = {M};
    tb_input(&b, "x", 4, xd);
    tb_init_f(&b, "w", 4, wd, w);
    tb_init_f(&b, "b", 1, md, bias);
    tb_init_f(&b, "gamma", 1, md, gamma);
    tb_init_f(&b, "beta", 1, md, beta);
    tb_init_f(&b, "mean", 1, md, mean);
    tb_init_f(&b, "var", 1, md, var);
    Onnx__NodeProto *cv = tb_node(&b, "Conv", "conv1", (const char *[]){"x", "w", "b", NULL},
                                  (const char *[]){"c", NULL});
    int64_t ks[] = {K, K}, pads[] = {1, 1, 1, 1};
    tb_attr_ints(&b, cv, "kernel_shape", 2, ks);
    tb_attr_ints(&b, cv, "pads", 4, pads);
    Onnx__NodeProto *bn = tb_node(&b, "BatchNormalization", "bn1",
                                  (const char *[]){"c", "gamma", "beta", "mean", "var", NULL},
                                  (const char *[]){"n", NULL});
    tb_attr_f(&b, bn, "epsilon", 1e-3f);
    tb_node(&b, "Relu", "relu1", (const char *[]){"n", NULL}, (const char *[]){"y", NULL});
    tb_output(&b, "y");

    occ_import *im = NULL;
    occ_error e;
    occ_status s = import_tb(&b, NULL, &im, &e);
    CHECK_MSG(s == OCC_OK, "%s", e.msg);
    if (s == OCC_OK) {
        const occ_model *m = occ_import_model(im);
        CHECK(m->n_nodes == 2);
        CHECK(!strcmp(m->nodes[0].op, "Conv") && !strcmp(m->nodes[1].op, "Relu"));
        CHECK(occ_import_stats(im)->bn_folded == 1);
        const occ_node *c = &m->nodes[0];
        CHECK(c->n_inputs == 3);
        const occ_tensor *out = &m->tensors[m->outputs[0]];
        CHECK(!strcmp(out->name, "y"));
        CHECK(out->ndim == 4 && out->dims[1] == M && out->dims[2] == H && out->dims[3] == W);
        const float *fw = occ_import_weight(im, (uint32_t)c->inputs[1]);
        const float *fb = occ_import_weight(im, (uint32_t)c->inputs[2]);
        CHECK(fw && fb);
        CHECK(m->tensors[c->inputs[1]].kind == OCC_TENSOR_WEIGHT);
        /* only the folded weights are left */
        uint32_t nw = 0;
        for (uint32_t k = 0; k < m->n_tensors; k++)
            nw += m->tensors[k].kind == OCC_TENSOR_WEIGHT;
        CHECK(nw == 2);
        if (fw && fb) {
            float x[C * H * W], y0[M * H * W], y1[M * H * W];
            for (int k = 0; k < C * H * W; k++)
                x[k] = frand();
            conv_ref(x, C, H, W, w, bias, M, K, 1, y0);
            for (int mm = 0; mm < M; mm++)
                for (int k = 0; k < H * W; k++) {
                    float *v = &y0[mm * H * W + k];
                    *v = (*v - mean[mm]) / sqrtf(var[mm] + 1e-3f) * gamma[mm] + beta[mm];
                }
            conv_ref(x, C, H, W, fw, fb, M, K, 1, y1);
            double maxerr = 0;
            for (int k = 0; k < M * H * W; k++)
                maxerr = fmax(maxerr, fabs((double)y0[k] - y1[k]));
            CHECK_MSG(maxerr < 1e-4, "max error %g", maxerr);
        }
    }
    occ_import_free(im);
    tb_free(&b);
}

static void test_bn_alone_stays(void)
{
    tb b;
    tb_init(&b, 13);
    int64_t xd[] = {1, 2, 3, 3}, md[] = {2};
    float g[] = {1, 2}, z[] = {0, 0}, one[] = {1, 1};
    tb_input(&b, "x", 4, xd);
    tb_init_f(&b, "g", 1, md, g);
    tb_init_f(&b, "z", 1, md, z);
    tb_init_f(&b, "one", 1, md, one);
    tb_node(&b, "Relu", "r", (const char *[]){"x", NULL}, (const char *[]){"r", NULL});
    tb_node(&b, "BatchNormalization", "bn", (const char *[]){"r", "g", "z", "z", "one", NULL},
            (const char *[]){"y", NULL});
    tb_output(&b, "y");
    occ_import *im = NULL;
    occ_error e;
    occ_status s = import_tb(&b, NULL, &im, &e);
    CHECK_MSG(s == OCC_OK, "%s", e.msg);
    if (!s) {
        const occ_model *m = occ_import_model(im);
        CHECK(m->n_nodes == 2);
        const occ_node *n = find_op(m, "BatchNormalization");
        CHECK(n && n->n_inputs == 5);
        /* z is used twice by one node: one tensor */
        CHECK(n && n->inputs[2] == n->inputs[3]);
    }
    occ_import_free(im);
    tb_free(&b);
}

/* torchvision-style: Shape -> Gather -> Unsqueeze -> Concat -> Reshape -> Gemm */
static void test_shape_subgraph(void)
{
    tb b;
    tb_init(&b, 13);
    int64_t xd[] = {1, 4, 2, 2};
    tb_input(&b, "x", 4, xd);
    tb_node(&b, "Shape", "shape", (const char *[]){"x", NULL}, (const char *[]){"s", NULL});
    int64_t zero = 0, minus1 = -1, ax0 = 0;
    tb_const_i64_nd(&b, "idx0", 0, NULL, &zero); /* scalar index 0 */
    tb_node(&b, "Gather", "gather", (const char *[]){"s", "idx0", NULL}, (const char *[]){"g", NULL});
    tb_const_i64(&b, "axes0", 1, &ax0);
    tb_node(&b, "Unsqueeze", "unsq", (const char *[]){"g", "axes0", NULL}, (const char *[]){"u", NULL});
    tb_const_i64(&b, "m1", 1, &minus1);
    Onnx__NodeProto *cc = tb_node(&b, "Concat", "concat", (const char *[]){"u", "m1", NULL},
                                  (const char *[]){"shp", NULL});
    tb_attr_i(&b, cc, "axis", 0);
    tb_node(&b, "Reshape", "reshape", (const char *[]){"x", "shp", NULL}, (const char *[]){"f", NULL});
    float w[3 * 16], bias[3] = {0.1f, 0.2f, 0.3f};
    for (int k = 0; k < 48; k++)
        w[k] = frand();
    int64_t wd[] = {3, 16}, bd[] = {3};
    tb_init_f(&b, "fc.w", 2, wd, w);
    tb_init_f(&b, "fc.b", 1, bd, bias);
    Onnx__NodeProto *gm = tb_node(&b, "Gemm", "fc", (const char *[]){"f", "fc.w", "fc.b", NULL},
                                  (const char *[]){"logits", NULL});
    tb_attr_i(&b, gm, "transB", 1);
    tb_output(&b, "logits");
    occ_import *im = NULL;
    occ_error e;
    occ_status s = import_tb(&b, NULL, &im, &e);
    CHECK_MSG(s == OCC_OK, "%s", e.msg);
    if (!s) {
        const occ_model *m = occ_import_model(im);
        CHECK(m->n_nodes == 2);
        const occ_node *r = find_op(m, "Reshape");
        const occ_attr *a = attr(r, "shape");
        CHECK(r && r->n_inputs == 1);
        CHECK(a && a->type == OCC_ATTR_INTS && a->count == 2 && a->ints[0] == 1 && a->ints[1] == -1);
        const occ_tensor *f = r ? &m->tensors[r->outputs[0]] : NULL;
        CHECK(f && f->ndim == 2 && f->dims[0] == 1 && f->dims[1] == 16);
        const occ_tensor *o = &m->tensors[m->outputs[0]];
        CHECK(o->ndim == 2 && o->dims[1] == 3);
        CHECK(occ_import_stats(im)->folded >= 7);
    }
    occ_import_free(im);
    tb_free(&b);
}

static void test_identity_dropout(void)
{
    tb b;
    tb_init(&b, 13);
    int64_t xd[] = {1, 8};
    tb_input(&b, "x", 2, xd);
    tb_node(&b, "Identity", "id0", (const char *[]){"x", NULL}, (const char *[]){"x1", NULL});
    tb_node(&b, "Relu", "relu", (const char *[]){"x1", NULL}, (const char *[]){"r", NULL});
    tb_node(&b, "Dropout", "drop", (const char *[]){"r", NULL}, (const char *[]){"d", "mask", NULL});
    tb_node(&b, "Identity", "id1", (const char *[]){"d", NULL}, (const char *[]){"out", NULL});
    tb_output(&b, "out");
    occ_import *im = NULL;
    occ_error e;
    occ_status s = import_tb(&b, NULL, &im, &e);
    CHECK_MSG(s == OCC_OK, "%s", e.msg);
    if (!s) {
        const occ_model *m = occ_import_model(im);
        CHECK(m->n_nodes == 1 && !strcmp(m->nodes[0].op, "Relu"));
        CHECK(!strcmp(m->tensors[m->outputs[0]].name, "out"));
        CHECK(m->nodes[0].inputs[0] == m->inputs[0]);
        CHECK(occ_import_stats(im)->removed == 3);
    }
    occ_import_free(im);
    tb_free(&b);
}

static void test_operands_to_attrs(void)
{
    tb b;
    tb_init(&b, 13);
    int64_t xd[] = {1, 2, 4, 4};
    tb_input(&b, "x", 4, xd);
    int64_t pads[] = {0, 0, 1, 1, 0, 0, 1, 1};
    tb_const_i64(&b, "pads", 8, pads);
    tb_node(&b, "Pad", "pad", (const char *[]){"x", "pads", NULL}, (const char *[]){"p", NULL});
    float lo = 0.0f, hi = 6.0f;
    int64_t sd[] = {0};
    tb_init_f(&b, "lo", 0, sd, &lo);
    tb_init_f(&b, "hi", 0, sd, &hi);
    tb_node(&b, "Clip", "clip", (const char *[]){"p", "lo", "hi", NULL}, (const char *[]){"c", NULL});
    float scales[] = {1, 1, 2, 2};
    int64_t scd[] = {4};
    tb_init_f(&b, "scales", 1, scd, scales);
    Onnx__NodeProto *rs = tb_node(&b, "Resize", "resize", (const char *[]){"c", "", "scales", NULL},
                                  (const char *[]){"y", NULL});
    (void)rs;
    tb_output(&b, "y");
    occ_import *im = NULL;
    occ_error e;
    occ_status s = import_tb(&b, NULL, &im, &e);
    CHECK_MSG(s == OCC_OK, "%s", e.msg);
    if (!s) {
        const occ_model *m = occ_import_model(im);
        CHECK(m->n_nodes == 3);
        const occ_node *p = find_op(m, "Pad"), *c = find_op(m, "Clip"), *r = find_op(m, "Resize");
        const occ_attr *a = attr(p, "pads");
        CHECK(p && p->n_inputs == 1 && a && a->count == 8 && a->ints[2] == 1);
        CHECK(c && c->n_inputs == 1 && attr(c, "min") && attr(c, "max") && attr(c, "max")->f == 6.0f);
        CHECK(r && r->n_inputs == 1 && attr(r, "scales") && attr(r, "scales")->count == 4);
        const occ_tensor *y = &m->tensors[m->outputs[0]];
        CHECK(y->ndim == 4 && y->dims[2] == 12 && y->dims[3] == 12);
        for (uint32_t k = 0; k < m->n_tensors; k++)
            CHECK(m->tensors[k].kind != OCC_TENSOR_WEIGHT);
    }
    occ_import_free(im);
    tb_free(&b);
}

/* Constants computed from constants (Transpose, Mul) become one weight. */
static void test_const_fold_weights(void)
{
    tb b;
    tb_init(&b, 13);
    int64_t xd[] = {1, 3}, wd[] = {3, 2}, sd[] = {1};
    float w[] = {1, 2, 3, 4, 5, 6}, two = 2;
    tb_input(&b, "x", 2, xd);
    tb_init_f(&b, "w", 2, wd, w);
    tb_init_f(&b, "two", 1, sd, &two);
    tb_node(&b, "Mul", "scale", (const char *[]){"w", "two", NULL}, (const char *[]){"w2", NULL});
    tb_node(&b, "Transpose", "tr", (const char *[]){"w2", NULL}, (const char *[]){"wt", NULL});
    tb_node(&b, "Transpose", "tr2", (const char *[]){"wt", NULL}, (const char *[]){"wtt", NULL});
    tb_node(&b, "MatMul", "mm", (const char *[]){"x", "wtt", NULL}, (const char *[]){"y", NULL});
    tb_output(&b, "y");
    occ_import *im = NULL;
    occ_error e;
    occ_status s = import_tb(&b, NULL, &im, &e);
    CHECK_MSG(s == OCC_OK, "%s", e.msg);
    if (!s) {
        const occ_model *m = occ_import_model(im);
        CHECK(m->n_nodes == 1);
        const occ_node *n = &m->nodes[0];
        const float *wv = occ_import_weight(im, (uint32_t)n->inputs[1]);
        const occ_tensor *wt = &m->tensors[n->inputs[1]];
        CHECK(wt->ndim == 2 && wt->dims[0] == 3 && wt->dims[1] == 2);
        CHECK(wv && wv[0] == 2 && wv[1] == 4 && wv[5] == 12);
    }
    occ_import_free(im);
    tb_free(&b);
}

static void test_shared_weight(void)
{
    tb b;
    tb_init(&b, 13);
    int64_t xd[] = {1, 4}, wd[] = {4};
    float w[] = {1, 2, 3, 4};
    tb_input(&b, "x", 2, xd);
    tb_init_f(&b, "w", 1, wd, w);
    tb_node(&b, "Add", "a1", (const char *[]){"x", "w", NULL}, (const char *[]){"a", NULL});
    tb_node(&b, "Add", "a2", (const char *[]){"a", "w", NULL}, (const char *[]){"y", NULL});
    tb_output(&b, "y");
    occ_import *im = NULL;
    occ_error e;
    occ_status s = import_tb(&b, NULL, &im, &e);
    CHECK_MSG(s == OCC_OK, "%s", e.msg);
    if (!s) {
        const occ_model *m = occ_import_model(im);
        CHECK(m->n_nodes == 2);
        int32_t w1 = m->nodes[0].inputs[1], w2 = m->nodes[1].inputs[1];
        CHECK(w1 != w2);
        CHECK(strcmp(m->tensors[w1].name, m->tensors[w2].name) != 0);
        CHECK(occ_import_weight(im, (uint32_t)w2) && ((const float *)occ_import_weight(im, (uint32_t)w2))[3] == 4);
    }
    occ_import_free(im);
    tb_free(&b);
}

static void expect_fail(tb *b, const occ_pack_options *o, occ_status want, const char *needle)
{
    occ_import *im = NULL;
    occ_error e;
    occ_status s = import_tb(b, o, &im, &e);
    CHECK_MSG(s == want, "status %d (want %d): %s", (int)s, (int)want, e.msg);
    CHECK_MSG(!needle || strstr(e.msg, needle), "message '%s' lacks '%s'", e.msg, needle);
    CHECK(s != OCC_OK || im != NULL);
    occ_import_free(im);
}

static void test_unknown_op(void)
{
    tb b;
    tb_init(&b, 13);
    int64_t xd[] = {1, 4};
    tb_input(&b, "x", 2, xd);
    tb_node(&b, "FooBar", "weird", (const char *[]){"x", NULL}, (const char *[]){"y", NULL});
    tb_output(&b, "y");
    expect_fail(&b, NULL, OCC_ERR_UNSUPPORTED, "node 'weird' (FooBar): ");
    tb_free(&b);
}

static void test_bad_graphs(void)
{
    int64_t xd[] = {1, 4};
    tb b;
    /* cycle */
    tb_init(&b, 13);
    tb_input(&b, "x", 2, xd);
    tb_node(&b, "Add", "a", (const char *[]){"x", "q", NULL}, (const char *[]){"p", NULL});
    tb_node(&b, "Relu", "b", (const char *[]){"p", NULL}, (const char *[]){"q", NULL});
    tb_output(&b, "q");
    expect_fail(&b, NULL, OCC_ERR_FORMAT, "cycle");
    tb_free(&b);
    /* dangling input */
    tb_init(&b, 13);
    tb_input(&b, "x", 2, xd);
    tb_node(&b, "Add", "a", (const char *[]){"x", "nowhere", NULL}, (const char *[]){"y", NULL});
    tb_output(&b, "y");
    expect_fail(&b, NULL, OCC_ERR_FORMAT, "node 'a' (Add): input 'nowhere' is not produced");
    tb_free(&b);
    /* duplicate output */
    tb_init(&b, 13);
    tb_input(&b, "x", 2, xd);
    tb_node(&b, "Relu", "r1", (const char *[]){"x", NULL}, (const char *[]){"y", NULL});
    tb_node(&b, "Relu", "r2", (const char *[]){"x", NULL}, (const char *[]){"y", NULL});
    tb_output(&b, "y");
    expect_fail(&b, NULL, OCC_ERR_FORMAT, "produced twice");
    tb_free(&b);
    /* graph output nobody makes */
    tb_init(&b, 13);
    tb_input(&b, "x", 2, xd);
    tb_node(&b, "Relu", "r1", (const char *[]){"x", NULL}, (const char *[]){"y", NULL});
    tb_output(&b, "z");
    expect_fail(&b, NULL, OCC_ERR_FORMAT, "'z'");
    tb_free(&b);
    /* raw_data size disagrees with dims */
    tb_init(&b, 13);
    tb_input(&b, "x", 2, xd);
    float w[4] = {1, 2, 3, 4};
    int64_t wd[] = {4};
    Onnx__TensorProto *t = tb_init_f(&b, "w", 1, wd, w);
    t->raw_data.len = 12;
    tb_node(&b, "Add", "a", (const char *[]){"x", "w", NULL}, (const char *[]){"y", NULL});
    tb_output(&b, "y");
    expect_fail(&b, NULL, OCC_ERR_FORMAT, "raw_data has 12 bytes");
    tb_free(&b);
    /* absurd initializer dims */
    tb_init(&b, 13);
    tb_input(&b, "x", 2, xd);
    int64_t huge[] = {1ll << 40, 1ll << 40};
    t = tb_init_f(&b, "w", 1, wd, w);
    t->n_dims = 2;
    t->dims = huge;
    tb_node(&b, "Add", "a", (const char *[]){"x", "w", NULL}, (const char *[]){"y", NULL});
    tb_output(&b, "y");
    expect_fail(&b, NULL, OCC_ERR_SHAPE, NULL);
    t->n_dims = 1;
    t->dims[0] = 1ll << 40; /* writes into huge[] */
    expect_fail(&b, NULL, OCC_ERR_SHAPE, "absurd");
    tb_free(&b);
    /* absurd input dims */
    tb_init(&b, 13);
    int64_t hd[] = {1ll << 40, 1ll << 40, 1ll << 40};
    tb_input(&b, "x", 3, hd);
    tb_node(&b, "Relu", "r", (const char *[]){"x", NULL}, (const char *[]){"y", NULL});
    tb_output(&b, "y");
    expect_fail(&b, NULL, OCC_ERR_SHAPE, "absurd");
    tb_free(&b);
    /* external data */
    tb_init(&b, 13);
    tb_input(&b, "x", 2, xd);
    t = tb_init_f(&b, "w", 1, wd, w);
    t->has_data_location = 1;
    t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    tb_node(&b, "Add", "a", (const char *[]){"x", "w", NULL}, (const char *[]){"y", NULL});
    tb_output(&b, "y");
    expect_fail(&b, NULL, OCC_ERR_UNSUPPORTED, "external");
    tb_free(&b);
    /* float16 weights */
    tb_init(&b, 13);
    tb_input(&b, "x", 2, xd);
    t = tb_init_f(&b, "w", 1, wd, w);
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16;
    tb_node(&b, "Add", "a", (const char *[]){"x", "w", NULL}, (const char *[]){"y", NULL});
    tb_output(&b, "y");
    expect_fail(&b, NULL, OCC_ERR_UNSUPPORTED, "FLOAT16");
    tb_free(&b);
    /* non-constant Reshape shape */
    tb_init(&b, 13);
    tb_input(&b, "x", 2, xd);
    tb_input(&b, "s", 1, (int64_t[]){2});
    tb_node(&b, "Reshape", "rs", (const char *[]){"x", "s", NULL}, (const char *[]){"y", NULL});
    tb_output(&b, "y");
    expect_fail(&b, NULL, OCC_ERR_UNSUPPORTED, "node 'rs' (Reshape): input 1 ('s', for 'shape') steers output shapes but depends on graph input 's'; fix it at pack time with --bind s=FILE");
    tb_free(&b);
    /* unsupported attribute type */
    tb_init(&b, 13);
    tb_input(&b, "x", 2, xd);
    Onnx__NodeProto *n = tb_node(&b, "Relu", "r", (const char *[]){"x", NULL}, (const char *[]){"y", NULL});
    tb_attr(&b, n, "body", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH);
    tb_output(&b, "y");
    expect_fail(&b, NULL, OCC_ERR_UNSUPPORTED, "node 'r' (Relu): attribute 'body'");
    tb_free(&b);
    /* foreign domain */
    tb_init(&b, 13);
    tb_input(&b, "x", 2, xd);
    n = tb_node(&b, "Relu", "r", (const char *[]){"x", NULL}, (const char *[]){"y", NULL});
    n->domain = "com.microsoft";
    tb_output(&b, "y");
    expect_fail(&b, NULL, OCC_ERR_UNSUPPORTED, "domain");
    tb_free(&b);
    /* Gather index out of range while folding */
    tb_init(&b, 13);
    tb_input(&b, "x", 2, xd);
    tb_node(&b, "Shape", "sh", (const char *[]){"x", NULL}, (const char *[]){"s", NULL});
    int64_t i9 = 9;
    tb_const_i64(&b, "i", 1, &i9);
    tb_node(&b, "Gather", "g", (const char *[]){"s", "i", NULL}, (const char *[]){"gg", NULL});
    tb_node(&b, "Reshape", "rs", (const char *[]){"x", "gg", NULL}, (const char *[]){"y", NULL});
    tb_output(&b, "y");
    expect_fail(&b, NULL, OCC_ERR_INVALID, "node 'g' (Gather): Gather index 9 out of range");
    tb_free(&b);
    /* ConstantOfShape that would explode */
    tb_init(&b, 13);
    tb_input(&b, "x", 2, xd);
    int64_t big[] = {1 << 20, 1 << 20};
    tb_const_i64(&b, "bs", 2, big);
    tb_node(&b, "ConstantOfShape", "cos", (const char *[]){"bs", NULL}, (const char *[]){"z", NULL});
    tb_node(&b, "Add", "a", (const char *[]){"x", "z", NULL}, (const char *[]){"y", NULL});
    tb_output(&b, "y");
    expect_fail(&b, NULL, OCC_ERR_SHAPE, "node 'cos' (ConstantOfShape)");
    tb_free(&b);
    /* a graph with nothing */
    tb_init(&b, 13);
    expect_fail(&b, NULL, OCC_ERR_FORMAT, NULL);
    tb_free(&b);
}

static void test_symbolic_input(void)
{
    tb b;
    tb_init(&b, 13);
    int64_t xd[] = {-1, 4};
    tb_input(&b, "x", 2, xd);
    tb_node(&b, "Relu", "r", (const char *[]){"x", NULL}, (const char *[]){"y", NULL});
    tb_output(&b, "y");
    expect_fail(&b, NULL, OCC_ERR_UNSUPPORTED, "--input-shape x=");
    occ_input_shape pin;
    occ_error e;
    char arg[] = "x=2,4";
    CHECK(occ_parse_input_shape(arg, &pin, &e) == OCC_OK);
    CHECK(!strcmp(pin.name, "x") && pin.ndim == 2 && pin.dims[0] == 2);
    occ_pack_options o = {0};
    o.n_input_shapes = 1;
    o.input_shapes = &pin;
    occ_import *im = NULL;
    occ_status s = import_tb(&b, &o, &im, &e);
    CHECK_MSG(s == OCC_OK, "%s", e.msg);
    if (!s)
        CHECK(occ_import_model(im)->tensors[occ_import_model(im)->outputs[0]].dims[0] == 2);
    occ_import_free(im);
    char bad[] = "x=2,5";
    CHECK(occ_parse_input_shape(bad, &pin, &e) == OCC_OK);
    expect_fail(&b, &o, OCC_ERR_INVALID, "dim 1");
    char other[] = "nope=1,4";
    CHECK(occ_parse_input_shape(other, &pin, &e) == OCC_OK);
    expect_fail(&b, &o, OCC_ERR_INVALID, "'nope'");
    char junk[] = "x=1,,a";
    CHECK(occ_parse_input_shape(junk, &pin, &e) == OCC_ERR_INVALID);
    tb_free(&b);
}

/* A valid model cut at every length and bytes flipped: errors, never crashes. */
static void test_truncated_and_garbage(void)
{
    tb b;
    tb_init(&b, 13);
    int64_t xd[] = {1, 2, 4, 4}, wd[] = {2, 2, 1, 1}, md[] = {2};
    float w[] = {1, 0, 0, 1}, bias[] = {0.5f, -0.5f};
    tb_input(&b, "x", 4, xd);
    tb_init_f(&b, "w", 4, wd, w);
    tb_init_f(&b, "b", 1, md, bias);
    tb_node(&b, "Conv", "c", (const char *[]){"x", "w", "b", NULL}, (const char *[]){"y0", NULL});
    tb_node(&b, "Relu", "r", (const char *[]){"y0", NULL}, (const char *[]){"y", NULL});
    tb_output(&b, "y");
    uint8_t *buf;
    size_t size;
    tb_pack(&b, &buf, &size);
    occ_error e;
    occ_import *im = NULL;
    CHECK(occ_import_onnx(buf, size, NULL, &im, &e) == OCC_OK);
    occ_import_free(im);
    int failures = 0;
    for (size_t n = 0; n < size; n++) {
        uint8_t *cut = malloc(n ? n : 1);
        memcpy(cut, buf, n);
        im = NULL;
        occ_status s = occ_import_onnx(cut, n, NULL, &im, &e);
        failures += s != OCC_OK;
        if (s == OCC_OK)
            CHECK(im != NULL);
        occ_import_free(im);
        free(cut);
    }
    CHECK(failures > (int)size / 2);
    im = NULL;
    CHECK(occ_import_onnx(buf, size / 2, NULL, &im, &e) != OCC_OK);
    for (size_t k = 0; k < size; k++)
        for (int bit = 0; bit < 8; bit += 3) {
            buf[k] ^= (uint8_t)(1u << bit);
            im = NULL;
            if (occ_import_onnx(buf, size, NULL, &im, &e) == OCC_OK)
                occ_import_free(im);
            buf[k] ^= (uint8_t)(1u << bit);
        }
    free(buf);
    uint8_t garbage[4096];
    for (size_t k = 0; k < sizeof garbage; k++)
        garbage[k] = (uint8_t)(frand() * 127 + 128);
    im = NULL;
    CHECK(occ_import_onnx(garbage, sizeof garbage, NULL, &im, &e) != OCC_OK);
    CHECK(im == NULL);
    CHECK(occ_import_onnx((const uint8_t *)"", 0, NULL, &im, &e) != OCC_OK);
    tb_free(&b);
}

static void test_labels_preproc(void)
{
    tb b;
    tb_init(&b, 13);
    int64_t xd[] = {1, 3, 8, 8};
    tb_input(&b, "img", 4, xd);
    tb_node(&b, "GlobalAveragePool", "gap", (const char *[]){"img", NULL}, (const char *[]){"p", NULL});
    tb_node(&b, "Flatten", "fl", (const char *[]){"p", NULL}, (const char *[]){"y", NULL});
    tb_output(&b, "y");
    const char *labels[] = {"red", "green", "blue"};
    occ_pack_options o = {0};
    o.name = "tiny";
    o.labels = labels;
    o.n_labels = 3;
    o.pre.present = 1;
    memcpy(o.pre.channel_order, "BGR", 4);
    o.pre.scale = 1.0f / 255;
    for (int k = 0; k < 3; k++) {
        o.pre.mean[k] = 0.5f;
        o.pre.std[k] = 0.25f;
    }
    occ_import *im = NULL;
    occ_error e;
    occ_status s = import_tb(&b, &o, &im, &e);
    CHECK_MSG(s == OCC_OK, "%s", e.msg);
    if (!s) {
        const occ_model *m = occ_import_model(im);
        CHECK(!strcmp(m->name, "tiny"));
        CHECK(m->n_labels == 3 && !strcmp(m->labels[2], "blue"));
        CHECK(m->pre.present && m->pre.height == 8 && m->pre.width == 8 && m->pre.channels == 3);
    }
    occ_import_free(im);
    o.n_labels = 2;
    expect_fail(&b, &o, OCC_ERR_INVALID, "2 labels");
    o.n_labels = 3;
    o.pre.height = 224;
    o.pre.width = 224;
    expect_fail(&b, &o, OCC_ERR_INVALID, "224x224");
    tb_free(&b);
}

/* Optional outputs nobody reads are dropped; a used Dropout mask is a constant of ones
 * (refused when larger than 2^20 elements). */
static void test_unused_outputs(void)
{
    tb b;
    tb_init(&b, 13);
    int64_t xd[] = {1, 2, 4, 4};
    tb_input(&b, "x", 4, xd);
    Onnx__NodeProto *mp = tb_node(&b, "MaxPool", "pool", (const char *[]){"x", NULL},
                                  (const char *[]){"p", "indices", NULL});
    tb_attr_ints(&b, mp, "kernel_shape", 2, (int64_t[]){2, 2});
    tb_attr_ints(&b, mp, "strides", 2, (int64_t[]){2, 2});
    tb_output(&b, "p");
    occ_import *im = NULL;
    occ_error e;
    occ_status s = import_tb(&b, NULL, &im, &e);
    CHECK_MSG(s == OCC_OK, "%s", e.msg);
    if (!s) {
        const occ_model *m = occ_import_model(im);
        CHECK(m->n_nodes == 1 && m->nodes[0].n_outputs == 1);
        CHECK(m->tensors[m->outputs[0]].dims[2] == 2);
    }
    occ_import_free(im);
    tb_free(&b);

    /* a read mask is all true at inference: a bool constant of x's shape */
    tb_init(&b, 13);
    tb_input(&b, "x", 4, xd);
    tb_node(&b, "Dropout", "drop", (const char *[]){"x", NULL}, (const char *[]){"d", "mask", NULL});
    Onnx__NodeProto *cn = tb_node(&b, "Cast", "cast", (const char *[]){"mask", NULL},
                                  (const char *[]){"mf", NULL});
    tb_attr_i(&b, cn, "to", 1);
    tb_node(&b, "Add", "add", (const char *[]){"d", "mf", NULL}, (const char *[]){"y", NULL});
    tb_output(&b, "y");
    s = import_tb(&b, NULL, &im, &e);
    CHECK_MSG(s == OCC_OK, "%s", e.msg);
    if (!s) {
        const occ_model *m = occ_import_model(im);
        CHECK(m->n_nodes == 1 && !strcmp(m->nodes[0].op, "Add")); /* Cast folded: ones */
        const occ_tensor *w = &m->tensors[m->nodes[0].inputs[1]];
        CHECK(w->kind == OCC_TENSOR_WEIGHT && w->ndim == 4 && w->dims[3] == 4);
    }
    occ_import_free(im);
    im = NULL;
    tb_free(&b);
    /* ... but not a huge one (more than 2^20 elements): refused when read */
    tb_init(&b, 13);
    tb_input(&b, "x", 4, (int64_t[]){1, 1, 1025, 1024});
    tb_node(&b, "Dropout", "drop", (const char *[]){"x", NULL}, (const char *[]){"d", "mask", NULL});
    tb_node(&b, "Add", "add", (const char *[]){"d", "mask", NULL}, (const char *[]){"y", NULL});
    tb_output(&b, "y");
    expect_fail(&b, NULL, OCC_ERR_UNSUPPORTED, "node 'add' (Add): input 'mask' is the mask output");
    tb_free(&b);
}

/* The import rules added for the ONNX node tests: a Dropout of a graph input
 * becomes a copy; Softmax before opset 13 says coerce_2d and its axis;
 * opset 6 is taken for operators that never changed and refused (naming the
 * operator) for others; LSTM's constant sequence_lens becomes an attribute
 * and initial_h keeps its input slot. */
static void test_conformance_rules(void)
{
    tb b;
    occ_import *im = NULL;
    occ_error e;
    int64_t xd[] = {1, 2, 3};
    tb_init(&b, 13);
    tb_input(&b, "x", 3, xd);
    tb_node(&b, "Dropout", "drop", (const char *[]){"x", NULL}, (const char *[]){"y", NULL});
    tb_output(&b, "y");
    occ_status s = import_tb(&b, NULL, &im, &e);
    CHECK_MSG(s == OCC_OK, "%s", e.msg);
    if (!s) {
        const occ_model *m = occ_import_model(im);
        CHECK(m->n_nodes == 1 && !strcmp(m->nodes[0].op, "Identity"));
        CHECK(m->outputs[0] != m->inputs[0] && !strcmp(m->tensors[m->outputs[0]].name, "y"));
    }
    occ_import_free(im);
    tb_free(&b);
    /* but a graph output that is the input itself (same name) stays refused:
     * a copy could not have a name of its own (found by fuzz_onnx) */
    tb_init(&b, 13);
    tb_input(&b, "x", 3, xd);
    tb_node(&b, "Relu", "r", (const char *[]){"x", NULL}, (const char *[]){"z", NULL});
    tb_output(&b, "x");
    expect_fail(&b, NULL, OCC_ERR_UNSUPPORTED, "graph output 'x' is a graph input");
    tb_free(&b);

    tb_init(&b, 11);
    tb_input(&b, "x", 3, xd);
    tb_node(&b, "Softmax", "sm", (const char *[]){"x", NULL}, (const char *[]){"y", NULL});
    tb_output(&b, "y");
    s = import_tb(&b, NULL, &im, &e);
    CHECK_MSG(s == OCC_OK, "%s", e.msg);
    if (!s) {
        const occ_node *n = find_op(occ_import_model(im), "Softmax");
        CHECK(n && attr(n, "coerce_2d") && attr(n, "coerce_2d")->i == 1);
        CHECK(n && attr(n, "axis") && attr(n, "axis")->i == 1);
    }
    occ_import_free(im);
    tb_free(&b);

    tb_init(&b, 6);
    tb_input(&b, "x", 3, xd);
    tb_node(&b, "Softplus", "sp", (const char *[]){"x", NULL}, (const char *[]){"y", NULL});
    tb_output(&b, "y");
    s = import_tb(&b, NULL, &im, &e);
    CHECK_MSG(s == OCC_OK, "%s", e.msg);
    occ_import_free(im);
    tb_free(&b);
    tb_init(&b, 6);
    tb_input(&b, "x", 3, xd);
    tb_node(&b, "Add", "add", (const char *[]){"x", "x", NULL}, (const char *[]){"y", NULL});
    tb_output(&b, "y");
    expect_fail(&b, NULL, OCC_ERR_UNSUPPORTED, "opset 6 is too old for Add");
    tb_free(&b);

    /* LSTM: X [2,1,3], hidden 2; sequence_lens {2} constant, initial_h input */
    tb_init(&b, 14);
    int64_t sx[] = {2, 1, 3}, wd[] = {1, 8, 3}, rd[] = {1, 8, 2}, hd[] = {1, 1, 2};
    float wv[24] = {0}, rv[16] = {0};
    tb_input(&b, "X", 3, sx);
    tb_input(&b, "h0", 3, hd);
    tb_init_f(&b, "W", 3, wd, wv);
    tb_init_f(&b, "R", 3, rd, rv);
    tb_init_i64(&b, "len", 1, (int64_t[]){1}, (int64_t[]){2});
    Onnx__NodeProto *ln = tb_node(&b, "LSTM", "lstm",
                                  (const char *[]){"X", "W", "R", "", "len", "h0", NULL},
                                  (const char *[]){"Y", NULL});
    tb_attr_i(&b, ln, "hidden_size", 2);
    tb_output(&b, "Y");
    s = import_tb(&b, NULL, &im, &e);
    CHECK_MSG(s == OCC_OK, "%s", e.msg);
    if (!s) {
        const occ_model *m = occ_import_model(im);
        const occ_node *n = find_op(m, "LSTM");
        CHECK(n && attr(n, "sequence_lens") && attr(n, "sequence_lens")->ints[0] == 2);
        CHECK(n && n->n_inputs == 6 && n->inputs[3] < 0 && n->inputs[4] < 0 &&
              !strcmp(m->tensors[n->inputs[5]].name, "h0"));
    }
    occ_import_free(im);
    tb_free(&b);
}

/* swin_t computes its window padding as (w - W % w) % w: integer Mod folds at
 * pack time, with the divisor's sign (fmod=0, Python's %) or C's fmod (fmod=1);
 * a modulo by zero is refused. Checked through the Reshape shape it folds into. */
static void test_fold_mod(void)
{
    tb b;
    tb_init(&b, 13);
    int64_t xd[] = {1, 24};
    tb_input(&b, "x", 2, xd);
    const int64_t v[] = {-7, 4, 5, 7, -4, 10};
    const char *names[] = {"m7", "four", "five", "seven", "mfour", "ten"};
    for (int k = 0; k < 6; k++)
        tb_const_i64(&b, names[k], 1, &v[k]);
    tb_node(&b, "Mod", "a", (const char *[]){"m7", "four", NULL}, (const char *[]){"d0", NULL});
    tb_node(&b, "Mod", "w1", (const char *[]){"five", "four", NULL}, (const char *[]){"r", NULL});
    tb_node(&b, "Sub", "w2", (const char *[]){"four", "r", NULL}, (const char *[]){"p", NULL});
    tb_node(&b, "Mod", "w3", (const char *[]){"p", "four", NULL}, (const char *[]){"d1", NULL});
    tb_node(&b, "Mod", "c", (const char *[]){"seven", "mfour", NULL}, (const char *[]){"d2", NULL});
    Onnx__NodeProto *f = tb_node(&b, "Mod", "f", (const char *[]){"ten", "mfour", NULL},
                                 (const char *[]){"d3", NULL});
    tb_attr_i(&b, f, "fmod", 1);
    Onnx__NodeProto *cc = tb_node(&b, "Concat", "cat", (const char *[]){"d0", "d1", "d2", "d3", NULL},
                                  (const char *[]){"shp", NULL});
    tb_attr_i(&b, cc, "axis", 0);
    tb_node(&b, "Reshape", "reshape", (const char *[]){"x", "shp", NULL}, (const char *[]){"y", NULL});
    tb_output(&b, "y");
    occ_import *im = NULL;
    occ_error e;
    occ_status s = import_tb(&b, NULL, &im, &e);
    CHECK_MSG(s == OCC_OK, "%s", e.msg);
    if (!s) {
        const occ_node *r = find_op(occ_import_model(im), "Reshape");
        const occ_attr *a = r ? attr(r, "shape") : NULL;
        /* -7 mod 4 = 1, (4 - 5 mod 4) mod 4 = 3, 7 mod -4 = -1, fmod(10, -4) = 2 */
        CHECK(a && a->type == OCC_ATTR_INTS && a->count == 4);
        CHECK(a && a->ints[0] == 1 && a->ints[1] == 3 && a->ints[2] == -1 && a->ints[3] == 2);
        const occ_tensor *o = r ? &occ_import_model(im)->tensors[r->outputs[0]] : NULL;
        CHECK(o && o->ndim == 4 && o->dims[2] == 4 && o->dims[3] == 2);
    }
    occ_import_free(im);
    tb_free(&b);

    tb_init(&b, 13);
    tb_input(&b, "x", 2, xd);
    int64_t zero = 0, five = 5;
    tb_const_i64(&b, "z", 1, &zero);
    tb_const_i64(&b, "five", 1, &five);
    tb_node(&b, "Mod", "m", (const char *[]){"five", "z", NULL}, (const char *[]){"d", NULL});
    tb_node(&b, "Reshape", "reshape", (const char *[]){"x", "d", NULL}, (const char *[]){"y", NULL});
    tb_output(&b, "y");
    expect_fail(&b, NULL, OCC_ERR_INVALID, "modulo by zero");
    tb_free(&b);
}

/* torch exports swin_t's F.dropout(p=0.0, training=True) as Dropout with ratio 0
 * and training_mode true: the identity. Any other ratio in training mode stays
 * refused. */
static void test_dropout_training_ratio0(void)
{
    for (int ratio_zero = 1; ratio_zero >= 0; ratio_zero--) {
        tb b;
        tb_init(&b, 13);
        int64_t xd[] = {1, 8};
        tb_input(&b, "x", 2, xd);
        float ratio = ratio_zero ? 0.0f : 0.1f;
        tb_init_f(&b, "ratio", 0, NULL, &ratio);
        int64_t one = 1;
        tb_init_i64(&b, "train", 0, NULL, &one);
        tb_node(&b, "Relu", "relu", (const char *[]){"x", NULL}, (const char *[]){"r", NULL});
        tb_node(&b, "Dropout", "drop", (const char *[]){"r", "ratio", "train", NULL},
                (const char *[]){"d", NULL});
        tb_node(&b, "Sigmoid", "sig", (const char *[]){"d", NULL}, (const char *[]){"out", NULL});
        tb_output(&b, "out");
        if (!ratio_zero) {
            expect_fail(&b, NULL, OCC_ERR_UNSUPPORTED, "training_mode is true");
            tb_free(&b);
            continue;
        }
        occ_import *im = NULL;
        occ_error e;
        occ_status s = import_tb(&b, NULL, &im, &e);
        CHECK_MSG(s == OCC_OK, "%s", e.msg);
        if (!s) {
            const occ_model *m = occ_import_model(im);
            CHECK(m->n_nodes == 2 && find_op(m, "Relu") && find_op(m, "Sigmoid"));
            CHECK(!find_op(m, "Dropout") && !find_op(m, "Identity"));
        }
        occ_import_free(im);
        tb_free(&b);
    }
}

static void tb_attr_strs(tb *b, Onnx__NodeProto *n, const char *name, const char *const *v)
{
    Onnx__AttributeProto *a = tb_attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS);
    size_t cnt = 0;
    while (v[cnt])
        cnt++;
    a->n_strings = cnt;
    a->strings = tb_alloc(b, (cnt ? cnt : 1) * sizeof *a->strings);
    for (size_t k = 0; k < cnt; k++) {
        a->strings[k].data = (uint8_t *)tb_str(b, v[k]);
        a->strings[k].len = strlen(v[k]);
    }
}

/* One-node RNN/GRU (bidirectional when dirs == 2) with the given activations. */
static void rnn_graph(tb *b, const char *op, int dirs, const char *const *acts)
{
    const int G = !strcmp(op, "GRU") ? 3 : 1, H = 2;
    int64_t xd[] = {2, 1, 3}, wd[] = {dirs, G * H, 3}, rd[] = {dirs, G * H, H};
    static float wv[2 * 3 * 2 * 3], rv[2 * 3 * 2 * 2];
    tb_init(b, 14);
    tb_input(b, "X", 3, xd);
    tb_init_f(b, "W", 3, wd, wv);
    tb_init_f(b, "R", 3, rd, rv);
    Onnx__NodeProto *n = tb_node(b, op, "rnn", (const char *[]){"X", "W", "R", NULL},
                                 (const char *[]){"Y", NULL});
    tb_attr_i(b, n, "hidden_size", H);
    if (dirs == 2) {
        Onnx__AttributeProto *a =
            tb_attr(b, n, "direction", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
        a->s.data = (uint8_t *)tb_str(b, "bidirectional");
        a->s.len = strlen("bidirectional");
        a->has_s = 1;
    }
    tb_attr_strs(b, n, "activations", acts);
    tb_output(b, "Y");
}

/* torch writes RNN's activations (a string list) even when they are the
 * defaults: ["Tanh", "Tanh"] for a bidirectional RNN, ["Relu"] for
 * nonlinearity='relu'. Defaults are dropped, all-Relu RNN becomes the string
 * "Relu" the kernel knows, anything else is refused with a clear error. */
static void test_rnn_activations(void)
{
    tb b;
    occ_import *im = NULL;
    occ_error e;
    rnn_graph(&b, "RNN", 2, (const char *[]){"Tanh", "tanh", NULL});
    occ_status s = import_tb(&b, NULL, &im, &e);
    CHECK_MSG(s == OCC_OK, "%s", e.msg);
    if (!s) {
        const occ_node *n = find_op(occ_import_model(im), "RNN");
        CHECK(n && !attr(n, "activations"));
    }
    occ_import_free(im);
    tb_free(&b);

    rnn_graph(&b, "GRU", 1, (const char *[]){"Sigmoid", "Tanh", NULL});
    s = import_tb(&b, NULL, &im, &e);
    CHECK_MSG(s == OCC_OK, "%s", e.msg);
    if (!s) {
        const occ_node *n = find_op(occ_import_model(im), "GRU");
        CHECK(n && !attr(n, "activations"));
    }
    occ_import_free(im);
    tb_free(&b);

    rnn_graph(&b, "RNN", 2, (const char *[]){"Relu", "Relu", NULL});
    s = import_tb(&b, NULL, &im, &e);
    CHECK_MSG(s == OCC_OK, "%s", e.msg);
    if (!s) {
        const occ_node *n = find_op(occ_import_model(im), "RNN");
        const occ_attr *a = attr(n, "activations");
        CHECK(a && a->type == OCC_ATTR_STRING && !strcmp(a->s, "Relu"));
    }
    occ_import_free(im);
    tb_free(&b);

    rnn_graph(&b, "RNN", 2, (const char *[]){"Relu", "Tanh", NULL});
    expect_fail(&b, NULL, OCC_ERR_UNSUPPORTED, "RNN with custom activations");
    tb_free(&b);
    rnn_graph(&b, "GRU", 1, (const char *[]){"Sigmoid", "Relu", NULL});
    expect_fail(&b, NULL, OCC_ERR_UNSUPPORTED, "GRU with custom activations");
    tb_free(&b);
    rnn_graph(&b, "GRU", 1, (const char *[]){"Sigmoid", NULL});
    expect_fail(&b, NULL, OCC_ERR_INVALID, "'activations' has 1 entries");
    tb_free(&b);
}

static Onnx__NodeProto *einsum_graph(tb *b, const char *eq, int n, const int64_t (*dims)[3],
                                     const int *nd)
{
    static const char *const nm[] = {"A", "B", "C", "D"};
    const char *ins[5] = {NULL};
    tb_init(b, 14);
    for (int k = 0; k < n; k++) {
        tb_input(b, nm[k], nd[k], dims[k]);
        ins[k] = nm[k];
    }
    Onnx__NodeProto *node = tb_node(b, "Einsum", "ein", ins, (const char *[]){"Y", NULL});
    Onnx__AttributeProto *a =
        tb_attr(b, node, "equation", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    a->s.data = (uint8_t *)tb_str(b, eq);
    a->s.len = strlen(eq);
    a->has_s = 1;
    tb_output(b, "Y");
    return node;
}

/* Einsum with three or more operands (linear attention's
 * "btd,btde,bt->bte") becomes a chain of two-operand Einsums: each
 * intermediate keeps only the letters a later operand or the output needs. */
static void test_einsum_chain(void)
{
    tb b;
    occ_import *im = NULL;
    occ_error e;
    const int64_t d4[][3] = {{2, 5, 3}, {2, 5, 3}, {2, 5}};
    /* btd,btde,bt->bte with d = 3, e = 4: B is rank 4, built by hand */
    tb_init(&b, 14);
    int64_t ad[] = {2, 5, 3}, bd[] = {2, 5, 3, 4}, cd[] = {2, 5};
    tb_input(&b, "A", 3, ad);
    tb_input(&b, "B", 4, bd);
    tb_input(&b, "C", 2, cd);
    Onnx__NodeProto *node = tb_node(&b, "Einsum", "ein", (const char *[]){"A", "B", "C", NULL},
                                    (const char *[]){"Y", NULL});
    Onnx__AttributeProto *a =
        tb_attr(&b, node, "equation", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    a->s.data = (uint8_t *)tb_str(&b, "btd,btde,bt->bte");
    a->s.len = strlen("btd,btde,bt->bte");
    a->has_s = 1;
    tb_output(&b, "Y");
    occ_status s = import_tb(&b, NULL, &im, &e);
    CHECK_MSG(s == OCC_OK, "%s", e.msg);
    if (!s) {
        const occ_model *m = occ_import_model(im);
        CHECK(m->n_nodes == 2);
        if (m->n_nodes == 2) {
            const occ_attr *q0 = attr(&m->nodes[0], "equation");
            const occ_attr *q1 = attr(&m->nodes[1], "equation");
            CHECK(q0 && !strcmp(q0->s, "btd,btde->bte"));
            CHECK(q1 && !strcmp(q1->s, "bte,bt->bte"));
            CHECK(m->nodes[0].n_inputs == 2 && m->nodes[1].n_inputs == 2);
            CHECK(m->nodes[1].inputs[0] == m->nodes[0].outputs[0]);
            const occ_tensor *y = &m->tensors[m->outputs[0]];
            CHECK(!strcmp(y->name, "Y") && y->ndim == 3 && y->dims[0] == 2 && y->dims[1] == 5 &&
                  y->dims[2] == 4);
        }
    }
    occ_import_free(im);
    tb_free(&b);

    /* implicit output with an ellipsis: "...i,ij,jk" -> "...ik" */
    const int64_t dims[3][3] = {{7, 2, 3}, {3, 4}, {4, 6}};
    const int nd[3] = {3, 2, 2};
    einsum_graph(&b, "...i,ij,jk", 3, dims, nd);
    s = import_tb(&b, NULL, &im, &e);
    CHECK_MSG(s == OCC_OK, "%s", e.msg);
    if (!s) {
        const occ_model *m = occ_import_model(im);
        const occ_attr *q0 = m->n_nodes == 2 ? attr(&m->nodes[0], "equation") : NULL;
        CHECK(q0 && !strcmp(q0->s, "...i,ij->...j"));
        const occ_tensor *y = &m->tensors[m->outputs[0]];
        CHECK(y->ndim == 3 && y->dims[0] == 7 && y->dims[1] == 2 && y->dims[2] == 6);
    }
    occ_import_free(im);
    tb_free(&b);

    /* an equation that does not match the operands: one clear line */
    einsum_graph(&b, "i,i->i", 3, d4, (const int[]){3, 3, 2});
    expect_fail(&b, NULL, OCC_ERR_INVALID, "operand terms");
    tb_free(&b);
}

/* Emformer with no memory: torch.cat of a 1-D [0] constant with 3-D
 * tensors, and a Clip of an empty slice. Empty Concat inputs are dropped
 * whatever their rank; unary ops take an empty tensor (empty output, never
 * run). */
static void test_concat_empty(void)
{
    tb b;
    occ_import *im = NULL;
    occ_error e;
    int64_t xd[] = {3, 1, 4}, ed[] = {0, 1, 4}, zd[] = {0};
    tb_init(&b, 14);
    tb_input(&b, "X", 3, xd);
    tb_input(&b, "E", 3, ed);
    tb_init_f(&b, "Z", 1, zd, NULL);
    tb_node(&b, "Relu", "relu", (const char *[]){"E", NULL}, (const char *[]){"R", NULL});
    Onnx__NodeProto *n = tb_node(&b, "Concat", "cat", (const char *[]){"X", "R", "Z", NULL},
                                 (const char *[]){"Y", NULL});
    tb_attr_i(&b, n, "axis", 0);
    tb_output(&b, "Y");
    occ_status s = import_tb(&b, NULL, &im, &e);
    CHECK_MSG(s == OCC_OK, "%s", e.msg);
    if (!s) {
        const occ_model *m = occ_import_model(im);
        const occ_node *c = find_op(m, "Concat");
        CHECK(c && c->n_inputs == 1 && !strcmp(m->tensors[c->inputs[0]].name, "X"));
        const occ_tensor *y = &m->tensors[m->outputs[0]];
        CHECK(y->ndim == 3 && y->dims[0] == 3 && y->dims[1] == 1 && y->dims[2] == 4);
    }
    occ_import_free(im);
    tb_free(&b);

    /* all inputs empty (RNN-T's empty memory slices): an empty output */
    tb_init(&b, 14);
    tb_input(&b, "E", 3, ed);
    tb_input(&b, "F", 3, ed);
    n = tb_node(&b, "Concat", "cat", (const char *[]){"E", "F", NULL}, (const char *[]){"Y", NULL});
    tb_attr_i(&b, n, "axis", 1);
    tb_output(&b, "Y");
    s = import_tb(&b, NULL, &im, &e);
    CHECK_MSG(s == OCC_OK, "%s", e.msg);
    if (!s) {
        const occ_tensor *y = &occ_import_model(im)->tensors[occ_import_model(im)->outputs[0]];
        CHECK(y->ndim == 3 && y->dims[0] == 0 && y->dims[1] == 2 && y->size == 0);
    }
    occ_import_free(im);
    tb_free(&b);

    /* all inputs empty: nothing dropped, the ranks still have to agree */
    tb_init(&b, 14);
    tb_input(&b, "E", 3, ed);
    tb_init_f(&b, "Z", 1, zd, NULL);
    n = tb_node(&b, "Concat", "cat", (const char *[]){"E", "Z", NULL}, (const char *[]){"Y", NULL});
    tb_attr_i(&b, n, "axis", 0);
    tb_output(&b, "Y");
    s = import_tb(&b, NULL, &im, &e);
    CHECK(s != OCC_OK);
    occ_import_free(im);
    tb_free(&b);
}

/* Integer Mod folds at pack time (RNN-T's time reduction computes a Slice's
 * end with it): Python's sign (of the divisor) by default, C's with fmod 1.
 * X [6, 4] sliced on axis 0 up to Mod(-7, 3): 2 rows, or -1 (5 rows). */
static void test_fold_mod_int(void)
{
    for (int fm = 0; fm < 2; fm++) {
        tb b;
        occ_import *im = NULL;
        occ_error e;
        int64_t xd[] = {6, 4};
        tb_init(&b, 14);
        tb_input(&b, "X", 2, xd);
        tb_const_i64(&b, "a", 1, (int64_t[]){-7});
        tb_const_i64(&b, "d", 1, (int64_t[]){3});
        tb_const_i64(&b, "st", 1, (int64_t[]){0});
        tb_const_i64(&b, "ax", 1, (int64_t[]){0});
        Onnx__NodeProto *n = tb_node(&b, "Mod", "mod", (const char *[]){"a", "d", NULL},
                                     (const char *[]){"end", NULL});
        tb_attr_i(&b, n, "fmod", fm);
        tb_node(&b, "Slice", "sl", (const char *[]){"X", "st", "end", "ax", NULL},
                (const char *[]){"Y", NULL});
        tb_output(&b, "Y");
        occ_status s = import_tb(&b, NULL, &im, &e);
        CHECK_MSG(s == OCC_OK, "%s", e.msg);
        if (!s) {
            const occ_tensor *y = &occ_import_model(im)->tensors[occ_import_model(im)->outputs[0]];
            CHECK_MSG(y->ndim == 2 && y->dims[0] == (fm ? 5 : 2) && y->dims[1] == 4,
                      "fmod %d: %lld rows", fm, (long long)y->dims[0]);
        }
        occ_import_free(im);
        tb_free(&b);
    }
}

/* TopK, Split and Expand of constants fold (pack_padded_sequence sorts the
 * lengths with TopK before they reach the LSTM's sequence_lens):
 * TopK([2, 5, 1], 2) = [5, 2] at [1, 0]; Split each into one-element parts;
 * Y = X[:5, :1] from Concat(5, 1); W = Reshape(Z[4], Expand(2, [2])). */
static void test_fold_topk_split_expand(void)
{
    tb b;
    occ_import *im = NULL;
    occ_error e;
    int64_t xd[] = {6, 4}, zd[] = {4};
    tb_init(&b, 14);
    tb_input(&b, "X", 2, xd);
    tb_input(&b, "Z", 1, zd);
    tb_const_i64(&b, "v", 3, (int64_t[]){2, 5, 1});
    tb_const_i64(&b, "k", 1, (int64_t[]){2});
    tb_const_i64(&b, "ones", 2, (int64_t[]){1, 1});
    tb_const_i64(&b, "two", 1, (int64_t[]){2});
    tb_const_i64(&b, "st", 2, (int64_t[]){0, 0});
    tb_const_i64(&b, "ax", 2, (int64_t[]){0, 1});
    tb_node(&b, "TopK", "topk", (const char *[]){"v", "k", NULL},
            (const char *[]){"tv", "ti", NULL});
    tb_node(&b, "Split", "sv", (const char *[]){"tv", "ones", NULL},
            (const char *[]){"a", "bb", NULL});
    tb_node(&b, "Split", "si", (const char *[]){"ti", "ones", NULL},
            (const char *[]){"i0", "i1", NULL});
    Onnx__NodeProto *c = tb_node(&b, "Concat", "cat", (const char *[]){"a", "i0", NULL},
                                 (const char *[]){"ends", NULL});
    tb_attr_i(&b, c, "axis", 0);
    tb_node(&b, "Slice", "sl", (const char *[]){"X", "st", "ends", "ax", NULL},
            (const char *[]){"Y", NULL});
    tb_node(&b, "Expand", "ex", (const char *[]){"bb", "two", NULL}, (const char *[]){"shp", NULL});
    tb_node(&b, "Reshape", "rs", (const char *[]){"Z", "shp", NULL}, (const char *[]){"W", NULL});
    tb_output(&b, "Y");
    tb_output(&b, "W");
    occ_status s = import_tb(&b, NULL, &im, &e);
    CHECK_MSG(s == OCC_OK, "%s", e.msg);
    if (!s) {
        const occ_model *m = occ_import_model(im);
        const occ_tensor *y = &m->tensors[m->outputs[0]], *w = &m->tensors[m->outputs[1]];
        CHECK_MSG(y->ndim == 2 && y->dims[0] == 5 && y->dims[1] == 1, "Y [%lld, %lld]",
                  (long long)y->dims[0], (long long)y->dims[1]);
        CHECK(w->ndim == 2 && w->dims[0] == 2 && w->dims[1] == 2);
        CHECK(!find_op(m, "TopK") && !find_op(m, "Split") && !find_op(m, "Expand"));
    }
    occ_import_free(im);
    tb_free(&b);
}

int main(void)
{
    RUN(test_conformance_rules);
    RUN(test_rnn_activations);
    RUN(test_einsum_chain);
    RUN(test_concat_empty);
    RUN(test_fold_mod_int);
    RUN(test_fold_topk_split_expand);
    RUN(test_conv_bn_relu);
    RUN(test_bn_alone_stays);
    RUN(test_shape_subgraph);
    RUN(test_identity_dropout);
    RUN(test_operands_to_attrs);
    RUN(test_const_fold_weights);
    RUN(test_shared_weight);
    RUN(test_unknown_op);
    RUN(test_bad_graphs);
    RUN(test_symbolic_input);
    RUN(test_truncated_and_garbage);
    RUN(test_labels_preproc);
    RUN(test_unused_outputs);
    RUN(test_fold_mod);
    RUN(test_dropout_training_ratio0);
    TEST_DONE();
}
