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
 * engines of a model are contexts on one compiled model (resident weights
 * held once); together they hold at most the model's budget
 * (occ_engine_pool_budget).
 *
 * A connection answers requests strictly in order: while an inference of
 * a connection is queued or running (busy), nothing more is read from its
 * TLS stream; the worker that answers resumes it. */
#include "occ/server.h"

#include "enclave/server_int.h"

/* The enclave has no trusted clock: "now" is an ocall, charged like any
 * crossing. Pumping one connection's bytes asks for it once per TLS record
 * (timeouts, batch filling), so a pump holds one reading for its whole
 * run: within a hold, now is the time the hold began. A pump never blocks
 * for long (it takes mutexes, never waits for a request), so the held time
 * is at most one pump old. */
static _Thread_local uint64_t held_now;
static _Thread_local int held;

uint64_t occ_srv_now_ns(occ_enclave *enc)
{
    return held ? held_now : enc->oc->now_ns(enc->oc->host);
}

int occ_srv_clock_hold(occ_enclave *enc)
{
    if (held)
        return 0;
    held_now = enc->oc->now_ns(enc->oc->host);
    held = 1;
    return 1;
}

void occ_srv_clock_release(int taken)
{
    if (taken)
        held = 0;
}

static occ_status engine_read(void *ctx, uint64_t offset, void *dst, uint64_t size, occ_error *e)
{
    read_ctx *r = ctx;
    return r->oc->read_chunk(r->oc->host, r->pack_id, offset, dst, size, e);
}

void occ_enclave_ecalls(occ_enclave *enc, occ_ecalls *out)
{
    out->enclave = enc;
    out->conn_open = occ_srv_ec_conn_open;
    out->conn_data = occ_srv_ec_conn_data;
    out->conn_close = occ_srv_ec_conn_close;
    out->run_worker = occ_srv_ec_run_worker;
    out->stop = occ_srv_ec_stop;
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
        occ_srv_job_free(enc, j);
        occ_srv_conn_put(enc, c);
    }
    for (size_t b = 0; b < N_BUCKETS; b++)
        while (enc->buckets[b]) {
            conn *c = enc->buckets[b];
            enc->buckets[b] = c->next;
            occ_srv_conn_destroy(c);
        }
    for (size_t i = 0; enc->models && i < enc->n_models; i++) {
        srv_model *mdl = &enc->models[i];
        for (uint32_t k = 0; mdl->eng && k < mdl->n_eng; k++)
            occ_engine_free(mdl->eng[k]);
        occ_compiled_free(mdl->compiled); /* after its contexts */
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
    enc->last_sweep = occ_srv_now_ns(enc);

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
        const uint64_t total = o.budget ? o.budget : OCC_DEFAULT_BUDGET;
        if (o.mode == OCC_MODE_OCCLUMENCY)
            o.budget = total / n_eng; /* until the pool's budget is known (below) */
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
            if (occ_engine_pool_budget(mdl->m, &o, engine_read, &mdl->rd, n_eng, total, &o.budget, NULL, &oe) == OCC_OK &&
                occ_engine_plan_only(mdl->m, &o, engine_read, &mdl->rd, &one, &oe) == OCC_OK) {
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
            /* one compiled model (weights read and verified once), each
             * engine a context on it; in occlumency mode the engines
             * together hold at most the model's budget, the resident
             * weights counted once (occ_engine_pool_budget, docs/server.md) */
            if (o.mode == OCC_MODE_OCCLUMENCY &&
                (st = occ_engine_pool_budget(mdl->m, &o, engine_read, &mdl->rd, n_eng, total, &o.budget, NULL, e)))
                goto fail;
            int ok = (st = occ_compiled_create(mdl->m, &o, engine_read, &mdl->rd, &mdl->compiled, e)) == OCC_OK;
            for (uint32_t k = 0; ok && k < n_eng; k++) {
                if ((st = occ_engine_create_ctx(mdl->compiled, &o, &mdl->eng[k], e)))
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
            occ_compiled_free(mdl->compiled);
            mdl->compiled = NULL;
            /* only a batch that does not fit (or does not batch) falls back;
             * a failed read, allocation or check fails the start */
            if (want == 1 || (st && st != OCC_ERR_BUDGET)) {
                if (n_eng > 1 && o.mode == OCC_MODE_OCCLUMENCY && o.budget == total / n_eng)
                    occ_error_prefix(e, "model '%s' (each of its %u engines gets 1/%u of the budget: %llu bytes)",
                                     nm, n_eng, n_eng, (unsigned long long)o.budget);
                else if (n_eng > 1 && o.mode == OCC_MODE_OCCLUMENCY)
                    occ_error_prefix(e, "model '%s' (each of its %u engines plans with %llu bytes of the %llu budget)",
                                     nm, n_eng, (unsigned long long)o.budget, (unsigned long long)total);
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
