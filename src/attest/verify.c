/* DCAP quote verification: signatures, QE binding, PCK chain to the pinned
 * root with CRLs, TCB info and QE identity (signatures, issuers, freshness),
 * TCB status; then the policy. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509_vfy.h>

#include "attest/attest_int.h"

static const uint8_t INTEL_QE_VENDOR[16] = {0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9,
                                            0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07};

#define MAX_CHAIN 8

occ_status occ_attest_root_load(const char *path, X509 **out, occ_error *e)
{
    uint8_t *buf;
    size_t n;
    *out = NULL;
    occ_status st = occ_attest_read_file(path, 1u << 20, &buf, &n, e);
    if (st)
        return st;
    const uint8_t *p = buf;
    X509 *x = d2i_X509(NULL, &p, (long)n);
    if (x && p != buf + n) {
        X509_free(x);
        x = NULL;
    }
    if (!x) {
        ERR_clear_error();
        BIO *b = BIO_new_mem_buf(buf, (int)n);
        if (b)
            x = PEM_read_bio_X509(b, NULL, NULL, NULL);
        BIO_free(b);
    }
    ERR_clear_error();
    free(buf);
    if (!x)
        return occ_fail(e, OCC_ERR_FORMAT, "%s: not a DER or PEM X.509 certificate", path);
    *out = x;
    return OCC_OK;
}

static int root_is_intel(X509 *root)
{
    uint8_t *der = NULL, h[32];
    int n = i2d_X509(root, &der);
    if (n <= 0)
        return 0;
    occ_attest_sha256(der, (size_t)n, NULL, 0, h);
    OPENSSL_free(der);
    return CRYPTO_memcmp(h, occ_attest_intel_root_sha256, 32) == 0;
}

/* Verifies leaf against the pinned root, with untrusted intermediates and
 * optional CRLs (then every certificate must have a fresh CRL). */
static int verify_chain(X509 *leaf, X509 **inter, int ninter, X509 *root, X509_CRL **crls, int ncrl, int64_t at,
                        char *err, size_t errsz, X509 **expect, int nexpect)
{
    int ok = 0;
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    STACK_OF(X509) *un = sk_X509_new_null();
    STACK_OF(X509_CRL) *cs = sk_X509_CRL_new_null();
    if (!store || !ctx || !un || !cs || !X509_STORE_add_cert(store, root)) {
        snprintf(err, errsz, "out of memory");
        goto out;
    }
    for (int i = 0; i < ninter; i++)
        if (!sk_X509_push(un, inter[i]))
            goto out;
    for (int i = 0; i < ncrl; i++)
        if (crls[i] && !sk_X509_CRL_push(cs, crls[i]))
            goto out;
    if (!X509_STORE_CTX_init(ctx, store, leaf, un)) {
        snprintf(err, errsz, "X509_STORE_CTX_init failed");
        goto out;
    }
    X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_time(param, (time_t)at);
    if (ncrl) {
        X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
        X509_STORE_CTX_set0_crls(ctx, cs);
    }
    if (X509_verify_cert(ctx) == 1) {
        ok = 1;
        /* every certificate the quote carries must be in the verified chain,
         * in order (so no byte of the certification data is ignored) */
        STACK_OF(X509) *built = X509_STORE_CTX_get0_chain(ctx);
        for (int i = 0; i < nexpect; i++) {
            if (!built || i >= sk_X509_num(built) || X509_cmp(sk_X509_value(built, i), expect[i])) {
                snprintf(err, errsz, "certificate %d of the certification data is not in the verified chain", i);
                ok = 0;
                break;
            }
        }
    } else {
        int code = X509_STORE_CTX_get_error(ctx);
        int depth = X509_STORE_CTX_get_error_depth(ctx);
        X509 *bad = X509_STORE_CTX_get_current_cert(ctx);
        char name[96] = "?";
        if (bad)
            X509_NAME_get_text_by_NID(X509_get_subject_name(bad), NID_commonName, name, sizeof name);
        snprintf(err, errsz, "%s (at depth %d, \"%s\")", X509_verify_cert_error_string(code), depth, name);
    }
out:
    ERR_clear_error();
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    sk_X509_free(un);
    sk_X509_CRL_free(cs);
    return ok;
}

static X509_CRL *crl_from_der(const uint8_t *der, size_t n)
{
    const uint8_t *p = der;
    X509_CRL *c = d2i_X509_CRL(NULL, &p, (long)n);
    if (c && p != der + n) {
        X509_CRL_free(c);
        c = NULL;
    }
    ERR_clear_error();
    return c;
}

