/* The importer with typed tensors: several typed graph inputs and outputs
 * end to end through the engine, integer constants kept typed, --bind
 * folding a graph input, refusal of unbound inputs that steer shapes, and
 * If inlining. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "occ/crypto.h"
#include "occ/engine.h"
#include "occ/packer.h"
#include "test.h"
#include "test_pack_run.h"

static void tb_input_t(tb *b, const char *name, int32_t elem, int ndim, const int64_t *dims)
{
    tb_input(b, name, ndim, dims);
    b->graph.input[b->graph.n_input - 1]->type->tensor_type->elem_type = elem;
}

/* Lays out, encodes and decodes (the trusted decoder sees the dtypes), and
 * runs the decoded model once. */
static occ_status run_import(occ_import *im, const void *const *ins, void *const *outs, occ_error *e)
{
    uint8_t *data = NULL, *man = NULL;
    size_t man_size = 0;
    occ_model *m = NULL;
    occ_engine *eng = NULL;
    occ_status s = occ_import_layout(im, 4096, &data, e);
    occ_model *im_m = occ_import_model(im);
    for (uint32_t k = 0; !s && k < im_m->n_chunks; k++) /* as occ_pack_write does */
        if (occ_sha256(data + im_m->chunks[k].offset, (size_t)im_m->chunks[k].size,
                       im_m->chunks[k].sha256))
            s = occ_fail(e, OCC_ERR_INTERNAL, "sha256");
    if (!s)
        s = occ_manifest_encode(occ_import_model(im), &man, &man_size, e);
    if (!s)
        s = occ_manifest_decode(man, man_size, &m, e);
    tb_mem r = {data, m ? m->data_size : 0};
    occ_engine_opts o = {.threads = 1};
    if (!s)
        s = occ_engine_create(m, &o, tb_mem_read, &r, &eng, e);
    if (!s)
        s = occ_engine_run(eng, ins, outs, e);
    occ_engine_free(eng);
    occ_model_free(m);
    free(man);
    free(data);
    return s;
}

static const occ_tensor *tensor_named(const occ_model *m, const char *name)
{
    for (uint32_t k = 0; k < m->n_tensors; k++)
        if (!strcmp(m->tensors[k].name, name))
            return &m->tensors[k];
    return NULL;
}

static int has_op(const occ_model *m, const char *op)
{
    for (uint32_t k = 0; k < m->n_nodes; k++)
        if (!strcmp(m->nodes[k].op, op))
            return 1;
    return 0;
}

