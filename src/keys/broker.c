/* occ keys serve: the model owner's key broker (docs/keys.md).
 *
 * A TLS 1.3 server that asks every client for a certificate, accepts any
 * at the TLS layer and then verifies it as RA-TLS evidence against the
 * owner's policy and root (occ_ratls_verify_cert); TLS 1.3's
 * CertificateVerify proves the client holds the key the quote binds. A
 * key is released only for the model id the certificate binds
 * (occ_keys_authorize) and only when DIR/<id>.key exists. Every refusal is
 * "403 {"error":"refused"}" (400 for a malformed request) to the client and
 * one line with the precise reason in the broker's log. One thread per
 * connection (at most 64), 10 s socket timeouts: a slow or malformed client
 * delays only itself. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "occ/keys.h"
#include "occ/ratls.h"

#define MAX_ACTIVE 64

struct occ_broker {
    occ_broker_config cfg;
    occ_attest_policy vpolicy; /* the policy minus "models": checked per request instead */
    SSL_CTX *ctx;
    int fd;
    unsigned port;
    volatile sig_atomic_t stop;
    _Atomic int active;
    _Atomic uint64_t released, refused;
    pthread_mutex_t log_mu;
};

typedef struct job {
    occ_broker *b;
    int fd;
    char peer[64];
} job;

static int accept_any(int ok, X509_STORE_CTX *store)
{
    (void)ok;
    (void)store;
    return 1; /* the certificate is judged as RA-TLS evidence after the handshake */
}

static void logline(occ_broker *b, const char *peer, const uint8_t *id, const char *what)
{
    char hex[65] = "-";
    if (id)
        occ_hex_encode(id, 32, hex);
    pthread_mutex_lock(&b->log_mu);
    fprintf(b->cfg.log, "occ keys: %s model %s: %s\n", peer, hex, what);
    fflush(b->cfg.log);
    pthread_mutex_unlock(&b->log_mu);
}

static void answer(SSL *ssl, int code, const void *body, size_t size, const char *ctype)
{
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", code,
                     code == 200 ? "OK" : code == 400 ? "Bad Request" : "Forbidden", ctype, size);
    unsigned char buf[320];
    memcpy(buf, head, (size_t)n);
    memcpy(buf + n, body, size);
    SSL_write(ssl, buf, n + (int)size);
    OPENSSL_cleanse(buf, sizeof buf);
}

static void refuse(occ_broker *b, SSL *ssl, const char *peer, const uint8_t *id, int code, const char *why)
{
    static const char body[] = "{\"error\":\"refused\"}";
    char line[800];
    snprintf(line, sizeof line, "refused: %.760s", why);
    logline(b, peer, id, line);
    atomic_fetch_add(&b->refused, 1);
    if (ssl)
        answer(ssl, code, body, sizeof body - 1, "application/json");
}

/* DIR/<hex>.key: exactly 32 bytes, a regular file, no symlink. */
static int read_key(const char *dir, const uint8_t id[32], uint8_t key[32], char *why, size_t why_size)
{
    char hex[65], path[600];
    occ_hex_encode(id, 32, hex);
    if (snprintf(path, sizeof path, "%.500s/%s.key", dir, hex) >= (int)sizeof path) {
        snprintf(why, why_size, "the key directory's path is too long");
        return -1;
    }
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, why_size, "no key for this model (%.580s: %.60s)", path, strerror(errno));
        return -1;
    }
    struct stat st;
    ssize_t r = -1;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 32)
        r = read(fd, key, 32);
    close(fd);
    if (r != 32) {
        OPENSSL_cleanse(key, 32);
        snprintf(why, why_size, "%.580s is not a 32-byte key file", path);
        return -1;
    }
    return 0;
}

