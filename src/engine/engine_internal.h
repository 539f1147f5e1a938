/* Engine internals shared by the files of src/engine (not the manifest) and
 * by tools such as `occ inspect` / `occ run --stats`. */
#ifndef OCC_ENGINE_INTERNAL_H
#define OCC_ENGINE_INTERNAL_H

#include <stdint.h>

#include "occ/engine.h"

/* ---- arena (src/engine/arena.c) ----
 * One request per activation buffer. first/last are the step indices of the
 * buffer's first write and last read (a graph input has first = 0, a graph
 * output last = n_steps); the current allocator ignores them and gives every
 * buffer its own range; a lifetime-reusing planner can replace it. */
typedef struct occ_buf_req {
    uint64_t size;   /* bytes */
    uint32_t first, last;
    uint64_t offset; /* out: 64-byte aligned offset in the arena */
} occ_buf_req;

occ_status occ_arena_plan(occ_buf_req *reqs, uint32_t n, uint64_t *total,
                          occ_error *e) OCC_MUST_CHECK;

/* ---- weights (src/engine/weights.c) ---- */

/* Reads the chunks covering [lo, hi) of the data section into a new buffer
 * (64-byte aligned, caller frees with free()), verifies each chunk's SHA-256
 * before returning, and sets *base to the data-section offset of buf[0].
 * OCC_ERR_INTEGRITY when a chunk does not match or the range is not covered
 * by chunks. */
occ_status occ_weights_load(const occ_model *m, uint64_t lo, uint64_t hi, occ_read_fn read,
                            void *ctx, uint8_t **buf, uint64_t *base,
                            occ_error *e) OCC_MUST_CHECK;

/* ---- introspection (for occ inspect / occ run --stats) ---- */

typedef struct occ_engine_info {
    uint64_t arena_size;    /* bytes of activation memory */
    uint64_t weights_size;  /* bytes of weights held (repacked or plain) */
    uint32_t n_steps;       /* kernels run per inference (after fusion) */
    uint32_t n_fused;       /* nodes folded into a preceding Conv */
    uint32_t n_reorders;    /* layout conversions per inference */
} occ_engine_info;

void occ_engine_get_info(const occ_engine *eng, occ_engine_info *info);

/* Per-node timing of the last run when enabled (0 disables). times_ns has
 * m->n_nodes entries; a fused node's time is charged to the Conv it joined. */
void occ_engine_set_profiling(occ_engine *eng, int on);
const uint64_t *occ_engine_node_times(const occ_engine *eng);

#endif
