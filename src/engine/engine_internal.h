/* Engine internals shared by the files of src/engine (not the manifest) and
 * by tools such as `occ inspect` / `occ run --stats`. */
#ifndef OCC_ENGINE_INTERNAL_H
#define OCC_ENGINE_INTERNAL_H

#include <stdint.h>

#include "occ/engine.h"

/* One activation buffer: size and the steps of its first write and last
 * read (internal to exec.c and memplan.c; the planner places them). */
typedef struct occ_buf_req {
    uint64_t size;   /* bytes */
    uint32_t first, last;
    uint64_t offset;
} occ_buf_req;


/* ---- introspection (for occ inspect / occ run --stats) ---- */

typedef struct occ_engine_info {
    uint64_t arena_size;    /* bytes of activation memory */
    uint64_t weights_size;  /* bytes of weights held (repacked or plain) */
    uint32_t n_steps;       /* kernels run per inference (after fusion) */
    uint32_t n_fused;       /* nodes folded into a preceding Conv */
    uint32_t n_reorders;    /* layout conversions per inference */
    uint32_t n_concats_elided; /* Concats whose inputs are written in place (no copy) */
} occ_engine_info;

void occ_engine_get_info(const occ_engine *eng, occ_engine_info *info);

/* Per-node timing of the last run when enabled (0 disables). times_ns has
 * m->n_nodes entries; a fused node's time is charged to the Conv it joined. */
void occ_engine_set_profiling(occ_engine *eng, int on);
const uint64_t *occ_engine_node_times(const occ_engine *eng);
/* With profiling on: nanoseconds the last run's compute waited for streamed
 * weight segments (the streaming cost not hidden behind compute). */
uint64_t occ_engine_stall_ns(const occ_engine *eng);

/* ---- the memory plan (occ inspect --plan) ---- */

typedef struct occ_plan_layer {
    const char *name, *op;
    uint64_t act_live;       /* feature-map bytes alive during the step */
    uint64_t work;           /* working buffer (scratchpad) bytes */
    uint32_t parts;          /* pieces the layer runs in (weight segments) */
    uint32_t seg_streamed, seg_resident;
    uint64_t bytes_streamed, bytes_resident;
    /* in a strip chain (src/engine/strips.c): its steps [chain_first,
     * chain_last], run in bands of band_rows output rows of the last
     * (n_bands of them); band_rows 0 = not in one */
    uint32_t chain_first, chain_last, n_bands;
    int64_t band_rows;
} occ_plan_layer;

typedef struct occ_plan_summary {
    uint64_t budget;         /* 0 = no budget (native, baseline) */
    uint64_t arena, work, window, resident, fixed, peak, seg_max;
    uint64_t streamed;       /* bytes copied in and checked per run (of the whole batch) */
    uint32_t window_slots, n_segs, n_streamed;
    uint32_t batch;
    uint32_t split_step;     /* batch > 1: steps before it run image by image; 0 = all
                                steps for the whole batch */
    uint32_t fc_fused;       /* streamed Gemm steps fused (fcfuse.c), not through the ring */
    /* Of peak: what the compiled model holds once however many engines
     * share it (resident weights, weights kept for preparing kernels), and
     * what each engine (context) holds besides (arena, window, working
     * buffers, its kernels' memory, fused FC buffers). n engines of one
     * compiled model: shared + n * per_engine. */
    uint64_t shared, per_engine;
} occ_plan_summary;

/* Tests only: how a batch > 1 runs in occlumency mode. -1 (default): plan
 * both ways and keep the one that streams less; 0: image by image up to the
 * first fully connected layer; 1: every step for the whole batch. */
extern int occ_engine_batch_order;

/* Tests only: nonzero = a Gather of a weight table by run-time ids reads
 * only the rows it names (the plain kernel, no oblivious pieces): the
 * control that shows tests/test_embed_oblivious.c sees the leak. */
extern int occ_engine_gather_direct;
/* Strip chains (strips.c): 0 = never formed (tests: the plan without them);
 * strip_rows_max > 0 caps band heights (tests: many bands, a shorter last). */
extern int occ_engine_strips;
extern int64_t occ_engine_strip_rows_max;

/* Experiments and tests: 0 = a streamed Gemm goes through the ring like any
 * segment instead of being fused (src/engine/fcfuse.c); `occ` sets it from
 * OCC_FUSED_FC=0. Default 1. */
extern int occ_engine_fuse_fc;

/* Loader threads in the idle scheduling class (SCHED_IDLE): they load only
 * on a core no compute thread wants, and the compute thread loads what it
 * needs itself when they are behind (occ_eng_ring_get). Default 1; `occ`
 * sets it from OCC_LOADER_IDLE=0/1 (docs/streaming.md). */
extern int occ_engine_loader_idle;

/* Makes the engine up to its plan (weights are read only where an operator
 * needs them to prepare), for occ inspect --plan; it cannot run. */
occ_status occ_engine_plan_only(const occ_model *m, const occ_engine_opts *opts, occ_read_fn read,
                                void *read_ctx, occ_engine **out, occ_error *e) OCC_MUST_CHECK;
void occ_engine_plan_summary(const occ_engine *eng, occ_plan_summary *sum,
                             const occ_plan_layer **layers, uint32_t *n_layers);

/* The budget each of n engines on one compiled model may plan with so that
 * together they hold at most total bytes (shared counted once; occlumency
 * mode; other modes: total / n, unplanned). docs/server.md, "The pool". */
occ_status occ_engine_pool_budget(const occ_model *m, const occ_engine_opts *opts,
                                  occ_read_fn read, void *read_ctx, uint32_t n, uint64_t total,
                                  uint64_t *budget, occ_plan_summary *chosen,
                                  occ_error *e) OCC_MUST_CHECK;

/* The plan of a compiled model (shared and per-engine bytes: above). */
void occ_compiled_plan_summary(const occ_compiled *c, occ_plan_summary *sum,
                               const occ_plan_layer **layers, uint32_t *n_layers);

/* Tests only: the untrusted ciphertext of the streamed segments. */
uint8_t *occ_engine_debug_stash(occ_engine *eng, uint64_t *size);

#endif
