/* The enclave side of the inference server (see include/occ/server.h).
 *
 * Threads: the host calls conn_open/conn_data/conn_close from its event
 * loop and run_worker from its worker threads. Each connection has a mutex
 * (its SSL, HTTP state); the request queue has one; each model has a pool
 * of engines (occ_engine_run is one run at a time per engine) whose free
 * list has one. Lock order: conn -> queue, conn -> stats; the table lock
 * and a pool lock are never held with another.
 *
 * Why a pool: an engine runs one inference at a time, so one engine with T
 * threads splits every layer T ways (with a barrier per layer); E engines
 * of T/E threads each run E requests side by side with no barrier at all,
 * which is what a loaded server wants (bench/serve.sh, docs/server.md). The
 * model's budget is split evenly among its engines, so the enclave still
 * holds at most the budget.
 *
 * A connection answers requests strictly in order: while an inference of
 * a connection is queued or running (busy), nothing more is read from its
 * TLS stream; the worker that answers resumes it. */
#include "occ/server.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "enclave/http.h"
#include "enclave/keyfetch.h"
#include "enclave/kserve.h"
#include "engine/engine_internal.h" /* occ_engine_plan_only */
#include "occ/fault.h"
#include "occ/ratls.h"
#include "occ/weights_crypt.h"

#define N_BUCKETS 1024
#define REQ_FREE_PER_CONN ((size_t)64 << 10)
#define REQ_DEFAULT_BUDGET ((size_t)64 << 20)
/* bytes of TLS records that may wait in a busy connection's read BIO */
#define MAX_PENDING_WHILE_BUSY ((size_t)1 << 20)
/* what one node of a cJSON tree costs (the node and malloc's header) */
#define JSON_NODE_COST 80
/* a job's tensors each start at a 16-byte boundary (int64 / float loads) */
#define TENSOR_ALIGN(n) (((size_t)(n) + 15u) & ~(size_t)15u)
#define LAT_N 14
static const double lat_bounds[LAT_N] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                         0.1,    0.25,  0.5,    1,     2.5,  5,     10};
#define BATCH_N 8
static const int batch_bounds[BATCH_N] = {1, 2, 4, 8, 16, 32, 64, 128};
static const int code_list[] = {200, 400, 404, 405, 408, 411, 413, 414, 417, 431, 500, 503, 505};
#define N_CODES ((int)(sizeof code_list / sizeof code_list[0]))

typedef struct srv_model srv_model;

typedef struct read_ctx {
    const occ_ocalls *oc;
    uint32_t pack_id;
} read_ctx;

struct srv_model {
    char *name;
    read_ctx rd;
    occ_model *m;
    /* the pool: n_eng engines of batch batch_n (1 when not batching); a
     * run of k <= batch_n requests is occ_engine_run_n(k) */
    occ_engine **eng;
    uint32_t n_eng;
    uint8_t *eng_busy;
    uint32_t batch_n;
    const char *batch_note;  /* why batch_n is 1 (static text) */
    pthread_mutex_t run_mu; /* guards eng_busy */
    pthread_cond_t run_cv;
    size_t in_bytes, out_bytes; /* per request, all inputs / all outputs */
    size_t job_bytes;           /* the same, each tensor at a 16-byte boundary (typed loads) */
    size_t max_body;            /* largest infer body its inputs need (JSON or binary) */
    size_t max_json_values;     /* numbers and containers a JSON request may hold */
    /* stats (under enc->stats_mu) */
    uint64_t inferences, errors, integrity_failures;
    uint64_t lat_hist[LAT_N + 1];
    double lat_sum;
};

typedef struct conn {
    occ_enclave *enc;
    uint64_t id;
    int refs; /* under enc->conn_mu */
    struct conn *next;
    pthread_mutex_t mu;
    int metrics;
    char mreq[4096];
    size_t mlen;
    SSL *ssl;
    BIO *wbio; /* owned by ssl; rbio too */
    occ_http *http;
    int hs_done, closed, busy;
    int awaited;           /* a request is on its way (counted in enc->n_awaited): partly
                              received, or this keep-alive connection was answered at
                              answered_ns (< batch_fill ago) and a client in a loop sends again */
    uint64_t answered_ns;
    uint64_t req_start_ns; /* a handshake or a request is in progress since */
    size_t held;           /* request memory it holds (under enc->mem_mu) */
} conn;

typedef struct job {
    struct job *next;
    conn *c; /* holds a reference */
    conn *charged; /* whose request memory this job is charged to */
    size_t charge;
    srv_model *mdl;
    occ_kserve_request req;
    int keep_alive;
    uint64_t t_enqueue;
    void **in, **out; /* each tensor in its dtype */
} job;

struct occ_enclave {
    const occ_ocalls *oc;
    uint32_t max_batch;
    uint64_t batch_wait_ns, batch_fill_ns, req_timeout_ns;
    size_t max_body;
    uint32_t max_queue;
    /* request memory: bodies, staging, jobs, JSON trees. Each connection
     * holds up to REQ_FREE_PER_CONN without drawing on the budget (so small
     * requests are served even while big ones hold it all: bounded by the
     * host's connection limit); beyond, from req_budget, or 503. */
    pthread_mutex_t mem_mu;
    size_t req_budget, req_used, req_peak;
    uint64_t req_refused;

    srv_model *models;
    size_t n_models;
    int batching;

    SSL_CTX *ctx;
    EVP_PKEY *key;
    X509 *cert;
    uint8_t *cert_der;
    size_t cert_der_size;
    uint8_t binding[32];

    pthread_mutex_t conn_mu;
    conn *buckets[N_BUCKETS];

    pthread_mutex_t q_mu;
    pthread_cond_t q_cv;
    job *q_head, *q_tail;
    size_t q_len;
    uint32_t n_awaited; /* connections with a request on its way (conn.awaited): a batch may wait */
    uint64_t last_progress_ns; /* an awaited request last received bytes (or was expected back) */
    int stopping;
    uint64_t last_sweep;

    pthread_mutex_t stats_mu;
    uint64_t http_codes[N_CODES + 1];
    uint64_t conns_total, conns_open, handshakes, handshake_failures, timeouts, cancelled;
    uint64_t batch_hist[BATCH_N + 1], batches;
};

/* ------------------------------------------------------------------ */

static uint64_t now_ns(occ_enclave *enc)
{
    return enc->oc->now_ns(enc->oc->host);
}

static void count_code(occ_enclave *enc, int status)
{
    int k = 0;
    while (k < N_CODES && code_list[k] != status)
        k++;
    pthread_mutex_lock(&enc->stats_mu);
    enc->http_codes[k]++;
    pthread_mutex_unlock(&enc->stats_mu);
}

/* Charges (delta > 0) or returns request memory held by c; -1 when the
 * enclave-wide budget would be exceeded (the caller answers 503). */
static int mem_charge(occ_enclave *enc, conn *c, int64_t delta)
{
    pthread_mutex_lock(&enc->mem_mu);
    size_t old = c->held, now = (size_t)((int64_t)old + delta);
    size_t oc = old > REQ_FREE_PER_CONN ? old - REQ_FREE_PER_CONN : 0;
    size_t nc = now > REQ_FREE_PER_CONN ? now - REQ_FREE_PER_CONN : 0;
    if (nc > oc && (nc - oc > enc->req_budget || enc->req_used > enc->req_budget - (nc - oc))) {
        enc->req_refused++;
        pthread_mutex_unlock(&enc->mem_mu);
        return -1;
    }
    enc->req_used = enc->req_used + nc - oc;
    if (enc->req_used > enc->req_peak)
        enc->req_peak = enc->req_used;
    c->held = now;
    pthread_mutex_unlock(&enc->mem_mu);
    return 0;
}

static int http_reserve(void *ctx, int64_t delta)
{
    conn *c = ctx;
    return mem_charge(c->enc, c, delta);
}

static srv_model *find_model(occ_enclave *enc, const char *name, size_t len);

/* The largest body a request may send, from its route: an inference what
 * its model's inputs need (an unknown model: the largest of them, so that
 * it is answered 404), anything else 64 KiB (no other endpoint takes one). */
static size_t http_limit(void *ctx, const char *method, const char *path)
{
    conn *c = ctx;
    occ_enclave *enc = c->enc;
    static const char pre[] = "/v2/models/";
    const size_t other = (size_t)64 << 10;
    if (strcmp(method, "POST") || strncmp(path, pre, sizeof pre - 1))
        return other;
    const char *name = path + sizeof pre - 1;
    size_t nlen = strcspn(name, "/");
    const char *rest = name + nlen;
    if (!strncmp(rest, "/versions/", 10))
        rest += 10 + strcspn(rest + 10, "/");
    if (strcmp(rest, "/infer"))
        return other;
    srv_model *mdl = find_model(enc, name, nlen);
    if (mdl)
        return mdl->max_body;
    size_t most = other;
    for (size_t i = 0; i < enc->n_models; i++)
        if (enc->models[i].max_body > most)
            most = enc->models[i].max_body;
    return most;
}

static occ_status engine_read(void *ctx, uint64_t offset, void *dst, uint64_t size, occ_error *e)
{
    read_ctx *r = ctx;
    return r->oc->read_chunk(r->oc->host, r->pack_id, offset, dst, size, e);
}

/* ---------------- connections ---------------- */

static conn *conn_get(occ_enclave *enc, uint64_t id)
{
    pthread_mutex_lock(&enc->conn_mu);
    conn *c = enc->buckets[id % N_BUCKETS];
    while (c && c->id != id)
        c = c->next;
    if (c)
        c->refs++;
    pthread_mutex_unlock(&enc->conn_mu);
    return c;
}

static void conn_destroy(conn *c)
{
    SSL_free(c->ssl);
    occ_http_free(c->http);
    pthread_mutex_destroy(&c->mu);
    OPENSSL_cleanse(c, sizeof *c);
    free(c);
}