static void test_typed_inputs_outputs(void)
{
    tb b;
    tb_init(&b, 13);
    tb_input(&b, "x", 2, (int64_t[]){3, 2});
    tb_input_t(&b, "ids", ONNX__TENSOR_PROTO__DATA_TYPE__INT64, 1, (int64_t[]){2});
    tb_input_t(&b, "mask", ONNX__TENSOR_PROTO__DATA_TYPE__BOOL, 1, (int64_t[]){2});
    /* an int32 initializer: it must stay an int32 weight */
    const int32_t one[1] = {1};
    Onnx__TensorProto *t = tb_tensor(&b, "one", ONNX__TENSOR_PROTO__DATA_TYPE__INT32, 1,
                                     (int64_t[]){1}, one, 4);
    TB_PUSH(&b, b.graph.initializer, b.graph.n_initializer, t);
    tb_init_f(&b, "zero", 0, NULL, (float[]){0});
    tb_const_i64(&b, "two", 1, (int64_t[]){2});
    tb_node(&b, "Gather", "g", (const char *[]){"x", "ids", NULL}, (const char *[]){"rows", NULL});
    tb_node(&b, "Where", "w", (const char *[]){"mask", "rows", "zero", NULL}, (const char *[]){"picked", NULL});
    tb_node(&b, "Equal", "eq", (const char *[]){"ids", "two", NULL}, (const char *[]){"is two", NULL});
    tb_node(&b, "Gather", "g2", (const char *[]){"ids", "one", NULL}, (const char *[]){"second", NULL});
    tb_output(&b, "picked");
    tb_output(&b, "is two");
    tb_output(&b, "second");
    occ_import *im = NULL;
    occ_error e;
    occ_status s = tb_import(&b, NULL, &im, &e);
    CHECK_MSG(s == OCC_OK, "%s", e.msg);
    if (!s) {
        const occ_model *m = occ_import_model(im);
        CHECK(m->n_inputs == 3 && m->n_outputs == 3);
        CHECK(occ_tensor_dtype(&m->tensors[m->inputs[1]]) == OCC_DTYPE_INT64 &&
              m->tensors[m->inputs[1]].size == 16);
        CHECK(occ_tensor_dtype(&m->tensors[m->inputs[2]]) == OCC_DTYPE_BOOL &&
              m->tensors[m->inputs[2]].size == 2);
        CHECK(occ_tensor_dtype(&m->tensors[m->outputs[1]]) == OCC_DTYPE_BOOL);
        CHECK(occ_tensor_dtype(&m->tensors[m->outputs[2]]) == OCC_DTYPE_INT64);
        const occ_tensor *w = tensor_named(m, "one");
        CHECK(w && w->kind == OCC_TENSOR_WEIGHT && occ_tensor_dtype(w) == OCC_DTYPE_INT32 && w->size == 4);
        const occ_tensor *two = tensor_named(m, "two");
        CHECK(two && occ_tensor_dtype(two) == OCC_DTYPE_INT64 && two->size == 8);

        const float x[6] = {1, 2, 3, 4, 5, 6};
        const int64_t ids[2] = {2, -3};
        const uint8_t mask[2] = {0, 1};
        float picked[4] = {0};
        uint8_t is_two[2] = {9, 9};
        int64_t second = 0;
        const void *ins[3] = {x, ids, mask};
        void *outs[3] = {picked, is_two, &second};
        s = run_import(im, ins, outs, &e);
        CHECK_MSG(s == OCC_OK, "%s", e.msg);
        CHECK(picked[0] == 0 && picked[1] == 6 && picked[2] == 0 && picked[3] == 2);
        CHECK(is_two[0] == 1 && is_two[1] == 0);
        CHECK(second == -3);
    }
    occ_import_free(im);
    tb_free(&b);

    /* a complex input is refused with one line naming it; a float16 one is
     * taken, and an operator without float16 refuses it naming the node */
    const int32_t types[2] = {ONNX__TENSOR_PROTO__DATA_TYPE__COMPLEX64, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16};
    const char *why[2] = {"graph input 'h' has element type 14",
                          "node 'r' (Relu): input 0 ('h') is float16, which Relu does not take (float32 and "
                          "float64 only)"};
    for (int k = 0; k < 2; k++) {
        tb_init(&b, 13);
        tb_input_t(&b, "h", types[k], 1, (int64_t[]){2});
        tb_node(&b, "Relu", "r", (const char *[]){"h", NULL}, (const char *[]){"y", NULL});
        tb_output(&b, "y");
        CHECK(tb_import(&b, NULL, &im, &e) == OCC_ERR_UNSUPPORTED);
        CHECK_MSG(strstr(e.msg, why[k]) != NULL, "%s", e.msg);
        occ_import_free(im);
        im = NULL;
        tb_free(&b);
    }
}

/* x [2,3] reshaped by a graph input 'shape' (through an Add when via_add). */
static void build_reshape(tb *b, int via_add)
{
    tb_init(b, 13);
    tb_input(b, "x", 2, (int64_t[]){2, 3});
    tb_input_t(b, "shape", ONNX__TENSOR_PROTO__DATA_TYPE__INT64, 1, (int64_t[]){2});
    if (via_add) {
        tb_const_i64(b, "zeros", 2, (int64_t[]){0, 0});
        tb_node(b, "Add", "plus", (const char *[]){"shape", "zeros", NULL}, (const char *[]){"s2", NULL});
    }
    tb_node(b, "Reshape", "rs", (const char *[]){"x", via_add ? "s2" : "shape", NULL},
            (const char *[]){"y", NULL});
    tb_output(b, "y");
}

