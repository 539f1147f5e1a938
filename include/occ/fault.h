/* Fault injection for tests (docs/reliability.md).
 *
 * Compiled only into test builds (OCC_FAULT_INJECTION, set by CMake for
 * every build type but Release, and for the sanitizer and fuzz builds): in
 * a release build every hook below is an inline no-op and the switch does
 * not exist in the binary, trusted code included (issue 15: a switch that
 * reads the environment has no place in shipped enclave code, even one
 * whose faults the host could cause anyway). In a test build each hook
 * costs one relaxed atomic load of a flag that is 0 unless the environment
 * variable OCC_FAULT was set when the process first reached a hook, or a
 * test called occ_fault_set(). A process that arms it says so on stderr.
 *
 * OCC_FAULT is a comma-separated list of SITE:KIND:WHEN or SITE:KIND:MS:
 *
 *   alloc:fail:N        the engine's enclave allocator (src/engine/exec.c)
 *   alloc:N             same as alloc:fail:N
 *   request:alloc:N     the server's per-request enclave buffer (503 for that request)
 *   read:short:N        the host's read_chunk copies only half and says OK
 *   read:error:N        the host's read_chunk fails (OCC_ERR_IO)
 *   stash:flip:N        before an engine run the host flips one random bit of the
 *                       engine's sealed weights in untrusted memory (restored after)
 *   crossing:delay_ms:MS   every ecall/ocall of the emulated boundary sleeps MS
 *   crossing:jitter_ms:MS  ... a pseudo-random 0..MS (reorders concurrent crossings)
 *   worker:slow_ms:MS   every batch an enclave worker takes sleeps MS first
 *   epc:flip:N          the host flips one bit of the sealed copy of an evicted EPC page
 *                       before the emulator reloads it (counted per reload)
 *
 * WHEN counts the events of that site from 1 since arming: "N" = the Nth only,
 * "N+" = the Nth and every later one, "/N" = every Nth (N, 2N, 3N, ...).
 */
#ifndef OCC_FAULT_H
#define OCC_FAULT_H

#include <stdint.h>

#include "occ/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifndef OCC_FAULT_INJECTION
#define OCC_FAULT_INJECTION 0
#endif

typedef enum occ_fault_site {
    OCC_FAULT_ALLOC = 0,   /* engine enclave allocation fails */
    OCC_FAULT_REQ_ALLOC,   /* server request allocation fails */
    OCC_FAULT_READ_SHORT,  /* read_chunk copies half, returns OK */
    OCC_FAULT_READ_ERROR,  /* read_chunk returns OCC_ERR_IO */
    OCC_FAULT_STASH_FLIP,  /* one bit of the untrusted weight stash flipped for one run */
    OCC_FAULT_EPC_FLIP,    /* one bit of an evicted EPC page's sealed copy flipped before its reload */
    OCC_FAULT_SITE_COUNT
} occ_fault_site;

#if OCC_FAULT_INJECTION
/* Armed at all? (one relaxed load after the first call) */
int occ_fault_armed(void);

/* Counts one event at `site`; returns 1 when this event must fail. Also
 * counts when the site has no rule, so tests can learn how many events an
 * operation has (occ_fault_count) and then fail each in turn. Counting
 * starts only once armed (OCC_FAULT set, or occ_fault_set called). */
int occ_fault_hit(occ_fault_site site);

/* Host read hook: may shrink *size (short read) or return OCC_ERR_IO. */
occ_status occ_fault_read(uint64_t *size, occ_error *e) OCC_MUST_CHECK;

/* Boundary crossing hook: sleeps per crossing:delay_ms / jitter_ms. */
void occ_fault_crossing(void);

/* Worker hook: sleeps per worker:slow_ms. */
void occ_fault_worker(void);

/* Stash hook, around one engine run: when stash:flip fires, flips one
 * pseudo-random bit of buf[0, size) and returns its position + 1 (0 = none);
 * call occ_fault_unflip(buf, ret) after the run to restore it. */
uint64_t occ_fault_flip(uint8_t *buf, uint64_t size);
void occ_fault_unflip(uint8_t *buf, uint64_t token);

/* Tests: replace the rules (NULL or "" disarms the rules but keeps counting
 * armed) and reset every counter. Returns OCC_ERR_INVALID on a bad spec. */
occ_status occ_fault_set(const char *spec, occ_error *e) OCC_MUST_CHECK;

/* Events counted at `site` since the last occ_fault_set / start. */
uint64_t occ_fault_count(occ_fault_site site);
/* Faults fired at `site` since the last occ_fault_set / start. */
uint64_t occ_fault_fired(occ_fault_site site);
#else /* release: no switch at all */
static inline int occ_fault_armed(void) { return 0; }
static inline int occ_fault_hit(occ_fault_site site) { (void)site; return 0; }
static inline occ_status occ_fault_read(uint64_t *size, occ_error *e) { (void)size; (void)e; return OCC_OK; }
static inline void occ_fault_crossing(void) {}
static inline void occ_fault_worker(void) {}
static inline uint64_t occ_fault_flip(uint8_t *buf, uint64_t size) { (void)buf; (void)size; return 0; }
static inline void occ_fault_unflip(uint8_t *buf, uint64_t token) { (void)buf; (void)token; }
static inline occ_status occ_fault_set(const char *spec, occ_error *e)
{
    (void)spec;
    return occ_fail(e, OCC_ERR_UNSUPPORTED, "fault injection is compiled out of release builds");
}
static inline uint64_t occ_fault_count(occ_fault_site site) { (void)site; return 0; }
static inline uint64_t occ_fault_fired(occ_fault_site site) { (void)site; return 0; }
#endif

#ifdef __cplusplus
}
#endif
#endif
