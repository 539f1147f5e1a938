/* The enclave's key-broker client (docs/keys.md). Runs once, in
 * occ_enclave_create, before any engine is made: TLS 1.3 over memory BIOs,
 * the enclave's RA-TLS certificate as client certificate (the broker checks
 * its quote against the owner's policy), the broker's certificate checked
 * against the pin the enclave was given (when given), then
 * GET /v1/keys/<model id hex>; the 32-byte answer stays in enclave memory. */
#include "enclave/keyfetch.h"

#include <stdio.h>
#include <string.h>

#include <http_parser.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#define RESP_MAX 4096
#define BODY_MAX 1024

typedef struct resp_state {
    int complete;
    const uint8_t *body;
    size_t body_size;
    int body_bad;
} resp_state;

static int on_body(http_parser *p, const char *at, size_t len)
{
    resp_state *r = p->data;
    if (r->body && (const uint8_t *)at != r->body + r->body_size) {
        r->body_bad = 1; /* chunked pieces: not contiguous, not ours */
        return 1;
    }
    if (!r->body)
        r->body = (const uint8_t *)at;
    if (len > BODY_MAX - r->body_size) {
        r->body_bad = 1;
        return 1;
    }
    r->body_size += len;
    return 0;
}

static int on_complete(http_parser *p)
{
    resp_state *r = p->data;
    r->complete = 1;
    return 1; /* stop: one response */
}

occ_status occ_keyresp_parse(const uint8_t *buf, size_t size, int *complete, int *status, const uint8_t **body,
                             size_t *body_size, occ_error *e)
{
    *complete = 0;
    *status = 0;
    *body = NULL;
    *body_size = 0;
    http_parser p;
    http_parser_settings s;
    resp_state r = {0};
    http_parser_init(&p, HTTP_RESPONSE);
    http_parser_settings_init(&s);
    s.on_body = on_body;
    s.on_message_complete = on_complete;
    p.data = &r;
    http_parser_execute(&p, &s, (const char *)buf, size);
    if (r.body_bad)
        return occ_fail(e, OCC_ERR_FORMAT, "the key server's answer has a body over %d bytes or in pieces", BODY_MAX);
    if (!r.complete) {
        if (HTTP_PARSER_ERRNO(&p) != HPE_OK)
            return occ_fail(e, OCC_ERR_FORMAT, "the key server's answer is not HTTP/1.1: %s",
                            http_errno_description(HTTP_PARSER_ERRNO(&p)));
        return OCC_OK; /* more to come */
    }
    *complete = 1;
    *status = (int)p.status_code;
    *body = r.body;
    *body_size = r.body_size;
    return OCC_OK;
}

typedef struct tls_io {
    const occ_ocalls *oc;
    uint64_t h;
    SSL *ssl;
    BIO *in, *out; /* network -> SSL, SSL -> network */
} tls_io;

static occ_status flush_out(tls_io *t, occ_error *e)
{
    uint8_t buf[4096];
    int n;
    while ((n = BIO_read(t->out, buf, sizeof buf)) > 0) {
        occ_status st = t->oc->key_send(t->oc->host, t->h, buf, (size_t)n, e);
        if (st)
            return st;
    }
    return OCC_OK;
}

static occ_status fill_in(tls_io *t, occ_error *e)
{
    uint8_t buf[4096];
    size_t got = 0;
    occ_status st = t->oc->key_recv(t->oc->host, t->h, buf, sizeof buf, &got, e);
    if (st)
        return st;
    size_t n = got; /* copied from the host once, then checked */
    if (n > sizeof buf)
        return occ_fail(e, OCC_ERR_IO, "the host returned more key server bytes than asked for");
    if (!n)
        return occ_fail(e, OCC_ERR_IO, "the key server closed the connection");
    if (BIO_write(t->in, buf, (int)n) != (int)n)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    return OCC_OK;
}

/* Drives one SSL call that may need the network: run op until it succeeds
 * (returns > 0), the peer closes cleanly (0 from SSL_read) or fails. */
