/* Engine create on untrusted models: altered weight bytes, declared shapes
 * that differ from inference, weights outside the data section or not covered
 * by a chunk, read failures, bad graph order. Each gives its status and a
 * message; none crashes. */
#include "test_ops_util.h"

/* x[1,4,6,6] -> Conv(8, 3x3, pad 1) + bias -> Relu -> y */
static void build(tb *b, float **w, float **bias)
{
    tb_init(b);
    int64_t xd[4] = {1, 4, 6, 6}, wd[4] = {8, 4, 3, 3}, bd[1] = {8};
    *w = rand_buf(8 * 4 * 9);
    *bias = rand_buf(8);
    int x = tb_input(b, "x", 4, xd);
    int tw = tb_weight(b, "w", 4, wd, *w), tbias = tb_weight(b, "b", 1, bd, *bias);
    int c = tb_act(b, "c"), y = tb_act(b, "y");
    static int64_t pads[4] = {1, 1, 1, 1};
    occ_attr a[1] = {A_INTS("pads", pads, 4)};
    int in[3] = {x, tw, tbias};
    occ_node *n = tb_node(b, "Conv", 3, in, c, 1, a);
    n->name = "conv1";
    int in2[1] = {c};
    tb_node(b, "Relu", 1, in2, y, 0, NULL);
    tb_output(b, y);
    occ_error e;
    occ_status st = tb_finish(b, &e);
    CHECK_MSG(st == OCC_OK, "finish: %s", e.msg);
}

static occ_status create(tb *b, occ_error *e)
{
    occ_engine *eng = NULL;
    occ_engine_opts o = {.threads = 1};
    memset(e, 0, sizeof *e);
    occ_status st = occ_engine_create(&b->m, &o, tb_read, b, &eng, e);
    CHECK(st == OCC_OK ? eng != NULL : eng == NULL);
    occ_engine_free(eng);
    return st;
}

static void test_ok_then_tamper(void)
{
    tb b;
    float *w, *bias;
    occ_error e;
    build(&b, &w, &bias);
    CHECK(create(&b, &e) == OCC_OK);
    /* one flipped bit in the weights */
    b.data[b.t[1].data_offset + 17] ^= 0x01;
    CHECK(create(&b, &e) == OCC_ERR_INTEGRITY);
    CHECK_MSG(strstr(e.msg, "weight chunk 0 failed verification") != NULL, "msg: %s", e.msg);
    CHECK_MSG(strstr(e.msg, "conv1") != NULL, "msg lacks node name: %s", e.msg);
    b.data[b.t[1].data_offset + 17] ^= 0x01;
    /* a flipped byte of the recorded hash */
    b.chunks[0].sha256[5] ^= 0x80;
    CHECK(create(&b, &e) == OCC_ERR_INTEGRITY);
    b.chunks[0].sha256[5] ^= 0x80;
    /* padding bytes of the chunk are covered too */
    b.data[b.chunks[0].size - 1] ^= 0xff;
    CHECK(create(&b, &e) == OCC_ERR_INTEGRITY);
    b.data[b.chunks[0].size - 1] ^= 0xff;
    CHECK(create(&b, &e) == OCC_OK);
    free(w), free(bias);
    tb_free(&b);
}

static void test_coverage(void)
{
    tb b;
    float *w, *bias;
    occ_error e;
    build(&b, &w, &bias);
    /* no chunk at all: the weights are unverified */
    b.m.n_chunks = 0;
    CHECK(create(&b, &e) == OCC_ERR_INTEGRITY);
    b.m.n_chunks = 1;
    /* chunk shorter than the weights */
    uint64_t sz = b.chunks[0].size;
    b.chunks[0].size = 64;
    CHECK(create(&b, &e) == OCC_ERR_INTEGRITY);
    b.chunks[0].size = sz;
    /* chunk beyond the data section */
    b.chunks[0].size = b.m.data_size + 4096;
    CHECK(create(&b, &e) == OCC_ERR_FORMAT);
    b.chunks[0].size = sz;
    /* weight outside the data section, and an overflowing offset */
    b.t[1].data_offset = b.m.data_size - 4;
    CHECK(create(&b, &e) == OCC_ERR_FORMAT);
    b.t[1].data_offset = UINT64_MAX - 3;
    CHECK(create(&b, &e) == OCC_ERR_FORMAT);
    b.t[1].data_offset = 2; /* misaligned */
    CHECK(create(&b, &e) == OCC_ERR_FORMAT);
    b.t[1].data_offset = 0;
    CHECK(create(&b, &e) == OCC_OK);
    free(w), free(bias);
    tb_free(&b);
}