static void serve_one(occ_broker *b, int fd, const char *peer)
{
    SSL *ssl = SSL_new(b->ctx);
    uint8_t id[32], key[32];
    int have_id = 0;
    char why[OCC_VERDICT_REASON_SIZE * 3];
    if (!ssl || SSL_set_fd(ssl, fd) != 1) {
        refuse(b, NULL, peer, NULL, 0, "out of memory");
        goto out;
    }
    if (SSL_accept(ssl) != 1) {
        unsigned long err = ERR_peek_last_error();
        char es[160];
        ERR_error_string_n(err, es, sizeof es);
        snprintf(why, sizeof why, "TLS handshake failed: %s", err ? es : "connection closed or timed out");
        refuse(b, NULL, peer, NULL, 0, why);
        goto out;
    }
    /* the request */
    uint8_t req[OCC_KEYREQ_MAX];
    size_t have = 0;
    int complete = 0;
    occ_error e = {0};
    while (!complete) {
        int r = SSL_read(ssl, req + have, (int)(sizeof req - have));
        if (r <= 0) {
            refuse(b, NULL, peer, NULL, 0, "the client left before a whole request (or timed out)");
            goto out;
        }
        have += (size_t)r;
        if (occ_keyreq_parse(req, have, &complete, id, &e)) {
            snprintf(why, sizeof why, "malformed request: %s", e.msg);
            refuse(b, ssl, peer, NULL, 400, why);
            goto out;
        }
        if (!complete && have == sizeof req) {
            refuse(b, ssl, peer, NULL, 400, "malformed request: head too long");
            goto out;
        }
    }
    have_id = 1;
    /* the evidence */
    X509 *cert = SSL_get1_peer_certificate(ssl);
    if (!cert) {
        refuse(b, ssl, peer, id, 403, "no client certificate (an enclave presents its RA-TLS certificate)");
        goto out;
    }
    occ_attest_verdict *v = calloc(1, sizeof *v);
    if (!v) {
        X509_free(cert);
        refuse(b, ssl, peer, id, 403, "out of memory");
        goto out;
    }
    occ_status vs = occ_ratls_verify_cert(cert, &b->vpolicy, b->cfg.root, b->cfg.collateral, OCC_ATTEST_NOW, v, &e);
    X509_free(cert);
    if (vs || !v->accepted) {
        size_t used = (size_t)snprintf(why, sizeof why, "evidence refused:");
        for (size_t i = 0; i < v->reason_count && used < sizeof why; i++)
            used += (size_t)snprintf(why + used, sizeof why - used, "%s %s", i ? ";" : "", v->reasons[i]);
        if (!v->reason_count && used < sizeof why)
            snprintf(why + used, sizeof why - used, " %s", e.msg[0] ? e.msg : "unknown");
        free(v);
        refuse(b, ssl, peer, id, 403, why);
        goto out;
    }
    if (occ_keys_authorize(b->cfg.policy, v, id, &e)) {
        free(v);
        refuse(b, ssl, peer, id, 403, e.msg);
        goto out;
    }
    free(v);
    if (read_key(b->cfg.key_dir, id, key, why, sizeof why)) {
        refuse(b, ssl, peer, id, 403, why);
        goto out;
    }
    answer(ssl, 200, key, 32, "application/octet-stream");
    OPENSSL_cleanse(key, sizeof key);
    atomic_fetch_add(&b->released, 1);
    logline(b, peer, id, "released to an attested enclave");
out:
    (void)have_id;
    if (ssl) {
        SSL_shutdown(ssl);
        SSL_free(ssl);
    }
    ERR_clear_error();
}

static void *conn_thread(void *p)
{
    job *j = p;
    serve_one(j->b, j->fd, j->peer);
    close(j->fd);
    atomic_fetch_sub(&j->b->active, 1);
    free(j);
    return NULL;
}

