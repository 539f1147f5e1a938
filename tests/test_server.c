/* The enclave side of the server driven through its ecall table by a fake
 * host (no sockets): TLS 1.3 with the RA-TLS certificate verified by the
 * client, the KServe API, exact scores against the engine, every bad input
 * with its status, timeouts with a fake clock, a connection that leaves
 * mid-inference, garbage instead of TLS, and that the others keep being
 * served. Also: the metrics port and what crosses the boundary, and the
 * pool's batching policy (a model that streams batches, a resident one not). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "occ/attest.h"
#include "occ/engine.h"
#include "occ/pack.h"
#include "occ/quote.h"
#include "occ/ratls.h"
#include "occ/server.h"
#include "server_harness.h"
#include "test_ops_util.h"
#include "fixture_stream_cnn.h"

#define MAX_CONNS 64

typedef struct wire {
    uint8_t *buf;
    size_t len, cap;
    int closed;
} wire;

static struct {
    occ_packfile *pf;
    pthread_mutex_t mu;
    wire w[MAX_CONNS];
    _Atomic uint64_t clock;
    /* every byte that crossed out of the enclave, for the plaintext check */
    uint8_t *all;
    size_t all_len, all_cap;
    uint64_t sends, last_send[MAX_CONNS]; /* the order of sends across connections */
} host = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void append(uint8_t **b, size_t *len, size_t *cap, const void *p, size_t n)
{
    if (*len + n > *cap) {
        size_t c = *cap ? *cap : 4096;
        while (c < *len + n)
            c *= 2;
        *b = realloc(*b, c);
        *cap = c;
    }
    memcpy(*b + *len, p, n);
    *len += n;
}

static tb cnn; /* pack 1 (batch_policy): the streaming CNN of fixture_stream_cnn.h */

/* weight bytes the enclave read per pack (pack 0 fmnist, 1 the CNN): a
 * pool's engines share one compiled model, so a model's weights cross once */
static _Atomic uint64_t read_bytes[2];

static uint64_t chunk_bytes(const occ_model *m)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < m->n_chunks; i++)
        n += m->chunks[i].size;
    return n;
}

static occ_status h_read(void *h, uint32_t pack, uint64_t off, void *dst, uint64_t size, occ_error *e)
{
    (void)h;
    if (pack < 2)
        atomic_fetch_add(&read_bytes[pack], size);
    if (pack == 1)
        return tb_read(&cnn, off, dst, size, e);
    return occ_packfile_read(host.pf, off, dst, size, e);
}

static occ_status h_send(void *h, uint64_t conn, const void *buf, size_t size, occ_error *e)
{
    (void)h;
    uint64_t slot = conn & ~OCC_CONN_METRICS_BIT;
    if (slot >= MAX_CONNS)
        return occ_fail(e, OCC_ERR_INVALID, "bad conn");
    pthread_mutex_lock(&host.mu);
    append(&host.w[slot].buf, &host.w[slot].len, &host.w[slot].cap, buf, size);
    append(&host.all, &host.all_len, &host.all_cap, buf, size);
    host.last_send[slot] = ++host.sends;
    pthread_mutex_unlock(&host.mu);
    return OCC_OK;
}

static void h_close(void *h, uint64_t conn)
{
    (void)h;
    pthread_mutex_lock(&host.mu);
    host.w[conn & ~OCC_CONN_METRICS_BIT].closed = 1;
    pthread_mutex_unlock(&host.mu);
}

static atomic_uint now_calls; /* the clock is an ocall: counted */

static uint64_t h_now(void *h)
{
    (void)h;
    atomic_fetch_add(&now_calls, 1);
    return atomic_load(&host.clock);
}

static occ_status ref_read(void *ctx, uint64_t off, void *dst, uint64_t size, occ_error *e)
{
    (void)ctx;
    return occ_packfile_read(host.pf, off, dst, size, e);
}

static occ_emu_provider *g_prov; /* the host's quoting service */
static occ_status h_quote(void *h, const uint8_t rd[64], uint8_t *dst, size_t cap, size_t *size, occ_error *e)
{
    (void)h;
    uint8_t *q = NULL;
    size_t n = 0;
    occ_status st = occ_emu_quote_provider(g_prov, rd, &q, &n, e);
    if (!st && n > cap)
        st = occ_fail(e, OCC_ERR_FORMAT, "quote too large");
    if (!st)
        memcpy(dst, q, n);
    *size = st ? 0 : n;
    free(q);
    return st;
}
static occ_ocalls ocalls = {.read_chunk = h_read, .send = h_send, .close = h_close, .now_ns = h_now, .get_quote = h_quote};
static occ_ecalls ec;
static X509 *root;
static occ_model *model;
static uint8_t model_id[32];

typedef struct client {
    uint64_t id;
    SSL_CTX *ctx;
    SSL *ssl;
    BIO *rb, *wb;
    occ_ratls_verify_ctx vctx;
    occ_attest_policy pol;
    uint8_t *rbuf; /* plaintext read but not yet consumed */
    size_t rlen, rcap;
} client;

/* Moves bytes both ways once. Returns 1 if anything moved. */
static int pump(client *c)
{
    int moved = 0;
    char *p;
    long n = BIO_get_mem_data(c->wb, &p);
    if (n > 0) {
        (void)ec.conn_data(ec.enclave, c->id, p, (size_t)n, NULL);
        (void)BIO_reset(c->wb);
        moved = 1;
    }
    pthread_mutex_lock(&host.mu);
    wire *w = &host.w[c->id];
    if (w->len) {
        BIO_write(c->rb, w->buf, (int)w->len);
        w->len = 0;
        moved = 1;
    }
    pthread_mutex_unlock(&host.mu);
    return moved;
}

