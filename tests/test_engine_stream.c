/* Occlumency mode on a small model: output equal to native, measured peak
 * within the budget, weights really streamed; every flipped byte of the
 * untrusted ciphertext fails that inference with OCC_ERR_INTEGRITY and no
 * output, the next inference on restored bytes works; every flipped pack
 * chunk fails at load. Batching gives per-input results equal to batch 1,
 * in both batch orders and for partial batches. */
#include "test_ops_util.h"

#include "fixture_stream_cnn.h"

#define NY FIX_NY

#define BUDGET (UINT64_C(3) << 20)

static occ_status make(tb *b, occ_mode mode, uint32_t batch, occ_engine **eng, occ_error *e)
{
    occ_engine_opts o = {.threads = 1, .mode = mode, .budget = BUDGET, .batch = batch};
    return occ_engine_create(&b->m, &o, tb_read, b, eng, e);
}

static void test_stream_and_tamper(void)
{
    tb b;
    float *bufs[6];
    occ_error e = {0};
    fix_stream_cnn(&b, bufs);
    float *x = rand_buf(16 * 64 * 4), ref[NY], y[NY];
    const float *ins[1] = {x};
    float *outs[1] = {ref};
    occ_engine *nat = NULL, *occ = NULL;
    CHECK_MSG(make(&b, OCC_MODE_NATIVE, 1, &nat, &e) == OCC_OK, "%s", e.msg);
    CHECK(occ_engine_run(nat, (const void *const *)ins, (void *const *)outs, &e) == OCC_OK);
    occ_engine_free(nat);
    CHECK_MSG(make(&b, OCC_MODE_OCCLUMENCY, 1, &occ, &e) == OCC_OK, "%s", e.msg);
    if (!occ)
        goto out;
    outs[0] = y;
    occ_engine_stats s0, s1;
    occ_engine_get_stats(occ, &s0);
    CHECK(occ_engine_run(occ, (const void *const *)ins, (void *const *)outs, &e) == OCC_OK);
    occ_engine_get_stats(occ, &s1);
    CHECK_MSG(max_rel_err(y, ref, NY) <= 1e-5, "occlumency vs native %g", max_rel_err(y, ref, NY));
    CHECK_MSG(s1.peak_enclave_bytes <= BUDGET, "peak %llu > budget",
              (unsigned long long)s1.peak_enclave_bytes);
    CHECK_MSG(s1.chunks_loaded > s0.chunks_loaded + 2, "nothing streamed (%llu -> %llu)",
              (unsigned long long)s0.chunks_loaded, (unsigned long long)s1.chunks_loaded);
    uint64_t n = 0;
    uint8_t *stash = occ_engine_debug_stash(occ, &n);
    CHECK(stash && n > 0);
    /* every 4 KiB of ciphertext at least once, plus random positions */
    uint64_t pos[600];
    int np = 0;
    for (uint64_t at = 0; at < n && np < 500; at += 4096)
        pos[np++] = at + (uint64_t)rand() % (n - at < 4096 ? n - at : 4096);
    while (np < 600)
        pos[np++] = (uint64_t)rand() % n;
    int bad = 0;
    for (int i = 0; i < np && bad < 5; i++) {
        uint8_t bit = (uint8_t)(1u << (rand() % 8));
        stash[pos[i]] ^= bit;
        for (int k = 0; k < NY; k++)
            y[k] = -12345.0f;
        occ_status st = occ_engine_run(occ, (const void *const *)ins, (void *const *)outs, &e);
        int untouched = 1;
        for (int k = 0; k < NY; k++)
            untouched &= y[k] == -12345.0f;
        if (st != OCC_ERR_INTEGRITY || !untouched) {
            bad++;
            CHECK_MSG(0, "flip at %llu: status %d, output untouched %d",
                      (unsigned long long)pos[i], st, untouched);
        }
        stash[pos[i]] ^= bit;
        if (i % 50 == 0) {
            CHECK(occ_engine_run(occ, (const void *const *)ins, (void *const *)outs, &e) == OCC_OK);
            CHECK(max_rel_err(y, ref, NY) <= 1e-5);
        }
    }
    CHECK(occ_engine_run(occ, (const void *const *)ins, (void *const *)outs, &e) == OCC_OK);
    CHECK(max_rel_err(y, ref, NY) <= 1e-5);
    occ_engine_free(occ);
    /* every pack chunk, flipped before load: creation fails */
    for (uint32_t c = 0; c < b.m.n_chunks; c++) {
        uint64_t at = b.chunks[c].offset + (uint64_t)rand() % b.chunks[c].size;
        b.data[at] ^= 0x20;
        occ_engine *t = NULL;
        CHECK_MSG(make(&b, OCC_MODE_OCCLUMENCY, 1, &t, &e) == OCC_ERR_INTEGRITY,
                  "chunk %u flip not caught", c);
        CHECK(t == NULL);
        b.data[at] ^= 0x20;
    }
out:
    free(x);
    for (int i = 0; i < 6; i++)
        free(bufs[i]);
    tb_free(&b);
}

