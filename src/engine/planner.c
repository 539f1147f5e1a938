/* The memory planner: a pure function (no I/O, no globals). See planner.h. */
#include <stdlib.h>
#include <string.h>

#include "engine/planner.h"

static uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }

static int lifetimes_overlap(const occ_plan_buffer *a, const occ_plan_buffer *b)
{
    return a->first <= b->last && b->first <= a->last;
}

static occ_status validate(const occ_plan_input *in, occ_error *e)
{
    if (!in->alignment || (in->alignment & (in->alignment - 1)))
        return occ_fail(e, OCC_ERR_INVALID, "planner: alignment %u is not a power of two", in->alignment);
    for (uint32_t i = 0; i < in->n_buffers; i++) {
        const occ_plan_buffer *b = &in->buffers[i];
        if (b->first < -1 || b->last < b->first || b->last >= (int32_t)in->n_steps ||
            b->size > (UINT64_MAX >> 2))
            return occ_fail(e, OCC_ERR_INVALID, "planner: buffer %u has lifetime [%d, %d] of %u steps", i,
                            b->first, b->last, in->n_steps);
    }
    for (uint32_t s = 0; s < in->n_steps; s++) {
        const occ_plan_step *st = &in->steps[s];
        if (st->first_chunk > in->n_chunks || st->n_chunks > in->n_chunks - st->first_chunk)
            return occ_fail(e, OCC_ERR_INVALID, "planner: step %u uses chunks outside the table", s);
        if (st->part_size > (UINT64_MAX >> 2) / (st->parts_max ? st->parts_max : 1))
            return occ_fail(e, OCC_ERR_INVALID, "planner: step %u has an absurd working buffer", s);
    }
    for (uint32_t c = 0; c < in->n_chunks; c++)
        if (in->chunk_sizes[c] > (UINT64_MAX >> 2))
            return occ_fail(e, OCC_ERR_INVALID, "planner: chunk %u is absurdly large", c);
    return OCC_OK;
}

/* Sort key for greedy-by-size: larger first, then earlier first use, then
 * index, so the result is deterministic. */
static int by_size_desc(const void *pa, const void *pb, void *ctx)
{
    const occ_plan_buffer *buffers = ctx;
    uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
    const occ_plan_buffer *x = &buffers[a], *y = &buffers[b];
    if (x->size != y->size)
        return x->size > y->size ? -1 : 1;
    if (x->first != y->first)
        return x->first < y->first ? -1 : 1;
    return (a > b) - (a < b);
}

/* Resident priority: higher first, then execution (index) order. */
static int by_priority_desc(const void *pa, const void *pb, void *ctx)
{
    const uint64_t *prio = ctx;
    uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
    if (prio[a] != prio[b])
        return prio[a] > prio[b] ? -1 : 1;
    return (a > b) - (a < b);
}

static int by_u64_desc(const void *pa, const void *pb)
{
    uint64_t a = *(const uint64_t *)pa, b = *(const uint64_t *)pb;
    return (a < b) - (a > b);
}

typedef struct {
    uint64_t lo, hi;
} range;

static int by_lo(const void *pa, const void *pb)
{
    const range *a = pa, *b = pb;
    return (a->lo > b->lo) - (a->lo < b->lo);
}

static occ_status place_greedy(const occ_plan_input *in, uint64_t *offsets, uint64_t *arena, occ_error *e)
{
    uint32_t n = in->n_buffers;
    uint32_t *order = malloc((size_t)(n ? n : 1) * sizeof *order);
    uint8_t *placed = calloc(n ? n : 1, 1);
    range *busy = malloc((size_t)(n ? n : 1) * sizeof *busy);
    if (!order || !placed || !busy) {
        free(order);
        free(placed);
        free(busy);
        return occ_fail(e, OCC_ERR_NOMEM, "planner: out of memory");
    }
    for (uint32_t i = 0; i < n; i++)
        order[i] = i;
    qsort_r(order, n, sizeof *order, by_size_desc, (void *)in->buffers);

    uint64_t top = 0;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t i = order[k];
        const occ_plan_buffer *b = &in->buffers[i];
        uint64_t need = align_up(b->size, in->alignment);
        uint32_t nb = 0;
        for (uint32_t j = 0; j < n; j++)
            if (placed[j] && in->buffers[j].size && lifetimes_overlap(b, &in->buffers[j]))
                busy[nb++] = (range){offsets[j], offsets[j] + align_up(in->buffers[j].size, in->alignment)};
        qsort(busy, nb, sizeof *busy, by_lo);
        uint64_t at = 0;
        for (uint32_t j = 0; j < nb; j++) {
            if (busy[j].lo >= at + need)
                break; /* the gap before busy[j] fits */
            if (busy[j].hi > at)
                at = busy[j].hi;
        }
        offsets[i] = b->size ? at : 0;
        placed[i] = 1;
        if (b->size && at + need > top)
            top = at + need;
    }
    *arena = top;
    free(order);
    free(placed);
    free(busy);
    return OCC_OK;
}

