/* Internal helpers of the client-side attestation module. */
#ifndef OCC_ATTEST_INT_H
#define OCC_ATTEST_INT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "occ/attest.h"

/* A bounds-checked read cursor: every take fails rather than over-reads. */
typedef struct occ_cur {
    const uint8_t *p;
    size_t left;
} occ_cur;

int occ_cur_take(occ_cur *c, size_t n, const uint8_t **out);
int occ_cur_u16(occ_cur *c, uint16_t *v);
int occ_cur_u32(occ_cur *c, uint32_t *v);

/* ---- DER (just enough for the PCK SGX extension) ---- */
typedef struct occ_der {
    unsigned tag;
    const uint8_t *val;
    size_t len;
} occ_der;
/* Reads one TLV (single-byte tags, definite lengths, minimal encoding). */
int occ_der_next(occ_cur *c, occ_der *out);

/* PCK certificate SGX extension (OID 1.2.840.113741.1.13.1). */
typedef struct occ_pck_info {
    uint8_t fmspc[6];
    uint8_t pceid[2];
    uint8_t comps[16];
    uint16_t pcesvn;
    uint8_t cpusvn[16];
    int have_fmspc, have_pceid, have_tcb;
} occ_pck_info;
occ_status occ_pck_ext_parse(const uint8_t *der, size_t len, occ_pck_info *info, occ_error *e);
occ_status occ_pck_info_from_cert(X509 *cert, occ_pck_info *info, occ_error *e);

/* ---- crypto ---- */
/* Verifies a raw ECDSA r||s (2*n bytes) signature over msg with SHA-256. */
int occ_ecdsa_verify_raw(EVP_PKEY *key, const uint8_t *msg, size_t msg_len, const uint8_t *sig,
                         size_t sig_len);
/* P-256 public key from x||y (64 bytes). */
EVP_PKEY *occ_p256_from_xy(const uint8_t xy[64]);
void occ_attest_sha256(const void *a, size_t alen, const void *b, size_t blen, uint8_t out[32]);

/* PEM chain -> certs (at most max). Returns count, or -1 on error. */
int occ_pem_chain(const uint8_t *pem, size_t len, X509 **certs, int max);

/* "2025-06-19T10:56:11Z" -> time_t. */
int occ_parse_iso8601(const char *s, int64_t *out);
void occ_format_time(int64_t t, char *out, size_t size);

/* ---- collateral internals ---- */
struct occ_attest_collateral {
    char *pck_crl_issuer_chain;
    uint8_t *root_ca_crl;
    size_t root_ca_crl_size;
    uint8_t *pck_crl;
    size_t pck_crl_size;
    char *tcb_info_issuer_chain;
    char *tcb_info;
    size_t tcb_info_size;
    uint8_t tcb_info_sig[64];
    char *qe_identity_issuer_chain;
    char *qe_identity;
    size_t qe_identity_size;
    uint8_t qe_identity_sig[64];
};

/* Platform TCB evaluation (tcb_info JSON already signature-checked). Fills
 * v->tcb_status, tcb_date, advisories; adds reasons. */
void occ_tcb_evaluate(const char *tcb_info, size_t size, const occ_pck_info *pck, int64_t at,
                      occ_attest_verdict *v);
/* QE identity evaluation. Fills v->qe_tcb_status, may add advisories. */
void occ_qe_identity_evaluate(const char *qe_identity, size_t size, const occ_sgx_report *qe, int64_t at,
                              occ_attest_verdict *v, char qe_adv[][OCC_ADVISORY_SIZE], size_t *qe_adv_count);

void occ_verdict_add_advisory(occ_attest_verdict *v, const char *id);
void occ_verdict_warn(occ_attest_verdict *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Fills the identity fields of v from a parsed quote. */
void occ_attest_fill_from_quote(const occ_quote *q, occ_attest_verdict *v);
/* Parses and runs every quote-level check into v (no policy). Returns the
 * parse status; v->verified says whether all checks passed. */
occ_status occ_attest_check_quote(const uint8_t *quote, size_t size, const occ_attest_collateral *coll, X509 *root,
                                  int64_t at, occ_attest_verdict *v);

/* ---- CBOR (strict subset reader) ---- */
/* Reads a head: major type, argument. Refuses indefinite lengths and
 * non-minimal encodings of the argument. */
int occ_cbor_head(occ_cur *c, unsigned *major, uint64_t *arg);
/* Skips one data item (nesting at most 16). */
int occ_cbor_skip(occ_cur *c, int depth);

#endif
