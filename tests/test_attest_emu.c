/* Emulated quoting round trip, RA-TLS certificates made "inside the
 * enclave", the Gramine provider on a fake /dev/attestation, and an RA-TLS
 * TLS 1.3 handshake through the verify callback. */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "attest_testutil.h"
#include "occ/crypto.h"
#include "occ/quote.h"
#include "occ/ratls.h"
#include "test.h"

static char dir[256], dir2[256];
static occ_emu_quoter *qt;
static X509 *emu_root, *intel_root;
static uint8_t model_id[32];

static void test_open(void)
{
    struct stat sb;
    CHECK(stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode) && (sb.st_mode & 0777) == 0700);
    char p[512];
    snprintf(p, sizeof p, "%s/root.pem", dir);
    CHECK(!strcmp(occ_emu_quote_root_path(qt), p));
    CHECK(stat(p, &sb) == 0);
    snprintf(p, sizeof p, "%s/root.key", dir);
    CHECK(stat(p, &sb) == 0 && (sb.st_mode & 077) == 0);
    /* reopening keeps the same root */
    occ_emu_quoter *again = NULL;
    CHECK(occ_emu_quote_open(dir, &again, NULL) == OCC_OK);
    X509 *r2 = NULL;
    CHECK(occ_attest_root_load(occ_emu_quote_root_path(again), &r2, NULL) == OCC_OK);
    CHECK(r2 && X509_cmp(r2, emu_root) == 0);
    X509_free(r2);
    occ_emu_quote_close(again);
    /* a folder others can read is refused */
    char loose[300];
    snprintf(loose, sizeof loose, "%s-loose", dir);
    mkdir(loose, 0755);
    chmod(loose, 0755);
    occ_error e = {0};
    CHECK(occ_emu_quote_open(loose, &again, &e) == OCC_ERR_INVALID);
    rmdir(loose);
    /* MRENCLAVE = SHA-256 of the running binary */
    uint8_t a[32], b[32];
    CHECK(occ_emu_mrenclave(a, NULL) == OCC_OK);
    CHECK(occ_emu_hash_file("/proc/self/exe", b, NULL) == OCC_OK && !memcmp(a, b, 32));
}

