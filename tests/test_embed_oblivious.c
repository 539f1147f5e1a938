/* Embedding lookups and Linear layers (issue 13): a Gather of a weight table
 * by ids from the request, then a MatMul with a 2-D weight, as a
 * transformer's embedding and first projection.
 *
 *  - both stream in row pieces: occlumency under a budget below the weights
 *    runs within it and gives native's output (within 1e-5), native gives the
 *    reference;
 *  - the ids do not decide what the host sees: two different id sequences,
 *    each in a fresh EPC and engine, give the same weight-chunk load order
 *    and the same multiset of page events, under a cap that pages and one
 *    that does not, in occlumency and in baseline mode;
 *  - control: the plain Gather (occ_engine_gather_direct), which reads only
 *    the rows named, is seen by the same comparison under paging.
 *
 * The model: ids int64 [1, 16] -> Gather(table [16384, 64], 4 MiB) ->
 * MatMul(W [64, 128]) -> y [1, 16, 128]. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"
#include "occ/boundary_emu.h"
#include "occ/engine.h"
#include "occ/epc.h"
#include "test_ops_util.h"

#define V 16384
#define D 64
#define NO 128
#define NI 16
#define NY (NI * NO)

static tb net;
static float *table, *wmat;
static int64_t ids1[NI], ids2[NI];

static occ_status host_read(void *host, uint32_t pack, uint64_t off, void *dst, uint64_t size,
                            occ_error *e)
{
    if (pack != 0)
        return occ_fail(e, OCC_ERR_INVALID, "no pack %u", pack);
    return tb_read(host, off, dst, size, e);
}

static int build(void)
{
    tb *b = &net;
    tb_init(b);
    int64_t di[2] = {1, NI}, dt[2] = {V, D}, dw[2] = {D, NO};
    table = rand_buf((int64_t)V * D);
    wmat = rand_buf((int64_t)D * NO);
    int x = tb_input(b, "ids", 2, di);
    b->t[x].dtype = OCC_DTYPE_INT64;
    b->t[x].size = NI * 8u;
    int t = tb_weight(b, "table", 2, dt, table);
    int w = tb_weight(b, "w", 2, dw, wmat);
    int e1 = tb_act(b, "emb"), y = tb_act(b, "y");
    int gin[2] = {t, x}, min[2] = {e1, w};
    occ_attr ax = A_INT("axis", 0);
    tb_node(b, "Gather", 2, gin, e1, 1, &ax);
    tb_node(b, "MatMul", 2, min, y, 0, NULL);
    tb_output(b, y);
    occ_error e = {0};
    occ_status st = tb_finish(b, &e);
    CHECK_MSG(st == OCC_OK, "%s", e.msg);
    if (st)
        return 0;
    /* 256 KiB chunks, as a pack cuts them (one 4 MiB chunk would need a
     * 4 MiB load buffer, more than the budgets below) */
    const uint64_t cs = 256u << 10;
    b->m.n_chunks = 0;
    for (uint64_t off = 0; off < b->m.data_size; off += cs) {
        occ_chunk *c = &b->chunks[b->m.n_chunks++];
        c->offset = off;
        c->size = b->m.data_size - off < cs ? b->m.data_size - off : cs;
        CHECK(occ_sha256(b->data + off, (size_t)c->size, c->sha256) == 0);
    }
    return 1;
}

static void reference(const int64_t *ids, float *y)
{
    for (int i = 0; i < NI; i++)
        for (int j = 0; j < NO; j++) {
            double s = 0;
            for (int k = 0; k < D; k++)
                s += (double)table[ids[i] * D + k] * wmat[k * NO + j];
            y[i * NO + j] = (float)s;
        }
}

static occ_status run_once(occ_mode mode, uint64_t budget, const int64_t *ids, float *y,
                           occ_engine_stats *stats)
{
    occ_error e = {0};
    occ_engine_opts opts = {.threads = 1, .loader_threads = 1, .mode = mode, .budget = budget};
    occ_engine *eng = NULL;
    occ_status st = occ_engine_create(&net.m, &opts, tb_read, &net, &eng, &e);
    CHECK_MSG(st == OCC_OK, "create: %s", e.msg);
    if (st)
        return st;
    const void *ins[1] = {ids};
    void *outs[1] = {y};
    st = occ_engine_run(eng, ins, outs, &e);
    CHECK_MSG(st == OCC_OK, "run: %s", e.msg);
    occ_engine_get_stats(eng, stats);
    occ_engine_free(eng);
    return st;
}