static void test_batch_and_budget(void)
{
    tb b;
    float *bufs[6];
    occ_error e = {0};
    fix_stream_cnn(&b, bufs);
    float *x = rand_buf(3 * 16 * 64), ref[3 * NY], y[3 * NY];
    occ_engine *eng = NULL;
    CHECK(make(&b, OCC_MODE_NATIVE, 1, &eng, &e) == OCC_OK);
    occ_engine_stats sn;
    occ_engine_get_stats(eng, &sn);
    CHECK(sn.plan_stream_bytes == 0); /* native: every weight resident */
    for (int i = 0; i < 3; i++) {
        const float *in1[1] = {x + i * 16 * 64};
        float *o1[1] = {ref + i * NY};
        CHECK(occ_engine_run(eng, (const void *const *)in1, (void *const *)o1, &e) == OCC_OK);
    }
    occ_engine_free(eng);
    const float *ins[1] = {x};
    float *outs[1] = {y};
    /* batch 1 streams B1 bytes per inference, as planned (the server batches
     * only models that stream: occ_engine_stats.plan_stream_bytes) */
    uint64_t b1 = 0;
    CHECK_MSG(make(&b, OCC_MODE_OCCLUMENCY, 1, &eng, &e) == OCC_OK, "%s", e.msg);
    if (eng) {
        occ_engine_stats s0, s1;
        occ_engine_get_stats(eng, &s0);
        CHECK(occ_engine_run(eng, (const void *const *)ins, (void *const *)outs, &e) == OCC_OK);
        occ_engine_get_stats(eng, &s1);
        b1 = s1.bytes_loaded - s0.bytes_loaded;
        CHECK_MSG(b1 > 0 && s1.plan_stream_bytes == b1, "streamed %llu bytes, planned %llu",
                  (unsigned long long)b1, (unsigned long long)s1.plan_stream_bytes);
        occ_engine_free(eng);
        eng = NULL;
    }
    CHECK_MSG(make(&b, OCC_MODE_OCCLUMENCY, 3, &eng, &e) == OCC_OK, "%s", e.msg);
    if (eng) {
        /* convolutions image by image, the Gemm once for the batch: its
         * streamed segments are loaded once, not three times */
        occ_engine_stats s0, s1;
        occ_engine_get_stats(eng, &s0);
        CHECK(occ_engine_run(eng, (const void *const *)ins, (void *const *)outs, &e) == OCC_OK);
        occ_engine_get_stats(eng, &s1);
        /* the batched Gemm is one sgemm with 3 rows where batch 1 runs an
         * sgemv: another summation order (this random 4096-long dot product
         * cancels a lot; VGG-16 batch 8 stays within 1.2e-6 of native) */
        CHECK_MSG(max_rel_err(y, ref, 3 * NY) <= 2e-4, "batch 3 vs batch 1: %g",
                  max_rel_err(y, ref, 3 * NY));
        CHECK_MSG(s1.peak_enclave_bytes <= BUDGET, "batch 3 peak %llu",
                  (unsigned long long)s1.peak_enclave_bytes);
        uint64_t b3 = s1.bytes_loaded - s0.bytes_loaded;
        CHECK_MSG(b1 > 0 && b3 < 3 * b1, "batch 3 streamed %llu bytes, batch 1 %llu",
                  (unsigned long long)b3, (unsigned long long)b1);
        /* a flipped byte anywhere in the stash still fails the whole batch */
        uint64_t n = 0;
        uint8_t *stash = occ_engine_debug_stash(eng, &n);
        for (int i = 0; stash && i < 40; i++) {
            uint64_t at = (uint64_t)rand() % n;
            stash[at] ^= 4;
            for (int k = 0; k < 3 * NY; k++)
                y[k] = -1.0f;
            CHECK(occ_engine_run(eng, (const void *const *)ins, (void *const *)outs, &e) == OCC_ERR_INTEGRITY);
            int untouched = 1;
            for (int k = 0; k < 3 * NY; k++)
                untouched &= y[k] == -1.0f;
            CHECK(untouched);
            stash[at] ^= 4;
        }
        CHECK(occ_engine_run(eng, (const void *const *)ins, (void *const *)outs, &e) == OCC_OK);
        CHECK(max_rel_err(y, ref, 3 * NY) <= 2e-4);
        occ_engine_free(eng);
        eng = NULL;
    }
    /* both batch orders, partial batches (occ_engine_run_n): the first n
     * inputs' results, nothing written past them; each order streams less
     * per image than batch 1 from two images on; a flipped stash byte still
     * fails a partial run */
    for (int order = 0; order < 2; order++) {
        occ_engine_batch_order = order;
        CHECK_MSG(make(&b, OCC_MODE_OCCLUMENCY, 3, &eng, &e) == OCC_OK, "order %d: %s", order, e.msg);
        occ_engine_batch_order = -1;
        if (!eng)
            continue;
        for (uint32_t nn = 1; nn <= 3; nn++) {
            for (int k = 0; k < 3 * NY; k++)
                y[k] = -1.0f;
            occ_engine_stats s0, s1;
            occ_engine_get_stats(eng, &s0);
            CHECK_MSG(occ_engine_run_n(eng, nn, (const void *const *)ins, (void *const *)outs, &e) == OCC_OK, "order %d n %u: %s", order, nn, e.msg);
            occ_engine_get_stats(eng, &s1);
            CHECK_MSG(max_rel_err(y, ref, nn * NY) <= 2e-4, "order %d, %u of 3: %g", order, nn,
                      max_rel_err(y, ref, nn * NY));
            CHECK(nn == 3 || y[nn * NY] == -1.0f);
            uint64_t bn = s1.bytes_loaded - s0.bytes_loaded;
            CHECK(nn < 3 || bn == s1.plan_stream_bytes); /* a whole batch streams as planned */
            /* a partial run never streams more than a whole batch, and two or
             * more images stream less than as many batch-1 runs. One image on
             * a batch engine may stream a little more than on a batch-1
             * engine: its plan leaves less of the budget to weights, so its
             * parts (and their prepared blobs) can differ; which way depends
             * on the kernels oneDNN picks for the CPU */
            CHECK_MSG(b1 > 0 && bn <= s1.plan_stream_bytes && (nn == 1 || bn < nn * b1),
                      "order %d: %u images streamed %llu bytes, batch 1 %llu, plan %llu", order,
                      nn, (unsigned long long)bn, (unsigned long long)b1,
                      (unsigned long long)s1.plan_stream_bytes);
            CHECK(s1.peak_enclave_bytes <= BUDGET);
        }
        CHECK(occ_engine_run_n(eng, 0, (const void *const *)ins, (void *const *)outs, &e) == OCC_ERR_INVALID);
        CHECK(occ_engine_run_n(eng, 4, (const void *const *)ins, (void *const *)outs, &e) == OCC_ERR_INVALID);
        uint64_t n = 0;
        uint8_t *stash = occ_engine_debug_stash(eng, &n);
        for (int i = 0; stash && i < 10; i++) {
            uint64_t at = (uint64_t)rand() % n;
            stash[at] ^= 1;
            CHECK(occ_engine_run_n(eng, 1 + (uint32_t)i % 3, (const void *const *)ins, (void *const *)outs, &e) == OCC_ERR_INTEGRITY);
            stash[at] ^= 1;
        }
        CHECK(occ_engine_run_n(eng, 2, (const void *const *)ins, (void *const *)outs, &e) == OCC_OK);
        CHECK(max_rel_err(y, ref, 2 * NY) <= 2e-4);
        occ_engine_free(eng);
        eng = NULL;
    }
    CHECK(make(&b, OCC_MODE_BASELINE, 1, &eng, &e) == OCC_OK);
    CHECK(eng && occ_engine_run(eng, (const void *const *)ins, (void *const *)outs, &e) == OCC_OK);
    CHECK(max_rel_err(y, ref, NY) <= 1e-5);
    occ_engine_free(eng);
    /* far too small: a budget error that names bytes and a layer */
    occ_engine_opts o = {.threads = 1, .mode = OCC_MODE_OCCLUMENCY, .budget = 64 << 10};
    eng = NULL;
    CHECK(occ_engine_create(&b.m, &o, tb_read, &b, &eng, &e) == OCC_ERR_BUDGET);
    CHECK_MSG(strstr(e.msg, "needs") && strstr(e.msg, "available"), "msg: %s", e.msg);
    CHECK(eng == NULL);
    free(x);
    for (int i = 0; i < 6; i++)
        free(bufs[i]);
    tb_free(&b);
}

