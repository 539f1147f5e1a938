/* The engine's memory plan (split out of exec.c): activation buffers, the
 * streaming window, batch order (split_k) and which segments stay resident;
 * the arena placement itself is planner.c's. Types: exec_int.h. */
#include <dnnl.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"
#include "engine/exec_int.h"
#include "engine/planner.h"
#include "engine/weights_crypt_int.h"
#include "ops/ops_internal.h"
#include "occ/boundary.h"
#include "occ/crypto.h"
#include "occ/fault.h"
#include "occ/weights_crypt.h"
#include <openssl/evp.h>
#include <openssl/crypto.h>

/* ---- the memory plan ---- */

occ_status occ_eng_collect_buffers(occ_engine *eng, occ_error *e)
{
    const occ_model *m = eng->m;
    for (uint32_t i = 0; i < m->n_outputs; i++) {
        trt *t = &eng->t[m->outputs[i]];
        if (t->blocked)
            t->need_plain = 1;
    }
    eng->reqs = calloc(2u * m->n_tensors + 1u, sizeof *eng->reqs);
    if (!eng->reqs)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    for (uint32_t t = 0; t < m->n_tensors; t++) {
        trt *tt = &eng->t[t];
        tt->buf = tt->plain_buf = -1;
        if (!tt->live || tt->virt || m->tensors[t].kind == OCC_TENSOR_WEIGHT)
            continue;
        uint32_t first = tt->producer_node >= 0 ? (uint32_t)eng->node_step[tt->producer_node] + 1u : 0;
        if (tt->alias < 0) {
            tt->buf = (int32_t)eng->n_reqs++;
            eng->reqs[tt->buf].size = tt->size;
            eng->reqs[tt->buf].first = first;
        }
        if (tt->need_plain) {
            tt->plain_buf = (int32_t)eng->n_reqs++;
            eng->reqs[tt->plain_buf].size = m->tensors[t].size;
            eng->reqs[tt->plain_buf].first = first;
        }
    }
    /* first/last here are step + 1 (0 = before the first step: graph inputs);
     * the planner gets them shifted back (-1 = an input) */
    for (uint32_t t = 0; t < m->n_tensors; t++) {
        trt *tt = &eng->t[t];
        if (!tt->live || tt->virt || m->tensors[t].kind == OCC_TENSOR_WEIGHT)
            continue;
        uint32_t last = 0;
        if (tt->is_output)
            last = eng->n_steps;
        for (uint32_t i = 0; i < m->n_nodes; i++) {
            const occ_node *n = &m->nodes[i];
            for (uint32_t k = 0; k < n->n_inputs; k++)
                if (n->inputs[k] == (int32_t)t && eng->node_step[i] >= 0 &&
                    (uint32_t)eng->node_step[i] + 1u > last)
                    last = (uint32_t)eng->node_step[i] + 1u;
        }
        occ_buf_req *r = &eng->reqs[eng->t[occ_eng_root_of(eng, (int32_t)t)].buf];
        if (last > r->last)
            r->last = last;
        /* an elided Concat's input is written into the Concat's buffer
         * before the Concat's own step: the buffer lives from then */
        uint32_t first = tt->producer_node >= 0 ? (uint32_t)eng->node_step[tt->producer_node] + 1u : 0;
        if (tt->alias >= 0 && first < r->first)
            r->first = first;
        if (tt->plain_buf >= 0 && last > eng->reqs[tt->plain_buf].last)
            eng->reqs[tt->plain_buf].last = last;
    }
    for (uint32_t r = 0; r < eng->n_reqs; r++) {
        if (eng->reqs[r].last < eng->reqs[r].first)
            eng->reqs[r].last = eng->reqs[r].first;
        if (eng->reqs[r].last == 0)
            eng->reqs[r].last = 1;
    }
    return OCC_OK;
}

uint32_t occ_eng_window_slots(const occ_engine *eng)
{
    return (uint32_t)(eng->loader_threads + 2 > 4 ? eng->loader_threads + 2 : 4);
}

/* The run's iteration at which step i runs for image b (see split_k). */
uint32_t occ_eng_iteration(const occ_engine *eng, uint32_t i, uint32_t b)
{
    uint32_t K = eng->split_k;
    return !K ? i : i < K ? b * K + i : eng->batch * K + (i - K);
}

/* The step iteration it runs, for a run of n images split at K (the
 * inverse of occ_eng_iteration()). */
uint32_t occ_eng_step_of(uint32_t K, uint32_t n, uint32_t it)
{
    return !K ? it : it < n * K ? it % K : K + (it - n * K);
}