static void check_crl_dates(X509_CRL *crl, const char *what, int64_t at, occ_attest_verdict *v)
{
    time_t t = (time_t)at;
    const ASN1_TIME *last = X509_CRL_get0_lastUpdate(crl), *next = X509_CRL_get0_nextUpdate(crl);
    if (!last || X509_cmp_time(last, &t) > 0)
        occ_verdict_reason(v, "%s not yet valid (thisUpdate is after the verification time)", what);
    if (!next || X509_cmp_time(next, &t) <= 0)
        occ_verdict_reason(v, "%s expired (nextUpdate is not after the verification time)", what);
}

/* Verifies a signed collateral JSON string: issuer chain to root (root CRL),
 * ECDSA signature of the leaf over the exact bytes. */
static int verify_signed_json(const char *what, const char *chain_pem, const char *body, size_t body_size,
                              const uint8_t sig[64], X509 *root, X509_CRL *root_crl, int64_t at,
                              occ_attest_verdict *v)
{
    X509 *certs[MAX_CHAIN];
    int n = occ_pem_chain((const uint8_t *)chain_pem, strlen(chain_pem), certs, MAX_CHAIN);
    if (n <= 0) {
        occ_verdict_reason(v, "%s issuer chain: no PEM certificates", what);
        return 0;
    }
    char err[160];
    int ok = 1;
    X509_CRL *crls[1] = {root_crl};
    if (!verify_chain(certs[0], certs + 1, n - 1, root, crls, root_crl ? 1 : 0, at, err, sizeof err, certs, n)) {
        occ_verdict_reason(v, "%s issuer chain does not verify to the pinned root: %s", what, err);
        ok = 0;
    } else {
        char cn[96] = "";
        X509_NAME_get_text_by_NID(X509_get_subject_name(certs[0]), NID_commonName, cn, sizeof cn);
        if (strcmp(cn, "Intel SGX TCB Signing")) {
            occ_verdict_reason(v, "%s is signed by \"%s\", not \"Intel SGX TCB Signing\"", what, cn);
            ok = 0;
        }
    }
    EVP_PKEY *key = X509_get0_pubkey(certs[0]);
    if (!occ_ecdsa_verify_raw(key, (const uint8_t *)body, body_size, sig, 64)) {
        occ_verdict_reason(v, "%s signature invalid", what);
        ok = 0;
    }
    for (int i = 0; i < n; i++)
        X509_free(certs[i]);
    return ok;
}

/* The certification data must be exactly the PEM of the parsed chain (an
 * optional trailing NUL allowed): no byte of the quote is malleable. */
static int pem_chain_canonical(const uint8_t *data, size_t size, X509 **chain, int n)
{
    BIO *b = BIO_new(BIO_s_mem());
    int ok = b != NULL;
    for (int i = 0; ok && i < n; i++)
        ok = PEM_write_bio_X509(b, chain[i]);
    char *pem = NULL;
    long len = ok ? BIO_get_mem_data(b, &pem) : 0;
    if (size && data[size - 1] == 0)
        size--;
    ok = ok && len >= 0 && (size_t)len == size && !memcmp(pem, data, size);
    BIO_free(b);
    ERR_clear_error();
    return ok;
}

static int status_is(const char *s, const char *a)
{
    return !strcmp(s, a);
}

static void merge_qe_status(occ_attest_verdict *v)
{
    const char *qe = v->qe_tcb_status, *pl = v->tcb_status;
    const char *res = NULL;
    if (status_is(qe, "Revoked")) {
        res = "Revoked";
    } else if (status_is(qe, "OutOfDate")) {
        if (status_is(pl, "UpToDate") || status_is(pl, "SWHardeningNeeded"))
            res = "OutOfDate";
        else if (status_is(pl, "ConfigurationNeeded") || status_is(pl, "ConfigurationAndSWHardeningNeeded"))
            res = "OutOfDateConfigurationNeeded";
    }
    if (res)
        snprintf(v->tcb_status, sizeof v->tcb_status, "%s", res);
}

