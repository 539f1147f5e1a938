/* The key broker in-process (src/keys, docs/keys.md): a TLS client presents
 * emulated RA-TLS certificates made here, so every kind of evidence can be
 * built: honest (the key, exactly), DEBUG attributes, expired, signed under
 * another quoting root, not binding the requested model id, another name
 * than the policy's, no certificate; a key file that is absent; and the
 * request and answer parsers. Every refusal is 403 {"error":"refused"} to
 * the client with its reason in the broker's log only. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "enclave/keyfetch.h"
#include "occ/keys.h"
#include "occ/quote.h"
#include "occ/ratls.h"
#include "test.h"

static char base[64] = "/tmp/occ-test-keys-XXXXXX";
static occ_broker *broker;
static FILE *logf;
static uint8_t key_a[32];
static uint8_t id_a[32], id_b[32];
static occ_emu_quoter *q1, *q2;

static void *run_broker(void *p)
{
    occ_error e = {0};
    (void)p;
    if (occ_broker_run(broker, &e))
        fprintf(stderr, "broker: %s\n", e.msg);
    return NULL;
}

/* An RA-TLS certificate binding (name, id) from quoter q with identity id. */
static X509 *make_cert(occ_emu_quoter *q, const char *name, const uint8_t id[32], uint64_t extra_flags,
                       int64_t nb, int64_t na, EVP_PKEY **key)
{
    occ_emu_provider prov = {q, {{0}, {0}, 0, 0, 0, 0}};
    occ_error e = {0};
    X509 *cert = NULL;
    if (occ_emu_identity_default(q1, &prov.identity, &e))
        return NULL;
    prov.identity.flags |= extra_flags;
    const char *names[1] = {name};
    if (occ_ratls_keygen(key, &e) ||
        occ_ratls_make_cert_models(*key, names, (const uint8_t(*)[32])id, 1, occ_emu_quote_provider, &prov, nb, na,
                                   &cert, &e)) {
        fprintf(stderr, "make_cert: %s\n", e.msg);
        return NULL;
    }
    return cert;
}

/* One request; returns the HTTP status (0: no answer) and the body. */
static int request(X509 *cert, EVP_PKEY *key, const char *path, uint8_t *body, size_t *body_size)
{
    *body_size = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)occ_broker_port(broker));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
        close(fd);
        return 0;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    if (cert) {
        SSL_CTX_use_certificate(ctx, cert);
        SSL_CTX_use_PrivateKey(ctx, key);
    }
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    int status = 0;
    if (SSL_connect(ssl) == 1) {
        char req[256];
        int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: k\r\n\r\n", path);
        SSL_write(ssl, req, n);
        uint8_t buf[2048];
        size_t have = 0;
        int r;
        while (have < sizeof buf && (r = SSL_read(ssl, buf + have, (int)(sizeof buf - have))) > 0)
            have += (size_t)r;
        int complete = 0;
        const uint8_t *b = NULL;
        occ_error e = {0};
        if (occ_keyresp_parse(buf, have, &complete, &status, &b, body_size, &e) == OCC_OK && complete && b)
            memcpy(body, b, *body_size);
        else if (!complete)
            status = 0;
    }
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
    ERR_clear_error();
    return status;
}

