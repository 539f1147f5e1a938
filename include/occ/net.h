/* The untrusted host side of the inference server (src/host/net.c,
 * src/host/ocalls_server.c): the epoll loop that accepts connections and
 * moves TLS records between sockets and the enclave's ecalls, the worker
 * threads that run ecalls->run_worker, and the host's ocalls. Never
 * included by trusted code (tests/check_boundary.sh). */
#ifndef OCC_NET_H
#define OCC_NET_H

#include <stddef.h>
#include <stdint.h>

#include "occ/boundary.h"
#include "occ/pack.h"
#include "occ/server.h"
#include "occ/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct occ_net occ_net;

typedef struct occ_net_config {
    const char *listen;         /* "127.0.0.1:8443" (port 0 = any free port) */
    const char *metrics_listen; /* NULL = no metrics port */
    uint32_t max_connections;   /* 0 = 256 */
    uint32_t idle_timeout_ms;   /* no bytes either way for this long -> close; 0 = 60000 */
    int workers;                /* threads running ecalls->run_worker; 0 = 2 */
} occ_net_config;

/* Binds the sockets (so the ports are known before the enclave starts). */
occ_status occ_net_create(const occ_net_config *cfg, occ_net **out, occ_error *e) OCC_MUST_CHECK;
uint16_t occ_net_port(const occ_net *n);
uint16_t occ_net_metrics_port(const occ_net *n);
/* Runs the loop and the workers until occ_net_stop(). */
occ_status occ_net_run(occ_net *n, const occ_ecalls *ec, occ_error *e) OCC_MUST_CHECK;
/* Async-signal-safe. */
void occ_net_stop(occ_net *n);
/* For the ocalls (any thread): queue bytes for / ask to close connection id. */
occ_status occ_net_send(occ_net *n, uint64_t id, const void *buf, size_t size, occ_error *e) OCC_MUST_CHECK;
void occ_net_close(occ_net *n, uint64_t id);
void occ_net_free(occ_net *n);

/* The host's ocalls (src/host/ocalls_server.c): send/close over net, now_ns
 * (CLOCK_MONOTONIC), read_chunk from packs[pack_id]. ctx must outlive the
 * table. */
typedef struct occ_host_ctx {
    occ_net *net;
    occ_packfile *const *packs;
    uint32_t n_packs;
    /* the quoting service behind get_quote (emulated or Gramine's) */
    occ_quote_provider_fn quote;
    void *quote_ctx;
    /* optional: the host's metrics lines behind the metrics ocall */
    size_t (*metrics)(void *ctx, char *buf, size_t cap);
    void *metrics_ctx;
} occ_host_ctx;
void occ_host_ocalls(occ_host_ctx *ctx, occ_ocalls *out);
/* Fills the key-fetch ocalls of out (src/host/ocalls_keys.c): blocking TCP
 * connections to the key broker, 10 s timeouts; the host sees TLS records only. */
void occ_host_key_ocalls(occ_ocalls *out);
/* Where the seal_store/seal_load ocalls keep sealed keys (made 0700). */
occ_status occ_host_seal_dir(const char *dir, occ_error *e) OCC_MUST_CHECK;

#ifdef __cplusplus
}
#endif
#endif