/* All quote-level checks. Reasons are appended for every failure found. */
static void verify_evidence(const occ_quote *q, const occ_attest_collateral *coll, X509 *root, int64_t at,
                            occ_attest_verdict *v)
{
    X509 *chain[MAX_CHAIN];
    int nchain = 0;
    EVP_PKEY *ak = NULL;
    X509_CRL *root_crl = NULL, *pck_crl = NULL;
    char err[200];

    /* 1. ISV enclave report signature with the attestation key. */
    ak = occ_p256_from_xy(q->att_key);
    if (!ak)
        occ_verdict_reason(v, "attestation key is not a valid P-256 point");
    else if (!occ_ecdsa_verify_raw(ak, q->signed_bytes, OCC_QUOTE_SIGNED_SIZE, q->isv_sig, 64))
        occ_verdict_reason(v, "ISV enclave report signature invalid");

    /* 2. QE REPORTDATA binding: SHA-256(attestation key || QE auth data) || 0^32. */
    uint8_t h[32], zero[32] = {0};
    occ_attest_sha256(q->att_key, 64, q->qe_auth, q->qe_auth_size, h);
    if (CRYPTO_memcmp(h, q->qe_report.report_data, 32) || CRYPTO_memcmp(zero, q->qe_report.report_data + 32, 32))
        occ_verdict_reason(v, "QE REPORTDATA binding mismatch: it is not SHA-256(attestation key || QE auth data)");

    /* 3. PCK chain from the certification data. */
    if (q->cert_type != 5) {
        occ_verdict_reason(v, "unsupported certification data type %u (need 5 = PEM PCK chain)", q->cert_type);
        goto out;
    }
    nchain = occ_pem_chain(q->cert_data, q->cert_size, chain, MAX_CHAIN);
    if (nchain <= 0) {
        nchain = 0;
        occ_verdict_reason(v, "certification data holds no PEM PCK certificate chain");
        goto out;
    }
    if (!pem_chain_canonical(q->cert_data, q->cert_size, chain, nchain))
        occ_verdict_reason(v, "certification data is not the canonical PEM encoding of its certificates");
    /* 4. QE report signature with the PCK leaf key. */
    if (!occ_ecdsa_verify_raw(X509_get0_pubkey(chain[0]), q->qe_report_raw, OCC_QUOTE_REPORT_SIZE, q->qe_sig, 64))
        occ_verdict_reason(v, "QE report signature invalid (PCK key)");

    if (!root_is_intel(root)) {
        /* Not Intel's root: only an emulated quote chaining to the explicitly
         * given root. No CRLs, no TCB info: status "Emulated". */
        if (!verify_chain(chain[0], chain + 1, nchain - 1, root, NULL, 0, at, err, sizeof err, chain, nchain)) {
            occ_verdict_reason(v, "PCK certificate chain does not verify to the pinned root: %s", err);
            goto out;
        }
        v->emulated = 1;
        snprintf(v->tcb_status, sizeof v->tcb_status, "Emulated");
        snprintf(v->qe_tcb_status, sizeof v->qe_tcb_status, "Emulated");
        occ_verdict_warn(v, "the root is not the Intel SGX Root CA: this quote is NOT hardware-backed");
        goto out;
    }
    if (CRYPTO_memcmp(q->qe_vendor_id, INTEL_QE_VENDOR, 16))
        occ_verdict_reason(v, "QE vendor id is not Intel's");

    occ_pck_info pck;
    occ_error pe = {0};
    int have_pck = occ_pck_info_from_cert(chain[0], &pck, &pe) == OCC_OK;
    if (!have_pck)
        occ_verdict_reason(v, "%s", pe.msg);
    else
        occ_hex_encode(pck.fmspc, 6, v->fmspc);

    if (!coll) {
        if (!verify_chain(chain[0], chain + 1, nchain - 1, root, NULL, 0, at, err, sizeof err, chain, nchain))
            occ_verdict_reason(v, "PCK certificate chain does not verify to the pinned root: %s", err);
        v->collateral_missing = 1;
        snprintf(v->tcb_status, sizeof v->tcb_status, "Unknown");
        goto out;
    }

    /* 5. CRLs, then the chain with revocation checking. */
    root_crl = crl_from_der(coll->root_ca_crl, coll->root_ca_crl_size);
    pck_crl = crl_from_der(coll->pck_crl, coll->pck_crl_size);
    if (!root_crl)
        occ_verdict_reason(v, "root CA CRL is not a DER CRL");
    else
        check_crl_dates(root_crl, "root CA CRL", at, v);
    if (!pck_crl)
        occ_verdict_reason(v, "PCK CRL is not a DER CRL");
    else
        check_crl_dates(pck_crl, "PCK CRL", at, v);
    {
        X509 *extra[2 * MAX_CHAIN];
        int nextra = 0;
        for (int i = 1; i < nchain; i++)
            extra[nextra++] = chain[i];
        X509 *ic[MAX_CHAIN];
        int nic = occ_pem_chain((const uint8_t *)coll->pck_crl_issuer_chain, strlen(coll->pck_crl_issuer_chain), ic,
                                MAX_CHAIN);
        for (int i = 0; i < nic; i++)
            extra[nextra++] = ic[i];
        X509_CRL *crls[2] = {root_crl, pck_crl};
        if (!verify_chain(chain[0], extra, nextra, root, crls, 2, at, err, sizeof err, chain, nchain))
            occ_verdict_reason(v, "PCK certificate chain does not verify to the pinned root: %s", err);
        for (int i = 0; i < nic; i++)
            X509_free(ic[i]);
    }

    /* 6. TCB info and QE identity: issuers, signatures, freshness. */
    int tcb_ok = verify_signed_json("TCB info", coll->tcb_info_issuer_chain, coll->tcb_info, coll->tcb_info_size,
                                    coll->tcb_info_sig, root, root_crl, at, v);
    int qe_ok = verify_signed_json("QE identity", coll->qe_identity_issuer_chain, coll->qe_identity,
                                   coll->qe_identity_size, coll->qe_identity_sig, root, root_crl, at, v);
    char qe_adv[OCC_VERDICT_MAX_ADVISORIES][OCC_ADVISORY_SIZE];
    size_t nqe_adv = 0;
    if (qe_ok)
        occ_qe_identity_evaluate(coll->qe_identity, coll->qe_identity_size, &q->qe_report, at, v, qe_adv, &nqe_adv);
    if (tcb_ok && have_pck)
        occ_tcb_evaluate(coll->tcb_info, coll->tcb_info_size, &pck, at, v);
    if (!v->tcb_status[0])
        snprintf(v->tcb_status, sizeof v->tcb_status, "Unknown");
    if (v->qe_tcb_status[0])
        merge_qe_status(v);
    for (size_t i = 0; i < nqe_adv; i++)
        occ_verdict_add_advisory(v, qe_adv[i]);
out:
    EVP_PKEY_free(ak);
    X509_CRL_free(root_crl);
    X509_CRL_free(pck_crl);
    for (int i = 0; i < nchain; i++)
        X509_free(chain[i]);
}

