/* The inference engine (trusted): executes an occ_model.
 *
 * Weights reach the engine only through a read callback (the host moves the
 * bytes); the engine copies each chunk into its own memory and checks the
 * chunk's SHA-256 from the manifest before any use. */
#ifndef OCC_ENGINE_H
#define OCC_ENGINE_H

#include <stdint.h>

#include "occ/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Copies [offset, offset+size) of the pack's data section into dst. */
typedef occ_status (*occ_read_fn)(void *ctx, uint64_t offset, void *dst, uint64_t size,
                                  occ_error *e);

/* The budget when none is given: the usable EPC of SGX1. */
#define OCC_DEFAULT_BUDGET (UINT64_C(93) << 20)

/* Execution modes (DESIGN §5). */
typedef enum occ_mode {
    OCC_MODE_NATIVE = 0,     /* no enclave: every weight resident, the speed reference */
    OCC_MODE_BASELINE = 1,   /* a framework naively run in an enclave: all weights loaded
                                into enclave memory, every feature map kept, whole im2col
                                buffers (the paper's baseline) */
    OCC_MODE_OCCLUMENCY = 2, /* planned to a budget: streamed, verified weights, reused
                                feature maps, partitioned convolutions, pipelined loading */
} occ_mode;

/* Where enclave memory comes from. Every byte the engine holds in the
 * enclave is allocated here (the EPC emulator in `--enclave emu`); NULL in
 * occ_engine_opts = the engine's own counting allocator over malloc. */
typedef struct occ_mem_provider {
    void *ctx;
    occ_status (*alloc)(void *ctx, size_t size, void **out, occ_error *e);
    void (*free)(void *ctx, void *p, size_t size);
    /* Bytes every allocation really occupies a multiple of (a power of two;
     * 0 = 64). The EPC emulator hands out whole 4 KiB pages, so the engine
     * counts and plans each allocation rounded up to this: the measured peak
     * is what the enclave really holds. */
    size_t granularity;
} occ_mem_provider;

typedef struct occ_engine_opts {
    int threads;                 /* compute threads; 0 = default (all cores) */
    int loader_threads;          /* weight loading/verifying threads; 0 = default (1) */
    occ_mode mode;
    uint64_t budget;             /* occlumency: bytes of enclave memory; 0 = 93 MiB */
    uint32_t batch;              /* inputs per occ_engine_run; 0 = 1 */
    const occ_mem_provider *mem; /* NULL = counting malloc */
    /* The model key of a pack whose weights are encrypted (32 bytes,
     * docs/pack-format.md "Encrypted packs"); NULL for plain packs. Read only
     * during occ_engine_create (the engine keeps no copy; the caller wipes
     * it). A missing or wrong key fails create with OCC_ERR_KEY before any
     * weight is read; a key for a plain pack is refused (OCC_ERR_INVALID).
     * In the server, occ_enclave_config.engine is every engine's template,
     * so its weights_key reaches each engine (one key for the models served). */
    const uint8_t *weights_key;
    /* Optional: called after each weight chunk has been copied in and
     * verified (for traces), from the loading thread. */
    void (*on_chunk)(void *ctx, uint32_t chunk);
    void *hook_ctx;
} occ_engine_opts;

/* Measured, not estimated. */
typedef struct occ_engine_stats {
    uint64_t budget_bytes;       /* 0 when the mode has no budget */
    uint64_t enclave_bytes;      /* held now: the engine's own bytes plus its compiled model's */
    uint64_t peak_enclave_bytes; /* most ever held at once, counted by the allocator (the
                                    compiled model's bytes included) */
    uint64_t shared_bytes;       /* of enclave_bytes, held by the compiled model (resident
                                    weights, ...): counted once however many engines share it */
    uint64_t plan_peak_bytes;    /* what the planner predicted */
    uint64_t chunks_loaded;      /* weight chunks copied in (cumulative) */
    uint64_t bytes_loaded;       /* weight bytes copied in (cumulative) */
    uint64_t bytes_verified;     /* bytes checked (SHA-256 or AEAD) (cumulative) */
    uint64_t bytes_decrypted;    /* encrypted packs: bytes AES-256-GCM-decrypted, pack chunks
                                    at create and stash segments at run (cumulative) */
    uint64_t integrity_failures; /* cumulative */
    uint64_t plan_stream_bytes;  /* planned: weight bytes copied in and checked per run (of a
                                    whole batch); 0 = every weight resident */
} occ_engine_stats;

typedef struct occ_engine occ_engine;

/* Compile once, run many (llama.cpp's model/context split). A compiled
 * model holds what is read-only after create: the validated manifest's
 * steps and layouts, the memory plan, the resident weights (read and
 * verified once) and the sealed stash of streamed ones. An engine (a
 * context) made from it holds what a run writes: its kernels (op states
 * and oneDNN primitives, prepared again from the compiled model without
 * reading the host), arena, working buffer, streaming ring, loader threads
 * and MAC contexts. Contexts of one compiled model run concurrently, each
 * from one thread at a time. */
typedef struct occ_compiled occ_compiled;

/* Everything of occ_engine_create but the run memory; mode, budget, batch,
 * weights_key and mem are fixed here for every context. The model must
 * outlive it. */
occ_status occ_compiled_create(const occ_model *m, const occ_engine_opts *opts,
                               occ_read_fn read, void *read_ctx, occ_compiled **out,
                               occ_error *e) OCC_MUST_CHECK;

/* A context on c. Of opts only threads and loader_threads are read (NULL:
 * those c was compiled with); c must outlive the engine. */
occ_status occ_engine_create_ctx(const occ_compiled *c, const occ_engine_opts *opts,
                                 occ_engine **out, occ_error *e) OCC_MUST_CHECK;

/* After every context made from it is freed. */
void occ_compiled_free(occ_compiled *c);

/* The compiled model alone: enclave bytes it holds (shared_bytes =
 * enclave_bytes), its create's peak, weight loads and checks. */
void occ_compiled_get_stats(const occ_compiled *c, occ_engine_stats *out);

void occ_engine_get_stats(const occ_engine *eng, occ_engine_stats *out);

/* Validates the model (every op's attributes and shapes, re-inferred), loads
 * and verifies its weights, and prepares kernels: occ_compiled_create plus
 * occ_engine_create_ctx, the engine owning its compiled model. The model
 * must outlive the engine. */
occ_status occ_engine_create(const occ_model *m, const occ_engine_opts *opts,
                             occ_read_fn read, void *read_ctx, occ_engine **out,
                             occ_error *e) OCC_MUST_CHECK;

/* inputs[i] / outputs[i] follow m->inputs / m->outputs, each a dense
 * little-endian buffer of the tensor's dtype and shape (tensors[t].size bytes;
 * float32 NCHW for images); with opts.batch = N, each holds N such tensors
 * back to back. A failed run (e.g. OCC_ERR_INTEGRITY) leaves the outputs
 * untouched: nothing half-done is returned. */
occ_status occ_engine_run(occ_engine *eng, const void *const *inputs, void *const *outputs,
                          occ_error *e) OCC_MUST_CHECK;

/* Runs only the first n (1..opts.batch) tensors of each buffer: a partial
 * batch costs n images of compute (streamed weights are still checked once
 * per run). */
occ_status occ_engine_run_n(occ_engine *eng, uint32_t n, const void *const *inputs,
                            void *const *outputs, occ_error *e) OCC_MUST_CHECK;

void occ_engine_free(occ_engine *eng);

#ifdef __cplusplus
}
#endif
#endif
