/* EPC emulator: see include/occ/epc.h and docs/emulation.md.
 *
 * Structure:
 *   - the region: one anonymous private mapping registered with userfaultfd
 *     (missing + write-protect faults); a handler thread per EPC serves the
 *     faults, serialized by pg_lock (as the SGX driver serializes faults of
 *     one enclave under its enclave lock);
 *   - trusted metadata (state and version of each page, the FIFO of resident
 *     pages, the key) lives in ordinary process memory: it models what the
 *     CPU keeps inside the EPC/EPCM and the VA pages;
 *   - untrusted backing: ciphertext pages and their nonce || tag ("PCMD"),
 *     in separate mappings that the host could read and write at will.
 *
 * Eviction of page v (EWB): write-protect v (writers now block in a uffd
 * write-protect fault, so no store is lost while v is being sealed), seal it
 * with AES-256-GCM (AAD = page index || version), drop it with
 * MADV_DONTNEED. Reload (ELDU): authenticate and decrypt into a staging page,
 * UFFDIO_COPY it in, which also wakes every thread waiting on that page. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <linux/userfaultfd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define OCC_EPC_HAVE_TSC 1
#endif

#include "occ/epc.h"
#include "occ/fault.h"

#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif
#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif

#define PG 4096u
#define NONCE_LEN 12
#define TAG_LEN 16
#define META_SIZE 32 /* nonce(12) || tag(16) || pad(4) */
#define MIN_CAP_PAGES 4
/* Pages evicted at once when the EPC is full, as the SGX driver reclaims in
 * batches (SGX_NR_TO_SCAN = 16): one write-protect and one MADV_DONTNEED per
 * contiguous run instead of per page, each of which flushes the TLB of every
 * CPU running a thread of the process (an IPI round, costly in a VM). */
#define EVICT_BATCH_MAX 16
/* Below this cap (pages) the default batch is 1: a batch is then a visible
 * share of the EPC, and the small-cap tests script exact FIFO behaviour. */
#define EVICT_BATCH_MIN_CAP 4096
/* Charged faults whose thread is still held until its deadline. */
#define PEND_MAX 64
/* After serving a fault the handler polls the userfaultfd this long before
 * it sleeps in poll(2): faults come in streams, and waking a sleeping
 * handler (and its idle vCPU) costs more than the fault's own work. */
#define SPIN_WINDOW_NS 50000ull
/* Probe faults taken at create to measure the round trip around the handler. */
#define PROBE_PAGES 48

enum { PG_UNTOUCHED = 0, PG_RESIDENT = 1, PG_EVICTED = 2 };

typedef struct ext {
    uint64_t start, n; /* pages */
    uint64_t req;      /* requested bytes (used list only) */
} ext;

struct occ_epc {
    uint8_t *base;
    uint64_t region_size, npages, cap_pages;
    int paged;

    /* cost model */
    uint64_t fault_cycles, transition_cycles;
    double ghz;

    /* pager (valid when paged) */
    int uffd, stop_fd;
    pthread_t thr;
    int thr_started;
    pthread_mutex_t pg_lock;
    uint8_t *state;     /* trusted: per page */
    uint64_t *version;  /* trusted: per page, bumped at each eviction */
    uint32_t *fifo;     /* trusted: resident pages, oldest first (ring) */
    uint64_t fifo_head, fifo_len;
    uint8_t *bk_ct;     /* untrusted: sealed pages */
    uint8_t *bk_meta;   /* untrusted: nonce || tag per page */
    uint8_t key[32];
    uint8_t nonce_salt[4];
    uint64_t nonce_ctr;
    EVP_CIPHER_CTX *enc, *dec;
    unsigned evict_batch;
    uint64_t evict_credit; /* slots freed by paging evictions, not yet taken */
    uint64_t fault_ns;     /* the model's cost of one fault                  */
    uint64_t rt_ns;        /* measured round trip outside the handler         */
    struct pend {
        uint64_t page, t_recv, t_ready, deadline;
    } pend[PEND_MAX];      /* handler thread only: faults held to their cost  */
    unsigned pend_head, pend_len;
    _Atomic uintptr_t probe; /* PROBE_PAGES, registered with the uffd at create */
    _Atomic uint64_t probe_handle_ns;
    _Atomic int stopping;
    uint8_t *staging;   /* trusted: one page */
    uint8_t *ct_stage;  /* trusted: the sealed copy being reloaded, read once from backing */
    void (*on_lost)(void *);
    void *lost_ctx;

    /* counters */
    _Atomic uint64_t faults, first_touch, charged_faults, evictions, bytes_enc,
        bytes_ver, integrity_failures, transitions, charged_cycles, charged_ns,
        resident, service_ns, handle_ns, wait_ns, excess_ns, overrun_faults, evict_runs;
    _Atomic uint64_t first_bad_page;
    _Atomic int internal_err;

    /* allocator */
    pthread_mutex_t al_lock;
    ext *fl;   /* free extents, sorted by start */
    size_t nfl, capfl;
    ext *ul;   /* live allocations, sorted by start */
    size_t nul, capul;
    uint64_t allocated, peak_allocated, requested;

    /* trace */
    pthread_mutex_t tr_lock;
    _Atomic int tr_on;
    FILE *tr_file;
    int tr_mem;
    char *tr_buf;
    size_t tr_len, tr_cap;
};

/* ---------------------------------------------------------------- time */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline void cpu_relax(void)
{
#ifdef OCC_EPC_HAVE_TSC
    _mm_pause();
#endif
}

static void spin_ns(uint64_t ns)
{
    if (!ns)
        return;
    uint64_t t0 = now_ns();
    while (now_ns() - t0 < ns)
        cpu_relax();
}

static pthread_once_t tsc_once = PTHREAD_ONCE_INIT;
static double tsc_ghz = 3.0;

static void calibrate_tsc(void)
{
#ifdef OCC_EPC_HAVE_TSC
    uint64_t t0 = now_ns();
    uint64_t c0 = __rdtsc();
    struct timespec d = {0, 20 * 1000 * 1000};
    nanosleep(&d, NULL);
    uint64_t c1 = __rdtsc();
    uint64_t t1 = now_ns();
    if (t1 > t0 && c1 > c0) {
        double g = (double)(c1 - c0) / (double)(t1 - t0);
        if (g > 0.2 && g < 10.0)
            tsc_ghz = g;
    }
#endif
}

static void charge(occ_epc *epc, uint64_t cycles)
{
    if (!cycles)
        return;
    uint64_t ns = (uint64_t)((double)cycles / epc->ghz + 0.5);
    atomic_fetch_add_explicit(&epc->charged_cycles, cycles, memory_order_relaxed);
    atomic_fetch_add_explicit(&epc->charged_ns, ns, memory_order_relaxed);
    spin_ns(ns);
}