static void test_streamed_matches(void)
{
    static float ref[NY], yn[NY], yo[NY];
    occ_engine_stats sn, so;
    reference(ids1, ref);
    if (run_once(OCC_MODE_NATIVE, 0, ids1, yn, &sn))
        return;
    CHECK_MSG(max_rel_err(yn, ref, NY) < 1e-5, "native vs reference: %g", max_rel_err(yn, ref, NY));
    const uint64_t budget = 2u << 20; /* below the 4 MiB of weights */
    if (run_once(OCC_MODE_OCCLUMENCY, budget, ids1, yo, &so))
        return;
    CHECK_MSG(max_rel_err(yo, yn, NY) < 1e-5, "occlumency vs native: %g", max_rel_err(yo, yn, NY));
    CHECK_MSG(so.peak_enclave_bytes <= budget, "peak %llu > budget %llu",
              (unsigned long long)so.peak_enclave_bytes, (unsigned long long)budget);
    CHECK_MSG(so.plan_stream_bytes >= (256u << 10), "the table should stream, %llu bytes do",
              (unsigned long long)so.plan_stream_bytes);
    /* a bad id is refused, not read */
    int64_t bad[NI];
    memcpy(bad, ids1, sizeof bad);
    bad[5] = V;
    occ_error e = {0};
    occ_engine_opts opts = {.threads = 1, .mode = OCC_MODE_OCCLUMENCY, .budget = budget};
    occ_engine *eng = NULL;
    if (occ_engine_create(&net.m, &opts, tb_read, &net, &eng, &e) == OCC_OK) {
        const void *ins[1] = {bad};
        void *outs[1] = {yo};
        CHECK(occ_engine_run(eng, ins, outs, &e) == OCC_ERR_INVALID);
        CHECK(strstr(e.msg, "index 16384") != NULL);
        occ_engine_free(eng);
    }
}

static void on_chunk(void *ctx, uint32_t chunk)
{
    occ_epc_trace_event(ctx, "chunk", chunk);
}

typedef struct traced {
    char *trace[2];  /* each inference's (the first pages in, the second is the steady state) */
    float out[NY];
    int ok;
} traced;

static void run_traced(occ_mode mode, uint64_t cap, uint64_t budget, const int64_t *ids, traced *t)
{
    memset(t, 0, sizeof *t);
    occ_error e = {0};
    occ_epc_opts eo;
    occ_epc_opts_default(&eo);
    eo.cap_size = cap;
    eo.region_size = 256ull << 20;
    eo.cost = OCC_EPC_COST_NONE;
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
    s = occ_engine_create(&net.m, &opts, occ_ocall_read, &rd, &eng, &e);
    CHECK_MSG(s == OCC_OK, "mode %d cap %llu budget %llu: %s", (int)mode,
              (unsigned long long)cap, (unsigned long long)budget, e.msg);
    t->ok = s == OCC_OK;
    for (int r = 0; t->ok && r < 2; r++) {
        occ_epc_trace_start(epc, NULL, 1);
        const void *ins[1] = {ids};
        void *outs[1] = {t->out};
        s = occ_engine_run(eng, ins, outs, &e);
        CHECK_MSG(s == OCC_OK, "%s", e.msg);
        occ_epc_trace_stop(epc);
        char *tr = NULL;
        size_t len;
        CHECK(occ_epc_trace_take(epc, &tr, &len, &e) == OCC_OK);
        t->trace[r] = tr;
        t->ok = t->ok && s == OCC_OK;
    }
    occ_engine_free(eng);
    occ_boundary_free(b);
    occ_epc_destroy(epc);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The trace's lines: the chunk events in order, then every other event
 * sorted (a multiset: the loader and compute threads may interleave). */
static char *canon(const char *t, size_t *n_events)
{
    size_t n = 0, cap = 64;
    char **lines = malloc(cap * sizeof *lines);
    size_t total = 1;
    for (const char *p = t; p && *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (n == cap)
            lines = realloc(lines, (cap *= 2) * sizeof *lines);
        lines[n++] = strndup(p, len);
        total += len + 1;
        p = nl ? nl + 1 : NULL;
    }
    size_t nc = 0; /* chunk lines first, in order */
    for (size_t i = 0; i < n; i++)
        if (!strncmp(lines[i], "chunk", 5)) {
            char *c = lines[i];
            memmove(&lines[nc + 1], &lines[nc], (i - nc) * sizeof *lines);
            lines[nc++] = c;
        }
    qsort(lines + nc, n - nc, sizeof *lines, cmp_str);
    char *out = calloc(total, 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        o += sprintf(o, "%s\n", lines[i]);
        free(lines[i]);
    }
    free(lines);
    *n_events = n;
    return out;
}

/* Keeps the chunk events and the first touches ("zero") of trace t. */
static void keep_chunks_and_first_touches(char *t)
{
    char *o = t;
    for (char *p = t; p && *p;) {
        char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) + 1 : strlen(p);
        if (!strncmp(p, "chunk", 5) || !strncmp(p, "zero", 4)) {
            memmove(o, p, len);
            o += len;
        }
        p += len;
    }
    *o = 0;
}

