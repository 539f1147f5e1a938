/* The enclave side of the inference server, private to src/enclave/ (the
 * public interface is include/occ/server.h). server.c was recut along its
 * threads, one role per file:
 *   server.c   creation and teardown: models, the engine pools, the
 *              certificate and the key fetch; the ecall table
 *   conn.c     connections: TLS over memory BIOs, pump/flush/respond,
 *              timeouts (the sweep), connection lifetime, the conn_* ecalls
 *   routes.c   HTTP dispatch: the route body limits, the /v2 endpoints
 *   reqmem.c   the enclave-wide request-memory account and the jobs charged to it
 *   batch.c    the batcher: queue, workers, batch filling, run_batch (engine pool)
 *   metrics.c  the statistics and their Prometheus text (the metrics port)
 * Threads and lock order: see the comment at the top of server.c. */
#ifndef OCC_ENCLAVE_SERVER_INT_H
#define OCC_ENCLAVE_SERVER_INT_H

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
     * run of k <= batch_n requests is occ_engine_run_n(k). Every engine is
     * a context on the model's one compiled model (its weights read,
     * verified and held once). */
    occ_compiled *compiled;
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

/* ---------------- shared between the files ---------------- */

/* server.c */
uint64_t occ_srv_now_ns(occ_enclave *enc);
/* One reading of the clock for a burst of work on this thread (server.c):
 * returns whether this call took it; release with that value. */
int occ_srv_clock_hold(occ_enclave *enc);
void occ_srv_clock_release(int taken);

/* reqmem.c */
int occ_srv_mem_charge(occ_enclave *enc, conn *c, int64_t delta);
job *occ_srv_job_new(occ_enclave *enc, conn *c, srv_model *mdl);
void occ_srv_job_free(occ_enclave *enc, job *j);

/* conn.c */
void occ_srv_conn_destroy(conn *c);
void occ_srv_conn_put(occ_enclave *enc, conn *c);
void occ_srv_set_awaited(occ_enclave *enc, conn *c, int on);
void occ_srv_respond(occ_enclave *enc, conn *c, int status, const char *ctype, const void *body, size_t size,
                     long long header_len, int keep_alive);
void occ_srv_respond_json(occ_enclave *enc, conn *c, int status, char *json, int keep_alive);
void occ_srv_respond_error(occ_enclave *enc, conn *c, int status, const char *msg, int keep_alive);
void occ_srv_pump(occ_enclave *enc, conn *c);
void occ_srv_sweep(occ_enclave *enc);
occ_status occ_srv_ec_conn_open(void *p, uint64_t id, occ_error *e);
occ_status occ_srv_ec_conn_data(void *p, uint64_t id, const void *buf, size_t size, occ_error *e);
void occ_srv_ec_conn_close(void *p, uint64_t id);

/* routes.c */
size_t occ_srv_http_limit(void *ctx, const char *method, const char *path);
srv_model *occ_srv_find_model(occ_enclave *enc, const char *name, size_t len);
int occ_srv_dispatch(occ_enclave *enc, conn *c, const occ_http_request *r);

/* batch.c */
occ_status occ_srv_ec_run_worker(void *p, int index, occ_error *e);
void occ_srv_ec_stop(void *p);

/* metrics.c */
void occ_srv_count_code(occ_enclave *enc, int status);
void occ_srv_metrics_data(occ_enclave *enc, conn *c, const void *buf, size_t size);
void occ_srv_observe_latency(occ_enclave *enc, srv_model *mdl, double s, int ok, int integrity);

#endif
