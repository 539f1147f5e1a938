/* DCAP verifier against the real Intel vectors in testdata/dcap
 * (README §1, §1b, §1c, §2): every listed case and its verdict. */
#include <stdint.h>
#include <time.h>

#include "attest_testutil.h"
#include "attest/attest_int.h"
#include "occ/attest.h"
#include "test.h"

#define T_OK 1750464000LL      /* 2025-06-21T00:00:00Z */
#define T_UPSTREAM 1752919277LL /* dcap-qvl's time, last valid second */
#define T_EXPIRED 1754006400LL /* 2025-08-01 */
#define T_EARLY 1748736000LL   /* 2025-06-01 */

static uint8_t *quote;
static size_t quote_size;
static occ_attest_collateral *coll;
static X509 *root;

static occ_attest_policy relaxed(void)
{
    occ_attest_policy p;
    occ_attest_policy_default(&p);
    p.tcb_status_count = 2;
    snprintf(p.accepted_tcb_status[1], OCC_TCB_STATUS_SIZE, "ConfigurationAndSWHardeningNeeded");
    return p;
}

static void test_genuine(void)
{
    occ_attest_verdict v;
    occ_error e = {0};
    occ_attest_policy p = relaxed();
    occ_status st = occ_attest_verify_quote(quote, quote_size, coll, root, &p, T_OK, &v, &e);
    dump_verdict(&v);
    CHECK_MSG(st == OCC_OK, "%s", e.msg);
    CHECK(v.accepted && v.verified && !v.emulated && !v.debug);
    CHECK(!strcmp(v.tcb_status, "ConfigurationAndSWHardeningNeeded"));
    CHECK(!strcmp(v.qe_tcb_status, "UpToDate"));
    CHECK(v.advisory_count == 2);
    CHECK(!strcmp(v.advisories[0], "INTEL-SA-00289") && !strcmp(v.advisories[1], "INTEL-SA-00615"));
    CHECK(!strcmp(v.fmspc, "00a067110000"));
    char hex[129];
    occ_hex_encode(v.mrenclave, 32, hex);
    CHECK(!strcmp(hex, "33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb"));
    occ_hex_encode(v.mrsigner, 32, hex);
    CHECK(!strcmp(hex, "815f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6"));
    CHECK(!memcmp(v.report_data, "Hello, world!", 13) && v.report_data[13] == 0 && v.report_data[63] == 0);

    /* upstream's time: the last valid second */
    st = occ_attest_verify_quote(quote, quote_size, coll, root, &p, T_UPSTREAM, &v, &e);
    CHECK_MSG(st == OCC_OK, "%s", e.msg);

    /* default policy: UpToDate only -> refused, with the status as reason */
    st = occ_attest_verify_quote(quote, quote_size, coll, root, NULL, T_OK, &v, &e);
    CHECK(st == OCC_ERR_ATTEST && !v.accepted && v.verified);
    CHECK(v.reason_count == 1);
    CHECK(occ_verdict_has_reason(&v, "TCB status ConfigurationAndSWHardeningNeeded not accepted by policy"));
    CHECK(occ_verdict_has_reason(&v, "INTEL-SA-00289, INTEL-SA-00615"));
    CHECK(v.warning_count == 1); /* no identity pinned */
}

static void expect_flip(size_t off, const char *reason)
{
    uint8_t *q = malloc(quote_size);
    memcpy(q, quote, quote_size);
    q[off] ^= 0x01;
    occ_attest_verdict v;
    occ_attest_policy p = relaxed();
    occ_status st = occ_attest_verify_quote(q, quote_size, coll, root, &p, T_OK, &v, NULL);
    CHECK_MSG(st == OCC_ERR_ATTEST && !v.accepted && !v.verified, "byte %zu", off);
    CHECK_MSG(occ_verdict_has_reason(&v, reason), "byte %zu: want \"%s\", got \"%s\"", off, reason,
              v.reason_count ? v.reasons[0] : "");
    free(q);
}

