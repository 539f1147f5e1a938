/* The weight-streaming component (src/engine/stream.c) on its own terms:
 * its loader threads live as long as the engine (started at create, woken
 * per run), so these tests drive one engine through many runs and check
 * that nothing of a run leaks into the next one:
 *
 *  - many runs with 1..4 loaders, full and partial batches interleaved:
 *    outputs exact, each run copies and checks exactly the plan's bytes;
 *  - a run failed by a tampered segment, then clean runs again;
 *  - an engine freed with its loaders asleep (never run, and after runs);
 *  - two engines of one model running at once on two threads (a server's
 *    pool), each with its own loaders. */
#include <pthread.h>

#include "test_ops_util.h"

#include "fixture_stream_cnn.h"

#define NY FIX_NY
#define NX (16 * 64)
#define BUDGET (UINT64_C(3) << 20)

static occ_engine *make(tb *b, occ_mode mode, int loaders, uint32_t batch)
{
    occ_error e = {0};
    occ_engine *eng = NULL;
    occ_engine_opts o = {.threads = 1, .loader_threads = loaders, .mode = mode,
                         .budget = BUDGET, .batch = batch};
    CHECK_MSG(occ_engine_create(&b->m, &o, tb_read, b, &eng, &e) == OCC_OK, "%s", e.msg);
    return eng;
}

/* native's outputs for n inputs, one by one */
static void reference(tb *b, const float *x, float *ref, int n)
{
    occ_engine *nat = make(b, OCC_MODE_NATIVE, 0, 1);
    occ_error e = {0};
    for (int i = 0; nat && i < n; i++) {
        const float *ins[1] = {x + i * NX};
        float *outs[1] = {ref + i * NY};
        CHECK(occ_engine_run(nat, (const void *const *)ins, (void *const *)outs, &e) == OCC_OK);
    }
    occ_engine_free(nat);
}

static void test_many_runs(void)
{
    tb b;
    float *bufs[6];
    fix_stream_cnn(&b, bufs);
    float *x = rand_buf(2 * NX), ref[2 * NY], y[2 * NY];
    reference(&b, x, ref, 2);
    occ_error e = {0};
    for (int loaders = 1; loaders <= 4; loaders++) {
        occ_engine *eng = make(&b, OCC_MODE_OCCLUMENCY, loaders, 2);
        if (!eng)
            continue;
        occ_engine_stats s;
        occ_engine_get_stats(eng, &s);
        uint64_t per_run = s.plan_stream_bytes, before = s.bytes_loaded;
        CHECK(per_run > 0);
        for (int r = 0; r < 24; r++) {
            uint32_t n = 1 + (uint32_t)(r % 3 == 2); /* 1, 1, 2, 1, 1, 2, ... */
            const float *ins[1] = {x};
            float *outs[1] = {y};
            for (int k = 0; k < 2 * NY; k++)
                y[k] = -1.0f;
            CHECK(occ_engine_run_n(eng, n, (const void *const *)ins, (void *const *)outs, &e) ==
                  OCC_OK);
            CHECK_MSG(max_rel_err(y, ref, NY) <= 1e-5, "loaders %d run %d: %g", loaders, r,
                      max_rel_err(y, ref, NY));
            if (n == 2)
                CHECK(max_rel_err(y + NY, ref + NY, NY) <= 1e-5);
            else
                CHECK(y[NY] == -1.0f); /* image 1 not written */
        }
        /* a full run after partial ones copies exactly the plan's bytes */
        occ_engine_get_stats(eng, &s);
        before = s.bytes_loaded;
        const float *ins[1] = {x};
        float *outs[1] = {y};
        CHECK(occ_engine_run_n(eng, 2, (const void *const *)ins, (void *const *)outs, &e) == OCC_OK);
        occ_engine_get_stats(eng, &s);
        CHECK_MSG(s.bytes_loaded - before == per_run, "loaders %d: %llu loaded, plan %llu",
                  loaders, (unsigned long long)(s.bytes_loaded - before),
                  (unsigned long long)per_run);
        CHECK(s.peak_enclave_bytes <= BUDGET);
        occ_engine_free(eng);
    }
    free(x);
    for (int i = 0; i < 6; i++)
        free(bufs[i]);
    tb_free(&b);
}

