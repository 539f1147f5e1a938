/* The emulated enclave boundary (DESIGN §3, §4): a layer between the host and
 * the trusted core that wraps an occ_ocalls / occ_ecalls table (occ/boundary.h)
 * and returns a counted one. Every crossing, in either direction:
 *
 *  - increments a transition counter (per call kind and in total);
 *  - charges the emulated transition cost on the calling thread
 *    (occ_epc_transition: ~10,000 cycles under sgx1), when an EPC is given;
 *  - optionally (a test-only switch) appends every byte that crosses to a
 *    recording, in memory and/or in a file: what the host hands in (ecall
 *    arguments, the bytes an ocall copies into the enclave) and what the
 *    enclave hands out (ocall arguments). The confidentiality test searches
 *    this recording for the plaintext input (tests/test_boundary*.c).
 *
 * Recording format (little endian), one record per crossing:
 *   u32 magic 0x4f434342 ("BCCO") | u8 dir (0 into the enclave, 1 out) |
 *   u8 call (occ_boundary_call) | u16 0 | u64 arg0 | u64 arg1 | u64 size |
 *   size bytes
 * arg0/arg1 are the call's scalar arguments (conn or pack id, offset, ...).
 *
 * In the emulated build host and enclave share one process, so this wrapper
 * IS the boundary; on real SGX the same tables would be generated from an EDL
 * (DESIGN §4, "sdk") and the wrapper would only count. */
#ifndef OCC_BOUNDARY_EMU_H
#define OCC_BOUNDARY_EMU_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "occ/boundary.h"
#include "occ/engine.h"
#include "occ/epc.h"
#include "occ/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum occ_boundary_call {
    /* ocalls (enclave -> host) */
    OCC_BCALL_READ_CHUNK = 0,
    OCC_BCALL_SEND,
    OCC_BCALL_CLOSE,
    OCC_BCALL_NOW_NS,
    /* ecalls (host -> enclave) */
    OCC_BCALL_CONN_OPEN,
    OCC_BCALL_CONN_DATA,
    OCC_BCALL_CONN_CLOSE,
    OCC_BCALL_RUN_WORKER,
    OCC_BCALL_STOP,
    /* ocalls added later (numbered after, so recordings keep their codes) */
    OCC_BCALL_GET_QUOTE,
    OCC_BCALL_METRICS,
    OCC_BCALL_ALLOC_UNTRUSTED,
    OCC_BCALL_FREE_UNTRUSTED,
    OCC_BCALL_KEY_CONNECT, /* key fetch (docs/keys.md) */
    OCC_BCALL_KEY_SEND,
    OCC_BCALL_KEY_RECV,
    OCC_BCALL_KEY_CLOSE,
    OCC_BCALL_SEAL_STORE,
    OCC_BCALL_SEAL_LOAD,
    OCC_BCALL_COUNT
} occ_boundary_call;

#define OCC_BOUNDARY_RECORD_MAGIC 0x4f434342u
#define OCC_BOUNDARY_RECORD_HEADER 32u

typedef struct occ_boundary_opts {
    occ_epc *epc;       /* charges each crossing (occ_epc_transition); NULL = count only */
    FILE *record_file;  /* test-only: append every crossing here (not closed)            */
    int record_memory;  /* test-only: keep the recording for occ_boundary_record_take    */
} occ_boundary_opts;

typedef struct occ_boundary_stats {
    uint64_t transitions;             /* all crossings (ecalls + ocalls)      */
    uint64_t ecalls, ocalls;
    uint64_t calls[OCC_BCALL_COUNT];  /* per kind                             */
    uint64_t bytes_in;                /* bytes copied into the enclave        */
    uint64_t bytes_out;               /* bytes handed out of the enclave      */
    uint64_t recorded_size;           /* bytes written to the recording(s)    */
} occ_boundary_stats;

typedef struct occ_boundary occ_boundary;

/* Wraps `inner_ocalls` and/or `inner_ecalls` (either may be NULL; the tables
 * are copied, their contexts must outlive the boundary). opts may be NULL. */
occ_status occ_boundary_create(const occ_boundary_opts *opts, const occ_ocalls *inner_ocalls,
                               const occ_ecalls *inner_ecalls, occ_boundary **out,
                               occ_error *e) OCC_MUST_CHECK;
void occ_boundary_free(occ_boundary *b);

/* The counted tables to hand to the trusted core (ocalls) and to the host
 * (ecalls). NULL when the corresponding inner table was NULL. A function
 * pointer that was NULL in the inner table stays NULL. Owned by b. */
const occ_ocalls *occ_boundary_ocalls(occ_boundary *b);
const occ_ecalls *occ_boundary_ecalls(occ_boundary *b);

void occ_boundary_get_stats(occ_boundary *b, occ_boundary_stats *out);
const char *occ_boundary_call_name(occ_boundary_call c);

/* Starts/stops recording (either sink may be off). Thread-safe. */
void occ_boundary_record_start(occ_boundary *b, FILE *file, int memory);
void occ_boundary_record_stop(occ_boundary *b);
/* Hands the in-memory recording to the caller (free() it) and starts a new,
 * empty one. *out may be NULL when nothing was recorded. OCC_ERR_NOMEM when
 * the recording could not keep up (it is then incomplete: a test must fail). */
occ_status occ_boundary_record_take(occ_boundary *b, uint8_t **out, size_t *size,
                                    occ_error *e) OCC_MUST_CHECK;

/* ---- trusted side helper ----
 * The engine reads weights through an occ_read_fn; inside the enclave that
 * function is this one: it makes the read_chunk ocall of `ocalls` for pack
 * `pack_id`. Pass occ_ocall_read as the engine's read callback and a
 * occ_ocall_reader as its context. */
typedef struct occ_ocall_reader {
    const occ_ocalls *ocalls;
    uint32_t pack_id;
} occ_ocall_reader;
occ_status occ_ocall_read(void *reader, uint64_t offset, void *dst, uint64_t size,
                          occ_error *e) OCC_MUST_CHECK;

/* ---- enclave memory from the EPC emulator (src/sgxemu/epc_provider.c) ----
 * Fills *out with an occ_mem_provider whose alloc/free are occ_epc_alloc /
 * occ_epc_free on `epc` (which must outlive every engine using it). */
void occ_epc_provider(occ_epc *epc, occ_mem_provider *out);

#ifdef __cplusplus
}
#endif
#endif
