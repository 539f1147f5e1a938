/* EPC emulator: a capped, paged, encrypted enclave heap (DESIGN §4).
 *
 * One region of virtual memory (the enclave heap, up to several GiB) whose
 * resident part is capped, by default at 93 MiB, the usable EPC of SGX1.
 * Beyond the cap, pages are evicted as the SGX driver does with EWB: sealed
 * with AES-256-GCM under a key that never leaves the emulator into untrusted
 * backing memory, and dropped. Touching an evicted page faults; the emulator
 * verifies and decrypts it back (ELDU) and evicts another (FIFO). Pages never
 * touched are zero-filled on first touch. Faults are caught with userfaultfd
 * and served by one handler thread per EPC, so every thread of the process
 * (compute threads, a loader thread, even the kernel copying into the region
 * on read(2)) works transparently on EPC memory.
 *
 * Costs are explicit: each paging fault and each enclave transition is
 * charged a number of cycles by busy-waiting the equivalent time, so wall
 * clock measurements include it, and the charge is also reported separately.
 * A fault's charge includes the emulator's own work for it: the faulting
 * thread is released when the modelled cost has elapsed, not after the work
 * plus the cost (what does not fit is counted: excess_ns).
 *
 * Integrity: a fault cannot return an error to the code that touched the
 * page. A backing copy that fails authentication (tampered or replayed)
 * loses the enclave, as on SGX (where the driver cannot load the page and
 * the enclave cannot go on): the emulator says so on stderr, calls
 * opts.on_lost, and from then on occ_epc_lost() is true and occ_epc_check()
 * fails. The faulting thread gets a page of zeros so that it can unwind;
 * whatever it computes must not leave the enclave: the counted boundary
 * (occ/boundary_emu.h) refuses every send and every new connection or
 * data of a lost enclave, and occ run / occ bench check after each
 * inference. The sealed copy is read once, into private memory, before it
 * is authenticated and decrypted. See docs/emulation.md. */
#ifndef OCC_EPC_H
#define OCC_EPC_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "occ/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define OCC_EPC_PAGE_SIZE 4096u
#define OCC_EPC_DEFAULT_CAP (93ull << 20)
#define OCC_EPC_DEFAULT_REGION (4ull << 30)
/* Published figures (docs/emulation.md): a paging fault including the
 * enclave exit and re-entry, and one ecall/ocall. */
#define OCC_EPC_SGX1_FAULT_CYCLES 40000ull
#define OCC_EPC_SGX1_TRANSITION_CYCLES 10000ull

typedef enum occ_epc_cost_model {
    OCC_EPC_COST_NONE = 0, /* paging happens, nothing is charged            */
    OCC_EPC_COST_SGX1,     /* 40k cycles a fault, 10k cycles a transition   */
    OCC_EPC_COST_SGX2,     /* cap = region (nothing pages), 10k a transition */
    OCC_EPC_COST_CUSTOM,   /* fault_cycles / transition_cycles from opts    */
} occ_epc_cost_model;

typedef struct occ_epc_opts {
    unsigned long long cap_size;    /* resident bytes; 0 = 93 MiB           */
    unsigned long long region_size; /* virtual bytes; 0 = 4 GiB            */
    occ_epc_cost_model cost;
    unsigned long long fault_cycles;      /* OCC_EPC_COST_CUSTOM only   */
    unsigned long long transition_cycles; /* OCC_EPC_COST_CUSTOM only   */
    /* Cycles to nanoseconds: 0 = the TSC frequency measured once per
     * process (x86), else 3.0 GHz. */
    double ghz;
    /* Trace sink: one event per line ("fault N", "zero N", or the caller's
     * "<kind> N"). The FILE is not closed by the emulator. */
    FILE *trace_file;
    int trace_memory; /* nonzero: also keep the trace for occ_epc_trace_take */
    /* Optional: called once, from the fault handler's thread, when the
     * enclave is lost (a reload failed authentication). */
    void (*on_lost)(void *ctx);
    void *lost_ctx;
    /* Pages evicted at once when the EPC is full (1..16), as the SGX driver
     * reclaims in batches; 0 = 16 for caps of 16 MiB and more, else 1. */
    unsigned evict_batch;
} occ_epc_opts;

