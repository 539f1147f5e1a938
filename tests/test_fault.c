/* Fault injection against the engine (include/occ/fault.h), SQLite-style:
 * learn how many enclave allocations and weight reads an engine creation
 * makes, then fail each one in turn. Every injected fault must give the
 * right status (OCC_ERR_NOMEM, OCC_ERR_IO, OCC_ERR_INTEGRITY), no engine,
 * nothing leaked (LeakSanitizer at exit), and the very next creation + run
 * must give exactly the reference output. Weight reads go through the real
 * host ocall table (src/host/ocalls_file.c) over the bundled model's pack.
 *
 * Streaming: one random bit of the engine's sealed weights in untrusted
 * memory flipped for every second run (the host writing its own memory):
 * each of those runs fails with OCC_ERR_INTEGRITY and leaves the output
 * untouched, each run in between is exact; the flips are restored after.
 * Also: no enclave allocation at run time, and the OCC_FAULT grammar. */
#include "host/ocalls_file.h"
#include "occ/fault.h"
#include "occ/pack.h"
#include "server_harness.h"
#include "test_ops_util.h"

static occ_status oc_read(void *ctx, uint64_t off, void *dst, uint64_t size, occ_error *e)
{
    const occ_ocalls *o = ctx;
    return o->read_chunk(o->host, 0, off, dst, size, e);
}

static void set(const char *spec)
{
    occ_error e = {0};
    CHECK_MSG(occ_fault_set(spec, &e) == OCC_OK, "%s: %s", spec, e.msg);
}