static int is_closed(client *c)
{
    pthread_mutex_lock(&host.mu);
    int x = host.w[c->id].closed;
    pthread_mutex_unlock(&host.mu);
    return x;
}

static int client_open(client *c, uint64_t id, const uint8_t *mrenclave_override, int handshake)
{
    memset(c, 0, sizeof *c);
    c->id = id;
    pthread_mutex_lock(&host.mu);
    host.w[id].len = 0;
    host.w[id].closed = 0;
    pthread_mutex_unlock(&host.mu);
    c->ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(c->ctx, TLS1_3_VERSION);
    c->ssl = SSL_new(c->ctx);
    c->rb = BIO_new(BIO_s_mem());
    c->wb = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(c->rb, -1);
    SSL_set_bio(c->ssl, c->rb, c->wb);
    occ_attest_policy_default(&c->pol);
    c->pol.allow_emulated = 1; /* the test enclave is emulated (refused by default) */
    c->pol.has_model_id = 1;
    memcpy(c->pol.model_id, mrenclave_override ? mrenclave_override : model_id, 32);
    c->vctx.policy = &c->pol;
    c->vctx.root = root;
    c->vctx.at = OCC_ATTEST_NOW;
    if (occ_ratls_ssl_attach(c->ssl, &c->vctx))
        return -1;
    SSL_set_verify(c->ssl, SSL_VERIFY_PEER, occ_ratls_ssl_verify_cb);
    SSL_set_connect_state(c->ssl);
    if (ec.conn_open(ec.enclave, id, NULL))
        return -1;
    if (!handshake)
        return 0;
    for (int i = 0; i < 100; i++) {
        int r = SSL_do_handshake(c->ssl);
        if (r == 1)
            return 0;
        int err = SSL_get_error(c->ssl, r);
        if (err != SSL_ERROR_WANT_READ) {
            pump(c);
            ERR_clear_error();
            return -1;
        }
        pump(c);
    }
    return -1;
}

static void client_free(client *c, int tell)
{
    if (tell)
        ec.conn_close(ec.enclave, c->id);
    SSL_free(c->ssl);
    SSL_CTX_free(c->ctx);
    free(c->rbuf);
}

typedef struct resp {
    int status;
    char head[2048];
    uint8_t *body;
    size_t body_len;
    long ihcl;
} resp;

/* Reads one response (waits for workers up to ~5 s). 0 ok, -1 closed/none. */
static int read_resp(client *c, resp *r)
{
    memset(r, 0, sizeof *r);
    r->ihcl = -1;
#define buf c->rbuf
#define len c->rlen
#define cap c->rcap
    char tmp[16384];
    for (int spins = 0; spins < 5000; spins++) {
        pump(c);
        int n;
        while ((n = SSL_read(c->ssl, tmp, sizeof tmp)) > 0)
            append(&buf, &len, &cap, tmp, (size_t)n);
        ERR_clear_error();
        /* parse */
        for (size_t i = 0; i + 3 < len; i++) {
            if (memcmp(buf + i, "\r\n\r\n", 4))
                continue;
            size_t hl = i + 4;
            if (hl >= sizeof r->head)
                break;
            memcpy(r->head, buf, hl);
            r->head[hl] = 0;
            if (!strncmp(r->head, "HTTP/1.1 100", 12)) { /* interim */
                memmove(buf, buf + hl, len - hl);
                len -= hl;
                i = (size_t)-1;
                continue;
            }
            const char *cl = strcasestr(r->head, "Content-Length:");
            size_t blen = cl ? strtoul(cl + 15, NULL, 10) : 0;
            const char *ih = strcasestr(r->head, "Inference-Header-Content-Length:");
            if (ih)
                r->ihcl = strtol(ih + 32, NULL, 10);
            if (len < hl + blen)
                break;
            r->status = atoi(r->head + 9);
            r->body = malloc(blen + 1);
            memcpy(r->body, buf + hl, blen);
            r->body[blen] = 0;
            r->body_len = blen;
            memmove(buf, buf + hl + blen, len - hl - blen);
            len -= hl + blen;
            return 0;
        }
        if (is_closed(c) && !BIO_ctrl_pending(c->rb)) {
            pump(c);
            if (!BIO_ctrl_pending(c->rb))
                break;
        }
        usleep(1000);
    }
    return -1;
#undef buf
#undef len
#undef cap
}

static void send_raw(client *c, const void *p, size_t n)
{
    if (SSL_write(c->ssl, p, (int)n) <= 0)
        ERR_clear_error();
    pump(c);
}

static int request(client *c, const char *method, const char *path, const char *extra, const void *body, size_t blen,
                   resp *r)
{
    char head[1024];
    int hn = snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n%s\r\n", method, path,
                      blen, extra ? extra : "");
    uint8_t *all = malloc((size_t)hn + blen);
    memcpy(all, head, (size_t)hn);
    if (blen)
        memcpy(all + hn, body, blen);
    send_raw(c, all, (size_t)hn + blen);
    free(all);
    return read_resp(c, r);
}

static float input[784], expect_out[10];

static char *infer_json(const float *x, const char *name, const char *shape, const char *dtype)
{
    size_t cap = 784 * 24 + 512;
    char *s = malloc(cap);
    size_t n = (size_t)snprintf(s, cap, "{\"id\":\"q\",\"inputs\":[{\"name\":\"%s\",\"shape\":%s,\"datatype\":\"%s\",\"data\":[",
                                name, shape, dtype);
    for (int i = 0; i < 784; i++)
        n += (size_t)snprintf(s + n, cap - n, "%s%.9g", i ? "," : "", x[i]);
    snprintf(s + n, cap - n, "]}]}");
    return s;
}

