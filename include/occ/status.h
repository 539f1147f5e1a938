/* Status codes and error messages shared by every module.
 *
 * Convention: a fallible function returns occ_status (0 = OCC_OK, negative =
 * error) and, when given a non-NULL occ_error, writes one line a user can act
 * on. Untrusted input never asserts, aborts or exits: it gets a status. */
#ifndef OCC_STATUS_H
#define OCC_STATUS_H

#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

#define OCC_MUST_CHECK __attribute__((warn_unused_result))

typedef enum occ_status {
    OCC_OK = 0,
    OCC_ERR_INVALID = -1,     /* bad argument or bad value in an input      */
    OCC_ERR_NOMEM = -2,       /* allocation failed                          */
    OCC_ERR_IO = -3,          /* read/write/open failed                     */
    OCC_ERR_FORMAT = -4,      /* malformed file: ONNX, pack, manifest       */
    OCC_ERR_UNSUPPORTED = -5, /* well-formed but not supported (op, attr)   */
    OCC_ERR_INTEGRITY = -6,   /* a hash or MAC did not match                */
    OCC_ERR_BUDGET = -7,      /* does not fit the enclave memory budget     */
    OCC_ERR_SHAPE = -8,       /* inconsistent or absurd tensor shapes       */
    OCC_ERR_INTERNAL = -9,    /* a library call failed unexpectedly         */
    OCC_ERR_ATTEST = -10,     /* attestation refused                        */
    OCC_ERR_KEY = -11,        /* a key is missing or is not the right one   */
} occ_status;

#define OCC_ERROR_MSG_SIZE 512

typedef struct occ_error {
    occ_status status;
    char msg[OCC_ERROR_MSG_SIZE];
} occ_error;

/* Records status and a printf-style message into e (if non-NULL) and returns
 * status, so callers can write `return occ_fail(e, OCC_ERR_FORMAT, "...")`. */
occ_status occ_fail(occ_error *e, occ_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
occ_status occ_vfail(occ_error *e, occ_status status, const char *fmt, va_list ap);

/* Prefixes the message already in e with "prefix: " (used to add context such
 * as a node name while an error travels up). Returns e->status. */
occ_status occ_error_prefix(occ_error *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

const char *occ_status_name(occ_status s);

/* Parses a byte size such as "93M", "32MiB", "512K", "1G", "4096". Returns
 * OCC_ERR_INVALID on garbage or overflow. */
occ_status occ_parse_size(const char *s, unsigned long long *out) OCC_MUST_CHECK;

#ifdef __cplusplus
}
#endif
#endif