static void test_bitflips(void)
{
    expect_flip(112, "ISV enclave report signature invalid");
    expect_flip(368, "ISV enclave report signature invalid");
    expect_flip(28, "ISV enclave report signature invalid");
    expect_flip(628, "QE report signature invalid");
    expect_flip(1014, "QE REPORTDATA binding mismatch");
    /* the binding-only failure keeps both signatures valid */
    uint8_t *q = malloc(quote_size);
    memcpy(q, quote, quote_size);
    q[1014] ^= 1;
    occ_attest_verdict v;
    occ_attest_policy p = relaxed();
    CHECK(occ_attest_verify_quote(q, quote_size, coll, root, &p, T_OK, &v, NULL) == OCC_ERR_ATTEST);
    CHECK(v.reason_count == 1 && !occ_verdict_has_reason(&v, "signature invalid"));
    /* every byte of the signed header+body: refused */
    int all = 1;
    for (size_t i = 0; i < OCC_QUOTE_SIGNED_SIZE; i += 7) {
        memcpy(q, quote, quote_size);
        q[i] ^= 0x80;
        occ_status st = occ_attest_verify_quote(q, quote_size, coll, root, &p, T_OK, &v, NULL);
        if (st == OCC_OK || v.accepted)
            all = 0;
    }
    CHECK(all);
    free(q);
}

static void test_tcb_info_tamper(void)
{
    uint8_t *json;
    size_t n;
    json = slurp(td("phala-dcap-qvl/sgx_quote_collateral.json"), &n);
    /* flip bytes in the collateral's own signed tcb_info string */
    int bad = 0;
    for (size_t k = 0; k < 3; k++) {
        occ_attest_collateral *c = NULL;
        CHECK(occ_attest_collateral_parse((char *)json, n, &c, NULL) == OCC_OK);
        size_t pos = k == 0 ? 10 : k == 1 ? c->tcb_info_size / 2 : c->tcb_info_size - 2;
        c->tcb_info[pos] ^= 0x01;
        occ_attest_verdict v;
        occ_attest_policy p = relaxed();
        occ_status st = occ_attest_verify_quote(quote, quote_size, c, root, &p, T_OK, &v, NULL);
        if (st != OCC_ERR_ATTEST || !occ_verdict_has_reason(&v, "TCB info signature invalid"))
            bad++;
        occ_attest_collateral_free(c);
    }
    CHECK(bad == 0);
    /* QE identity too */
    occ_attest_collateral *c = NULL;
    CHECK(occ_attest_collateral_parse((char *)json, n, &c, NULL) == OCC_OK);
    c->qe_identity[20] ^= 1;
    occ_attest_verdict v;
    occ_attest_policy p = relaxed();
    CHECK(occ_attest_verify_quote(quote, quote_size, c, root, &p, T_OK, &v, NULL) == OCC_ERR_ATTEST);
    CHECK(occ_verdict_has_reason(&v, "QE identity signature invalid"));
    occ_attest_collateral_free(c);
    free(json);
}

static void test_times(void)
{
    occ_attest_verdict v;
    occ_attest_policy p = relaxed();
    CHECK(occ_attest_verify_quote(quote, quote_size, coll, root, &p, T_EXPIRED, &v, NULL) == OCC_ERR_ATTEST);
    dump_verdict(&v);
    CHECK(occ_verdict_has_reason(&v, "TCB info expired"));
    CHECK(occ_verdict_has_reason(&v, "QE identity expired"));
    CHECK(occ_verdict_has_reason(&v, "PCK CRL expired"));
    CHECK(occ_attest_verify_quote(quote, quote_size, coll, root, &p, T_EARLY, &v, NULL) == OCC_ERR_ATTEST);
    dump_verdict(&v);
    CHECK(occ_verdict_has_reason(&v, "TCB info not yet valid"));
    CHECK(occ_verdict_has_reason(&v, "QE identity not yet valid"));
    CHECK(occ_verdict_has_reason(&v, "PCK CRL not yet valid"));
    /* exactly at the boundaries */
    CHECK(occ_attest_verify_quote(quote, quote_size, coll, root, &p, 1750330571LL, &v, NULL) == OCC_OK);
    CHECK(occ_attest_verify_quote(quote, quote_size, coll, root, &p, 1750330570LL, &v, NULL) == OCC_ERR_ATTEST);
    CHECK(occ_attest_verify_quote(quote, quote_size, coll, root, &p, 1752919278LL, &v, NULL) == OCC_ERR_ATTEST);
}

