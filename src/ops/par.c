/* The operators' thread pool (par.h).
 *
 * One job at a time: the caller holds `lock`, writes the job's fields,
 * makes `epoch` (the futex word) odd (open) and takes chunks from the shared
 * counter `next` like any worker. A worker that sees an odd epoch counts
 * itself in `active`, checks that the epoch did not move meanwhile (the job
 * it saw is still open: the caller writes the fields only while the epoch
 * is even and `active` zero), then takes chunks until none remain. When the
 * caller finds no chunk left it waits for `active` to drop to zero, then
 * makes the epoch even (closed). It waits only for workers that joined: a
 * worker still asleep, or descheduled by the host before it joined, costs
 * nothing, which is the point (an OpenMP team's closing barrier waits for
 * it). Workers spin briefly between jobs (the gap between two layers is
 * microseconds), then sleep on the futex. */
#include "ops/par.h"

#include <limits.h>
#include <linux/futex.h>
#include <omp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

enum {
    PAR_MAX_WORKERS = 63,
    PAR_SPIN = 4000 /* pauses (~30 ns each here) before a worker sleeps */
};

static struct {
    pthread_mutex_t lock; /* held by the thread running a job */
    int started;          /* workers created (under lock) */
    _Atomic uint32_t epoch;
    _Atomic int sleepers;
    _Atomic int active;       /* futex word for the caller's wait */
    _Atomic int caller_waits; /* the caller sleeps on active */
    _Atomic int64_t next;
    /* the job: written by the caller only while active == 0 */
    occ_par_fn fn;
    void *ctx;
    int64_t n, grain;
    int want; /* workers allowed to join (threads - 1) */
} P = {.lock = PTHREAD_MUTEX_INITIALIZER};

static _Thread_local int in_pool; /* a worker, or a caller running a job */

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void run_chunks(void)
{
    const int64_t n = P.n, g = P.grain;
    for (;;) {
        const int64_t i0 = atomic_fetch_add_explicit(&P.next, g, memory_order_relaxed);
        if (i0 >= n)
            return;
        P.fn(P.ctx, i0, i0 + g < n ? i0 + g : n);
    }
}

static void *worker(void *arg)
{
    const int id = (int)(intptr_t)arg;
    uint32_t seen = 0;
    in_pool = 1;
    for (;;) {
        uint32_t e = atomic_load_explicit(&P.epoch, memory_order_acquire);
        for (int s = 0; e == seen && s < PAR_SPIN; s++) {
            cpu_relax();
            e = atomic_load_explicit(&P.epoch, memory_order_acquire);
        }
        if (e == seen) {
            atomic_fetch_add(&P.sleepers, 1);
            while ((e = atomic_load(&P.epoch)) == seen)
                syscall(SYS_futex, &P.epoch, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
            atomic_fetch_sub(&P.sleepers, 1);
        }
        seen = e;
        if (!(e & 1))
            continue; /* a job closed while this worker slept */
        atomic_fetch_add(&P.active, 1);
        if (atomic_load(&P.epoch) == e && id < P.want)
            run_chunks();
        if (atomic_fetch_sub(&P.active, 1) == 1 && atomic_load(&P.caller_waits))
            syscall(SYS_futex, &P.active, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    }
    return NULL;
}

int occ_par_threads(void)
{
    int t = omp_get_max_threads();
    return t < 1 ? 1 : t > PAR_MAX_WORKERS + 1 ? PAR_MAX_WORKERS + 1 : t;
}

/* Under lock: at least want workers running; returns how many are. */
static int grow(int want)
{
    while (P.started < want) {
        pthread_t th;
        pthread_attr_t at;
        if (pthread_attr_init(&at))
            break;
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        int r = pthread_create(&th, &at, worker, (void *)(intptr_t)P.started);
        pthread_attr_destroy(&at);
        if (r)
            break;
        P.started++;
    }
    return P.started < want ? P.started : want;
}

void occ_par_for(int64_t n, int64_t grain, occ_par_fn fn, void *ctx)
{
    if (n <= 0)
        return;
    if (grain < 1)
        grain = 1;
    const int threads = occ_par_threads();
    if (n <= grain || threads < 2 || in_pool || omp_in_parallel() ||
        pthread_mutex_trylock(&P.lock)) {
        fn(ctx, 0, n);
        return;
    }
    const int want = grow(threads - 1);
    if (want < 1) {
        pthread_mutex_unlock(&P.lock);
        fn(ctx, 0, n);
        return;
    }
    /* a worker of the last job may still be between joining and leaving */
    while (atomic_load(&P.active))
        cpu_relax();
    P.fn = fn;
    P.ctx = ctx;
    P.n = n;
    P.grain = grain;
    P.want = want;
    atomic_store_explicit(&P.next, 0, memory_order_relaxed);
    atomic_fetch_add(&P.epoch, 1); /* odd: publishes the fields above */
    if (atomic_load(&P.sleepers))
        syscall(SYS_futex, &P.epoch, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
    in_pool = 1;
    run_chunks();
    in_pool = 0;
    /* a worker still in a chunk: spin a little, then sleep until the last
     * one leaves (the host may have queued that worker on this very core:
     * spinning or yielding here would compete with it) */
    int a;
    for (int s = 0; (a = atomic_load(&P.active)) != 0; s++) {
        if (s < PAR_SPIN) {
            cpu_relax();
            continue;
        }
        atomic_store(&P.caller_waits, 1);
        if ((a = atomic_load(&P.active)) != 0)
            syscall(SYS_futex, &P.active, FUTEX_WAIT_PRIVATE, a, NULL, NULL, 0);
        atomic_store(&P.caller_waits, 0);
    }
    atomic_fetch_add(&P.epoch, 1); /* even: closed */
    pthread_mutex_unlock(&P.lock);
}
