/* The small streaming CNN shared by the engine tests (test_engine_stream,
 * test_fault, test_access_pattern):
 *
 *   x[1,16,8,8] -> Conv(64,3x3)+Relu -> Conv(64,3x3)+Relu -> Flatten -> Gemm(200, transB)
 *
 * 3.4 MiB of weights re-cut into 128 KiB chunks (each with its SHA-256),
 * so a 3 MiB budget streams most of them. Include after test_ops_util.h. */
#ifndef OCC_TEST_FIXTURE_STREAM_CNN_H
#define OCC_TEST_FIXTURE_STREAM_CNN_H

#define FIX_NY 200 /* outputs */

/* Re-cuts the data section into chunks of at most `max` bytes (the packer's
 * --chunk-size), rehashing each. */
static void fix_rechunk(tb *b, uint64_t max)
{
    occ_chunk old[TB_MAX];
    uint32_t n = b->m.n_chunks, k = 0;
    memcpy(old, b->chunks, n * sizeof *old);
    for (uint32_t i = 0; i < n; i++)
        for (uint64_t at = 0; at < old[i].size && k < TB_MAX; at += max) {
            occ_chunk *c = &b->chunks[k++];
            c->offset = old[i].offset + at;
            c->size = old[i].size - at < max ? old[i].size - at : max;
            CHECK(occ_sha256(b->data + c->offset, (size_t)c->size, c->sha256) == OCC_OK);
        }
    b->m.n_chunks = k;
}

/* Builds the model into b; bufs[0..5] get its random weights (the caller
 * frees them). */
static void fix_stream_cnn(tb *b, float **bufs)
{
    tb_init(b);
    int64_t xd[4] = {1, 16, 8, 8}, w1d[4] = {64, 16, 3, 3}, w2d[4] = {64, 64, 3, 3};
    int64_t b1d[1] = {64}, gd[2] = {FIX_NY, 64 * 64}, gcd[1] = {FIX_NY};
    bufs[0] = rand_buf(64 * 16 * 9);
    bufs[1] = rand_buf(64);
    bufs[2] = rand_buf(64 * 64 * 9);
    bufs[3] = rand_buf(64);
    bufs[4] = rand_buf(FIX_NY * 64 * 64);
    bufs[5] = rand_buf(FIX_NY);
    int x = tb_input(b, "x", 4, xd);
    int w1 = tb_weight(b, "w1", 4, w1d, bufs[0]), b1 = tb_weight(b, "b1", 1, b1d, bufs[1]);
    int w2 = tb_weight(b, "w2", 4, w2d, bufs[2]), b2 = tb_weight(b, "b2", 1, b1d, bufs[3]);
    int gw = tb_weight(b, "gw", 2, gd, bufs[4]), gc = tb_weight(b, "gc", 1, gcd, bufs[5]);
    int c1 = tb_act(b, "c1"), r1 = tb_act(b, "r1"), c2 = tb_act(b, "c2"), r2 = tb_act(b, "r2");
    int f = tb_act(b, "f"), y = tb_act(b, "y");
    static int64_t pads[4] = {1, 1, 1, 1};
    occ_attr pa[1] = {A_INTS("pads", pads, 4)};
    int i1[3] = {x, w1, b1}, i2[1] = {c1}, i3[3] = {r1, w2, b2}, i4[1] = {c2}, i5[1] = {r2};
    tb_node(b, "Conv", 3, i1, c1, 1, pa)->name = "conv1";
    tb_node(b, "Relu", 1, i2, r1, 0, NULL);
    tb_node(b, "Conv", 3, i3, c2, 1, pa)->name = "conv2";
    tb_node(b, "Relu", 1, i4, r2, 0, NULL);
    tb_node(b, "Flatten", 1, i5, f, 0, NULL);
    occ_attr ga[1] = {A_INT("transB", 1)};
    int i6[3] = {f, gw, gc};
    tb_node(b, "Gemm", 3, i6, y, 1, ga)->name = "fc";
    tb_output(b, y);
    occ_error e = {0};
    occ_status st = tb_finish(b, &e);
    CHECK_MSG(st == OCC_OK, "finish: %s", e.msg);
    fix_rechunk(b, 128 << 10);
    CHECK(b->m.n_chunks > 20);
}

#endif