/* Batch > 1 in occlumency mode, two ways to run (engine_create plans both
 * and keeps the one that streams fewer bytes per batch):
 *  - split (split_all = 0): the steps before the first fully connected layer
 *    run image by image (one image's feature maps at a time: VGG-16's
 *    224x224 maps for 8 images would be 196 MiB), the rest for the whole
 *    batch at once, so that each of their streamed segments - the ones
 *    compute cannot hide - is copied and checked once for all the images;
 *  - all batched (split_all = 1): every step for the whole batch, so every
 *    streamed segment is copied and checked once per batch, at the price of
 *    the batch's feature maps (ResNet-50 at 93M, batch 4: 17.5 MiB streamed
 *    per image instead of 61). */
uint32_t occ_eng_choose_split(const occ_engine *eng, int split_all)
{
    if (eng->mode != OCC_MODE_OCCLUMENCY || eng->batch < 2 || split_all)
        return 0;
    uint32_t k = 0;
    while (k < eng->n_steps && eng->steps[k].kind != K_GEMM)
        k++;
    return k;
}

uint64_t occ_eng_step_work(const occ_engine *eng, uint32_t i, uint32_t *last)
{
    *last = i;
    int32_t c = occ_eng_chain_of(eng, i);
    if (c < 0)
        return eng->steps[i].work;
    const strip_chain *ch = &eng->chains[c];
    *last = ch->s1;
    return i == ch->s0 ? ch->work : 0;
}

/* One plan with fuse_reserve bytes kept aside for the fused FC buffers;
 * fuse = 0: no Gemm is fused. */
