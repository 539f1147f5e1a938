/* The enclave's own address range, as the (emulated) CPU knows it: the
 * enclave checks that untrusted memory the host hands it lies outside
 * (include/occ/boundary.h). Set once by the counted boundary in emulation. */
#include <stdatomic.h>
#include <stdint.h>

#include "occ/boundary.h"

static _Atomic uintptr_t range_lo, range_hi;

void occ_enclave_range_set(const void *base, size_t size)
{
    uintptr_t lo = (uintptr_t)base;
    atomic_store(&range_hi, 0);
    atomic_store(&range_lo, lo);
    atomic_store(&range_hi, base && size && lo + size > lo ? lo + size : 0);
}

int occ_enclave_range_overlaps(const void *p, size_t size)
{
    uintptr_t a = (uintptr_t)p, lo = atomic_load(&range_lo), hi = atomic_load(&range_hi);
    if (a + size < a)
        return 1; /* wraps: not a range at all */
    return hi && a < hi && a + size > lo;
}