static void test_quote_roundtrip(void)
{
    occ_emu_identity id;
    CHECK(occ_emu_identity_default(qt, &id, NULL) == OCC_OK);
    uint8_t rd[64];
    memset(rd, 0xab, 32);
    memcpy(rd + 32, model_id, 32);
    uint8_t *q = NULL;
    size_t n = 0;
    occ_error e = {0};
    CHECK_MSG(occ_emu_quote_make(qt, &id, rd, &q, &n, &e) == OCC_OK, "%s", e.msg);
    occ_attest_policy p;
    occ_attest_policy_default(&p);
    memcpy(p.mrenclave[0], id.mrenclave, 32);
    p.mrenclave_count = 1;
    p.has_model_id = 1;
    memcpy(p.model_id, model_id, 32);
    occ_attest_verdict v;
    /* emulated quotes are refused unless the policy allows them: the
     * default is false, even with the emulated root given */
    CHECK(!p.allow_emulated);
    CHECK(occ_attest_verify_quote(q, n, NULL, emu_root, &p, OCC_ATTEST_NOW, &v, NULL) == OCC_ERR_ATTEST);
    CHECK(v.verified && !v.accepted && occ_verdict_has_reason(&v, "emulated quote refused by policy"));
    p.allow_emulated = 1;
    occ_status st = occ_attest_verify_quote(q, n, NULL, emu_root, &p, OCC_ATTEST_NOW, &v, &e);
    dump_verdict(&v);
    CHECK_MSG(st == OCC_OK, "%s", e.msg);
    CHECK(v.accepted && v.emulated && !v.debug && !strcmp(v.tcb_status, "Emulated"));
    CHECK(!memcmp(v.report_data, rd, 64));
    /* the verdict says loudly it is not hardware-backed */
    char *js = occ_verdict_json(&v);
    CHECK(js && strstr(js, "\"emulated\":\ttrue") && strstr(js, "\"hardware_backed\":\tfalse"));
    free(js);
    /* refused without the emulated root: Intel's root, or another emulated root */
    CHECK(occ_attest_verify_quote(q, n, NULL, intel_root, &p, OCC_ATTEST_NOW, &v, NULL) == OCC_ERR_ATTEST);
    CHECK(occ_verdict_has_reason(&v, "does not verify to the pinned root") && !v.emulated);
    occ_emu_quoter *other = NULL;
    X509 *other_root = NULL;
    CHECK(occ_emu_quote_open(dir2, &other, NULL) == OCC_OK);
    CHECK(occ_attest_root_load(occ_emu_quote_root_path(other), &other_root, NULL) == OCC_OK);
    CHECK(occ_attest_verify_quote(q, n, NULL, other_root, &p, OCC_ATTEST_NOW, &v, NULL) == OCC_ERR_ATTEST);
    X509_free(other_root);
    occ_emu_quote_close(other);
    /* a policy may refuse emulation outright */
    p.allow_emulated = 0;
    CHECK(occ_attest_verify_quote(q, n, NULL, emu_root, &p, OCC_ATTEST_NOW, &v, NULL) == OCC_ERR_ATTEST);
    CHECK(occ_verdict_has_reason(&v, "emulated quote refused"));
    p.allow_emulated = 1;
    /* any changed byte is refused */
    int accepted = 0;
    for (size_t i = 0; i < n; i++) {
        q[i] ^= 0x01;
        if (occ_attest_verify_quote(q, n, NULL, emu_root, &p, OCC_ATTEST_NOW, &v, NULL) == OCC_OK) {
            accepted++;
            fprintf(stderr, "byte %zu flipped: still accepted\n", i);
        }
        q[i] ^= 0x01;
    }
    CHECK(accepted == 0);
    /* a DEBUG emulated enclave is refused by default */
    free(q);
    id.flags |= OCC_SGX_FLAGS_DEBUG;
    CHECK(occ_emu_quote_make(qt, &id, rd, &q, &n, NULL) == OCC_OK);
    CHECK(occ_attest_verify_quote(q, n, NULL, emu_root, &p, OCC_ATTEST_NOW, &v, NULL) == OCC_ERR_ATTEST);
    CHECK(occ_verdict_has_reason(&v, "debug enclave refused"));
    free(q);
}