static void test_wrong_root(void)
{
    /* a root that is not Intel's: the TCB signing cert (not self-signed) and
     * a freshly made self-signed P-256 certificate */
    X509 *certs[4];
    size_t n;
    uint8_t *pem = slurp(td("phala-dcap-qvl/extracted/tcb_signing_chain.pem"), &n);
    int k = occ_pem_chain(pem, n, certs, 4);
    CHECK(k == 2);
    occ_attest_verdict v;
    occ_attest_policy p = relaxed();
    CHECK(occ_attest_verify_quote(quote, quote_size, coll, certs[0], &p, T_OK, &v, NULL) == OCC_ERR_ATTEST);
    dump_verdict(&v);
    CHECK(occ_verdict_has_reason(&v, "PCK certificate chain does not verify"));
    CHECK(!v.accepted);

    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *self = X509_new();
    X509_set_version(self, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(self), 1);
    X509_NAME *nm = X509_get_subject_name(self);
    X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)"Intel SGX Root CA", -1, -1, 0);
    X509_set_issuer_name(self, nm);
    X509_gmtime_adj(X509_getm_notBefore(self), -86400L * 3650);
    X509_gmtime_adj(X509_getm_notAfter(self), 86400L * 3650);
    X509_set_pubkey(self, key);
    X509_sign(self, key, EVP_sha256());
    CHECK(occ_attest_verify_quote(quote, quote_size, coll, self, &p, T_OK, &v, NULL) == OCC_ERR_ATTEST);
    CHECK(occ_verdict_has_reason(&v, "PCK certificate chain does not verify"));
    CHECK(!v.accepted);
    X509_free(self);
    EVP_PKEY_free(key);
    for (int i = 0; i < k; i++)
        X509_free(certs[i]);
    free(pem);
}

static void test_identity_policy(void)
{
    occ_attest_verdict v;
    occ_attest_policy p = relaxed();
    CHECK(occ_hex_decode("33d8736db756ed4997e04ba358d27833188f1932ff7b1d156904d3f560452fbb", 64, p.mrenclave[0], 32) == OCC_OK);
    p.mrenclave_count = 1;
    CHECK(occ_hex_decode("815f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6", 64, p.mrsigner[0], 32) == OCC_OK);
    p.mrsigner_count = 1;
    p.has_isv_prod_id = 1;
    p.has_min_isv_svn = 1;
    CHECK(occ_attest_verify_quote(quote, quote_size, coll, root, &p, T_OK, &v, NULL) == OCC_OK);
    CHECK(v.warning_count == 0);
    p.mrenclave[0][0] ^= 1;
    CHECK(occ_attest_verify_quote(quote, quote_size, coll, root, &p, T_OK, &v, NULL) == OCC_ERR_ATTEST);
    CHECK(occ_verdict_has_reason(&v, "MRENCLAVE mismatch") && v.reason_count == 1 && v.verified);
    p.mrenclave[0][0] ^= 1;
    p.mrsigner[0][31] ^= 1;
    CHECK(occ_attest_verify_quote(quote, quote_size, coll, root, &p, T_OK, &v, NULL) == OCC_ERR_ATTEST);
    CHECK(occ_verdict_has_reason(&v, "MRSIGNER mismatch") && v.reason_count == 1);
    p.mrsigner[0][31] ^= 1;
    p.min_isv_svn = 1;
    CHECK(occ_attest_verify_quote(quote, quote_size, coll, root, &p, T_OK, &v, NULL) == OCC_ERR_ATTEST);
    CHECK(occ_verdict_has_reason(&v, "ISVSVN 0 is below"));
    p.min_isv_svn = 0;
    p.isv_prod_id = 3;
    CHECK(occ_attest_verify_quote(quote, quote_size, coll, root, &p, T_OK, &v, NULL) == OCC_ERR_ATTEST);
    CHECK(occ_verdict_has_reason(&v, "ISVPRODID mismatch"));
    p.isv_prod_id = 0;
    p.has_model_id = 1; /* REPORTDATA[32..63] is zero in this quote */
    CHECK(occ_attest_verify_quote(quote, quote_size, coll, root, &p, T_OK, &v, NULL) == OCC_OK);
    p.model_id[5] = 1;
    CHECK(occ_attest_verify_quote(quote, quote_size, coll, root, &p, T_OK, &v, NULL) == OCC_ERR_ATTEST);
    CHECK(occ_verdict_has_reason(&v, "model id mismatch"));
}

