/* Metrics: the counters kept under enc->stats_mu and their Prometheus
 * text, served on the plaintext metrics port. */
#include "enclave/server_int.h"

void occ_srv_count_code(occ_enclave *enc, int status)
{
    int k = 0;
    while (k < N_CODES && code_list[k] != status)
        k++;
    pthread_mutex_lock(&enc->stats_mu);
    enc->http_codes[k]++;
    pthread_mutex_unlock(&enc->stats_mu);
}

/* ---------------- metrics port (plaintext) ---------------- */

void occ_srv_metrics_data(occ_enclave *enc, conn *c, const void *buf, size_t size)
{
    size_t n = size < sizeof c->mreq - 1 - c->mlen ? size : sizeof c->mreq - 1 - c->mlen;
    memcpy(c->mreq + c->mlen, buf, n);
    c->mlen += n;
    c->mreq[c->mlen] = 0;
    if (!strstr(c->mreq, "\r\n\r\n") && !strstr(c->mreq, "\n\n")) {
        if (c->mlen >= sizeof c->mreq - 1)
            occ_srv_respond_error(enc, c, 431, "request too large", 0);
        return;
    }
    if (!strncmp(c->mreq, "GET /metrics ", 13) || !strncmp(c->mreq, "GET /metrics?", 13)) {
        char *text = occ_enclave_metrics(enc);
        if (!text) {
            occ_srv_respond_error(enc, c, 503, "out of memory", 0);
            return;
        }
        occ_srv_respond(enc, c, 200, "text/plain; version=0.0.4", text, strlen(text), -1, 0);
        free(text);
    } else {
        occ_srv_respond_error(enc, c, 404, "only GET /metrics here", 0);
    }
}

void occ_srv_observe_latency(occ_enclave *enc, srv_model *mdl, double s, int ok, int integrity)
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
        /* the engines are contexts on one compiled model: its loads and
         * bytes once (each engine's stats include them), each engine's own
         * besides */
        occ_engine_stats c = {0}, s1;
        occ_compiled_get_stats(mdl->compiled, &c);
        s1 = c;
        s1.peak_enclave_bytes = c.enclave_bytes;
        for (uint32_t k = 0; k < mdl->n_eng; k++) {
            occ_engine_stats t = {0};
            occ_engine_get_stats(mdl->eng[k], &t);
            s1.integrity_failures += t.integrity_failures - c.integrity_failures;
            s1.bytes_verified += t.bytes_verified - c.bytes_verified;
            s1.chunks_loaded += t.chunks_loaded - c.chunks_loaded;
            s1.peak_enclave_bytes += t.peak_enclave_bytes - t.shared_bytes;
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