/* ---------------------------------------------------------------- trace */

static void trace_line(occ_epc *epc, const char *kind, uint64_t idx)
{
    if (!atomic_load_explicit(&epc->tr_on, memory_order_acquire))
        return;
    char line[80];
    int n = snprintf(line, sizeof line, "%.40s %llu\n", kind, (unsigned long long)idx);
    if (n <= 0)
        return;
    pthread_mutex_lock(&epc->tr_lock);
    if (epc->tr_file)
        fwrite(line, 1, (size_t)n, epc->tr_file);
    if (epc->tr_mem) {
        if (epc->tr_len + (size_t)n + 1 > epc->tr_cap) {
            size_t nc = epc->tr_cap ? epc->tr_cap * 2 : 4096;
            while (nc < epc->tr_len + (size_t)n + 1)
                nc *= 2;
            char *nb = realloc(epc->tr_buf, nc);
            if (!nb) {
                pthread_mutex_unlock(&epc->tr_lock);
                return; /* trace truncated; the paging itself is unaffected */
            }
            epc->tr_buf = nb;
            epc->tr_cap = nc;
        }
        memcpy(epc->tr_buf + epc->tr_len, line, (size_t)n);
        epc->tr_len += (size_t)n;
        epc->tr_buf[epc->tr_len] = '\0';
    }
    pthread_mutex_unlock(&epc->tr_lock);
}

void occ_epc_trace_event(occ_epc *epc, const char *kind, uint64_t idx)
{
    if (epc && kind)
        trace_line(epc, kind, idx);
}

void occ_epc_trace_start(occ_epc *epc, FILE *file, int memory)
{
    if (!epc)
        return;
    pthread_mutex_lock(&epc->tr_lock);
    epc->tr_file = file;
    epc->tr_mem = memory != 0;
    atomic_store_explicit(&epc->tr_on, file != NULL || memory, memory_order_release);
    pthread_mutex_unlock(&epc->tr_lock);
}

void occ_epc_trace_stop(occ_epc *epc)
{
    if (!epc)
        return;
    pthread_mutex_lock(&epc->tr_lock);
    atomic_store_explicit(&epc->tr_on, 0, memory_order_release);
    if (epc->tr_file)
        fflush(epc->tr_file);
    epc->tr_file = NULL;
    epc->tr_mem = 0;
    pthread_mutex_unlock(&epc->tr_lock);
}

occ_status occ_epc_trace_take(occ_epc *epc, char **out, size_t *len, occ_error *e)
{
    if (!epc || !out)
        return occ_fail(e, OCC_ERR_INVALID, "epc trace: null argument");
    pthread_mutex_lock(&epc->tr_lock);
    char *b = epc->tr_buf;
    size_t n = epc->tr_len;
    epc->tr_buf = NULL;
    epc->tr_len = epc->tr_cap = 0;
    pthread_mutex_unlock(&epc->tr_lock);
    if (!b) {
        b = malloc(1);
        if (!b)
            return occ_fail(e, OCC_ERR_NOMEM, "epc trace: out of memory");
        b[0] = '\0';
        n = 0;
    }
    *out = b;
    if (len)
        *len = n;
    return OCC_OK;
}

/* ---------------------------------------------------------------- sealing */

static void make_aad(uint8_t aad[16], uint64_t page, uint64_t version)
{
    for (int i = 0; i < 8; i++) {
        aad[i] = (uint8_t)(page >> (8 * i));
        aad[8 + i] = (uint8_t)(version >> (8 * i));
    }
}

/* Seals page p (its plaintext at base + p*PG) into the backing store. */
static int seal_page(occ_epc *epc, uint64_t p)
{
    uint8_t nonce[NONCE_LEN], aad[16], tag[TAG_LEN];
    uint64_t ctr = ++epc->nonce_ctr; /* never repeats under this key */
    memcpy(nonce, epc->nonce_salt, 4);
    for (int i = 0; i < 8; i++)
        nonce[4 + i] = (uint8_t)(ctr >> (8 * i));
    uint64_t ver = ++epc->version[p];
    make_aad(aad, p, ver);
    uint8_t *ct = epc->bk_ct + p * PG;
    int l = 0, l2 = 0;
    if (EVP_EncryptInit_ex(epc->enc, NULL, NULL, NULL, nonce) != 1 ||
        EVP_EncryptUpdate(epc->enc, NULL, &l, aad, sizeof aad) != 1 ||
        EVP_EncryptUpdate(epc->enc, ct, &l, epc->base + p * PG, (int)PG) != 1 ||
        EVP_EncryptFinal_ex(epc->enc, ct + l, &l2) != 1 ||
        EVP_CIPHER_CTX_ctrl(epc->enc, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) != 1)
        return -1;
    uint8_t *m = epc->bk_meta + p * META_SIZE;
    memcpy(m, nonce, NONCE_LEN);
    memcpy(m + NONCE_LEN, tag, TAG_LEN);
    return 0;
}

/* Authenticates and decrypts page p into staging; 0 ok, -1 failure (staging
 * is then all zeros). Reads the untrusted copy once. */
