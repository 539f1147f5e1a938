/* Key fetch inside the enclave (docs/keys.md): a TLS 1.3 client over memory
 * BIOs, presenting the enclave's RA-TLS certificate as its client
 * certificate, asks the model owner's key broker for the key of one model
 * id. The host moves TLS records only (the key_* ocalls). */
#ifndef OCC_ENCLAVE_KEYFETCH_H
#define OCC_ENCLAVE_KEYFETCH_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "occ/boundary.h"
#include "occ/status.h"

typedef struct occ_keyfetch_cfg {
    const char *target;   /* "host:port" (the enclave's copy) */
    const uint8_t *ca_pem; /* the broker's pinned certificate(s), PEM (the enclave's copy); NULL = unpinned */
    size_t ca_size;
    X509 *cert;           /* the enclave's RA-TLS certificate and key */
    EVP_PKEY *key;
} occ_keyfetch_cfg;

/* Fetches the 32-byte key of model `id`. On any failure key is wiped and e
 * says why in one line (OCC_ERR_KEY when the broker refused). */
occ_status occ_keyfetch(const occ_ocalls *oc, const occ_keyfetch_cfg *cfg, const uint8_t id[32], uint8_t key[32],
                        occ_error *e) OCC_MUST_CHECK;

/* Parses the broker's answer (an HTTP/1.1 response, untrusted): OCC_OK with
 * *complete = 1, the status and the body (aliasing buf) once a whole
 * response is in buf; *complete = 0 when more bytes are needed;
 * OCC_ERR_FORMAT when it is not one. Bodies over 1 KiB are refused. Also
 * the fuzz entry point (fuzz/fuzz_keys.c). */
occ_status occ_keyresp_parse(const uint8_t *buf, size_t size, int *complete, int *status, const uint8_t **body,
                             size_t *body_size, occ_error *e) OCC_MUST_CHECK;

/* Sealing a model key to the enclave (docs/keys.md): blob = nonce[12] ||
 * AES-256-GCM(seal key, key[32]) || tag[16], AAD = "occ-sealed-model-key-v1"
 * || model id. Unseal fails (OCC_ERR_INTEGRITY) for another enclave's blob,
 * another model's, or any changed byte. */
#define OCC_SEALED_KEY_SIZE 60
occ_status occ_key_seal(const uint8_t seal_key[32], const uint8_t id[32], const uint8_t key[32],
                        uint8_t blob[OCC_SEALED_KEY_SIZE], occ_error *e) OCC_MUST_CHECK;
occ_status occ_key_unseal(const uint8_t seal_key[32], const uint8_t id[32], const uint8_t *blob, size_t size,
                          uint8_t key[32], occ_error *e) OCC_MUST_CHECK;

#endif
