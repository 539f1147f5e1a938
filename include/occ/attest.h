/* Client-side remote attestation: SGX DCAP ECDSA quote (v3) verification,
 * collateral (PCCS-style JSON), policy, verdict. See docs/attestation.md.
 *
 * Memory: the caller owns everything it passes in; objects returned through
 * `**out` are freed with the matching *_free function. Verdicts and policies
 * are plain structs with fixed-size arrays (no heap). */
#ifndef OCC_ATTEST_H
#define OCC_ATTEST_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <openssl/x509.h>

#include "occ/binding.h"
#include "occ/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- quote layout (SGX quote v3, little-endian) ---- */
#define OCC_QUOTE_HEADER_SIZE 48
#define OCC_QUOTE_REPORT_SIZE 384
#define OCC_QUOTE_SIGNED_SIZE (OCC_QUOTE_HEADER_SIZE + OCC_QUOTE_REPORT_SIZE) /* 432 */
#define OCC_QUOTE_MIN_SIZE (OCC_QUOTE_SIGNED_SIZE + 4 + 64 + 64 + 384 + 64 + 2 + 2 + 4)

#define OCC_SGX_FLAGS_INIT 0x1ull
#define OCC_SGX_FLAGS_DEBUG 0x2ull
#define OCC_SGX_FLAGS_MODE64BIT 0x4ull
#define OCC_SGX_FLAGS_KSS 0x80ull

/* A parsed SGX enclave report body (384 bytes). */
typedef struct occ_sgx_report {
    uint8_t cpusvn[16];
    uint32_t miscselect;
    uint8_t isv_ext_prod_id[16];
    uint64_t flags; /* ATTRIBUTES.flags */
    uint64_t xfrm;  /* ATTRIBUTES.xfrm  */
    uint8_t attributes[16];
    uint8_t mrenclave[32];
    uint8_t mrsigner[32];
    uint8_t config_id[64];
    uint16_t isv_prod_id;
    uint16_t isv_svn;
    uint16_t config_svn;
    uint8_t isv_family_id[16];
    uint8_t report_data[64];
} occ_sgx_report;

/* A parsed quote: a view into the caller's bytes (pointers alias them). */
typedef struct occ_quote {
    uint16_t version;
    uint16_t att_key_type;
    uint32_t tee_type;
    uint16_t qe_svn, pce_svn;
    uint8_t qe_vendor_id[16];
    uint8_t user_data[20];
    occ_sgx_report report;
    const uint8_t *signed_bytes; /* header || body, OCC_QUOTE_SIGNED_SIZE */
    const uint8_t *isv_sig;      /* 64: r || s, big-endian */
    const uint8_t *att_key;      /* 64: x || y */
    const uint8_t *qe_report_raw; /* 384 */
    occ_sgx_report qe_report;
    const uint8_t *qe_sig; /* 64 */
    const uint8_t *qe_auth;
    uint16_t qe_auth_size;
    uint16_t cert_type;
    const uint8_t *cert_data;
    uint32_t cert_size;
} occ_quote;

/* Strict parse of an SGX ECDSA quote v3. Refuses other TEE types (TDX),
 * other versions and key types, and any length field that exceeds the bytes
 * present. Trailing bytes after the signature data are refused. */
occ_status occ_quote_parse(const uint8_t *buf, size_t size, occ_quote *q, occ_error *e) OCC_MUST_CHECK;

/* ---- collateral (PCCS-style JSON, see testdata/dcap/) ---- */
typedef struct occ_attest_collateral occ_attest_collateral;

occ_status occ_attest_collateral_parse(const char *json, size_t size, occ_attest_collateral **out,
                                       occ_error *e) OCC_MUST_CHECK;
occ_status occ_attest_collateral_load(const char *path, occ_attest_collateral **out,
                                      occ_error *e) OCC_MUST_CHECK;
void occ_attest_collateral_free(occ_attest_collateral *c);

/* Loads a root certificate from a DER or PEM file. */
occ_status occ_attest_root_load(const char *path, X509 **out, occ_error *e) OCC_MUST_CHECK;

