/* RA-TLS certificate verification (client side): evidence extraction from
 * the TCG and legacy extensions, key binding, quote verification, policy,
 * and an OpenSSL verify callback. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "attest/attest_int.h"
#include "occ/ratls.h"

/* DER content of the OIDs we look for. */
static const uint8_t OID_TCG[] = {0x67, 0x81, 0x05, 0x05, 0x04, 0x09};                         /* 2.23.133.5.4.9 */
static const uint8_t OID_INTEL[] = {0x2a, 0x86, 0x48, 0x86, 0xf8, 0x4d, 0x01, 0x0d, 0x01};     /* 1.2.840.113741.1.13.1 */
static const uint8_t OID_GRAMINE[] = {0x2a, 0x86, 0x48, 0x86, 0xf8, 0x4d, 0x8a, 0x39, 0x06};   /* 1.2.840.113741.1337.6 */
/* Gramine writes the whole DER of 1.2.840.113741.1337.6 (tag, length and
 * all) as the OID's content, which decodes as 0.6.9.42.840.113741.1337.6. */
static const uint8_t OID_GRAMINE_MALFORMED[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf8, 0x4d, 0x8a, 0x39, 0x06};

static int oid_eq(const ASN1_OBJECT *o, const uint8_t *der, size_t n)
{
    return (size_t)OBJ_length(o) == n && !memcmp(OBJ_get0_data(o), der, n);
}

/* hash-entry = [hash-alg-id (1 = sha-256), hash-value bstr] */
static occ_status parse_hash_entry(occ_cur *c, uint8_t out[32], occ_error *e)
{
    unsigned vm;
    uint64_t va;
    const uint8_t *h;
    if (!occ_cbor_head(c, &vm, &va) || vm != 4 || va != 2)
        return occ_fail(e, OCC_ERR_FORMAT, "TCG claims: pubkey-hash is not [alg, hash]");
    if (!occ_cbor_head(c, &vm, &va) || vm != 0)
        return occ_fail(e, OCC_ERR_FORMAT, "TCG claims: pubkey-hash algorithm is not an unsigned int");
    if (va != 1)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "TCG claims: pubkey-hash algorithm %llu (only 1 = sha-256)",
                        (unsigned long long)va);
    if (!occ_cbor_head(c, &vm, &va) || vm != 2 || va != 32 || !occ_cur_take(c, 32, &h))
        return occ_fail(e, OCC_ERR_FORMAT, "TCG claims: pubkey-hash is not a 32-byte string");
    memcpy(out, h, 32);
    return OCC_OK;
}

/* "occ-models": [[name tstr, id bstr(32)], ...], 1..16 entries, strictly
 * sorted by name (so there is one encoding of a list), valid names. */
static occ_status parse_models(occ_cur *m, occ_ratls_evidence *ev, occ_error *e)
{
    unsigned vm;
    uint64_t va;
    if (!occ_cbor_head(m, &vm, &va) || vm != 4 || va < 1 || va > OCC_BOUND_MODELS_MAX)
        return occ_fail(e, OCC_ERR_FORMAT, "TCG claims: occ-models is not a list of 1..%d models", OCC_BOUND_MODELS_MAX);
    for (uint64_t i = 0; i < va; i++) {
        unsigned pm, nm, im;
        uint64_t pa, na, ia;
        const uint8_t *name, *id;
        if (!occ_cbor_head(m, &pm, &pa) || pm != 4 || pa != 2)
            return occ_fail(e, OCC_ERR_FORMAT, "TCG claims: occ-models entry %llu is not [name, id]",
                            (unsigned long long)i);
        if (!occ_cbor_head(m, &nm, &na) || nm != 3 || na > m->left || !occ_cur_take(m, (size_t)na, &name) ||
            !occ_model_name_valid((const char *)name, (size_t)na))
            return occ_fail(e, OCC_ERR_FORMAT, "TCG claims: occ-models entry %llu has no valid model name",
                            (unsigned long long)i);
        if (!occ_cbor_head(m, &im, &ia) || im != 2 || ia != 32 || !occ_cur_take(m, 32, &id))
            return occ_fail(e, OCC_ERR_FORMAT, "TCG claims: occ-models entry %llu has no 32-byte model id",
                            (unsigned long long)i);
        size_t k = ev->model_count;
        memcpy(ev->model_names[k], name, (size_t)na);
        ev->model_names[k][na] = 0;
        memcpy(ev->model_ids[k], id, 32);
        if (k) {
            const char *prev = ev->model_names[k - 1];
            size_t pl = strlen(prev);
            int c = memcmp(prev, ev->model_names[k], pl < na ? pl : (size_t)na);
            if (c > 0 || (c == 0 && pl >= na))
                return occ_fail(e, OCC_ERR_FORMAT, "TCG claims: occ-models is not strictly sorted by name");
        }
        ev->model_count++;
    }
    ev->has_models = 1;
    return OCC_OK;
}

