/* Shape inference on bad input: the right status, a message naming the
 * problem, never a crash (manifests are untrusted). */
#include "test_ops_util.h"

static occ_status infer1(const char *op, int n_in, const tin *ins, int n_attrs,
                         const occ_attr *attrs, occ_error *e)
{
    tb b;
    int tid[8];
    tb_init(&b);
    for (int i = 0; i < n_in; i++)
        tid[i] = ins[i].weight ? tb_weight(&b, "w", ins[i].ndim, ins[i].dims, NULL)
                               : tb_input(&b, "x", ins[i].ndim, ins[i].dims);
    int ty = tb_act(&b, "y");
    tb_node(&b, op, n_in, tid, ty, n_attrs, attrs);
    memset(e, 0, sizeof *e);
    return occ_op_infer(&b.m, &b.n[0], e);
}

static void test_conv_errors(void)
{
    occ_error e;
    tin x4 = T4(1, 4, 8, 8, NULL), w = {4, {8, 4, 3, 3}, NULL, 1};
    tin ok[2] = {x4, w};
    CHECK(infer1("Conv", 2, ok, 0, NULL, &e) == OCC_OK);

    /* 1-D convolution needs 1-D (rank-3) weights; 3-D is not supported */
    tin x3[2] = {{3, {1, 4, 8}, NULL, 0}, w};
    CHECK(infer1("Conv", 2, x3, 0, NULL, &e) == OCC_ERR_SHAPE);
    tin x3ok[2] = {{3, {1, 4, 8}, NULL, 0}, {3, {8, 4, 3}, NULL, 1}};
    CHECK(infer1("Conv", 2, x3ok, 0, NULL, &e) == OCC_OK);
    tin x5[2] = {{5, {1, 4, 8, 8, 8}, NULL, 0}, {5, {8, 4, 3, 3, 3}, NULL, 1}};
    CHECK(infer1("Conv", 2, x5, 0, NULL, &e) == OCC_ERR_UNSUPPORTED);

    tin wc[2] = {x4, {4, {8, 3, 3, 3}, NULL, 1}};
    CHECK(infer1("Conv", 2, wc, 0, NULL, &e) == OCC_ERR_SHAPE);

    occ_attr g0[1] = {A_INT("group", 0)};
    CHECK(infer1("Conv", 2, ok, 1, g0, &e) == OCC_ERR_INVALID);
    occ_attr g3[1] = {A_INT("group", 3)};
    CHECK(infer1("Conv", 2, ok, 1, g3, &e) == OCC_ERR_SHAPE);

    occ_attr ap[1] = {A_STR("auto_pad", "SAME_SIDEWAYS")};
    CHECK(infer1("Conv", 2, ok, 1, ap, &e) == OCC_ERR_UNSUPPORTED);
    CHECK_MSG(strstr(e.msg, "auto_pad") && strstr(e.msg, "SAME_SIDEWAYS"), "msg: %s", e.msg);

    occ_attr gs[1] = {A_STR("group", "one")};
    CHECK(infer1("Conv", 2, ok, 1, gs, &e) == OCC_ERR_INVALID);

    int64_t p3[3] = {1, 1, 1};
    occ_attr pc[1] = {A_INTS("pads", p3, 3)};
    CHECK(infer1("Conv", 2, ok, 1, pc, &e) == OCC_ERR_INVALID);
    int64_t pneg[4] = {-1, 0, 0, 0};
    occ_attr pn[1] = {A_INTS("pads", pneg, 4)};
    CHECK(infer1("Conv", 2, ok, 1, pn, &e) == OCC_ERR_INVALID);
    int64_t s0[2] = {0, 1};
    occ_attr sz[1] = {A_INTS("strides", s0, 2)};
    CHECK(infer1("Conv", 2, ok, 1, sz, &e) == OCC_ERR_INVALID);

    tin big[2] = {T4(1, 4, 2, 2, NULL), {4, {8, 4, 5, 5}, NULL, 1}};
    CHECK(infer1("Conv", 2, big, 0, NULL, &e) == OCC_ERR_SHAPE);

    /* overflowing dims: 2^31 * 2^31 * 2^31 elements */
    int64_t h = INT64_C(1) << 31;
    tin ov[2] = {T4(1, 4, h, h * 1024, NULL), w};
    CHECK(infer1("Conv", 2, ov, 0, NULL, &e) == OCC_ERR_SHAPE);

    tin one[1] = {x4};
    CHECK(infer1("Conv", 1, one, 0, NULL, &e) == OCC_ERR_INVALID);

    tin bias[3] = {x4, w, {1, {7}, NULL, 1}};
    CHECK(infer1("Conv", 3, bias, 0, NULL, &e) == OCC_ERR_SHAPE);
}