static void test_bind(void)
{
    tb b;
    occ_import *im = NULL;
    occ_error e;
    for (int via = 0; via < 2; via++) {
        build_reshape(&b, via);
        CHECK(tb_import(&b, NULL, &im, &e) == OCC_ERR_UNSUPPORTED);
        CHECK_MSG(strstr(e.msg, "node 'rs' (Reshape)") && strstr(e.msg, "graph input 'shape'") &&
                      strstr(e.msg, "--bind shape=FILE"),
                  "%s", e.msg);
        occ_import_free(im);
        im = NULL;
        const int64_t shape[2] = {3, 2};
        occ_input_bind bd = {"shape", shape, sizeof shape};
        occ_pack_options o = {.n_binds = 1, .binds = &bd};
        occ_status s = tb_import(&b, &o, &im, &e);
        CHECK_MSG(s == OCC_OK, "%s", e.msg);
        if (!s) {
            const occ_model *m = occ_import_model(im);
            CHECK(m->n_inputs == 1 && !strcmp(m->tensors[m->inputs[0]].name, "x"));
            const occ_tensor *y = &m->tensors[m->outputs[0]];
            CHECK(y->ndim == 2 && y->dims[0] == 3 && y->dims[1] == 2);
            CHECK(!has_op(m, "Add")); /* folded with the bound value */
            float x[6] = {1, 2, 3, 4, 5, 6}, out[6] = {0};
            const void *ins[1] = {x};
            void *outs[1] = {out};
            CHECK(run_import(im, ins, outs, &e) == OCC_OK && !memcmp(x, out, sizeof x));
        }
        occ_import_free(im);
        im = NULL;
        /* wrong size, unknown name */
        bd.size = 8;
        CHECK(tb_import(&b, &o, &im, &e) == OCC_ERR_INVALID);
        CHECK_MSG(strstr(e.msg, "--bind shape: 8 bytes given") && strstr(e.msg, "int64") &&
                      strstr(e.msg, "needs 16"),
                  "%s", e.msg);
        occ_import_free(im);
        im = NULL;
        bd = (occ_input_bind){"nope", shape, sizeof shape};
        CHECK(tb_import(&b, &o, &im, &e) == OCC_ERR_INVALID);
        CHECK_MSG(strstr(e.msg, "--bind names 'nope', which is not a graph input") != NULL, "%s", e.msg);
        occ_import_free(im);
        im = NULL;
        tb_free(&b);
    }
}

/* A bound input of zero elements (ReduceSum's empty axes) is a legitimate
 * constant; an unbound empty input is refused (runtime tensors are never empty). */
static void test_bind_empty(void)
{
    for (int noop = 0; noop < 2; noop++) {
        tb b;
        occ_import *im = NULL;
        occ_error e;
        tb_init(&b, 13);
        tb_input(&b, "x", 2, (int64_t[]){2, 3});
        tb_input_t(&b, "axes", ONNX__TENSOR_PROTO__DATA_TYPE__INT64, 1, (int64_t[]){0});
        Onnx__NodeProto *n = tb_node(&b, "ReduceSum", "rs", (const char *[]){"x", "axes", NULL},
                                     (const char *[]){"y", NULL});
        tb_attr_i(&b, n, "keepdims", 1);
        tb_attr_i(&b, n, "noop_with_empty_axes", noop);
        tb_output(&b, "y");
        /* an empty graph input is legal (zero-size tensors), but one that
         * steers a shape still has to be bound: refused, naming it */
        CHECK(tb_import(&b, NULL, &im, &e) == OCC_ERR_UNSUPPORTED);
        CHECK_MSG(strstr(e.msg, "graph input 'axes'") && strstr(e.msg, "--bind axes=FILE"),
                  "%s", e.msg);
        occ_import_free(im);
        im = NULL;
        occ_input_bind bd = {"axes", NULL, 0};
        occ_pack_options o = {.n_binds = 1, .binds = &bd};
        occ_status s = tb_import(&b, &o, &im, &e);
        CHECK_MSG(s == OCC_OK, "%s", e.msg);
        if (!s) {
            const occ_model *m = occ_import_model(im);
            CHECK(m->n_inputs == 1 && !strcmp(m->tensors[m->inputs[0]].name, "x"));
            const occ_tensor *y = &m->tensors[m->outputs[0]];
            CHECK(y->ndim == 2 && y->dims[0] == (noop ? 2 : 1) && y->dims[1] == (noop ? 3 : 1));
            float x[6] = {1, 2, 3, 4, 5, 6}, out[6] = {0};
            const void *ins[1] = {x};
            void *outs[1] = {out};
            CHECK_MSG(run_import(im, ins, outs, &e) == OCC_OK, "%s", e.msg);
            if (noop)
                CHECK(!memcmp(x, out, sizeof x));
            else
                CHECK(out[0] == 21.0f);
        }
        occ_import_free(im);
        tb_free(&b);
    }
}