static occ_status make_plan1(occ_engine *eng, uint64_t fuse_reserve, int fuse, occ_error *e)
{
    const occ_model *m = eng->m;
    occ_status st;
    uint32_t nb = eng->n_reqs * eng->batch;
    /* occlumency: each step's working buffer is an arena buffer alive during
     * that step only (the arena's peak and the largest working buffers fall
     * on different layers), after the nb feature-map buffers */
    int work_in_arena = eng->mode == OCC_MODE_OCCLUMENCY;
    /* The plan's timeline is the run's iterations: with split_k = k, image
     * 0's steps 0..k-1, image 1's, ..., then steps k.. for the whole batch
     * (a feature map of the per-image part lives only while its image runs) */
    const uint32_t K = eng->split_k, N = eng->batch;
    const uint32_t n_it = K ? N * K + (eng->n_steps - K) : eng->n_steps;
    uint32_t nw = 0;
    uint32_t wl;
    for (uint32_t i = 0; work_in_arena && i < eng->n_steps; i++)
        nw += occ_eng_step_work(eng, i, &wl) > 0 ? (K && i < K ? N : 1) : 0;
    occ_plan_buffer *bufs = calloc(nb + nw + 1u, sizeof *bufs);
    occ_plan_step *steps = calloc(n_it + 1u, sizeof *steps);
    uint64_t *csz = calloc(eng->n_segs + 1u, sizeof *csz);
    uint64_t *prio = calloc(eng->n_segs + 1u, sizeof *prio);
    if (!bufs || !steps || !csz || !prio) {
        st = occ_fail(e, OCC_ERR_NOMEM, "out of memory");
        goto out;
    }
    int32_t last_step = eng->n_steps ? (int32_t)eng->n_steps - 1 : 0;
    for (uint32_t b = 0; b < eng->batch; b++)
        for (uint32_t r = 0; r < eng->n_reqs; r++) {
            occ_plan_buffer *pb = &bufs[b * eng->n_reqs + r];
            int to_end = eng->reqs[r].last >= eng->n_steps; /* a graph output */
            pb->size = eng->reqs[r].size;
            pb->first = (int32_t)eng->reqs[r].first - 1;
            pb->last = (int32_t)eng->reqs[r].last - 1;
            if (pb->last > last_step)
                pb->last = last_step;
            if (pb->last < 0)
                pb->last = 0;
            if (pb->first > pb->last)
                pb->first = pb->last;
            if (K) {
                /* an input is written just before its image's first step */
                pb->first = pb->first < 0 ? (int32_t)(b * K) - 1
                                          : (int32_t)occ_eng_iteration(eng, (uint32_t)pb->first, b);
                pb->last = to_end ? (int32_t)n_it - 1 : (int32_t)occ_eng_iteration(eng, (uint32_t)pb->last, b);
            }
        }
    /* a strip chain's inner tensors exist in its bands only (chains are
     * formed at batch 1, or before split_k: each image's own iterations) */
    for (uint32_t c = 0; c < eng->n_chains; c++) {
        const strip_chain *ch = &eng->chains[c];
        for (uint32_t b = 0; b < N; b++) {
            for (uint32_t i = ch->s0; i < ch->s1; i++)
                bufs[b * eng->n_reqs + (uint32_t)eng->t[eng->steps[i].out].buf].size = 0;
            /* the chain writes its output band by band while it reads its
             * input: the output lives from the chain's first step */
            int32_t to = eng->steps[ch->s1].out, it0 = (int32_t)occ_eng_iteration(eng, ch->s0, b);
            int32_t r[2] = {eng->t[occ_eng_root_of(eng, to)].buf, eng->t[to].plain_buf};
            for (int k = 0; k < 2; k++)
                if (r[k] >= 0 && bufs[b * eng->n_reqs + (uint32_t)r[k]].first > it0)
                    bufs[b * eng->n_reqs + (uint32_t)r[k]].first = it0;
        }
    }
    for (uint32_t it = 0, k = nb; it < n_it; it++) {
        uint32_t i = occ_eng_step_of(K, N, it), wlast;
        uint64_t w = occ_eng_step_work(eng, i, &wlast);
        steps[it].part_size = w;
        steps[it].parts_max = 1;
        if (work_in_arena && w) {
            bufs[k++] = (occ_plan_buffer){w, (int32_t)it, (int32_t)(it + (wlast - i))};
            steps[it].part_size = 0;
        }
        if (eng->steps[i].kind != K_NONE) {
            steps[it].first_chunk = eng->steps[i].first_seg;
            steps[it].n_chunks = eng->steps[i].n_parts;
        }
    }
    for (uint32_t g = 0; g < eng->n_segs; g++)
        csz[g] = occ_eng_emem_round(&eng->mem, eng->segs[g].size); /* as the allocator rounds */
    /* Resident first: the segments of steps with the most weight bytes per
     * FLOP (fully connected layers; the deepest convolutions). Streaming a
     * conv's weights hides behind its compute on the other core; a Gemm at
     * batch 1 does two FLOPs per weight and cannot hide anything. */
    for (uint32_t i = 0; i < eng->n_steps; i++) {
        const step *s = &eng->steps[i];
        if (s->kind == K_NONE)
            continue;
        uint64_t w = 0;
        for (uint32_t p = 0; p < s->n_parts; p++)
            w += eng->segs[s->first_seg + p].size;
        double f = (double)occ_op_flops(m, &m->nodes[s->node]) * (K && i < K ? 1 : N) + 1.0;
        double pr = (double)w / f * 1e6;
        uint64_t v = pr > 1e18 ? UINT64_C(1000000000000000000) : (uint64_t)pr;
        if (occ_eng_chain_of(eng, i) >= 0) /* a chain's weights stay resident (below) */
            v = UINT64_C(2000000000000000000);
        for (uint32_t p = 0; p < s->n_parts; p++)
            prio[s->first_seg + p] = v;
    }
    uint64_t budget = eng->mode == OCC_MODE_OCCLUMENCY ? eng->budget : (UINT64_MAX >> 3);
    /* The arena, the working buffer and the load buffers are single
     * allocations the plan sizes to 64 bytes; a coarser provider (EPC pages)
     * rounds each up: keep that much aside. */
    const uint64_t gran = occ_eng_emem_round(&eng->mem, 1);
    const uint64_t reserve = (gran > 64 ? 6 * gran : 0) + fuse_reserve;
    if (budget <= eng->fixed_bytes + reserve) {
        st = occ_fail(e, OCC_ERR_BUDGET,
                      "does not fit the enclave memory budget: needs at least %llu bytes of "
                      "operator state alone, %llu available",
                      (unsigned long long)eng->fixed_bytes, (unsigned long long)budget);
        goto out;
    }
    occ_plan_input in = {.n_buffers = eng->n_steps ? nb + nw : 0,
                         .buffers = bufs,
                         .n_steps = n_it,
                         .steps = steps,
                         .n_chunks = eng->n_segs,
                         .chunk_sizes = csz,
                         .budget = budget - eng->fixed_bytes - reserve,
                         .window_slots = occ_eng_window_slots(eng),
                         .alignment = 64,
                         .strategy = eng->mode == OCC_MODE_BASELINE ? OCC_PLAN_NAIVE
                                                                    : OCC_PLAN_GREEDY_BY_SIZE,
                         .chunk_priority = prio};
    /* creating the engine needs, besides the resident weights, a chunk
     * buffer and room to build one segment; those use memory the arena,
     * working buffer and window take later, so plan again (with fewer
     * resident bytes) until that room exists */
    uint64_t load_tmp = 0, max_chunk = 0, max_plain = 0;
    for (uint32_t i = 0; i < m->n_chunks; i++)
        if (m->chunks[i].size > max_chunk)
            max_chunk = m->chunks[i].size;
    for (uint32_t g = 0; g < eng->n_segs; g++) {
        uint64_t p = occ_eng_seg_plain_size(eng, &eng->segs[g]);
        if (p > max_plain)
            max_plain = p;
    }
    const uint64_t avail0 = in.budget;
    eng->plan_bn = -1;
    for (int attempt = 0; attempt < 4; attempt++) {
        int32_t bn = -1;
        occ_plan_free(&eng->plan);
        st = occ_plan_make(&in, &eng->plan, &bn, e);
        if (st == OCC_ERR_BUDGET) {
            /* name the bottleneck layer */
            if (bn >= 0 && (uint32_t)bn < n_it) {
                bn = (int32_t)occ_eng_step_of(K, N, (uint32_t)bn);
                eng->plan_bn = bn;
                const occ_node *nd = &m->nodes[eng->steps[bn].node];
                occ_error_prefix(e, "layer %s (%s, step %d)", nm(nd->name), nm(nd->op), bn);
            }
            if (eng->fixed_bytes)
                occ_error_prefix(e, "(plus %llu bytes of operator state)",
                                 (unsigned long long)eng->fixed_bytes);
            goto out;
        }
        if (st)
            goto out;
        if ((st = occ_plan_check(&in, &eng->plan, e)))
            goto out;
        /* while loading, the resident segments are allocated and the
         * chunk buffer, a segment's plain rows and (when something streams)
         * one segment to seal are held besides them */
        uint64_t max_streamed = 0;
        for (uint32_t g = 0; g < eng->n_segs; g++)
            if (!eng->plan.resident[g] && eng->segs[g].size > max_streamed)
                max_streamed = eng->segs[g].size;
        load_tmp = max_chunk + max_plain + (max_streamed ? max_streamed + 16u : 0) + 3 * gran;
        uint64_t room = avail0 - eng->plan.resident_size;
        if (load_tmp <= room || eng->mode != OCC_MODE_OCCLUMENCY)
            break;
        uint64_t shrink = load_tmp - room;
        if (in.budget <= shrink + eng->plan.arena_size) {
            st = occ_fail(e, OCC_ERR_BUDGET,
                          "does not fit the enclave memory budget: loading needs %llu bytes "
                          "besides the plan's %llu, %llu available",
                          (unsigned long long)load_tmp, (unsigned long long)eng->plan.peak,
                          (unsigned long long)eng->budget);
            goto out;
        }
        in.budget -= shrink;
        st = OCC_ERR_BUDGET;
    }
    if (st) {
        st = occ_fail(e, OCC_ERR_BUDGET,
                      "does not fit the enclave memory budget: no room to load the weights "
                      "within %llu bytes",
                      (unsigned long long)eng->budget);
        goto out;
    }
    /* a strip chain runs every band with all its steps' weights: they must
     * all be in enclave memory at once (resident, first by priority) */
    for (uint32_t c = 0; c < eng->n_chains; c++)
        for (uint32_t i = eng->chains[c].s0; i <= eng->chains[c].s1; i++) {
            const step *s = &eng->steps[i];
            for (uint32_t p = 0; s->kind != K_NONE && p < s->n_parts; p++)
                if (!eng->plan.resident[s->first_seg + p]) {
                    eng->plan_bn = (int32_t)i;
                    st = occ_fail(e, OCC_ERR_BUDGET,
                                  "does not fit the enclave memory budget: the weights of the "
                                  "strip chain of steps %u..%u cannot all stay resident",
                                  eng->chains[c].s0, eng->chains[c].s1);
                    goto out;
                }
        }
    eng->planned = 1;
    /* a model whose feature maps are all empty (zero-size tensors) still gets
     * an arena: every tensor then has an address, its 0 bytes copied from it */
    eng->arena_size = eng->plan.arena_size ? eng->plan.arena_size : 64;
    eng->scratch_size = eng->plan.work_size;
    uint32_t slots = occ_eng_window_slots(eng);
    eng->window_slot = eng->plan.window_size ? eng->plan.window_size / slots : 0;
    eng->offsets = calloc(nb + 1u, sizeof *eng->offsets);
    if (!eng->offsets) {
        st = occ_fail(e, OCC_ERR_NOMEM, "out of memory");
        goto out;
    }
    memcpy(eng->offsets, eng->plan.offsets, (size_t)nb * sizeof *eng->offsets);
    if (nw) {
        eng->work_off = calloc(n_it, sizeof *eng->work_off);
        if (!eng->work_off) {
            st = occ_fail(e, OCC_ERR_NOMEM, "out of memory");
            goto out;
        }
        for (uint32_t it = 0, k = nb; it < n_it; it++)
            if (occ_eng_step_work(eng, occ_eng_step_of(K, N, it), &wl))
                eng->work_off[it] = eng->plan.offsets[k++];
    }
    for (uint32_t g = 0; g < eng->n_segs; g++)
        eng->segs[g].streamed = !eng->plan.resident[g];
    occ_eng_fuse_mark(eng, fuse, fuse_reserve);
    /* per-layer summary for occ inspect --plan */
    eng->layers = calloc(eng->n_steps + 1u, sizeof *eng->layers);
    if (!eng->layers) {
        st = occ_fail(e, OCC_ERR_NOMEM, "out of memory");
        goto out;
    }
    eng->n_layers = eng->n_steps;
    for (uint32_t i = 0; i < eng->n_steps; i++) {
        occ_plan_layer *L = &eng->layers[i];
        const step *s = &eng->steps[i];
        L->name = nm(m->nodes[s->node].name);
        L->op = nm(m->nodes[s->node].op);
        L->work = occ_eng_step_work(eng, i, &wl);
        int32_t c = occ_eng_chain_of(eng, i);
        if (c >= 0) {
            const strip_chain *ch = &eng->chains[c];
            L->chain_first = ch->s0;
            L->chain_last = ch->s1;
            L->band_rows = ch->rows;
            int64_t h = m->tensors[eng->steps[ch->s1].out].dims[2];
            L->n_bands = (uint32_t)((h + ch->rows - 1) / ch->rows);
        }
        L->parts = s->kind == K_NONE ? 1 : s->n_parts;
        int32_t at = K ? (int32_t)occ_eng_iteration(eng, i, 0) : (int32_t)i; /* image 0's */
        for (uint32_t b = 0; b < nb; b++)
            if (bufs[b].first <= at && at <= bufs[b].last)
                L->act_live += bufs[b].size;
        for (uint32_t p = 0; s->kind != K_NONE && p < s->n_parts; p++) {
            const seg *g = &eng->segs[s->first_seg + p];
            if (g->streamed) {
                L->seg_streamed++;
                L->bytes_streamed += g->size;
            } else {
                L->seg_resident++;
                L->bytes_resident += g->size;
            }
        }
    }
    st = OCC_OK;
out:
    free(bufs);
    free(steps);
    free(csz);
    free(prio);
    return st;
}