typedef struct hooklog {
    uint32_t seq[4096];
    uint32_t n;
    int on;
} hooklog;

static void log_chunk(void *ctx, uint32_t k)
{
    hooklog *h = ctx;
    if (h->on && h->n < 4096)
        h->seq[h->n++] = k;
}

/* Three loader threads plus the compute thread loading while it waits: the
 * run's on_chunk sequence is still the streamed segments in order, the same
 * every run, and the outputs stay exact. */
static void test_hook_order_many_loaders(void)
{
    tb b;
    float *bufs[6];
    occ_error e = {0};
    fix_stream_cnn(&b, bufs);
    float *x = rand_buf(16 * 64), ref[NY], y[NY];
    const float *ins[1] = {x};
    float *outs[1] = {ref};
    occ_engine *eng = NULL;
    CHECK(make(&b, OCC_MODE_NATIVE, 1, &eng, &e) == OCC_OK);
    CHECK(eng && occ_engine_run(eng, (const void *const *)ins, (void *const *)outs, &e) == OCC_OK);
    occ_engine_free(eng);
    static hooklog h;
    memset(&h, 0, sizeof h);
    occ_engine_opts o = {.threads = 1, .loader_threads = 3, .mode = OCC_MODE_OCCLUMENCY,
                         .budget = BUDGET, .on_chunk = log_chunk, .hook_ctx = &h};
    eng = NULL;
    CHECK_MSG(occ_engine_create(&b.m, &o, tb_read, &b, &eng, &e) == OCC_OK, "%s", e.msg);
    outs[0] = y;
    uint32_t first[4096], nfirst = 0;
    for (int r = 0; eng && r < 20; r++) {
        h.n = 0;
        h.on = 1;
        CHECK(occ_engine_run(eng, (const void *const *)ins, (void *const *)outs, &e) == OCC_OK);
        h.on = 0;
        CHECK(max_rel_err(y, ref, NY) <= 1e-5);
        CHECK(h.n > 2);
        for (uint32_t i = 1; i < h.n; i++)
            CHECK_MSG(h.seq[i] > h.seq[i - 1], "run %d: segment %u after %u", r, h.seq[i],
                      h.seq[i - 1]);
        if (r == 0) {
            memcpy(first, h.seq, h.n * sizeof *first);
            nfirst = h.n;
        } else {
            CHECK(h.n == nfirst && memcmp(first, h.seq, h.n * sizeof *first) == 0);
        }
    }
    occ_engine_free(eng);
    free(x);
    for (int i = 0; i < 6; i++)
        free(bufs[i]);
    tb_free(&b);
}

