/* Host buffers that change while the enclave reads them (issue 15, item 1).
 *
 * The host hands occ_enclave_create a pointer to the manifest in its own
 * memory. On SGX a host can change those bytes between two reads by the
 * enclave, deterministically (unmap the page, change it in the fault).
 * This test does exactly that with mprotect and a SIGSEGV handler: the
 * manifest lies across pages; every page fault makes only the faulting page
 * readable (the others PROT_NONE), so every pass over the bytes faults
 * again; the pages holding the chunk table show the attacker's table (chunk
 * 0's SHA-256 = that of a tampered chunk 0) on their first visit and the
 * genuine table on every later one.
 *
 * A decoder that parses the host's bytes and then hashes them again gets
 * the attacker's chunk table under the genuine model id: the enclave then
 * binds the genuine id into its quote and verifies the attacker's chunk.
 * Required: the id the enclave reports is the SHA-256 of exactly the table
 * it parsed and uses, whatever the host does; through occ_enclave_create a
 * server never starts under the genuine id with the tampered chunk. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <signal.h>
#include <ucontext.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "occ/crypto.h"
#include "occ/engine.h"
#include "occ/quote.h"
#include "occ/server.h"
#include "test_ops_util.h"
#include "fixture_stream_cnn.h"

/* ASan must let the test's own SIGSEGV handler see the faults. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "allow_user_segv_handler=1";
}

#define PGSZ 4096u
#define REGION_PAGES 8u

static struct {
    uint8_t *region;        /* REGION_PAGES pages */
    const uint8_t *a, *b;   /* the attacker's and the genuine manifest */
    size_t size, start;     /* manifest bytes, offset in region */
    size_t toggle_page;     /* first page whose bytes differ between a and b */
    volatile sig_atomic_t toggle_visits, faults;
    int last, prev;         /* the last two pages that faulted */
    uintptr_t last_ip, prev_ip; /* and the instructions that did */
    unsigned open;          /* pages readable now */
} hb;

/* Writes the bytes of page p as version v (0 = attacker's, 1 = genuine). */
static void fill_page(size_t p, int v)
{
    const uint8_t *src = v ? hb.b : hb.a;
    uint8_t *pg = hb.region + p * PGSZ;
    memset(pg, 0, PGSZ);
    size_t lo = p * PGSZ, hi = lo + PGSZ;
    size_t s0 = hb.start > lo ? hb.start : lo, s1 = hb.start + hb.size < hi ? hb.start + hb.size : hi;
    for (size_t i = s0; i < s1; i++)
        pg[i - lo] = src[i - hb.start];
}

static void on_segv(int sig, siginfo_t *si, void *uc)
{
    uint8_t *addr = si->si_addr;
#if defined(__x86_64__)
    uintptr_t ip = (uintptr_t)((ucontext_t *)uc)->uc_mcontext.gregs[REG_RIP];
#else
    uintptr_t ip = (uintptr_t)addr;
    (void)uc;
#endif
    if (addr < hb.region || addr >= hb.region + REGION_PAGES * PGSZ) {
        signal(sig, SIG_DFL); /* a real crash: let it happen */
        return;
    }
    int q = (int)((size_t)(addr - hb.region) / PGSZ);
    hb.faults++;
    /* one page readable at a time, so that every pass faults again; but a
     * load that spans two pages faults on q, p, q from the same
     * instruction: then both open (a new pass comes from other code) */
    unsigned open = 1u << q;
    if (hb.last >= 0 && (hb.last == q + 1 || hb.last + 1 == q) && hb.prev == q && ip == hb.last_ip &&
        ip == hb.prev_ip)
        open |= 1u << hb.last;
    mprotect(hb.region, REGION_PAGES * PGSZ, PROT_NONE);
    for (int p = 0; p < (int)REGION_PAGES; p++) {
        if (!(open & (1u << p)))
            continue;
        if (!(hb.open & (1u << p))) { /* newly opened: (re)written */
            if (p == (int)hb.toggle_page)
                hb.toggle_visits++;
            mprotect(hb.region + (size_t)p * PGSZ, PGSZ, PROT_READ | PROT_WRITE);
            /* the chunk table pages: the attacker's on their first visit, then genuine */
            fill_page((size_t)p, p >= (int)hb.toggle_page && hb.toggle_visits > 1);
        }
        mprotect(hb.region + (size_t)p * PGSZ, PGSZ, PROT_READ);
    }
    hb.open = open;
    hb.prev = hb.last;
    hb.last = q;
    hb.prev_ip = hb.last_ip;
    hb.last_ip = ip;
}

