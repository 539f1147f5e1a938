/* The model owner's key broker (docs/keys.md): `occ keys serve`. Host-side
 * code of the model owner, not enclave code. It releases DIR/<model id>.key
 * only to a TLS client whose certificate is RA-TLS evidence that the
 * owner's policy accepts and that binds the model id it asks for. */
#ifndef OCC_KEYS_H
#define OCC_KEYS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "occ/attest.h"
#include "occ/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define OCC_KEYREQ_MAX 8192 /* bytes of a request head */

/* Parses one request for a key, "GET /v1/keys/<64 hex> HTTP/1.x" with no
 * body (untrusted bytes; the fuzz entry point, fuzz/fuzz_keys.c). OCC_OK
 * with *complete = 1 and the id once the whole request is in buf;
 * *complete = 0 when more bytes are needed; OCC_ERR_FORMAT (reason in e)
 * for anything else: another method or path, a body, bad HTTP, a head over
 * OCC_KEYREQ_MAX. */
occ_status occ_keyreq_parse(const uint8_t *buf, size_t size, int *complete, uint8_t id[32],
                            occ_error *e) OCC_MUST_CHECK;

/* The broker's decision for one request, given the verdict on the client's
 * certificate (occ_ratls_verify_cert with the policy minus its "models"):
 * OCC_OK when the verdict is accepted, the certificate binds `id` (its
 * (name, model id) list, or REPORTDATA[32..63] for a bare model id) and the
 * policy's "models", if any, bind that id to the same name. Else
 * OCC_ERR_ATTEST with the reason in e (for the broker's log only). */
occ_status occ_keys_authorize(const occ_attest_policy *policy, const occ_attest_verdict *v, const uint8_t id[32],
                              occ_error *e) OCC_MUST_CHECK;

typedef struct occ_broker_config {
    const char *listen;              /* ADDR:PORT (port 0: any, see occ_broker_port) */
    const char *key_dir;             /* DIR/<model id hex>.key, 32 raw bytes each */
    const occ_attest_policy *policy; /* the owner's policy (models pin included) */
    X509 *root;                      /* the attestation root (Intel's, or an emulated one) */
    const occ_attest_collateral *collateral; /* may be NULL */
    X509 *cert;                      /* the broker's TLS certificate and key */
    EVP_PKEY *key;
    FILE *log;                       /* one line per request: the reason of a refusal */
} occ_broker_config;

typedef struct occ_broker occ_broker;

occ_status occ_broker_create(const occ_broker_config *cfg, occ_broker **out, occ_error *e) OCC_MUST_CHECK;
unsigned occ_broker_port(const occ_broker *b);
/* Serves until occ_broker_stop (async-signal-safe). */
occ_status occ_broker_run(occ_broker *b, occ_error *e) OCC_MUST_CHECK;
void occ_broker_stop(occ_broker *b);
void occ_broker_free(occ_broker *b);
/* Counters: keys released, requests refused. */
void occ_broker_counts(const occ_broker *b, uint64_t *released, uint64_t *refused);

#ifdef __cplusplus
}
#endif
#endif