static void conn_put(occ_enclave *enc, conn *c)
{
    pthread_mutex_lock(&enc->conn_mu);
    int last = --c->refs == 0;
    pthread_mutex_unlock(&enc->conn_mu);
    if (last)
        conn_destroy(c);
}

/* Sends what TLS has written (ciphertext) to the host. c->mu held. */
static void flush(occ_enclave *enc, conn *c)
{
    if (!c->wbio)
        return;
    char *p = NULL;
    long n = BIO_get_mem_data(c->wbio, &p);
    if (n <= 0)
        return;
    if (!c->closed && enc->oc->send(enc->oc->host, c->id, p, (size_t)n, NULL))
        c->closed = 1; /* the host dropped it */
    (void)BIO_reset(c->wbio);
}

/* Marks whether a request is on its way on c: workers filling a batch wait
 * for such requests (batch_fill_ns) rather than start a weight pass without
 * them. c->mu held. */
static void set_awaited(occ_enclave *enc, conn *c, int on)
{
    if (!on)
        c->answered_ns = 0;
    if (c->awaited == on && !on)
        return;
    pthread_mutex_lock(&enc->q_mu);
    if (on) /* (again): a request on its way made progress */
        enc->last_progress_ns = now_ns(enc);
    if (c->awaited == on) {
        pthread_mutex_unlock(&enc->q_mu);
        return;
    }
    c->awaited = on;
    if (on) {
        enc->n_awaited++;
    } else {
        enc->n_awaited--;
        pthread_cond_broadcast(&enc->q_cv); /* a worker filling a batch stops waiting for it */
    }
    pthread_mutex_unlock(&enc->q_mu);
}

static void conn_close_locked(occ_enclave *enc, conn *c, int notify)
{
    set_awaited(enc, c, 0);
    if (c->closed)
        return;
    if (notify && c->ssl && c->hs_done) {
        (void)SSL_shutdown(c->ssl);
        ERR_clear_error();
    }
    flush(enc, c);
    c->closed = 1;
    enc->oc->close(enc->oc->host, c->id);
}

/* Writes a complete HTTP response into TLS (or plaintext for metrics). */
static void respond(occ_enclave *enc, conn *c, int status, const char *ctype, const void *body, size_t size,
                    long long header_len, int keep_alive)
{
    if (c->closed)
        return;
    char head[512];
    int hn = snprintf(head, sizeof head, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n", status,
                      occ_http_reason(status), ctype, size);
    if (header_len >= 0)
        hn += snprintf(head + hn, sizeof head - (size_t)hn, "Inference-Header-Content-Length: %lld\r\n", header_len);
    hn += snprintf(head + hn, sizeof head - (size_t)hn, "%s\r\n", keep_alive ? "" : "Connection: close\r\n");
    uint8_t *buf = malloc((size_t)hn + size);
    if (!buf) {
        conn_close_locked(enc, c, 0);
        return;
    }
    memcpy(buf, head, (size_t)hn);
    if (size)
        memcpy(buf + hn, body, size);
    size_t total = (size_t)hn + size;
    if (!c->metrics)
        count_code(enc, status);
    if (c->metrics) {
        if (enc->oc->send(enc->oc->host, c->id, buf, total, NULL))
            c->closed = 1;
    } else {
        size_t off = 0;
        while (off < total) {
            size_t n = total - off > (1u << 30) ? (1u << 30) : total - off;
            int w = SSL_write(c->ssl, buf + off, (int)n);
            if (w <= 0) {
                ERR_clear_error();
                break;
            }
            off += (size_t)w;
        }
        flush(enc, c);
    }
    OPENSSL_cleanse(buf, total); /* a response is the client's data */
    free(buf);
    if (!keep_alive)
        conn_close_locked(enc, c, 1);
}

static void respond_json(occ_enclave *enc, conn *c, int status, char *json, int keep_alive)
{
    if (!json) {
        static const char oom[] = "{\"error\":\"out of memory\"}";
        respond(enc, c, 503, "application/json", oom, sizeof oom - 1, -1, 0);
        return;
    }
    size_t n = strlen(json);
    respond(enc, c, status, "application/json", json, n, -1, keep_alive);
    OPENSSL_cleanse(json, n);
    free(json);
}

static void respond_error(occ_enclave *enc, conn *c, int status, const char *msg, int keep_alive)
{
    respond_json(enc, c, status, occ_kserve_error_json(msg), keep_alive);
}

/* ---------------- routing ---------------- */

static srv_model *find_model(occ_enclave *enc, const char *name, size_t len)
{
    for (size_t i = 0; i < enc->n_models; i++)
        if (strlen(enc->models[i].name) == len && !memcmp(enc->models[i].name, name, len))
            return &enc->models[i];
    return NULL;
}

static char *simple_json(const char *fmt, const char *a)
{
    size_t n = strlen(fmt) + (a ? strlen(a) : 0) + 1;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, fmt, a ? a : "");
    return s;
}

static job *job_new(occ_enclave *enc, conn *c, srv_model *mdl)
{
    const occ_model *m = mdl->m;
    size_t head = sizeof(job) + (m->n_inputs + m->n_outputs) * sizeof(void *);
    head = (head + 63) & ~(size_t)63;
    size_t total = head + mdl->job_bytes;
    if (mem_charge(enc, c, (int64_t)total))
        return NULL;
    /* the tensors are not zeroed: the decoder writes every input byte (or
     * fails the request) and the engine every output byte */
    job *j = occ_fault_hit(OCC_FAULT_REQ_ALLOC) ? NULL : malloc(total);
    if (!j) {
        (void)mem_charge(enc, c, -(int64_t)total);
        return NULL;
    }
    memset(j, 0, head);
    j->charged = c;
    j->charge = total;
    j->in = (void **)(j + 1);
    j->out = j->in + m->n_inputs;
    uint8_t *p = (uint8_t *)j + head;
    for (uint32_t i = 0; i < m->n_inputs; i++) {
        j->in[i] = p;
        p += TENSOR_ALIGN(m->tensors[m->inputs[i]].size);
    }
    for (uint32_t i = 0; i < m->n_outputs; i++) {
        j->out[i] = p;
        p += TENSOR_ALIGN(m->tensors[m->outputs[i]].size);
    }
    j->mdl = mdl;
    return j;
}

/* Before the connection it is charged to is released. */
static void job_free(occ_enclave *enc, job *j)
{
    if (!j)
        return;
    /* inputs and outputs (contiguous after the header) are the client's data */
    OPENSSL_cleanse(j->in[0], j->mdl->job_bytes);
    if (j->charged)
        (void)mem_charge(enc, j->charged, -(int64_t)j->charge);
    free(j);
}

/* Returns 1 when the request was queued (the connection is busy). c->mu held. */
static int dispatch(occ_enclave *enc, conn *c, const occ_http_request *r)
{
    const char *p = r->path;
    int ka = r->keep_alive;
    int get = !strcmp(r->method, "GET"), post = !strcmp(r->method, "POST");
    if (!strcmp(p, "/v2/health/live") || !strcmp(p, "/v2/health/ready") || !strcmp(p, "/v2")) {
        if (!get) {
            respond_error(enc, c, 405, "use GET", ka);
        } else if (!strcmp(p, "/v2")) {
            respond_json(enc, c, 200,
                         simple_json("{\"name\":\"occlumency\",\"version\":\"0.1.0\",\"extensions\":"
                                     "[\"binary_tensor_data\",\"occ_attestation\"]%s}",
                                     NULL),
                         ka);
        } else {
            respond_json(enc, c, 200,
                         simple_json(strstr(p, "live") ? "{\"live\":true%s}" : "{\"ready\":true%s}", NULL), ka);
        }
        return 0;
    }
    static const char pre[] = "/v2/models/";
    if (strncmp(p, pre, sizeof pre - 1)) {
        respond_error(enc, c, 404, "no such endpoint", ka);
        return 0;
    }
    const char *name = p + sizeof pre - 1;
    size_t nlen = strcspn(name, "/");
    const char *rest = name + nlen;
    if (!strncmp(rest, "/versions/", 10)) { /* /versions/1 is the only version */
        const char *v = rest + 10;
        size_t vl = strcspn(v, "/");
        if (vl != 1 || v[0] != '1') {
            respond_error(enc, c, 404, "unknown model version (this server has version 1)", ka);
            return 0;
        }
        rest = v + vl;
    }
    srv_model *mdl = find_model(enc, name, nlen);
    if (!mdl) {
        char msg[200];
        snprintf(msg, sizeof msg, "unknown model '%.*s'", (int)(nlen > 100 ? 100 : nlen), name);
        respond_error(enc, c, 404, msg, ka);
        return 0;
    }
    if (!strcmp(rest, "") || !strcmp(rest, "/ready") || !strcmp(rest, "/occ")) {
        if (!get) {
            respond_error(enc, c, 405, "use GET", ka);
        } else if (!*rest) {
            respond_json(enc, c, 200, occ_kserve_model_metadata(mdl->m, mdl->name), ka);
        } else if (!strcmp(rest, "/ready")) {
            respond_json(enc, c, 200, occ_kserve_model_ready(mdl->name), ka);
        } else {
            char bh[65];
            occ_hex(enc->binding, 32, bh);
            respond_json(enc, c, 200, occ_kserve_model_occ(mdl->m, mdl->name, bh), ka);
        }
        return 0;
    }
    if (strcmp(rest, "/infer")) {
        respond_error(enc, c, 404, "no such endpoint", ka);
        return 0;
    }
    if (!post) {
        respond_error(enc, c, 405, "use POST for infer", ka);
        return 0;
    }
    job *j = job_new(enc, c, mdl);
    if (!j) {
        respond_error(enc, c, 503, "server busy: no request memory left (or out of memory), retry later", 0);
        return 0;
    }
    /* the JSON tree is bounded before it is built: at most the values the
     * inputs need (the decoder counts them first), each a cJSON node */
    size_t json_size = r->inference_header_length >= 0 && (uint64_t)r->inference_header_length < r->body_size
                           ? (size_t)r->inference_header_length
                           : r->body_size;
    size_t nodes = json_size / 2 + 1 < mdl->max_json_values ? json_size / 2 + 1 : mdl->max_json_values;
    int64_t tree = (int64_t)(nodes * JSON_NODE_COST + json_size);
    if (mem_charge(enc, c, tree)) {
        job_free(enc, j);
        respond_error(enc, c, 503, "server busy: no request memory left, retry later", 0);
        return 0;
    }
    occ_error e = {0};
    occ_status dst = occ_kserve_decode_infer(mdl->m, r->body, r->body_size, r->inference_header_length,
                                             mdl->max_json_values, (void *const *)j->in, &j->req, &e);
    (void)mem_charge(enc, c, -tree);
    if (dst) {
        job_free(enc, j);
        pthread_mutex_lock(&enc->stats_mu);
        mdl->errors++;
        pthread_mutex_unlock(&enc->stats_mu);
        respond_error(enc, c, 400, e.msg, ka);
        return 0;
    }
    j->keep_alive = ka;
    j->t_enqueue = now_ns(enc);
    pthread_mutex_lock(&enc->q_mu);
    if (enc->q_len >= enc->max_queue || enc->stopping) {
        pthread_mutex_unlock(&enc->q_mu);
        job_free(enc, j);
        respond_error(enc, c, 503, "server busy: the inference queue is full, retry later", ka);
        return 0;
    }
    pthread_mutex_lock(&enc->conn_mu);
    c->refs++;
    pthread_mutex_unlock(&enc->conn_mu);
    j->c = c;
    if (enc->q_tail)
        enc->q_tail->next = j;
    else
        enc->q_head = j;
    enc->q_tail = j;
    enc->q_len++;
    pthread_cond_signal(&enc->q_cv);
    pthread_mutex_unlock(&enc->q_mu);
    c->busy = 1;
    return 1;
}