static int unseal_page(occ_epc *epc, uint64_t p)
{
    uint8_t meta[META_SIZE], aad[16];
    /* the host's memory is read once: tag, nonce and ciphertext are copied
     * in, then authenticated and decrypted where the host cannot reach */
    memcpy(meta, epc->bk_meta + p * META_SIZE, META_SIZE);
    memcpy(epc->ct_stage, epc->bk_ct + p * PG, PG);
    make_aad(aad, p, epc->version[p]);
    int l = 0, l2 = 0;
    int ok = EVP_DecryptInit_ex(epc->dec, NULL, NULL, NULL, meta) == 1 &&
             EVP_DecryptUpdate(epc->dec, NULL, &l, aad, sizeof aad) == 1 &&
             EVP_DecryptUpdate(epc->dec, epc->staging, &l, epc->ct_stage, (int)PG) == 1 &&
             EVP_CIPHER_CTX_ctrl(epc->dec, EVP_CTRL_GCM_SET_TAG, TAG_LEN, meta + NONCE_LEN) == 1 &&
             EVP_DecryptFinal_ex(epc->dec, epc->staging + l, &l2) == 1;
    if (!ok) {
        OPENSSL_cleanse(epc->staging, PG);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- pager */

static void note_internal(occ_epc *epc, int err)
{
    int zero = 0;
    atomic_compare_exchange_strong(&epc->internal_err, &zero, err ? err : EIO);
}

static void uffd_wake(occ_epc *epc, uint64_t p)
{
    struct uffdio_range r = {.start = (uint64_t)(uintptr_t)(epc->base + p * PG), .len = PG};
    if (ioctl(epc->uffd, UFFDIO_WAKE, &r) != 0)
        note_internal(epc, errno);
}

/* Write-protects (wp = 1) or drops (wp = 0) pages [start, start + n). */
static void range_op(occ_epc *epc, uint64_t start, uint64_t n, int wp)
{
    uint8_t *addr = epc->base + start * PG;
    if (wp) {
        struct uffdio_writeprotect w = {
            .range = {.start = (uint64_t)(uintptr_t)addr, .len = n * PG},
            .mode = UFFDIO_WRITEPROTECT_MODE_WP,
        };
        if (ioctl(epc->uffd, UFFDIO_WRITEPROTECT, &w) != 0)
            note_internal(epc, errno);
    } else if (madvise(addr, n * PG, MADV_DONTNEED) != 0) {
        note_internal(epc, errno);
    }
}

/* Evicts up to `want` of the oldest resident pages (EWB). Caller holds
 * pg_lock. Every victim is write-protected before any is sealed (so a
 * concurrent writer blocks instead of losing a store), sealed, then all are
 * dropped; neighbours share one system call per step. Returns the count. */
static unsigned evict_batch(occ_epc *epc, unsigned want)
{
    uint64_t v[EVICT_BATCH_MAX];
    unsigned n = 0;
    if (want > EVICT_BATCH_MAX)
        want = EVICT_BATCH_MAX;
    while (n < want && epc->fifo_len) {
        v[n++] = epc->fifo[epc->fifo_head];
        epc->fifo_head = (epc->fifo_head + 1) % epc->cap_pages;
        epc->fifo_len--;
    }
    if (!n)
        return 0;
    for (unsigned i = 1; i < n; i++) { /* ascending: neighbours form runs */
        uint64_t x = v[i];
        unsigned j = i;
        for (; j && v[j - 1] > x; j--)
            v[j] = v[j - 1];
        v[j] = x;
    }
    uint64_t runs = 0;
    for (int step = 0; step < 2; step++) {
        if (step == 1)
            for (unsigned i = 0; i < n; i++)
                if (seal_page(epc, v[i]) != 0)
                    note_internal(epc, EIO);
        for (unsigned i = 0; i < n;) {
            unsigned j = i + 1;
            while (j < n && v[j] == v[j - 1] + 1)
                j++;
            range_op(epc, v[i], j - i, step == 0);
            runs += step;
            i = j;
        }
    }
    for (unsigned i = 0; i < n; i++)
        epc->state[v[i]] = PG_EVICTED;
    atomic_fetch_sub_explicit(&epc->resident, n, memory_order_relaxed);
    atomic_fetch_add_explicit(&epc->evictions, n, memory_order_relaxed);
    atomic_fetch_add_explicit(&epc->bytes_enc, (uint64_t)n * PG, memory_order_relaxed);
    atomic_fetch_add_explicit(&epc->evict_runs, runs, memory_order_relaxed);
    return n;
}

/* ---- faults held to their modelled cost (handler thread only)
 *
 * A charged fault's page is mapped at once but without waking the thread
 * that faulted (UFFDIO_COPY_MODE_DONTWAKE); the thread is woken when the
 * model's cost has elapsed since the handler received the fault, less the
 * round trip measured around the handler (rt_ns: fault entry, handler
 * wake-up, thread wake-up), which the thread pays anyway. So the emulator's
 * own work (eviction, sealing, decryption, mapping) happens inside the
 * modelled cost instead of on top of it, and faults of several threads
 * overlap their costs as the exits and re-entries of faults on different
 * cores do, instead of queueing behind one busy-wait. What cannot hide in
 * the cost is counted as excess (excess_ns). Deadlines are in receipt
 * order, so the queue is a ring. */

static int pend_has(const occ_epc *epc, uint64_t p)
{
    for (unsigned i = 0; i < epc->pend_len; i++)
        if (epc->pend[(epc->pend_head + i) % PEND_MAX].page == p)
            return 1;
    return 0;
}

/* Wakes the oldest held fault; with `wait`, not before its deadline. */
static void pend_complete(occ_epc *epc, int wait)
{
    struct pend *q = &epc->pend[epc->pend_head];
    uint64_t t = now_ns();
    while (wait && t < q->deadline) {
        cpu_relax();
        t = now_ns();
    }
    /* counted before the wake, so that the woken thread sees them */
    atomic_fetch_add_explicit(&epc->wait_ns, t - q->t_ready, memory_order_relaxed);
    if (t > q->deadline)
        atomic_fetch_add_explicit(&epc->excess_ns, t - q->deadline, memory_order_relaxed);
    uffd_wake(epc, q->page);
    epc->pend_head = (epc->pend_head + 1) % PEND_MAX;
    epc->pend_len--;
}

static void pend_due(occ_epc *epc)
{
    uint64_t t = now_ns();
    while (epc->pend_len && epc->pend[epc->pend_head].deadline <= t)
        pend_complete(epc, 0);
}

/* Serves a fault on page p, received at t_recv. Caller holds pg_lock. */
static void serve_fault(occ_epc *epc, uint64_t p, uint64_t t_recv)
{
    uint8_t st = epc->state[p];
    if (st == PG_RESIDENT) {
        /* Already served: another thread faulted on it first (if that fault
         * is still held, this thread wakes with it), or a write-protect
         * fault that raced with a reload: just retry. */
        if (!pend_has(epc, p))
            uffd_wake(epc, p);
        return;
    }
    uint64_t t0 = now_ns();
    if (atomic_load_explicit(&epc->resident, memory_order_relaxed) >= epc->cap_pages)
        epc->evict_credit += evict_batch(epc, epc->evict_batch);
    /* Charged: every reload (ELDU), and a first touch that takes a slot
     * eviction made (SGX1 commits the heap at build time, so a heap page
     * beyond the EPC was evicted then and comes back with ELDU). */
    int charged = st == PG_EVICTED;
    if (epc->evict_credit) {
        epc->evict_credit--;
        charged = 1;
    }
    if (st == PG_EVICTED) {
        if (occ_fault_hit(OCC_FAULT_EPC_FLIP)) /* test-only: the host writes its own memory */
            epc->bk_ct[p * PG + 17] ^= 0x04;
        if (unseal_page(epc, p) != 0) {
            uint64_t none = UINT64_MAX;
            int first = atomic_compare_exchange_strong(&epc->first_bad_page, &none, p);
            /* lost before the faulting thread resumes: nothing it computes
             * from here on may leave (the boundary checks occ_epc_lost) */
            atomic_fetch_add(&epc->integrity_failures, 1);
            if (first) {
                fprintf(stderr,
                        "occ: EPC: evicted page %llu failed authentication on reload (the host tampered with or "
                        "replayed enclave memory): the enclave is lost; nothing more leaves it\n",
                        (unsigned long long)p);
                if (epc->on_lost)
                    epc->on_lost(epc->lost_ctx);
            }
        } else {
            atomic_fetch_add_explicit(&epc->bytes_ver, PG, memory_order_relaxed);
        }
        atomic_fetch_add_explicit(&epc->faults, 1, memory_order_relaxed);
        trace_line(epc, "fault", p);
    } else {
        memset(epc->staging, 0, PG);
        atomic_fetch_add_explicit(&epc->first_touch, 1, memory_order_relaxed);
        trace_line(epc, "zero", p);
    }
    atomic_fetch_add_explicit(&epc->service_ns, now_ns() - t0, memory_order_relaxed);
    uint64_t cost = 0, target = 0;
    if (charged) {
        cost = epc->fault_ns;
        target = cost > epc->rt_ns ? cost - epc->rt_ns : 0;
        atomic_fetch_add_explicit(&epc->charged_faults, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&epc->charged_cycles, epc->fault_cycles, memory_order_relaxed);
        atomic_fetch_add_explicit(&epc->charged_ns, cost, memory_order_relaxed);
    }
    int hold = target > 0;
    /* Book-keeping before the copy wakes the faulting thread, so that its
     * next look at the counters already sees this fault. */
    epc->state[p] = PG_RESIDENT;
    epc->fifo[(epc->fifo_head + epc->fifo_len) % epc->cap_pages] = (uint32_t)p;
    epc->fifo_len++;
    atomic_fetch_add_explicit(&epc->resident, 1, memory_order_relaxed);
    struct uffdio_copy c = {
        .dst = (uint64_t)(uintptr_t)(epc->base + p * PG),
        .src = (uint64_t)(uintptr_t)epc->staging,
        .len = PG,
        /* woken below, so that the handling time excludes the wake-up,
         * which the measured round trip (rt_ns) already covers */
        .mode = UFFDIO_COPY_MODE_DONTWAKE,
    };
    for (int tries = 0;; tries++) {
        c.copy = 0;
        if (ioctl(epc->uffd, UFFDIO_COPY, &c) == 0)
            break;
        if (errno == EEXIST) /* mapped behind our back: wake and go on */
            break;
        if (errno != EAGAIN || tries > 1000) {
            note_internal(epc, errno);
            hold = 0;
            break;
        }
    }
    OPENSSL_cleanse(epc->staging, PG);
    uint64_t t_ready = now_ns(), handled = t_ready - t_recv;
    atomic_fetch_add_explicit(&epc->handle_ns, handled, memory_order_relaxed);
    if (handled + epc->rt_ns > cost) { /* the emulator alone took longer than the model */
        atomic_fetch_add_explicit(&epc->excess_ns, handled + epc->rt_ns - cost, memory_order_relaxed);
        if (charged)
            atomic_fetch_add_explicit(&epc->overrun_faults, 1, memory_order_relaxed);
    }
    if (!hold || handled >= target) { /* nothing to charge, or already past its cost */
        uffd_wake(epc, p);
        return;
    }
    if (epc->pend_len == PEND_MAX)
        pend_complete(epc, 1);
    epc->pend[(epc->pend_head + epc->pend_len) % PEND_MAX] =
        (struct pend){.page = p, .t_recv = t_recv, .t_ready = t_ready, .deadline = t_recv + target};
    epc->pend_len++;
}

/* A probe fault (calibration at create): maps a page of zeros (staging is
 * all zeros between faults), and says how long the handler held it. A
 * failure must neither hang the prober nor mark the EPC broken: the probe
 * range is then unregistered (which wakes the prober; the kernel serves its
 * faults from then on) and the sample is not counted. */
static void serve_probe(occ_epc *epc, uint64_t addr, uint64_t t_recv)
{
    struct uffdio_copy c = {
        .dst = addr & ~(uint64_t)(PG - 1),
        .src = (uint64_t)(uintptr_t)epc->staging,
        .len = PG,
        .mode = UFFDIO_COPY_MODE_DONTWAKE, /* as serve_fault: the wake is part of the round trip */
    };
    if (ioctl(epc->uffd, UFFDIO_COPY, &c) != 0 && errno != EEXIST) {
        uint64_t pr = (uint64_t)atomic_load(&epc->probe);
        struct uffdio_range all = {.start = pr, .len = PROBE_PAGES * PG};
        (void)ioctl(epc->uffd, UFFDIO_UNREGISTER, &all);
        return;
    }
    atomic_store(&epc->probe_handle_ns, now_ns() - t_recv);
    struct uffdio_range r = {.start = c.dst, .len = PG};
    (void)ioctl(epc->uffd, UFFDIO_WAKE, &r);
}

static void *pager_main(void *arg)
{
    occ_epc *epc = arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    struct pollfd pfd[2] = {{.fd = epc->uffd, .events = POLLIN}, {.fd = epc->stop_fd, .events = POLLIN}};
    struct uffd_msg msgs[32];
    uint64_t last = 0;
    for (;;) {
        ssize_t n = read(epc->uffd, msgs, sizeof msgs); /* non-blocking */
        if (n > 0) {
            uint64_t t_recv = now_ns();
            uint64_t b = (uint64_t)(uintptr_t)epc->base;
            uint64_t pr = (uint64_t)atomic_load(&epc->probe);
            size_t cnt = (size_t)n / sizeof msgs[0];
            for (size_t i = 0; i < cnt; i++) {
                if (msgs[i].event != UFFD_EVENT_PAGEFAULT)
                    continue;
                uint64_t a = msgs[i].arg.pagefault.address;
                if (pr && a >= pr && a < pr + PROBE_PAGES * PG) {
                    serve_probe(epc, a, t_recv);
                    continue;
                }
                if (a < b || a >= b + epc->region_size)
                    continue;
                pthread_mutex_lock(&epc->pg_lock);
                serve_fault(epc, (a - b) / PG, t_recv);
                pthread_mutex_unlock(&epc->pg_lock);
            }
            pend_due(epc);
            last = now_ns();
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            note_internal(epc, errno);
            break;
        }
        pend_due(epc);
        if (atomic_load(&epc->stopping))
            break;
        /* Held faults: spin to their deadlines (the busy-wait the model
         * charges: on SGX the faulting core is busy that long), taking new
         * faults meanwhile. Otherwise wait a little longer for the next
         * fault of a stream, then sleep; that wait yields, so that a thread
         * sharing our core (2 compute threads and this one on 2 vCPUs) does
         * not wait for our time slice to end. */
        if (epc->pend_len) {
            cpu_relax();
            continue;
        }
        if (now_ns() - last < SPIN_WINDOW_NS) {
            sched_yield();
            continue;
        }
        int r = poll(pfd, 2, -1);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            note_internal(epc, errno);
            break;
        }
        if (pfd[1].revents)
            break;
        if (pfd[0].revents & (POLLERR | POLLHUP | POLLNVAL)) {
            note_internal(epc, EIO);
            break;
        }
    }
    while (epc->pend_len) /* nobody may stay asleep */
        pend_complete(epc, 0);
    return NULL;
}

static int open_uffd(void)
{
    int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    if (fd >= 0)
        return fd;
    /* Without CAP_SYS_PTRACE and vm.unprivileged_userfaultfd=0: user-mode
     * faults only (a read(2) into the region then gets EFAULT). */
    fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
    if (fd >= 0)
        return fd;
    int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
    if (dev < 0)
        return -1;
    fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
    int saved = errno;
    close(dev);
    errno = saved;
    return fd;
}

/* ---------------------------------------------------------------- life cycle */

void occ_epc_opts_default(occ_epc_opts *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->cap_size = OCC_EPC_DEFAULT_CAP;
    o->region_size = OCC_EPC_DEFAULT_REGION;
    o->cost = OCC_EPC_COST_SGX1;
}

occ_status occ_epc_cost_parse(const char *name, occ_epc_cost_model *out)
{
    if (!name || !out)
        return OCC_ERR_INVALID;
    if (!strcmp(name, "none"))
        *out = OCC_EPC_COST_NONE;
    else if (!strcmp(name, "sgx1"))
        *out = OCC_EPC_COST_SGX1;
    else if (!strcmp(name, "sgx2"))
        *out = OCC_EPC_COST_SGX2;
    else
        return OCC_ERR_INVALID;
    return OCC_OK;
}

const char *occ_epc_cost_name(occ_epc_cost_model m)
{
    switch (m) {
    case OCC_EPC_COST_NONE: return "none";
    case OCC_EPC_COST_SGX1: return "sgx1";
    case OCC_EPC_COST_SGX2: return "sgx2";
    case OCC_EPC_COST_CUSTOM: return "custom";
    }
    return "unknown";
}

static void *map_anon(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void unmap(void *p, size_t size)
{
    if (p)
        munmap(p, size);
}

void occ_epc_destroy(occ_epc *epc)
{
    if (!epc)
        return;
    if (epc->thr_started) {
        atomic_store(&epc->stopping, 1); /* seen by a handler that spins */
        uint64_t one = 1;
        ssize_t w = write(epc->stop_fd, &one, sizeof one);
        (void)w;
        pthread_join(epc->thr, NULL);
    }
    if (epc->uffd >= 0)
        close(epc->uffd);
    if (epc->stop_fd >= 0)
        close(epc->stop_fd);
    unmap(epc->base, epc->region_size);
    unmap(epc->bk_ct, epc->region_size);
    unmap(epc->bk_meta, (size_t)epc->npages * META_SIZE);
    unmap(epc->state, (size_t)epc->npages);
    unmap(epc->version, (size_t)epc->npages * sizeof(uint64_t));
    free(epc->fifo);
    if (epc->staging) {
        OPENSSL_cleanse(epc->staging, PG);
        free(epc->staging);
    }
    free(epc->ct_stage);
    EVP_CIPHER_CTX_free(epc->enc); /* frees (and clears) the key schedules */
    EVP_CIPHER_CTX_free(epc->dec);
    OPENSSL_cleanse(epc->key, sizeof epc->key);
    free(epc->fl);
    free(epc->ul);
    free(epc->tr_buf);
    pthread_mutex_destroy(&epc->pg_lock);
    pthread_mutex_destroy(&epc->al_lock);
    pthread_mutex_destroy(&epc->tr_lock);
    OPENSSL_cleanse(epc, sizeof *epc);
    free(epc);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Measures the round trip of a fault outside the handler (the fault's entry,
 * waking the handler, waking the faulting thread): touches PROBE_PAGES pages
 * of a scratch mapping registered with the same userfaultfd, and takes the
 * median of (time seen by the touching thread - time the handler held the
 * fault). Held faults are released that much before their modelled cost has
 * elapsed from receipt, so that the thread is stalled for the cost, not for
 * the cost plus the round trip. Stays 0 if anything fails (then the thread
 * pays the round trip on top, as before). */
static void calibrate_roundtrip(occ_epc *epc)
{
    uint8_t *pr = map_anon(PROBE_PAGES * PG);
    if (!pr)
        return;
    struct uffdio_register reg = {
        .range = {.start = (uint64_t)(uintptr_t)pr, .len = PROBE_PAGES * PG},
        .mode = UFFDIO_REGISTER_MODE_MISSING,
    };
    uint64_t d[PROBE_PAGES];
    unsigned n = 0;
    if (ioctl(epc->uffd, UFFDIO_REGISTER, &reg) == 0) {
        atomic_store(&epc->probe, (uintptr_t)pr);
        for (unsigned i = 0; i < PROBE_PAGES; i++) {
            atomic_store(&epc->probe_handle_ns, UINT64_MAX);
            uint64_t t0 = now_ns();
            (void)*(volatile uint8_t *)(pr + i * PG);
            uint64_t t = now_ns() - t0, h = atomic_load(&epc->probe_handle_ns);
            if (h != UINT64_MAX) /* served by the handler (not by a fallback) */
                d[n++] = t > h ? t - h : 0;
        }
        atomic_store(&epc->probe, (uintptr_t)0);
    }
    munmap(pr, PROBE_PAGES * PG); /* also unregisters it */
    /* The lower quartile, not the median: the probes run while the machine
     * may be busy, and a round trip taken too large would release threads
     * before their cost; one taken too small only leaves some of it on top
     * (and counted in excess_ns). */
    if (n >= PROBE_PAGES / 2) {
        qsort(d, n, sizeof d[0], cmp_u64);
        epc->rt_ns = d[n / 4];
    }
    /* At most half a fault's cost: probes on a busy machine also measure
     * scheduling delays (21-26 us were seen at load 3-6 against ~7 us
     * quiet), and taking those out of every fault would undercharge it. */
    if (epc->rt_ns > epc->fault_ns / 2)
        epc->rt_ns = epc->fault_ns / 2;
}

static occ_status setup_pager(occ_epc *epc, occ_error *e)
{
    epc->state = map_anon((size_t)epc->npages);
    epc->version = map_anon((size_t)epc->npages * sizeof(uint64_t));
    epc->bk_ct = map_anon(epc->region_size);
    epc->bk_meta = map_anon((size_t)epc->npages * META_SIZE);
    epc->fifo = malloc((size_t)epc->cap_pages * sizeof(uint32_t));
    if (posix_memalign((void **)&epc->staging, PG, PG) != 0)
        epc->staging = NULL;
    epc->ct_stage = malloc(PG);
    if (!epc->state || !epc->version || !epc->bk_ct || !epc->bk_meta || !epc->fifo || !epc->staging ||
        !epc->ct_stage)
        return occ_fail(e, OCC_ERR_NOMEM, "epc: cannot map metadata and backing store for a %llu-byte region",
                        (unsigned long long)epc->region_size);

    if (RAND_bytes(epc->key, sizeof epc->key) != 1 || RAND_bytes(epc->nonce_salt, sizeof epc->nonce_salt) != 1)
        return occ_fail(e, OCC_ERR_INTERNAL, "epc: RAND_bytes failed");
    epc->enc = EVP_CIPHER_CTX_new();
    epc->dec = EVP_CIPHER_CTX_new();
    if (!epc->enc || !epc->dec ||
        EVP_EncryptInit_ex(epc->enc, EVP_aes_256_gcm(), NULL, epc->key, NULL) != 1 ||
        EVP_DecryptInit_ex(epc->dec, EVP_aes_256_gcm(), NULL, epc->key, NULL) != 1)
        return occ_fail(e, OCC_ERR_INTERNAL, "epc: AES-256-GCM setup failed");
    OPENSSL_cleanse(epc->key, sizeof epc->key); /* the contexts hold it now */

    epc->uffd = open_uffd();
    if (epc->uffd < 0)
        return occ_fail(e, OCC_ERR_UNSUPPORTED,
                        "epc: userfaultfd unavailable (%s); run as root or set vm.unprivileged_userfaultfd=1, "
                        "or use a cap >= the region (cost model sgx2)", strerror(errno));
    struct uffdio_api api = {.api = UFFD_API, .features = UFFD_FEATURE_PAGEFAULT_FLAG_WP};
    if (ioctl(epc->uffd, UFFDIO_API, &api) != 0)
        return occ_fail(e, OCC_ERR_UNSUPPORTED,
                        "epc: userfaultfd write-protect not supported by this kernel (needs Linux >= 5.7): %s",
                        strerror(errno));
    struct uffdio_register reg = {
        .range = {.start = (uint64_t)(uintptr_t)epc->base, .len = epc->region_size},
        .mode = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP,
    };
    if (ioctl(epc->uffd, UFFDIO_REGISTER, &reg) != 0)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "epc: userfaultfd register failed: %s", strerror(errno));
    uint64_t need = (1ull << _UFFDIO_COPY) | (1ull << _UFFDIO_WAKE) | (1ull << _UFFDIO_WRITEPROTECT);
    if ((reg.ioctls & need) != need)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "epc: userfaultfd lacks copy/wake/write-protect on anonymous memory");
    epc->stop_fd = eventfd(0, EFD_CLOEXEC);
    if (epc->stop_fd < 0)
        return occ_fail(e, OCC_ERR_INTERNAL, "epc: eventfd: %s", strerror(errno));
    int rc = pthread_create(&epc->thr, NULL, pager_main, epc);
    if (rc != 0)
        return occ_fail(e, OCC_ERR_INTERNAL, "epc: cannot start the fault handler thread: %s", strerror(rc));
    epc->thr_started = 1;
    calibrate_roundtrip(epc);
    return OCC_OK;
}

occ_status occ_epc_create(const occ_epc_opts *opts, occ_epc **out, occ_error *e)
{
    if (!out)
        return occ_fail(e, OCC_ERR_INVALID, "epc: null output");
    *out = NULL;
    occ_epc_opts o;
    if (opts)
        o = *opts;
    else
        occ_epc_opts_default(&o);
    if (!o.cap_size)
        o.cap_size = OCC_EPC_DEFAULT_CAP;
    if (!o.region_size)
        o.region_size = OCC_EPC_DEFAULT_REGION;
    if (o.region_size > (1ull << 44))
        return occ_fail(e, OCC_ERR_INVALID, "epc: region of %llu bytes is above the 16 TiB limit",
                        (unsigned long long)o.region_size);
    if (o.ghz < 0 || o.ghz > 100)
        return occ_fail(e, OCC_ERR_INVALID, "epc: nominal frequency %.3f GHz is out of range", o.ghz);

    occ_epc *epc = calloc(1, sizeof *epc);
    if (!epc)
        return occ_fail(e, OCC_ERR_NOMEM, "epc: out of memory");
    epc->uffd = epc->stop_fd = -1;
    atomic_store(&epc->first_bad_page, UINT64_MAX);
    pthread_mutex_init(&epc->pg_lock, NULL);
    pthread_mutex_init(&epc->al_lock, NULL);
    pthread_mutex_init(&epc->tr_lock, NULL);

    epc->region_size = (o.region_size + PG - 1) / PG * PG;
    epc->npages = epc->region_size / PG;
    uint64_t cap_pages = o.cap_size / PG;
    switch (o.cost) {
    case OCC_EPC_COST_NONE: break;
    case OCC_EPC_COST_SGX1:
        epc->fault_cycles = OCC_EPC_SGX1_FAULT_CYCLES;
        epc->transition_cycles = OCC_EPC_SGX1_TRANSITION_CYCLES;
        break;
    case OCC_EPC_COST_SGX2:
        cap_pages = epc->npages; /* the EPC holds the whole heap */
        epc->transition_cycles = OCC_EPC_SGX1_TRANSITION_CYCLES;
        break;
    case OCC_EPC_COST_CUSTOM:
        epc->fault_cycles = o.fault_cycles;
        epc->transition_cycles = o.transition_cycles;
        break;
    default:
        occ_epc_destroy(epc);
        return occ_fail(e, OCC_ERR_INVALID, "epc: unknown cost model %d", (int)o.cost);
    }
    if (cap_pages < MIN_CAP_PAGES) {
        occ_epc_destroy(epc);
        return occ_fail(e, OCC_ERR_INVALID, "epc: cap of %llu bytes is below the minimum of %u pages",
                        (unsigned long long)o.cap_size, MIN_CAP_PAGES);
    }
    if (cap_pages > epc->npages)
        cap_pages = epc->npages;
    epc->cap_pages = cap_pages;
    epc->paged = cap_pages < epc->npages;
    epc->on_lost = o.on_lost;
    epc->lost_ctx = o.lost_ctx;
    if (o.ghz > 0) {
        epc->ghz = o.ghz;
    } else {
        pthread_once(&tsc_once, calibrate_tsc);
        epc->ghz = tsc_ghz;
    }
    epc->fault_ns = (uint64_t)((double)epc->fault_cycles / epc->ghz + 0.5);
    if (o.evict_batch > EVICT_BATCH_MAX) {
        occ_epc_destroy(epc);
        return occ_fail(e, OCC_ERR_INVALID, "epc: eviction batch of %u pages is above the maximum of %u",
                        o.evict_batch, EVICT_BATCH_MAX);
    }
    epc->evict_batch = o.evict_batch ? o.evict_batch : cap_pages >= EVICT_BATCH_MIN_CAP ? EVICT_BATCH_MAX : 1;

    epc->base = map_anon(epc->region_size);
    if (!epc->base) {
        occ_epc_destroy(epc);
        return occ_fail(e, OCC_ERR_NOMEM, "epc: cannot reserve a %llu-byte region",
                        (unsigned long long)epc->region_size);
    }
    /* 4 KiB pages only (the EPC's granularity); not inherited by children. */
    (void)madvise(epc->base, epc->region_size, MADV_NOHUGEPAGE);
    (void)madvise(epc->base, epc->region_size, MADV_DONTFORK);

    epc->capfl = 16;
    epc->fl = malloc(epc->capfl * sizeof *epc->fl);
    if (!epc->fl) {
        occ_epc_destroy(epc);
        return occ_fail(e, OCC_ERR_NOMEM, "epc: out of memory");
    }
    epc->fl[0] = (ext){0, epc->npages, 0};
    epc->nfl = 1;

    if (epc->paged) {
        occ_status st = setup_pager(epc, e);
        if (st != OCC_OK) {
            occ_epc_destroy(epc);
            return st;
        }
    }
    if (o.trace_file || o.trace_memory)
        occ_epc_trace_start(epc, o.trace_file, o.trace_memory);
    *out = epc;
    return OCC_OK;
}

/* ---------------------------------------------------------------- allocator */

static int ext_reserve(ext **arr, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 16;
    while (nc < need)
        nc *= 2;
    ext *n = realloc(*arr, nc * sizeof **arr);
    if (!n)
        return -1;
    *arr = n;
    *cap = nc;
    return 0;
}

static void ext_insert(ext *arr, size_t *n, size_t at, ext v)
{
    memmove(arr + at + 1, arr + at, (*n - at) * sizeof *arr);
    arr[at] = v;
    (*n)++;
}

static void ext_remove(ext *arr, size_t *n, size_t at)
{
    memmove(arr + at, arr + at + 1, (*n - at - 1) * sizeof *arr);
    (*n)--;
}

/* First index with start >= s. */
static size_t ext_lower(const ext *arr, size_t n, uint64_t s)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (arr[mid].start < s)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Eviction order follows use, as the SGX driver's does: its reclaimer ages
 * EPC pages by their accessed bit, so heap pages nobody touches any more go
 * before pages in use. Plain FIFO evicts the oldest *loaded* page, in use or
 * not: garbage left by freed blocks would sit behind live pages, and with a
 * working set just under the cap the enclave would keep cycling through its
 * own live pages. So: a freed block's resident pages move to the front of
 * the FIFO (next victims), a newly allocated block's to the back (about to be
 * used). Takes pg_lock; O(resident pages), and allocations are rare. */