/* If on `cond` with then = Relu(x), else = Sigmoid(x). */
static void add_if(tb *b, const char *cond)
{
    Onnx__GraphProto outer = b->graph;
    Onnx__GraphProto *br[2];
    const char *ops[2] = {"Relu", "Sigmoid"}, *outs[2] = {"t_out", "e_out"};
    for (int k = 0; k < 2; k++) {
        Onnx__GraphProto g0 = ONNX__GRAPH_PROTO__INIT;
        b->graph = g0;
        b->graph.name = k ? "else" : "then";
        tb_node(b, ops[k], ops[k], (const char *[]){"x", NULL}, (const char *[]){outs[k], NULL});
        tb_output(b, outs[k]);
        br[k] = tb_alloc(b, sizeof *br[k]);
        *br[k] = b->graph;
    }
    b->graph = outer;
    Onnx__NodeProto *n = tb_node(b, "If", "if", (const char *[]){cond, NULL}, (const char *[]){"y", NULL});
    Onnx__AttributeProto *a = tb_attr(b, n, "then_branch", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH);
    a->g = br[0];
    a = tb_attr(b, n, "else_branch", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH);
    a->g = br[1];
    tb_output(b, "y");
}

static void test_if(void)
{
    tb b;
    occ_import *im = NULL;
    occ_error e;
    for (int taken = 0; taken < 2; taken++) {
        tb_init(&b, 13);
        tb_input(&b, "x", 1, (int64_t[]){4});
        const uint8_t c = (uint8_t)taken;
        Onnx__TensorProto *t = tb_tensor(&b, "c", ONNX__TENSOR_PROTO__DATA_TYPE__BOOL, 0, NULL, &c, 1);
        TB_PUSH(&b, b.graph.initializer, b.graph.n_initializer, t);
        add_if(&b, "c");
        occ_status s = tb_import(&b, NULL, &im, &e);
        CHECK_MSG(s == OCC_OK, "%s", e.msg);
        if (!s) {
            const occ_model *m = occ_import_model(im);
            CHECK(m->n_nodes == 1 && has_op(m, taken ? "Relu" : "Sigmoid"));
            CHECK(!strcmp(m->tensors[m->outputs[0]].name, "y"));
        }
        occ_import_free(im);
        im = NULL;
        tb_free(&b);
    }
    /* a condition derived from shapes: Shape(x)[0] == 4 */
    tb_init(&b, 13);
    tb_input(&b, "x", 1, (int64_t[]){4});
    tb_node(&b, "Shape", "sh", (const char *[]){"x", NULL}, (const char *[]){"s", NULL});
    tb_const_i64(&b, "four", 1, (int64_t[]){4});
    tb_node(&b, "Equal", "is4", (const char *[]){"s", "four", NULL}, (const char *[]){"c1", NULL});
    tb_const_i64(&b, "rs", 0, NULL);
    tb_node(&b, "Reshape", "scalar", (const char *[]){"c1", "rs", NULL}, (const char *[]){"c", NULL});
    add_if(&b, "c");
    occ_status s = tb_import(&b, NULL, &im, &e);
    CHECK_MSG(s == OCC_OK, "%s", e.msg);
    if (!s)
        CHECK(occ_import_model(im)->n_nodes == 1 && has_op(occ_import_model(im), "Relu"));
    occ_import_free(im);
    im = NULL;
    tb_free(&b);
    /* a run-time condition: refused, naming the node and the input */
    tb_init(&b, 13);
    tb_input(&b, "x", 1, (int64_t[]){4});
    tb_input_t(&b, "flag", ONNX__TENSOR_PROTO__DATA_TYPE__BOOL, 0, NULL);
    add_if(&b, "flag");
    CHECK(tb_import(&b, NULL, &im, &e) == OCC_ERR_UNSUPPORTED);
    CHECK_MSG(strstr(e.msg, "node 'if' (If)") && strstr(e.msg, "graph input 'flag'") &&
                  strstr(e.msg, "--bind flag=FILE"),
              "%s", e.msg);
    occ_import_free(im);
    im = NULL;
    tb_free(&b);
    /* Loop and data-dependent shapes: refused saying why */
    const char *ops[2] = {"Loop", "NonZero"};
    const char *why[2] = {"node 'dyn' (Loop): control flow decided at run time is not supported",
                          "node 'dyn' (NonZero): its output shape depends on the data"};
    for (int k = 0; k < 2; k++) {
        tb_init(&b, 13);
        tb_input(&b, "x", 1, (int64_t[]){4});
        tb_node(&b, ops[k], "dyn", (const char *[]){"x", NULL}, (const char *[]){"y", NULL});
        tb_output(&b, "y");
        CHECK(tb_import(&b, NULL, &im, &e) == OCC_ERR_UNSUPPORTED);
        CHECK_MSG(strstr(e.msg, why[k]) != NULL, "%s", e.msg);
        occ_import_free(im);
        im = NULL;
        tb_free(&b);
    }
}