void occ_eng_drop_plan(occ_engine *eng)
{
    occ_plan_free(&eng->plan);
    free(eng->offsets);
    free(eng->work_off);
    free(eng->layers);
    eng->offsets = NULL;
    eng->work_off = NULL;
    eng->layers = NULL;
    eng->n_layers = 0;
    eng->planned = 0;
}

/* Plans without the fused FC buffers first; when that plan streams a whole
 * Gemm, plans again with them kept aside (they take from what stays
 * resident) and keeps that plan if the model still fits, else the first
 * (no fusion: fusing never makes a model not fit). */
occ_status occ_eng_make_plan_once(occ_engine *eng, occ_error *e)
{
    occ_status st = make_plan1(eng, 0, 1, e); /* a probe when it fuses (no room kept) */
    int fused = 0;
    for (uint32_t i = 0; !st && i < eng->n_steps; i++)
        fused |= eng->steps[i].fused;
    if (!fused)
        return st;
    occ_error e2 = {0};
    occ_eng_drop_plan(eng);
    if (make_plan1(eng, occ_eng_fuse_reserve(eng), 1, &e2) == OCC_OK && eng->fuse_reserve)
        return OCC_OK;
    occ_eng_drop_plan(eng);
    return make_plan1(eng, 0, 0, e);
}

/* Plans; a model whose feature maps pass the budget (occlumency; batch 1 or split_k)
 * gets strip chains (strips.c). A plan that fits as it is stays as it was. */
occ_status occ_eng_make_plan(occ_engine *eng, occ_error *e)
{
    occ_status st = occ_eng_make_plan_once(eng, e);
    if (st != OCC_ERR_BUDGET || eng->mode != OCC_MODE_OCCLUMENCY || (eng->batch > 1 && !eng->split_k) ||
        !occ_engine_strips || !eng->strips_ok)
        return st;
    return occ_eng_plan_strips(eng, e);
}