static void place_naive(const occ_plan_input *in, uint64_t *offsets, uint64_t *arena)
{
    uint64_t at = 0;
    for (uint32_t i = 0; i < in->n_buffers; i++) {
        offsets[i] = in->buffers[i].size ? at : 0;
        at += align_up(in->buffers[i].size, in->alignment);
    }
    *arena = at;
}

/* Fewest pieces whose working buffer fits in avail; 0 when none does. */
static uint32_t choose_parts(const occ_plan_step *st, uint64_t avail, uint64_t *work)
{
    uint32_t pmax = st->parts_max ? st->parts_max : 1;
    for (uint32_t k = 1; k <= pmax; k++) {
        uint64_t per = (uint64_t)((pmax + k - 1) / k) * st->part_size;
        if (per <= avail) {
            *work = per;
            return k;
        }
        /* Pieces of equal count: skip k that give the same per-piece size. */
        uint32_t rows = (pmax + k - 1) / k;
        if (rows > 1) {
            uint32_t next = (pmax + rows - 2) / (rows - 1);
            if (next > k + 1)
                k = next - 1;
        }
    }
    return 0;
}

/* Live feature-map bytes at each step; returns the step with the most. */
static int32_t busiest_step(const occ_plan_input *in)
{
    int32_t best = -1;
    uint64_t best_bytes = 0;
    for (uint32_t s = 0; s < in->n_steps; s++) {
        uint64_t live = 0;
        for (uint32_t i = 0; i < in->n_buffers; i++)
            if (in->buffers[i].first <= (int32_t)s && (int32_t)s <= in->buffers[i].last)
                live += in->buffers[i].size;
        if (best < 0 || live > best_bytes) {
            best = (int32_t)s;
            best_bytes = live;
        }
    }
    return best;
}

static occ_status over_budget(const occ_plan_input *in, uint64_t needed, int32_t step, const char *what,
                              int32_t *bottleneck, occ_error *e)
{
    if (bottleneck)
        *bottleneck = step;
    return occ_fail(e, OCC_ERR_BUDGET,
                    "does not fit the enclave memory budget: needs at least %llu bytes, %llu available; "
                    "bottleneck: step %d (%s)",
                    (unsigned long long)needed, (unsigned long long)in->budget, step, what);
}

/* Working buffers for every step within avail; fills parts and the max. */
static int plan_work(const occ_plan_input *in, uint64_t avail, uint32_t *parts, uint64_t *work_max,
                     int32_t *fail_step)
{
    uint64_t w_max = 0;
    for (uint32_t s = 0; s < in->n_steps; s++) {
        uint64_t w = 0;
        uint32_t k = choose_parts(&in->steps[s], avail, &w);
        if (!k) {
            *fail_step = (int32_t)s;
            return 0;
        }
        parts[s] = k;
        if (w > w_max)
            w_max = w;
    }
    *work_max = w_max;
    return 1;
}

