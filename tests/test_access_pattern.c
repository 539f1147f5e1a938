/* Access pattern (DESIGN §2, issue 4): in the emulated enclave, the sequence
 * of enclave page faults and weight-chunk loads of an inference — what a
 * controlled-channel attacker on the host observes — must not depend on the
 * input. Two different inputs to the same model, each in a fresh EPC and a
 * fresh engine, must give identical traces, in occlumency mode (the claim)
 * and in baseline mode; under a cap small enough that pages fault, and under
 * one large enough that they do not.
 *
 * Also: the emulator integration counters (baseline under a small cap pages;
 * occlumency within its budget does not, after the first inference), and a
 * control proving the comparison catches an input-dependent access.
 *
 * The model is built here (tests/test_ops_util.h): x[1,16,8,8] -> Conv(64,3x3)
 * +Relu -> Conv(64,3x3)+Relu -> Flatten -> Gemm(200), 3.4 MiB of weights in
 * 128 KiB chunks, read through the counted read_chunk ocall of a host that
 * serves the data section from memory. The compute runs on one thread so
 * that the order in
 * which pages fault is fixed by the program, not by the scheduler (the
 * emulator serializes faults from all threads in one trace, docs/emulation.md).
 * resnet50 / mobilenet_v2 are checked by bench/access_pattern.sh (too slow for
 * `make test` under ASan). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "occ/boundary_emu.h"
#include "occ/engine.h"
#include "occ/epc.h"
#include "test_ops_util.h"

static tb net;
static const occ_model *model;
#define NX (16 * 8 * 8)
#include "fixture_stream_cnn.h"
#define NY FIX_NY

/* The host: serves the data section from its memory. */
static occ_status host_read(void *host, uint32_t pack, uint64_t off, void *dst, uint64_t size,
                            occ_error *e)
{
    if (pack != 0)
        return occ_fail(e, OCC_ERR_INVALID, "no pack %u", pack);
    return tb_read(host, off, dst, size, e);
}

static void build(void)
{
    tb *b = &net;
    float *bufs[6];
    fix_stream_cnn(b, bufs);
    model = &b->m;
    for (int i = 0; i < 6; i++)
        free(bufs[i]);
}

typedef struct traced {
    char *trace[2];      /* first and second inference */
    occ_epc_stats run[2]; /* EPC counter deltas of each inference */
    float out[NY];
    int ok;
} traced;

static void on_chunk(void *ctx, uint32_t chunk)
{
    occ_epc_trace_event(ctx, "chunk", chunk);
}

static void delta(const occ_epc_stats *a, const occ_epc_stats *b, occ_epc_stats *d)
{
    memset(d, 0, sizeof *d);
    d->faults = b->faults - a->faults;
    d->first_touch = b->first_touch - a->first_touch;
    d->charged_faults = b->charged_faults - a->charged_faults;
    d->evictions = b->evictions - a->evictions;
    d->bytes_verified = b->bytes_verified - a->bytes_verified;
}

/* Runs two inferences of `x` in a fresh EPC (cap bytes) and engine; traces
 * each. `leak` plants an input-dependent page access (the control). */
static void run_traced(occ_mode mode, uint64_t cap, uint64_t budget, const float *x, int leak,
                       traced *t)
{
    memset(t, 0, sizeof *t);
    occ_error e = {0};
    occ_epc_opts eo;
    occ_epc_opts_default(&eo);
    eo.cap_size = cap;
    eo.region_size = 512ull << 20;
    eo.cost = OCC_EPC_COST_NONE; /* counted, not charged: keeps the test fast */
    occ_epc *epc = NULL;
    occ_status s = occ_epc_create(&eo, &epc, &e);
    CHECK_MSG(s == OCC_OK, "%s", e.msg);
    if (s)
        return;
    occ_ocalls host = {.host = &net, .read_chunk = host_read};
    occ_boundary *b = NULL;
    occ_boundary_opts bo = {.epc = epc};
    CHECK(occ_boundary_create(&bo, &host, NULL, &b, &e) == OCC_OK);
    occ_mem_provider mem;
    occ_epc_provider(epc, &mem);
    occ_ocall_reader rd = {occ_boundary_ocalls(b), 0};
    occ_engine_opts opts = {.threads = 1, .loader_threads = 1, .mode = mode, .budget = budget,
                            .mem = &mem, .on_chunk = on_chunk, .hook_ctx = epc};
    occ_engine *eng = NULL;
    s = occ_engine_create(model, &opts, occ_ocall_read, &rd, &eng, &e);
    CHECK_MSG(s == OCC_OK, "mode %d cap %llu budget %llu: %s", (int)mode, (unsigned long long)cap,
              (unsigned long long)budget, e.msg);
    uint8_t *probe = NULL;
    if (!s && leak)
        /* larger than any hole freed by the engine: fresh, untouched pages */
        s = occ_epc_alloc(epc, 8u << 20, (void **)&probe, &e);
    t->ok = s == OCC_OK;
    for (int r = 0; t->ok && r < 2; r++) {
        occ_epc_stats a, z;
        occ_epc_get_stats(epc, &a);
        occ_epc_trace_start(epc, NULL, 1);
        const float *ins[1] = {x};
        float *outs[1] = {t->out};
        s = occ_engine_run(eng, (const void *const *)ins, (void *const *)outs, &e);
        CHECK_MSG(s == OCC_OK, "%s", e.msg);
        if (probe) /* the planted leak: which page is touched depends on the input */
            probe[x[0] > 0 ? 0 : OCC_EPC_PAGE_SIZE] ^= 1;
        occ_epc_trace_stop(epc);
        size_t len;
        CHECK(occ_epc_trace_take(epc, &t->trace[r], &len, &e) == OCC_OK);
        occ_epc_get_stats(epc, &z);
        delta(&a, &z, &t->run[r]);
        CHECK(occ_epc_check(epc, &e) == OCC_OK);
        t->ok = t->ok && s == OCC_OK;
    }
    occ_engine_free(eng);
    occ_boundary_free(b);
    occ_epc_destroy(epc);
}

