/* Thin wrappers over OpenSSL for the few primitives used everywhere. */
#ifndef OCC_CRYPTO_H
#define OCC_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "occ/status.h"

/* SHA-256 of buf. Returns OCC_ERR_INTERNAL if OpenSSL fails. */
occ_status occ_sha256(const void *buf, size_t size, uint8_t out[32]) OCC_MUST_CHECK;

/* Constant-time comparison; 0 when equal. */
int occ_ct_memcmp(const void *a, const void *b, size_t size);

/* Zeroes size bytes in a way the compiler may not elide: for bulk client
 * data (request bodies, tensors) before it is freed. OPENSSL_cleanse does
 * the same 8 bytes at a time, several times slower on a 600 KB body;
 * keys may use either. */
void occ_wipe(void *p, size_t size);

#endif