static void fifo_move(occ_epc *epc, uint64_t start, uint64_t n, int to_front)
{
    if (!epc->paged)
        return;
    pthread_mutex_lock(&epc->pg_lock);
    uint64_t len = epc->fifo_len, cap = epc->cap_pages, head = epc->fifo_head;
    uint32_t *tmp = len ? malloc((size_t)len * sizeof *tmp) : NULL;
    if (tmp) { /* without memory only the eviction order suffers */
        uint64_t k = 0, moved = 0;
        for (int pass = 0; pass < 2; pass++) {
            /* pass 0 collects what goes first: the block (to_front) or the rest */
            int want_block = pass == 0 ? to_front : !to_front;
            for (uint64_t i = 0; i < len; i++) {
                uint64_t v = epc->fifo[(head + i) % cap];
                int in_block = v >= start && v < start + n;
                if (in_block == want_block) {
                    tmp[k++] = (uint32_t)v;
                    moved += (uint64_t)in_block;
                }
            }
        }
        if (moved)
            for (uint64_t i = 0; i < len; i++)
                epc->fifo[(head + i) % cap] = tmp[i];
        free(tmp);
    }
    pthread_mutex_unlock(&epc->pg_lock);
}

occ_status occ_epc_alloc(occ_epc *epc, size_t size, void **out, occ_error *e)
{
    if (!epc || !out)
        return occ_fail(e, OCC_ERR_INVALID, "epc alloc: null argument");
    *out = NULL;
    if (size == 0)
        return occ_fail(e, OCC_ERR_INVALID, "epc alloc: zero size");
    if (size > epc->region_size)
        return occ_fail(e, OCC_ERR_BUDGET, "epc alloc: %zu bytes exceed the %llu-byte enclave heap", size,
                        (unsigned long long)epc->region_size);
    uint64_t pages = ((uint64_t)size + PG - 1) / PG;
    pthread_mutex_lock(&epc->al_lock);
    size_t i = 0;
    while (i < epc->nfl && epc->fl[i].n < pages)
        i++;
    if (i == epc->nfl) {
        uint64_t used = epc->allocated;
        pthread_mutex_unlock(&epc->al_lock);
        return occ_fail(e, OCC_ERR_BUDGET,
                        "epc alloc: no free run of %llu pages for %zu bytes (heap %llu bytes, %llu allocated)",
                        (unsigned long long)pages, size, (unsigned long long)epc->region_size,
                        (unsigned long long)used);
    }
    if (ext_reserve(&epc->ul, &epc->capul, epc->nul + 1) != 0) {
        pthread_mutex_unlock(&epc->al_lock);
        return occ_fail(e, OCC_ERR_NOMEM, "epc alloc: out of memory");
    }
    uint64_t start = epc->fl[i].start;
    epc->fl[i].start += pages;
    epc->fl[i].n -= pages;
    if (!epc->fl[i].n)
        ext_remove(epc->fl, &epc->nfl, i);
    ext_insert(epc->ul, &epc->nul, ext_lower(epc->ul, epc->nul, start), (ext){start, pages, size});
    epc->allocated += pages * PG;
    epc->requested += size;
    if (epc->allocated > epc->peak_allocated)
        epc->peak_allocated = epc->allocated;
    pthread_mutex_unlock(&epc->al_lock);
    fifo_move(epc, start, pages, 0);
    *out = epc->base + start * PG;
    return OCC_OK;
}