/* Answers every complete buffered request until one is queued.
 * Returns 1 when the connection is busy or closed. c->mu held. */
static int handle_ready(occ_enclave *enc, conn *c)
{
    const occ_http_request *r;
    while (!c->closed && (r = occ_http_ready(c->http))) {
        c->req_start_ns = 0;
        int queued = dispatch(enc, c, r);
        set_awaited(enc, c, 0); /* after the enqueue: a worker filling a batch finds it queued */
        if (queued)
            return 1;
        int hs = 0;
        occ_error e = {0};
        if (occ_http_next(c->http, &hs, &e)) {
            respond_error(enc, c, hs, e.msg, 0);
            return 1;
        }
    }
    int partial = !c->closed && occ_http_partial(c->http);
    uint64_t now = partial ? now_ns(enc) : 0;
    if (partial && !c->req_start_ns)
        c->req_start_ns = now;
    /* a request that has been arriving for longer than a batch would wait
     * for it is slow (or trickled on purpose): batches do not wait for it */
    if (partial && now - c->req_start_ns > enc->batch_fill_ns)
        partial = 0;
    if (partial || !c->answered_ns) /* else: just answered, still expected back */
        set_awaited(enc, c, partial);
    return c->closed;
}

/* Reads plaintext out of TLS and serves it. c->mu held. */
static void pump(occ_enclave *enc, conn *c)
{
    if (c->closed)
        return;
    if (!c->hs_done) {
        int r = SSL_do_handshake(c->ssl);
        if (r != 1) {
            int err = SSL_get_error(c->ssl, r);
            ERR_clear_error();
            if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
                flush(enc, c);
                return;
            }
            pthread_mutex_lock(&enc->stats_mu);
            enc->handshake_failures++;
            pthread_mutex_unlock(&enc->stats_mu);
            conn_close_locked(enc, c, 0); /* flushes the alert, if any */
            return;
        }
        c->hs_done = 1;
        c->req_start_ns = 0;
        pthread_mutex_lock(&enc->stats_mu);
        enc->handshakes++;
        pthread_mutex_unlock(&enc->stats_mu);
    }
    char buf[16384];
    while (!c->closed && !c->busy) {
        if (handle_ready(enc, c))
            break;
        /* a request body is decrypted straight into the request (no copy
         * through buf); everything else goes through buf */
        size_t want = 0;
        uint8_t *dst = occ_http_body_dest(c->http, &want);
        int n = dst ? SSL_read(c->ssl, dst, want > INT_MAX ? INT_MAX : (int)want)
                    : SSL_read(c->ssl, buf, sizeof buf);
        if (n <= 0) {
            int err = SSL_get_error(c->ssl, n);
            ERR_clear_error();
            if (err == SSL_ERROR_WANT_READ)
                break;
            /* close_notify or a TLS error: half-sent requests are dropped */
            conn_close_locked(enc, c, err == SSL_ERROR_ZERO_RETURN);
            break;
        }
        int hs = 0;
        occ_error e = {0};
        occ_status st = occ_http_feed(c->http, dst ? dst : (uint8_t *)buf, (size_t)n, &hs, &e);
        if (!dst)
            OPENSSL_cleanse(buf, (size_t)n);
        if (st) {
            respond_error(enc, c, hs ? hs : 400, e.msg, 0);
            break;
        }
        if (occ_http_take_expect_continue(c->http)) {
            static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
            if (SSL_write(c->ssl, cont, (int)sizeof cont - 1) <= 0)
                ERR_clear_error();
        }
    }
    flush(enc, c);
}

/* ---------------- metrics port (plaintext) ---------------- */

static void metrics_data(occ_enclave *enc, conn *c, const void *buf, size_t size)
{
    size_t n = size < sizeof c->mreq - 1 - c->mlen ? size : sizeof c->mreq - 1 - c->mlen;
    memcpy(c->mreq + c->mlen, buf, n);
    c->mlen += n;
    c->mreq[c->mlen] = 0;
    if (!strstr(c->mreq, "\r\n\r\n") && !strstr(c->mreq, "\n\n")) {
        if (c->mlen >= sizeof c->mreq - 1)
            respond_error(enc, c, 431, "request too large", 0);
        return;
    }
    if (!strncmp(c->mreq, "GET /metrics ", 13) || !strncmp(c->mreq, "GET /metrics?", 13)) {
        char *text = occ_enclave_metrics(enc);
        if (!text) {
            respond_error(enc, c, 503, "out of memory", 0);
            return;
        }
        respond(enc, c, 200, "text/plain; version=0.0.4", text, strlen(text), -1, 0);
        free(text);
    } else {
        respond_error(enc, c, 404, "only GET /metrics here", 0);
    }
}

/* ---------------- ecalls ---------------- */

static occ_status ec_conn_open(void *p, uint64_t id, occ_error *e)
{
    occ_enclave *enc = p;
    conn *c = calloc(1, sizeof *c);
    if (!c)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    c->id = id;
    c->refs = 1;
    pthread_mutex_init(&c->mu, NULL);
    c->metrics = (id & OCC_CONN_METRICS_BIT) != 0;
    if (!c->metrics) {
        BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
        c->ssl = SSL_new(enc->ctx);
        c->enc = enc;
        if (!rb || !wb || !c->ssl || occ_http_new(enc->max_body, &c->http, e)) {
            BIO_free(rb);
            BIO_free(wb);
            ERR_clear_error();
            conn_destroy(c);
            return e && e->status ? e->status : occ_fail(e, OCC_ERR_NOMEM, "out of memory for a connection");
        }
        occ_http_set_hooks(c->http, http_limit, http_reserve, c);
        BIO_set_mem_eof_return(rb, -1);
        BIO_set_mem_eof_return(wb, -1);
        SSL_set_bio(c->ssl, rb, wb);
        SSL_set_accept_state(c->ssl);
        c->wbio = wb;
    }
    c->req_start_ns = now_ns(enc);
    pthread_mutex_lock(&enc->conn_mu);
    conn *old = enc->buckets[id % N_BUCKETS];
    while (old && old->id != id)
        old = old->next;
    if (old) {
        pthread_mutex_unlock(&enc->conn_mu);
        conn_destroy(c);
        return occ_fail(e, OCC_ERR_INVALID, "connection id %llu is already open", (unsigned long long)id);
    }
    c->next = enc->buckets[id % N_BUCKETS];
    enc->buckets[id % N_BUCKETS] = c;
    pthread_mutex_unlock(&enc->conn_mu);
    pthread_mutex_lock(&enc->stats_mu);
    enc->conns_total++;
    enc->conns_open++;
    pthread_mutex_unlock(&enc->stats_mu);
    return OCC_OK;
}

static occ_status ec_conn_data(void *p, uint64_t id, const void *buf, size_t size, occ_error *e)
{
    occ_enclave *enc = p;
    conn *c = conn_get(enc, id);
    if (!c)
        return occ_fail(e, OCC_ERR_INVALID, "unknown connection %llu", (unsigned long long)id);
    pthread_mutex_lock(&c->mu);
    if (!c->closed && size) {
        if (c->metrics) {
            metrics_data(enc, c, buf, size);
        } else {
            BIO *rb = SSL_get_rbio(c->ssl);
            /* While busy nothing is read; bound what may pile up meanwhile
             * (pipelined requests: the HTTP layer keeps 256 KiB of them). */
            if (c->busy && (size_t)BIO_ctrl_pending(rb) + size > MAX_PENDING_WHILE_BUSY) {
                conn_close_locked(enc, c, 0);
            } else if (BIO_write(rb, buf, (int)size) != (int)size) {
                ERR_clear_error();
                conn_close_locked(enc, c, 0);
            } else if (!c->busy) {
                pump(enc, c);
            }
        }
    }
    pthread_mutex_unlock(&c->mu);
    conn_put(enc, c);
    return OCC_OK;
}