/* 1: same chunk order and page-event multiset for ids1 and ids2. With
 * coarse set, only the chunk order and the first touches: under a cap below
 * the budget the loader and the compute thread both fault, and which of
 * them evicts what is the scheduler's (as in test_access_pattern.c). */
static int same_trace_c(const char *what, occ_mode mode, uint64_t cap, uint64_t budget,
                        size_t *events, int coarse)
{
    traced a, b;
    run_traced(mode, cap, budget, ids1, &a);
    run_traced(mode, cap, budget, ids2, &b);
    for (int r = 0; coarse && r < 2; r++) {
        if (a.trace[r])
            keep_chunks_and_first_touches(a.trace[r]);
        if (b.trace[r])
            keep_chunks_and_first_touches(b.trace[r]);
    }
    int same = -1;
    if (a.ok && b.ok) {
        CHECK_MSG(memcmp(a.out, b.out, sizeof a.out) != 0, "%s: same output for other ids", what);
        same = 1;
        *events = 0;
        for (int r = 0; r < 2; r++) {
            size_t na, nb;
            char *ca = canon(a.trace[r], &na), *cb = canon(b.trace[r], &nb);
            same &= !strcmp(ca, cb);
            *events += na;
            fprintf(stderr, "  %s: inference %d: %zu vs %zu events, %s\n", what, r + 1, na, nb,
                    strcmp(ca, cb) ? "differ" : "same");
            free(ca);
            free(cb);
        }
    }
    for (int r = 0; r < 2; r++) {
        free(a.trace[r]);
        free(b.trace[r]);
    }
    CHECK_MSG(same >= 0, "%s: runs failed", what);
    return same == 1;
}

static int same_trace(const char *what, occ_mode mode, uint64_t cap, uint64_t budget,
                      size_t *events)
{
    return same_trace_c(what, mode, cap, budget, events, 0);
}

static void test_ids_do_not_show(void)
{
    size_t ev = 0;
    /* the table streams (budget below it) and pages fault (cap below the budget) */
    CHECK(same_trace_c("occlumency 2M, cap 1M", OCC_MODE_OCCLUMENCY, 1u << 20, 2u << 20, &ev, 1));
    CHECK_MSG(ev > 20, "expected chunk loads and first touches under a 1M cap, got %zu", ev);
    /* within the cap: no faults at all, chunk order only */
    CHECK(same_trace("occlumency 2M, cap 32M", OCC_MODE_OCCLUMENCY, 32u << 20, 2u << 20, &ev));
    /* baseline: the whole table resident and paged, each piece still swept */
    CHECK(same_trace("baseline, cap 2M", OCC_MODE_BASELINE, 2u << 20, 0, &ev));
    CHECK_MSG(ev > 100, "expected page events under a 2M cap, got %zu", ev);
}

static void test_control_direct_gather_leaks(void)
{
    size_t ev = 0;
    occ_engine_gather_direct = 1;
    CHECK_MSG(!same_trace("control: direct Gather, baseline, cap 2M", OCC_MODE_BASELINE,
                          2u << 20, 0, &ev),
              "the plain Gather's id-dependent page accesses were not seen");
    occ_engine_gather_direct = 0;
}

int main(void)
{
    for (int i = 0; i < NI; i++) {
        ids1[i] = (int64_t)((i * 977 + 13) % V);  /* spread over the table */
        ids2[i] = i % 2 ? 7 : -1;                 /* two rows, one from the end */
    }
    if (!build())
        return 1;
    RUN(test_streamed_matches);
    RUN(test_ids_do_not_show);
    RUN(test_control_direct_gather_leaks);
    tb_free(&net);
    free(table);
    free(wmat);
    TEST_DONE();
}