occ_status occ_broker_create(const occ_broker_config *cfg, occ_broker **out, occ_error *e)
{
    *out = NULL;
    if (!cfg || !cfg->listen || !cfg->key_dir || !cfg->policy || !cfg->root || !cfg->cert || !cfg->key)
        return occ_fail(e, OCC_ERR_INVALID, "broker: need --listen, --key-dir, --policy, --root and a certificate");
    occ_broker *b = calloc(1, sizeof *b);
    if (!b)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    b->cfg = *cfg;
    if (!b->cfg.log)
        b->cfg.log = stderr;
    b->fd = -1;
    pthread_mutex_init(&b->log_mu, NULL);
    b->vpolicy = *cfg->policy;
    b->vpolicy.model_count = 0; /* per request: occ_keys_authorize */
    b->vpolicy.use_model[0] = 0;
    occ_status st = OCC_OK;
    char host[256];
    const char *colon = strrchr(cfg->listen, ':');
    size_t hl = colon ? (size_t)(colon - cfg->listen) : 0;
    if (!colon || !hl || hl >= sizeof host || !colon[1]) {
        st = occ_fail(e, OCC_ERR_INVALID, "--listen '%s': need ADDR:PORT", cfg->listen);
        goto fail;
    }
    memcpy(host, cfg->listen, hl);
    host[hl] = 0;
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    int gr = getaddrinfo(host, colon + 1, &hints, &res);
    if (gr) {
        st = occ_fail(e, OCC_ERR_INVALID, "--listen '%s': %s", cfg->listen, gai_strerror(gr));
        goto fail;
    }
    b->fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (b->fd >= 0)
        setsockopt(b->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (b->fd < 0 || bind(b->fd, res->ai_addr, res->ai_addrlen) || listen(b->fd, 64)) {
        st = occ_fail(e, OCC_ERR_IO, "cannot listen on %s: %s", cfg->listen, strerror(errno));
        freeaddrinfo(res);
        goto fail;
    }
    freeaddrinfo(res);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(b->fd, (struct sockaddr *)&ss, &sl);
    b->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
    b->ctx = SSL_CTX_new(TLS_server_method());
    if (!b->ctx || !SSL_CTX_set_min_proto_version(b->ctx, TLS1_3_VERSION) ||
        SSL_CTX_use_certificate(b->ctx, cfg->cert) != 1 || SSL_CTX_use_PrivateKey(b->ctx, cfg->key) != 1 ||
        SSL_CTX_check_private_key(b->ctx) != 1) {
        st = occ_fail(e, OCC_ERR_INVALID, "the broker's certificate and key do not go together");
        goto fail;
    }
    SSL_CTX_set_verify(b->ctx, SSL_VERIFY_PEER, accept_any);
    SSL_CTX_set_num_tickets(b->ctx, 0);
    SSL_CTX_set_session_cache_mode(b->ctx, SSL_SESS_CACHE_OFF);
    *out = b;
    return OCC_OK;
fail:
    ERR_clear_error();
    occ_broker_free(b);
    return st;
}

unsigned occ_broker_port(const occ_broker *b)
{
    return b->port;
}

void occ_broker_stop(occ_broker *b)
{
    b->stop = 1;
    shutdown(b->fd, SHUT_RDWR);
}

occ_status occ_broker_run(occ_broker *b, occ_error *e)
{
    (void)e;
    while (!b->stop) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(b->fd, (struct sockaddr *)&ss, &sl, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE)
                continue;
            if (b->stop)
                break;
            continue;
        }
        char peer[64] = "?";
        char ip[INET6_ADDRSTRLEN] = "?";
        unsigned port = 0;
        if (ss.ss_family == AF_INET) {
            inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, ip, sizeof ip);
            port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, ip, sizeof ip);
            port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        }
        snprintf(peer, sizeof peer, "%s:%u", ip, port);
        if (atomic_fetch_add(&b->active, 1) >= MAX_ACTIVE) {
            atomic_fetch_sub(&b->active, 1);
            logline(b, peer, NULL, "refused: too many connections at once");
            atomic_fetch_add(&b->refused, 1);
            close(fd);
            continue;
        }
        struct timeval tv = {10, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        job *j = calloc(1, sizeof *j);
        pthread_t th;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        if (j) {
            j->b = b;
            j->fd = fd;
            memcpy(j->peer, peer, sizeof peer);
        }
        if (!j || pthread_create(&th, &at, conn_thread, j)) {
            free(j);
            close(fd);
            atomic_fetch_sub(&b->active, 1);
        }
        pthread_attr_destroy(&at);
    }
    /* let the connection threads finish (each bounded by its timeouts) */
    for (int i = 0; i < 2200 && atomic_load(&b->active) > 0; i++)
        usleep(10000);
    return OCC_OK;
}

void occ_broker_counts(const occ_broker *b, uint64_t *released, uint64_t *refused)
{
    *released = atomic_load(&((occ_broker *)b)->released);
    *refused = atomic_load(&((occ_broker *)b)->refused);
}

void occ_broker_free(occ_broker *b)
{
    if (!b)
        return;
    if (b->fd >= 0)
        close(b->fd);
    SSL_CTX_free(b->ctx);
    pthread_mutex_destroy(&b->log_mu);
    free(b);
}
