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
 *    pool), each with its own loaders;
 *  - the ring alone (stream.c's functions on a hand-made engine of NSEG
 *    segments of odd sizes, no model, no kernels): every position delivers
 *    exactly its segment's bytes, hooks fire in position order, with 0..4
 *    loaders besides the consumer; a tampered position fails that run and
 *    only that one. */
#include <pthread.h>

#include "test_ops_util.h"

#include "engine/exec_int.h"
#include <openssl/evp.h>

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

/* ---- the ring on a hand-made engine ---- */

#define NSEG 23

typedef struct ringfix {
    occ_engine eng;
    occ_model m;
    step st;
    occ_node node;
    seg segs[NSEG];
    uint32_t order[NSEG];
    uint8_t *plain[NSEG];
    uint8_t key[32];
    uint32_t hooks[NSEG], n_hooks;
} ringfix;

static void ring_hook(void *ctx, uint32_t k)
{
    ringfix *f = ctx;
    if (f->n_hooks < NSEG)
        f->hooks[f->n_hooks] = k;
    f->n_hooks++;
}

static int ringfix_make(ringfix *f, uint32_t slots, int loaders)
{
    memset(f, 0, sizeof *f);
    occ_engine *eng = &f->eng;
    occ_error e = {0};
    for (int i = 0; i < 32; i++)
        f->m.model_id[i] = (uint8_t)(i * 7 + 1);
    f->m.nodes = &f->node;
    f->m.n_nodes = 1;
    eng->m = &f->m;
    eng->steps = &f->st;
    eng->n_steps = 1;
    eng->segs = f->segs;
    eng->n_segs = NSEG;
    eng->streamed = f->order;
    eng->n_streamed = NSEG;
    eng->on_chunk = ring_hook;
    eng->hook_ctx = f;
    for (int i = 0; i < 32; i++)
        f->key[i] = (uint8_t)rand();
    eng->key = f->key;
    eng->mac_alg = EVP_MAC_fetch(NULL, "POLY1305", NULL);
    pthread_mutex_init(&eng->ring.mu, NULL);
    pthread_cond_init(&eng->ring.cv, NULL);
    eng->ring.eng = eng;
    /* sizes from 1 byte to a few pieces of 64 KiB, offsets packed */
    uint64_t off = 0, max = 0;
    for (uint32_t g = 0; g < NSEG; g++) {
        uint64_t size = g == 0 ? 1 : (uint64_t)(rand() % (200 << 10)) + 1;
        f->segs[g] = (seg){.size = size, .ct_off = off, .streamed = 1};
        f->order[g] = g;
        off += size;
        max = size > max ? size : max;
    }
    eng->stash_size = off;
    eng->stash = malloc((size_t)off);
    eng->window_slot = max;
    eng->ring.slots = slots;
    eng->ring.slot = calloc(slots, sizeof *eng->ring.slot);
    eng->ring.ready = calloc(slots, sizeof *eng->ring.ready);
    segmac *c = occ_eng_segmac_new(eng);
    int ok = eng->mac_alg && eng->stash && eng->ring.slot && eng->ring.ready && c;
    for (uint32_t i = 0; ok && i < slots; i++)
        ok = (eng->ring.slot[i] = malloc((size_t)max)) != NULL;
    for (uint32_t g = 0; ok && g < NSEG; g++) {
        seg *s = &f->segs[g];
        f->plain[g] = malloc((size_t)s->size);
        uint8_t *tmp = malloc((size_t)s->size);
        ok = f->plain[g] && tmp;
        for (uint64_t k = 0; ok && k < s->size; k++)
            f->plain[g][k] = tmp[k] = (uint8_t)rand();
        ok = ok && occ_eng_seal(eng, c, g, tmp, s->size, eng->stash + s->ct_off, s->tag, &e) == OCC_OK;
        free(tmp);
    }
    occ_eng_segmac_free(c);
    ok = ok && (eng->help_ctx = occ_eng_segmac_new(eng)) != NULL;
    ok = ok && occ_eng_loaders_start(eng, (uint32_t)loaders, &e) == OCC_OK;
    CHECK_MSG(ok, "ring fixture: %s", e.msg);
    return ok;
}

static void ringfix_free(ringfix *f)
{
    occ_engine *eng = &f->eng;
    occ_eng_loaders_quit(eng);
    occ_eng_segmac_free(eng->help_ctx);
    for (uint32_t i = 0; eng->ring.slot && i < eng->ring.slots; i++)
        free(eng->ring.slot[i]);
    free(eng->ring.slot);
    free(eng->ring.ready);
    for (uint32_t g = 0; g < NSEG; g++)
        free(f->plain[g]);
    free(eng->stash);
    EVP_MAC_free(eng->mac_alg);
    pthread_mutex_destroy(&eng->ring.mu);
    pthread_cond_destroy(&eng->ring.cv);
}

/* One run over the ring: returns the position that failed (-1: none). */
static int ring_run(ringfix *f, int check_bytes)
{
    occ_engine *eng = &f->eng;
    occ_error e = {0};
    int failed = -1;
    f->n_hooks = 0;
    occ_eng_ring_begin(eng, NSEG, NSEG, 0);
    for (uint32_t pos = 0; pos < NSEG; pos++) {
        const uint8_t *p = occ_eng_ring_get(eng, pos, &e);
        if (!p) {
            failed = (int)pos;
            break;
        }
        if (check_bytes)
            CHECK_MSG(memcmp(p, f->plain[pos], (size_t)f->segs[pos].size) == 0,
                      "position %u: wrong bytes", pos);
        occ_eng_ring_release(eng, pos);
    }
    occ_eng_ring_end(eng);
    return failed;
}

static void test_ring_direct(void)
{
    for (int loaders = 0; loaders <= 4; loaders++)
        for (uint32_t slots = 1; slots <= 5; slots += 2) {
            ringfix *f = malloc(sizeof *f);
            if (!f || !ringfix_make(f, slots, loaders)) {
                if (f)
                    ringfix_free(f);
                free(f);
                continue;
            }
            for (int r = 0; r < 6; r++) {
                CHECK_MSG(ring_run(f, 1) == -1, "loaders %d slots %u run %d", loaders, slots, r);
                CHECK(f->n_hooks == NSEG);
                for (uint32_t k = 0; k < NSEG && k < f->n_hooks; k++)
                    CHECK_MSG(f->hooks[k] == k, "hook %u was segment %u", k, f->hooks[k]);
            }
            /* tamper with one segment's last byte: that run fails at or
             * before its position, the next run is whole again */
            uint32_t g = (uint32_t)rand() % NSEG;
            uint8_t *b = f->eng.stash + f->segs[g].ct_off + f->segs[g].size - 1;
            *b ^= 1;
            int at = ring_run(f, 0);
            CHECK_MSG(at >= 0 && at <= (int)g, "tampered segment %u: failed at %d", g, at);
            *b ^= 1;
            CHECK(ring_run(f, 1) == -1);
            ringfix_free(f);
            free(f);
        }
}

int main(void)
{
    srand(11);
    RUN(test_many_runs);
    RUN(test_fail_then_clean);
    RUN(test_free_idle);
    RUN(test_two_engines_at_once);
    RUN(test_ring_direct);
    TEST_DONE();
}
