/* HTTP routing: the body limit of each route, dispatch to the /v2
 * endpoints; an inference is decoded into a job and queued. */
#include "enclave/server_int.h"

/* The largest body a request may send, from its route: an inference what
 * its model's inputs need (an unknown model: the largest of them, so that
 * it is answered 404), anything else 64 KiB (no other endpoint takes one). */
size_t occ_srv_http_limit(void *ctx, const char *method, const char *path)
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
    srv_model *mdl = occ_srv_find_model(enc, name, nlen);
    if (mdl)
        return mdl->max_body;
    size_t most = other;
    for (size_t i = 0; i < enc->n_models; i++)
        if (enc->models[i].max_body > most)
            most = enc->models[i].max_body;
    return most;
}

/* ---------------- routing ---------------- */

srv_model *occ_srv_find_model(occ_enclave *enc, const char *name, size_t len)
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
/* Returns 1 when the request was queued (the connection is busy). c->mu held. */
int occ_srv_dispatch(occ_enclave *enc, conn *c, const occ_http_request *r)
{
    const char *p = r->path;
    int ka = r->keep_alive;
    int get = !strcmp(r->method, "GET"), post = !strcmp(r->method, "POST");
    if (!strcmp(p, "/v2/health/live") || !strcmp(p, "/v2/health/ready") || !strcmp(p, "/v2")) {
        if (!get) {
            occ_srv_respond_error(enc, c, 405, "use GET", ka);
        } else if (!strcmp(p, "/v2")) {
            occ_srv_respond_json(enc, c, 200,
                         simple_json("{\"name\":\"occlumency\",\"version\":\"0.1.0\",\"extensions\":"
                                     "[\"binary_tensor_data\",\"occ_attestation\"]%s}",
                                     NULL),
                         ka);
        } else {
            occ_srv_respond_json(enc, c, 200,
                         simple_json(strstr(p, "live") ? "{\"live\":true%s}" : "{\"ready\":true%s}", NULL), ka);
        }
        return 0;
    }
    static const char pre[] = "/v2/models/";
    if (strncmp(p, pre, sizeof pre - 1)) {
        occ_srv_respond_error(enc, c, 404, "no such endpoint", ka);
        return 0;
    }
    const char *name = p + sizeof pre - 1;
    size_t nlen = strcspn(name, "/");
    const char *rest = name + nlen;
    if (!strncmp(rest, "/versions/", 10)) { /* /versions/1 is the only version */
        const char *v = rest + 10;
        size_t vl = strcspn(v, "/");
        if (vl != 1 || v[0] != '1') {
            occ_srv_respond_error(enc, c, 404, "unknown model version (this server has version 1)", ka);
            return 0;
        }
        rest = v + vl;
    }
    srv_model *mdl = occ_srv_find_model(enc, name, nlen);
    if (!mdl) {
        char msg[200];
        snprintf(msg, sizeof msg, "unknown model '%.*s'", (int)(nlen > 100 ? 100 : nlen), name);
        occ_srv_respond_error(enc, c, 404, msg, ka);
        return 0;
    }
    if (!strcmp(rest, "") || !strcmp(rest, "/ready") || !strcmp(rest, "/occ")) {
        if (!get) {
            occ_srv_respond_error(enc, c, 405, "use GET", ka);
        } else if (!*rest) {
            occ_srv_respond_json(enc, c, 200, occ_kserve_model_metadata(mdl->m, mdl->name), ka);
        } else if (!strcmp(rest, "/ready")) {
            occ_srv_respond_json(enc, c, 200, occ_kserve_model_ready(mdl->name), ka);
        } else {
            char bh[65];
            occ_hex(enc->binding, 32, bh);
            occ_srv_respond_json(enc, c, 200, occ_kserve_model_occ(mdl->m, mdl->name, bh), ka);
        }
        return 0;
    }
    if (strcmp(rest, "/infer")) {
        occ_srv_respond_error(enc, c, 404, "no such endpoint", ka);
        return 0;
    }
    if (!post) {
        occ_srv_respond_error(enc, c, 405, "use POST for infer", ka);
        return 0;
    }
    job *j = occ_srv_job_new(enc, c, mdl);
    if (!j) {
        occ_srv_respond_error(enc, c, 503, "server busy: no request memory left (or out of memory), retry later", 0);
        return 0;
    }
    /* the JSON tree is bounded before it is built: at most the values the
     * inputs need (the decoder counts them first), each a cJSON node */
    size_t json_size = r->inference_header_length >= 0 && (uint64_t)r->inference_header_length < r->body_size
                           ? (size_t)r->inference_header_length
                           : r->body_size;
    size_t nodes = json_size / 2 + 1 < mdl->max_json_values ? json_size / 2 + 1 : mdl->max_json_values;
    int64_t tree = (int64_t)(nodes * JSON_NODE_COST + json_size);
    if (occ_srv_mem_charge(enc, c, tree)) {
        occ_srv_job_free(enc, j);
        occ_srv_respond_error(enc, c, 503, "server busy: no request memory left, retry later", 0);
        return 0;
    }
    occ_error e = {0};
    occ_status dst = occ_kserve_decode_infer(mdl->m, r->body, r->body_size, r->inference_header_length,
                                             mdl->max_json_values, (void *const *)j->in, &j->req, &e);
    (void)occ_srv_mem_charge(enc, c, -tree);
    if (dst) {
        occ_srv_job_free(enc, j);
        pthread_mutex_lock(&enc->stats_mu);
        mdl->errors++;
        pthread_mutex_unlock(&enc->stats_mu);
        occ_srv_respond_error(enc, c, 400, e.msg, ka);
        return 0;
    }
    j->keep_alive = ka;
    j->t_enqueue = occ_srv_now_ns(enc);
    pthread_mutex_lock(&enc->q_mu);
    if (enc->q_len >= enc->max_queue || enc->stopping) {
        pthread_mutex_unlock(&enc->q_mu);
        occ_srv_job_free(enc, j);
        occ_srv_respond_error(enc, c, 503, "server busy: the inference queue is full, retry later", ka);
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
