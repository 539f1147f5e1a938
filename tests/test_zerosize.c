/* Zero-size tensors end to end: ONNX models with a 0 dim (an empty graph
 * input, a Slice to nothing, Split's zero-size parts, Reshape with
 * allowzero, Trilu, ConstantOfShape of shape [0]) through the importer, the
 * manifest codec and the engine, next to non-empty outputs that must still
 * be right; an op that does not take empty tensors refusing one with one
 * line; and the manifest's bounds on dims staying strict (negative dims, a
 * product of the nonzero dims past the limit). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "occ/crypto.h"
#include "occ/engine.h"
#include "occ/packer.h"
#include "test.h"
#include "test_pack_run.h"

static void input_t(tb *b, const char *name, int32_t elem, int ndim, const int64_t *dims)
{
    tb_input(b, name, ndim, dims);
    b->graph.input[b->graph.n_input - 1]->type->tensor_type->elem_type = elem;
}

/* Runs the imported model once as the enclave would see it (chunks of 4
 * KiB, manifest encoded and decoded); *mout: the decoded model's output
 * shapes. */
static occ_status run_import(occ_import *im, const void *const *ins, void *const *outs,
                             occ_tensor *mout, occ_error *e)
{
    occ_engine_opts o = {.threads = 1};
    return tb_run_import(im, 4096, &o, ins, outs, NULL, mout, e);
}

static int shape_is(const occ_tensor *t, int ndim, const int64_t *dims)
{
    if (t->ndim != ndim)
        return 0;
    for (int d = 0; d < ndim; d++)
        if (t->dims[d] != dims[d])
            return 0;
    return 1;
}

/* x [2, 3] -> Slice(axis 1, 5..10) = y [2, 0] (empty), and Relu(x) = z next
 * to it; Split(x, axis 1, [0, 3]) = (p [2, 0], q [2, 3] = x). */
static void test_slice_split(void)
{
    tb b;
    occ_import *im = NULL;
    occ_error e;
    tb_init(&b, 13);
    tb_input(&b, "x", 2, (int64_t[]){2, 3});
    tb_const_i64(&b, "st", 1, (int64_t[]){5});
    tb_const_i64(&b, "en", 1, (int64_t[]){10});
    tb_const_i64(&b, "ax", 1, (int64_t[]){1});
    tb_const_i64(&b, "sp", 2, (int64_t[]){0, 3});
    tb_node(&b, "Slice", "sl", (const char *[]){"x", "st", "en", "ax", NULL}, (const char *[]){"y", NULL});
    tb_node(&b, "Relu", "re", (const char *[]){"x", NULL}, (const char *[]){"z", NULL});
    Onnx__NodeProto *n = tb_node(&b, "Split", "spl", (const char *[]){"x", "sp", NULL},
                                 (const char *[]){"p", "q", NULL});
    tb_attr_i(&b, n, "axis", 1);
    tb_output(&b, "y");
    tb_output(&b, "z");
    tb_output(&b, "p");
    tb_output(&b, "q");
    occ_status s = tb_import(&b, NULL, &im, &e);
    CHECK_MSG(s == OCC_OK, "%s", e.msg);
    if (!s) {
        float x[6] = {-1, 2, -3, 4, -5, 6}, z[6], q[6], y[1] = {42}, p[1] = {42};
        const void *ins[1] = {x};
        void *outs[4] = {y, z, p, q};
        occ_tensor mo[4];
        s = run_import(im, ins, outs, mo, &e);
        CHECK_MSG(s == OCC_OK, "%s", e.msg);
        if (!s) {
            CHECK(shape_is(&mo[0], 2, (int64_t[]){2, 0}) && mo[0].size == 0);
            CHECK(shape_is(&mo[2], 2, (int64_t[]){2, 0}) && mo[2].size == 0);
            CHECK(shape_is(&mo[3], 2, (int64_t[]){2, 3}) && !memcmp(q, x, sizeof x));
            float zr[6] = {0, 2, 0, 4, 0, 6};
            CHECK(!memcmp(z, zr, sizeof zr));
            CHECK(y[0] == 42 && p[0] == 42); /* nothing written for an empty output */
        }
    }
    occ_import_free(im);
    tb_free(&b);
}

/* An empty graph input: data [0, 3, 4] -> Reshape(allowzero, [3, 4, 0]);
 * an int64 x [0, 5] -> Trilu; ConstantOfShape([0]) as a graph output. */