occ_status occ_plan_make(const occ_plan_input *in, occ_plan *out, int32_t *bottleneck, occ_error *e)
{
    memset(out, 0, sizeof *out);
    if (bottleneck)
        *bottleneck = -1;
    occ_status s = validate(in, e);
    if (s)
        return s;
    out->offsets = calloc(in->n_buffers ? in->n_buffers : 1, sizeof *out->offsets);
    out->parts = calloc(in->n_steps ? in->n_steps : 1, sizeof *out->parts);
    out->resident = calloc(in->n_chunks ? in->n_chunks : 1, 1);
    if (!out->offsets || !out->parts || !out->resident) {
        occ_plan_free(out);
        return occ_fail(e, OCC_ERR_NOMEM, "planner: out of memory");
    }

    if (in->strategy == OCC_PLAN_NAIVE)
        place_naive(in, out->offsets, &out->arena_size);
    else if ((s = place_greedy(in, out->offsets, &out->arena_size, e))) {
        occ_plan_free(out);
        return s;
    }

    uint64_t total_chunks = 0, max_chunk = 0;
    for (uint32_t c = 0; c < in->n_chunks; c++) {
        total_chunks += in->chunk_sizes[c];
        if (in->chunk_sizes[c] > max_chunk)
            max_chunk = in->chunk_sizes[c];
    }
    uint32_t slots = in->window_slots >= 1 ? in->window_slots : 1;
    int32_t fail_step = -1;

    if (out->arena_size > in->budget) {
        int32_t st = busiest_step(in);
        s = over_budget(in, out->arena_size, st, "feature maps alive at once", bottleneck, e);
        occ_plan_free(out);
        return s;
    }
    uint64_t left = in->budget - out->arena_size;

    /* 1. Everything resident, no streaming window (fewest transfers). */
    if (total_chunks <= left && plan_work(in, left - total_chunks, out->parts, &out->work_size, &fail_step)) {
        memset(out->resident, 1, in->n_chunks);
        out->resident_size = total_chunks;
        out->window_size = 0;
    } else {
        /* 2. Stream through a window; keep what else fits resident.
         * Streamed bytes cost a copy and a check on every inference, a
         * finer split of the working buffer costs little: cap the working
         * buffer at an eighth of the budget (or the finest split, if larger)
         * and give the rest to resident chunks. The window's slots are as
         * large as the largest streamed chunk; with priorities, every
         * distinct chunk size is tried as the slot size (larger chunks then
         * stay resident) and the plan streaming the least priority-weighted
         * bytes wins. */
        uint64_t finest = 0;
        for (uint32_t st = 0; st < in->n_steps; st++)
            if (in->steps[st].part_size > finest)
                finest = in->steps[st].part_size;
        uint32_t nc = in->n_chunks ? in->n_chunks : 1;
        uint32_t *order = malloc((size_t)nc * sizeof *order);
        uint32_t *parts = malloc((size_t)(in->n_steps ? in->n_steps : 1) * sizeof *parts);
        uint8_t *res = malloc(nc);
        uint64_t *sizes = malloc((size_t)nc * sizeof *sizes);
        if (!order || !parts || !res || !sizes) {
            free(order);
            free(parts);
            free(res);
            free(sizes);
            occ_plan_free(out);
            return occ_fail(e, OCC_ERR_NOMEM, "planner: out of memory");
        }
        for (uint32_t c = 0; c < in->n_chunks; c++) {
            order[c] = c;
            sizes[c] = in->chunk_sizes[c];
        }
        if (in->chunk_priority)
            qsort_r(order, in->n_chunks, sizeof *order, by_priority_desc, (void *)in->chunk_priority);
        qsort(sizes, in->n_chunks, sizeof *sizes, by_u64_desc);
        uint32_t n_cand = in->chunk_priority ? in->n_chunks : (in->n_chunks ? 1 : 0);
        double best = -1.0;
        int32_t first_fail = -1;
        uint64_t fail_need = 0;
        for (uint32_t ci = 0; ci < n_cand; ci++) {
            uint64_t slot = sizes[ci];
            if (ci && slot == sizes[ci - 1])
                continue;
            uint64_t window = (uint64_t)slots * slot;
            if (window > left) {
                if (!ci) {
                    first_fail = busiest_step(in);
                    fail_need = out->arena_size + window;
                }
                continue;
            }
            uint64_t avail = left - window;
            uint64_t cap = in->budget / 8 < avail ? in->budget / 8 : avail, work = 0;
            if (cap < finest)
                cap = finest < avail ? finest : avail;
            int32_t fs = -1;
            if (!plan_work(in, cap, parts, &work, &fs)) {
                if (!ci) {
                    first_fail = -2 - fs;
                    fail_need = out->arena_size + window + in->steps[fs].part_size;
                }
                continue;
            }
            uint64_t spare = left - window - work, rsize = 0;
            memset(res, 0, nc);
            int ok = 1;
            for (uint32_t c = 0; c < in->n_chunks && ok; c++)
                if (in->chunk_sizes[c] > slot) { /* must stay resident */
                    if (in->chunk_sizes[c] > spare)
                        ok = 0;
                    else {
                        res[c] = 1;
                        rsize += in->chunk_sizes[c];
                        spare -= in->chunk_sizes[c];
                    }
                }
            if (!ok)
                continue;
            double cost = 0.0;
            for (uint32_t k = 0; k < in->n_chunks; k++) {
                uint32_t c = order[k];
                if (res[c])
                    continue;
                if (in->chunk_sizes[c] <= spare) {
                    res[c] = 1;
                    rsize += in->chunk_sizes[c];
                    spare -= in->chunk_sizes[c];
                } else {
                    cost += (double)in->chunk_sizes[c] *
                            (in->chunk_priority ? (double)in->chunk_priority[c] + 1.0 : 1.0);
                }
            }
            if (best >= 0.0 && cost >= best)
                continue;
            best = cost;
            memcpy(out->resident, res, in->n_chunks);
            memcpy(out->parts, parts, (size_t)in->n_steps * sizeof *parts);
            out->resident_size = rsize;
            out->work_size = work;
            /* the slot: the largest chunk actually streamed */
            uint64_t ms = 0;
            for (uint32_t c = 0; c < in->n_chunks; c++)
                if (!res[c] && in->chunk_sizes[c] > ms)
                    ms = in->chunk_sizes[c];
            out->window_size = (uint64_t)slots * ms;
        }
        free(order);
        free(parts);
        free(res);
        free(sizes);
        if (best < 0.0) {
            if (first_fail <= -2) {
                int32_t fs = -2 - first_fail;
                s = over_budget(in, fail_need, fs, "working buffer even when split finest", bottleneck, e);
            } else {
                s = over_budget(in, fail_need ? fail_need : out->arena_size + (uint64_t)slots * max_chunk,
                                first_fail >= 0 ? first_fail : busiest_step(in),
                                "weight streaming window", bottleneck, e);
            }
            occ_plan_free(out);
            return s;
        }
    }
    out->peak = out->arena_size + out->work_size + out->window_size + out->resident_size;
    return OCC_OK;
}