static void test_truncated(void)
{
    occ_attest_verdict v;
    occ_error e = {0};
    occ_status st = occ_attest_verify_quote(quote, 1000, coll, root, NULL, T_OK, &v, &e);
    CHECK(st == OCC_ERR_FORMAT && !v.accepted && !v.parsed);
    CHECK(occ_verdict_has_reason(&v, "quote parse error"));
    CHECK(occ_verdict_has_reason(&v, "signature_data_len 4164 exceeds"));
    /* every prefix fails to parse, never crashes */
    int bad = 0;
    occ_quote q;
    for (size_t n = 0; n < quote_size; n++)
        if (occ_quote_parse(quote, n, &q, NULL) == OCC_OK)
            bad++;
    CHECK(bad == 0);
    CHECK(occ_quote_parse(quote, quote_size, &q, NULL) == OCC_OK);
    CHECK(q.version == 3 && q.att_key_type == 2 && q.qe_svn == 10 && q.pce_svn == 15 && q.qe_auth_size == 32);
    CHECK(q.cert_type == 5 && q.cert_size == 3548 && q.report.flags == 5 && q.report.xfrm == 0xe7);
    CHECK(q.qe_report.isv_prod_id == 1 && q.qe_report.isv_svn == 10);
    /* one trailing byte is refused too */
    uint8_t *longer = malloc(quote_size + 1);
    memcpy(longer, quote, quote_size);
    longer[quote_size] = 0;
    CHECK(occ_quote_parse(longer, quote_size + 1, &q, NULL) == OCC_ERR_FORMAT);
    free(longer);
}

static void test_tdx(void)
{
    size_t n;
    uint8_t *tdx = slurp(td("phala-dcap-qvl/tdx_quote"), &n);
    occ_attest_collateral *tc = NULL;
    CHECK(occ_attest_collateral_load(td("phala-dcap-qvl/tdx_quote_collateral.json"), &tc, NULL) == OCC_OK);
    occ_attest_verdict v;
    occ_error e = {0};
    occ_status st = occ_attest_verify_quote(tdx, n, tc, root, NULL, 1750464000LL, &v, &e);
    CHECK(st == OCC_ERR_UNSUPPORTED && !v.accepted && !v.parsed);
    CHECK(occ_verdict_has_reason(&v, "not an SGX enclave quote: TEE type 0x81 = TDX"));
    occ_attest_collateral_free(tc);
    free(tdx);
}

static void test_occlum(void)
{
    size_t n;
    uint8_t *q = slurp(td("occlum-sgx-quote/quote.raw"), &n);
    occ_attest_verdict v;
    /* signatures, binding and chain pass; no collateral -> "collateral missing" */
    occ_status st = occ_attest_verify_quote(q, n, NULL, root, NULL, 1756684800LL /* 2025-09-01 */, &v, NULL);
    dump_verdict(&v);
    CHECK(st == OCC_ERR_ATTEST && v.verified && v.collateral_missing && !v.emulated);
    CHECK(occ_verdict_has_reason(&v, "collateral missing"));
    CHECK(!strcmp(v.fmspc, "30606a000000"));
    CHECK(v.isv_prod_id == 4000 && v.isv_svn == 5000 && (v.flags & OCC_SGX_FLAGS_KSS));
    /* the SGX collateral is for another FMSPC and CA: refused, never misapplied */
    occ_attest_policy p = relaxed();
    p.tcb_status_count = 8;
    st = occ_attest_verify_quote(q, n, coll, root, &p, T_OK, &v, NULL);
    dump_verdict(&v);
    CHECK(st == OCC_ERR_ATTEST && !v.verified);
    CHECK(occ_verdict_has_reason(&v, "FMSPC"));
    free(q);
}

