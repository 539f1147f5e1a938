/* Connections: TLS over memory BIOs (pump, flush, respond), the request
 * timeouts (the sweep), connection lifetime and the conn_* ecalls. */
#include "occ/crypto.h"
#include "enclave/server_int.h"

static int http_reserve(void *ctx, int64_t delta)
{
    conn *c = ctx;
    return occ_srv_mem_charge(c->enc, c, delta);
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

void occ_srv_conn_destroy(conn *c)
{
    SSL_free(c->ssl);
    occ_http_free(c->http);
    pthread_mutex_destroy(&c->mu);
    occ_wipe(c, sizeof *c);
    free(c);
}

void occ_srv_conn_put(occ_enclave *enc, conn *c)
{
    pthread_mutex_lock(&enc->conn_mu);
    int last = --c->refs == 0;
    pthread_mutex_unlock(&enc->conn_mu);
    if (last)
        occ_srv_conn_destroy(c);
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
void occ_srv_set_awaited(occ_enclave *enc, conn *c, int on)
{
    if (!on)
        c->answered_ns = 0;
    if (c->awaited == on && !on)
        return;
    pthread_mutex_lock(&enc->q_mu);
    if (on) /* (again): a request on its way made progress */
        enc->last_progress_ns = occ_srv_now_ns(enc);
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
    occ_srv_set_awaited(enc, c, 0);
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
void occ_srv_respond(occ_enclave *enc, conn *c, int status, const char *ctype, const void *body, size_t size,
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
        occ_srv_count_code(enc, status);
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
    occ_wipe(buf, total); /* a response is the client's data */
    free(buf);
    if (!keep_alive)
        conn_close_locked(enc, c, 1);
}

void occ_srv_respond_json(occ_enclave *enc, conn *c, int status, char *json, int keep_alive)
{
    if (!json) {
        static const char oom[] = "{\"error\":\"out of memory\"}";
        occ_srv_respond(enc, c, 503, "application/json", oom, sizeof oom - 1, -1, 0);
        return;
    }
    size_t n = strlen(json);
    occ_srv_respond(enc, c, status, "application/json", json, n, -1, keep_alive);
    occ_wipe(json, n);
    free(json);
}

void occ_srv_respond_error(occ_enclave *enc, conn *c, int status, const char *msg, int keep_alive)
{
    occ_srv_respond_json(enc, c, status, occ_kserve_error_json(msg), keep_alive);
}

/* Answers every complete buffered request until one is queued.
 * Returns 1 when the connection is busy or closed. c->mu held. */
static int handle_ready(occ_enclave *enc, conn *c)
{
    const occ_http_request *r;
    while (!c->closed && (r = occ_http_ready(c->http))) {
        c->req_start_ns = 0;
        int queued = occ_srv_dispatch(enc, c, r);
        occ_srv_set_awaited(enc, c, 0); /* after the enqueue: a worker filling a batch finds it queued */
        if (queued)
            return 1;
        int hs = 0;
        occ_error e = {0};
        if (occ_http_next(c->http, &hs, &e)) {
            occ_srv_respond_error(enc, c, hs, e.msg, 0);
            return 1;
        }
    }
    int partial = !c->closed && occ_http_partial(c->http);
    uint64_t now = partial ? occ_srv_now_ns(enc) : 0;
    if (partial && !c->req_start_ns)
        c->req_start_ns = now;
    /* a request that has been arriving for longer than a batch would wait
     * for it is slow (or trickled on purpose): batches do not wait for it */
    if (partial && now - c->req_start_ns > enc->batch_fill_ns)
        partial = 0;
    if (partial || !c->answered_ns) /* else: just answered, still expected back */
        occ_srv_set_awaited(enc, c, partial);
    return c->closed;
}

/* Reads plaintext out of TLS and serves it. c->mu held. */
static void pump(occ_enclave *enc, conn *c);

void occ_srv_pump(occ_enclave *enc, conn *c)
{
    if (c->closed)
        return;
    int taken = occ_srv_clock_hold(enc);
    pump(enc, c);
    occ_srv_clock_release(taken);
}

static void pump(occ_enclave *enc, conn *c)
{
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
            occ_wipe(buf, (size_t)n);
        if (st) {
            occ_srv_respond_error(enc, c, hs ? hs : 400, e.msg, 0);
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

/* ---------------- ecalls ---------------- */

occ_status occ_srv_ec_conn_open(void *p, uint64_t id, occ_error *e)
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
            occ_srv_conn_destroy(c);
            return e && e->status ? e->status : occ_fail(e, OCC_ERR_NOMEM, "out of memory for a connection");
        }
        occ_http_set_hooks(c->http, occ_srv_http_limit, http_reserve, c);
        BIO_set_mem_eof_return(rb, -1);
        BIO_set_mem_eof_return(wb, -1);
        SSL_set_bio(c->ssl, rb, wb);
        SSL_set_accept_state(c->ssl);
        c->wbio = wb;
    }
    c->req_start_ns = occ_srv_now_ns(enc);
    pthread_mutex_lock(&enc->conn_mu);
    conn *old = enc->buckets[id % N_BUCKETS];
    while (old && old->id != id)
        old = old->next;
    if (old) {
        pthread_mutex_unlock(&enc->conn_mu);
        occ_srv_conn_destroy(c);
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

occ_status occ_srv_ec_conn_data(void *p, uint64_t id, const void *buf, size_t size, occ_error *e)
{
    occ_enclave *enc = p;
    conn *c = conn_get(enc, id);
    if (!c)
        return occ_fail(e, OCC_ERR_INVALID, "unknown connection %llu", (unsigned long long)id);
    pthread_mutex_lock(&c->mu);
    if (!c->closed && size) {
        if (c->metrics) {
            occ_srv_metrics_data(enc, c, buf, size);
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
                occ_srv_pump(enc, c);
            }
        }
    }
    pthread_mutex_unlock(&c->mu);
    occ_srv_conn_put(enc, c);
    return OCC_OK;
}

void occ_srv_ec_conn_close(void *p, uint64_t id)
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
    occ_srv_set_awaited(enc, c, 0);
    c->closed = 1; /* the host is gone: nothing more is sent */
    pthread_mutex_unlock(&c->mu);
    pthread_mutex_lock(&enc->stats_mu);
    enc->conns_open--;
    pthread_mutex_unlock(&enc->stats_mu);
    occ_srv_conn_put(enc, c);
}

/* Closes connections whose handshake or request is overdue (408). */
void occ_srv_sweep(occ_enclave *enc)
{
    uint64_t now = occ_srv_now_ns(enc);
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
            occ_srv_set_awaited(enc, c, 0); /* answered a while ago and quiet since: not awaited any more */
        if (c->awaited && c->req_start_ns && now - c->req_start_ns > enc->batch_fill_ns)
            occ_srv_set_awaited(enc, c, 0); /* arriving for too long: not awaited */
        if (!c->closed && !c->busy && c->req_start_ns && now > c->req_start_ns &&
            now - c->req_start_ns > enc->req_timeout_ns) {
            pthread_mutex_lock(&enc->stats_mu);
            enc->timeouts++;
            pthread_mutex_unlock(&enc->stats_mu);
            if (c->hs_done || c->metrics)
                occ_srv_respond_error(enc, c, 408, "request timeout: the request did not arrive in time", 0);
            else
                conn_close_locked(enc, c, 0);
        }
        pthread_mutex_unlock(&c->mu);
        occ_srv_conn_put(enc, c);
    }
    free(list);
}