/* A streamed Gemm is fused (fcfuse.c) by default; with fusion off it goes
 * through the ring. Both equal native, at batch 1 and 3, within the budget;
 * every flipped bit of a fused segment fails that inference. */
static void test_fused_fc(void)
{
    tb b;
    float *bufs[6];
    occ_error e = {0};
    fix_stream_cnn(&b, bufs);
    float *x = rand_buf(3 * 16 * 64), ref[3 * NY], y[3 * NY];
    occ_engine *eng = NULL;
    CHECK(make(&b, OCC_MODE_NATIVE, 3, &eng, &e) == OCC_OK);
    const float *ins[1] = {x};
    float *outs[1] = {ref};
    CHECK(eng && occ_engine_run(eng, (const void *const *)ins, (void *const *)outs, &e) == OCC_OK);
    occ_engine_free(eng);
    outs[0] = y;
    for (int fuse = 1; fuse >= 0; fuse--)
        for (uint32_t batch = 1; batch <= 3; batch += 2) {
            occ_engine_fuse_fc = fuse;
            eng = NULL;
            CHECK_MSG(make(&b, OCC_MODE_OCCLUMENCY, batch, &eng, &e) == OCC_OK, "%s", e.msg);
            occ_engine_fuse_fc = 1;
            if (!eng)
                continue;
            occ_plan_summary sum = {0};
            const occ_plan_layer *layers = NULL;
            uint32_t nl = 0;
            occ_engine_plan_summary(eng, &sum, &layers, &nl);
            CHECK_MSG(fuse ? sum.fc_fused == 1 : sum.fc_fused == 0, "fuse %d: %u fused", fuse,
                      sum.fc_fused);
            for (uint32_t i = 0; i < 3; i += batch) {
                const float *in1[1] = {x + i * 16 * 64};
                float *o1[1] = {y + i * NY};
                CHECK(occ_engine_run(eng, (const void *const *)in1, (void *const *)o1, &e) ==
                      OCC_OK);
            }
            CHECK_MSG(max_rel_err(y, ref, 3 * NY) <= 1e-5, "fuse %d batch %u: %g", fuse, batch,
                      max_rel_err(y, ref, 3 * NY));
            occ_engine_stats st;
            occ_engine_get_stats(eng, &st);
            CHECK(st.peak_enclave_bytes <= BUDGET);
            if (fuse && batch == 1) {
                /* the fc segments are the last in the stash: flip bits there */
                uint64_t n = 0;
                uint8_t *stash = occ_engine_debug_stash(eng, &n);
                int caught = 0;
                for (int k = 0; stash && k < 40; k++) {
                    uint64_t at = n - 1 - (uint64_t)rand() % (n / 2);
                    stash[at] ^= 0x10;
                    occ_status rs =
                        occ_engine_run(eng, (const void *const *)ins, (void *const *)outs, &e);
                    stash[at] ^= 0x10;
                    caught += rs == OCC_ERR_INTEGRITY;
                }
                CHECK_MSG(caught == 40, "%d of 40 flips caught", caught);
                CHECK(occ_engine_run(eng, (const void *const *)ins, (void *const *)outs, &e) ==
                      OCC_OK);
            }
            occ_engine_free(eng);
        }
    tb_free(&b);
    free(x);
    for (int i = 0; i < 6; i++)
        free(bufs[i]);
}