/* SHA-256 of the DER of the genuine Intel SGX Root CA. A chain that ends in
 * any other root yields an `emulated` (not hardware-backed) verdict. */
extern const uint8_t occ_attest_intel_root_sha256[32];

/* ---- policy ---- */
#define OCC_POLICY_MAX_IDS 16
#define OCC_POLICY_MAX_STATUS 8
#define OCC_TCB_STATUS_SIZE 48

typedef struct occ_attest_policy {
    size_t mrenclave_count;
    uint8_t mrenclave[OCC_POLICY_MAX_IDS][32];
    size_t mrsigner_count;
    uint8_t mrsigner[OCC_POLICY_MAX_IDS][32];
    int has_isv_prod_id;
    uint16_t isv_prod_id;
    int has_min_isv_svn;
    uint16_t min_isv_svn;
    int allow_debug;              /* default 0 */
    int allow_emulated;           /* default 0; when set, only with an explicitly given non-Intel root */
    int allow_missing_collateral; /* default 0: testing only */
    size_t tcb_status_count;      /* default 1: "UpToDate" */
    char accepted_tcb_status[OCC_POLICY_MAX_STATUS][OCC_TCB_STATUS_SIZE];
    int has_model_id;
    uint8_t model_id[32]; /* REPORTDATA[32..63] */
    int has_pubkey_hash;
    uint8_t pubkey_hash[32]; /* REPORTDATA[0..31] */
    /* "models": {"NAME": "<model id hex>", ...}: which model id must answer
     * under which name. Needs the (name, model id) list an Occlumency RA-TLS
     * certificate carries (verdict.models_bound); a bare quote has none. */
    size_t model_count;
    char model_names[OCC_BOUND_MODELS_MAX][OCC_MODEL_NAME_MAX + 1];
    uint8_t model_ids[OCC_BOUND_MODELS_MAX][32];
    /* Not read from JSON: the name the client is about to use. When set,
     * only its "models" entry is enforced (and it must have one); when
     * empty, every entry is. */
    char use_model[OCC_MODEL_NAME_MAX + 1];
} occ_attest_policy;

/* The default policy: no identity pinned (a warning here; the client
 * refuses it: occ_attest_policy_pinned), debug refused, UpToDate only,
 * collateral required, emulated quotes refused. */
void occ_attest_policy_default(occ_attest_policy *p);
/* Parses policy JSON (keys: mrenclave, mrsigner, isv_prod_id, min_isv_svn,
 * allow_debug, accepted_tcb_status, model_id, report_data_pubkey_hash,
 * allow_emulated, allow_missing_collateral; keys starting with "_" or named
 * "comment" are ignored; any other key is an error). Missing keys keep the
 * defaults. */
occ_status occ_attest_policy_parse(const char *json, size_t size, occ_attest_policy *p,
                                   occ_error *e) OCC_MUST_CHECK;
occ_status occ_attest_policy_load(const char *path, occ_attest_policy *p, occ_error *e) OCC_MUST_CHECK;
/* 1 when the policy pins the enclave (mrenclave, or mrsigner together with
 * isv_prod_id) and the model (model_id or models); else 0 with what is
 * missing in why. Clients refuse to trust a server under a policy that does
 * not (occ_client_opts.insecure overrides). */
int occ_attest_policy_pinned(const occ_attest_policy *p, char *why, size_t why_size);

/* ---- verdict ---- */
#define OCC_VERDICT_MAX_REASONS 24
#define OCC_VERDICT_REASON_SIZE 224
#define OCC_VERDICT_MAX_ADVISORIES 48
#define OCC_ADVISORY_SIZE 32

