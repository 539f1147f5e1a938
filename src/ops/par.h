/* A small persistent thread pool for the operators' parallel loops
 * (src/ops/par.c). Internal to src/ops.
 *
 * Why not an OpenMP parallel for: at the end of a region libgomp's team
 * waits for every member, including one the host has descheduled before it
 * even started; on a shared machine every layer then waits for the other
 * vCPU. Here the caller takes chunks itself, a worker joins only if it wakes
 * while chunks remain, and the caller waits only for workers that took one. */
#ifndef OCC_OPS_PAR_H
#define OCC_OPS_PAR_H

#include <stdint.h>

/* fn(ctx, i0, i1) over [i0, i1) */
typedef void (*occ_par_fn)(void *ctx, int64_t i0, int64_t i1);

/* Runs fn over [0, n) in chunks of grain (>= 1) indices on up to
 * omp_get_max_threads() threads (the engine's --threads), the caller one of
 * them. Runs inline on the caller when n <= grain, one thread is asked for,
 * the caller is itself inside a pool task or an OpenMP region, or another
 * thread is using the pool. */
void occ_par_for(int64_t n, int64_t grain, occ_par_fn fn, void *ctx);

/* Threads a call would use (at least 1). */
int occ_par_threads(void);

#endif
