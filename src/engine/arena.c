/* Activation memory: offsets of every buffer in one arena. The simple
 * allocator below gives each buffer its own range; the planner with lifetime
 * reuse replaces this function (same contract, see engine_internal.h). */
#include "engine/engine_internal.h"

occ_status occ_arena_plan(occ_buf_req *reqs, uint32_t n, uint64_t *total, occ_error *e)
{
    uint64_t off = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t sz = (reqs[i].size + 63u) & ~UINT64_C(63);
        if (sz < reqs[i].size || off > UINT64_MAX - sz)
            return occ_fail(e, OCC_ERR_BUDGET, "activation memory overflows");
        reqs[i].offset = off;
        off += sz;
    }
    *total = off;
    return OCC_OK;
}