static const char *in_name(void)
{
    return model->tensors[model->inputs[0]].name;
}

static void check_scores_json(const resp *r)
{
    /* pull the 10 numbers after "data":[ */
    const char *d = r->body ? strstr((const char *)r->body, "\"data\":[") : NULL;
    CHECK(d != NULL);
    if (!d)
        return;
    d += 8;
    for (int i = 0; i < 10; i++) {
        char *end;
        float v = strtof(d, &end);
        CHECK_MSG(v == expect_out[i], "score %d: %.9g vs %.9g", i, v, expect_out[i]);
        d = end + 1;
    }
}

static void happy_paths(void)
{
    client c;
    CHECK(client_open(&c, 1, NULL, 1) == 0);
    CHECK(c.vctx.verdict.accepted && c.vctx.verdict.emulated);
    resp r;
    CHECK(request(&c, "GET", "/v2/health/live", NULL, NULL, 0, &r) == 0 && r.status == 200 &&
          strstr((char *)r.body, "\"live\":true"));
    free(r.body);
    CHECK(request(&c, "GET", "/v2/health/ready", NULL, NULL, 0, &r) == 0 && r.status == 200);
    free(r.body);
    CHECK(request(&c, "GET", "/v2", NULL, NULL, 0, &r) == 0 && r.status == 200 &&
          strstr((char *)r.body, "binary_tensor_data"));
    free(r.body);
    CHECK(request(&c, "GET", "/v2/models/fmnist", NULL, NULL, 0, &r) == 0 && r.status == 200 &&
          strstr((char *)r.body, "\"shape\":[1,1,28,28]"));
    free(r.body);
    CHECK(request(&c, "GET", "/v2/models/fmnist/ready", NULL, NULL, 0, &r) == 0 && r.status == 200);
    free(r.body);
    char hex[65];
    occ_hex(model_id, 32, hex);
    CHECK(request(&c, "GET", "/v2/models/fmnist/occ", NULL, NULL, 0, &r) == 0 && r.status == 200 &&
          strstr((char *)r.body, hex) && strstr((char *)r.body, "\"channel_order\":\"L\""));
    free(r.body);
    /* JSON infer: exactly the engine's scores */
    char *j = infer_json(input, in_name(), "[1,1,28,28]", "FP32");
    CHECK(request(&c, "POST", "/v2/models/fmnist/infer", "Content-Type: application/json\r\n", j, strlen(j), &r) == 0);
    CHECK_MSG(r.status == 200, "%d %s", r.status, r.body);
    check_scores_json(&r);
    CHECK(strstr((char *)r.body, "\"id\":\"q\"") != NULL);
    free(r.body);
    /* the versioned path */
    CHECK(request(&c, "POST", "/v2/models/fmnist/versions/1/infer", NULL, j, strlen(j), &r) == 0 && r.status == 200);
    free(r.body);
    free(j);
    /* binary in, binary out */
    char hdr[512];
    int hn = snprintf(hdr, sizeof hdr,
                      "{\"inputs\":[{\"name\":\"%s\",\"shape\":[1,1,28,28],\"datatype\":\"FP32\",\"parameters\":"
                      "{\"binary_data_size\":3136}}],\"outputs\":[{\"name\":\"%s\",\"parameters\":{\"binary_data\":true}}]}",
                      in_name(), model->tensors[model->outputs[0]].name);
    uint8_t *body = malloc((size_t)hn + 3136);
    memcpy(body, hdr, (size_t)hn);
    memcpy(body + hn, input, 3136);
    char extra[128];
    snprintf(extra, sizeof extra, "Inference-Header-Content-Length: %d\r\n", hn);
    CHECK(request(&c, "POST", "/v2/models/fmnist/infer", extra, body, (size_t)hn + 3136, &r) == 0);
    CHECK_MSG(r.status == 200, "%d", r.status);
    CHECK(r.ihcl > 0 && r.body_len == (size_t)r.ihcl + 40);
    if (r.ihcl > 0 && r.body_len == (size_t)r.ihcl + 40)
        CHECK(!memcmp(r.body + r.ihcl, expect_out, 40));
    free(r.body);
    /* the same request fed to the enclave one byte per TLS record */
    char head[256];
    int hl = snprintf(head, sizeof head,
                      "POST /v2/models/fmnist/infer HTTP/1.1\r\nInference-Header-Content-Length: %d\r\n"
                      "Content-Length: %d\r\n\r\n",
                      hn, hn + 3136);
    for (int i = 0; i < hl; i++)
        send_raw(&c, head + i, 1);
    for (int i = 0; i < hn + 3136; i += 97)
        send_raw(&c, body + i, (size_t)(hn + 3136 - i < 97 ? hn + 3136 - i : 97));
    CHECK(read_resp(&c, &r) == 0 && r.status == 200 && r.ihcl > 0 && !memcmp(r.body + r.ihcl, expect_out, 40));
    free(r.body);
    /* pipelined GETs answered in order */
    const char two[] = "GET /v2/health/live HTTP/1.1\r\n\r\nGET /v2/models/nope HTTP/1.1\r\n\r\n";
    send_raw(&c, two, sizeof two - 1);
    CHECK(read_resp(&c, &r) == 0 && r.status == 200);
    free(r.body);
    CHECK(read_resp(&c, &r) == 0 && r.status == 404);
    free(r.body);
    free(body);
    client_free(&c, 1);
}