static void test_grammar(void)
{
    occ_error e = {0};
    const char *bad[] = {"alloc", "alloc:", "alloc:0", "alloc:x", "alloc:/0", "read:short:",
                         "nope:1", "crossing:delay_ms:99999999", "alloc:1,,zz", "read:error:1+2"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_MSG(occ_fault_set(bad[i], &e) == OCC_ERR_INVALID, "accepted '%s'", bad[i]);
    set("alloc:3+");
    int fired[6];
    for (int i = 0; i < 6; i++)
        fired[i] = occ_fault_hit(OCC_FAULT_ALLOC);
    CHECK(!fired[0] && !fired[1] && fired[2] && fired[3] && fired[5]);
    set("request:alloc:/2");
    for (int i = 0; i < 6; i++)
        fired[i] = occ_fault_hit(OCC_FAULT_REQ_ALLOC);
    CHECK(!fired[0] && fired[1] && !fired[2] && fired[3] && !fired[4] && fired[5]);
    set("read:short:2,read:error:4,worker:slow_ms:0,crossing:jitter_ms:0");
    uint64_t sz = 100;
    CHECK(occ_fault_read(&sz, &e) == OCC_OK && sz == 100);
    CHECK(occ_fault_read(&sz, &e) == OCC_OK && sz == 50);
    CHECK(occ_fault_read(&sz, &e) == OCC_OK && sz == 50);
    CHECK(occ_fault_read(&sz, &e) == OCC_ERR_IO);
    CHECK(occ_fault_count(OCC_FAULT_READ_ERROR) == 4 && occ_fault_fired(OCC_FAULT_READ_SHORT) == 1);
    occ_fault_crossing();
    occ_fault_worker();
    set("");
    CHECK(!occ_fault_hit(OCC_FAULT_ALLOC) && occ_fault_count(OCC_FAULT_ALLOC) == 1);
}

typedef struct fx {
    occ_packfile *pf;
    occ_host_files files;
    occ_ocalls oc;
    occ_model *m;
    float in[28 * 28], ref[10];
} fx;

static occ_status make(fx *f, occ_mode mode, occ_engine **eng, occ_error *e)
{
    occ_engine_opts o = {.threads = 1, .mode = mode, .budget = 1u << 20};
    *eng = NULL;
    return occ_engine_create(f->m, &o, oc_read, &f->oc, eng, e);
}

/* Creates, runs once, compares with the reference. 1 = exact. */
static int works(fx *f, occ_mode mode)
{
    occ_engine *eng = NULL;
    occ_error e = {0};
    float y[10];
    const float *ins[1] = {f->in};
    float *outs[1] = {y};
    int ok = make(f, mode, &eng, &e) == OCC_OK && occ_engine_run(eng, (const void *const *)ins, (void *const *)outs, &e) == OCC_OK &&
             !memcmp(y, f->ref, sizeof y);
    if (!ok)
        fprintf(stderr, "  mode %d: %s\n", mode, e.msg);
    occ_engine_free(eng);
    return ok;
}

static void test_each_allocation_and_read(void)
{
    char dir[64], pack[256];
    const char *d = harness_tmpdir();
    CHECK(d != NULL);
    if (!d)
        return;
    snprintf(dir, sizeof dir, "%s", d);
    CHECK(harness_pack(dir, pack, sizeof pack) == 0);
    fx f = {0};
    float native[10];
    occ_error e = {0};
    CHECK_MSG(occ_packfile_open(pack, &f.pf, &e) == OCC_OK, "%s", e.msg);
    if (!f.pf)
        goto out;
    f.files = (occ_host_files){&f.pf, 1};
    occ_host_files_ocalls(&f.files, &f.oc);
    size_t msz = 0;
    const uint8_t *man = occ_packfile_manifest(f.pf, &msz);
    CHECK(occ_manifest_decode(man, msz, &f.m, &e) == OCC_OK);
    if (!f.m)
        goto out;
    for (int i = 0; i < 28 * 28; i++)
        f.in[i] = (float)((i * 37) % 255) / 255.0f;

    const occ_mode modes[3] = {OCC_MODE_NATIVE, OCC_MODE_BASELINE, OCC_MODE_OCCLUMENCY};
    int ref_done = 0;
    for (int mi = 0; mi < 3; mi++) {
        occ_mode mode = modes[mi];
        /* count what one creation and one run do */
        set("");
        occ_engine *eng = NULL;
        CHECK_MSG(make(&f, mode, &eng, &e) == OCC_OK, "mode %d: %s", mode, e.msg);
        if (!eng)
            continue;
        uint64_t allocs = occ_fault_count(OCC_FAULT_ALLOC), reads = occ_fault_count(OCC_FAULT_READ_ERROR);
        float y[10];
        const float *ins[1] = {f.in};
        float *outs[1] = {f.ref};
        CHECK(occ_engine_run(eng, (const void *const *)ins, (void *const *)outs, &e) == OCC_OK);
        outs[0] = y;
        CHECK(occ_engine_run(eng, (const void *const *)ins, (void *const *)outs, &e) == OCC_OK);
        CHECK_MSG(occ_fault_count(OCC_FAULT_ALLOC) == allocs, "mode %d: %llu enclave allocations at run time",
                  mode, (unsigned long long)(occ_fault_count(OCC_FAULT_ALLOC) - allocs));
        CHECK(!memcmp(y, f.ref, sizeof y)); /* this mode's reference: exact from now on */
        if (!ref_done)
            memcpy(native, f.ref, sizeof native);
        CHECK_MSG(max_rel_err(f.ref, native, 10) <= 1e-4, "mode %d vs native: %g", mode,
                  max_rel_err(f.ref, native, 10));
        ref_done = 1;
        occ_engine_free(eng);
        fprintf(stderr, "  mode %d: %llu enclave allocations, %llu weight reads per creation\n", mode,
                (unsigned long long)allocs, (unsigned long long)reads);
        CHECK(allocs > 3 && reads > 0);

        /* fail each allocation in turn */
        int failed = 0, absorbed = 0;
        for (uint64_t n = 1; n <= allocs; n++) {
            char spec[64];
            snprintf(spec, sizeof spec, "alloc:%llu", (unsigned long long)n);
            set(spec);
            e = (occ_error){0};
            occ_status st = make(&f, mode, &eng, &e);
            CHECK(occ_fault_fired(OCC_FAULT_ALLOC) == 1);
            if (st) {
                failed++;
                CHECK_MSG(st == OCC_ERR_NOMEM && eng == NULL && e.msg[0], "alloc %llu: status %d '%s'",
                          (unsigned long long)n, st, e.msg);
            } else {
                /* a later planning attempt may retry without the failed block: then exact */
                absorbed++;
                CHECK(occ_engine_run(eng, (const void *const *)ins, (void *const *)((float *const[]){y}), &e) == OCC_OK && !memcmp(y, f.ref, sizeof y));
                occ_engine_free(eng);
            }
            set("");
            CHECK_MSG(works(&f, mode), "mode %d: after failing allocation %llu", mode, (unsigned long long)n);
        }
        fprintf(stderr, "  mode %d: %d allocations failed their creation, %d absorbed by a retry\n", mode, failed,
                absorbed);
        CHECK(failed > 0);
        /* fail each read in turn, as an error and as a short read */
        for (uint64_t n = 1; n <= reads; n++) {
            for (int kind = 0; kind < 2; kind++) {
                char spec[64];
                snprintf(spec, sizeof spec, "read:%s:%llu", kind ? "short" : "error", (unsigned long long)n);
                set(spec);
                e = (occ_error){0};
                occ_status st = make(&f, mode, &eng, &e);
                occ_status want = kind ? OCC_ERR_INTEGRITY : OCC_ERR_IO;
                CHECK_MSG(st == want && eng == NULL, "%s: status %d '%s'", spec, st, e.msg);
                occ_engine_free(eng);
                set("");
                CHECK_MSG(works(&f, mode), "mode %d: after %s", mode, spec);
            }
        }
    }
    /* everything fails from the first: still clean */
    occ_engine *eng = NULL;
    set("alloc:1+");
    CHECK(make(&f, OCC_MODE_OCCLUMENCY, &eng, &e) == OCC_ERR_NOMEM && !eng);
    set("read:error:1+");
    CHECK(make(&f, OCC_MODE_NATIVE, &eng, &e) == OCC_ERR_IO && !eng);
    set("");
    memcpy(f.ref, native, sizeof native);
    CHECK(works(&f, OCC_MODE_NATIVE));
out:
    occ_model_free(f.m);
    if (f.pf)
        occ_packfile_close(f.pf);
    harness_rmrf(dir);
}

#include "fixture_stream_cnn.h"
#define NY FIX_NY

static void test_stash_flips(void)
{
    tb b;
    float *bufs[6];
    fix_stream_cnn(&b, bufs);
    occ_error e = {0};
    float *in = rand_buf(16 * 64), ref[NY], out[NY];
    const float *ins[1] = {in};
    float *outs[1] = {ref};
    occ_engine_opts o = {.threads = 1, .mode = OCC_MODE_OCCLUMENCY, .budget = UINT64_C(3) << 20};
    occ_engine *eng = NULL;
    set("");
    CHECK_MSG(occ_engine_create(&b.m, &o, tb_read, &b, &eng, &e) == OCC_OK, "%s", e.msg);
    uint64_t n = 0;
    uint8_t *stash = eng ? occ_engine_debug_stash(eng, &n) : NULL;
    CHECK_MSG(stash && n > 0, "nothing streamed under the budget");
    if (!stash)
        goto out;
    uint8_t *copy = malloc(n);
    memcpy(copy, stash, n);
    CHECK(occ_engine_run(eng, (const void *const *)ins, (void *const *)outs, &e) == OCC_OK);
    outs[0] = out;
    set("stash:flip:/2");
    int runs = 400, detected = 0, exact = 0;
    for (int i = 1; i <= runs; i++) {
        for (int k = 0; k < NY; k++)
            out[k] = -12345.0f;
        occ_status st = occ_engine_run(eng, (const void *const *)ins, (void *const *)outs, &e);
        int untouched = 1;
        for (int k = 0; k < NY; k++)
            untouched &= out[k] == -12345.0f;
        if (i % 2 == 0) {
            detected += st == OCC_ERR_INTEGRITY && untouched;
            if (st != OCC_ERR_INTEGRITY || !untouched)
                CHECK_MSG(0, "flip %d: status %d, output untouched %d", i / 2, st, untouched);
        } else {
            exact += st == OCC_OK && !memcmp(out, ref, sizeof out);
        }
    }
    CHECK_MSG(detected == runs / 2 && exact == runs / 2, "%d/%d flips detected, %d/%d clean runs exact",
              detected, runs / 2, exact, runs / 2);
    CHECK(occ_fault_fired(OCC_FAULT_STASH_FLIP) == (uint64_t)runs / 2);
    CHECK(!memcmp(copy, stash, n)); /* every flip restored */
    fprintf(stderr, "  %d bit flips in a %llu-byte stash: %d detected; %d runs in between exact\n", runs / 2,
            (unsigned long long)n, detected, exact);
    free(copy);
    set("");
out:
    occ_engine_free(eng);
    free(in);
    for (int i = 0; i < 6; i++)
        free(bufs[i]);
    tb_free(&b);
}

int main(void)
{
    RUN(test_grammar);
    RUN(test_each_allocation_and_read);
    RUN(test_stash_flips);
    TEST_DONE();
}