/* Convolutions whose input comes in a layout they do not take (here after a
 * SiLU, as in efficientnet_v2_s) convert it first. That buffer is part of the
 * shared working buffer, not state each conv keeps: eight such convs must not
 * hold eight activations (efficientnet_v2_s held 42 MB that way and was
 * refused --budget 32M). Outputs equal to the self-contained ops path. */
static void test_conv_input_reorder_shared(void)
{
    enum { NC = 8, C = 16, HW = 32 };
    const int64_t act = (int64_t)C * HW * HW;
    tb b;
    tb_init(&b);
    int64_t xd[4] = {1, C, HW, HW}, wd[4] = {C, C, 3, 3}, bd[1] = {C};
    float *w[NC], *bias[NC];
    int cur = tb_input(&b, "x", 4, xd);
    static int64_t pads[4] = {1, 1, 1, 1};
    occ_attr pa[1] = {A_INTS("pads", pads, 4)};
    for (int k = 0; k < NC; k++) {
        char nm[32];
        w[k] = rand_buf(C * C * 9);
        for (int i = 0; i < C * C * 9; i++) /* a gain near 1: rounding is not amplified */
            w[k][i] *= 0.15f;
        bias[k] = rand_buf(C);
        snprintf(nm, sizeof nm, "w%d", k);
        int wt = tb_weight(&b, nm, 4, wd, w[k]);
        snprintf(nm, sizeof nm, "b%d", k);
        int bt = tb_weight(&b, nm, 1, bd, bias[k]);
        snprintf(nm, sizeof nm, "c%d", k);
        int c = tb_act(&b, nm);
        snprintf(nm, sizeof nm, "s%d", k);
        int sg = tb_act(&b, nm);
        snprintf(nm, sizeof nm, "m%d", k);
        int mu = tb_act(&b, nm);
        int ic[3] = {cur, wt, bt}, is[1] = {c}, im[2] = {c, sg};
        tb_node(&b, "Conv", 3, ic, c, 1, pa);
        tb_node(&b, "Sigmoid", 1, is, sg, 0, NULL);
        tb_node(&b, "Mul", 2, im, mu, 0, NULL);
        cur = mu;
    }
    tb_output(&b, cur);
    occ_error e = {0};
    CHECK_MSG(tb_finish(&b, &e) == OCC_OK, "finish: %s", e.msg);
    float *x = rand_buf(act), *ref = malloc((size_t)act * sizeof *ref),
          *t = malloc((size_t)act * sizeof *t), *y = calloc((size_t)act, sizeof *y);
    const float *ins[1] = {x};
    /* the reference: direct 3x3 convolutions (pad 1), then x * sigmoid(x) */
    memcpy(ref, x, (size_t)act * sizeof *ref);
    for (int k = 0; k < NC; k++) {
        for (int o = 0; o < C; o++)
            for (int i = 0; i < HW; i++)
                for (int j = 0; j < HW; j++) {
                    double acc = bias[k][o];
                    for (int c = 0; c < C; c++)
                        for (int di = 0; di < 3; di++)
                            for (int dj = 0; dj < 3; dj++) {
                                int ii = i + di - 1, jj = j + dj - 1;
                                if (ii >= 0 && ii < HW && jj >= 0 && jj < HW)
                                    acc += (double)w[k][((o * C + c) * 3 + di) * 3 + dj] *
                                           ref[(c * HW + ii) * HW + jj];
                            }
                    t[(o * HW + i) * HW + j] = (float)(acc / (1.0 + exp(-acc)));
                }
        memcpy(ref, t, (size_t)act * sizeof *ref);
    }
    for (int mode = 0; mode < 2; mode++) {
        occ_engine *eng = NULL;
        CHECK_MSG(make(&b, mode ? OCC_MODE_OCCLUMENCY : OCC_MODE_NATIVE, 1, &eng, &e) == OCC_OK,
                  "%s", e.msg);
        if (!eng)
            continue;
        float *outs[1] = {y};
        CHECK(occ_engine_run(eng, (const void *const *)ins, (void *const *)outs, &e) == OCC_OK);
        CHECK_MSG(max_rel_err(y, ref, act) <= 1e-5, "mode %d: %g", mode, max_rel_err(y, ref, act));
        occ_plan_summary sum = {0};
        const occ_plan_layer *layers = NULL;
        uint32_t nl = 0;
        occ_engine_plan_summary(eng, &sum, &layers, &nl);
        printf("   mode %d: fixed %llu bytes, work %llu\n", mode, (unsigned long long)sum.fixed,
               (unsigned long long)sum.work);
        CHECK_MSG(sum.fixed < (uint64_t)act * 4 * 2, "mode %d: %llu bytes of op state", mode,
                  (unsigned long long)sum.fixed);
        occ_engine_free(eng);
    }
    free(x);
    free(ref);
    free(t);
    free(y);
    for (int k = 0; k < NC; k++) {
        free(w[k]);
        free(bias[k]);
    }
    tb_free(&b);
}

int main(void)
{
    srand(7);
    RUN(test_stream_and_tamper);
    RUN(test_batch_and_budget);
    RUN(test_hook_order_many_loaders);
    RUN(test_fused_fc);
    RUN(test_conv_input_reorder_shared);
    TEST_DONE();
}