static void test_collateral_parse(void)
{
    occ_attest_collateral *c = NULL;
    CHECK(occ_attest_collateral_parse("{}", 2, &c, NULL) == OCC_ERR_FORMAT && !c);
    CHECK(occ_attest_collateral_parse("[1]", 3, &c, NULL) == OCC_ERR_FORMAT);
    CHECK(occ_attest_collateral_parse("{", 1, &c, NULL) == OCC_ERR_FORMAT);
    size_t n;
    uint8_t *json = slurp(td("phala-dcap-qvl/sgx_quote_collateral.json"), &n);
    int bad = 0;
    for (size_t k = 0; k < n; k += 97)
        if (occ_attest_collateral_parse((char *)json, k, &c, NULL) == OCC_OK) {
            bad++;
            occ_attest_collateral_free(c);
        }
    CHECK(bad == 0);
    free(json);
}

static void test_pck_ext(void)
{
    X509 *certs[4];
    size_t n;
    uint8_t *pem = slurp(td("phala-dcap-qvl/extracted/sgx_quote_pck_chain.pem"), &n);
    int k = occ_pem_chain(pem, n, certs, 4);
    CHECK(k == 3);
    occ_pck_info info;
    CHECK(occ_pck_info_from_cert(certs[0], &info, NULL) == OCC_OK);
    static const uint8_t comps[16] = {11, 11, 2, 2, 255, 1, 0};
    CHECK(!memcmp(info.comps, comps, 16) && info.pcesvn == 13);
    CHECK(!memcmp(info.fmspc, "\x00\xa0\x67\x11\x00\x00", 6) && !memcmp(info.pceid, "\0\0", 2));
    occ_error e = {0};
    CHECK(occ_pck_info_from_cert(certs[1], &info, &e) == OCC_ERR_FORMAT);
    for (int i = 0; i < k; i++)
        X509_free(certs[i]);
    free(pem);
}

static void bench(void)
{
    enum { RUNS = 200 };
    double t[RUNS];
    occ_attest_policy p = relaxed();
    for (int i = 0; i < RUNS; i++) {
        struct timespec a, b;
        occ_attest_verdict v;
        clock_gettime(CLOCK_MONOTONIC, &a);
        occ_status st = occ_attest_verify_quote(quote, quote_size, coll, root, &p, T_OK, &v, NULL);
        clock_gettime(CLOCK_MONOTONIC, &b);
        if (st)
            CHECK(st == OCC_OK);
        t[i] = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
    }
    for (int i = 1; i < RUNS; i++) /* insertion sort */
        for (int j = i; j > 0 && t[j - 1] > t[j]; j--) {
            double x = t[j];
            t[j] = t[j - 1];
            t[j - 1] = x;
        }
    printf("verify genuine quote + collateral: median %.3f ms, p10 %.3f ms, p90 %.3f ms (%d runs)\n", t[RUNS / 2],
           t[RUNS / 10], t[RUNS * 9 / 10], RUNS);
}

int main(void)
{
    occ_error e = {0};
    quote = slurp(td("phala-dcap-qvl/sgx_quote"), &quote_size);
    if (!quote || occ_attest_collateral_load(td("phala-dcap-qvl/sgx_quote_collateral.json"), &coll, &e) ||
        occ_attest_root_load(td("phala-dcap-qvl/TrustedRootCA.der"), &root, &e)) {
        fprintf(stderr, "test data missing: %s\n", e.msg);
        return 1;
    }
    RUN(test_genuine);
    RUN(test_bitflips);
    RUN(test_tcb_info_tamper);
    RUN(test_times);
    RUN(test_wrong_root);
    RUN(test_identity_policy);
    RUN(test_truncated);
    RUN(test_tdx);
    RUN(test_occlum);
    RUN(test_collateral_parse);
    RUN(test_pck_ext);
    RUN(bench);
    occ_attest_collateral_free(coll);
    X509_free(root);
    free(quote);
    TEST_DONE();
}