/* A node of constants the folder cannot evaluate (Not) runs from its
 * weights at run time instead of being refused. */
static void test_constant_node_at_run_time(void)
{
    tb b;
    occ_import *im = NULL;
    occ_error e;
    tb_init(&b, 13);
    tb_input(&b, "x", 1, (int64_t[]){3});
    const uint8_t m[3] = {1, 0, 1};
    Onnx__TensorProto *t = tb_tensor(&b, "m", ONNX__TENSOR_PROTO__DATA_TYPE__BOOL, 1, (int64_t[]){3}, m, 3);
    TB_PUSH(&b, b.graph.initializer, b.graph.n_initializer, t);
    tb_init_f(&b, "z", 0, NULL, (float[]){0});
    tb_node(&b, "Not", "not", (const char *[]){"m", NULL}, (const char *[]){"c", NULL});
    tb_node(&b, "Where", "w", (const char *[]){"c", "x", "z", NULL}, (const char *[]){"y", NULL});
    tb_output(&b, "y");
    occ_status s = tb_import(&b, NULL, &im, &e);
    CHECK_MSG(s == OCC_OK, "%s", e.msg);
    if (!s) {
        CHECK(has_op(occ_import_model(im), "Not"));
        const float x[3] = {1, 2, 3};
        float y[3] = {9, 9, 9};
        const void *ins[1] = {x};
        void *outs[1] = {y};
        CHECK_MSG(run_import(im, ins, outs, &e) == OCC_OK, "%s", e.msg);
        CHECK(y[0] == 0 && y[1] == 2 && y[2] == 0);
    }
    occ_import_free(im);
    tb_free(&b);
}

/* Constants of the issue-12 types: int16 + int16 folds at pack time into a
 * typed int16 weight (wrapping); float64 constants are not folded through
 * float (the Add runs in double from exact weights); a uint64 initializer
 * beyond int64 stays its bits. */