occ_status occ_ratls_parse_tcg(const uint8_t *buf, size_t size, occ_ratls_evidence *ev, occ_error *e)
{
    occ_cur c = {buf, size};
    unsigned major;
    uint64_t arg;
    memset(ev, 0, sizeof *ev);
    if (!occ_cbor_head(&c, &major, &arg) || major != 6 || arg != OCC_RATLS_CBOR_TAG)
        return occ_fail(e, OCC_ERR_FORMAT, "TCG evidence: not CBOR tag 60000");
    if (!occ_cbor_head(&c, &major, &arg) || major != 4 || arg != 2)
        return occ_fail(e, OCC_ERR_FORMAT, "TCG evidence: not a 2-element array [quote, claims]");
    if (!occ_cbor_head(&c, &major, &arg) || major != 2 || arg > c.left || arg == 0)
        return occ_fail(e, OCC_ERR_FORMAT, "TCG evidence: quote is not a byte string within bounds");
    ev->quote_size = (size_t)arg;
    occ_cur_take(&c, ev->quote_size, &ev->quote);
    if (!occ_cbor_head(&c, &major, &arg) || major != 2 || arg > c.left)
        return occ_fail(e, OCC_ERR_FORMAT, "TCG evidence: claims is not a byte string within bounds");
    ev->claims_size = (size_t)arg;
    occ_cur_take(&c, ev->claims_size, &ev->claims);
    if (c.left)
        return occ_fail(e, OCC_ERR_FORMAT, "TCG evidence: %zu trailing bytes", c.left);
    /* claims: a map with text keys; "pubkey-hash": [1, h'32 bytes'] */
    occ_cur m = {ev->claims, ev->claims_size};
    if (!occ_cbor_head(&m, &major, &arg) || major != 5 || arg > m.left)
        return occ_fail(e, OCC_ERR_FORMAT, "TCG claims: not a CBOR map");
    for (uint64_t i = 0; i < arg; i++) {
        unsigned km;
        uint64_t klen;
        const uint8_t *key;
        if (!occ_cbor_head(&m, &km, &klen) || km != 3 || klen > m.left)
            return occ_fail(e, OCC_ERR_FORMAT, "TCG claims: keys must be text strings");
        occ_cur_take(&m, (size_t)klen, &key);
        if (klen == 11 && !memcmp(key, "pubkey-hash", 11)) {
            if (ev->has_pubkey_hash)
                return occ_fail(e, OCC_ERR_FORMAT, "TCG claims: duplicate pubkey-hash");
            /* interoperable RA-TLS: the value is bstr .cbor [alg, hash];
             * a bare [alg, hash] is accepted too. */
            occ_cur hv = m;
            unsigned vm;
            uint64_t va;
            if (!occ_cbor_head(&hv, &vm, &va))
                return occ_fail(e, OCC_ERR_FORMAT, "TCG claims: malformed pubkey-hash");
            if (vm == 2) {
                if (va > hv.left)
                    return occ_fail(e, OCC_ERR_FORMAT, "TCG claims: pubkey-hash out of bounds");
                const uint8_t *inner;
                occ_cur_take(&hv, (size_t)va, &inner);
                m = hv; /* continue after the wrapper */
                hv.p = inner;
                hv.left = (size_t)va;
            } else {
                hv = m;
            }
            occ_status hs = parse_hash_entry(&hv, ev->pubkey_hash, e);
            if (hs)
                return hs;
            if (vm == 2) {
                if (hv.left)
                    return occ_fail(e, OCC_ERR_FORMAT, "TCG claims: trailing bytes in pubkey-hash");
            } else {
                m = hv;
            }
            ev->has_pubkey_hash = 1;
        } else if (klen == 10 && !memcmp(key, "occ-models", 10)) {
            if (ev->has_models)
                return occ_fail(e, OCC_ERR_FORMAT, "TCG claims: duplicate occ-models");
            occ_status ms = parse_models(&m, ev, e);
            if (ms)
                return ms;
        } else if (!occ_cbor_skip(&m, 0)) {
            return occ_fail(e, OCC_ERR_FORMAT, "TCG claims: malformed value");
        }
    }
    if (m.left)
        return occ_fail(e, OCC_ERR_FORMAT, "TCG claims: %zu trailing bytes", m.left);
    ev->tcg = 1;
    return OCC_OK;
}

