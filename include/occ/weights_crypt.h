/* Encrypted weights (docs/pack-format.md, "Encrypted packs").
 *
 * A pack's weight chunks may be encrypted with AES-256-GCM under a key the
 * model owner holds (32 raw bytes). From that key K and the pack's random
 * 16-byte pack id the packer and the enclave derive, with HKDF-SHA256
 * (salt = pack id):
 *   chunk key  = HKDF(K, info "occ weights v1: chunk key")   (AES-256-GCM)
 *   key check  = HKDF(K, info "occ weights v1: key check")   (in the manifest)
 * Chunk i (offset o, size n) is encrypted with nonce = LE32(i) || 0^64 and
 * associated data = "OCCWGT1\0" || pack id || LE32(i) || LE64(o) || LE64(n);
 * its 16-byte tag goes into the manifest's chunk table, and the table's
 * SHA-256 is taken over the ciphertext. The key check commits the manifest
 * (and so the model id) to one key: with the chunk hashes it pins the exact
 * plaintext, and a wrong key is refused before a chunk is read.
 *
 * Trusted code (src/engine/weights_crypt.c), also linked by the packer, so
 * that both sides share one implementation. Only OpenSSL primitives (EVP
 * AES-256-GCM, EVP_KDF HKDF); every derived key is wiped. */
#ifndef OCC_WEIGHTS_CRYPT_H
#define OCC_WEIGHTS_CRYPT_H

#include <stdint.h>

#include "occ/model.h"
#include "occ/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define OCC_WCRYPT_NONE 0u
#define OCC_WCRYPT_AES256GCM 1u   /* the only scheme: as above */
#define OCC_WEIGHTS_KEY_SIZE 32u
#define OCC_PACK_ID_SIZE 16u

typedef struct occ_wcrypt occ_wcrypt;

/* The chunk cipher of one pack (key, pack id); *check_out (may be NULL)
 * gets the key check. */
occ_status occ_wcrypt_new(const uint8_t key[32], const uint8_t pack_id[16], uint8_t check_out[32],
                          occ_wcrypt **out, occ_error *e) OCC_MUST_CHECK;

/* For a decoded manifest: *out = NULL for a plain pack without a key;
 * OCC_ERR_KEY when the pack is encrypted and key is NULL or its key check
 * does not match the manifest's (compared in constant time);
 * OCC_ERR_INVALID when a key is given for a plain pack. */
occ_status occ_wcrypt_for_model(const occ_model *m, const uint8_t *key, occ_wcrypt **out,
                                occ_error *e) OCC_MUST_CHECK;

/* Encrypts chunk i (buf = its ch->size bytes, in place) and writes its tag. */
occ_status occ_wcrypt_seal(occ_wcrypt *c, uint32_t i, const occ_chunk *ch, uint8_t *buf,
                           uint8_t tag[16], occ_error *e) OCC_MUST_CHECK;

/* Decrypts chunk i in place and checks ch->tag; on failure (OCC_ERR_INTEGRITY)
 * buf is wiped: no unauthenticated plaintext is left behind. */
occ_status occ_wcrypt_open(occ_wcrypt *c, uint32_t i, const occ_chunk *ch, uint8_t *buf,
                           occ_error *e) OCC_MUST_CHECK;

void occ_wcrypt_free(occ_wcrypt *c);

#ifdef __cplusplus
}
#endif
#endif