occ_status occ_epc_free(occ_epc *epc, void *ptr)
{
    if (!epc)
        return OCC_ERR_INVALID;
    if (!ptr)
        return OCC_OK;
    uint8_t *p = ptr;
    if (p < epc->base || p >= epc->base + epc->region_size || (uintptr_t)(p - epc->base) % PG)
        return OCC_ERR_INVALID;
    uint64_t start = (uint64_t)(p - epc->base) / PG;
    pthread_mutex_lock(&epc->al_lock);
    size_t k = ext_lower(epc->ul, epc->nul, start);
    if (k == epc->nul || epc->ul[k].start != start ||
        ext_reserve(&epc->fl, &epc->capfl, epc->nfl + 1) != 0) {
        pthread_mutex_unlock(&epc->al_lock);
        return OCC_ERR_INVALID;
    }
    ext u = epc->ul[k];
    ext_remove(epc->ul, &epc->nul, k);
    epc->allocated -= u.n * PG;
    epc->requested -= u.req;
    size_t j = ext_lower(epc->fl, epc->nfl, start);
    ext_insert(epc->fl, &epc->nfl, j, (ext){start, u.n, 0});
    /* coalesce with the next, then with the previous */
    if (j + 1 < epc->nfl && epc->fl[j].start + epc->fl[j].n == epc->fl[j + 1].start) {
        epc->fl[j].n += epc->fl[j + 1].n;
        ext_remove(epc->fl, &epc->nfl, j + 1);
    }
    if (j > 0 && epc->fl[j - 1].start + epc->fl[j - 1].n == epc->fl[j].start) {
        epc->fl[j - 1].n += epc->fl[j].n;
        ext_remove(epc->fl, &epc->nfl, j);
    }
    pthread_mutex_unlock(&epc->al_lock);
    fifo_move(epc, start, u.n, 1);
    return OCC_OK;
}

