/* Compile once, run many (include/occ/engine.h): contexts on one compiled
 * model read no weight from the host (the compiled model read and verified
 * each once), run concurrently from two threads with outputs identical to
 * one context's runs alone, hold the compiled model's bytes once, and a
 * run that fails in one context (a flipped bit of the sealed weights)
 * leaves the other and its own next run intact. Native, baseline and
 * occlumency (streamed, fused FC) modes, a Conv split in parts, and a
 * oneDNN primitive that needs a scratchpad (ConvTranspose). */
#include <pthread.h>

#include "test_ops_util.h"

#include "fixture_stream_cnn.h"

#define NY FIX_NY
#define BUDGET (UINT64_C(3) << 20)
#define ROUNDS 12

typedef struct counted {
    tb *b;
    uint64_t calls, bytes;
} counted;

static occ_status count_read(void *ctx, uint64_t offset, void *dst, uint64_t size, occ_error *e)
{
    counted *c = ctx;
    c->calls++;
    c->bytes += size;
    return tb_read(c->b, offset, dst, size, e);
}

typedef struct worker {
    occ_engine *eng;
    const float *x;
    const float *ref;
    int mismatches, failures;
} worker;

/* ROUNDS runs of w->x, each output compared bit for bit with w->ref (n floats) */
static void run_rounds(worker *w, size_t n)
{
    float *y = malloc(n * sizeof *y);
    const float *ins[1] = {w->x};
    float *outs[1] = {y};
    for (int r = 0; y && r < ROUNDS; r++) {
        occ_error e = {0};
        if (occ_engine_run(w->eng, (const void *const *)ins, (void *const *)outs, &e) != OCC_OK)
            w->failures++;
        else if (memcmp(y, w->ref, n * sizeof *y) != 0)
            w->mismatches++;
    }
    if (!y)
        w->failures++;
    free(y);
}

static void *run_loop(void *arg)
{
    run_rounds(arg, NY);
    return NULL;
}

static void *run_loop_n(void *arg) /* test_split_conv's output */
{
    run_rounds(arg, 256 * 64);
    return NULL;
}

