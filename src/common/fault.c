/* Test-only fault injection (include/occ/fault.h). Inert unless armed. */
#include "occ/fault.h"

#if OCC_FAULT_INJECTION /* test builds only (occ/fault.h) */

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { WHEN_NONE = 0, WHEN_ONCE, WHEN_FROM, WHEN_EVERY };

typedef struct rule {
    _Atomic int when;
    _Atomic uint64_t n;
} rule;

static struct {
    _Atomic int armed;
    rule r[OCC_FAULT_SITE_COUNT];
    _Atomic uint64_t count[OCC_FAULT_SITE_COUNT];
    _Atomic uint64_t fired[OCC_FAULT_SITE_COUNT];
    _Atomic uint32_t delay_ms, jitter_ms, slow_ms;
    _Atomic uint64_t crossings;
} F;

static pthread_once_t once = PTHREAD_ONCE_INIT;

static int parse_u(const char *s, const char *end, uint64_t *out)
{
    if (s >= end)
        return -1;
    uint64_t v = 0;
    for (; s < end; s++) {
        if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return 0;
}

static int parse_when(const char *s, const char *end, int *when, uint64_t *n)
{
    if (s < end && *s == '/') {
        *when = WHEN_EVERY;
        return parse_u(s + 1, end, n) || !*n ? -1 : 0;
    }
    if (end > s && end[-1] == '+') {
        *when = WHEN_FROM;
        return parse_u(s, end - 1, n) || !*n ? -1 : 0;
    }
    *when = WHEN_ONCE;
    return parse_u(s, end, n) || !*n ? -1 : 0;
}

/* One item "site:kind:value" in [s, end). */
static int parse_item(const char *s, const char *end, int when[], uint64_t n[], uint32_t ms[3])
{
    static const struct {
        const char *prefix;
        int site; /* >= 0: counted site; -1..-3: ms[0..2] */
    } tab[] = {
        {"alloc:fail:", OCC_FAULT_ALLOC},
        {"request:alloc:", OCC_FAULT_REQ_ALLOC},
        {"read:short:", OCC_FAULT_READ_SHORT},
        {"read:error:", OCC_FAULT_READ_ERROR},
        {"stash:flip:", OCC_FAULT_STASH_FLIP},
        {"epc:flip:", OCC_FAULT_EPC_FLIP},
        {"alloc:", OCC_FAULT_ALLOC},
        {"crossing:delay_ms:", -1},
        {"crossing:jitter_ms:", -2},
        {"worker:slow_ms:", -3},
    };
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++) {
        size_t pl = strlen(tab[i].prefix);
        if ((size_t)(end - s) <= pl || memcmp(s, tab[i].prefix, pl))
            continue;
        const char *v = s + pl;
        if (tab[i].site >= 0)
            return parse_when(v, end, &when[tab[i].site], &n[tab[i].site]);
        uint64_t x;
        if (parse_u(v, end, &x) || x > 600000)
            return -1;
        ms[-tab[i].site - 1] = (uint32_t)x;
        return 0;
    }
    return -1;
}

static occ_status apply(const char *spec, occ_error *e)
{
    int when[OCC_FAULT_SITE_COUNT] = {0};
    uint64_t n[OCC_FAULT_SITE_COUNT] = {0};
    uint32_t ms[3] = {0};
    const char *s = spec ? spec : "";
    while (*s) {
        const char *end = strchr(s, ',');
        if (!end)
            end = s + strlen(s);
        if (end > s && parse_item(s, end, when, n, ms))
            return occ_fail(e, OCC_ERR_INVALID,
                            "OCC_FAULT: cannot parse '%.*s' (see include/occ/fault.h)", (int)(end - s), s);
        s = *end ? end + 1 : end;
    }
    for (int i = 0; i < OCC_FAULT_SITE_COUNT; i++) {
        atomic_store(&F.r[i].when, WHEN_NONE);
        atomic_store(&F.r[i].n, n[i]);
        atomic_store(&F.count[i], 0);
        atomic_store(&F.fired[i], 0);
        atomic_store(&F.r[i].when, when[i]);
    }
    atomic_store(&F.delay_ms, ms[0]);
    atomic_store(&F.jitter_ms, ms[1]);
    atomic_store(&F.slow_ms, ms[2]);
    atomic_store(&F.crossings, 0);
    atomic_store(&F.armed, 1);
    return OCC_OK;
}

