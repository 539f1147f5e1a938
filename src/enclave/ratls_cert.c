/* RA-TLS certificate, made inside the enclave: a fresh key's SPKI hash and
 * the model binding go into REPORTDATA; the quote (and, for a server, its
 * (name, model id) list) goes into the TCG evidence extension (CBOR), the
 * quote also into Intel's legacy raw-quote extension. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "occ/binding.h"
#include "occ/ratls.h"

occ_status occ_ratls_keygen(EVP_PKEY **out, occ_error *e)
{
    *out = EVP_EC_gen("P-256");
    if (!*out) {
        ERR_clear_error();
        return occ_fail(e, OCC_ERR_INTERNAL, "RA-TLS: P-256 key generation failed");
    }
    return OCC_OK;
}

occ_status occ_ratls_spki_sha256(EVP_PKEY *key, uint8_t out[32], occ_error *e)
{
    uint8_t *der = NULL;
    int n = key ? i2d_PUBKEY(key, &der) : -1;
    unsigned int hl = 32;
    if (n <= 0 || EVP_Digest(der, (size_t)n, out, &hl, EVP_sha256(), NULL) != 1) {
        OPENSSL_free(der);
        ERR_clear_error();
        return occ_fail(e, OCC_ERR_INTERNAL, "RA-TLS: cannot encode/hash the public key");
    }
    OPENSSL_free(der);
    return OCC_OK;
}

occ_status occ_ratls_report_data(EVP_PKEY *key, const uint8_t model_id[32], uint8_t out[64], occ_error *e)
{
    occ_status st = occ_ratls_spki_sha256(key, out, e);
    if (st)
        return st;
    if (model_id)
        memcpy(out + 32, model_id, 32);
    else
        memset(out + 32, 0, 32);
    return OCC_OK;
}

static size_t cbor_head(uint8_t *p, unsigned major, uint64_t arg)
{
    uint8_t m = (uint8_t)(major << 5);
    if (arg < 24) {
        p[0] = m | (uint8_t)arg;
        return 1;
    }
    int n = arg <= 0xff ? 1 : arg <= 0xffff ? 2 : arg <= 0xffffffffull ? 4 : 8;
    p[0] = m | (uint8_t)(n == 1 ? 24 : n == 2 ? 25 : n == 4 ? 26 : 27);
    for (int i = 0; i < n; i++)
        p[1 + i] = (uint8_t)(arg >> (8 * (n - 1 - i)));
    return 1 + (size_t)n;
}

/* claims = {"pubkey-hash": bstr .cbor [1, h'SHA256(SPKI)'] (the interoperable
 * RA-TLS encoding), and with models "occ-models": [[name tstr, id bstr], ...]
 * sorted by name (include/occ/binding.h)} */
static occ_status tcg_evidence(const uint8_t *quote, size_t quote_size, const uint8_t spki_hash[32],
                               const char *const *names, const uint8_t (*ids)[32], size_t n_models, uint8_t **out,
                               size_t *out_size, occ_error *e)
{
    uint8_t entry[40];
    size_t en = 0, cn = 0;
    en += cbor_head(entry + en, 4, 2);
    en += cbor_head(entry + en, 0, 1);
    en += cbor_head(entry + en, 2, 32);
    memcpy(entry + en, spki_hash, 32);
    en += 32;
    if (n_models > OCC_BOUND_MODELS_MAX)
        return occ_fail(e, OCC_ERR_INVALID, "RA-TLS: at most %d models", OCC_BOUND_MODELS_MAX);
    size_t order[OCC_BOUND_MODELS_MAX];
    occ_models_sort(names, n_models, order);
    size_t ccap = 64 + n_models * (1 + 9 + OCC_MODEL_NAME_MAX + 2 + 32) + 16;
    uint8_t *claims = malloc(ccap);
    if (!claims)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    cn += cbor_head(claims + cn, 5, n_models ? 2 : 1);
    cn += cbor_head(claims + cn, 3, 11);
    memcpy(claims + cn, "pubkey-hash", 11);
    cn += 11;
    cn += cbor_head(claims + cn, 2, en);
    memcpy(claims + cn, entry, en);
    cn += en;
    if (n_models) {
        cn += cbor_head(claims + cn, 3, 10);
        memcpy(claims + cn, "occ-models", 10);
        cn += 10;
        cn += cbor_head(claims + cn, 4, n_models);
        for (size_t i = 0; i < n_models; i++) {
            const char *nm = names[order[i]];
            size_t nl = strlen(nm);
            if (!occ_model_name_valid(nm, nl)) {
                free(claims);
                return occ_fail(e, OCC_ERR_INVALID, "RA-TLS: model name '%.128s' cannot be bound", nm);
            }
            cn += cbor_head(claims + cn, 4, 2);
            cn += cbor_head(claims + cn, 3, nl);
            memcpy(claims + cn, nm, nl);
            cn += nl;
            cn += cbor_head(claims + cn, 2, 32);
            memcpy(claims + cn, ids[order[i]], 32);
            cn += 32;
        }
    }
    size_t cap = quote_size + cn + 32;
    uint8_t *b = malloc(cap);
    if (!b) {
        free(claims);
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    }
    size_t n = 0;
    n += cbor_head(b + n, 6, OCC_RATLS_CBOR_TAG);
    n += cbor_head(b + n, 4, 2);
    n += cbor_head(b + n, 2, quote_size);
    memcpy(b + n, quote, quote_size);
    n += quote_size;
    n += cbor_head(b + n, 2, cn);
    memcpy(b + n, claims, cn);
    n += cn;
    free(claims);
    *out = b;
    *out_size = n;
    return OCC_OK;
}