void occ_plan_free(occ_plan *p)
{
    if (!p)
        return;
    free(p->offsets);
    free(p->parts);
    free(p->resident);
    memset(p, 0, sizeof *p);
}

occ_status occ_plan_check(const occ_plan_input *in, const occ_plan *p, occ_error *e)
{
    for (uint32_t i = 0; i < in->n_buffers; i++) {
        const occ_plan_buffer *a = &in->buffers[i];
        if (!a->size)
            continue;
        if (p->offsets[i] % in->alignment)
            return occ_fail(e, OCC_ERR_INTERNAL, "plan: buffer %u is misaligned", i);
        if (p->offsets[i] + a->size > p->arena_size)
            return occ_fail(e, OCC_ERR_INTERNAL, "plan: buffer %u ends past the arena", i);
        for (uint32_t j = i + 1; j < in->n_buffers; j++) {
            const occ_plan_buffer *b = &in->buffers[j];
            if (!b->size || !lifetimes_overlap(a, b))
                continue;
            if (p->offsets[i] < p->offsets[j] + b->size && p->offsets[j] < p->offsets[i] + a->size)
                return occ_fail(e, OCC_ERR_INTERNAL,
                                "plan: buffers %u and %u are alive together and overlap in memory", i, j);
        }
    }
    uint64_t work = 0, resident = 0, max_streamed = 0;
    for (uint32_t s = 0; s < in->n_steps; s++) {
        uint32_t pmax = in->steps[s].parts_max ? in->steps[s].parts_max : 1;
        if (p->parts[s] < 1 || p->parts[s] > pmax)
            return occ_fail(e, OCC_ERR_INTERNAL, "plan: step %u has %u pieces of %u", s, p->parts[s], pmax);
        uint64_t w = (uint64_t)((pmax + p->parts[s] - 1) / p->parts[s]) * in->steps[s].part_size;
        if (w > work)
            work = w;
    }
    if (work > p->work_size)
        return occ_fail(e, OCC_ERR_INTERNAL, "plan: working buffer of %llu bytes exceeds the %llu planned",
                        (unsigned long long)work, (unsigned long long)p->work_size);
    for (uint32_t c = 0; c < in->n_chunks; c++) {
        if (p->resident[c])
            resident += in->chunk_sizes[c];
        else if (in->chunk_sizes[c] > max_streamed)
            max_streamed = in->chunk_sizes[c];
    }
    if (resident != p->resident_size)
        return occ_fail(e, OCC_ERR_INTERNAL, "plan: resident bytes disagree");
    if (max_streamed && p->window_size < max_streamed)
        return occ_fail(e, OCC_ERR_INTERNAL, "plan: a streamed chunk does not fit the window");
    if (p->peak != p->arena_size + p->work_size + p->window_size + p->resident_size)
        return occ_fail(e, OCC_ERR_INTERNAL, "plan: peak is not the sum of its parts");
    if (p->peak > in->budget)
        return occ_fail(e, OCC_ERR_INTERNAL, "plan: peak %llu exceeds the budget %llu",
                        (unsigned long long)p->peak, (unsigned long long)in->budget);
    return OCC_OK;
}