void occ_attest_fill_from_quote(const occ_quote *q, occ_attest_verdict *v)
{
    v->parsed = 1;
    v->quote_version = q->version;
    v->tee_type = q->tee_type;
    memcpy(v->mrenclave, q->report.mrenclave, 32);
    memcpy(v->mrsigner, q->report.mrsigner, 32);
    memcpy(v->report_data, q->report.report_data, 64);
    v->isv_prod_id = q->report.isv_prod_id;
    v->isv_svn = q->report.isv_svn;
    v->flags = q->report.flags;
    v->xfrm = q->report.xfrm;
    v->debug = (q->report.flags & OCC_SGX_FLAGS_DEBUG) != 0;
}

/* Runs the quote-level checks into v (which the caller zeroed or prepared).
 * Returns the parse status. */
occ_status occ_attest_check_quote(const uint8_t *quote, size_t size, const occ_attest_collateral *coll, X509 *root,
                                  int64_t at, occ_attest_verdict *v)
{
    occ_quote q;
    occ_error pe = {0};
    snprintf(v->tcb_status, sizeof v->tcb_status, "Unknown");
    occ_status st = occ_quote_parse(quote, size, &q, &pe);
    if (st) {
        occ_verdict_reason(v, "%s", pe.msg);
        return st;
    }
    occ_attest_fill_from_quote(&q, v);
    v->tcb_status[0] = '\0';
    size_t before = v->reason_count;
    verify_evidence(&q, coll, root, at, v);
    if (!v->tcb_status[0])
        snprintf(v->tcb_status, sizeof v->tcb_status, "Unknown");
    v->verified = v->reason_count == before;
    return OCC_OK;
}

occ_status occ_attest_verify_quote(const uint8_t *quote, size_t size, const occ_attest_collateral *coll, X509 *root,
                                   const occ_attest_policy *policy, int64_t at, occ_attest_verdict *v, occ_error *e)
{
    if (!v)
        return occ_fail(e, OCC_ERR_INVALID, "verify: NULL verdict");
    memset(v, 0, sizeof *v);
    if (!quote || !root) {
        occ_verdict_reason(v, "no quote or no root given");
        return occ_fail(e, OCC_ERR_INVALID, "verify: NULL quote or root");
    }
    if (at == OCC_ATTEST_NOW)
        at = (int64_t)time(NULL);
    occ_status st = occ_attest_check_quote(quote, size, coll, root, at, v);
    occ_attest_policy def;
    if (!policy) {
        occ_attest_policy_default(&def);
        policy = &def;
    }
    if (st)
        return occ_fail(e, st, "%s", v->reasons[0]);
    occ_attest_policy_apply(policy, v);
    if (v->accepted)
        return OCC_OK;
    return occ_fail(e, OCC_ERR_ATTEST, "attestation refused: %s", v->reason_count ? v->reasons[0] : "unknown");
}
