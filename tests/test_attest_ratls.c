/* RA-TLS certificates from Gramine, the Intel SGX SDK and RATS-TLS
 * (testdata/dcap/ratls-interop, README §3): evidence parsing
 * (including Gramine's malformed legacy OID), key binding, quote checks,
 * and refusal by default as DEBUG enclaves. */
#include <openssl/pem.h>

#include "attest_testutil.h"
#include "attest/attest_int.h"
#include "occ/ratls.h"
#include "test.h"

#define T_OK 1750464000LL /* 2025-06-21 */
#define T_RATS 1685577600LL /* 2023-06-01, inside the RATS-TLS cert's validity */

static X509 *root;

static X509 *load_cert(const char *rel)
{
    FILE *f = fopen(td(rel), "r");
    if (!f)
        return NULL;
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    return x;
}

static occ_attest_policy lenient(void)
{
    occ_attest_policy p;
    occ_attest_policy_default(&p);
    p.allow_debug = 1;
    p.allow_missing_collateral = 1;
    return p;
}

struct vec {
    const char *cert, *quote_bin, *mrenclave, *spki;
    int legacy;
    int64_t at;
};

static const struct vec VECS[] = {
    {"ratls-interop/gramine-cert.pem", "ratls-interop/extracted/gramine-cert.quote.bin",
     "0866e7ca11b9f4efe4bf39b2607f4e1299f111920d96d95719080f01b62b7585",
     "5a5a5b2d177433048e9d62409d1acc4ec526c06e294d09e69a36cff9369e4851", 1, T_OK},
    {"ratls-interop/intel-sgxsdk-cert.pem", "ratls-interop/extracted/intel-sgxsdk-cert.quote.bin",
     "09e218a4be9dadbf7cdc82c45497d6d4f676d3b75445fc37a376f0b65b47de6a",
     "f306ed602985371e3b485102db1fcdd4f4738329ce58b2f8d1c5d2cc79752026", 1, T_OK},
    {"ratls-interop/rats-tls-cert.pem", "ratls-interop/extracted/rats-tls-cert.quote.bin",
     "38e1b40b8c68186f359c97ecb6a89965d9d8638f2df06fbe18e84d79a266c041", NULL, 0, T_RATS},
};

static void test_interop(void)
{
    for (size_t i = 0; i < sizeof VECS / sizeof *VECS; i++) {
        const struct vec *t = &VECS[i];
        fprintf(stderr, "   %s\n", t->cert);
        X509 *c = load_cert(t->cert);
        CHECK(c != NULL);
        if (!c)
            continue;
        occ_ratls_evidence ev;
        occ_error e = {0};
        CHECK_MSG(occ_ratls_extract(c, &ev, &e) == OCC_OK, "%s", e.msg);
        CHECK(ev.tcg && ev.has_pubkey_hash && ev.legacy == t->legacy);
        size_t n;
        uint8_t *q = slurp(td(t->quote_bin), &n);
        CHECK(q && n == ev.quote_size && !memcmp(q, ev.quote, n));
        free(q);

        /* default policy: refused as debug (and collateral missing), yet
         * quote checks and key binding pass */
        occ_attest_verdict v;
        occ_status st = occ_ratls_verify_cert(c, NULL, root, NULL, t->at, &v, &e);
        dump_verdict(&v);
        CHECK(st == OCC_ERR_ATTEST && !v.accepted);
        CHECK(v.verified && v.debug && !v.emulated);
        CHECK(occ_verdict_has_reason(&v, "debug enclave refused"));
        CHECK(!strcmp(v.binding, "tcg-claims"));
        char hex[65];
        occ_hex_encode(v.mrenclave, 32, hex);
        CHECK(!strcmp(hex, t->mrenclave));
        occ_hex_encode(v.spki_sha256, 32, hex);
        CHECK(!t->spki || !strcmp(hex, t->spki));
        CHECK(!memcmp(ev.pubkey_hash, v.spki_sha256, 32));

        /* explicitly lenient: accepted */
        occ_attest_policy p = lenient();
        st = occ_ratls_verify_cert(c, &p, root, NULL, t->at, &v, &e);
        CHECK_MSG(st == OCC_OK && v.accepted, "%s", e.msg);
        /* but not with a model id (REPORTDATA[32..63] is zero in these) set to something else */
        p.has_model_id = 1;
        p.model_id[0] = 1;
        CHECK(occ_ratls_verify_cert(c, &p, root, NULL, t->at, &v, NULL) == OCC_ERR_ATTEST);
        CHECK(occ_verdict_has_reason(&v, "model id mismatch"));
        X509_free(c);
    }
}

