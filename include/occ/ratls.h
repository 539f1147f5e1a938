/* RA-TLS certificates: a self-signed X.509 certificate whose extensions carry
 * an SGX quote binding the certificate's key.
 *
 *  - TCG DICE tagged evidence, OID 2.23.133.5.4.9: CBOR tag 60000 over
 *    [quote bstr, claims bstr], claims = {"pubkey-hash": [1, h'SHA256(SPKI)']}
 *  - Intel legacy raw quote, OID 1.2.840.113741.1.13.1
 *
 * Certificates we make: REPORTDATA = SHA-256(DER SPKI) || model binding;
 * a server's certificate also carries its (name, model id) list as the TCG
 * claim "occ-models": [[name, id], ...] sorted by name, whose binding
 * (include/occ/binding.h) must equal REPORTDATA[32..63].
 * Verification accepts (docs/attestation.md, "Key binding"):
 *   rule "occlumency": REPORTDATA[0..31] == SHA-256(SPKI)
 *   rule "tcg-claims": REPORTDATA[0..31] == SHA-256(claims buffer) and the
 *                      claim pubkey-hash == SHA-256(SPKI)  (other RA-TLS stacks)
 * REPORTDATA[32..63] is compared with the policy's model id when it has one. */
#ifndef OCC_RATLS_H
#define OCC_RATLS_H

#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "occ/attest.h"
#include "occ/binding.h"
#include "occ/quote.h"
#include "occ/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define OCC_RATLS_TCG_OID "2.23.133.5.4.9"
#define OCC_RATLS_LEGACY_OID "1.2.840.113741.1.13.1"
#define OCC_RATLS_CBOR_TAG 60000

/* ---- enclave side (src/enclave/ratls_cert.c) ---- */

/* A fresh P-256 key pair (made inside the enclave). */
occ_status occ_ratls_keygen(EVP_PKEY **out, occ_error *e) OCC_MUST_CHECK;
/* SHA-256 of the DER SubjectPublicKeyInfo of key. */
occ_status occ_ratls_spki_sha256(EVP_PKEY *key, uint8_t out[32], occ_error *e) OCC_MUST_CHECK;
/* REPORTDATA = SHA-256(SPKI) || model_id (model_id NULL -> 32 zero bytes). */
occ_status occ_ratls_report_data(EVP_PKEY *key, const uint8_t model_id[32], uint8_t out[64],
                                 occ_error *e) OCC_MUST_CHECK;
/* Makes the self-signed RA-TLS certificate, valid [not_before, not_after]
 * (seconds since the epoch). */
occ_status occ_ratls_make_cert(EVP_PKEY *key, const uint8_t model_id[32], occ_quote_provider_fn provider,
                               void *provider_ctx, int64_t not_before, int64_t not_after, X509 **out,
                               occ_error *e) OCC_MUST_CHECK;
/* The certificate of a server of n named models: REPORTDATA = SHA-256(SPKI)
 * || occ_models_binding(names, ids, n) (one model: its id), and the list in
 * the TCG claims ("occ-models"). Names must be valid and distinct. */
occ_status occ_ratls_make_cert_models(EVP_PKEY *key, const char *const *names, const uint8_t (*ids)[32], size_t n,
                                      occ_quote_provider_fn provider, void *provider_ctx, int64_t not_before,
                                      int64_t not_after, X509 **out, occ_error *e) OCC_MUST_CHECK;
/* CBOR evidence for the TCG extension (malloc'd). */
occ_status occ_ratls_tcg_evidence(const uint8_t *quote, size_t quote_size, const uint8_t spki_hash[32],
                                  uint8_t **out, size_t *out_size, occ_error *e) OCC_MUST_CHECK;

/* Same, with the "occ-models" claim (n >= 1; the list is sorted here). */
occ_status occ_ratls_tcg_evidence_models(const uint8_t *quote, size_t quote_size, const uint8_t spki_hash[32],
                                         const char *const *names, const uint8_t (*ids)[32], size_t n,
                                         uint8_t **out, size_t *out_size, occ_error *e) OCC_MUST_CHECK;

/* ---- client side (src/attest/ratls_verify.c) ---- */

/* Evidence found in a certificate (pointers alias the certificate). */
typedef struct occ_ratls_evidence {
    const uint8_t *quote;
    size_t quote_size;
    const uint8_t *claims; /* TCG claims buffer, NULL for legacy */
    size_t claims_size;
    int has_pubkey_hash;
    uint8_t pubkey_hash[32];
    int has_models; /* the "occ-models" claim: (name, model id) pairs, sorted by name */
    size_t model_count;
    char model_names[OCC_BOUND_MODELS_MAX][OCC_MODEL_NAME_MAX + 1];
    uint8_t model_ids[OCC_BOUND_MODELS_MAX][32];
    int tcg;    /* from the TCG extension */
    int legacy; /* from a legacy extension (Intel or Gramine's malformed OID) */
} occ_ratls_evidence;

/* Finds and strictly decodes the evidence extensions of cert. */
occ_status occ_ratls_extract(X509 *cert, occ_ratls_evidence *ev, occ_error *e) OCC_MUST_CHECK;
/* Strict decoder of the TCG CBOR evidence (also the fuzz entry point). */
occ_status occ_ratls_parse_tcg(const uint8_t *buf, size_t size, occ_ratls_evidence *ev,
                               occ_error *e) OCC_MUST_CHECK;

/* Verifies an RA-TLS certificate: self-signature and validity at `at`,
 * evidence, key binding, the quote (collateral may be NULL) against root,
 * then the policy (NULL = default). Same return convention as
 * occ_attest_verify_quote. */
occ_status occ_ratls_verify_cert(X509 *cert, const occ_attest_policy *policy, X509 *root,
                                 const occ_attest_collateral *coll, int64_t at, occ_attest_verdict *v,
                                 occ_error *e) OCC_MUST_CHECK;

/* OpenSSL client hook. Install with occ_ratls_ssl_attach(ssl, &ctx) and
 * SSL_set_verify(ssl, SSL_VERIFY_PEER, occ_ratls_ssl_verify_cb): the peer
 * (leaf) certificate is accepted only when occ_ratls_verify_cert accepts it;
 * the verdict is left in ctx->verdict. ctx must outlive the handshake. */
typedef struct occ_ratls_verify_ctx {
    const occ_attest_policy *policy;
    X509 *root;
    const occ_attest_collateral *coll;
    int64_t at;
    occ_attest_verdict verdict;
    int done;
} occ_ratls_verify_ctx;
occ_status occ_ratls_ssl_attach(SSL *ssl, occ_ratls_verify_ctx *ctx) OCC_MUST_CHECK;
int occ_ratls_ssl_verify_cb(int preverify_ok, X509_STORE_CTX *store);

#ifdef __cplusplus
}
#endif
#endif
