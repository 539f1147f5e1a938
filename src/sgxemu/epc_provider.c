/* Enclave memory from the EPC emulator: an occ_mem_provider (occ/engine.h)
 * over occ_epc_alloc / occ_epc_free. With `--enclave emu` every byte the
 * engine holds in the enclave comes from here, so whatever the engine keeps
 * beyond the EPC cap pages exactly as on SGX1 (docs/emulation.md). */
#include "occ/boundary_emu.h"

static occ_status provider_alloc(void *ctx, size_t size, void **out, occ_error *e)
{
    /* Zero-size requests still get a distinct page, like malloc(0) may. */
    return occ_epc_alloc(ctx, size ? size : 1, out, e);
}

static void provider_free(void *ctx, void *p, size_t size)
{
    (void)size;
    /* A pointer that is not a live allocation is a bug in the caller; the
     * allocator refuses it and changes nothing, and there is no one to tell. */
    (void)occ_epc_free(ctx, p);
}

void occ_epc_provider(occ_epc *epc, occ_mem_provider *out)
{
    out->ctx = epc;
    out->alloc = provider_alloc;
    out->free = provider_free;
    out->granularity = 4096; /* occ_epc_alloc hands out whole pages */
}