static void one_mode(occ_mode mode)
{
    tb b;
    float *bufs[6];
    occ_error e = {0};
    fix_stream_cnn(&b, bufs);
    float *x1 = rand_buf(16 * 64), *x2 = rand_buf(16 * 64);
    float ref1[NY], ref2[NY], nat[NY];
    counted cr = {&b, 0, 0};
    occ_engine_opts o = {.threads = 1, .mode = mode, .budget = BUDGET};
    occ_compiled *c = NULL;
    occ_engine *a = NULL, *bb = NULL;
    CHECK_MSG(occ_compiled_create(&b.m, &o, count_read, &cr, &c, &e) == OCC_OK, "%s", e.msg);
    if (!c)
        goto out;
    /* every weight byte read (and its chunk checked) at compile; the
     * vreader holds one chunk, so a chunk two layers share may be read
     * again there, but never after */
    uint64_t calls = cr.calls, bytes = cr.bytes;
    CHECK_MSG(bytes >= b.m.data_size, "compile read %llu bytes of %llu",
              (unsigned long long)bytes, (unsigned long long)b.m.data_size);
    CHECK_MSG(occ_engine_create_ctx(c, &o, &a, &e) == OCC_OK, "%s", e.msg);
    CHECK_MSG(occ_engine_create_ctx(c, NULL, &bb, &e) == OCC_OK, "%s", e.msg);
    if (!a || !bb)
        goto out;
    CHECK_MSG(cr.calls == calls && cr.bytes == bytes, "contexts read the host: %llu calls",
              (unsigned long long)(cr.calls - calls));
    /* shared bytes once: each context reports the compiled model's bytes as shared */
    occ_engine_stats cs, sa, sb;
    occ_compiled_get_stats(c, &cs);
    occ_engine_get_stats(a, &sa);
    occ_engine_get_stats(bb, &sb);
    CHECK(sa.shared_bytes == cs.enclave_bytes && sb.shared_bytes == cs.enclave_bytes);
    CHECK(sa.enclave_bytes > cs.enclave_bytes);
    if (mode == OCC_MODE_OCCLUMENCY) {
        occ_plan_summary ps;
        const occ_plan_layer *ly;
        uint32_t nl;
        occ_compiled_plan_summary(c, &ps, &ly, &nl);
        CHECK(ps.shared + ps.per_engine >= ps.peak); /* + the stash's key */
        CHECK(ps.shared >= ps.resident);
        /* two engines on it hold at most shared + 2 * per_engine */
        CHECK_MSG(cs.enclave_bytes + (sa.enclave_bytes - sa.shared_bytes) +
                          (sb.enclave_bytes - sb.shared_bytes) <= ps.shared + 2 * ps.per_engine,
                  "held %llu + %llu + %llu > %llu + 2 * %llu", (unsigned long long)cs.enclave_bytes,
                  (unsigned long long)(sa.enclave_bytes - sa.shared_bytes),
                  (unsigned long long)(sb.enclave_bytes - sb.shared_bytes),
                  (unsigned long long)ps.shared, (unsigned long long)ps.per_engine);
        CHECK(sa.peak_enclave_bytes <= BUDGET);
    }
    /* references: one context alone, and a native engine of its own */
    const float *ins[1] = {x1};
    float *outs[1] = {ref1};
    CHECK(occ_engine_run(a, (const void *const *)ins, (void *const *)outs, &e) == OCC_OK);
    ins[0] = x2;
    outs[0] = ref2;
    CHECK(occ_engine_run(a, (const void *const *)ins, (void *const *)outs, &e) == OCC_OK);
    occ_engine_opts no = {.threads = 1};
    occ_engine *ne = NULL;
    CHECK_MSG(occ_engine_create(&b.m, &no, tb_read, &b, &ne, &e) == OCC_OK, "%s", e.msg);
    outs[0] = nat;
    CHECK(occ_engine_run(ne, (const void *const *)ins, (void *const *)outs, &e) == OCC_OK);
    occ_engine_free(ne);
    CHECK_MSG(max_rel_err(ref2, nat, NY) <= 1e-5, "vs native %g", max_rel_err(ref2, nat, NY));
    /* concurrently: each its own input, bit-identical to the runs alone */
    worker w[2] = {{a, x1, ref1, 0, 0}, {bb, x2, ref2, 0, 0}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        CHECK(pthread_create(&th[i], NULL, run_loop, &w[i]) == 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 2; i++)
        CHECK_MSG(!w[i].failures && !w[i].mismatches, "context %d: %d failed, %d differed", i,
                  w[i].failures, w[i].mismatches);
    if (mode == OCC_MODE_OCCLUMENCY) {
        /* a failed run in one context: the other is unaffected, and so is
         * the failed context's next run */
        uint64_t n = 0;
        uint8_t *stash = occ_engine_debug_stash(a, &n);
        CHECK(stash && n > 0);
        if (stash && n) {
            float y[NY];
            for (int k = 0; k < NY; k++)
                y[k] = -7.0f;
            stash[n / 2] ^= 0x10;
            ins[0] = x1;
            outs[0] = y;
            CHECK(occ_engine_run(a, (const void *const *)ins, (void *const *)outs, &e) == OCC_ERR_INTEGRITY);
            CHECK(y[0] == -7.0f && y[NY - 1] == -7.0f);
            stash[n / 2] ^= 0x10;
            ins[0] = x2;
            CHECK(occ_engine_run(bb, (const void *const *)ins, (void *const *)outs, &e) == OCC_OK);
            CHECK(memcmp(y, ref2, sizeof y) == 0);
            ins[0] = x1;
            CHECK(occ_engine_run(a, (const void *const *)ins, (void *const *)outs, &e) == OCC_OK);
            CHECK(memcmp(y, ref1, sizeof y) == 0);
            occ_engine_get_stats(a, &sa);
            occ_engine_get_stats(bb, &sb);
            CHECK(sa.integrity_failures == 1 && sb.integrity_failures == 0);
            /* and concurrently again after it */
            w[0].failures = w[0].mismatches = w[1].failures = w[1].mismatches = 0;
            for (int i = 0; i < 2; i++)
                CHECK(pthread_create(&th[i], NULL, run_loop, &w[i]) == 0);
            for (int i = 0; i < 2; i++)
                pthread_join(th[i], NULL);
            for (int i = 0; i < 2; i++)
                CHECK(!w[i].failures && !w[i].mismatches);
        }
    }
    /* occ_engine_create still reads once per engine: the contrast */
    counted c2 = {&b, 0, 0};
    occ_engine *own = NULL;
    CHECK_MSG(occ_engine_create(&b.m, &o, count_read, &c2, &own, &e) == OCC_OK, "%s", e.msg);
    CHECK(c2.bytes == bytes);
    occ_engine_free(own);
out:
    occ_engine_free(a);
    occ_engine_free(bb);
    occ_compiled_free(c);
    free(x1);
    free(x2);
    for (int i = 0; i < 6; i++)
        free(bufs[i]);
    tb_free(&b);
}

/* A Conv split into parts (weights of 576 KiB, segments of at most 256
 * KiB at a 2 MiB budget): each context prepares every part again and must
 * get the compiled blob layout; outputs equal native's, also concurrently. */
static void test_split_conv(void)
{
    tb b;
    tb_init(&b);
    /* a first Conv (plain input) feeds the split one its blocked layout */
    int64_t xd[4] = {1, 16, 8, 8}, w0d[4] = {64, 16, 3, 3}, b0d[1] = {64};
    int64_t wd[4] = {256, 64, 3, 3}, bd[1] = {256};
    float *w0 = rand_buf(64 * 16 * 9), *b0 = rand_buf(64);
    float *w = rand_buf(256 * 64 * 9), *bias = rand_buf(256), *x = rand_buf(16 * 64);
    int xi = tb_input(&b, "x", 4, xd);
    int w0i = tb_weight(&b, "w0", 4, w0d, w0), b0i = tb_weight(&b, "b0", 1, b0d, b0);
    int wi = tb_weight(&b, "w", 4, wd, w), bi = tb_weight(&b, "b", 1, bd, bias);
    int c0 = tb_act(&b, "c0"), r0 = tb_act(&b, "r0"), c = tb_act(&b, "c"), y = tb_act(&b, "y");
    static int64_t pads[4] = {1, 1, 1, 1};
    occ_attr pa[1] = {A_INTS("pads", pads, 4)};
    int i0[3] = {xi, w0i, b0i}, i01[1] = {c0}, i1[3] = {r0, wi, bi}, i2[1] = {c};
    tb_node(&b, "Conv", 3, i0, c0, 1, pa)->name = "conv0";
    tb_node(&b, "Relu", 1, i01, r0, 0, NULL);
    tb_node(&b, "Conv", 3, i1, c, 1, pa)->name = "conv";
    tb_node(&b, "Relu", 1, i2, y, 0, NULL);
    tb_output(&b, y);
    occ_error e = {0};
    CHECK_MSG(tb_finish(&b, &e) == OCC_OK, "%s", e.msg);
    fix_rechunk(&b, 128 << 10);
    enum { NO = 256 * 64 };
    float *ref = malloc(NO * sizeof(float)), *y1 = malloc(NO * sizeof(float));
    const float *ins[1] = {x};
    float *outs[1] = {ref};
    occ_engine_opts no = {.threads = 1};
    occ_engine *ne = NULL;
    CHECK_MSG(occ_engine_create(&b.m, &no, tb_read, &b, &ne, &e) == OCC_OK, "%s", e.msg);
    CHECK(ne && occ_engine_run(ne, (const void *const *)ins, (void *const *)outs, &e) == OCC_OK);
    occ_engine_free(ne);
    occ_engine_opts o = {.threads = 1, .mode = OCC_MODE_OCCLUMENCY, .budget = UINT64_C(2) << 20};
    occ_compiled *cm = NULL;
    occ_engine *a = NULL, *bb = NULL;
    CHECK_MSG(occ_compiled_create(&b.m, &o, tb_read, &b, &cm, &e) == OCC_OK, "%s", e.msg);
    if (cm) {
        occ_plan_summary ps;
        const occ_plan_layer *ly;
        uint32_t nl;
        occ_compiled_plan_summary(cm, &ps, &ly, &nl);
        uint32_t parts = 0;
        for (uint32_t i = 0; i < nl; i++)
            parts = ly[i].parts > parts ? ly[i].parts : parts;
        CHECK_MSG(parts > 1, "the conv is not split (%u parts at most)", parts);
        CHECK_MSG(occ_engine_create_ctx(cm, &o, &a, &e) == OCC_OK, "%s", e.msg);
        CHECK_MSG(occ_engine_create_ctx(cm, &o, &bb, &e) == OCC_OK, "%s", e.msg);
    }
    if (a && bb) {
        outs[0] = y1;
        CHECK(occ_engine_run(a, (const void *const *)ins, (void *const *)outs, &e) == OCC_OK);
        CHECK_MSG(max_rel_err(y1, ref, NO) <= 1e-5, "split conv vs native %g", max_rel_err(y1, ref, NO));
        /* its bits, now from both contexts at once */
        memcpy(ref, y1, NO * sizeof(float));
        worker wk[2] = {{a, x, ref, 0, 0}, {bb, x, ref, 0, 0}};
        pthread_t th[2];
        for (int i = 0; i < 2; i++)
            CHECK(pthread_create(&th[i], NULL, run_loop_n, &wk[i]) == 0);
        for (int i = 0; i < 2; i++)
            pthread_join(th[i], NULL);
        for (int i = 0; i < 2; i++)
            CHECK(!wk[i].failures && !wk[i].mismatches);
    }
    occ_engine_free(a);
    occ_engine_free(bb);
    occ_compiled_free(cm);
    free(ref);
    free(y1);
    free(w0);
    free(b0);
    free(w);
    free(bias);
    free(x);
    tb_free(&b);
}

/* A ConvTranspose on plain layouts runs oneDNN's gemm deconvolution, which
 * asks for a ~90 KiB scratchpad. Both contexts are made on this thread and
 * get the same primitive from oneDNN's cache; in library scratchpad mode it
 * would use this thread's scratchpad from both worker threads at once. */
enum { DC_C = 3, DC_M = 5, DC_H = 17, DC_OH = 34, DC_NY = DC_M * DC_OH * DC_OH };

typedef struct dc_worker {
    occ_engine *eng;
    const float *x, *ref;
    int mismatches, failures;
} dc_worker;

static void *dc_loop(void *arg)
{
    dc_worker *w = arg;
    static _Thread_local float y[DC_NY];
    const float *ins[1] = {w->x};
    float *outs[1] = {y};
    for (int r = 0; r < 300; r++) {
        occ_error e = {0};
        if (occ_engine_run(w->eng, (const void *const *)ins, (void *const *)outs, &e) != OCC_OK)
            w->failures++;
        else if (memcmp(y, w->ref, sizeof y) != 0)
            w->mismatches++;
    }
    return NULL;
}

static void test_deconv_contexts(void)
{
    tb b;
    tb_init(&b);
    int64_t dx[4] = {1, DC_C, DC_H, DC_H}, dw[4] = {DC_C, DC_M, 4, 4}, strides[2] = {2, 2},
            pads[4] = {1, 1, 1, 1};
    float *w = rand_buf(DC_C * DC_M * 16), *x1 = rand_buf(DC_C * DC_H * DC_H),
          *x2 = rand_buf(DC_C * DC_H * DC_H);
    int ix = tb_input(&b, "x", 4, dx), iw = tb_weight(&b, "w", 4, dw, w), y = tb_act(&b, "y");
    occ_attr a[2] = {A_INTS("strides", strides, 2), A_INTS("pads", pads, 4)};
    int in[2] = {ix, iw};
    tb_node(&b, "ConvTranspose", 2, in, y, 2, a);
    tb_output(&b, y);
    occ_error e = {0};
    CHECK_MSG(tb_finish(&b, &e) == OCC_OK, "%s", e.msg);
    CHECK(b.t[y].dims[2] == DC_OH && b.t[y].dims[3] == DC_OH);
    occ_engine_opts o = {.threads = 1};
    occ_compiled *c = NULL;
    occ_engine *ctx[2] = {NULL, NULL};
    static float ref[2][DC_NY];
    CHECK_MSG(occ_compiled_create(&b.m, &o, tb_read, &b, &c, &e) == OCC_OK, "%s", e.msg);
    for (int i = 0; c && i < 2; i++)
        CHECK_MSG(occ_engine_create_ctx(c, &o, &ctx[i], &e) == OCC_OK, "%s", e.msg);
    if (ctx[0] && ctx[1]) {
        const float *xs[2] = {x1, x2};
        for (int i = 0; i < 2; i++) {
            const float *ins[1] = {xs[i]};
            float *outs[1] = {ref[i]};
            CHECK(occ_engine_run(ctx[0], (const void *const *)ins, (void *const *)outs, &e) ==
                  OCC_OK);
        }
        dc_worker wk[2] = {{ctx[0], x1, ref[0], 0, 0}, {ctx[1], x2, ref[1], 0, 0}};
        pthread_t th[2];
        for (int i = 0; i < 2; i++)
            CHECK(pthread_create(&th[i], NULL, dc_loop, &wk[i]) == 0);
        for (int i = 0; i < 2; i++)
            pthread_join(th[i], NULL);
        for (int i = 0; i < 2; i++)
            CHECK_MSG(!wk[i].failures && !wk[i].mismatches, "context %d: %d failed, %d differed",
                      i, wk[i].failures, wk[i].mismatches);
    }
    for (int i = 0; i < 2; i++)
        occ_engine_free(ctx[i]);
    occ_compiled_free(c);
    free(w), free(x1), free(x2);
    tb_free(&b);
}

static void test_misuse(void)
{
    occ_error e = {0};
    occ_engine *eng = (occ_engine *)1;
    CHECK(occ_engine_create_ctx(NULL, NULL, &eng, &e) == OCC_ERR_INVALID && eng == NULL);
    CHECK(occ_engine_create_ctx(NULL, NULL, NULL, &e) == OCC_ERR_INVALID);
    occ_compiled_free(NULL);
    occ_engine_stats s;
    occ_compiled_get_stats(NULL, &s);
    CHECK(s.enclave_bytes == 0);
}

static void test_native(void)
{
    one_mode(OCC_MODE_NATIVE);
}

static void test_baseline(void)
{
    one_mode(OCC_MODE_BASELINE);
}

static void test_occlumency(void)
{
    one_mode(OCC_MODE_OCCLUMENCY);
}

int main(void)
{
    srand(7);
    RUN(test_native);
    RUN(test_baseline);
    RUN(test_occlumency);
    RUN(test_split_conv);
    RUN(test_deconv_contexts);
    RUN(test_misuse);
    TEST_DONE();
}