occ_status occ_ratls_extract(X509 *cert, occ_ratls_evidence *ev, occ_error *e)
{
    memset(ev, 0, sizeof *ev);
    const uint8_t *legacy = NULL;
    size_t legacy_size = 0;
    int tcg_idx = -1;
    int n = X509_get_ext_count(cert);
    for (int i = 0; i < n; i++) {
        X509_EXTENSION *ext = X509_get_ext(cert, i);
        const ASN1_OBJECT *o = X509_EXTENSION_get_object(ext);
        ASN1_OCTET_STRING *os = X509_EXTENSION_get_data(ext);
        if (oid_eq(o, OID_TCG, sizeof OID_TCG)) {
            if (tcg_idx >= 0)
                return occ_fail(e, OCC_ERR_FORMAT, "certificate has two TCG evidence extensions");
            tcg_idx = i;
        } else if (oid_eq(o, OID_INTEL, sizeof OID_INTEL) || oid_eq(o, OID_GRAMINE, sizeof OID_GRAMINE) ||
                   oid_eq(o, OID_GRAMINE_MALFORMED, sizeof OID_GRAMINE_MALFORMED)) {
            if (legacy)
                return occ_fail(e, OCC_ERR_FORMAT, "certificate has two legacy quote extensions");
            legacy = ASN1_STRING_get0_data(os);
            legacy_size = (size_t)ASN1_STRING_length(os);
        }
    }
    if (tcg_idx >= 0) {
        ASN1_OCTET_STRING *os = X509_EXTENSION_get_data(X509_get_ext(cert, tcg_idx));
        occ_status st = occ_ratls_parse_tcg(ASN1_STRING_get0_data(os), (size_t)ASN1_STRING_length(os), ev, e);
        if (st)
            return st;
        ev->legacy = legacy != NULL;
        return OCC_OK;
    }
    if (legacy) {
        ev->quote = legacy;
        ev->quote_size = legacy_size;
        ev->legacy = 1;
        return OCC_OK;
    }
    return occ_fail(e, OCC_ERR_FORMAT, "certificate carries no RA-TLS evidence (OID 2.23.133.5.4.9 or "
                                       "1.2.840.113741.1.13.1)");
}

static int spki_sha256(X509 *cert, uint8_t out[32])
{
    uint8_t *der = NULL;
    int n = i2d_PUBKEY(X509_get0_pubkey(cert), &der);
    if (n <= 0)
        return 0;
    occ_attest_sha256(der, (size_t)n, NULL, 0, out);
    OPENSSL_free(der);
    return 1;
}