/* Time is an ocall, charged like every crossing: a request that arrives in
 * many TLS records in one ecall must not ask for it per record (it did, ~90
 * times per 600 KB request, a quarter of the server's request path). */
static void clock_read_once_per_pump(void)
{
    client c;
    CHECK(client_open(&c, 1, NULL, 1) == 0);
    char *j = infer_json(input, in_name(), "[1,1,28,28]", "FP32");
    size_t jn = strlen(j);
    char head[256];
    int hn = snprintf(head, sizeof head, "POST /v2/models/fmnist/infer HTTP/1.1\r\nContent-Length: %zu\r\n\r\n", jn);
    if (SSL_write(c.ssl, head, hn) <= 0)
        ERR_clear_error();
    int records = 1;
    for (size_t i = 0; i < jn; i += 200, records++) /* one TLS record each, none delivered yet */
        if (SSL_write(c.ssl, j + i, (int)(jn - i < 200 ? jn - i : 200)) <= 0)
            ERR_clear_error();
    unsigned before = atomic_load(&now_calls);
    char *p;
    long n = BIO_get_mem_data(c.wb, &p);
    CHECK(n > 0);
    (void)ec.conn_data(ec.enclave, c.id, p, (size_t)n, NULL); /* all records in one ecall */
    (void)BIO_reset(c.wb);
    unsigned during = atomic_load(&now_calls) - before;
    CHECK_MSG(records >= 30 && during <= 8, "%d records in one ecall read the clock %u times", records, during);
    resp r;
    CHECK(read_resp(&c, &r) == 0 && r.status == 200);
    check_scores_json(&r);
    free(r.body);
    free(j);
    client_free(&c, 1);
}

static void expect_status(client *c, const char *path, const char *extra, const char *body, size_t blen, int status,
                          const char *needle)
{
    resp r;
    int rc = request(c, "POST", path, extra, body, blen, &r);
    CHECK_MSG(rc == 0 && r.status == status && r.body && strstr((char *)r.body, "{\"error\":") &&
                  (!needle || strstr((char *)r.body, needle)),
              "%s: rc %d status %d body %s", path, rc, r.status, r.body ? (char *)r.body : "-");
    free(r.body);
}

static void bad_inputs(void)
{
    client c;
    CHECK(client_open(&c, 2, NULL, 1) == 0);
    const char *p = "/v2/models/fmnist/infer";
    expect_status(&c, p, NULL, "{\"inputs\":[", 11, 400, "malformed JSON");
    char *j = infer_json(input, in_name(), "[1,1,28,27]", "FP32");
    expect_status(&c, p, NULL, j, strlen(j), 400, "shape");
    free(j);
    j = infer_json(input, in_name(), "[1,1,28,28]", "FP16");
    expect_status(&c, p, NULL, j, strlen(j), 400, "datatype");
    free(j);
    j = infer_json(input, "not_the_input", "[1,1,28,28]", "FP32");
    expect_status(&c, p, NULL, j, strlen(j), 400, "unknown input tensor");
    expect_status(&c, "/v2/models/other/infer", NULL, j, strlen(j), 404, "unknown model 'other'");
    free(j);
    char hdr[256];
    int hn = snprintf(hdr, sizeof hdr,
                      "{\"inputs\":[{\"name\":\"%s\",\"shape\":[1,1,28,28],\"datatype\":\"FP32\",\"parameters\":"
                      "{\"binary_data_size\":3136}}]}",
                      in_name());
    char extra[128];
    snprintf(extra, sizeof extra, "Inference-Header-Content-Length: %d\r\n", hn);
    char *body = malloc((size_t)hn + 1000);
    memcpy(body, hdr, (size_t)hn);
    memset(body + hn, 0, 1000);
    expect_status(&c, p, extra, body, (size_t)hn + 1000, 400, "truncated binary tensor");
    free(body);
    resp r;
    CHECK(request(&c, "GET", p, NULL, NULL, 0, &r) == 0 && r.status == 405);
    free(r.body);
    CHECK(request(&c, "GET", "/nope", NULL, NULL, 0, &r) == 0 && r.status == 404);
    free(r.body);
    /* still fine on the same connection */
    CHECK(request(&c, "GET", "/v2/health/live", NULL, NULL, 0, &r) == 0 && r.status == 200);
    free(r.body);
    /* body over the limit: refused from the headers, connection closed */
    const char big[] = "POST /v2/models/fmnist/infer HTTP/1.1\r\nContent-Length: 100000000\r\n\r\n{";
    send_raw(&c, big, sizeof big - 1);
    CHECK(read_resp(&c, &r) == 0 && r.status == 413 && strstr((char *)r.body, "over the limit"));
    free(r.body);
    CHECK(is_closed(&c));
    client_free(&c, 1);
}

