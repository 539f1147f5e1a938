/* Engine-internal: the weight stash under AES-256-GCM (docs/streaming.md,
 * "Encrypted packs"). When a pack's weights are encrypted, the segments the
 * engine parks in untrusted memory are sealed with AES-256-GCM under the
 * engine's own random key instead of only being tagged with Poly1305:
 * nonce = LE32(segment) || 0^64 (each segment is sealed once per engine key),
 * associated data = "OCCSEG1\0" || model id || LE32(segment) || LE64(size). */
#ifndef OCC_WEIGHTS_CRYPT_INT_H
#define OCC_WEIGHTS_CRYPT_INT_H

#include <stdint.h>

typedef struct occ_segcrypt occ_segcrypt;

/* One thread's context under key (32 bytes, copied into OpenSSL's key
 * schedule). NULL on failure. */
occ_segcrypt *occ_segcrypt_new(const uint8_t key[32]);
void occ_segcrypt_free(occ_segcrypt *c);

/* At load: encrypts segment i in place (buf is enclave memory: GCM hashes
 * the ciphertext it has written, so the output must not be host memory)
 * and writes its tag. Returns 1 on success. */
int occ_segcrypt_seal(occ_segcrypt *c, const uint8_t model_id[32], uint32_t i, uint8_t *buf,
                      uint64_t size, uint8_t tag[16]);

/* At run: copies segment i from untrusted src into enclave dst piece by
 * piece and decrypts each piece in place, from the enclave copy; checks the
 * tag after the last piece. Returns 1 when it verified; otherwise dst is
 * wiped and 0 returned. */
int occ_segcrypt_copy_in(occ_segcrypt *c, const uint8_t model_id[32], uint32_t i, uint8_t *dst,
                         const uint8_t *src, uint64_t size, const uint8_t tag[16], uint64_t piece);

/* The same piece by piece, for a caller that uses each decrypted piece
 * while it is in cache (src/engine/fcfuse.c): begin, then pieces in order
 * (each copied into enclave dst, then decrypted there), then end, which
 * returns 1 only when the tag verified. Until then the plaintext is
 * unauthenticated: nothing computed from it may leave the caller. */
int occ_segcrypt_open_begin(occ_segcrypt *c, const uint8_t model_id[32], uint32_t i, uint64_t size);
int occ_segcrypt_open_piece(occ_segcrypt *c, uint8_t *dst, const uint8_t *src, uint64_t n);
int occ_segcrypt_open_end(occ_segcrypt *c, const uint8_t tag[16]);

#endif
