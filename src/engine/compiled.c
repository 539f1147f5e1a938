/* A compiled model (include/occ/engine.h, "Compile once, run many"): the
 * engine of exec.c made up to its loaded weights - manifest validated,
 * steps and layouts decided, plan made, every resident segment read and
 * verified once, streamed ones sealed into the stash - with its kernels
 * then released: each context (context.c) prepares its own, so nothing of
 * the compiled model is written after create and any number of contexts
 * may read it at once. Its enclave bytes (resident weights, kept prepare
 * weights, key) are counted once, in its own allocator. */
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"
#include "engine/exec_int.h"

occ_status occ_compiled_create(const occ_model *m, const occ_engine_opts *opts,
                               occ_read_fn read, void *read_ctx, occ_compiled **out,
                               occ_error *e)
{
    if (!out)
        return occ_fail(e, OCC_ERR_INVALID, "no output handle");
    *out = NULL;
    occ_compiled *c = calloc(1, sizeof *c);
    if (!c)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    occ_status st = occ_eng_create(m, opts, read, read_ctx, 2, &c->e, e);
    if (st) {
        free(c);
        return st;
    }
    /* its kernels decided the plan and packed the weights; contexts make
     * their own (their op states are written at run) */
    occ_eng_free_kernels(c->e);
    *out = c;
    return OCC_OK;
}

void occ_compiled_free(occ_compiled *c)
{
    if (!c)
        return;
    occ_engine_free(c->e);
    free(c);
}

void occ_compiled_get_stats(const occ_compiled *c, occ_engine_stats *out)
{
    occ_engine_get_stats(c ? c->e : NULL, out);
}

/* occ inspect / tests: the plan is the compiled model's */
void occ_compiled_plan_summary(const occ_compiled *c, occ_plan_summary *sum,
                               const occ_plan_layer **layers, uint32_t *n_layers)
{
    occ_engine_plan_summary(c ? c->e : NULL, sum, layers, n_layers);
}

/* n engines on one compiled model hold shared + n * per_engine (the plan
 * summary's split), so each may plan with more than total / n: the
 * resident weights are counted once. Starting from total / n (which always
 * fits: n plans of peak <= total / n), try total - (n - 1) * per_engine of
 * the last plan, keeping the largest that still fits total; a few rounds,
 * plans only (no weight but an op's prepare weights is read). chosen (if
 * not NULL) gets the kept plan's summary; when not even total / n can be
 * planned, the plan's error is returned (without chosen: OCC_OK and
 * total / n, for create to report). */
occ_status occ_engine_pool_budget(const occ_model *m, const occ_engine_opts *opts,
                                  occ_read_fn read, void *read_ctx, uint32_t n, uint64_t total,
                                  uint64_t *budget, occ_plan_summary *chosen, occ_error *e)
{
    if (!total)
        total = OCC_DEFAULT_BUDGET;
    if (!n)
        n = 1;
    *budget = total / n;
    if (chosen)
        memset(chosen, 0, sizeof *chosen);
    if (!opts || opts->mode != OCC_MODE_OCCLUMENCY)
        return OCC_OK;
    occ_engine_opts o = *opts;
    o.on_chunk = NULL;
    o.hook_ctx = NULL;
    uint64_t b = total / n;
    for (int round = 0; round < 3; round++) {
        occ_engine *p = NULL;
        occ_error pe = {0};
        o.budget = b;
        occ_status st = occ_engine_plan_only(m, &o, read, read_ctx, &p, &pe);
        if (st) {
            if (round == 0 && chosen) {
                if (e)
                    *e = pe;
                return st;
            }
            break;
        }
        occ_plan_summary s;
        const occ_plan_layer *ly;
        uint32_t nl;
        occ_engine_plan_summary(p, &s, &ly, &nl);
        occ_engine_free(p);
        if (s.shared + (uint64_t)n * s.per_engine > total)
            break; /* (never in the first round: peak <= total / n) */
        *budget = b;
        if (chosen)
            *chosen = s;
        if (n == 1 || (uint64_t)(n - 1) * s.per_engine >= total)
            break;
        uint64_t next = total - (uint64_t)(n - 1) * s.per_engine;
        if (next <= b + (b >> 6)) /* no real gain left */
            break;
        b = next;
    }
    return OCC_OK;
}
