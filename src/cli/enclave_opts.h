/* The emulated enclave for the CLI (`occ run --enclave emu`, `occ bench`):
 * option parsing, and a session that sets up the EPC emulator, the enclave
 * memory provider over it, the host's file ocalls behind the counting
 * boundary, the trace, and reports the counters per inference.
 *
 * Use:
 *   occ_cli_enclave_opts o; occ_cli_enclave_opts_default(&o);
 *   ... occ_cli_enclave_arg(&o, "run", argc, argv, &i) in the option loop ...
 *   occ_cli_enclave_open(&o, pf, &s, &e);
 *   occ_cli_enclave_engine(s, &engine_opts, &read, &read_ctx);
 *   occ_engine_create(..., read, read_ctx, ...);
 *   occ_cli_enclave_begin(s, measure, trace); occ_engine_run(...);
 *   occ_cli_enclave_end(s, &e);      // occ_epc_check: fail the run on error
 *   occ_cli_enclave_json(s, eng, root);
 *   occ_engine_free(eng); occ_cli_enclave_close(s);
 * With --enclave none the session still routes weight reads through the
 * (counted, uncharged) ocall table, and adds nothing to the output. */
#ifndef OCC_CLI_ENCLAVE_OPTS_H
#define OCC_CLI_ENCLAVE_OPTS_H

#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "occ/boundary_emu.h"
#include "occ/engine.h"
#include "occ/epc.h"
#include "occ/pack.h"

typedef struct occ_cli_enclave_opts {
    int emu;                       /* --enclave emu|none (default none)            */
    unsigned long long epc_size;   /* --epc SIZE (default 93M)                     */
    unsigned long long region_size;/* --epc-region SIZE (default 16G, virtual)     */
    occ_epc_cost_model cost;       /* --cost-model sgx1|sgx2|none (default sgx1)   */
    const char *trace_path;        /* --trace FILE: faults + chunk loads, 1 run    */
    const char *record_path;       /* --record-boundary FILE (test-only)           */
} occ_cli_enclave_opts;

/* Help lines for the options above. */
extern const char occ_cli_enclave_usage[];

void occ_cli_enclave_opts_default(occ_cli_enclave_opts *o);

/* If argv[*i] is one of the options above, consumes it (and its value,
 * advancing *i) and returns 1; returns 0 if it is not ours; on a bad value
 * prints "occ <cmd>: error: ..." and returns -1. */
int occ_cli_enclave_arg(occ_cli_enclave_opts *o, const char *cmd, int argc, char **argv, int *i);

/* Per-inference figures (means over the measured inferences, rounded). */
typedef struct occ_cli_enclave_report {
    uint64_t inferences;          /* measured inferences                     */
    uint64_t epc_faults;          /* charged page faults (reloads + first
                                     touches beyond the cap)                 */
    uint64_t epc_reloads;         /* faults that verified+decrypted a page   */
    uint64_t epc_first_touch;
    uint64_t evictions;
    uint64_t transitions;         /* ecalls + ocalls                         */
    uint64_t epc_bytes_verified;  /* AES-GCM: paged back in                  */
    uint64_t weight_bytes_verified; /* SHA-256: weight chunks (engine stats) */
    uint64_t bytes_verified;      /* the sum of both                         */
    uint64_t chunks_loaded;
    uint64_t boundary_bytes_in;
    double charged_ms;            /* busy-waited cost (faults + transitions) */
    double service_ms;            /* the emulator's own paging work          */
    double handle_ms;             /* faults: receipt to page mapped          */
    double wait_ms;               /* faults: busy-waited to make up the cost */
    double excess_ms;             /* emulator time beyond the cost model     */
    uint64_t overrun_faults;      /* faults whose handling alone exceeded it */
    /* whole session */
    uint64_t epc_cap_bytes;
    uint64_t epc_peak_bytes;      /* most EPC bytes allocated at once        */
    uint64_t epc_resident_bytes;  /* resident now                            */
    uint64_t create_epc_faults;   /* while the engine was created            */
    uint64_t create_transitions;  /* ocalls while the engine was created     */
    double create_charged_ms;
    uint64_t peak_enclave_bytes;  /* engine stats (allocator-counted)        */
    uint64_t budget_bytes;
    uint64_t plan_peak_bytes;
} occ_cli_enclave_report;

typedef struct occ_cli_enclave occ_cli_enclave;

/* Sets up the session for one model (pf must outlive it). */
occ_status occ_cli_enclave_open(const occ_cli_enclave_opts *o, occ_packfile *pf,
                                occ_cli_enclave **out, occ_error *e) OCC_MUST_CHECK;
void occ_cli_enclave_close(occ_cli_enclave *s);

/* Points the engine at the session: opts->mem (EPC provider, emu only),
 * opts->on_chunk/hook_ctx (trace), and the read callback through the
 * read_chunk ocall. Call occ_cli_enclave_created() after occ_engine_create. */
void occ_cli_enclave_engine(occ_cli_enclave *s, occ_engine_opts *opts, occ_read_fn *read,
                            void **read_ctx);
void occ_cli_enclave_created(occ_cli_enclave *s, const occ_engine *eng);

/* Around each inference. measure: count it in the report; trace: record its
 * faults and chunk loads into --trace FILE (only the first traced inference
 * is written). end() checks the integrity of paged memory (occ_epc_check)
 * and returns its error: the caller must discard that inference's output. */
void occ_cli_enclave_begin(occ_cli_enclave *s, int measure, int trace);
occ_status occ_cli_enclave_end(occ_cli_enclave *s, occ_error *e) OCC_MUST_CHECK;

int occ_cli_enclave_is_emu(const occ_cli_enclave *s);
occ_epc *occ_cli_enclave_epc(occ_cli_enclave *s);
occ_boundary *occ_cli_enclave_boundary(occ_cli_enclave *s);

void occ_cli_enclave_get_report(occ_cli_enclave *s, const occ_engine *eng, occ_cli_enclave_report *r);
/* Adds the report's fields (emu only) to a JSON object. */
void occ_cli_enclave_json(occ_cli_enclave *s, const occ_engine *eng, cJSON *root);
/* One human line (emu only). */
void occ_cli_enclave_print(occ_cli_enclave *s, const occ_engine *eng, FILE *f);

#endif