static void test_gramine_legacy(void)
{
    /* Gramine's legacy extension: quote REPORTDATA[0..31] = SHA-256(SPKI) */
    X509 *c = load_cert("ratls-interop/gramine-cert.pem");
    size_t n;
    uint8_t *q = slurp(td("ratls-interop/extracted/gramine-cert.legacy-oid.quote.bin"), &n);
    occ_attest_verdict v;
    memset(&v, 0, sizeof v);
    CHECK(occ_attest_check_quote(q, n, NULL, root, T_OK, &v) == OCC_OK && v.verified);
    uint8_t *der = NULL, h[32];
    int dn = i2d_PUBKEY(X509_get0_pubkey(c), &der);
    occ_attest_sha256(der, (size_t)dn, NULL, 0, h);
    CHECK(!memcmp(h, v.report_data, 32));
    /* a cert carrying only the legacy extension verifies with binding "legacy" */
    ASN1_OBJECT *tcg = OBJ_txt2obj(OCC_RATLS_TCG_OID, 1);
    int idx = X509_get_ext_by_OBJ(c, tcg, -1);
    ASN1_OBJECT_free(tcg);
    CHECK(idx >= 0);
    X509_EXTENSION *ext = X509_delete_ext(c, idx);
    X509_EXTENSION_free(ext);
    occ_attest_policy p = lenient();
    /* (OpenSSL keeps the cached signed encoding, so the self-signature
     * still verifies: only the evidence source changes) */
    occ_status st = occ_ratls_verify_cert(c, &p, root, NULL, T_OK, &v, NULL);
    CHECK(st == OCC_OK || st == OCC_ERR_ATTEST);
    CHECK(!strcmp(v.binding, "legacy"));
    CHECK(!occ_verdict_has_reason(&v, "key binding"));
    OPENSSL_free(der);
    free(q);
    X509_free(c);
}

static void test_rats_validity(void)
{
    X509 *c = load_cert("ratls-interop/rats-tls-cert.pem");
    occ_attest_policy p = lenient();
    occ_attest_verdict v;
    CHECK(occ_ratls_verify_cert(c, &p, root, NULL, T_OK, &v, NULL) == OCC_ERR_ATTEST);
    CHECK(occ_verdict_has_reason(&v, "certificate expired"));
    CHECK(occ_ratls_verify_cert(c, &p, root, NULL, 1677081600LL /* 2023-02-22 16:00 */, &v, NULL) == OCC_ERR_ATTEST);
    CHECK(occ_verdict_has_reason(&v, "certificate not yet valid"));
    CHECK(occ_ratls_verify_cert(c, &p, root, NULL, 1677082222LL /* 16:10:22 */, &v, NULL) == OCC_OK);
    X509_free(c);
}

static void test_binding_negative(void)
{
    for (size_t i = 0; i < sizeof VECS / sizeof *VECS; i++) {
        X509 *c = load_cert(VECS[i].cert);
        occ_attest_policy p = lenient();
        occ_attest_verdict v;
        /* 1. replace the public key (and re-sign, so only the binding fails) */
        EVP_PKEY *k = EVP_EC_gen("P-256");
        X509_set_pubkey(c, k);
        X509_sign(c, k, EVP_sha256());
        CHECK(occ_ratls_verify_cert(c, &p, root, NULL, VECS[i].at, &v, NULL) == OCC_ERR_ATTEST);
        CHECK(occ_verdict_has_reason(&v, "key binding mismatch"));
        CHECK(!occ_verdict_has_reason(&v, "self-signature"));
        EVP_PKEY_free(k);
        X509_free(c);

        /* 2. flip a byte inside the claims buffer (the pubkey-hash value) */
        c = load_cert(VECS[i].cert);
        uint8_t *der = NULL;
        int dn = i2d_X509(c, &der);
        X509_free(c);
        uint8_t *hit = memmem(der, (size_t)dn, "pubkey-hash", 11);
        CHECK(hit != NULL);
        hit[11 + 6] ^= 1; /* bstr(0x58 0x24) .cbor [1, bstr(0x58 0x20) hash] */
        const uint8_t *pp = der;
        c = d2i_X509(NULL, &pp, dn);
        CHECK(c != NULL);
        CHECK(occ_ratls_verify_cert(c, &p, root, NULL, VECS[i].at, &v, NULL) == OCC_ERR_ATTEST);
        CHECK(occ_verdict_has_reason(&v, "key binding mismatch"));
        OPENSSL_free(der);
        X509_free(c);
    }
}

static void test_tcg_parser(void)
{
    X509 *c = load_cert("ratls-interop/intel-sgxsdk-cert.pem");
    ASN1_OBJECT *tcg = OBJ_txt2obj(OCC_RATLS_TCG_OID, 1);
    int idx = X509_get_ext_by_OBJ(c, tcg, -1);
    ASN1_OBJECT_free(tcg);
    ASN1_OCTET_STRING *os = X509_EXTENSION_get_data(X509_get_ext(c, idx));
    const uint8_t *b = ASN1_STRING_get0_data(os);
    size_t n = (size_t)ASN1_STRING_length(os);
    occ_ratls_evidence ev;
    CHECK(occ_ratls_parse_tcg(b, n, &ev, NULL) == OCC_OK);
    int bad = 0;
    for (size_t k = 0; k < n; k++)
        if (occ_ratls_parse_tcg(b, k, &ev, NULL) == OCC_OK)
            bad++;
    CHECK(bad == 0);
    uint8_t *m = malloc(n + 1);
    memcpy(m, b, n);
    m[n] = 0;
    CHECK(occ_ratls_parse_tcg(m, n + 1, &ev, NULL) == OCC_ERR_FORMAT);
    m[2] ^= 1; /* tag 60000 -> 60001 */
    CHECK(occ_ratls_parse_tcg(m, n, &ev, NULL) == OCC_ERR_FORMAT);
    free(m);
    X509_free(c);
}

int main(void)
{
    occ_error e = {0};
    if (occ_attest_root_load(td("phala-dcap-qvl/TrustedRootCA.der"), &root, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    RUN(test_interop);
    RUN(test_gramine_legacy);
    RUN(test_rats_validity);
    RUN(test_binding_negative);
    RUN(test_tcg_parser);
    X509_free(root);
    TEST_DONE();
}