static void ec_conn_close(void *p, uint64_t id)
{
    occ_enclave *enc = p;
    pthread_mutex_lock(&enc->conn_mu);
    conn **pp = &enc->buckets[id % N_BUCKETS];
    while (*pp && (*pp)->id != id)
        pp = &(*pp)->next;
    conn *c = *pp;
    if (c)
        *pp = c->next;
    pthread_mutex_unlock(&enc->conn_mu);
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    set_awaited(enc, c, 0);
    c->closed = 1; /* the host is gone: nothing more is sent */
    pthread_mutex_unlock(&c->mu);
    pthread_mutex_lock(&enc->stats_mu);
    enc->conns_open--;
    pthread_mutex_unlock(&enc->stats_mu);
    conn_put(enc, c);
}

/* Closes connections whose handshake or request is overdue (408). */
static void sweep(occ_enclave *enc)
{
    uint64_t now = now_ns(enc);
    size_t cap = 64, n = 0;
    conn **list = malloc(cap * sizeof *list);
    if (!list)
        return;
    pthread_mutex_lock(&enc->conn_mu);
    for (size_t b = 0; b < N_BUCKETS; b++)
        for (conn *c = enc->buckets[b]; c; c = c->next) {
            if (n == cap) {
                conn **l2 = realloc(list, 2 * cap * sizeof *list);
                if (!l2)
                    goto stop;
                list = l2;
                cap *= 2;
            }
            c->refs++;
            list[n++] = c;
        }
stop:
    pthread_mutex_unlock(&enc->conn_mu);
    for (size_t i = 0; i < n; i++) {
        conn *c = list[i];
        pthread_mutex_lock(&c->mu);
        if (c->answered_ns && now - c->answered_ns > enc->batch_fill_ns && !occ_http_partial(c->http))
            set_awaited(enc, c, 0); /* answered a while ago and quiet since: not awaited any more */
        if (c->awaited && c->req_start_ns && now - c->req_start_ns > enc->batch_fill_ns)
            set_awaited(enc, c, 0); /* arriving for too long: not awaited */
        if (!c->closed && !c->busy && c->req_start_ns && now > c->req_start_ns &&
            now - c->req_start_ns > enc->req_timeout_ns) {
            pthread_mutex_lock(&enc->stats_mu);
            enc->timeouts++;
            pthread_mutex_unlock(&enc->stats_mu);
            if (c->hs_done || c->metrics)
                respond_error(enc, c, 408, "request timeout: the request did not arrive in time", 0);
            else
                conn_close_locked(enc, c, 0);
        }
        pthread_mutex_unlock(&c->mu);
        conn_put(enc, c);
    }
    free(list);
}

static void observe_latency(occ_enclave *enc, srv_model *mdl, double s, int ok, int integrity)
{
    pthread_mutex_lock(&enc->stats_mu);
    if (ok) {
        mdl->inferences++;
        int k = 0;
        while (k < LAT_N && s > lat_bounds[k])
            k++;
        mdl->lat_hist[k]++;
        mdl->lat_sum += s;
    } else {
        mdl->errors++;
        mdl->integrity_failures += integrity != 0;
    }
    pthread_mutex_unlock(&enc->stats_mu);
}

/* Runs the jobs (all for one model) and answers them. */
static void run_batch(occ_enclave *enc, job **jobs, size_t k)
{
    srv_model *mdl = jobs[0]->mdl;
    const occ_model *m = mdl->m;
    occ_status st = OCC_OK;
    occ_error e = {0};
    int failed[256] = {0};
    conn *conns[256];
    /* each member's error when run one by one (on the heap: 512 bytes
     * each is too much for an enclave thread's stack); without it every
     * failed member reports the last error */
    occ_error last = {0}, *errs = calloc(k, sizeof *errs);
    /* take a free engine of the pool (there are as many as workers, so one
     * is free unless another model's worker count exceeds the pool) */
    pthread_mutex_lock(&mdl->run_mu);
    uint32_t slot = 0;
    for (;;) {
        while (slot < mdl->n_eng && mdl->eng_busy[slot])
            slot++;
        if (slot < mdl->n_eng)
            break;
        pthread_cond_wait(&mdl->run_cv, &mdl->run_mu);
        slot = 0;
    }
    mdl->eng_busy[slot] = 1;
    pthread_mutex_unlock(&mdl->run_mu);
    occ_engine *eng = mdl->eng[slot];
    int batched = k > 1 && mdl->batch_n > 1;
    if (batched) {
        /* gather the k inputs; outputs come back the same way */
        void **ins = calloc(m->n_inputs + m->n_outputs, sizeof *ins);
        void **outs = ins ? ins + m->n_inputs : NULL;
        int ok = ins != NULL;
        for (uint32_t i = 0; ok && i < m->n_inputs; i++) {
            size_t sz = m->tensors[m->inputs[i]].size;
            if (!(ins[i] = malloc(sz * k)))
                ok = 0;
            for (size_t b = 0; ok && b < k; b++)
                memcpy((uint8_t *)ins[i] + b * sz, jobs[b]->in[i], sz);
        }
        for (uint32_t i = 0; ok && i < m->n_outputs; i++)
            if (!(outs[i] = malloc(m->tensors[m->outputs[i]].size * k)))
                ok = 0;
        st = ok ? occ_engine_run_n(eng, (uint32_t)k, (const void *const *)ins, (void *const *)outs, &e)
                : occ_fail(&e, OCC_ERR_NOMEM, "out of memory for the batch");
        for (uint32_t i = 0; ok && !st && i < m->n_outputs; i++) {
            size_t sz = m->tensors[m->outputs[i]].size;
            for (size_t b = 0; b < k; b++)
                memcpy(jobs[b]->out[i], (uint8_t *)outs[i] + b * sz, sz);
        }
        for (uint32_t i = 0; ins && i < m->n_inputs + m->n_outputs; i++) {
            if (ins[i]) {
                size_t sz = i < m->n_inputs ? m->tensors[m->inputs[i]].size
                                            : m->tensors[m->outputs[i - m->n_inputs]].size;
                OPENSSL_cleanse(ins[i], sz * k);
            }
            free(ins[i]);
        }
        free(ins);
        for (size_t b = 0; b < k; b++)
            failed[b] = st;
        /* a batch refused for one member's data (an id outside the
         * vocabulary, a zero divisor: OCC_ERR_INVALID) is run again request
         * by request, so only that member fails */
        if (st == OCC_ERR_INVALID)
            batched = 0;
    }
    if (!batched) {
        st = OCC_OK;
        for (size_t b = 0; b < k; b++) {
            failed[b] = occ_engine_run_n(eng, 1, (const void *const *)jobs[b]->in,
                                         (void *const *)jobs[b]->out, errs ? &errs[b] : &last);
            if (failed[b])
                st = failed[b];
        }
    }
    pthread_mutex_lock(&mdl->run_mu);
    mdl->eng_busy[slot] = 0;
    pthread_cond_signal(&mdl->run_cv);
    pthread_mutex_unlock(&mdl->run_mu);
    pthread_mutex_lock(&enc->stats_mu);
    enc->batches++;
    int bk = 0;
    while (bk < BATCH_N && (int)k > batch_bounds[bk])
        bk++;
    enc->batch_hist[bk]++;
    pthread_mutex_unlock(&enc->stats_mu);

    for (size_t b = 0; b < k; b++) {
        job *j = jobs[b];
        conn *c = j->c;
        uint8_t *body = NULL;
        size_t size = 0, jsize = 0;
        occ_error ee = {0};
        occ_status est = failed[b] ? failed[b]
                                   : occ_kserve_encode_infer(m, mdl->name, &j->req, (const void *const *)j->out,
                                                             &body, &size, &jsize, &ee);
        uint64_t t_done = now_ns(enc);
        double secs = (double)(t_done - j->t_enqueue) / 1e9;
        observe_latency(enc, mdl, secs, !est, failed[b] == OCC_ERR_INTEGRITY);
        pthread_mutex_lock(&c->mu);
        c->busy = 0;
        if (!c->closed) {
            if (est) {
                char msg[OCC_ERROR_MSG_SIZE + 32];
                const char *why = !failed[b] ? ee.msg : batched ? e.msg : errs ? errs[b].msg : last.msg;
                /* the request's data refused by an operator (an index outside
                 * its table, a zero divisor): the client's error, not ours */
                int bad_input = failed[b] == OCC_ERR_INVALID;
                snprintf(msg, sizeof msg, "%s: %s", bad_input ? "input refused" : "inference failed", why);
                respond_error(enc, c, bad_input ? 400 : 500, msg, j->keep_alive);
            } else {
                respond(enc, c, 200, size != jsize ? "application/octet-stream" : "application/json", body, size,
                        size != jsize ? (long long)jsize : -1, j->keep_alive);
            }
            int hs = 0;
            occ_error he = {0};
            if (!c->closed && occ_http_next(c->http, &hs, &he))
                respond_error(enc, c, hs, he.msg, 0);
            if (!c->closed && j->keep_alive && enc->batch_fill_ns && mdl->batch_n > 1) {
                /* a client in a loop sends its next request now */
                set_awaited(enc, c, 1);
                c->answered_ns = t_done;
            }
        } else {
            pthread_mutex_lock(&enc->stats_mu);
            enc->cancelled++;
            pthread_mutex_unlock(&enc->stats_mu);
        }
        pthread_mutex_unlock(&c->mu);
        if (body) {
            OPENSSL_cleanse(body, size);
            free(body);
        }
        job_free(enc, j);
        jobs[b] = NULL;
        conns[b] = c; /* its reference, until the second pass */
    }
    /* Only once the whole batch is answered: what each connection has
     * pipelined or sent meanwhile (parsing, even queueing, it must not
     * delay the answers of the others). */
    for (size_t b = 0; b < k; b++) {
        conn *c = conns[b];
        pthread_mutex_lock(&c->mu);
        if (!c->closed && !c->busy)
            pump(enc, c);
        pthread_mutex_unlock(&c->mu);
        conn_put(enc, c);
    }
    if (errs) /* the messages quote the requests' values (an index) */
        OPENSSL_cleanse(errs, k * sizeof *errs);
    free(errs);
}