static void test_shapes(void)
{
    tb b;
    float *w, *bias;
    occ_error e;
    build(&b, &w, &bias);
    /* declared output shape differs from inference */
    occ_tensor *c = &b.t[3];
    c->dims[2] = 5;
    c->size = 4u * 8 * 5 * 6;
    CHECK(create(&b, &e) == OCC_ERR_SHAPE);
    CHECK_MSG(strstr(e.msg, "declared") && strstr(e.msg, "inferred"), "msg: %s", e.msg);
    c->dims[2] = 6;
    c->size = 4u * 8 * 6 * 6;
    /* weight size not matching its dims */
    b.t[1].size -= 4;
    CHECK(create(&b, &e) == OCC_ERR_SHAPE);
    b.t[1].size += 4;
    /* absurd input dims */
    b.t[0].dims[3] = INT64_C(1) << 62;
    CHECK(create(&b, &e) == OCC_ERR_SHAPE);
    b.t[0].dims[3] = 6;
    /* bad attribute value through the engine: prefixed with node name */
    b.attrs[0][0] = A_STR("auto_pad", "DIAGONAL");
    CHECK(create(&b, &e) == OCC_ERR_UNSUPPORTED);
    CHECK_MSG(strstr(e.msg, "conv1 (Conv)") && strstr(e.msg, "DIAGONAL"), "msg: %s", e.msg);
    static int64_t pads[4] = {1, 1, 1, 1};
    b.attrs[0][0] = A_INTS("pads", pads, 4);
    CHECK(create(&b, &e) == OCC_OK);
    free(w), free(bias);
    tb_free(&b);
}

static void test_graph(void)
{
    tb b;
    float *w, *bias;
    occ_error e;
    build(&b, &w, &bias);
    /* nodes out of order: Relu reads c before the Conv made it */
    occ_node tmp = b.n[0];
    b.n[0] = b.n[1];
    b.n[1] = tmp;
    CHECK(create(&b, &e) == OCC_ERR_FORMAT);
    b.n[1] = b.n[0];
    b.n[0] = tmp;
    /* graph output index out of range */
    b.gout[0] = 99;
    CHECK(create(&b, &e) == OCC_ERR_FORMAT);
    b.gout[0] = 4;
    /* unknown tensor kind */
    b.t[3].kind = 77;
    CHECK(create(&b, &e) == OCC_ERR_FORMAT);
    b.t[3].kind = OCC_TENSOR_ACT;
    CHECK(create(&b, &e) == OCC_OK);
    free(w), free(bias);
    tb_free(&b);
}

static occ_status failing_read(void *ctx, uint64_t offset, void *dst, uint64_t size, occ_error *e)
{
    return occ_fail(e, OCC_ERR_IO, "host went away");
}

static void test_read_failure_and_run(void)
{
    tb b;
    float *w, *bias;
    occ_error e;
    build(&b, &w, &bias);
    occ_engine *eng = NULL;
    occ_engine_opts o = {0};
    CHECK(occ_engine_create(&b.m, &o, failing_read, &b, &eng, &e) == OCC_ERR_IO);
    CHECK(eng == NULL);
    CHECK(occ_engine_create(&b.m, &o, tb_read, &b, &eng, &e) == OCC_OK);
    float *x = rand_buf(4 * 36), y[8 * 36];
    const float *ins[1] = {x};
    float *outs[1] = {y};
    CHECK(occ_engine_run(eng, (const void *const *)ins, (void *const *)outs, &e) == OCC_OK);
    const float *nul[1] = {NULL};
    CHECK(occ_engine_run(eng, (const void *const *)nul, (void *const *)outs, &e) == OCC_ERR_INVALID);
    occ_engine_info info;
    occ_engine_get_info(eng, &info);
    CHECK(info.n_steps == 1 && info.n_fused == 1);
    occ_engine_free(eng);
    free(x), free(w), free(bias);
    tb_free(&b);
}

int main(void)
{
    RUN(test_ok_then_tamper);
    RUN(test_coverage);
    RUN(test_shapes);
    RUN(test_graph);
    RUN(test_read_failure_and_run);
    TEST_DONE();
}