typedef struct occ_epc_stats {
    uint64_t faults;          /* reloads of an evicted page (verify+decrypt) */
    uint64_t first_touch;     /* zero-fill faults (page never resident)    */
    uint64_t charged_faults;  /* faults charged the fault cost (see docs)  */
    uint64_t evictions;       /* pages sealed into backing memory          */
    uint64_t bytes_encrypted; /* evictions * page size                     */
    uint64_t bytes_verified;  /* bytes authenticated and decrypted back    */
    uint64_t integrity_failures;
    uint64_t transitions;
    uint64_t charged_cycles;
    uint64_t charged_ns;      /* the time charged (busy-waited)            */
    uint64_t service_ns;      /* handler time evicting/verifying/decrypting
                                 (not the charge, not the uffd round trip) */
    /* How a fault's charged cost compares with the emulator's own time
     * (docs/emulation.md, "What a fault costs"). A charged fault's thread is
     * held until fault_ns - roundtrip_ns after the handler received it, so
     * the emulator's work is inside the charge, not on top of it. */
    uint64_t handle_ns;       /* receipt to page mapped, all faults          */
    uint64_t wait_ns;         /* busy-waited after that, making up the cost  */
    uint64_t excess_ns;       /* emulator time beyond the model: per fault,
                                 max(0, handling + round trip - its charge),
                                 and lateness of wakes past the cost         */
    uint64_t overrun_faults;  /* charged faults whose handling + round trip
                                 alone exceeded the charge                   */
    uint64_t evict_runs;      /* contiguous runs evicted (syscall pairs)     */
    uint64_t fault_ns;        /* the model's cost of one fault               */
    uint64_t roundtrip_ns;    /* measured at create: a fault's round trip
                                 outside the handler (entry, wake-ups)       */
    unsigned evict_batch;
    uint64_t resident_size;   /* bytes resident now                        */
    uint64_t cap_size;
    uint64_t region_size;
    uint64_t allocated_size;  /* page-rounded bytes allocated now          */
    uint64_t peak_allocated_size;
    uint64_t requested_size;  /* bytes asked for by occ_epc_alloc now      */
    uint64_t alloc_count;     /* live allocations                          */
    uint64_t fault_cycles;    /* the model in effect                       */
    uint64_t transition_cycles;
    double ghz;
    int paged;                /* 0: cap >= region, no fault handling at all */
} occ_epc_stats;

typedef struct occ_epc occ_epc;

void occ_epc_opts_default(occ_epc_opts *opts);

/* "none", "sgx1", "sgx2". */
occ_status occ_epc_cost_parse(const char *name, occ_epc_cost_model *out) OCC_MUST_CHECK;
const char *occ_epc_cost_name(occ_epc_cost_model m);

/* Creates an EPC. opts may be NULL (defaults). Fails with OCC_ERR_UNSUPPORTED
 * when userfaultfd is not available and the cap is below the region. */
occ_status occ_epc_create(const occ_epc_opts *opts, occ_epc **out, occ_error *e) OCC_MUST_CHECK;

/* Stops the fault handler, unmaps everything, wipes the key. No thread may
 * touch EPC memory during or after this call. NULL is a no-op. */
void occ_epc_destroy(occ_epc *epc);

/* Page-granular first-fit allocation from the region (page-aligned, not
 * zeroed after reuse). Thread-safe. OCC_ERR_BUDGET when the region is full. */
occ_status occ_epc_alloc(occ_epc *epc, size_t size, void **out, occ_error *e) OCC_MUST_CHECK;
/* Returns the block to the allocator. Like SGX1's committed heap, its pages
 * stay in the EPC (resident or evicted). NULL is OK; a pointer that is not a
 * live allocation gives OCC_ERR_INVALID and changes nothing. */
occ_status occ_epc_free(occ_epc *epc, void *ptr);

/* Counts one ecall/ocall and busy-waits its cost on the calling thread. */
void occ_epc_transition(occ_epc *epc);

/* OCC_ERR_INTEGRITY (sticky) once any evicted page failed authentication. */
occ_status occ_epc_check(occ_epc *epc, occ_error *e) OCC_MUST_CHECK;
/* 1 once the enclave is lost (any reload failed authentication); sticky. */
int occ_epc_lost(occ_epc *epc);

void occ_epc_get_stats(occ_epc *epc, occ_epc_stats *out);

/* Region bounds and membership. */
void *occ_epc_base(occ_epc *epc);
int occ_epc_contains(occ_epc *epc, const void *p, size_t size);

/* Trace: records "<kind> <idx>" if tracing is on (no-op otherwise). kind is
 * a short word without spaces, e.g. "chunk". Events from all threads are
 * serialized in one order. */
void occ_epc_trace_event(occ_epc *epc, const char *kind, uint64_t idx);
/* Starts (or redirects) tracing; either sink may be off. */
void occ_epc_trace_start(occ_epc *epc, FILE *file, int memory);
void occ_epc_trace_stop(occ_epc *epc);
/* Hands the in-memory trace to the caller (free() it) and starts a new one.
 * *out is a NUL-terminated string; may be empty. */
occ_status occ_epc_trace_take(occ_epc *epc, char **out, size_t *len, occ_error *e) OCC_MUST_CHECK;

/* Evicts every resident page (charged like the driver would not: evictions
 * are counted but no fault cost is charged). For tests and cold starts. */
occ_status occ_epc_evict_all(occ_epc *epc, occ_error *e) OCC_MUST_CHECK;

/* Untrusted backing memory of a page, as the host (attacker) sees it: the
 * sealed page and its metadata (nonce and tag). For tamper/replay tests.
 * OCC_ERR_INVALID if the page index is out of range. */
typedef struct occ_epc_backing {
    uint8_t *ciphertext; /* OCC_EPC_PAGE_SIZE bytes */
    uint8_t *meta;       /* meta_size bytes: nonce || tag */
    size_t meta_size;
} occ_epc_backing;
occ_status occ_epc_debug_backing(occ_epc *epc, uint64_t page, occ_epc_backing *out) OCC_MUST_CHECK;

#ifdef __cplusplus
}
#endif
#endif