/* Lays out the two manifests (same size, differing from offset diff on) in
 * the region and arms it. Returns the manifest pointer the host hands in. */
static const uint8_t *arm(const uint8_t *a, const uint8_t *b, size_t size, size_t diff)
{
    hb.a = a;
    hb.b = b;
    hb.size = size;
    /* the first differing byte starts a page; the rest before it */
    size_t before_pages = (diff + PGSZ - 1) / PGSZ;
    hb.toggle_page = before_pages;
    hb.start = before_pages * PGSZ - diff;
    hb.toggle_visits = hb.faults = 0;
    hb.last = hb.prev = -1;
    hb.open = 0;
    mprotect(hb.region, REGION_PAGES * PGSZ, PROT_NONE);
    return hb.region + hb.start;
}

static void disarm(void)
{
    mprotect(hb.region, REGION_PAGES * PGSZ, PROT_READ | PROT_WRITE);
}

static tb cnn;
static uint8_t *evil_data; /* the weights with chunk 0 tampered */

static int serve_genuine; /* else the host serves the attacker's chunk 0 */
static occ_status h_read(void *h, uint32_t pack, uint64_t off, void *dst, uint64_t size, occ_error *e)
{
    (void)h;
    (void)pack;
    if (off > cnn.m.data_size || size > cnn.m.data_size - off)
        return occ_fail(e, OCC_ERR_IO, "read out of range");
    memcpy(dst, (serve_genuine ? cnn.data : evil_data) + off, size);
    return OCC_OK;
}

/* the host's untrusted memory: counted; or (lie) a block inside the enclave */
static int ua_calls, ua_lie;
static uint8_t fake_enclave[1 << 20];
static void *h_alloc_untrusted(void *h, size_t size)
{
    (void)h;
    ua_calls++;
    if (ua_lie) /* never written: the enclave refuses it first */
        return fake_enclave + 4096;
    return malloc(size);
}
static void h_free_untrusted(void *h, void *p)
{
    (void)h;
    if ((uint8_t *)p < fake_enclave || (uint8_t *)p >= fake_enclave + sizeof fake_enclave)
        free(p);
}

/* the host's metrics lines: untrusted text */
static size_t h_metrics(void *h, char *dst, size_t cap)
{
    (void)h;
    static const char txt[] = "host_x 1\n\x1b[31mred\xff\r\n";
    size_t n = sizeof txt - 1 < cap ? sizeof txt - 1 : cap;
    memcpy(dst, txt, n);
    return n;
}
static occ_status h_send(void *h, uint64_t conn, const void *buf, size_t size, occ_error *e)
{
    (void)h, (void)conn, (void)buf, (void)size, (void)e;
    return OCC_OK;
}
static void h_close(void *h, uint64_t conn)
{
    (void)h, (void)conn;
}
static void hook(void *ctx, uint32_t chunk)
{
    (void)ctx, (void)chunk;
}
static occ_emu_provider *g_prov;
static occ_status h_quote(void *h, const uint8_t rd[64], uint8_t *dst, size_t cap, size_t *size, occ_error *e)
{
    (void)h;
    uint8_t *q = NULL;
    size_t n = 0;
    occ_status st = occ_emu_quote_provider(g_prov, rd, &q, &n, e);
    if (!st && n > cap)
        st = occ_fail(e, OCC_ERR_FORMAT, "quote too large");
    if (!st)
        memcpy(dst, q, n);
    *size = st ? 0 : n;
    free(q);
    return st;
}
static uint64_t h_now(void *h)
{
    (void)h;
    return 1000000000ull;
}