static void deadline_ts(struct timespec *ts, uint64_t ns_from_now)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    uint64_t ns = (uint64_t)ts->tv_nsec + ns_from_now;
    ts->tv_sec += (time_t)(ns / 1000000000u);
    ts->tv_nsec = (long)(ns % 1000000000u);
}

static job *take_for_model(occ_enclave *enc, srv_model *mdl)
{
    job **pp = &enc->q_head, *prev = NULL;
    while (*pp && (*pp)->mdl != mdl) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    job *j = *pp;
    if (!j)
        return NULL;
    *pp = j->next;
    if (enc->q_tail == j)
        enc->q_tail = prev;
    j->next = NULL;
    enc->q_len--;
    return j;
}

static occ_status ec_run_worker(void *p, int index, occ_error *e)
{
    occ_enclave *enc = p;
    size_t cap = enc->max_batch;
    job **batch = calloc(cap, sizeof *batch);
    if (!batch)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    pthread_mutex_lock(&enc->q_mu);
    while (!enc->stopping) {
        uint64_t now = now_ns(enc);
        if (now - enc->last_sweep > 100000000u) {
            enc->last_sweep = now;
            pthread_mutex_unlock(&enc->q_mu);
            sweep(enc);
            pthread_mutex_lock(&enc->q_mu);
            continue;
        }
        if (!enc->q_head) {
            struct timespec ts;
            deadline_ts(&ts, 50000000u);
            pthread_cond_timedwait(&enc->q_cv, &enc->q_mu, &ts);
            continue;
        }
        srv_model *mdl = enc->q_head->mdl;
        size_t k = 0;
        batch[k++] = take_for_model(enc, mdl);
        size_t limit = cap < mdl->batch_n ? cap : mdl->batch_n;
        if (limit > 256)
            limit = 256;
        /* fill the batch: with what is queued; while requests are still
         * arriving (partly received), for up to batch_fill_ns, since a run
         * streams the weights once however many it serves; and for
         * batch_wait_ns in any case */
        struct timespec dl, fill;
        deadline_ts(&dl, enc->batch_wait_ns);
        deadline_ts(&fill, enc->batch_fill_ns);
        int fill_over = !enc->batch_fill_ns, wait_over = !enc->batch_wait_ns;
        while (k < limit && !enc->stopping) {
            job *j = take_for_model(enc, mdl);
            if (j) {
                batch[k++] = j;
                continue;
            }
            if (!fill_over && enc->n_awaited) {
                /* a connection that makes no progress holds nothing: wait
                 * only while some awaited request received bytes within the
                 * last quarter of the fill time */
                uint64_t idle_max = enc->batch_fill_ns / 4 ? enc->batch_fill_ns / 4 : 1;
                uint64_t idle = now_ns(enc) - enc->last_progress_ns;
                if (idle >= idle_max) {
                    fill_over = 1;
                    continue;
                }
                struct timespec step, *until = &fill;
                deadline_ts(&step, idle_max - idle);
                if (step.tv_sec < fill.tv_sec || (step.tv_sec == fill.tv_sec && step.tv_nsec < fill.tv_nsec))
                    until = &step;
                if (pthread_cond_timedwait(&enc->q_cv, &enc->q_mu, until) == ETIMEDOUT && until == &fill)
                    fill_over = 1;
                continue;
            }
            if (wait_over || pthread_cond_timedwait(&enc->q_cv, &enc->q_mu, &dl) == ETIMEDOUT)
                break;
        }
        pthread_mutex_unlock(&enc->q_mu);
        occ_fault_worker(); /* test-only: a slow worker */
        run_batch(enc, batch, k);
        pthread_mutex_lock(&enc->q_mu);
    }
    pthread_cond_broadcast(&enc->q_cv);
    pthread_mutex_unlock(&enc->q_mu);
    free(batch);
    return OCC_OK;
}

static void ec_stop(void *p)
{
    occ_enclave *enc = p;
    pthread_mutex_lock(&enc->q_mu);
    enc->stopping = 1;
    pthread_cond_broadcast(&enc->q_cv);
    pthread_mutex_unlock(&enc->q_mu);
}

void occ_enclave_ecalls(occ_enclave *enc, occ_ecalls *out)
{
    out->enclave = enc;
    out->conn_open = ec_conn_open;
    out->conn_data = ec_conn_data;
    out->conn_close = ec_conn_close;
    out->run_worker = ec_run_worker;
    out->stop = ec_stop;
}

/* ---------------- creation ---------------- */

/* Copies a string the host handed in into dst (cap bytes with the NUL),
 * reading each byte exactly once: checks and uses then see the same bytes
 * whatever the host does to its copy meanwhile. -1 when it is longer. */
static int copy_host_str(const char *src, char *dst, size_t cap)
{
    const volatile char *s = (const volatile char *)src;
    for (size_t i = 0; i < cap; i++) {
        char ch = s[i];
        dst[i] = ch;
        if (!ch)
            return 0;
    }
    dst[cap - 1] = 0;
    return -1;
}

#define MAX_ALT_NAME 253 /* a DNS name */

/* Adds subjectAltName entries and re-signs with the enclave's key. The
 * names are the host's: each is copied once, then checked and used. */
static occ_status add_alt_names(X509 *cert, EVP_PKEY *key, const char *const *host_names, size_t n, occ_error *e)
{
    if (n > 64)
        return occ_fail(e, OCC_ERR_INVALID, "at most 64 subjectAltName entries, got %zu", n);
    size_t len = 1 + n * (MAX_ALT_NAME + 1 + 6);
    char *spec = malloc(len);
    if (!spec)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    size_t off = 0;
    spec[0] = 0;
    for (size_t i = 0; i < n; i++) {
        const char *hp = host_names[i]; /* the array itself is read once per entry */
        char nm[MAX_ALT_NAME + 1];
        if (!hp || copy_host_str(hp, nm, sizeof nm) || !*nm || strpbrk(nm, ", \t=")) {
            free(spec);
            return occ_fail(e, OCC_ERR_INVALID, "bad subjectAltName '%.64s' (1..%d characters, no ',', '=' or blanks)",
                            hp ? nm : "", MAX_ALT_NAME);
        }
        ASN1_OCTET_STRING *ip = a2i_IPADDRESS(nm);
        off += (size_t)snprintf(spec + off, len - off, "%s%s:%s", i ? "," : "", ip ? "IP" : "DNS", nm);
        ASN1_OCTET_STRING_free(ip);
    }
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, spec);
    free(spec);
    occ_status st = OCC_OK;
    if (!ext || !X509_add_ext(cert, ext, -1) || X509_sign(cert, key, EVP_sha256()) <= 0)
        st = occ_fail(e, OCC_ERR_INVALID, "cannot add the subjectAltName entries to the certificate");
    X509_EXTENSION_free(ext);
    ERR_clear_error();
    return st;
}

/* The quote comes from the host's quoting service through the get_quote
 * ocall, which copies it into enclave memory: the certificate code then
 * reads only that copy (twice: two extensions). */
#define MAX_QUOTE ((size_t)64 << 10)

static occ_status quote_ocall(void *p, const uint8_t report_data[64], uint8_t **quote, size_t *quote_size,
                              occ_error *e)
{
    const occ_ocalls *oc = p;
    *quote = NULL;
    *quote_size = 0;
    uint8_t *q = malloc(MAX_QUOTE);
    if (!q)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory for the quote");
    size_t n = 0;
    occ_status st = oc->get_quote(oc->host, report_data, q, MAX_QUOTE, &n, e);
    if (!st && (!n || n > MAX_QUOTE))
        st = occ_fail(e, OCC_ERR_FORMAT, "the quoting service returned a quote of %zu bytes (1 byte..64 KiB)", n);
    if (st) {
        free(q);
        return st;
    }
    uint8_t *s = realloc(q, n);
    *quote = s ? s : q;
    *quote_size = n;
    return OCC_OK;
}

/* Does the engine honour opts.batch? Runs one batch of identical zero
 * inputs, output slot b pre-filled with byte 0xa0 + b, and checks every slot
 * came back equal (an engine that ignores batch writes only the first, and
 * unwritten slots differ). Works for outputs of any dtype. */
static int probe_batch(srv_model *mdl, occ_engine *eng)
{
    const occ_model *m = mdl->m;
    uint32_t n = mdl->batch_n;
    uint8_t **bufs = calloc(m->n_inputs + m->n_outputs, sizeof *bufs);
    int ok = bufs != NULL;
    for (uint32_t i = 0; ok && i < m->n_inputs; i++)
        ok = (bufs[i] = calloc(n, m->tensors[m->inputs[i]].size)) != NULL;
    for (uint32_t i = 0; ok && i < m->n_outputs; i++) {
        size_t sz = m->tensors[m->outputs[i]].size;
        ok = (bufs[m->n_inputs + i] = malloc(sz * n)) != NULL;
        for (uint32_t b = 0; ok && b < n; b++)
            memset(bufs[m->n_inputs + i] + b * sz, 0xa0 + (int)(b & 0x3f), sz);
    }
    occ_error e = {0};
    if (ok)
        ok = occ_engine_run(eng, (const void *const *)bufs, (void *const *)(bufs + m->n_inputs), &e) == OCC_OK;
    for (uint32_t i = 0; ok && i < m->n_outputs; i++) {
        const uint8_t *o = bufs[m->n_inputs + i];
        size_t sz = m->tensors[m->outputs[i]].size;
        for (uint32_t b = 1; ok && b < n; b++)
            ok = !memcmp(o, o + b * sz, sz);
    }
    for (uint32_t i = 0; bufs && i < m->n_inputs + m->n_outputs; i++)
        free(bufs[i]);
    free(bufs);
    return ok;
}