/* ---------------------------------------------------------------- the rest */

void occ_epc_transition(occ_epc *epc)
{
    if (!epc)
        return;
    atomic_fetch_add_explicit(&epc->transitions, 1, memory_order_relaxed);
    charge(epc, epc->transition_cycles);
}

int occ_epc_lost(occ_epc *epc)
{
    return epc && atomic_load(&epc->integrity_failures) != 0;
}

occ_status occ_epc_check(occ_epc *epc, occ_error *e)
{
    if (!epc)
        return occ_fail(e, OCC_ERR_INVALID, "epc: null handle");
    uint64_t bad = atomic_load(&epc->integrity_failures);
    if (bad)
        return occ_fail(e, OCC_ERR_INTEGRITY,
                        "epc: %llu evicted page(s) failed authentication on reload (first: page %llu); the "
                        "untrusted backing memory was tampered with or replayed, results are void",
                        (unsigned long long)bad, (unsigned long long)atomic_load(&epc->first_bad_page));
    int ie = atomic_load(&epc->internal_err);
    if (ie)
        return occ_fail(e, OCC_ERR_INTERNAL, "epc: the fault handler hit a system error: %s", strerror(ie));
    return OCC_OK;
}

void occ_epc_get_stats(occ_epc *epc, occ_epc_stats *s)
{
    if (!s)
        return;
    memset(s, 0, sizeof *s);
    if (!epc)
        return;
    s->faults = atomic_load(&epc->faults);
    s->first_touch = atomic_load(&epc->first_touch);
    s->charged_faults = atomic_load(&epc->charged_faults);
    s->evictions = atomic_load(&epc->evictions);
    s->bytes_encrypted = atomic_load(&epc->bytes_enc);
    s->bytes_verified = atomic_load(&epc->bytes_ver);
    s->integrity_failures = atomic_load(&epc->integrity_failures);
    s->transitions = atomic_load(&epc->transitions);
    s->charged_cycles = atomic_load(&epc->charged_cycles);
    s->charged_ns = atomic_load(&epc->charged_ns);
    s->service_ns = atomic_load(&epc->service_ns);
    s->handle_ns = atomic_load(&epc->handle_ns);
    s->wait_ns = atomic_load(&epc->wait_ns);
    s->excess_ns = atomic_load(&epc->excess_ns);
    s->overrun_faults = atomic_load(&epc->overrun_faults);
    s->evict_runs = atomic_load(&epc->evict_runs);
    s->fault_ns = epc->fault_ns;
    s->roundtrip_ns = epc->rt_ns;
    s->evict_batch = epc->evict_batch;
    s->resident_size = atomic_load(&epc->resident) * PG;
    s->cap_size = epc->cap_pages * PG;
    s->region_size = epc->region_size;
    pthread_mutex_lock(&epc->al_lock);
    s->allocated_size = epc->allocated;
    s->peak_allocated_size = epc->peak_allocated;
    s->requested_size = epc->requested;
    s->alloc_count = epc->nul;
    pthread_mutex_unlock(&epc->al_lock);
    s->fault_cycles = epc->fault_cycles;
    s->transition_cycles = epc->transition_cycles;
    s->ghz = epc->ghz;
    s->paged = epc->paged;
}

