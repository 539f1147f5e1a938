/* The trust boundary between the untrusted host and the trusted enclave
 * (DESIGN §3). The enclave reaches the outside ONLY through the ocall table;
 * the host reaches the enclave ONLY through the ecall table. Every crossing
 * goes through these two structs, so one layer (src/sgxemu/boundary_emu.c)
 * can count each crossing, charge the emulated transition cost, and record
 * every byte that crosses (the confidentiality test).
 *
 * Rules:
 *  - src/enclave/ and src/engine/ and src/ops/ never include src/host/ headers
 *    nor call host functions; they receive a const occ_ocalls* at init.
 *  - src/host/ never touches enclave state except through occ_ecalls.
 *  - Bytes passed to an ocall are visible to the host: only ciphertext (TLS
 *    records), public metadata, or data the enclave verifies after copying
 *    in (weight chunks).
 */
#ifndef OCC_BOUNDARY_H
#define OCC_BOUNDARY_H

#include <stddef.h>
#include <stdint.h>

#include "occ/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- out of the enclave ---- */
typedef struct occ_ocalls {
    void *host;  /* the host's context, passed back unchanged */
    /* Copy [offset, offset+size) of pack `pack_id`'s data section into dst
     * (dst is enclave memory; the bytes are untrusted until verified). */
    occ_status (*read_chunk)(void *host, uint32_t pack_id, uint64_t offset, void *dst, uint64_t size,
                             occ_error *e);
    /* Queue bytes (TLS records) for connection `conn` towards the network. */
    occ_status (*send)(void *host, uint64_t conn, const void *buf, size_t size, occ_error *e);
    /* Close connection `conn`. */
    void (*close)(void *host, uint64_t conn);
    /* Monotonic time in nanoseconds (untrusted: used for timeouts and stats only). */
    uint64_t (*now_ns)(void *host);
    /* The quoting service (optional; the server needs it): a quote whose
     * REPORTDATA is report_data, copied into dst (cap bytes of enclave
     * memory); *size = its length. Public; clients verify it. */
    occ_status (*get_quote)(void *host, const uint8_t report_data[64], uint8_t *dst, size_t cap, size_t *size,
                            occ_error *e);
    /* Optional: the host's own Prometheus lines (e.g. the emulator's
     * counters) for the metrics port, written into dst; returns the bytes
     * written. Untrusted text: the enclave keeps printable ASCII only. */
    size_t (*metrics)(void *host, char *dst, size_t cap);
    /* Optional: untrusted (host) memory for trusted code, e.g. the engine's
     * sealed weight stash: a real enclave cannot allocate outside itself.
     * The enclave checks the range lies outside itself (occ_untrusted_alloc). */
    void *(*alloc_untrusted)(void *host, size_t size);
    void (*free_untrusted)(void *host, void *p);
    /* Key fetch (docs/keys.md): a blocking TCP connection to the key broker,
     * opened by the host, over which the enclave runs its own TLS client.
     * Only TLS records and the public "host:port" cross. key_recv writes at
     * most cap bytes into dst and says how many in *got (0 = the peer closed);
     * the enclave copies *got and checks it against cap. NULL = no key fetch. */
    occ_status (*key_connect)(void *host, const char *target, uint64_t *handle, occ_error *e);
    occ_status (*key_send)(void *host, uint64_t handle, const void *buf, size_t size, occ_error *e);
    occ_status (*key_recv)(void *host, uint64_t handle, void *dst, size_t cap, size_t *got, occ_error *e);
    void (*key_close)(void *host, uint64_t handle);
    /* Sealed model keys (docs/keys.md): opaque blobs (AES-256-GCM under the
     * enclave's sealing key) the host stores by model id and hands back;
     * seal_load writes at most cap bytes, *got = 0 when there is none; the
     * enclave copies *got and checks it. NULL = no sealing. */
    occ_status (*seal_store)(void *host, const uint8_t id[32], const void *blob, size_t size, occ_error *e);
    occ_status (*seal_load)(void *host, const uint8_t id[32], void *dst, size_t cap, size_t *got, occ_error *e);
} occ_ocalls;

/* ---- untrusted memory for trusted code (src/engine/untrusted.c) ----
 * The enclave registers its ocall table (occ_enclave_create; NULL when it is
 * freed, after its engines): from then on occ_untrusted_alloc asks the host
 * through alloc_untrusted and refuses (NULL) a range that is not wholly
 * outside the enclave; without a registered table (occ run: no enclave) it
 * is malloc. One enclave per process. */
void occ_untrusted_use(const occ_ocalls *oc);
void *occ_untrusted_alloc(size_t size);
void occ_untrusted_free(void *p);
/* The enclave's own range (ELRANGE), set by the emulated CPU (the counted
 * boundary, from the EPC emulator's region; src/common/enclave_range.c). */
void occ_enclave_range_set(const void *base, size_t size);
int occ_enclave_range_overlaps(const void *p, size_t size);

/* ---- into the enclave ---- */
typedef struct occ_ecalls {
    void *enclave;  /* the enclave's context */
    /* A new connection was accepted. */
    occ_status (*conn_open)(void *enclave, uint64_t conn, occ_error *e);
    /* Bytes (TLS records) arrived on `conn`. The enclave may call ocalls->send. */
    occ_status (*conn_data)(void *enclave, uint64_t conn, const void *buf, size_t size, occ_error *e);
    /* The peer closed `conn` (or the host gave up on it). */
    void (*conn_close)(void *enclave, uint64_t conn);
    /* Run one enclave worker until stop; the host provides the thread. */
    occ_status (*run_worker)(void *enclave, int worker_index, occ_error *e);
    /* Ask workers to stop. */
    void (*stop)(void *enclave);
} occ_ecalls;

#ifdef __cplusplus
}
#endif
#endif