static void test_ratls_roundtrip(void)
{
    EVP_PKEY *key = NULL;
    CHECK(occ_ratls_keygen(&key, NULL) == OCC_OK);
    occ_emu_provider prov = {.quoter = qt};
    CHECK(occ_emu_identity_default(qt, &prov.identity, NULL) == OCC_OK);
    X509 *cert = NULL;
    occ_error e = {0};
    int64_t now = (int64_t)time(NULL);
    CHECK_MSG(occ_ratls_make_cert(key, model_id, occ_emu_quote_provider, &prov, now - 60, now + 86400, &cert, &e) ==
                  OCC_OK,
              "%s", e.msg);
    occ_attest_policy p;
    occ_attest_policy_default(&p);
    p.allow_emulated = 1;
    memcpy(p.mrenclave[0], prov.identity.mrenclave, 32);
    p.mrenclave_count = 1;
    p.has_model_id = 1;
    memcpy(p.model_id, model_id, 32);
    occ_attest_verdict v;
    CHECK_MSG(occ_ratls_verify_cert(cert, &p, emu_root, NULL, OCC_ATTEST_NOW, &v, &e) == OCC_OK, "%s", e.msg);
    dump_verdict(&v);
    CHECK(v.accepted && v.emulated && !strcmp(v.binding, "occlumency"));
    uint8_t rd[64];
    CHECK(occ_ratls_report_data(key, model_id, rd, NULL) == OCC_OK && !memcmp(rd, v.report_data, 64));
    /* both extensions are there; the legacy one alone also binds */
    occ_ratls_evidence ev;
    CHECK(occ_ratls_extract(cert, &ev, NULL) == OCC_OK && ev.tcg && ev.legacy && ev.has_pubkey_hash);
    /* the PEM round trip */
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, cert);
    X509 *back = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    CHECK(back && occ_ratls_verify_cert(back, &p, emu_root, NULL, OCC_ATTEST_NOW, &v, NULL) == OCC_OK);
    X509_free(back);
    /* another model id: refused */
    p.model_id[31] ^= 1;
    CHECK(occ_ratls_verify_cert(cert, &p, emu_root, NULL, OCC_ATTEST_NOW, &v, NULL) == OCC_ERR_ATTEST);
    CHECK(occ_verdict_has_reason(&v, "model id mismatch"));
    p.model_id[31] ^= 1;
    /* without the emulated root: refused */
    CHECK(occ_ratls_verify_cert(cert, &p, intel_root, NULL, OCC_ATTEST_NOW, &v, NULL) == OCC_ERR_ATTEST);
    /* another key in the same certificate: refused */
    X509 *swapped = X509_dup(cert);
    EVP_PKEY *k2 = NULL;
    CHECK(occ_ratls_keygen(&k2, NULL) == OCC_OK);
    X509_set_pubkey(swapped, k2);
    X509_sign(swapped, k2, EVP_sha256());
    CHECK(occ_ratls_verify_cert(swapped, &p, emu_root, NULL, OCC_ATTEST_NOW, &v, NULL) == OCC_ERR_ATTEST);
    CHECK(occ_verdict_has_reason(&v, "key binding mismatch"));
    X509_free(swapped);
    EVP_PKEY_free(k2);
    /* expired certificate: refused */
    CHECK(occ_ratls_verify_cert(cert, &p, emu_root, NULL, now + 2 * 86400, &v, NULL) == OCC_ERR_ATTEST);
    CHECK(occ_verdict_has_reason(&v, "certificate expired"));

    /* ---- TLS 1.3 handshake over memory BIOs with the verify callback ---- */
    for (int good = 1; good >= 0; good--) {
        SSL_CTX *sctx = SSL_CTX_new(TLS_server_method()), *cctx = SSL_CTX_new(TLS_client_method());
        SSL_CTX_set_min_proto_version(sctx, TLS1_3_VERSION);
        SSL_CTX_set_min_proto_version(cctx, TLS1_3_VERSION);
        CHECK(SSL_CTX_use_certificate(sctx, cert) == 1 && SSL_CTX_use_PrivateKey(sctx, key) == 1);
        SSL *s = SSL_new(sctx), *c = SSL_new(cctx);
        BIO *s2c = BIO_new(BIO_s_mem()), *c2s = BIO_new(BIO_s_mem());
        BIO_up_ref(s2c);
        BIO_up_ref(c2s);
        SSL_set_bio(s, c2s, s2c);
        SSL_set_bio(c, s2c, c2s);
        occ_attest_policy cp = p;
        if (!good)
            cp.mrenclave[0][0] ^= 1;
        occ_ratls_verify_ctx vctx = {.policy = &cp, .root = emu_root, .at = OCC_ATTEST_NOW};
        CHECK(occ_ratls_ssl_attach(c, &vctx) == OCC_OK);
        SSL_set_verify(c, SSL_VERIFY_PEER, occ_ratls_ssl_verify_cb);
        SSL_set_accept_state(s);
        SSL_set_connect_state(c);
        int cr = 0, sr = 0;
        for (int i = 0; i < 20; i++) {
            cr = SSL_do_handshake(c);
            sr = SSL_do_handshake(s);
            if ((cr == 1 && sr == 1) || (cr <= 0 && SSL_get_error(c, cr) == SSL_ERROR_SSL))
                break;
        }
        if (good) {
            CHECK(cr == 1 && vctx.done && vctx.verdict.accepted && vctx.verdict.emulated);
            CHECK(SSL_get_verify_result(c) == X509_V_OK);
        } else {
            CHECK(cr != 1 && vctx.done && !vctx.verdict.accepted);
            CHECK(occ_verdict_has_reason(&vctx.verdict, "MRENCLAVE mismatch"));
        }
        ERR_clear_error();
        SSL_free(s);
        SSL_free(c); /* each SSL owned one reference of each BIO */
        SSL_CTX_free(sctx);
        SSL_CTX_free(cctx);
    }
    X509_free(cert);
    EVP_PKEY_free(key);
}

