/* The model binding of REPORTDATA[32..63]: which model answers under which
 * name, attested (docs/attestation.md, "Which name serves which model").
 *
 * One model:  binding = its model id (SHA-256 of its manifest), so a policy's
 *             `model_id` keeps its meaning for single-model servers.
 * Several:    binding = SHA-256( "occlumency-models-v1" 0x00
 *                                ‖ u32be(n)
 *                                ‖ for each (name, id), sorted by name bytewise:
 *                                     u32be(len(name)) ‖ name ‖ id[32] )
 *
 * The same (name, id) list travels in the RA-TLS certificate (TCG claim
 * "occ-models", sorted by name): a client recomputes the binding from it,
 * compares it with REPORTDATA[32..63], and then knows which id serves the
 * name it asks for. Used by the enclave (src/enclave/ratls_cert.c) and the
 * verifier (src/attest/ratls_verify.c): one implementation. */
#ifndef OCC_BINDING_H
#define OCC_BINDING_H

#include <stddef.h>
#include <stdint.h>

#include "occ/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define OCC_MODEL_NAME_MAX 128 /* bytes */
#define OCC_BOUND_MODELS_MAX 16

/* A model name that can be bound: 1..128 bytes of printable ASCII
 * (0x21..0x7e) other than / ? # % " \ (a URL path segment that needs no
 * escaping, and a JSON string that needs none). Returns 1 when valid. */
int occ_model_name_valid(const char *name, size_t len);

/* binding over n (name, id) pairs in any order; names must be valid and
 * distinct, 1 <= n <= OCC_BOUND_MODELS_MAX. */
occ_status occ_models_binding(const char *const *names, const uint8_t (*ids)[32], size_t n, uint8_t out[32],
                              occ_error *e) OCC_MUST_CHECK;

/* The order of the list in certificates: indexes 0..n-1 sorted by name
 * (bytewise; a prefix sorts first). order must hold n entries. */
void occ_models_sort(const char *const *names, size_t n, size_t *order);

#ifdef __cplusplus
}
#endif
#endif