static void test_new_type_constants(void)
{
    tb b;
    occ_import *im = NULL;
    occ_error e;
    tb_init(&b, 13);
    tb_input_t(&b, "x", ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE, 1, (int64_t[]){2});
    tb_input_t(&b, "u", ONNX__TENSOR_PROTO__DATA_TYPE__UINT64, 1, (int64_t[]){2});
    tb_input_t(&b, "s", ONNX__TENSOR_PROTO__DATA_TYPE__INT16, 1, (int64_t[]){2});
    const double third[2] = {1.0 / 3.0, 1e-17}, one[2] = {1.0, 1.0};
    const int16_t i16[2] = {32767, -2};
    const uint64_t big[2] = {UINT64_MAX, 3};
    const struct { const char *name; int32_t dt; const void *v; size_t size; } c[] = {
        {"third", ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE, third, 16},
        {"one", ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE, one, 16},
        {"i16", ONNX__TENSOR_PROTO__DATA_TYPE__INT16, i16, 4},
        {"big", ONNX__TENSOR_PROTO__DATA_TYPE__UINT64, big, 16},
    };
    for (size_t k = 0; k < sizeof c / sizeof c[0]; k++) {
        Onnx__TensorProto *t = tb_tensor(&b, c[k].name, c[k].dt, 1, (int64_t[]){2}, c[k].v, c[k].size);
        TB_PUSH(&b, b.graph.initializer, b.graph.n_initializer, t);
    }
    tb_node(&b, "Add", "cc", (const char *[]){"third", "one", NULL}, (const char *[]){"t1", NULL});
    tb_node(&b, "Add", "xd", (const char *[]){"x", "t1", NULL}, (const char *[]){"y", NULL});
    tb_node(&b, "Add", "ii", (const char *[]){"i16", "i16", NULL}, (const char *[]){"i2", NULL});
    tb_node(&b, "Add", "si", (const char *[]){"s", "i2", NULL}, (const char *[]){"p", NULL});
    tb_node(&b, "Min", "um", (const char *[]){"u", "big", NULL}, (const char *[]){"m", NULL});
    tb_output(&b, "y");
    tb_output(&b, "p");
    tb_output(&b, "m");
    occ_status s = tb_import(&b, NULL, &im, &e);
    CHECK_MSG(s == OCC_OK, "%s", e.msg);
    if (!s) {
        const occ_model *m = occ_import_model(im);
        const occ_tensor *i2 = tensor_named(m, "i2"), *third_w = tensor_named(m, "third");
        CHECK_MSG(i2 && i2->kind == OCC_TENSOR_WEIGHT && occ_tensor_dtype(i2) == OCC_DTYPE_INT16 &&
                      i2->size == 4,
                  "int16 Add of constants folds into an int16 weight");
        CHECK_MSG(third_w && occ_tensor_dtype(third_w) == OCC_DTYPE_DOUBLE && third_w->size == 16,
                  "float64 constant Add is not folded: its operand stays a float64 weight");
        CHECK(occ_tensor_dtype(&m->tensors[m->outputs[0]]) == OCC_DTYPE_DOUBLE &&
              occ_tensor_dtype(&m->tensors[m->outputs[1]]) == OCC_DTYPE_INT16 &&
              occ_tensor_dtype(&m->tensors[m->outputs[2]]) == OCC_DTYPE_UINT64);
        const double x[2] = {0.0, 0.0};
        const uint64_t u[2] = {1ULL << 63, 7};
        const int16_t si[2] = {1, 1};
        double y[2] = {0};
        int16_t pp[2] = {0};
        uint64_t mm[2] = {0};
        const void *ins[3] = {x, u, si};
        void *outs[3] = {y, pp, mm};
        CHECK_MSG(run_import(im, ins, outs, &e) == OCC_OK, "%s", e.msg);
        CHECK_MSG(y[0] == 1.0 / 3.0 + 1.0 && y[1] == 1e-17 + 1.0, "float64 in double: %.17g %.17g", y[0], y[1]);
        CHECK_MSG(pp[0] == (int16_t)(1 + (int16_t)(32767 + 32767)) && pp[1] == -3, "int16 wraps: %d %d", pp[0],
                  pp[1]);
        CHECK(mm[0] == 1ULL << 63 && mm[1] == 3);
    }
    occ_import_free(im);
    tb_free(&b);
}