static void test_generic_errors(void)
{
    occ_error e;
    tin x4[1] = {T4(1, 4, 8, 8, NULL)};
    CHECK(infer1("Frobnicate", 1, x4, 0, NULL, &e) == OCC_ERR_UNSUPPORTED);
    CHECK(strstr(e.msg, "Frobnicate") != NULL);

    /* an empty tensor for an op that does not take one (unary ops such as
     * Relu do since Emformer: empty output, never run) */
    tin bad[1] = {{4, {1, 0, 8, 8}, NULL, 0}};
    CHECK(infer1("Softmax", 1, bad, 0, NULL, &e) == OCC_ERR_SHAPE);
    CHECK(infer1("Relu", 1, bad, 0, NULL, &e) == OCC_OK);
    /* Concat: all inputs empty is an empty output; an empty one next to
     * others is refused (the packer drops those, so its kernel never sees one) */
    occ_attr ax0[1] = {A_INT("axis", 0)};
    tin ce[2] = {{2, {0, 4}, NULL, 0}, {2, {0, 4}, NULL, 0}};
    CHECK(infer1("Concat", 2, ce, 1, ax0, &e) == OCC_OK);
    tin cm[2] = {{2, {0, 4}, NULL, 0}, {2, {3, 4}, NULL, 0}};
    CHECK(infer1("Concat", 2, cm, 1, ax0, &e) == OCC_ERR_SHAPE && strstr(e.msg, "empty"));
    tin neg[1] = {{2, {1, -5}, NULL, 0}};
    CHECK(infer1("Relu", 1, neg, 0, NULL, &e) == OCC_ERR_SHAPE);
    tin r9[1] = {{9, {1, 1, 1, 1, 1, 1, 1, 1}, NULL, 0}};
    CHECK(infer1("Relu", 1, r9, 0, NULL, &e) == OCC_ERR_SHAPE);

    /* out-of-range tensor index */
    tb b;
    tb_init(&b);
    int x = tb_input(&b, "x", 4, x4[0].dims), y = tb_act(&b, "y");
    int in[1] = {x + 100};
    tb_node(&b, "Relu", 1, in, y, 0, NULL);
    CHECK(occ_op_infer(&b.m, &b.n[0], &e) == OCC_ERR_INVALID);
    /* output that is a graph input */
    in[0] = x;
    b.n[0].outputs = b.io[0][0];
    CHECK(occ_op_infer(&b.m, &b.n[0], &e) == OCC_ERR_INVALID);

    tin nb[2] = {T4(1, 4, 8, 8, NULL), T4(1, 3, 8, 8, NULL)};
    CHECK(infer1("Add", 2, nb, 0, NULL, &e) == OCC_ERR_SHAPE);

    int64_t sh[2] = {7, -1};
    occ_attr ra[1] = {A_INTS("shape", sh, 2)};
    CHECK(infer1("Reshape", 1, x4, 1, ra, &e) == OCC_ERR_SHAPE);
    int64_t sh2[2] = {-1, -1};
    occ_attr rb[1] = {A_INTS("shape", sh2, 2)};
    CHECK(infer1("Reshape", 1, x4, 1, rb, &e) == OCC_ERR_INVALID);
    CHECK(infer1("Reshape", 1, x4, 0, NULL, &e) == OCC_ERR_INVALID);

    occ_attr pm[2] = {A_STR("mode", "wrap"), A_INTS("pads", sh, 2)};
    CHECK(infer1("Pad", 1, x4, 2, pm, &e) == OCC_ERR_UNSUPPORTED);
    CHECK(strstr(e.msg, "wrap") != NULL);

    float sc[4] = {1, 1, 2, 2};
    occ_attr rl[2] = {A_FLOATS("scales", sc, 4), A_STR("mode", "area")};
    CHECK(infer1("Resize", 1, x4, 2, rl, &e) == OCC_ERR_UNSUPPORTED);
    CHECK(strstr(e.msg, "mode") && strstr(e.msg, "area"));
    occ_attr rc[2] = {A_FLOATS("scales", sc, 4), A_STR("coordinate_transformation_mode",
                                                        "tf_crop_and_resize")};
    CHECK(infer1("Resize", 1, x4, 2, rc, &e) == OCC_ERR_INVALID); /* no roi */
    CHECK(strstr(e.msg, "roi") != NULL);
    /* Einsum forms outside what is supported: one line each (a diagonal,
     * "ii->i", is taken: test_ops_dtypes.c runs it; a letter repeated in the
     * output is not an einsum) */
    occ_attr ed[1] = {A_STR("equation", "ii->i")};
    tin esq[1] = {{2, {3, 3}, NULL, 0}};
    CHECK(infer1("Einsum", 1, esq, 1, ed, &e) == OCC_OK);
    occ_attr edo[1] = {A_STR("equation", "ij->ii")};
    CHECK(infer1("Einsum", 1, esq, 1, edo, &e) == OCC_ERR_INVALID);
    CHECK(strstr(e.msg, "output letter repeated") != NULL);
    occ_attr edn[1] = {A_STR("equation", "ii->i")};
    tin ens[1] = {{2, {3, 4}, NULL, 0}}; /* a diagonal of unequal sizes */
    CHECK(infer1("Einsum", 1, ens, 1, edn, &e) == OCC_ERR_UNSUPPORTED);
    CHECK(strstr(e.msg, "sizes 3 and 4") != NULL);
    occ_attr eb[1] = {A_STR("equation", "ij,jk->ik")};
    tin bc[2] = {{2, {3, 4}, NULL, 0}, {2, {1, 5}, NULL, 1}};
    CHECK(infer1("Einsum", 2, bc, 1, eb, &e) == OCC_ERR_UNSUPPORTED);
    CHECK(strstr(e.msg, "broadcasting") != NULL);
    float sz[4] = {1, 1, 0, 2};
    occ_attr rz[1] = {A_FLOATS("scales", sz, 4)};
    CHECK(infer1("Resize", 1, x4, 1, rz, &e) == OCC_ERR_INVALID);

    tin g[2] = {{2, {3, 5}, NULL, 0}, {2, {4, 6}, NULL, 1}};
    CHECK(infer1("Gemm", 2, g, 0, NULL, &e) == OCC_ERR_SHAPE);
    occ_attr tr[1] = {A_INT("transB", 2)};
    CHECK(infer1("Gemm", 2, g, 1, tr, &e) == OCC_ERR_INVALID);

    int64_t perm[4] = {0, 1, 1, 2};
    occ_attr pa[1] = {A_INTS("perm", perm, 4)};
    CHECK(infer1("Transpose", 1, x4, 1, pa, &e) == OCC_ERR_INVALID);

    occ_attr ax[1] = {A_INT("axis", 4)};
    CHECK(infer1("Softmax", 1, x4, 1, ax, &e) == OCC_ERR_INVALID);
    CHECK(infer1("Concat", 1, x4, 1, ax, &e) == OCC_ERR_INVALID);
    CHECK(infer1("Concat", 1, x4, 0, NULL, &e) == OCC_ERR_INVALID);

    int64_t k[2] = {3, 3};
    occ_attr mp[2] = {A_INTS("kernel_shape", k, 2), A_INT("storage_order", 1)};
    CHECK(infer1("MaxPool", 1, x4, 2, mp, &e) == OCC_ERR_UNSUPPORTED);
    CHECK(infer1("MaxPool", 1, x4, 0, NULL, &e) == OCC_ERR_INVALID);

    occ_attr ls[1] = {A_INT("size", 0)};
    CHECK(infer1("LRN", 1, x4, 1, ls, &e) == OCC_ERR_INVALID);

    int64_t sq[1] = {1};
    occ_attr sqa[1] = {A_INTS("axes", sq, 1)};
    CHECK(infer1("Squeeze", 1, x4, 1, sqa, &e) == OCC_ERR_SHAPE);
}

static void test_flops(void)
{
    tb b;
    occ_error e;
    tb_init(&b);
    int64_t xd[4] = {1, 3, 8, 8}, wd[4] = {16, 3, 3, 3}, bd[1] = {16};
    int x = tb_input(&b, "x", 4, xd), w = tb_weight(&b, "w", 4, wd, NULL);
    int bi = tb_weight(&b, "b", 1, bd, NULL), y = tb_act(&b, "y");
    int in[3] = {x, w, bi};
    int64_t pads[4] = {1, 1, 1, 1};
    occ_attr a[1] = {A_INTS("pads", pads, 4)};
    tb_node(&b, "Conv", 3, in, y, 1, a);
    CHECK(occ_op_infer(&b.m, &b.n[0], &e) == OCC_OK);
    /* 16*8*8 outputs, 27 MACs each + bias */
    CHECK(occ_op_flops(&b.m, &b.n[0]) == 16u * 64u * 27u * 2u + 16u * 64u);
    CHECK(occ_op_supported("Conv") && occ_op_supported("HardSwish") &&
          !occ_op_supported("Frobnicate"));
}

int main(void)
{
    RUN(test_conv_errors);
    RUN(test_generic_errors);
    RUN(test_flops);
    TEST_DONE();
}