void occ_enclave_free(occ_enclave *enc)
{
    if (!enc)
        return;
    while (enc->q_head) {
        job *j = enc->q_head;
        enc->q_head = j->next;
        conn *c = j->c;
        job_free(enc, j);
        conn_put(enc, c);
    }
    for (size_t b = 0; b < N_BUCKETS; b++)
        while (enc->buckets[b]) {
            conn *c = enc->buckets[b];
            enc->buckets[b] = c->next;
            conn_destroy(c);
        }
    for (size_t i = 0; enc->models && i < enc->n_models; i++) {
        srv_model *mdl = &enc->models[i];
        for (uint32_t k = 0; mdl->eng && k < mdl->n_eng; k++)
            occ_engine_free(mdl->eng[k]);
        free(mdl->eng);
        free(mdl->eng_busy);
        occ_model_free(mdl->m);
        free(mdl->name);
        pthread_mutex_destroy(&mdl->run_mu);
        pthread_cond_destroy(&mdl->run_cv);
    }
    if (enc->oc)
        occ_untrusted_use(NULL); /* after its engines: their stashes went back to the host */
    free(enc->models);
    SSL_CTX_free(enc->ctx);
    EVP_PKEY_free(enc->key); /* frees (and OpenSSL clears) the private key */
    X509_free(enc->cert);
    OPENSSL_free(enc->cert_der);
    pthread_mutex_destroy(&enc->conn_mu);
    pthread_mutex_destroy(&enc->q_mu);
    pthread_cond_destroy(&enc->q_cv);
    pthread_mutex_destroy(&enc->stats_mu);
    pthread_mutex_destroy(&enc->mem_mu);
    free(enc);
}

/* The key of every encrypted pack, from the broker named by the host
 * (docs/keys.md). The target and the pin are copied in once; the key
 * server's refusal, an unreachable broker or a wrong answer fail the start. */
static occ_status fetch_keys(occ_enclave *enc, const occ_enclave_config *cfg, uint8_t (*keys)[32], uint8_t *have_key,
                             occ_error *e)
{
    char target[300] = "";
    if (cfg->key_server && (copy_host_str(cfg->key_server, target, sizeof target) || !target[0]))
        return occ_fail(e, OCC_ERR_INVALID, "--key-server: need HOST:PORT (at most %zu characters)",
                        sizeof target - 1);
    size_t ca_size = cfg->key_server_ca_size;
    uint8_t *ca = NULL;
    if (cfg->key_server_ca) {
        if (!ca_size || ca_size > (64u << 10))
            return occ_fail(e, OCC_ERR_INVALID, "--key-server-ca: 1..64 KiB of PEM, got %zu bytes", ca_size);
        if (!(ca = malloc(ca_size)))
            return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
        memcpy(ca, cfg->key_server_ca, ca_size);
    }
    occ_keyfetch_cfg kc = {target, ca, ca_size, enc->cert, enc->key};
    occ_status st = OCC_OK;
    size_t fetched = 0;
    uint8_t seal_key[32];
    int seal = 0;
    if (cfg->seal_key) {
        if (!enc->oc->seal_store || !enc->oc->seal_load) {
            free(ca);
            return occ_fail(e, OCC_ERR_INVALID, "this host provides no storage for sealed keys");
        }
        if ((st = cfg->seal_key(cfg->seal_ctx, seal_key, e))) {
            free(ca);
            return st;
        }
        seal = 1;
    }
    for (size_t i = 0; i < enc->n_models && !st; i++) {
        const occ_model *m = enc->models[i].m;
        if (!m->weights_crypt)
            continue; /* a plain pack takes no key */
        fetched++;
        if (seal) {
            /* a key sealed to this enclave by an earlier start: used only
             * when it opens and the attested manifest's key check accepts it */
            uint8_t blob[OCC_SEALED_KEY_SIZE + 1];
            size_t got = 0;
            occ_error se = {0};
            occ_wcrypt *wc = NULL;
            if (enc->oc->seal_load(enc->oc->host, m->model_id, blob, sizeof blob, &got, &se) == OCC_OK && got &&
                got <= sizeof blob && occ_key_unseal(seal_key, m->model_id, blob, got, keys[i], &se) == OCC_OK &&
                occ_wcrypt_for_model(m, keys[i], &wc, &se) == OCC_OK) {
                occ_wcrypt_free(wc);
                have_key[i] = 1;
                continue;
            }
            OPENSSL_cleanse(keys[i], 32);
        }
        if (!target[0]) {
            st = occ_fail(e, OCC_ERR_KEY, "model '%s': no key sealed to this enclave and no --key-server",
                          enc->models[i].name);
            break;
        }
        if ((st = occ_keyfetch(enc->oc, &kc, m->model_id, keys[i], e))) {
            occ_error_prefix(e, "model '%s'", enc->models[i].name);
            break;
        }
        have_key[i] = 1;
        if (seal) {
            uint8_t blob[OCC_SEALED_KEY_SIZE];
            if ((st = occ_key_seal(seal_key, m->model_id, keys[i], blob, e)) ||
                (st = enc->oc->seal_store(enc->oc->host, m->model_id, blob, sizeof blob, e)))
                occ_error_prefix(e, "model '%s': sealing its key", enc->models[i].name);
        }
    }
    OPENSSL_cleanse(seal_key, sizeof seal_key);
    free(ca);
    if (!st && !fetched)
        st = occ_fail(e, OCC_ERR_INVALID, "%s given but no model is an encrypted pack",
                      cfg->key_server ? "--key-server" : "--seal-keys");
    return st;
}