void *occ_epc_base(occ_epc *epc)
{
    return epc ? epc->base : NULL;
}

int occ_epc_contains(occ_epc *epc, const void *p, size_t size)
{
    if (!epc || !p)
        return 0;
    const uint8_t *q = p;
    if (q < epc->base || q >= epc->base + epc->region_size)
        return 0;
    return size <= (size_t)(epc->base + epc->region_size - q);
}

occ_status occ_epc_evict_all(occ_epc *epc, occ_error *e)
{
    if (!epc)
        return occ_fail(e, OCC_ERR_INVALID, "epc: null handle");
    if (!epc->paged)
        return OCC_OK;
    pthread_mutex_lock(&epc->pg_lock);
    while (epc->fifo_len)
        (void)evict_batch(epc, epc->evict_batch);
    epc->evict_credit = 0; /* a cold start: the free slots are not charged */
    pthread_mutex_unlock(&epc->pg_lock);
    int ie = atomic_load(&epc->internal_err);
    if (ie)
        return occ_fail(e, OCC_ERR_INTERNAL, "epc: evicting failed: %s", strerror(ie));
    return OCC_OK;
}

occ_status occ_epc_debug_backing(occ_epc *epc, uint64_t page, occ_epc_backing *out)
{
    if (!epc || !out || !epc->paged || page >= epc->npages)
        return OCC_ERR_INVALID;
    out->ciphertext = epc->bk_ct + page * PG;
    out->meta = epc->bk_meta + page * META_SIZE;
    out->meta_size = NONCE_LEN + TAG_LEN;
    return OCC_OK;
}