/* Two models under two names: the certificate binds the (name, id) pairs
 * in REPORTDATA[32..63] and carries the list; a policy's "models" is
 * checked per name, so two packs served under swapped names are refused. */
static void test_models_binding(void)
{
    uint8_t ida[32], idb[32], bind[32], bind2[32];
    memset(ida, 0xaa, 32);
    memset(idb, 0xbb, 32);
    const char *names[2] = {"beta", "alpha"}; /* any order in; sorted in the certificate */
    uint8_t idv[2][32];
    memcpy(idv[0], idb, 32); /* beta -> b */
    memcpy(idv[1], ida, 32); /* alpha -> a */
    const uint8_t(*ids)[32] = (const uint8_t(*)[32])idv;
    occ_error e = {0};
    /* the binding: the id alone for one model; order-independent; names count */
    CHECK(occ_models_binding(names + 1, ids + 1, 1, bind, NULL) == OCC_OK && !memcmp(bind, ida, 32));
    CHECK(occ_models_binding(names, ids, 2, bind, NULL) == OCC_OK);
    const char *rev[2] = {"alpha", "beta"};
    uint8_t revids[2][32];
    memcpy(revids[0], ida, 32);
    memcpy(revids[1], idb, 32);
    CHECK(occ_models_binding(rev, (const uint8_t(*)[32])revids, 2, bind2, NULL) == OCC_OK && !memcmp(bind, bind2, 32));
    memcpy(revids[0], idb, 32); /* alpha -> b, beta -> a: swapped names */
    memcpy(revids[1], ida, 32);
    CHECK(occ_models_binding(rev, (const uint8_t(*)[32])revids, 2, bind2, NULL) == OCC_OK && memcmp(bind, bind2, 32));
    /* the documented formula, recomputed here */
    {
        uint8_t buf[256], h[32];
        size_t k = 0;
        memcpy(buf, "occlumency-models-v1", 21); /* with the NUL */
        k = 21;
        buf[k++] = 0, buf[k++] = 0, buf[k++] = 0, buf[k++] = 2;
        buf[k++] = 0, buf[k++] = 0, buf[k++] = 0, buf[k++] = 5;
        memcpy(buf + k, "alpha", 5), k += 5;
        memcpy(buf + k, ida, 32), k += 32;
        buf[k++] = 0, buf[k++] = 0, buf[k++] = 0, buf[k++] = 4;
        memcpy(buf + k, "beta", 4), k += 4;
        memcpy(buf + k, idb, 32), k += 32;
        CHECK(occ_sha256(buf, k, h) == OCC_OK && !memcmp(h, bind, 32));
    }
    /* names that cannot be bound */
    const char *badn[] = {"", "a b", "a/b", "a\"b", "caf\xc3\xa9", "x?y"};
    for (size_t i = 0; i < sizeof badn / sizeof *badn; i++)
        CHECK(occ_models_binding(&badn[i], ids, 1, bind2, NULL) == OCC_ERR_INVALID);
    char longn[130];
    memset(longn, 'n', 129);
    longn[129] = 0;
    const char *ln = longn;
    CHECK(occ_models_binding(&ln, ids, 1, bind2, NULL) == OCC_ERR_INVALID);
    longn[128] = 0;
    CHECK(occ_models_binding(&ln, ids, 1, bind2, NULL) == OCC_OK);
    const char *dup[2] = {"same", "same"};
    CHECK(occ_models_binding(dup, ids, 2, bind2, &e) == OCC_ERR_INVALID && strstr(e.msg, "twice"));

    /* the certificate */
    EVP_PKEY *key = NULL;
    CHECK(occ_ratls_keygen(&key, NULL) == OCC_OK);
    occ_emu_provider prov = {.quoter = qt};
    CHECK(occ_emu_identity_default(qt, &prov.identity, NULL) == OCC_OK);
    X509 *cert = NULL;
    int64_t now = (int64_t)time(NULL);
    CHECK_MSG(occ_ratls_make_cert_models(key, names, ids, 2, occ_emu_quote_provider, &prov, now - 60, now + 86400,
                                         &cert, &e) == OCC_OK,
              "%s", e.msg);
    occ_ratls_evidence ev;
    CHECK(occ_ratls_extract(cert, &ev, NULL) == OCC_OK && ev.has_models && ev.model_count == 2);
    CHECK(!strcmp(ev.model_names[0], "alpha") && !memcmp(ev.model_ids[0], ida, 32));
    CHECK(!strcmp(ev.model_names[1], "beta") && !memcmp(ev.model_ids[1], idb, 32));
    occ_attest_policy p;
    occ_attest_policy_default(&p);
    p.allow_emulated = 1;
    memcpy(p.mrenclave[0], prov.identity.mrenclave, 32);
    p.mrenclave_count = 1;
    p.model_count = 2;
    snprintf(p.model_names[0], sizeof p.model_names[0], "alpha");
    memcpy(p.model_ids[0], ida, 32);
    snprintf(p.model_names[1], sizeof p.model_names[1], "beta");
    memcpy(p.model_ids[1], idb, 32);
    occ_attest_verdict v;
    CHECK_MSG(occ_ratls_verify_cert(cert, &p, emu_root, NULL, OCC_ATTEST_NOW, &v, &e) == OCC_OK, "%s", e.msg);
    CHECK(v.accepted && v.models_bound && v.model_count == 2 && !memcmp(v.report_data + 32, bind, 32));
    CHECK(occ_attest_policy_check_model(&p, &v, "alpha", NULL) == OCC_OK);
    CHECK(occ_attest_policy_check_model(&p, &v, "beta", NULL) == OCC_OK);
    CHECK(occ_attest_policy_check_model(&p, &v, "gamma", &e) == OCC_ERR_ATTEST && strstr(e.msg, "no entry"));
    char *js = occ_verdict_json(&v);
    CHECK(js && strstr(js, "\"alpha\":\t\"aaaa") && strstr(js, "\"beta\":\t\"bbbb"));
    free(js);
    /* swapped names: refused, for every entry and for the name asked */
    memcpy(p.model_ids[0], idb, 32);
    memcpy(p.model_ids[1], ida, 32);
    CHECK(occ_ratls_verify_cert(cert, &p, emu_root, NULL, OCC_ATTEST_NOW, &v, NULL) == OCC_ERR_ATTEST);
    CHECK(occ_verdict_has_reason(&v, "model 'alpha' is served with model id aaaaaaaaaaaaaaaa..., the policy expects bbbbbbbbbbbbbbbb"));
    CHECK(occ_verdict_has_reason(&v, "model 'beta' is served with model id bbbbbbbbbbbbbbbb..., the policy expects aaaaaaaaaaaaaaaa"));
    snprintf(p.use_model, sizeof p.use_model, "beta");
    CHECK(occ_ratls_verify_cert(cert, &p, emu_root, NULL, OCC_ATTEST_NOW, &v, NULL) == OCC_ERR_ATTEST);
    CHECK(occ_verdict_has_reason(&v, "model 'beta'") && !occ_verdict_has_reason(&v, "model 'alpha'"));
    CHECK(occ_attest_policy_check_model(&p, &v, "beta", NULL) == OCC_ERR_ATTEST);
    /* only the entry of the name asked counts; a name the policy lacks is refused */
    p.model_count = 1;
    memcpy(p.model_ids[0], ida, 32); /* alpha -> a, right */
    snprintf(p.use_model, sizeof p.use_model, "alpha");
    CHECK(occ_ratls_verify_cert(cert, &p, emu_root, NULL, OCC_ATTEST_NOW, &v, NULL) == OCC_OK);
    CHECK(occ_attest_policy_check_model(&p, &v, "beta", &e) == OCC_ERR_ATTEST && strstr(e.msg, "no entry for model 'beta'"));
    snprintf(p.use_model, sizeof p.use_model, "beta");
    CHECK(occ_ratls_verify_cert(cert, &p, emu_root, NULL, OCC_ATTEST_NOW, &v, NULL) == OCC_ERR_ATTEST);
    CHECK(occ_verdict_has_reason(&v, "no entry for model 'beta'"));
    /* a name the server does not serve */
    snprintf(p.model_names[0], sizeof p.model_names[0], "gamma");
    snprintf(p.use_model, sizeof p.use_model, "gamma");
    CHECK(occ_ratls_verify_cert(cert, &p, emu_root, NULL, OCC_ATTEST_NOW, &v, NULL) == OCC_ERR_ATTEST);
    CHECK(occ_verdict_has_reason(&v, "not served by this enclave (it serves: alpha, beta)"));
    /* model_id keeps meaning REPORTDATA[32..63]: the binding of the pairs */
    occ_attest_policy q;
    occ_attest_policy_default(&q);
    q.allow_emulated = 1;
    q.has_model_id = 1;
    memcpy(q.model_id, bind, 32);
    CHECK(occ_ratls_verify_cert(cert, &q, emu_root, NULL, OCC_ATTEST_NOW, &v, NULL) == OCC_OK);

    /* a list that does not hash to REPORTDATA[32..63] (the quote binds the
     * honest one; the evidence is rewritten and re-signed with the key) */
    {
        uint8_t swapped[2][32], spki[32], *evb = NULL;
        size_t evn = 0;
        memcpy(swapped[0], ida, 32); /* beta -> a, alpha -> b */
        memcpy(swapped[1], idb, 32);
        CHECK(occ_ratls_spki_sha256(key, spki, NULL) == OCC_OK);
        CHECK(occ_ratls_tcg_evidence_models(ev.quote, ev.quote_size, spki, names, (const uint8_t(*)[32])swapped, 2,
                                            &evb, &evn, NULL) == OCC_OK);
        X509 *forged = X509_dup(cert);
        ASN1_OBJECT *tobj = OBJ_txt2obj(OCC_RATLS_TCG_OID, 1);
        int idx = X509_get_ext_by_OBJ(forged, tobj, -1);
        CHECK(idx >= 0);
        ASN1_OCTET_STRING *os = X509_EXTENSION_get_data(X509_get_ext(forged, idx));
        CHECK(ASN1_OCTET_STRING_set(os, evb, (int)evn) == 1);
        CHECK(X509_sign(forged, key, EVP_sha256()) > 0); /* re-encodes the modified certificate */
        occ_ratls_evidence fev;
        CHECK(occ_ratls_extract(forged, &fev, NULL) == OCC_OK && fev.has_models &&
              !memcmp(fev.model_ids[0], idb, 32));
        snprintf(p.model_names[0], sizeof p.model_names[0], "alpha");
        memcpy(p.model_ids[0], idb, 32);
        snprintf(p.use_model, sizeof p.use_model, "alpha");
        CHECK(occ_ratls_verify_cert(forged, &p, emu_root, NULL, OCC_ATTEST_NOW, &v, NULL) == OCC_ERR_ATTEST);
        CHECK(occ_verdict_has_reason(&v, "model list binding mismatch") && !v.models_bound && !v.verified);
        ASN1_OBJECT_free(tobj);
        X509_free(forged);
        free(evb);
    }
    /* a bare quote carries no list: a "models" policy cannot be satisfied */
    {
        uint8_t rd[64], *qq = NULL;
        size_t qn = 0;
        CHECK(occ_ratls_report_data(key, bind, rd, NULL) == OCC_OK);
        CHECK(occ_emu_quote_make(qt, &prov.identity, rd, &qq, &qn, NULL) == OCC_OK);
        memcpy(p.model_ids[0], ida, 32);
        CHECK(occ_attest_verify_quote(qq, qn, NULL, emu_root, &p, OCC_ATTEST_NOW, &v, NULL) == OCC_ERR_ATTEST);
        CHECK(occ_verdict_has_reason(&v, "does not carry"));
        free(qq);
    }
    X509_free(cert);
    EVP_PKEY_free(key);
}