static void init_from_env(void)
{
    const char *spec = getenv("OCC_FAULT");
    if (!spec || !*spec)
        return;
    occ_error e = {0};
    if (apply(spec, &e)) {
        /* A test asked for a fault it will not get: say so loudly, inject nothing. */
        fprintf(stderr, "occ: %s; no fault injected\n", e.msg);
        return;
    }
    fprintf(stderr, "occ: FAULT INJECTION ACTIVE (OCC_FAULT=%s): test only\n", spec);
}

int occ_fault_armed(void)
{
    pthread_once(&once, init_from_env);
    return atomic_load_explicit(&F.armed, memory_order_relaxed);
}

int occ_fault_hit(occ_fault_site site)
{
    if ((unsigned)site >= OCC_FAULT_SITE_COUNT || !occ_fault_armed())
        return 0;
    uint64_t k = atomic_fetch_add(&F.count[site], 1) + 1;
    int when = atomic_load(&F.r[site].when);
    uint64_t n = atomic_load(&F.r[site].n);
    int fire = (when == WHEN_ONCE && k == n) || (when == WHEN_FROM && k >= n) ||
               (when == WHEN_EVERY && n && k % n == 0);
    if (fire)
        atomic_fetch_add(&F.fired[site], 1);
    return fire;
}

occ_status occ_fault_read(uint64_t *size, occ_error *e)
{
    if (!occ_fault_armed())
        return OCC_OK;
    /* both read sites count every read, so N means the same call for either */
    int err = occ_fault_hit(OCC_FAULT_READ_ERROR);
    int shrt = occ_fault_hit(OCC_FAULT_READ_SHORT);
    if (err)
        return occ_fail(e, OCC_ERR_IO, "read_chunk: injected read error (OCC_FAULT)");
    if (shrt)
        *size /= 2;
    return OCC_OK;
}

static void sleep_ms(uint32_t ms)
{
    if (!ms)
        return;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts))
        ;
}

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

void occ_fault_crossing(void)
{
    if (!occ_fault_armed())
        return;
    uint32_t d = atomic_load(&F.delay_ms), j = atomic_load(&F.jitter_ms);
    if (!d && !j)
        return;
    uint64_t k = atomic_fetch_add(&F.crossings, 1);
    sleep_ms(d + (j ? (uint32_t)(mix(k) % (j + 1u)) : 0));
}

void occ_fault_worker(void)
{
    if (occ_fault_armed())
        sleep_ms(atomic_load(&F.slow_ms));
}

uint64_t occ_fault_flip(uint8_t *buf, uint64_t size)
{
    if (!buf || !size || !occ_fault_armed() || !occ_fault_hit(OCC_FAULT_STASH_FLIP))
        return 0;
    /* deterministic per event: the k-th flip hits the same bit in every run */
    uint64_t r = mix(atomic_load(&F.count[OCC_FAULT_STASH_FLIP]) ^ 0x5a17ull);
    uint64_t pos = r % size;
    uint8_t bit = (uint8_t)(1u << ((r >> 61) & 7u));
    buf[pos] ^= bit;
    return ((pos + 1) << 3) | (uint64_t)((r >> 61) & 7u);
}

void occ_fault_unflip(uint8_t *buf, uint64_t token)
{
    if (!buf || !token)
        return;
    buf[(token >> 3) - 1] ^= (uint8_t)(1u << (token & 7u));
}

occ_status occ_fault_set(const char *spec, occ_error *e)
{
    pthread_once(&once, init_from_env);
    return apply(spec, e);
}

uint64_t occ_fault_count(occ_fault_site site)
{
    return (unsigned)site < OCC_FAULT_SITE_COUNT ? atomic_load(&F.count[site]) : 0;
}

uint64_t occ_fault_fired(occ_fault_site site)
{
    return (unsigned)site < OCC_FAULT_SITE_COUNT ? atomic_load(&F.fired[site]) : 0;
}
#else
typedef int occ_fault_compiled_out; /* release: no switch */
#endif
