/* The confidential inference server.
 *
 * Enclave side (src/enclave/server.c, trusted): TLS 1.3 over memory BIOs
 * with a fresh RA-TLS certificate, HTTP/1.1, the KServe v2 API, a request
 * queue drained by enclave workers with dynamic batching, Prometheus
 * metrics. It talks to the outside only through the occ_ocalls it is given
 * and is driven only through the occ_ecalls it hands out (include/occ/boundary.h).
 *
 * The host side is occ/net.h (untrusted; never included by trusted code). */
#ifndef OCC_SERVER_H
#define OCC_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "occ/boundary.h"
#include "occ/engine.h"
#include "occ/quote.h"
#include "occ/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Connection ids with this bit set are the plaintext metrics port: the
 * enclave answers GET /metrics there (aggregate counters only, no request
 * data) and nothing else. */
#define OCC_CONN_METRICS_BIT (1ull << 63)

/* ---------------- enclave side ---------------- */

#define OCC_SERVER_MAX_NAME 128  /* bytes of a model name */
#define OCC_SERVER_MAX_MODELS 64

/* Everything the host hands occ_enclave_create (this struct, the arrays and
 * strings it points to, the manifests) is untrusted and may change while
 * the enclave reads it: the enclave reads each of them once, into its own
 * memory, and checks and uses only that copy. */
typedef struct occ_server_model {
    const char *name;        /* the API name: /v2/models/{name} */
    uint32_t pack_id;        /* passed back in ocalls->read_chunk */
    const uint8_t *manifest; /* the pack's manifest bytes (untrusted; hashed in the enclave) */
    size_t manifest_size;
} occ_server_model;

typedef struct occ_enclave_config {
    const occ_server_model *models;
    size_t n_models;
    occ_engine_opts engine;   /* template for every model's engines: threads is per engine,
                                 budget per model (split evenly among its engines) */
    uint32_t engines;         /* engines per model, each one inference at a time (a pool
                                 the workers share); 0 = 1 */
    uint32_t max_batch;       /* requests per engine run (dynamic batching); 0 = 8 */
    uint32_t batch_wait_us;   /* wait this long for a batch to fill; 0 = none */
    uint32_t batch_fill_us;   /* while requests are partly received, wait up to this long for
                                 them to fill a batch (models that batch); 0 = none */
    uint64_t max_body_size;   /* bytes; 0 = 64 MiB (an infer body is further limited to what
                                 its model's inputs need) */
    uint64_t request_memory;  /* enclave-wide bytes of request bodies, jobs and JSON trees beyond
                                 64 KiB per connection; more: 503; 0 = 64 MiB */
    uint32_t request_timeout_ms; /* a started request (or handshake) must complete within; 0 = 30000 */
    uint32_t max_queue;       /* queued inferences before 503; 0 = 1024 */
    int64_t cert_not_before, cert_not_after; /* seconds since the epoch (host clock; public) */
    /* Optional subjectAltName entries (IP addresses or DNS names) so that
     * plain TLS clients pinning the certificate (curl --cacert) also pass
     * their host name check. The certificate is re-signed by the enclave's
     * key after adding them; the quote binds the key, not these names. */
    const char *const *alt_names;
    size_t n_alt_names;
    /* Optional (docs/keys.md): the keys of encrypted packs come from the
     * model owner's key broker at "host:port", fetched inside the enclave
     * over TLS with the RA-TLS certificate as client certificate, before any
     * engine is made; any failure fails the start. key_server_ca: the
     * broker's certificate (PEM) the enclave pins; NULL = unpinned (a key is
     * then trusted only through the attested manifest's key check). */
    const char *key_server;
    const uint8_t *key_server_ca;
    size_t key_server_ca_size;
    /* Optional: seal the keys received to this enclave (AES-256-GCM under
     * the key seal_key derives, e.g. occ_emu_seal_key) through the
     * seal_store ocall, and at start use a sealed key (seal_load) whose
     * pack's key check accepts it before asking the broker. */
    occ_status (*seal_key)(void *ctx, uint8_t out[32], occ_error *e);
    void *seal_ctx;
} occ_enclave_config;
/* occ_enclave_config is plain data: the quote comes from the get_quote
 * ocall and the host's metrics lines from the metrics ocall (occ/boundary.h).
 * Two tables of functions still come this way, both the emulated CPU's, not
 * the host's: engine.mem (the EPC emulator's allocator) and seal_key (the
 * emulated EGETKEY; on SGX the enclave derives it itself): docs/security.md,
 * "Not done". */

typedef struct occ_enclave occ_enclave;

/* Decodes the manifests (model ids are computed here), makes the engines,
 * generates the TLS key inside the enclave and the RA-TLS certificate (the
 * quote from oc->get_quote, which is required):
 * REPORTDATA = SHA-256(SPKI) || binding, binding = the model id for one
 * model, a hash of the (name, model id) pairs for several
 * (occ_models_binding, include/occ/binding.h); the certificate carries the
 * pairs. Model names: occ_model_name_valid. The ocalls table must outlive
 * the enclave. */
occ_status occ_enclave_create(const occ_enclave_config *cfg, const occ_ocalls *oc, occ_enclave **out,
                              occ_error *e) OCC_MUST_CHECK;
/* The table the host drives the enclave with. */
void occ_enclave_ecalls(occ_enclave *enc, occ_ecalls *out);
/* Public facts: the certificate (DER, owned by enc), the model binding of
 * REPORTDATA[32..63], whether engines run batches natively. */
const uint8_t *occ_enclave_cert_der(const occ_enclave *enc, size_t *size);
void occ_enclave_binding(const occ_enclave *enc, uint8_t out[32]);
int occ_enclave_batching(const occ_enclave *enc);
/* Requests per engine run of model i (in config order; 0 for no such
 * model); when 1, *note (if given) says why. */
uint32_t occ_enclave_model_batch(const occ_enclave *enc, size_t i, const char **note);
/* The Prometheus text (malloc'd). */
char *occ_enclave_metrics(occ_enclave *enc);
void occ_enclave_free(occ_enclave *enc);

#ifdef __cplusplus
}
#endif
#endif
