/* The memory planner (trusted, pure): given buffers with lifetimes, per-step
 * working buffers that can be partitioned, and the weight chunks each step
 * streams, produce offsets in one arena and a budget split, or say why no plan
 * fits.
 *
 * It knows nothing about operators: the engine describes the model as
 *  - buffers (feature maps): size in bytes and the inclusive range of steps
 *    [first, last] during which the buffer must exist;
 *  - steps (nodes in execution order): a working buffer (im2col, GEMM
 *    scratch) that can be split into `parts_max` equal pieces, so partitioned
 *    execution needs ceil(parts_max / k) * part_size bytes with k pieces; and
 *    the run of weight chunks the step consumes;
 *  - chunk sizes.
 * The plan places buffers in one arena (lifetime-based reuse), picks each
 * step's partition count, sizes a weight streaming window (a ring of
 * `window_slots` slots, each as large as the largest chunk), and keeps as many
 * chunks resident as the leftover budget allows (a resident chunk is loaded
 * and verified once, then never streamed again). Policy: if every chunk can
 * stay resident (with the working buffers split as needed), no window; else
 * the working buffer is capped at budget/8 (or the finest split) and the
 * rest goes to resident chunks by priority (chunk_priority, highest first),
 * else in execution order.
 *
 * Two placement strategies: OCC_PLAN_NAIVE (every buffer its own range: the
 * oracle, and what a framework that keeps every feature map does) and
 * OCC_PLAN_GREEDY_BY_SIZE (largest first, each at the lowest offset that no
 * lifetime-overlapping buffer occupies; TFLite's planner does the same). */
#ifndef OCC_PLANNER_H
#define OCC_PLANNER_H

#include <stdint.h>

#include "occ/status.h"

typedef struct occ_plan_buffer {
    uint64_t size;   /* bytes; 0 = needs no memory */
    int32_t first;   /* first step that uses it (-1 = before step 0: an input) */
    int32_t last;    /* last step that uses it (inclusive) */
} occ_plan_buffer;

typedef struct occ_plan_step {
    uint64_t part_size;   /* working-buffer bytes of one piece */
    uint32_t parts_max;   /* pieces when split finest; 0 or 1 = not splittable */
    uint32_t first_chunk; /* weight chunks [first_chunk, first_chunk + n_chunks) */
    uint32_t n_chunks;
} occ_plan_step;

typedef enum occ_plan_strategy {
    OCC_PLAN_NAIVE = 0,
    OCC_PLAN_GREEDY_BY_SIZE = 1,
} occ_plan_strategy;

typedef struct occ_plan_input {
    uint32_t n_buffers;
    const occ_plan_buffer *buffers;
    uint32_t n_steps;
    const occ_plan_step *steps;
    uint32_t n_chunks;
    const uint64_t *chunk_sizes;
    uint64_t budget;        /* bytes */
    uint32_t window_slots;  /* weight ring slots; >= 2 lets loading overlap compute */
    uint32_t alignment;     /* arena alignment of every buffer, power of two (e.g. 64) */
    occ_plan_strategy strategy;
    /* Optional, per chunk: how much keeping it resident is worth (higher
     * first; ties in execution order). NULL = execution order. The engine
     * gives streamed bytes that compute cannot hide (a fully connected
     * layer's: few FLOPs per weight byte) the highest value. */
    const uint64_t *chunk_priority;
} occ_plan_input;

typedef struct occ_plan {
    uint64_t *offsets;       /* per buffer, in the arena (caller frees via occ_plan_free) */
    uint64_t arena_size;
    uint32_t *parts;         /* per step: pieces chosen (>= 1) */
    uint64_t work_size;      /* largest working buffer over steps */
    uint64_t window_size;    /* window_slots * largest streamed chunk */
    uint8_t *resident;       /* per chunk: 1 = kept resident */
    uint64_t resident_size;
    uint64_t peak;           /* arena + work + window + resident */
} occ_plan;

/* Makes a plan within inp->budget. On OCC_ERR_BUDGET the message says how many
 * bytes the smallest plan needs, how many are available, and which step is
 * the bottleneck (its index is also returned in *bottleneck_step if non-NULL,
 * else -1 when the arena alone is too big at no particular step). */
occ_status occ_plan_make(const occ_plan_input *inp, occ_plan *out, int32_t *bottleneck_step,
                         occ_error *e) OCC_MUST_CHECK;

void occ_plan_free(occ_plan *p);

/* Checks a plan against its input: every buffer inside the arena, aligned,
 * and no two buffers whose lifetimes overlap share a byte; parts within
 * [1, parts_max]; the peak within the budget and equal to the sum of its
 * parts. Returns OCC_OK or OCC_ERR_INTERNAL with the first violation. */
occ_status occ_plan_check(const occ_plan_input *inp, const occ_plan *p, occ_error *e) OCC_MUST_CHECK;

#endif