static void garbage_stall_disconnect(void)
{
    /* garbage instead of TLS: closed, no crash */
    client g;
    CHECK(client_open(&g, 3, NULL, 0) == 0);
    const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    (void)ec.conn_data(ec.enclave, 3, junk, sizeof junk - 1, NULL);
    CHECK(is_closed(&g));
    client_free(&g, 1);

    /* a client that stalls mid-request gets 408 after the request timeout */
    client s;
    CHECK(client_open(&s, 4, NULL, 1) == 0);
    const char part[] = "POST /v2/models/fmnist/infer HTTP/1.1\r\nContent-Length: 5000\r\n\r\n{\"inp";
    send_raw(&s, part, sizeof part - 1);
    /* a stalled handshake too */
    client h;
    CHECK(client_open(&h, 5, NULL, 0) == 0);
    atomic_fetch_add(&host.clock, 31ull * 1000000000ull);
    resp r;
    CHECK(read_resp(&s, &r) == 0 && r.status == 408);
    free(r.body);
    for (int i = 0; i < 2000 && !is_closed(&h); i++)
        usleep(1000);
    CHECK(is_closed(&s) && is_closed(&h));
    client_free(&s, 1);
    client_free(&h, 1);

    /* a client that leaves mid-inference */
    for (int k = 0; k < 5; k++) {
        client d;
        CHECK(client_open(&d, 6, NULL, 1) == 0);
        char *j = infer_json(input, in_name(), "[1,1,28,28]", "FP32");
        char head[128];
        int hl = snprintf(head, sizeof head, "POST /v2/models/fmnist/infer HTTP/1.1\r\nContent-Length: %zu\r\n\r\n",
                          strlen(j));
        send_raw(&d, head, (size_t)hl);
        send_raw(&d, j, strlen(j));
        free(j);
        if (k % 2)
            usleep(200);
        client_free(&d, 1);
    }
    /* everyone else is still served */
    client c;
    CHECK(client_open(&c, 7, NULL, 1) == 0);
    char *j = infer_json(input, in_name(), "[1,1,28,28]", "FP32");
    CHECK(request(&c, "POST", "/v2/models/fmnist/infer", NULL, j, strlen(j), &r) == 0 && r.status == 200);
    check_scores_json(&r);
    free(r.body);
    free(j);
    client_free(&c, 1);
}

static void wrong_model_id_refused(void)
{
    uint8_t other[32];
    memset(other, 0x5a, 32);
    client c;
    CHECK(client_open(&c, 8, other, 1) != 0);
    CHECK(!c.vctx.verdict.accepted && occ_verdict_has_reason(&c.vctx.verdict, "model"));
    client_free(&c, 1);
}

static void metrics_and_boundary(void)
{
    uint64_t id = 9 | OCC_CONN_METRICS_BIT;
    pthread_mutex_lock(&host.mu);
    host.w[9].len = 0;
    host.w[9].closed = 0;
    pthread_mutex_unlock(&host.mu);
    CHECK(ec.conn_open(ec.enclave, id, NULL) == OCC_OK);
    const char req[] = "GET /metrics HTTP/1.1\r\n\r\n";
    CHECK(ec.conn_data(ec.enclave, id, req, sizeof req - 1, NULL) == OCC_OK);
    pthread_mutex_lock(&host.mu);
    char *text = strndup((char *)host.w[9].buf, host.w[9].len);
    int closed = host.w[9].closed;
    pthread_mutex_unlock(&host.mu);
    CHECK(closed);
    CHECK(strstr(text, "HTTP/1.1 200") && strstr(text, "occ_inferences_total{model=\"fmnist\"}") &&
          strstr(text, "occ_http_responses_total{code=\"413\"} 1") && strstr(text, "occ_request_timeouts_total 2") &&
          strstr(text, "occ_engines{model=\"fmnist\"} 2"));
    free(text);
    ec.conn_close(ec.enclave, id);
    /* No plaintext request or response body ever crossed (outside the
     * metrics port): look for the JSON keys and the output bytes. */
    pthread_mutex_lock(&host.mu);
    CHECK(!memmem(host.all, host.all_len, "\"outputs\"", 9));
    CHECK(!memmem(host.all, host.all_len, expect_out, 40));
    CHECK(!memmem(host.all, host.all_len, "\"live\":true", 11));
    pthread_mutex_unlock(&host.mu);
}

/* The enclave configuration the batching tests use: occlumency mode, two
 * single-threaded engines per model sharing 4 MiB (the CNN streams; at 6
 * MiB two engines on one compiled model hold its weights resident once:
 * pool_shares_resident), up to 4 per run. */
static occ_enclave_config batching_config(occ_server_model *sm, size_t n, occ_emu_provider *prov)
{
    occ_enclave_config cfg = {0};
    cfg.models = sm;
    cfg.n_models = n;
    cfg.engine.threads = 1;
    cfg.engine.mode = OCC_MODE_OCCLUMENCY;
    cfg.engine.budget = UINT64_C(4) << 20;
    cfg.engines = 2;
    cfg.max_batch = 4;
    g_prov = prov;
    return cfg;
}

/* Two models in occlumency mode, two engines each, --max-batch 4: the CNN
 * streams under its engines' 3 MiB and is batched; fmnist's weights are all
 * resident and it runs one request at a time, saying why. The pool of the
 * two stays within each model's budget. */