static void test_empty_inputs(void)
{
    tb b;
    occ_import *im = NULL;
    occ_error e;
    tb_init(&b, 14);
    tb_input(&b, "data", 3, (int64_t[]){0, 3, 4});
    input_t(&b, "t", ONNX__TENSOR_PROTO__DATA_TYPE__INT64, 2, (int64_t[]){0, 5});
    tb_const_i64(&b, "shape", 3, (int64_t[]){3, 4, 0});
    tb_const_i64(&b, "zero", 1, (int64_t[]){0});
    Onnx__NodeProto *n = tb_node(&b, "Reshape", "rs", (const char *[]){"data", "shape", NULL},
                                 (const char *[]){"r", NULL});
    tb_attr_i(&b, n, "allowzero", 1);
    tb_node(&b, "Trilu", "tr", (const char *[]){"t", NULL}, (const char *[]){"u", NULL});
    tb_node(&b, "ConstantOfShape", "cos", (const char *[]){"zero", NULL}, (const char *[]){"c", NULL});
    tb_output(&b, "r");
    tb_output(&b, "u");
    tb_output(&b, "c");
    occ_status s = tb_import(&b, NULL, &im, &e);
    CHECK_MSG(s == OCC_OK, "%s", e.msg);
    if (!s) {
        const occ_model *m = occ_import_model(im);
        CHECK(m->n_inputs == 2 && m->tensors[m->inputs[0]].size == 0);
        uint8_t none[1];
        const void *ins[2] = {none, none};
        void *outs[3] = {none, none, none};
        occ_tensor mo[3];
        s = run_import(im, ins, outs, mo, &e);
        CHECK_MSG(s == OCC_OK, "%s", e.msg);
        if (!s) {
            CHECK(shape_is(&mo[0], 3, (int64_t[]){3, 4, 0}) && mo[0].size == 0);
            CHECK(shape_is(&mo[1], 2, (int64_t[]){0, 5}) && mo[1].size == 0 &&
                  occ_tensor_dtype(&mo[1]) == OCC_DTYPE_INT64);
            CHECK(shape_is(&mo[2], 1, (int64_t[]){0}) && mo[2].size == 0);
        }
    }
    occ_import_free(im);
    tb_free(&b);

    /* allowzero = 0: a 0 in shape copies the input's dim (0 here), the rest infers */
    tb_init(&b, 14);
    tb_input(&b, "data", 3, (int64_t[]){0, 3, 4});
    tb_const_i64(&b, "shape", 2, (int64_t[]){0, 12});
    tb_node(&b, "Reshape", "rs", (const char *[]){"data", "shape", NULL}, (const char *[]){"r", NULL});
    tb_output(&b, "r");
    s = tb_import(&b, NULL, &im, &e);
    CHECK_MSG(s == OCC_OK, "%s", e.msg);
    if (!s) {
        const occ_model *m = occ_import_model(im);
        CHECK(shape_is(&m->tensors[m->outputs[0]], 2, (int64_t[]){0, 12}));
    }
    occ_import_free(im);
    im = NULL;
    tb_free(&b);

    /* -1 next to a literal 0 (allowzero = 1) has no answer: refused */
    tb_init(&b, 14);
    tb_input(&b, "data", 3, (int64_t[]){0, 3, 4});
    tb_const_i64(&b, "shape", 2, (int64_t[]){0, -1});
    n = tb_node(&b, "Reshape", "rs", (const char *[]){"data", "shape", NULL}, (const char *[]){"r", NULL});
    tb_attr_i(&b, n, "allowzero", 1);
    tb_output(&b, "r");
    s = tb_import(&b, NULL, &im, &e);
    CHECK_MSG(s == OCC_ERR_SHAPE && strstr(e.msg, "-1"), "%d %s", (int)s, e.msg);
    occ_import_free(im);
    tb_free(&b);
}

/* An op without zero-size support refuses an empty input with one line that
 * names the op and the tensor (its kernel never sees it). (Unary ops such as
 * Relu take one since Emformer needed it: test_unary_empty.) */