int main(void)
{
    hb.region = mmap(NULL, REGION_PAGES * PGSZ, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(hb.region != MAP_FAILED);
    struct sigaction sa = {0};
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGSEGV, &sa, NULL) == 0);

    float *bufs[6];
    fix_stream_cnn(&cnn, bufs);
    occ_error e = {0};
    /* the genuine manifest, and the attacker's: chunk 0's hash is that of a
     * tampered chunk 0 (same size, so the layout is the same) */
    uint8_t *good = NULL, *bad = NULL;
    size_t gsize = 0, bsize = 0;
    CHECK_MSG(occ_manifest_encode(&cnn.m, &good, &gsize, &e) == OCC_OK, "%s", e.msg);
    evil_data = malloc(cnn.m.data_size);
    memcpy(evil_data, cnn.data, cnn.m.data_size);
    evil_data[cnn.chunks[0].offset] ^= 0x40;
    occ_chunk saved = cnn.chunks[0];
    CHECK(occ_sha256(evil_data + cnn.chunks[0].offset, (size_t)cnn.chunks[0].size, cnn.chunks[0].sha256) == OCC_OK);
    CHECK_MSG(occ_manifest_encode(&cnn.m, &bad, &bsize, &e) == OCC_OK, "%s", e.msg);
    cnn.chunks[0] = saved;
    CHECK(good && bad && gsize == bsize);
    size_t diff = 0;
    while (diff < gsize && good[diff] == bad[diff])
        diff++;
    CHECK(diff < gsize && diff + PGSZ < REGION_PAGES * PGSZ && gsize - diff < 4 * PGSZ);
    uint8_t genuine_id[32], attacker_id[32];
    CHECK(occ_sha256(good, gsize, genuine_id) == OCC_OK);
    CHECK(occ_sha256(bad, bsize, attacker_id) == OCC_OK);

    /* 1. the trusted decoder on the changing buffer */
    const uint8_t *man = arm(bad, good, gsize, diff);
    occ_model *m = NULL;
    occ_status st = occ_manifest_decode(man, gsize, &m, &e);
    disarm();
    CHECK_MSG(hb.toggle_visits >= 1, "the chunk table pages were never read (%d faults)", (int)hb.faults);
    CHECK_MSG(st == OCC_OK, "%s", e.msg);
    fprintf(stderr, "decode: %d faults, %d visits of the chunk table page %zu (manifest %zu bytes at %zu, table from %zu)\n",
            (int)hb.faults, (int)hb.toggle_visits, hb.toggle_page, hb.size, hb.start, diff);
    if (m) {
        /* the id is the hash of exactly the table it parsed */
        int genuine = !memcmp(m->model_id, genuine_id, 32), attacker = !memcmp(m->model_id, attacker_id, 32);
        int table_good = !memcmp(m->chunks[0].sha256, saved.sha256, 32);
        CHECK_MSG(!genuine || table_good, "the genuine model id over the attacker's chunk table (%d faults)",
                  (int)hb.faults);
        CHECK_MSG(!attacker || !table_good, "the attacker's model id over the genuine table");
        occ_model_free(m);
    }

    /* 2. through the enclave: a server must never start under the genuine
     * id while it verifies chunks against the attacker's table */
    char dirbuf[64] = "/tmp/occ-hb-XXXXXX";
    const char *dir = mkdtemp(dirbuf);
    char emu[300];
    snprintf(emu, sizeof emu, "%s/emu", dir ? dir : "/tmp");
    occ_emu_provider prov = {0};
    CHECK(dir && occ_emu_quote_open(emu, &prov.quoter, &e) == OCC_OK);
    CHECK(occ_emu_identity_default(prov.quoter, &prov.identity, &e) == OCC_OK);
    g_prov = &prov;
    occ_ocalls oc = {.read_chunk = h_read, .send = h_send, .close = h_close, .now_ns = h_now, .get_quote = h_quote};
    man = arm(bad, good, gsize, diff);
    occ_server_model sm = {"cnn", 0, man, gsize};
    occ_enclave_config cfg = {0};
    cfg.models = &sm;
    cfg.n_models = 1;
    cfg.engine.threads = 1;
    cfg.max_batch = 1;
    occ_enclave *enc = NULL;
    st = occ_enclave_create(&cfg, &oc, &enc, &e);
    disarm();
    CHECK(hb.toggle_visits >= 1);
    if (st == OCC_OK) {
        uint8_t bound[32];
        occ_enclave_binding(enc, bound);
        CHECK_MSG(memcmp(bound, genuine_id, 32),
                  "the enclave started under the genuine model id with the attacker's chunk 0");
        occ_enclave_free(enc);
    } else {
        CHECK_MSG(st == OCC_ERR_INTEGRITY, "refused, but not by the chunk check: %s", e.msg);
    }
    /* a host-chosen model name lands in URLs, JSON and metrics labels:
     * quotes, backslashes and control characters are refused */
    static const char *const bad_names[] = {"fm\"x", "a\\b", "a\nb", "a/b", ""};
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        occ_server_model bn = {bad_names[i], 0, good, gsize};
        occ_enclave_config bc = cfg;
        bc.models = &bn;
        enc = NULL;
        e = (occ_error){0};
        CHECK_MSG(occ_enclave_create(&bc, &oc, &enc, &e) == OCC_ERR_INVALID && strstr(e.msg, "model name"),
                  "name %zu accepted: %s", i, e.msg);
        occ_enclave_free(enc);
    }
    /* a function pointer the host hands in would run inside the enclave */
    {
        occ_server_model gm = {"cnn", 0, good, gsize};
        occ_enclave_config hc = cfg;
        hc.models = &gm;
        hc.engine.on_chunk = hook;
        enc = NULL;
        e = (occ_error){0};
        CHECK(occ_enclave_create(&hc, &oc, &enc, &e) == OCC_ERR_INVALID && strstr(e.msg, "on_chunk"));
        occ_enclave_free(enc);
    }
    /* the quote comes through the get_quote ocall (none: refused), the
     * host's metrics through the metrics ocall, kept to printable ASCII */
    {
        occ_server_model gm = {"cnn", 0, good, gsize};
        occ_enclave_config gc = cfg;
        gc.models = &gm;
        occ_ocalls noq = oc;
        noq.get_quote = NULL;
        enc = NULL;
        e = (occ_error){0};
        CHECK(occ_enclave_create(&gc, &noq, &enc, &e) == OCC_ERR_INVALID && strstr(e.msg, "get_quote"));
        occ_enclave_free(enc);
        occ_ocalls withm = oc;
        withm.metrics = h_metrics;
        serve_genuine = 1;
        enc = NULL;
        e = (occ_error){0};
        CHECK_MSG(occ_enclave_create(&gc, &withm, &enc, &e) == OCC_OK, "%s", e.msg);
        char *text = enc ? occ_enclave_metrics(enc) : NULL;
        CHECK_MSG(text && strstr(text, "host_x 1\n?[31mred??\n") && !strchr(text, '\x1b'), "%s",
                  text ? strstr(text, "host_x") : "(none)");
        free(text);
        occ_enclave_free(enc);
        serve_genuine = 0;
    }
    /* the engine's sealed weight stash comes from the host (an ocall), and
     * a range inside the enclave is refused */
    {
        occ_server_model gm = {"cnn", 0, good, gsize};
        occ_enclave_config sc = cfg;
        sc.models = &gm;
        sc.engine.mode = OCC_MODE_OCCLUMENCY;
        sc.engine.budget = UINT64_C(3) << 20; /* streams: a stash */
        occ_ocalls uo = oc;
        uo.alloc_untrusted = h_alloc_untrusted;
        uo.free_untrusted = h_free_untrusted;
        serve_genuine = 1;
        ua_calls = ua_lie = 0;
        enc = NULL;
        e = (occ_error){0};
        CHECK_MSG(occ_enclave_create(&sc, &uo, &enc, &e) == OCC_OK, "%s", e.msg);
        CHECK_MSG(ua_calls >= 1, "the stash did not come from the alloc_untrusted ocall (%d calls)", ua_calls);
        occ_enclave_free(enc);
        occ_enclave_range_set(fake_enclave, sizeof fake_enclave); /* as the emulated CPU would */
        ua_calls = 0;
        ua_lie = 1;
        enc = NULL;
        e = (occ_error){0};
        CHECK_MSG(occ_enclave_create(&sc, &uo, &enc, &e) != OCC_OK && ua_calls >= 1,
                  "a stash inside the enclave was accepted (%d calls)", ua_calls);
        occ_enclave_free(enc);
        occ_enclave_range_set(NULL, 0);
        ua_lie = 0;
        serve_genuine = 0;
    }
    /* control: the same host, buffer not changing, tampered chunk: refused */
    e = (occ_error){0};
    sm.manifest = good;
    enc = NULL;
    CHECK(occ_enclave_create(&cfg, &oc, &enc, &e) == OCC_ERR_INTEGRITY);
    occ_enclave_free(enc);

    occ_emu_quote_close(prov.quoter);
    if (dir) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        CHECK(system(cmd) == 0);
    }
    free(good);
    free(bad);
    free(evil_data);
    for (int i = 0; i < 6; i++)
        free(bufs[i]);
    tb_free(&cnn);
    munmap(hb.region, REGION_PAGES * PGSZ);
    TEST_DONE();
}
