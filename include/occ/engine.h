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

typedef struct occ_engine_opts {
    int threads;                 /* compute threads; 0 = default (all cores) */
} occ_engine_opts;

typedef struct occ_engine occ_engine;

/* Validates the model (every op's attributes and shapes, re-inferred), loads
 * and verifies its weights, and prepares kernels. The model must outlive the
 * engine. */
occ_status occ_engine_create(const occ_model *m, const occ_engine_opts *opts,
                             occ_read_fn read, void *read_ctx, occ_engine **out,
                             occ_error *e) OCC_MUST_CHECK;

/* inputs[i] / outputs[i] follow m->inputs / m->outputs, each a dense float32
 * buffer of the tensor's shape (NCHW for images). */
occ_status occ_engine_run(occ_engine *eng, const float *const *inputs, float *const *outputs,
                          occ_error *e) OCC_MUST_CHECK;

void occ_engine_free(occ_engine *eng);

#ifdef __cplusplus
}
#endif
#endif
