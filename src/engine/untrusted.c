/* Untrusted memory for trusted code (include/occ/boundary.h): through the
 * registered enclave's alloc_untrusted ocall, checked to lie outside the
 * enclave; malloc when no enclave registered one (occ run). */
#include <stdatomic.h>
#include <stdlib.h>

#include "occ/boundary.h"

static _Atomic(const occ_ocalls *) g_oc;

void occ_untrusted_use(const occ_ocalls *oc)
{
    atomic_store(&g_oc, oc && oc->alloc_untrusted && oc->free_untrusted ? oc : NULL);
}

void *occ_untrusted_alloc(size_t size)
{
    const occ_ocalls *oc = atomic_load(&g_oc);
    if (!oc)
        return malloc(size ? size : 1);
    void *p = oc->alloc_untrusted(oc->host, size ? size : 1);
    if (p && occ_enclave_range_overlaps(p, size ? size : 1)) {
        /* the host handed out enclave memory: using it as untrusted would
         * let the enclave overwrite itself with what it means to publish */
        oc->free_untrusted(oc->host, p);
        return NULL;
    }
    return p;
}

void occ_untrusted_free(void *p)
{
    const occ_ocalls *oc = atomic_load(&g_oc);
    if (!p)
        return;
    if (oc)
        oc->free_untrusted(oc->host, p);
    else
        free(p);
}