static char *log_text(void)
{
    static char buf[1 << 16];
    fflush(logf);
    long n = ftell(logf);
    rewind(logf);
    size_t got = fread(buf, 1, n > 0 && (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1, logf);
    buf[got] = 0;
    fseek(logf, 0, SEEK_END);
    return buf;
}

static const char *last_line(void)
{
    char *t = log_text();
    size_t n = strlen(t);
    if (n && t[n - 1] == '\n')
        t[--n] = 0;
    char *nl = strrchr(t, '\n');
    return nl ? nl + 1 : t;
}

static char path_a[128], path_b[128];

static void expect_refused(const char *what, X509 *cert, EVP_PKEY *key, const char *path, const char *reason)
{
    uint8_t body[64];
    size_t bs = 0;
    int st = request(cert, key, path, body, &bs);
    CHECK_MSG(st == 403 && bs == 19 && !memcmp(body, "{\"error\":\"refused\"}", 19), "%s: status %d", what, st);
    const char *l = last_line();
    CHECK_MSG(strstr(l, "refused: ") && strstr(l, reason), "%s: log line '%s' lacks '%s'", what, l, reason);
}

static void test_release_and_refusals(void)
{
    int64_t now = (int64_t)time(NULL);
    EVP_PKEY *k = NULL;
    uint8_t body[64];
    size_t bs = 0;

    /* honest: the key, exactly */
    X509 *good = make_cert(q1, "fmnist", id_a, 0, now - 60, now + 3600, &k);
    CHECK(good != NULL);
    CHECK(request(good, k, path_a, body, &bs) == 200 && bs == 32 && !memcmp(body, key_a, 32));
    CHECK(strstr(last_line(), "released to an attested enclave") != NULL);
    /* uppercase hex names the same id */
    char upper[128];
    snprintf(upper, sizeof upper, "%s", path_a);
    for (char *p = upper + 9; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 32);
    CHECK(request(good, k, upper, body, &bs) == 200 && bs == 32);
    /* the key file is absent */
    char kp[256], moved[256];
    char hex[65];
    occ_hex_encode(id_a, 32, hex);
    snprintf(kp, sizeof kp, "%s/keys/%s.key", base, hex);
    snprintf(moved, sizeof moved, "%s/keys/moved", base);
    CHECK(rename(kp, moved) == 0);
    expect_refused("absent key file", good, k, path_a, "no key for this model");
    CHECK(rename(moved, kp) == 0);
    /* the certificate binds A, the request names B */
    expect_refused("not bound", good, k, path_b, "does not bind model");
    /* no client certificate */
    expect_refused("no certificate", NULL, NULL, path_a, "no client certificate");
    X509_free(good);
    EVP_PKEY_free(k);
    k = NULL;

    /* DEBUG enclave */
    X509 *dbg = make_cert(q1, "fmnist", id_a, 0x2, now - 60, now + 3600, &k);
    CHECK(dbg != NULL);
    expect_refused("debug", dbg, k, path_a, "ebug");
    X509_free(dbg);
    EVP_PKEY_free(k);
    k = NULL;
    /* expired */
    X509 *old = make_cert(q1, "fmnist", id_a, 0, now - 3 * 86400, now - 2 * 86400, &k);
    CHECK(old != NULL);
    expect_refused("expired", old, k, path_a, "expired");
    X509_free(old);
    EVP_PKEY_free(k);
    k = NULL;
    /* another quoting root (forged from the broker's view) */
    X509 *forged = make_cert(q2, "fmnist", id_a, 0, now - 60, now + 3600, &k);
    CHECK(forged != NULL);
    expect_refused("other root", forged, k, path_a, "evidence refused");
    X509_free(forged);
    EVP_PKEY_free(k);
    k = NULL;
    /* bound under another name than the policy's */
    X509 *renamed = make_cert(q1, "other", id_a, 0, now - 60, now + 3600, &k);
    CHECK(renamed != NULL);
    expect_refused("other name", renamed, k, path_a, "does not allow model");
    /* malformed requests: 400, same body */
    uint8_t b2[64];
    size_t n2 = 0;
    CHECK(request(renamed, k, "/v1/keys/xyz", b2, &n2) == 400 && n2 == 19);
    CHECK(request(renamed, k, "/v2/models", b2, &n2) == 400);
    X509_free(renamed);
    EVP_PKEY_free(k);
    /* no log line carries key bytes */
    char keyhex[65];
    occ_hex_encode(key_a, 32, keyhex);
    keyhex[16] = 0;
    CHECK(strstr(log_text(), keyhex) == NULL);
    uint64_t rel = 0, ref = 0;
    occ_broker_counts(broker, &rel, &ref);
    CHECK_MSG(rel == 2 && ref == 9, "released %llu refused %llu", (unsigned long long)rel, (unsigned long long)ref);
}

static void test_parsers(void)
{
    uint8_t id[32];
    int c = 0;
    occ_error e = {0};
    const char *ok = "GET /v1/keys/00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff HTTP/1.1\r\n"
                     "Host: x\r\n\r\n";
    CHECK(occ_keyreq_parse((const uint8_t *)ok, strlen(ok), &c, id, &e) == OCC_OK && c && id[1] == 0x11 &&
          id[31] == 0xff);
    CHECK(occ_keyreq_parse((const uint8_t *)ok, 20, &c, id, &e) == OCC_OK && !c);
    const char *post = "POST /v1/keys/00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff HTTP/1.1\r\n"
                       "Content-Length: 2\r\n\r\nab";
    CHECK(occ_keyreq_parse((const uint8_t *)post, strlen(post), &c, id, &e) == OCC_ERR_FORMAT);
    const char *chunked = "GET /v1/keys/00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff HTTP/1.1\r\n"
                          "Transfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n";
    CHECK(occ_keyreq_parse((const uint8_t *)chunked, strlen(chunked), &c, id, &e) == OCC_ERR_FORMAT);
    const char *shortid = "GET /v1/keys/0011 HTTP/1.1\r\n\r\n";
    CHECK(occ_keyreq_parse((const uint8_t *)shortid, strlen(shortid), &c, id, &e) == OCC_ERR_FORMAT);
    CHECK(occ_keyreq_parse((const uint8_t *)"\x16\x03\x01garbage", 10, &c, id, &e) == OCC_ERR_FORMAT);
    static uint8_t big[OCC_KEYREQ_MAX + 10];
    memcpy(big, "GET /v1/keys/", 13);
    memset(big + 13, 'a', sizeof big - 13);
    CHECK(occ_keyreq_parse(big, sizeof big, &c, id, &e) == OCC_ERR_FORMAT);

    const char *r200 = "HTTP/1.1 200 OK\r\nContent-Length: 32\r\n\r\n0123456789abcdef0123456789abcdef";
    int st = 0;
    const uint8_t *b = NULL;
    size_t bs = 0;
    CHECK(occ_keyresp_parse((const uint8_t *)r200, strlen(r200), &c, &st, &b, &bs, &e) == OCC_OK && c && st == 200 &&
          bs == 32 && !memcmp(b, "0123", 4));
    CHECK(occ_keyresp_parse((const uint8_t *)r200, strlen(r200) - 1, &c, &st, &b, &bs, &e) == OCC_OK && !c);
    CHECK(occ_keyresp_parse((const uint8_t *)"SSH-2.0\r\n", 9, &c, &st, &b, &bs, &e) == OCC_ERR_FORMAT);
    static char huge[4096];
    int n = snprintf(huge, sizeof huge, "HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n");
    memset(huge + n, 'x', sizeof huge - (size_t)n);
    CHECK(occ_keyresp_parse((const uint8_t *)huge, sizeof huge, &c, &st, &b, &bs, &e) == OCC_ERR_FORMAT);
}

int main(void)
{
    occ_error e = {0};
    if (!mkdtemp(base))
        return 1;
    char d1[128], d2[128], kd[128], kp[256];
    snprintf(d1, sizeof d1, "%s/emu", base);
    snprintf(d2, sizeof d2, "%s/emu2", base);
    snprintf(kd, sizeof kd, "%s/keys", base);
    mkdir(d1, 0700);
    mkdir(d2, 0700);
    mkdir(kd, 0700);
    for (int i = 0; i < 32; i++) {
        id_a[i] = (uint8_t)(0xa0 + i);
        id_b[i] = (uint8_t)(0xb0 + i);
        key_a[i] = (uint8_t)(7 * i + 1);
    }
    char hex[65];
    occ_hex_encode(id_a, 32, hex);
    snprintf(path_a, sizeof path_a, "/v1/keys/%s", hex);
    snprintf(kp, sizeof kp, "%s/%s.key", kd, hex);
    FILE *f = fopen(kp, "wb");
    fwrite(key_a, 1, 32, f);
    fclose(f);
    occ_hex_encode(id_b, 32, hex);
    snprintf(path_b, sizeof path_b, "/v1/keys/%s", hex);

    X509 *root = NULL;
    if (occ_emu_quote_open(d1, &q1, &e) || occ_emu_quote_open(d2, &q2, &e) ||
        occ_attest_root_load(occ_emu_quote_root_path(q1), &root, &e)) {
        fprintf(stderr, "setup: %s\n", e.msg);
        return 1;
    }
    occ_attest_policy pol;
    occ_attest_policy_default(&pol);
    occ_emu_identity idt;
    if (occ_emu_identity_default(q1, &idt, &e))
        return 1;
    pol.mrenclave_count = 1;
    memcpy(pol.mrenclave[0], idt.mrenclave, 32);
    pol.allow_emulated = 1;
    pol.model_count = 1;
    strcpy(pol.model_names[0], "fmnist");
    memcpy(pol.model_ids[0], id_a, 32);

    EVP_PKEY *bkey = NULL;
    X509 *bcert = NULL;
    int64_t now = (int64_t)time(NULL);
    if (occ_ratls_keygen(&bkey, &e) ||
        occ_ratls_make_cert(bkey, NULL, occ_emu_quote_provider, &(occ_emu_provider){q1, idt}, now - 60, now + 3600,
                            &bcert, &e))
        return 1;
    logf = tmpfile();
    occ_broker_config cfg = {"127.0.0.1:0", kd, &pol, root, NULL, bcert, bkey, logf};
    CHECK(occ_broker_create(&cfg, &broker, &e) == OCC_OK);
    pthread_t th;
    pthread_create(&th, NULL, run_broker, NULL);

    RUN(test_release_and_refusals);
    RUN(test_parsers);

    occ_broker_stop(broker);
    pthread_join(th, NULL);
    occ_broker_free(broker);
    fclose(logf);
    X509_free(root);
    X509_free(bcert);
    EVP_PKEY_free(bkey);
    occ_emu_quote_close(q1);
    occ_emu_quote_close(q2);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", base);
    if (system(cmd))
        fprintf(stderr, "cannot remove %s\n", base);
    TEST_DONE();
}