static void batch_policy(const uint8_t *fm_man, size_t fm_size, occ_emu_provider *prov)
{
    float *bufs[6];
    fix_stream_cnn(&cnn, bufs);
    uint8_t *man = NULL;
    size_t msize = 0;
    occ_error e = {0};
    CHECK_MSG(occ_manifest_encode(&cnn.m, &man, &msize, &e) == OCC_OK, "%s", e.msg);
    occ_server_model sm[2] = {{"fmnist", 0, fm_man, fm_size}, {"cnn", 1, man, msize}};
    occ_enclave_config cfg = batching_config(sm, 2, prov);
    occ_enclave *enc = NULL;
    atomic_store(&read_bytes[1], 0);
    CHECK_MSG(man && occ_enclave_create(&cfg, &ocalls, &enc, &e) == OCC_OK, "%s", e.msg);
    /* two engines, one compiled model: the CNN's weights read (and
     * verified) once, not once per engine */
    CHECK_MSG(atomic_load(&read_bytes[1]) >= chunk_bytes(&cnn.m) && atomic_load(&read_bytes[1]) < 2 * chunk_bytes(&cnn.m),
              "read %llu bytes of %llu", (unsigned long long)atomic_load(&read_bytes[1]),
              (unsigned long long)chunk_bytes(&cnn.m));
    if (enc) {
        const char *note = NULL;
        CHECK(occ_enclave_model_batch(enc, 1, &note) == 4);
        CHECK(occ_enclave_model_batch(enc, 0, &note) == 1);
        CHECK_MSG(note && strstr(note, "every weight resident"), "note: %s", note ? note : "(none)");
        CHECK(occ_enclave_model_batch(enc, 2, NULL) == 0);
        CHECK(!occ_enclave_batching(enc));
        char *text = occ_enclave_metrics(enc);
        CHECK(text && strstr(text, "occ_engines{model=\"cnn\"} 2") &&
              strstr(text, "occ_engine_batching{model=\"cnn\"} 4") &&
              strstr(text, "occ_engine_batching{model=\"fmnist\"} 1"));
        const char *pk = text ? strstr(text, "occ_engine_peak_enclave_bytes{model=\"cnn\"} ") : NULL;
        CHECK(pk && strtoull(pk + strlen("occ_engine_peak_enclave_bytes{model=\"cnn\"} "), NULL, 10) <=
                        cfg.engine.budget);
        free(text);
        occ_enclave_free(enc);
    }
    free(man);
    for (int i = 0; i < 6; i++)
        free(bufs[i]);
    tb_free(&cnn);
}

/* The pool's budget counts the resident weights once: at 6 MiB two engines
 * of the CNN (3.4 MiB of weights) hold every weight, once, and stay within
 * the budget; each engine planned alone with 3 MiB would stream. */
static void pool_shares_resident(occ_emu_provider *prov)
{
    float *bufs[6];
    fix_stream_cnn(&cnn, bufs);
    uint8_t *man = NULL;
    size_t msize = 0;
    occ_error e = {0};
    CHECK_MSG(occ_manifest_encode(&cnn.m, &man, &msize, &e) == OCC_OK, "%s", e.msg);
    occ_server_model sm = {"cnn", 1, man, msize};
    occ_enclave_config cfg = batching_config(&sm, 1, prov);
    cfg.engine.budget = UINT64_C(6) << 20;
    occ_enclave *enc = NULL;
    CHECK_MSG(man && occ_enclave_create(&cfg, &ocalls, &enc, &e) == OCC_OK, "%s", e.msg);
    if (enc) {
        const char *note = NULL;
        CHECK(occ_enclave_model_batch(enc, 0, &note) == 1);
        CHECK_MSG(note && strstr(note, "every weight resident"), "note: %s", note ? note : "(none)");
        char *text = occ_enclave_metrics(enc);
        CHECK(text && strstr(text, "occ_engines{model=\"cnn\"} 2"));
        const char *pk = text ? strstr(text, "occ_engine_peak_enclave_bytes{model=\"cnn\"} ") : NULL;
        CHECK(pk && strtoull(pk + strlen("occ_engine_peak_enclave_bytes{model=\"cnn\"} "), NULL, 10) <=
                        cfg.engine.budget);
        free(text);
        occ_enclave_free(enc);
    }
    free(man);
    for (int i = 0; i < 6; i++)
        free(bufs[i]);
    tb_free(&cnn);
}

static void *worker(void *arg);

/* A worker about to run a batch waits for a request that is partly received
 * (batch_fill_us) rather than start a weight pass without it: B arrives
 * whole while A is half sent; with the fill they run as one batch of 2,
 * without it as two runs of 1. */