static void free_traced(traced *t)
{
    free(t->trace[0]);
    free(t->trace[1]);
}

static size_t count_lines(const char *s, const char *prefix)
{
    size_t n = 0, k = strlen(prefix);
    for (const char *p = s; p && *p;) {
        if (!strncmp(p, prefix, k))
            n++;
        const char *nl = strchr(p, '\n');
        p = nl ? nl + 1 : NULL;
    }
    return n;
}

static float x1[NX], x2[NX];

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The occlumency budget: below the weights (3.4 MiB), so some are streamed. */
static const uint64_t occ_budget = 3u << 20;

static void make_inputs(void)
{
    uint64_t st = 1;
    for (int i = 0; i < NX; i++) {
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        x1[i] = (float)((double)(st >> 11) / 9007199254740992.0 * 2.0 - 1.0);
        x2[i] = (i % 8 < 4) ? 2.0f : -1.5f; /* a very different image */
    }
    x1[0] = 0.5f; /* the control leak keys on x[0]'s sign */
    x2[0] = -0.5f;
}

/* The lines of trace t starting with prefix, in order (sorted: as a set). */
static char *project(const char *t, const char *prefix, int sorted)
{
    size_t n = 0, k = strlen(prefix), cap = 64;
    char **lines = malloc(cap * sizeof *lines);
    for (const char *p = t; lines && p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (!strncmp(p, prefix, k)) {
            if (n == cap)
                lines = realloc(lines, (cap *= 2) * sizeof *lines);
            lines[n++] = strndup(p, len);
        }
        p = nl ? nl + 1 : NULL;
    }
    if (sorted)
        qsort(lines, n, sizeof *lines, cmp_str);
    size_t total = 1;
    for (size_t i = 0; i < n; i++)
        total += strlen(lines[i]) + 1;
    char *out = calloc(total, 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        o += sprintf(o, "%s\n", lines[i]);
        free(lines[i]);
    }
    free(lines);
    return out;
}

/* Same trace for x1 and x2, both inferences. Returns the x1 result.
 * exact = 0 (several threads fault concurrently: their interleaving is the
 * scheduler's): the chunk loads in order, and the set of pages first touched,
 * must be identical. */