occ_status occ_ratls_tcg_evidence(const uint8_t *quote, size_t quote_size, const uint8_t spki_hash[32], uint8_t **out,
                                  size_t *out_size, occ_error *e)
{
    return tcg_evidence(quote, quote_size, spki_hash, NULL, NULL, 0, out, out_size, e);
}

occ_status occ_ratls_tcg_evidence_models(const uint8_t *quote, size_t quote_size, const uint8_t spki_hash[32],
                                         const char *const *names, const uint8_t (*ids)[32], size_t n,
                                         uint8_t **out, size_t *out_size, occ_error *e)
{
    if (!names || !ids || !n)
        return occ_fail(e, OCC_ERR_INVALID, "RA-TLS: no models");
    return tcg_evidence(quote, quote_size, spki_hash, names, ids, n, out, out_size, e);
}

static int add_raw_ext(X509 *x, const char *oid, const uint8_t *data, size_t n)
{
    ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
    ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
    X509_EXTENSION *ext = NULL;
    int ok = obj && os && n <= INT32_MAX && ASN1_OCTET_STRING_set(os, data, (int)n) &&
             (ext = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, os)) && X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    ASN1_OCTET_STRING_free(os);
    ASN1_OBJECT_free(obj);
    return ok;
}

static occ_status make_cert(EVP_PKEY *key, const uint8_t model_id[32], const char *const *names,
                            const uint8_t (*ids)[32], size_t n_models, occ_quote_provider_fn provider,
                            void *provider_ctx, int64_t not_before, int64_t not_after, X509 **out, occ_error *e)
{
    if (!key || !provider || !out || not_after <= not_before)
        return occ_fail(e, OCC_ERR_INVALID, "RA-TLS: bad arguments");
    *out = NULL;
    uint8_t rd[64];
    uint8_t *quote = NULL, *ev = NULL;
    size_t quote_size = 0, ev_size = 0;
    occ_status st = occ_ratls_report_data(key, model_id, rd, e);
    if (st)
        return st;
    st = provider(provider_ctx, rd, &quote, &quote_size, e);
    if (st)
        return occ_error_prefix(e, "RA-TLS quote");
    st = tcg_evidence(quote, quote_size, rd, names, ids, n_models, &ev, &ev_size, e);
    if (st) {
        free(quote);
        return st;
    }
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    uint8_t serial[16];
    BIGNUM *bn = NULL;
    ASN1_INTEGER *sn = NULL;
    BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
    int ok = x && name && bc && RAND_bytes(serial, sizeof serial) == 1;
    if (ok) {
        serial[0] &= 0x7f;
        serial[0] |= 0x01;
        ok = (bn = BN_bin2bn(serial, sizeof serial, NULL)) && (sn = BN_to_ASN1_INTEGER(bn, NULL)) &&
             X509_set_version(x, 2) && X509_set_serialNumber(x, sn) &&
             X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"Occlumency RA-TLS", -1, -1,
                                        0) &&
             X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"Occlumency", -1, -1, 0) &&
             X509_set_subject_name(x, name) && X509_set_issuer_name(x, name) &&
             ASN1_TIME_set(X509_getm_notBefore(x), (time_t)not_before) &&
             ASN1_TIME_set(X509_getm_notAfter(x), (time_t)not_after) && X509_set_pubkey(x, key);
    }
    if (ok) {
        bc->ca = 0;
        ok = X509_add1_ext_i2d(x, NID_basic_constraints, bc, 1, X509V3_ADD_DEFAULT) == 1 &&
             add_raw_ext(x, OCC_RATLS_TCG_OID, ev, ev_size) && add_raw_ext(x, OCC_RATLS_LEGACY_OID, quote, quote_size) &&
             X509_sign(x, key, EVP_sha256()) > 0;
    }
    BASIC_CONSTRAINTS_free(bc);
    ASN1_INTEGER_free(sn);
    BN_free(bn);
    X509_NAME_free(name);
    free(ev);
    free(quote);
    if (!ok) {
        X509_free(x);
        ERR_clear_error();
        return occ_fail(e, OCC_ERR_INTERNAL, "RA-TLS: building the certificate failed");
    }
    *out = x;
    return OCC_OK;
}

occ_status occ_ratls_make_cert(EVP_PKEY *key, const uint8_t model_id[32], occ_quote_provider_fn provider,
                               void *provider_ctx, int64_t not_before, int64_t not_after, X509 **out, occ_error *e)
{
    return make_cert(key, model_id, NULL, NULL, 0, provider, provider_ctx, not_before, not_after, out, e);
}

occ_status occ_ratls_make_cert_models(EVP_PKEY *key, const char *const *names, const uint8_t (*ids)[32], size_t n,
                                      occ_quote_provider_fn provider, void *provider_ctx, int64_t not_before,
                                      int64_t not_after, X509 **out, occ_error *e)
{
    uint8_t binding[32];
    if (out)
        *out = NULL;
    occ_status st = occ_models_binding(names, ids, n, binding, e);
    if (st) {
        occ_error_prefix(e, "RA-TLS");
        return st;
    }
    return make_cert(key, binding, names, ids, n, provider, provider_ctx, not_before, not_after, out, e);
}