static void batch_fill(occ_emu_provider *prov)
{
    float *bufs[6];
    fix_stream_cnn(&cnn, bufs);
    uint8_t *man = NULL;
    size_t msize = 0;
    occ_error e = {0};
    CHECK_MSG(occ_manifest_encode(&cnn.m, &man, &msize, &e) == OCC_OK, "%s", e.msg);
    for (int fill = 0; fill < 2 && man; fill++) {
        occ_server_model sm = {"cnn", 1, man, msize}; /* pack 1: h_read serves cnn's weights */
        occ_enclave_config cfg = batching_config(&sm, 1, prov);
        cfg.batch_fill_us = fill ? 5000000u : 0u;
        occ_enclave *enc = NULL;
        CHECK_MSG(occ_enclave_create(&cfg, &ocalls, &enc, &e) == OCC_OK, "%s", e.msg);
        if (!enc)
            break;
        CHECK(occ_enclave_model_batch(enc, 0, NULL) == 4);
        occ_enclave_ecalls(enc, &ec);
        pthread_t th;
        pthread_create(&th, NULL, worker, NULL);
        float x[1024];
        for (int i = 0; i < 1024; i++)
            x[i] = (float)(i % 7) * 0.25f;
        char hdr[256];
        int hn = snprintf(hdr, sizeof hdr,
                          "{\"inputs\":[{\"name\":\"x\",\"shape\":[1,16,8,8],\"datatype\":\"FP32\",\"parameters\":"
                          "{\"binary_data_size\":4096}}]}");
        size_t blen = (size_t)hn + 4096;
        char head[256];
        int h2 = snprintf(head, sizeof head,
                          "POST /v2/models/cnn/infer HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n"
                          "Inference-Header-Content-Length: %d\r\n\r\n",
                          blen, hn);
        uint8_t *req = malloc((size_t)h2 + blen);
        memcpy(req, head, (size_t)h2);
        memcpy(req + h2, hdr, (size_t)hn);
        memcpy(req + h2 + hn, x, 4096);
        size_t total = (size_t)h2 + blen, half = (size_t)h2 + (size_t)hn + 1000;
        client a, b;
        uint8_t mid[32];
        occ_enclave_binding(enc, mid); /* one model: its id */
        CHECK(client_open(&a, 20, mid, 1) == 0 && client_open(&b, 21, mid, 1) == 0);
        send_raw(&a, req, half);  /* A: headers and part of the body */
        send_raw(&b, req, total); /* B: whole */
        usleep(200000);
        send_raw(&a, req + half, total - half);
        resp ra, rb;
        CHECK(read_resp(&b, &rb) == 0 && rb.status == 200);
        CHECK(read_resp(&a, &ra) == 0 && ra.status == 200);
        CHECK(ra.body_len == rb.body_len && ra.body && rb.body && !memcmp(ra.body, rb.body, ra.body_len));
        free(ra.body);
        free(rb.body);
        char *text = occ_enclave_metrics(enc);
        const char *want = fill ? "occ_batch_size_bucket{le=\"1\"} 0\n" : "occ_batch_size_bucket{le=\"1\"} 2\n";
        CHECK_MSG(text && strstr(text, want), "fill %d: expected %s", fill, want);
        free(text);
        client_free(&a, 1);
        client_free(&b, 1);
        free(req);
        ec.stop(ec.enclave);
        pthread_join(th, NULL);
        occ_enclave_free(enc);
    }
    free(man);
    for (int i = 0; i < 6; i++)
        free(bufs[i]);
    tb_free(&cnn);
}

static _Atomic int clock_run;
static void *clock_thread(void *arg)
{
    (void)arg;
    while (atomic_load(&clock_run)) { /* the host's clock runs 5x real time */
        atomic_fetch_add(&host.clock, 50000000ull);
        usleep(10000);
    }
    return NULL;
}

static double real_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Issue 15, item 5: one client must not delay the others.
 * 1. A batch is answered whole before pipelined requests are parsed: A's
 *    request (with a GET pipelined behind it) and B's run as one batch; B's
 *    answer leaves before A's GET is answered.
 * 2. A connection that makes no progress holds no batch: A sends part of a
 *    request and stalls; B's whole request is answered long before the
 *    5 s fill time (a fill waits only while awaited requests receive bytes). */
static void no_client_delays_others(occ_emu_provider *prov)
{
    float *bufs[6];
    fix_stream_cnn(&cnn, bufs);
    uint8_t *man = NULL;
    size_t msize = 0;
    occ_error e = {0};
    CHECK_MSG(occ_manifest_encode(&cnn.m, &man, &msize, &e) == OCC_OK, "%s", e.msg);
    occ_server_model sm = {"cnn", 1, man, msize};
    occ_enclave_config cfg = batching_config(&sm, 1, prov);
    cfg.batch_fill_us = 5000000u;
    occ_enclave *enc = NULL;
    CHECK_MSG(man && occ_enclave_create(&cfg, &ocalls, &enc, &e) == OCC_OK, "%s", e.msg);
    if (!enc) {
        free(man);
        return;
    }
    occ_enclave_ecalls(enc, &ec);
    pthread_t th;
    pthread_create(&th, NULL, worker, NULL);
    float x[1024];
    for (int i = 0; i < 1024; i++)
        x[i] = (float)(i % 5) * 0.5f;
    char hdr[256];
    int hn = snprintf(hdr, sizeof hdr,
                      "{\"inputs\":[{\"name\":\"x\",\"shape\":[1,16,8,8],\"datatype\":\"FP32\",\"parameters\":"
                      "{\"binary_data_size\":4096}}]}");
    size_t blen = (size_t)hn + 4096;
    char head[256];
    int h2 = snprintf(head, sizeof head,
                      "POST /v2/models/cnn/infer HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n"
                      "Inference-Header-Content-Length: %d\r\n\r\n",
                      blen, hn);
    static const char get[] = "GET /v2/health/live HTTP/1.1\r\nHost: t\r\n\r\n";
    size_t total = (size_t)h2 + blen;
    uint8_t *req = malloc(total + sizeof get);
    memcpy(req, head, (size_t)h2);
    memcpy(req + h2, hdr, (size_t)hn);
    memcpy(req + h2 + hn, x, 4096);
    memcpy(req + total, get, sizeof get - 1);
    uint8_t mid[32];
    occ_enclave_binding(enc, mid);
    client a, b;
    resp ra, rb, rg;

    /* 1. B half (awaited), A whole + a pipelined GET (queued first), then
     * the rest of B */
    CHECK(client_open(&a, 30, mid, 1) == 0 && client_open(&b, 31, mid, 1) == 0);
    send_raw(&b, req, total / 2);
    send_raw(&a, req, total + sizeof get - 1);
    usleep(200000);
    send_raw(&b, req + total / 2, total - total / 2);
    CHECK(read_resp(&a, &ra) == 0 && ra.status == 200);
    CHECK(read_resp(&b, &rb) == 0 && rb.status == 200);
    CHECK(read_resp(&a, &rg) == 0 && rg.status == 200 && rg.body && strstr((char *)rg.body, "live"));
    char *text = occ_enclave_metrics(enc);
    CHECK_MSG(text && strstr(text, "occ_batch_size_bucket{le=\"1\"} 0\n"), "A and B did not run as one batch");
    free(text);
    pthread_mutex_lock(&host.mu);
    uint64_t last_a = host.last_send[30], last_b = host.last_send[31];
    pthread_mutex_unlock(&host.mu);
    CHECK_MSG(last_b < last_a, "A's pipelined GET was answered before B's inference (the batch was not answered first)");
    free(ra.body);
    free(rb.body);
    free(rg.body);

    /* 2. A part of a request and stalls; B whole: answered without waiting
     * the 5 s fill (the host's clock runs, A sends nothing more) */
    client c2, d2;
    CHECK(client_open(&c2, 32, mid, 1) == 0 && client_open(&d2, 33, mid, 1) == 0);
    atomic_store(&clock_run, 1);
    pthread_t ct;
    pthread_create(&ct, NULL, clock_thread, NULL);
    send_raw(&c2, req, (size_t)h2 + 100);
    usleep(20000);
    double t0 = real_s();
    send_raw(&d2, req, total);
    resp rd;
    CHECK(read_resp(&d2, &rd) == 0 && rd.status == 200);
    double waited = real_s() - t0;
    CHECK_MSG(waited < 3.0, "B waited %.2f s for a connection that sends nothing", waited);
    free(rd.body);
    atomic_store(&clock_run, 0);
    pthread_join(ct, NULL);
    client_free(&c2, 1);
    client_free(&d2, 1);
    client_free(&a, 1);
    client_free(&b, 1);
    free(req);
    ec.stop(ec.enclave);
    pthread_join(th, NULL);
    occ_enclave_free(enc);
    free(man);
    for (int i = 0; i < 6; i++)
        free(bufs[i]);
    tb_free(&cnn);
}