static void check_same_mode(const char *what, occ_mode mode, uint64_t cap, uint64_t budget, int exact,
                            traced *out1)
{
    traced a, b;
    run_traced(mode, cap, budget, x1, 0, &a);
    run_traced(mode, cap, budget, x2, 0, &b);
    CHECK_MSG(a.ok && b.ok, "%s: runs failed", what);
    if (a.ok && b.ok) {
        CHECK_MSG(memcmp(a.out, b.out, sizeof a.out) != 0, "%s: the two inputs gave the same output", what);
        for (int r = 0; r < 2 && !exact; r++) {
            char *ca = project(a.trace[r], "chunk", 0), *cb = project(b.trace[r], "chunk", 0);
            char *za = project(a.trace[r], "zero", 1), *zb = project(b.trace[r], "zero", 1);
            CHECK_MSG(ca && cb && !strcmp(ca, cb), "%s: inference %d: chunk loads differ", what, r + 1);
            CHECK_MSG(za && zb && !strcmp(za, zb), "%s: inference %d: pages first touched differ", what, r + 1);
            free(ca), free(cb), free(za), free(zb);
        }
        for (int r = 0; r < 2 && exact; r++) {
            int same = a.trace[r] && b.trace[r] && !strcmp(a.trace[r], b.trace[r]);
            CHECK_MSG(same, "%s: inference %d: traces differ (%zu vs %zu bytes)", what, r + 1,
                      a.trace[r] ? strlen(a.trace[r]) : 0, b.trace[r] ? strlen(b.trace[r]) : 0);
            if (!same && a.trace[r] && b.trace[r]) {
                const char *p = a.trace[r], *q = b.trace[r];
                while (*p && *p == *q)
                    p++, q++;
                fprintf(stderr, "  first difference at byte %zu: '%.40s' vs '%.40s'\n",
                        (size_t)(p - a.trace[r]), p, q);
            }
        }
        fprintf(stderr, "  %s: run 1: %zu events (%zu chunk, %zu fault, %zu zero); run 2: %zu events (%zu fault)\n",
                what, count_lines(a.trace[0], ""), count_lines(a.trace[0], "chunk"),
                count_lines(a.trace[0], "fault"), count_lines(a.trace[0], "zero"),
                count_lines(a.trace[1], ""), count_lines(a.trace[1], "fault"));
    }
    free_traced(&b);
    if (out1)
        *out1 = a;
    else
        free_traced(&a);
}

static void check_same(const char *what, occ_mode mode, uint64_t cap, uint64_t budget, traced *out1)
{
    check_same_mode(what, mode, cap, budget, 1, out1);
}

static void test_occlumency_paging(void)
{
    /* A cap below what the engine holds: pages fault in every inference. */
    traced t;
    /* The loader thread and the compute thread both fault here, so the
     * order of faults is the scheduler's: compare what it cannot change. */
    check_same_mode("occlumency, cap 1M < budget", OCC_MODE_OCCLUMENCY, 1 << 20, occ_budget, 0, &t);
    if (t.ok)
        CHECK_MSG(t.run[1].faults > 0, "expected reloads under a cap below the budget");
    free_traced(&t);
}

static void test_occlumency_fits(void)
{
    /* Budget within the cap: the steady state does not page at all. */
    traced t;
    check_same("occlumency, budget within cap 32M", OCC_MODE_OCCLUMENCY, 32 << 20, occ_budget, &t);
    if (t.ok) {
        CHECK_MSG(t.run[1].faults == 0 && t.run[1].charged_faults == 0 && t.run[1].evictions == 0,
                  "occlumency within its budget paged: %llu faults, %llu evictions",
                  (unsigned long long)t.run[1].faults, (unsigned long long)t.run[1].evictions);
        CHECK(count_lines(t.trace[1], "fault") == 0);
    }
    free_traced(&t);
}

static void test_baseline_pages(void)
{
    /* Baseline keeps every weight (3.4 MiB) and feature map in the enclave:
     * under a 512 KiB cap every inference pages. */
    traced t;
    check_same("baseline, cap 512K", OCC_MODE_BASELINE, 512 << 10, 0, &t);
    if (t.ok) {
        CHECK_MSG(t.run[1].faults > 100 && t.run[1].evictions > 100 && t.run[1].bytes_verified > 0,
                  "baseline under a small cap: %llu faults, %llu evictions",
                  (unsigned long long)t.run[1].faults, (unsigned long long)t.run[1].evictions);
        CHECK(count_lines(t.trace[1], "fault") > 100);
    }
    free_traced(&t);
}

static void test_control_leak_detected(void)
{
    traced a, b;
    run_traced(OCC_MODE_OCCLUMENCY, 32 << 20, occ_budget, x1, 1, &a);
    run_traced(OCC_MODE_OCCLUMENCY, 32 << 20, occ_budget, x2, 1, &b);
    CHECK(a.ok && b.ok);
    /* the planted access is a first touch of a different page: visible */
    if (a.ok && b.ok)
        CHECK_MSG(strcmp(a.trace[0], b.trace[0]) != 0, "the planted input-dependent access was not seen");
    free_traced(&a);
    free_traced(&b);
}

int main(void)
{
    build();
    CHECK(model->tensors[model->inputs[0]].size == sizeof x1);
    CHECK(model->tensors[model->outputs[0]].size == sizeof ((traced *)0)->out);
    make_inputs();
    RUN(test_occlumency_fits);
    RUN(test_occlumency_paging);
    RUN(test_baseline_pages);
    RUN(test_control_leak_detected);
    tb_free(&net);
    TEST_DONE();
}