occ_status occ_enclave_create(const occ_enclave_config *host_cfg, const occ_ocalls *oc, occ_enclave **out,
                              occ_error *e)
{
    *out = NULL;
    if (!host_cfg)
        return occ_fail(e, OCC_ERR_INVALID, "enclave: no configuration");
    /* The configuration is the host's: read once, into the enclave. */
    occ_enclave_config cfg_copy;
    memcpy(&cfg_copy, host_cfg, sizeof cfg_copy);
    const occ_enclave_config *cfg = &cfg_copy;
    /* A function pointer from the host would be called inside the
     * enclave: the engine's chunk hook has no place in a server. (The
     * quote provider, the metrics hook and the memory provider still come
     * this way: docs/security.md, "Not done".) */
    if (cfg->engine.on_chunk || cfg->engine.hook_ctx)
        return occ_fail(e, OCC_ERR_INVALID, "enclave: the engine's on_chunk hook cannot cross the boundary");
    if (!oc || !oc->get_quote || !cfg->n_models || cfg->n_models > OCC_SERVER_MAX_MODELS)
        return occ_fail(e, OCC_ERR_INVALID, "enclave: need 1..64 models and the ocalls, get_quote included");
    occ_enclave *enc = calloc(1, sizeof *enc);
    if (!enc)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&enc->conn_mu, NULL);
    pthread_mutex_init(&enc->q_mu, NULL);
    pthread_mutex_init(&enc->stats_mu, NULL);
    pthread_mutex_init(&enc->mem_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&enc->q_cv, &ca);
    pthread_condattr_destroy(&ca);
    enc->oc = oc;
    occ_untrusted_use(oc); /* the engines' untrusted memory: from the host, range-checked */
    enc->max_batch = cfg->max_batch ? cfg->max_batch : 8;
    if (enc->max_batch > 256)
        enc->max_batch = 256;
    enc->batch_wait_ns = (uint64_t)cfg->batch_wait_us * 1000u;
    enc->batch_fill_ns = (uint64_t)cfg->batch_fill_us * 1000u;
    enc->max_body = cfg->max_body_size ? cfg->max_body_size : (64u << 20);
    enc->req_timeout_ns = (uint64_t)(cfg->request_timeout_ms ? cfg->request_timeout_ms : 30000) * 1000000u;
    enc->max_queue = cfg->max_queue ? cfg->max_queue : 1024;
    enc->req_budget = cfg->request_memory ? (size_t)cfg->request_memory : REQ_DEFAULT_BUDGET;
    enc->last_sweep = now_ns(enc);

    occ_status st = OCC_OK;
    uint8_t(*keys)[32] = NULL;
    uint8_t have_key[OCC_SERVER_MAX_MODELS] = {0};
    uint8_t(*ids)[32] = calloc(cfg->n_models, 32);
    enc->models = calloc(cfg->n_models, sizeof *enc->models);
    if (!ids || !enc->models) {
        st = occ_fail(e, OCC_ERR_NOMEM, "out of memory");
        goto fail;
    }
    enc->n_models = cfg->n_models;
    for (size_t i = 0; i < cfg->n_models; i++) {
        pthread_mutex_init(&enc->models[i].run_mu, NULL);
        pthread_cond_init(&enc->models[i].run_cv, NULL);
    }
    const uint32_t n_eng = cfg->engines ? cfg->engines : 1;
    if (n_eng > 256) {
        st = occ_fail(e, OCC_ERR_INVALID, "at most 256 engines per model, got %u", n_eng);
        goto fail;
    }
    enc->batching = 1;
    for (size_t i = 0; i < cfg->n_models; i++) {
        /* The host's description of the model is copied once (name, pack
         * id, manifest pointer and size; the manifest bytes by the decoder,
         * which parses and hashes only its own copy), then checked. */
        occ_server_model sm;
        memcpy(&sm, &cfg->models[i], sizeof sm);
        srv_model *mdl = &enc->models[i];
        char nm[OCC_SERVER_MAX_NAME + 1];
        if (!sm.name || copy_host_str(sm.name, nm, sizeof nm) || !occ_model_name_valid(nm, strlen(nm))) {
            /* bound in the certificate and part of URLs, JSON and metrics labels */
            st = occ_fail(e, OCC_ERR_INVALID,
                          "model name '%.128s': 1..%d printable ASCII characters without spaces or / ? # %% \" \\",
                          sm.name ? nm : "", OCC_MODEL_NAME_MAX);
            goto fail;
        }
        for (size_t k = 0; k < i; k++)
            if (!strcmp(enc->models[k].name, nm)) {
                st = occ_fail(e, OCC_ERR_INVALID, "model name '%s' given twice", nm);
                goto fail;
            }
        mdl->name = strdup(nm);
        mdl->rd.oc = oc;
        mdl->rd.pack_id = sm.pack_id;
        if (!mdl->name) {
            st = occ_fail(e, OCC_ERR_NOMEM, "out of memory");
            goto fail;
        }
        if ((st = occ_manifest_decode(sm.manifest, sm.manifest_size, &mdl->m, e))) {
            occ_error_prefix(e, "model '%s'", nm);
            goto fail;
        }
        memcpy(ids[i], mdl->m->model_id, 32);
        for (uint32_t k = 0; k < mdl->m->n_inputs; k++) {
            mdl->in_bytes += mdl->m->tensors[mdl->m->inputs[k]].size;
            mdl->job_bytes += TENSOR_ALIGN(mdl->m->tensors[mdl->m->inputs[k]].size);
        }
        for (uint32_t k = 0; k < mdl->m->n_outputs; k++) {
            mdl->out_bytes += mdl->m->tensors[mdl->m->outputs[k]].size;
            mdl->job_bytes += TENSOR_ALIGN(mdl->m->tensors[mdl->m->outputs[k]].size);
        }
        /* the largest infer body its inputs need: binary tensors after a
         * JSON header, or JSON values (48 bytes each covers any float
         * printed in full, an INT64 as a decimal string, "false", with
         * separators and indentation; one value per element whatever its type), plus 64 KiB
         * for the rest of the JSON; and the JSON values that may come */
        {
            size_t vals = 0, slack = (size_t)64 << 10;
            for (uint32_t k = 0; k < mdl->m->n_inputs; k++) {
                const occ_tensor *t = &mdl->m->tensors[mdl->m->inputs[k]];
                size_t es = occ_dtype_size(occ_tensor_dtype(t));
                vals += es ? (size_t)(t->size / es) : (size_t)t->size;
            }
            size_t json = vals > (SIZE_MAX - slack) / 48 ? SIZE_MAX : vals * 48 + slack;
            size_t bin = mdl->in_bytes + slack;
            size_t mb = json > bin ? json : bin;
            mdl->max_body = mb < enc->max_body ? mb : enc->max_body;
            mdl->max_json_values = vals + 4096u * (mdl->m->n_inputs + 1u);
        }
        if (!mdl->m->n_inputs || !mdl->m->n_outputs) {
            st = occ_fail(e, OCC_ERR_INVALID, "model '%s' has no inputs or no outputs", nm);
            goto fail;
        }
        /* every input and output must have a KServe datatype */
        for (uint32_t k = 0; k < mdl->m->n_inputs + mdl->m->n_outputs; k++) {
            const occ_tensor *t = &mdl->m->tensors[k < mdl->m->n_inputs
                                                       ? mdl->m->inputs[k]
                                                       : mdl->m->outputs[k - mdl->m->n_inputs]];
            if (!occ_kserve_datatype(occ_tensor_dtype(t))) {
                st = occ_fail(e, OCC_ERR_UNSUPPORTED, "model '%s': tensor '%s' is %s, which KServe cannot carry",
                              nm, t->name, occ_dtype_name(occ_tensor_dtype(t)));
                goto fail;
            }
        }
    }
    /* REPORTDATA[32..63] binds every (name, model id) pair; the certificate
     * carries the list (include/occ/binding.h, docs/attestation.md) */
    const char *names[OCC_BOUND_MODELS_MAX];
    if (cfg->n_models > OCC_BOUND_MODELS_MAX) {
        st = occ_fail(e, OCC_ERR_INVALID, "at most %d models per server, got %zu", OCC_BOUND_MODELS_MAX, cfg->n_models);
        goto fail;
    }
    for (size_t i = 0; i < cfg->n_models; i++)
        names[i] = enc->models[i].name; /* the enclave's copy */
    if ((st = occ_models_binding(names, (const uint8_t(*)[32])ids, cfg->n_models, enc->binding, e)))
        goto fail;

    /* The TLS key is made here, inside the enclave, and never leaves it. */
    int64_t nb = cfg->cert_not_before, na = cfg->cert_not_after;
    if (!nb && !na) {
        nb = (int64_t)time(NULL) - 3600;
        na = nb + 366 * 86400;
    }
    if ((st = occ_ratls_keygen(&enc->key, e)) ||
        (st = occ_ratls_make_cert_models(enc->key, names, (const uint8_t(*)[32])ids, cfg->n_models, quote_ocall,
                                         (void *)oc, nb, na, &enc->cert, e)))
        goto fail;
    if (cfg->n_alt_names && (st = add_alt_names(enc->cert, enc->key, cfg->alt_names, cfg->n_alt_names, e)))
        goto fail;
    int dl = i2d_X509(enc->cert, &enc->cert_der);
    if (dl <= 0) {
        st = occ_fail(e, OCC_ERR_INTERNAL, "cannot encode the certificate");
        goto fail;
    }
    enc->cert_der_size = (size_t)dl;

    /* Keys of encrypted packs from the model owner's broker (docs/keys.md),
     * fetched with the certificate just made, before any engine: they stay
     * in enclave memory and are wiped once the engines hold their own. */
    keys = calloc(cfg->n_models, 32);
    if (!keys) {
        st = occ_fail(e, OCC_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if ((cfg->key_server || cfg->seal_key) && (st = fetch_keys(enc, cfg, keys, have_key, e)))
        goto fail;
    for (size_t i = 0; i < cfg->n_models; i++) {
        srv_model *mdl = &enc->models[i];
        const char *nm = mdl->name;
        mdl->eng = calloc(n_eng, sizeof *mdl->eng);
        mdl->eng_busy = calloc(n_eng, 1);
        if (!mdl->eng || !mdl->eng_busy) {
            st = occ_fail(e, OCC_ERR_NOMEM, "out of memory");
            goto fail;
        }
        mdl->n_eng = n_eng;
        occ_engine_opts o = cfg->engine;
        if (have_key[i])
            o.weights_key = keys[i];
        if (o.mode == OCC_MODE_OCCLUMENCY) {
            /* the model's budget, split evenly: the pool together holds at most it */
            uint64_t total = o.budget ? o.budget : OCC_DEFAULT_BUDGET;
            o.budget = total / n_eng;
        }
        /* Batching: every engine of the pool plans for max_batch requests
         * and runs as many as are there (occ_engine_run_n). In occlumency
         * mode only for a model that streams weights at batch 1: a batch
         * shares one pass over them; with every weight resident it saves
         * nothing (mobilenet_v2: 6.96 ms per image at batch 1, 6.85 at 4)
         * and costs throughput in the server (docs/server.md). If the batch
         * does not fit the budget, or the engine does not honour it (the
         * probe), the whole pool runs one request at a time instead. */
        uint32_t want = enc->max_batch > 1 ? enc->max_batch : 1;
        if (want > 1 && o.mode == OCC_MODE_OCCLUMENCY) {
            /* the batch-1 plan only: no weights loaded twice */
            occ_engine *one = NULL;
            occ_error oe = {0};
            o.batch = 1;
            if (occ_engine_plan_only(mdl->m, &o, engine_read, &mdl->rd, &one, &oe) == OCC_OK) {
                occ_engine_stats os;
                occ_engine_get_stats(one, &os);
                if (!os.plan_stream_bytes) {
                    want = 1;
                    mdl->batch_note = "every weight resident: a batch would save nothing";
                }
            }
            occ_engine_free(one);
        }
        for (;;) {
            mdl->batch_n = o.batch = want;
            int ok = 1;
            for (uint32_t k = 0; ok && k < n_eng; k++) {
                if ((st = occ_engine_create(mdl->m, &o, engine_read, &mdl->rd, &mdl->eng[k], e)))
                    ok = 0;
                else if (want > 1 && k == 0 && !probe_batch(mdl, mdl->eng[0]))
                    ok = 0;
            }
            if (ok)
                break;
            for (uint32_t k = 0; k < n_eng; k++) {
                occ_engine_free(mdl->eng[k]);
                mdl->eng[k] = NULL;
            }
            /* only a batch that does not fit (or does not batch) falls back;
             * a failed read, allocation or check fails the start */
            if (want == 1 || (st && st != OCC_ERR_BUDGET)) {
                if (n_eng > 1 && o.mode == OCC_MODE_OCCLUMENCY)
                    occ_error_prefix(e, "model '%s' (each of its %u engines gets 1/%u of the budget: %llu bytes)",
                                     nm, n_eng, n_eng, (unsigned long long)o.budget);
                else
                    occ_error_prefix(e, "model '%s'", nm);
                if (!st)
                    st = OCC_ERR_INTERNAL;
                goto fail;
            }
            want = 1;
            mdl->batch_note = "a batch does not fit the budget, or the engine does not batch";
            st = OCC_OK;
            if (e)
                *e = (occ_error){0};
        }
        if (mdl->batch_n == 1)
            enc->batching = 0;
    }
    enc->ctx = SSL_CTX_new(TLS_server_method());
    if (!enc->ctx || !SSL_CTX_set_min_proto_version(enc->ctx, TLS1_3_VERSION) ||
        SSL_CTX_use_certificate(enc->ctx, enc->cert) != 1 || SSL_CTX_use_PrivateKey(enc->ctx, enc->key) != 1 ||
        SSL_CTX_check_private_key(enc->ctx) != 1) {
        st = occ_fail(e, OCC_ERR_INTERNAL, "TLS setup failed");
        goto fail;
    }
    SSL_CTX_set_num_tickets(enc->ctx, 0); /* no resumption: every connection sees the attested certificate */
    SSL_CTX_set_session_cache_mode(enc->ctx, SSL_SESS_CACHE_OFF);
    free(ids);
    OPENSSL_cleanse(keys, cfg->n_models * 32);
    free(keys);
    *out = enc;
    return OCC_OK;
fail:
    ERR_clear_error();
    free(ids);
    if (keys)
        OPENSSL_cleanse(keys, cfg->n_models * 32);
    free(keys);
    occ_enclave_free(enc);
    return st ? st : OCC_ERR_INTERNAL;
}

const uint8_t *occ_enclave_cert_der(const occ_enclave *enc, size_t *size)
{
    *size = enc->cert_der_size;
    return enc->cert_der;
}

void occ_enclave_binding(const occ_enclave *enc, uint8_t out[32])
{
    memcpy(out, enc->binding, 32);
}

int occ_enclave_batching(const occ_enclave *enc)
{
    return enc->batching;
}

uint32_t occ_enclave_model_batch(const occ_enclave *enc, size_t i, const char **note)
{
    if (i >= enc->n_models)
        return 0;
    if (note)
        *note = enc->models[i].batch_note ? enc->models[i].batch_note : "--max-batch 1";
    return enc->models[i].batch_n;
}

/* ---------------- metrics ---------------- */

typedef struct sbuf {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;

__attribute__((format(printf, 2, 3))) static void sb_printf(sbuf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
        va_end(ap);
        if (k < 0) {
            b->oom = 1;
            return;
        }
        if ((size_t)k < b->cap - b->n) {
            b->n += (size_t)k;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)k;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
}

char *occ_enclave_metrics(occ_enclave *enc)
{
    sbuf b = {malloc(8192), 0, 8192, 0};
    if (!b.p)
        return NULL;
    b.p[0] = 0;
    pthread_mutex_lock(&enc->q_mu);
    size_t qlen = enc->q_len;
    pthread_mutex_unlock(&enc->q_mu);
    pthread_mutex_lock(&enc->stats_mu);
    sb_printf(&b, "# HELP occ_http_responses_total HTTP responses by status code.\n"
                  "# TYPE occ_http_responses_total counter\n");
    for (int k = 0; k <= N_CODES; k++)
        if (k < N_CODES)
            sb_printf(&b, "occ_http_responses_total{code=\"%d\"} %llu\n", code_list[k],
                      (unsigned long long)enc->http_codes[k]);
        else
            sb_printf(&b, "occ_http_responses_total{code=\"other\"} %llu\n", (unsigned long long)enc->http_codes[k]);
    sb_printf(&b,
              "# TYPE occ_connections_total counter\nocc_connections_total %llu\n"
              "# TYPE occ_connections_open gauge\nocc_connections_open %llu\n"
              "# TYPE occ_tls_handshakes_total counter\nocc_tls_handshakes_total %llu\n"
              "# TYPE occ_tls_handshake_failures_total counter\nocc_tls_handshake_failures_total %llu\n"
              "# TYPE occ_request_timeouts_total counter\nocc_request_timeouts_total %llu\n"
              "# HELP occ_inferences_cancelled_total Inferences whose client left before the answer.\n"
              "# TYPE occ_inferences_cancelled_total counter\nocc_inferences_cancelled_total %llu\n"
              "# TYPE occ_queue_depth gauge\nocc_queue_depth %zu\n",
              (unsigned long long)enc->conns_total, (unsigned long long)enc->conns_open,
              (unsigned long long)enc->handshakes, (unsigned long long)enc->handshake_failures,
              (unsigned long long)enc->timeouts, (unsigned long long)enc->cancelled, qlen);
    pthread_mutex_lock(&enc->mem_mu);
    sb_printf(&b,
              "# HELP occ_request_memory_bytes Request memory drawn from --request-memory now.\n"
              "# TYPE occ_request_memory_bytes gauge\nocc_request_memory_bytes %zu\n"
              "# TYPE occ_request_memory_peak_bytes gauge\nocc_request_memory_peak_bytes %zu\n"
              "# TYPE occ_request_memory_limit_bytes gauge\nocc_request_memory_limit_bytes %zu\n"
              "# HELP occ_request_memory_refusals_total Requests refused (503) for want of request memory.\n"
              "# TYPE occ_request_memory_refusals_total counter\nocc_request_memory_refusals_total %llu\n",
              enc->req_used, enc->req_peak, enc->req_budget, (unsigned long long)enc->req_refused);
    pthread_mutex_unlock(&enc->mem_mu);
    sb_printf(&b, "# HELP occ_batch_size Requests per engine run.\n# TYPE occ_batch_size histogram\n");
    uint64_t cum = 0;
    for (int k = 0; k < BATCH_N; k++) {
        cum += enc->batch_hist[k];
        sb_printf(&b, "occ_batch_size_bucket{le=\"%d\"} %llu\n", batch_bounds[k], (unsigned long long)cum);
    }
    cum += enc->batch_hist[BATCH_N];
    sb_printf(&b, "occ_batch_size_bucket{le=\"+Inf\"} %llu\nocc_batch_size_count %llu\n", (unsigned long long)cum,
              (unsigned long long)enc->batches);
    sb_printf(&b, "# HELP occ_inferences_total Successful inferences.\n# TYPE occ_inferences_total counter\n"
                  "# HELP occ_inference_errors_total Refused or failed infer requests.\n"
                  "# TYPE occ_inference_errors_total counter\n"
                  "# HELP occ_inference_latency_seconds Queue + engine + encoding time.\n"
                  "# TYPE occ_inference_latency_seconds histogram\n");
    for (size_t i = 0; i < enc->n_models; i++) {
        srv_model *mdl = &enc->models[i];
        const char *nm = mdl->name;
        sb_printf(&b, "occ_inferences_total{model=\"%s\"} %llu\n", nm, (unsigned long long)mdl->inferences);
        sb_printf(&b, "occ_inference_errors_total{model=\"%s\"} %llu\n", nm, (unsigned long long)mdl->errors);
        cum = 0;
        for (int k = 0; k < LAT_N; k++) {
            cum += mdl->lat_hist[k];
            sb_printf(&b, "occ_inference_latency_seconds_bucket{model=\"%s\",le=\"%g\"} %llu\n", nm, lat_bounds[k],
                      (unsigned long long)cum);
        }
        cum += mdl->lat_hist[LAT_N];
        sb_printf(&b,
                  "occ_inference_latency_seconds_bucket{model=\"%s\",le=\"+Inf\"} %llu\n"
                  "occ_inference_latency_seconds_sum{model=\"%s\"} %.6f\n"
                  "occ_inference_latency_seconds_count{model=\"%s\"} %llu\n",
                  nm, (unsigned long long)cum, nm, mdl->lat_sum, nm, (unsigned long long)cum);
    }
    pthread_mutex_unlock(&enc->stats_mu);
    sb_printf(&b, "# TYPE occ_engine_integrity_failures_total counter\n# TYPE occ_engine_bytes_verified_total counter\n"
                  "# TYPE occ_engine_chunks_loaded_total counter\n# TYPE occ_engine_peak_enclave_bytes gauge\n"
                  "# TYPE occ_engine_batching gauge\n# TYPE occ_engines gauge\n");
    for (size_t i = 0; i < enc->n_models; i++) {
        srv_model *mdl = &enc->models[i];
        occ_engine_stats s1 = {0};
        for (uint32_t k = 0; k < mdl->n_eng; k++) {
            occ_engine_stats t = {0};
            occ_engine_get_stats(mdl->eng[k], &t);
            s1.integrity_failures += t.integrity_failures;
            s1.bytes_verified += t.bytes_verified;
            s1.chunks_loaded += t.chunks_loaded;
            s1.peak_enclave_bytes += t.peak_enclave_bytes;
        }
        const char *nm = mdl->name;
        sb_printf(&b, "occ_engine_integrity_failures_total{model=\"%s\"} %llu\n", nm,
                  (unsigned long long)s1.integrity_failures);
        sb_printf(&b, "occ_engine_bytes_verified_total{model=\"%s\"} %llu\n", nm,
                  (unsigned long long)s1.bytes_verified);
        sb_printf(&b, "occ_engine_chunks_loaded_total{model=\"%s\"} %llu\n", nm,
                  (unsigned long long)s1.chunks_loaded);
        sb_printf(&b, "occ_engine_peak_enclave_bytes{model=\"%s\"} %llu\n", nm,
                  (unsigned long long)s1.peak_enclave_bytes);
        sb_printf(&b, "occ_engine_batching{model=\"%s\"} %u\n", nm, mdl->batch_n);
        sb_printf(&b, "occ_engines{model=\"%s\"} %u\n", nm, mdl->n_eng);
    }
    if (enc->oc->metrics && !b.oom) {
        if (b.cap - b.n < 16384) {
            char *q = realloc(b.p, b.n + 16384);
            if (q) {
                b.p = q;
                b.cap = b.n + 16384;
            }
        }
        if (b.cap - b.n > 1) {
            size_t room = b.cap - b.n - 1;
            size_t n = enc->oc->metrics(enc->oc->host, b.p + b.n, room);
            if (n > room)
                n = room;
            /* the host's text: printable ASCII and newlines only */
            for (size_t i = 0; i < n; i++) {
                char ch = b.p[b.n + i];
                if ((ch < 0x20 && ch != '\n') || ch > 0x7e)
                    b.p[b.n + i] = '?';
            }
            b.n += n;
        }
        b.p[b.n] = 0;
    }
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