static occ_status drive(tls_io *t, int (*op)(SSL *, void *, int), void *arg, int argn, int *res, occ_error *e)
{
    for (;;) {
        int r = op(t->ssl, arg, argn);
        occ_status st = flush_out(t, e);
        if (st)
            return st;
        if (r > 0) {
            *res = r;
            return OCC_OK;
        }
        int err = SSL_get_error(t->ssl, r);
        if (err == SSL_ERROR_ZERO_RETURN) {
            *res = 0;
            return OCC_OK;
        }
        if (err != SSL_ERROR_WANT_READ) {
            long vr = SSL_get_verify_result(t->ssl);
            if (vr != X509_V_OK)
                return occ_fail(e, OCC_ERR_ATTEST, "the key server's certificate is not the pinned one (%s)",
                                X509_verify_cert_error_string(vr));
            unsigned long ee = ERR_peek_last_error();
            char why[160];
            ERR_error_string_n(ee, why, sizeof why);
            return occ_fail(e, OCC_ERR_IO, "TLS with the key server failed: %s", ee ? why : "connection error");
        }
        if ((st = fill_in(t, e)))
            return st;
    }
}

static int op_connect(SSL *s, void *a, int n)
{
    (void)a;
    (void)n;
    return SSL_connect(s);
}
static int op_write(SSL *s, void *a, int n)
{
    return SSL_write(s, a, n);
}
static int op_read(SSL *s, void *a, int n)
{
    return SSL_read(s, a, n);
}

static occ_status pin_store(SSL_CTX *ctx, const uint8_t *pem, size_t size, occ_error *e)
{
    BIO *b = BIO_new_mem_buf(pem, (int)size);
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    int n = 0;
    if (!b || !store)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    X509 *x;
    while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
        if (X509_STORE_add_cert(store, x) == 1)
            n++;
        X509_free(x);
    }
    BIO_free(b);
    ERR_clear_error();
    if (!n)
        return occ_fail(e, OCC_ERR_FORMAT, "--key-server-ca holds no PEM certificate");
    /* the pinned certificate is the trust anchor itself (self-signed or not) */
    X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    return OCC_OK;
}

occ_status occ_keyfetch(const occ_ocalls *oc, const occ_keyfetch_cfg *cfg, const uint8_t id[32], uint8_t key[32],
                        occ_error *e)
{
    memset(key, 0, 32);
    if (!oc || !oc->key_connect || !oc->key_send || !oc->key_recv || !oc->key_close)
        return occ_fail(e, OCC_ERR_INVALID, "this host provides no key server connection");
    char hex[65];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", id[i]);
    occ_status st = OCC_OK;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    tls_io t = {oc, 0, NULL, NULL, NULL};
    int connected = 0;
    uint8_t *resp = NULL;
    if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) || SSL_CTX_use_certificate(ctx, cfg->cert) != 1 ||
        SSL_CTX_use_PrivateKey(ctx, cfg->key) != 1) {
        st = occ_fail(e, OCC_ERR_INTERNAL, "TLS client setup failed");
        goto done;
    }
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (cfg->ca_pem) {
        if ((st = pin_store(ctx, cfg->ca_pem, cfg->ca_size, e)))
            goto done;
    } else {
        /* unpinned (docs/keys.md): nothing secret is sent, and a key is used
         * only when the attested manifest's key check accepts it */
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    t.ssl = SSL_new(ctx);
    t.in = BIO_new(BIO_s_mem());
    t.out = BIO_new(BIO_s_mem());
    if (!t.ssl || !t.in || !t.out) {
        BIO_free(t.in);
        BIO_free(t.out);
        t.in = t.out = NULL;
        st = occ_fail(e, OCC_ERR_NOMEM, "out of memory");
        goto done;
    }
    SSL_set_bio(t.ssl, t.in, t.out);
    if ((st = oc->key_connect(oc->host, cfg->target, &t.h, e)))
        goto done;
    connected = 1;
    int r = 0;
    if ((st = drive(&t, op_connect, NULL, 0, &r, e)))
        goto done;
    char req[200];
    int rl = snprintf(req, sizeof req, "GET /v1/keys/%s HTTP/1.1\r\nHost: occ-keys\r\nConnection: close\r\n\r\n", hex);
    if ((st = drive(&t, op_write, req, rl, &r, e)))
        goto done;
    resp = OPENSSL_malloc(RESP_MAX);
    if (!resp) {
        st = occ_fail(e, OCC_ERR_NOMEM, "out of memory");
        goto done;
    }
    size_t have = 0;
    int complete = 0, status = 0;
    const uint8_t *body = NULL;
    size_t body_size = 0;
    while (!complete) {
        if (have == RESP_MAX) {
            st = occ_fail(e, OCC_ERR_FORMAT, "the key server's answer is over %d bytes", RESP_MAX);
            goto done;
        }
        if ((st = drive(&t, op_read, resp + have, (int)(RESP_MAX - have), &r, e)))
            goto done;
        if (r == 0) {
            st = occ_fail(e, OCC_ERR_FORMAT, "the key server closed the connection before a whole answer");
            goto done;
        }
        have += (size_t)r;
        if ((st = occ_keyresp_parse(resp, have, &complete, &status, &body, &body_size, e)))
            goto done;
    }
    if (status != 200) {
        st = occ_fail(e, OCC_ERR_KEY, "the key server refused the key of model %s (HTTP %d; its log says why)", hex,
                      status);
        goto done;
    }
    if (body_size != 32) {
        st = occ_fail(e, OCC_ERR_FORMAT, "the key server answered %zu bytes for model %s, not a 32-byte key",
                      body_size, hex);
        goto done;
    }
    memcpy(key, body, 32);
done:
    if (st)
        OPENSSL_cleanse(key, 32);
    if (resp) {
        OPENSSL_cleanse(resp, RESP_MAX);
        OPENSSL_free(resp);
    }
    if (connected)
        oc->key_close(oc->host, t.h);
    SSL_free(t.ssl); /* frees the BIOs; TLS secrets are cleared by OpenSSL */
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return st;
}