occ_status occ_ratls_verify_cert(X509 *cert, const occ_attest_policy *policy, X509 *root,
                                 const occ_attest_collateral *coll, int64_t at, occ_attest_verdict *v, occ_error *e)
{
    if (!v)
        return occ_fail(e, OCC_ERR_INVALID, "verify: NULL verdict");
    memset(v, 0, sizeof *v);
    v->is_cert = 1;
    if (!cert || !root) {
        occ_verdict_reason(v, "no certificate or no root given");
        return occ_fail(e, OCC_ERR_INVALID, "verify: NULL certificate or root");
    }
    if (at == OCC_ATTEST_NOW)
        at = (int64_t)time(NULL);
    occ_attest_policy def;
    if (!policy) {
        occ_attest_policy_default(&def);
        policy = &def;
    }
    EVP_PKEY *pub = X509_get0_pubkey(cert);
    if (!pub || !spki_sha256(cert, v->spki_sha256)) {
        occ_verdict_reason(v, "certificate has no usable public key");
        ERR_clear_error();
        return occ_fail(e, OCC_ERR_FORMAT, "%s", v->reasons[0]);
    }
    occ_ratls_evidence ev;
    occ_error xe = {0};
    occ_status st = occ_ratls_extract(cert, &ev, &xe);
    if (st) {
        occ_verdict_reason(v, "%s", xe.msg);
        return occ_fail(e, st, "%s", xe.msg);
    }
    st = occ_attest_check_quote(ev.quote, ev.quote_size, coll, root, at, v);
    if (st)
        return occ_fail(e, st, "%s", v->reasons[0]);
    size_t before = v->reason_count;
    /* the certificate itself */
    if (X509_verify(cert, pub) != 1)
        occ_verdict_reason(v, "certificate self-signature invalid");
    ERR_clear_error();
    time_t t = (time_t)at;
    if (X509_cmp_time(X509_get0_notBefore(cert), &t) > 0)
        occ_verdict_reason(v, "certificate not yet valid at the verification time");
    if (X509_cmp_time(X509_get0_notAfter(cert), &t) < 0)
        occ_verdict_reason(v, "certificate expired at the verification time");
    /* key binding */
    if (ev.tcg && (!ev.has_pubkey_hash || CRYPTO_memcmp(ev.pubkey_hash, v->spki_sha256, 32)))
        occ_verdict_reason(v, "key binding mismatch: the pubkey-hash claim is %s SHA-256 of the certificate's "
                              "public key",
                           ev.has_pubkey_hash ? "not" : "missing, it must be");
    uint8_t claims_hash[32];
    if (ev.tcg)
        occ_attest_sha256(ev.claims, ev.claims_size, NULL, 0, claims_hash);
    if (!CRYPTO_memcmp(v->report_data, v->spki_sha256, 32))
        snprintf(v->binding, sizeof v->binding, "%s", ev.tcg ? "occlumency" : "legacy");
    else if (ev.tcg && !CRYPTO_memcmp(v->report_data, claims_hash, 32))
        snprintf(v->binding, sizeof v->binding, "tcg-claims");
    else
        occ_verdict_reason(v, "key binding mismatch: REPORTDATA[0..31] is neither SHA-256 of the certificate's "
                              "public key%s",
                           ev.tcg ? " nor SHA-256 of the claims buffer" : "");
    /* the (name, model id) list: it must hash to REPORTDATA[32..63] */
    if (ev.has_models) {
        const char *names[OCC_BOUND_MODELS_MAX];
        uint8_t binding[32];
        occ_error be = {0};
        for (size_t i = 0; i < ev.model_count; i++)
            names[i] = ev.model_names[i];
        if (occ_models_binding(names, (const uint8_t(*)[32])ev.model_ids, ev.model_count, binding, &be))
            occ_verdict_reason(v, "the certificate's model list is invalid: %s", be.msg);
        else if (CRYPTO_memcmp(binding, v->report_data + 32, 32))
            occ_verdict_reason(v, "model list binding mismatch: the certificate's (name, model id) list does not "
                                  "hash to REPORTDATA[32..63]");
        else {
            v->models_bound = 1;
            v->model_count = ev.model_count;
            memcpy(v->model_names, ev.model_names, sizeof v->model_names);
            memcpy(v->model_ids, ev.model_ids, sizeof v->model_ids);
        }
    }
    if (v->reason_count != before)
        v->verified = 0;
    occ_attest_policy_apply(policy, v);
    if (v->accepted)
        return OCC_OK;
    return occ_fail(e, OCC_ERR_ATTEST, "attestation refused: %s", v->reason_count ? v->reasons[0] : "unknown");
}

/* ---- OpenSSL hook ---- */
static int ssl_idx = -1;
static pthread_once_t ssl_idx_once = PTHREAD_ONCE_INIT;

static void make_idx(void)
{
    ssl_idx = SSL_get_ex_new_index(0, (void *)"occ_ratls_verify_ctx", NULL, NULL, NULL);
}

occ_status occ_ratls_ssl_attach(SSL *ssl, occ_ratls_verify_ctx *ctx)
{
    pthread_once(&ssl_idx_once, make_idx);
    if (ssl_idx < 0 || !SSL_set_ex_data(ssl, ssl_idx, ctx))
        return OCC_ERR_INTERNAL;
    ctx->done = 0;
    return OCC_OK;
}

int occ_ratls_ssl_verify_cb(int preverify_ok, X509_STORE_CTX *store)
{
    (void)preverify_ok; /* a self-signed RA-TLS certificate never passes PKIX */
    SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
    if (!ssl || ssl_idx < 0)
        return 0;
    occ_ratls_verify_ctx *ctx = SSL_get_ex_data(ssl, ssl_idx);
    if (!ctx)
        return 0;
    if (X509_STORE_CTX_get_error_depth(store) != 0)
        return 0; /* RA-TLS peers present one self-signed certificate */
    if (!ctx->done) {
        X509 *cert = X509_STORE_CTX_get_current_cert(store);
        occ_status st = occ_ratls_verify_cert(cert, ctx->policy, ctx->root, ctx->coll, ctx->at, &ctx->verdict, NULL);
        ctx->done = 1;
        (void)st;
    }
    if (ctx->verdict.accepted) {
        X509_STORE_CTX_set_error(store, X509_V_OK);
        return 1;
    }
    X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
    return 0;
}