static void *worker(void *arg)
{
    (void)arg;
    occ_error e = {0};
    if (ec.run_worker(ec.enclave, 0, &e))
        fprintf(stderr, "worker: %s\n", e.msg);
    return NULL;
}

int main(void)
{
    const char *dir = harness_tmpdir();
    char pack[256], emu[300];
    if (!dir || harness_pack(dir, pack, sizeof pack)) {
        fprintf(stderr, "cannot pack the model (OCC_BIN/OCC_SRC set?)\n");
        return 1;
    }
    snprintf(emu, sizeof emu, "%s/emu", dir);
    occ_error e = {0};
    CHECK(occ_packfile_open(pack, &host.pf, &e) == OCC_OK);
    size_t msize = 0;
    const uint8_t *man = occ_packfile_manifest(host.pf, &msize);
    CHECK(occ_manifest_decode(man, msize, &model, &e) == OCC_OK);
    memcpy(model_id, model->model_id, 32);
    for (int i = 0; i < 784; i++)
        input[i] = (float)((i * 37) % 255) / 255.0f - 0.3f;
    /* the reference: the engine run directly */
    occ_engine *eng = NULL;
    occ_engine_opts o = {0};
    const float *ins[1] = {input};
    float *outs[1] = {expect_out};
    occ_emu_provider prov = {0};
    CHECK(occ_emu_quote_open(emu, &prov.quoter, &e) == OCC_OK);
    CHECK(occ_emu_identity_default(prov.quoter, &prov.identity, &e) == OCC_OK);
    CHECK(occ_attest_root_load(occ_emu_quote_root_path(prov.quoter), &root, &e) == OCC_OK);
    atomic_store(&host.clock, 1000000000ull);

    occ_server_model sm = {"fmnist", 0, man, msize};
    occ_enclave_config cfg = {0};
    cfg.models = &sm;
    cfg.n_models = 1;
    cfg.engine.threads = 1;
    cfg.engines = 2; /* a pool of two, driven by two workers */
    cfg.max_body_size = 1 << 20;
    g_prov = &prov;
    occ_enclave *enc = NULL;
    atomic_store(&read_bytes[0], 0);
    CHECK_MSG(occ_enclave_create(&cfg, &ocalls, &enc, &e) == OCC_OK, "%s", e.msg);
    if (!enc)
        TEST_DONE();
    /* a pool of two engines on one compiled model: the weights crossed once */
    CHECK_MSG(atomic_load(&read_bytes[0]) >= chunk_bytes(model) && atomic_load(&read_bytes[0]) < 2 * chunk_bytes(model),
              "read %llu bytes of %llu", (unsigned long long)atomic_load(&read_bytes[0]),
              (unsigned long long)chunk_bytes(model));
    occ_enclave_ecalls(enc, &ec);
    /* reference scores through the same read path */
    CHECK(occ_engine_create(model, &o, ref_read, NULL, &eng, &e) == OCC_OK);
    CHECK(occ_engine_run(eng, (const void *const *)ins, (void *const *)outs, &e) == OCC_OK);
    occ_engine_free(eng);

    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, worker, NULL);
    RUN(happy_paths);
    RUN(clock_read_once_per_pump);
    RUN(bad_inputs);
    RUN(garbage_stall_disconnect);
    RUN(wrong_model_id_refused);
    RUN(metrics_and_boundary);
    ec.stop(ec.enclave);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    occ_enclave_free(enc);
    batch_policy(man, msize, &prov);
    pool_shares_resident(&prov);
    batch_fill(&prov);
    no_client_delays_others(&prov);
    occ_model_free(model);
    occ_packfile_close(host.pf);
    occ_emu_quote_close(prov.quoter);
    X509_free(root);
    for (int i = 0; i < MAX_CONNS; i++)
        free(host.w[i].buf);
    free(host.all);
    harness_rmrf(dir);
    TEST_DONE();
}
