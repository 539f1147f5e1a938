/* What one EPC fault costs the thread that takes it (docs/emulation.md, "What
 * a fault costs"): one thread sweeps twice a 93 MiB EPC, one read per page, so
 * every access is a charged reload; prints the model's cost per fault and the
 * cost the thread saw (median, p10, p90, mean). Against the library only:
 *
 *   cc -O2 -std=gnu11 -D_GNU_SOURCE -Iinclude -o build/epc_sweep bench/epc_sweep.c \
 *      build/release/libocc_epc.a build/release/libocc_common.a -lcrypto -lpthread
 *   build/epc_sweep [sgx1|none]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "occ/epc.h"

static uint64_t now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    const char *cost = argc > 1 ? argv[1] : "sgx1";
    occ_epc_opts o;
    occ_epc_opts_default(&o);
    o.region_size = 4 * o.cap_size;
    if (occ_epc_cost_parse(cost, &o.cost) != OCC_OK) {
        fprintf(stderr, "usage: epc_sweep [sgx1|none]\n");
        return 2;
    }
    occ_epc *epc = NULL;
    occ_error e = {0};
    if (occ_epc_create(&o, &epc, &e) != OCC_OK) {
        fprintf(stderr, "epc_sweep: %s\n", e.msg);
        return 1;
    }
    volatile unsigned char *b = occ_epc_base(epc);
    uint64_t np = 2 * o.cap_size / OCC_EPC_PAGE_SIZE;
    for (uint64_t p = 0; p < np; p++) /* fills the EPC, then pages */
        b[p * OCC_EPC_PAGE_SIZE] = 1;
    uint64_t *t = malloc(np * sizeof *t);
    if (!t)
        return 1;
    occ_epc_stats a, z;
    occ_epc_get_stats(epc, &a);
    uint64_t t0 = now();
    for (uint64_t i = 0; i < np; i++) {
        uint64_t s = now();
        (void)b[i * OCC_EPC_PAGE_SIZE];
        t[i] = now() - s;
    }
    uint64_t dt = now() - t0;
    occ_epc_get_stats(epc, &z);
    qsort(t, np, sizeof *t, cmp);
    uint64_t f = z.charged_faults - a.charged_faults;
    printf("%s: %llu charged faults, model %.1f us each; seen by the thread: median %.1f us (p10 %.1f, p90 %.1f), "
           "mean %.1f us; handling %.1f us, busy-wait %.1f us, round trip %.1f us, excess %.1f us per fault\n",
           cost, (unsigned long long)f, f ? (double)(z.charged_ns - a.charged_ns) / (double)f / 1e3 : 0.0,
           (double)t[np / 2] / 1e3, (double)t[np / 10] / 1e3, (double)t[np * 9 / 10] / 1e3, (double)dt / (double)np / 1e3,
           f ? (double)(z.handle_ns - a.handle_ns) / (double)f / 1e3 : 0.0,
           f ? (double)(z.wait_ns - a.wait_ns) / (double)f / 1e3 : 0.0, (double)z.roundtrip_ns / 1e3,
           f ? (double)(z.excess_ns - a.excess_ns) / (double)f / 1e3 : 0.0);
    free(t);
    occ_epc_destroy(epc);
    return 0;
}