static void test_gramine_fake(void)
{
    /* a fake /dev/attestation: quote is pre-staged (Gramine would generate
     * it from user_report_data) */
    char base[300], p[400];
    snprintf(base, sizeof base, "%s-gramine", dir);
    mkdir(base, 0700);
    size_t n;
    uint8_t *real = slurp(td("phala-dcap-qvl/sgx_quote"), &n);
    snprintf(p, sizeof p, "%s/quote", base);
    FILE *f = fopen(p, "wb");
    fwrite(real, 1, n, f);
    fclose(f);
    snprintf(p, sizeof p, "%s/user_report_data", base);
    f = fopen(p, "wb");
    fclose(f);
    snprintf(p, sizeof p, "%s/attestation_type", base);
    f = fopen(p, "wb");
    fputs("dcap\n", f);
    fclose(f);
    uint8_t rd[64], *q = NULL;
    for (int i = 0; i < 64; i++)
        rd[i] = (uint8_t)i;
    size_t qn = 0;
    occ_error e = {0};
    CHECK_MSG(occ_gramine_quote(base, rd, &q, &qn, &e) == OCC_OK, "%s", e.msg);
    CHECK(qn == n && !memcmp(q, real, n));
    free(q);
    snprintf(p, sizeof p, "%s/user_report_data", base);
    size_t rn;
    uint8_t *written = slurp(p, &rn);
    CHECK(rn == 64 && !memcmp(written, rd, 64));
    free(written);
    /* epid: refused */
    snprintf(p, sizeof p, "%s/attestation_type", base);
    f = fopen(p, "wb");
    fputs("epid", f);
    fclose(f);
    CHECK(occ_gramine_quote(base, rd, &q, &qn, &e) == OCC_ERR_UNSUPPORTED);
    /* missing base: a clear I/O error */
    CHECK(occ_gramine_quote("/nonexistent/attestation", rd, &q, &qn, &e) == OCC_ERR_IO);
    CHECK(strstr(e.msg, "user_report_data") != NULL);
    free(real);
}

int main(void)
{
    const char *tmp = getenv("TMPDIR");
    char base[200];
    snprintf(base, sizeof base, "%s/occ-attest-emu-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(base))
        return 1;
    snprintf(dir, sizeof dir, "%s/emu", base);
    snprintf(dir2, sizeof dir2, "%s/emu2", base);
    occ_error e = {0};
    if (occ_emu_quote_open(dir, &qt, &e) || occ_attest_root_load(occ_emu_quote_root_path(qt), &emu_root, &e) ||
        occ_attest_root_load(td("phala-dcap-qvl/TrustedRootCA.der"), &intel_root, &e)) {
        fprintf(stderr, "setup: %s\n", e.msg);
        return 1;
    }
    for (int i = 0; i < 32; i++)
        model_id[i] = (uint8_t)(0x40 + i);
    RUN(test_open);
    RUN(test_quote_roundtrip);
    RUN(test_ratls_roundtrip);
    RUN(test_models_binding);
    RUN(test_gramine_fake);
    occ_emu_quote_close(qt);
    X509_free(emu_root);
    X509_free(intel_root);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup failed\n");
    TEST_DONE();
}