/* Graph outputs that are a folded constant (Shape), a graph input, or the
 * same tensor twice each get their own tensor (an Identity copy). */
static void test_materialized_outputs(void)
{
    tb b;
    occ_import *im = NULL;
    occ_error e;
    tb_init(&b, 13);
    tb_input(&b, "x", 2, (int64_t[]){2, 3});
    tb_node(&b, "Shape", "sh", (const char *[]){"x", NULL}, (const char *[]){"dims", NULL});
    tb_node(&b, "Identity", "id", (const char *[]){"x", NULL}, (const char *[]){"same", NULL});
    tb_node(&b, "Relu", "r", (const char *[]){"x", NULL}, (const char *[]){"y", NULL});
    tb_node(&b, "Identity", "id2", (const char *[]){"y", NULL}, (const char *[]){"y2", NULL});
    tb_output(&b, "dims");
    tb_output(&b, "same");
    tb_output(&b, "y");
    tb_output(&b, "y2");
    occ_status s = tb_import(&b, NULL, &im, &e);
    CHECK_MSG(s == OCC_OK, "%s", e.msg);
    if (!s) {
        const occ_model *m = occ_import_model(im);
        CHECK(m->n_inputs == 1 && !strcmp(m->tensors[m->inputs[0]].name, "x"));
        const char *names[4] = {"dims", "same", "y", "y2"};
        for (int k = 0; k < 4; k++)
            CHECK_MSG(m->n_outputs == 4 && !strcmp(m->tensors[m->outputs[k]].name, names[k]),
                      "output %d", k);
        CHECK(occ_tensor_dtype(&m->tensors[m->outputs[0]]) == OCC_DTYPE_INT64);
        const float x[6] = {1, -2, 3, -4, 5, -6};
        int64_t dims[2] = {0};
        float same[6], y[6], y2[6];
        const void *ins[1] = {x};
        void *outs[4] = {dims, same, y, y2};
        CHECK_MSG(run_import(im, ins, outs, &e) == OCC_OK, "%s", e.msg);
        CHECK(dims[0] == 2 && dims[1] == 3);
        CHECK(!memcmp(same, x, sizeof x));
        CHECK(y[1] == 0 && y[2] == 3 && !memcmp(y, y2, sizeof y));
    }
    occ_import_free(im);
    tb_free(&b);
    /* every input bound: a model without run-time inputs */
    build_reshape(&b, 0);
    const float xv[6] = {1, 2, 3, 4, 5, 6};
    const int64_t shape[2] = {3, 2};
    occ_input_bind bd[2] = {{"x", xv, sizeof xv}, {"shape", shape, sizeof shape}};
    occ_pack_options o = {.n_binds = 2, .binds = bd};
    s = tb_import(&b, &o, &im, &e);
    CHECK_MSG(s == OCC_OK, "%s", e.msg);
    if (!s) {
        const occ_model *m = occ_import_model(im);
        CHECK(m->n_inputs == 0 && m->n_outputs == 1);
        float out[6] = {0};
        void *outs[1] = {out};
        CHECK_MSG(run_import(im, NULL, outs, &e) == OCC_OK, "%s", e.msg);
        CHECK(!memcmp(out, xv, sizeof xv));
    }
    occ_import_free(im);
    tb_free(&b);
}

int main(void)
{
    RUN(test_materialized_outputs);
    RUN(test_constant_node_at_run_time);
    RUN(test_new_type_constants);
    RUN(test_typed_inputs_outputs);
    RUN(test_bind);
    RUN(test_bind_empty);
    RUN(test_if);
    TEST_DONE();
}