typedef struct occ_attest_verdict {
    int accepted;   /* verified and the policy holds */
    int verified;   /* every signature/chain/collateral check passed */
    int parsed;     /* the quote parsed */
    int emulated;   /* chain ends in a root that is not Intel's: NOT hardware-backed */
    int debug;      /* ATTRIBUTES.DEBUG set */
    int collateral_missing;
    char tcb_status[OCC_TCB_STATUS_SIZE];    /* platform TCB merged with QE TCB */
    char qe_tcb_status[OCC_TCB_STATUS_SIZE];
    char tcb_date[32];
    char fmspc[13];
    size_t advisory_count;
    char advisories[OCC_VERDICT_MAX_ADVISORIES][OCC_ADVISORY_SIZE];
    size_t reason_count;
    char reasons[OCC_VERDICT_MAX_REASONS][OCC_VERDICT_REASON_SIZE];
    size_t warning_count;
    char warnings[8][OCC_VERDICT_REASON_SIZE];
    uint16_t quote_version;
    uint32_t tee_type;
    uint8_t mrenclave[32];
    uint8_t mrsigner[32];
    uint8_t report_data[64];
    uint16_t isv_prod_id, isv_svn;
    uint64_t flags, xfrm;
    /* RA-TLS only */
    int is_cert;
    char binding[16]; /* "occlumency" | "tcg-claims" | "legacy" | "" */
    uint8_t spki_sha256[32];
    /* the certificate's (name, model id) list, checked against REPORTDATA[32..63] */
    int models_bound;
    size_t model_count;
    char model_names[OCC_BOUND_MODELS_MAX][OCC_MODEL_NAME_MAX + 1];
    uint8_t model_ids[OCC_BOUND_MODELS_MAX][32];
} occ_attest_verdict;

/* The time argument: seconds since the epoch, or OCC_ATTEST_NOW. */
#define OCC_ATTEST_NOW INT64_MIN

/* Verifies a quote (with collateral, which may be NULL: then the verdict
 * says "collateral missing") against the pinned root, then applies the
 * policy (NULL = default policy). Fills *v in every case.
 * Returns OCC_OK when accepted, OCC_ERR_ATTEST when refused (reasons in v),
 * OCC_ERR_FORMAT when the quote does not parse (also a reason in v), or
 * another error for bad arguments / library failures. */
occ_status occ_attest_verify_quote(const uint8_t *quote, size_t size, const occ_attest_collateral *coll,
                                   X509 *root, const occ_attest_policy *policy, int64_t at,
                                   occ_attest_verdict *v, occ_error *e) OCC_MUST_CHECK;

/* Applies a policy to a verdict whose quote checks have run: appends policy
 * reasons and sets v->accepted. (Called by the verify functions.) */
void occ_attest_policy_apply(const occ_attest_policy *p, occ_attest_verdict *v);

/* Checks the policy's "models" entry for `name` against a verdict's bound
 * list: OCC_OK when the policy has no "models" (its model_id, if any, was
 * checked by the verification), else the entry must exist and the
 * certificate must bind that id to that name. OCC_ERR_ATTEST with the reason
 * in e otherwise. The client calls it before every request. */
occ_status occ_attest_policy_check_model(const occ_attest_policy *p, const occ_attest_verdict *v, const char *name,
                                         occ_error *e) OCC_MUST_CHECK;

/* Appends a formatted reason (refusal) to a verdict. */
void occ_verdict_reason(occ_attest_verdict *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Returns 1 when any reason contains `needle`. */
int occ_verdict_has_reason(const occ_attest_verdict *v, const char *needle);

/* Writes a human summary (says loudly when emulated). */
void occ_verdict_print(const occ_attest_verdict *v, FILE *f);
/* Returns a malloc'd JSON string (caller frees with free()), NULL on OOM. */
char *occ_verdict_json(const occ_attest_verdict *v);

/* ---- small helpers shared with the CLI and tests ---- */
/* Reads a whole file (at most max_size bytes) into a malloc'd buffer with a
 * trailing NUL (not counted in *size). */
occ_status occ_attest_read_file(const char *path, size_t max_size, uint8_t **out, size_t *size,
                                occ_error *e) OCC_MUST_CHECK;
/* Decodes exactly out_size bytes of hex (case-insensitive). */
occ_status occ_hex_decode(const char *hex, size_t hex_len, uint8_t *out, size_t out_size) OCC_MUST_CHECK;
/* Writes 2*n lowercase hex chars + NUL into out (size >= 2n+1). */
void occ_hex_encode(const uint8_t *in, size_t n, char *out);

#ifdef __cplusplus
}
#endif
#endif