static void test_fail_then_clean(void)
{
    tb b;
    float *bufs[6];
    fix_stream_cnn(&b, bufs);
    float *x = rand_buf(NX), ref[NY], y[NY];
    reference(&b, x, ref, 1);
    occ_error e = {0};
    occ_engine *eng = make(&b, OCC_MODE_OCCLUMENCY, 2, 1);
    uint64_t n = 0;
    uint8_t *stash = eng ? occ_engine_debug_stash(eng, &n) : NULL;
    CHECK(stash && n > 0);
    const float *ins[1] = {x};
    float *outs[1] = {y};
    for (int r = 0; stash && r < 12; r++) {
        /* every third run tampers with a byte somewhere in the stash */
        uint64_t at = (uint64_t)rand() % n;
        int tamper = r % 3 == 1;
        if (tamper)
            stash[at] ^= 0x10;
        for (int k = 0; k < NY; k++)
            y[k] = -1.0f;
        occ_status st = occ_engine_run(eng, (const void *const *)ins, (void *const *)outs, &e);
        if (tamper) {
            CHECK_MSG(st == OCC_ERR_INTEGRITY, "run %d: status %d", r, st);
            CHECK(y[0] == -1.0f && y[NY - 1] == -1.0f);
            stash[at] ^= 0x10;
        } else {
            CHECK_MSG(st == OCC_OK, "run %d: %s", r, e.msg);
            CHECK(max_rel_err(y, ref, NY) <= 1e-5);
        }
    }
    occ_engine_free(eng);
    free(x);
    for (int i = 0; i < 6; i++)
        free(bufs[i]);
    tb_free(&b);
}

/* Loaders asleep since create (no run at all), or between runs: free ends
 * them (ASan and the test's exit would show a leak or a hang). */
static void test_free_idle(void)
{
    tb b;
    float *bufs[6];
    fix_stream_cnn(&b, bufs);
    for (int loaders = 1; loaders <= 8; loaders *= 2)
        occ_engine_free(make(&b, OCC_MODE_OCCLUMENCY, loaders, 1));
    /* plan-only engines start no loaders */
    occ_engine *p = NULL;
    occ_error e = {0};
    occ_engine_opts o = {.threads = 1, .loader_threads = 4, .mode = OCC_MODE_OCCLUMENCY,
                         .budget = BUDGET};
    CHECK(occ_engine_plan_only(&b.m, &o, tb_read, &b, &p, &e) == OCC_OK);
    occ_engine_free(p);
    for (int i = 0; i < 6; i++)
        free(bufs[i]);
    tb_free(&b);
}

typedef struct runner {
    occ_engine *eng;
    const float *x;
    const float *ref;
    int bad;
} runner;

static void *run_many(void *arg)
{
    runner *u = arg;
    float y[NY];
    occ_error e = {0};
    for (int r = 0; r < 20; r++) {
        const float *ins[1] = {u->x};
        float *outs[1] = {y};
        if (occ_engine_run(u->eng, (const void *const *)ins, (void *const *)outs, &e) != OCC_OK ||
            max_rel_err(y, u->ref, NY) > 1e-5)
            u->bad++;
    }
    return NULL;
}

static void test_two_engines_at_once(void)
{
    tb b;
    float *bufs[6];
    fix_stream_cnn(&b, bufs);
    float *x = rand_buf(2 * NX), ref[2 * NY];
    reference(&b, x, ref, 2);
    runner u[2] = {{make(&b, OCC_MODE_OCCLUMENCY, 1, 1), x, ref, 0},
                   {make(&b, OCC_MODE_OCCLUMENCY, 2, 1), x + NX, ref + NY, 0}};
    pthread_t th[2];
    int started[2] = {0, 0};
    for (int i = 0; i < 2; i++)
        started[i] = u[i].eng && pthread_create(&th[i], NULL, run_many, &u[i]) == 0;
    for (int i = 0; i < 2; i++) {
        CHECK(started[i]);
        if (started[i])
            pthread_join(th[i], NULL);
        CHECK_MSG(u[i].bad == 0, "engine %d: %d bad runs", i, u[i].bad);
        occ_engine_free(u[i].eng);
    }
    free(x);
    for (int i = 0; i < 6; i++)
        free(bufs[i]);
    tb_free(&b);
}

int main(void)
{
    srand(11);
    RUN(test_many_runs);
    RUN(test_fail_then_clean);
    RUN(test_free_idle);
    RUN(test_two_engines_at_once);
    TEST_DONE();
}