static const char SEAL_AAD[] = "occ-sealed-model-key-v1";

static int gcm(int enc, const uint8_t k[32], const uint8_t nonce[12], const uint8_t id[32], const uint8_t *in,
               uint8_t *out, uint8_t tag[16])
{
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    int n = 0, ok = x && EVP_CipherInit_ex(x, EVP_aes_256_gcm(), NULL, k, nonce, enc) == 1 &&
                    EVP_CipherUpdate(x, NULL, &n, (const uint8_t *)SEAL_AAD, (int)sizeof SEAL_AAD - 1) == 1 &&
                    EVP_CipherUpdate(x, NULL, &n, id, 32) == 1 && EVP_CipherUpdate(x, out, &n, in, 32) == 1 &&
                    (enc || EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_SET_TAG, 16, tag) == 1) &&
                    EVP_CipherFinal_ex(x, out + n, &n) == 1 &&
                    (!enc || EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_GET_TAG, 16, tag) == 1);
    EVP_CIPHER_CTX_free(x);
    return ok;
}

occ_status occ_key_seal(const uint8_t seal_key[32], const uint8_t id[32], const uint8_t key[32],
                        uint8_t blob[OCC_SEALED_KEY_SIZE], occ_error *e)
{
    if (RAND_bytes(blob, 12) != 1 || !gcm(1, seal_key, blob, id, key, blob + 12, blob + 44)) {
        OPENSSL_cleanse(blob, OCC_SEALED_KEY_SIZE);
        return occ_fail(e, OCC_ERR_INTERNAL, "sealing the key failed");
    }
    return OCC_OK;
}

occ_status occ_key_unseal(const uint8_t seal_key[32], const uint8_t id[32], const uint8_t *blob, size_t size,
                          uint8_t key[32], occ_error *e)
{
    uint8_t tag[16];
    if (size != OCC_SEALED_KEY_SIZE)
        return occ_fail(e, OCC_ERR_FORMAT, "a sealed key is %d bytes, got %zu", OCC_SEALED_KEY_SIZE, size);
    memcpy(tag, blob + 44, 16);
    if (!gcm(0, seal_key, blob, id, blob + 12, key, tag)) {
        OPENSSL_cleanse(key, 32);
        ERR_clear_error();
        return occ_fail(e, OCC_ERR_INTEGRITY, "the sealed key does not open for this enclave and model");
    }
    return OCC_OK;
}
