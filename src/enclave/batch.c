/* The batcher: the workers take jobs off the queue, fill a batch for one
 * model and run it on a free engine of the model's pool. */
#include "occ/crypto.h"
#include "enclave/server_int.h"

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
                occ_wipe(ins[i], sz * k);
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
        uint64_t t_done = occ_srv_now_ns(enc);
        double secs = (double)(t_done - j->t_enqueue) / 1e9;
        occ_srv_observe_latency(enc, mdl, secs, !est, failed[b] == OCC_ERR_INTEGRITY);
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
                occ_srv_respond_error(enc, c, bad_input ? 400 : 500, msg, j->keep_alive);
            } else {
                occ_srv_respond(enc, c, 200, size != jsize ? "application/octet-stream" : "application/json", body,
                                size, size != jsize ? (long long)jsize : -1, j->keep_alive);
            }
            int hs = 0;
            occ_error he = {0};
            if (!c->closed && occ_http_next(c->http, &hs, &he))
                occ_srv_respond_error(enc, c, hs, he.msg, 0);
            if (!c->closed && j->keep_alive && enc->batch_fill_ns && mdl->batch_n > 1) {
                /* a client in a loop sends its next request now */
                occ_srv_set_awaited(enc, c, 1);
                c->answered_ns = t_done;
            }
        } else {
            pthread_mutex_lock(&enc->stats_mu);
            enc->cancelled++;
            pthread_mutex_unlock(&enc->stats_mu);
        }
        pthread_mutex_unlock(&c->mu);
        if (body) {
            occ_wipe(body, size);
            free(body);
        }
        occ_srv_job_free(enc, j);
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
            occ_srv_pump(enc, c);
        pthread_mutex_unlock(&c->mu);
        occ_srv_conn_put(enc, c);
    }
    if (errs) /* the messages quote the requests' values (an index) */
        occ_wipe(errs, k * sizeof *errs);
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

occ_status occ_srv_ec_run_worker(void *p, int index, occ_error *e)
{
    occ_enclave *enc = p;
    size_t cap = enc->max_batch;
    job **batch = calloc(cap, sizeof *batch);
    if (!batch)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    pthread_mutex_lock(&enc->q_mu);
    while (!enc->stopping) {
        uint64_t now = occ_srv_now_ns(enc);
        if (now - enc->last_sweep > 100000000u) {
            enc->last_sweep = now;
            pthread_mutex_unlock(&enc->q_mu);
            occ_srv_sweep(enc);
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
                uint64_t idle = occ_srv_now_ns(enc) - enc->last_progress_ns;
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

void occ_srv_ec_stop(void *p)
{
    occ_enclave *enc = p;
    pthread_mutex_lock(&enc->q_mu);
    enc->stopping = 1;
    pthread_cond_broadcast(&enc->q_cv);
    pthread_mutex_unlock(&enc->q_mu);
}