static void test_refused(void)
{
    const char *ops[] = {"GlobalAveragePool", "Softmax", "Conv"};
    for (int k = 0; k < 3; k++) {
        tb b;
        occ_import *im = NULL;
        occ_error e;
        tb_init(&b, 13);
        tb_input(&b, "x", 4, (int64_t[]){1, 0, 4, 4});
        if (k == 2) {
            float w[4] = {1, 1, 1, 1};
            tb_init_f(&b, "w", 4, (int64_t[]){1, 0, 2, 2}, w);
            tb_node(&b, ops[k], "op", (const char *[]){"x", "w", NULL}, (const char *[]){"y", NULL});
        } else {
            tb_node(&b, ops[k], "op", (const char *[]){"x", NULL}, (const char *[]){"y", NULL});
        }
        tb_output(&b, "y");
        occ_status s = tb_import(&b, NULL, &im, &e);
        CHECK_MSG(s != OCC_OK && strstr(e.msg, "empty") && strstr(e.msg, ops[k]) &&
                      strstr(e.msg, "'x'") && !strchr(e.msg, '\n'),
                  "%s: %d %s", ops[k], (int)s, e.msg);
        occ_import_free(im);
        tb_free(&b);
    }
}

/* Unary elementwise ops take an empty tensor: the output is empty of the
 * same shape and the node never runs (Emformer clips an empty memory). */
static void test_unary_empty(void)
{
    const char *ops[] = {"Relu", "Clip", "Tanh"};
    for (int k = 0; k < 3; k++) {
        tb b;
        occ_import *im = NULL;
        occ_error e;
        tb_init(&b, 13);
        tb_input(&b, "x", 4, (int64_t[]){1, 0, 4, 4});
        tb_node(&b, ops[k], "op", (const char *[]){"x", NULL}, (const char *[]){"y", NULL});
        tb_output(&b, "y");
        occ_status s = tb_import(&b, NULL, &im, &e);
        CHECK_MSG(s == OCC_OK, "%s: %s", ops[k], e.msg);
        if (!s) {
            const occ_model *m = occ_import_model(im);
            const occ_tensor *y = &m->tensors[m->outputs[0]];
            CHECK(y->ndim == 4 && y->dims[1] == 0 && y->dims[3] == 4 && y->size == 0);
        }
        occ_import_free(im);
        tb_free(&b);
    }
}

/* The manifest takes a 0 dim but keeps every bound: a negative dim, a dim
 * past 2^40, nonzero dims whose product passes 2^40 next to a 0, a size that
 * does not match. */
static void test_manifest_bounds(void)
{
    tb b;
    occ_import *im = NULL;
    occ_error e;
    tb_init(&b, 13);
    tb_input(&b, "x", 2, (int64_t[]){2, 3});
    tb_const_i64(&b, "st", 1, (int64_t[]){5});
    tb_const_i64(&b, "en", 1, (int64_t[]){10});
    tb_const_i64(&b, "ax", 1, (int64_t[]){1});
    tb_node(&b, "Slice", "sl", (const char *[]){"x", "st", "en", "ax", NULL}, (const char *[]){"y", NULL});
    tb_output(&b, "y");
    occ_status s = tb_import(&b, NULL, &im, &e);
    CHECK_MSG(s == OCC_OK, "%s", e.msg);
    if (!s) {
        occ_model *m = occ_import_model(im);
        occ_tensor *y = &m->tensors[m->outputs[0]], keep = *y;
        struct {
            int ndim;
            int64_t d[3];
            uint64_t size;
            int ok;
        } cases[] = {
            {2, {2, 0}, 0, 1},
            {3, {0, 1, 2}, 0, 1},
            {2, {-1, 0}, 0, 0},
            {2, {0, (INT64_C(1) << 40) + 1}, 0, 0},
            {3, {0, INT64_C(1) << 21, INT64_C(1) << 21}, 0, 0},
            {2, {2, 0}, 4, 0},
        };
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            y->ndim = cases[c].ndim;
            memset(y->dims, 0, sizeof y->dims);
            memcpy(y->dims, cases[c].d, sizeof cases[c].d);
            y->size = cases[c].size;
            uint8_t *man = NULL;
            size_t man_size = 0;
            occ_model *d = NULL;
            occ_error e2 = {0};
            s = occ_manifest_encode(m, &man, &man_size, &e2);
            if (!s)
                s = occ_manifest_decode(man, man_size, &d, &e2);
            CHECK_MSG(cases[c].ok ? s == OCC_OK : s != OCC_OK, "case %zu: %d %s", c, (int)s, e2.msg);
            occ_model_free(d);
            free(man);
        }
        *y = keep;
    }
    occ_import_free(im);
    tb_free(&b);
}

int main(void)
{
    RUN(test_slice_split);
    RUN(test_empty_inputs);
    RUN(test_refused);
    RUN(test_unary_empty);
    RUN(test_manifest_bounds);
    TEST_DONE();
}
