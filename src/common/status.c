#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "occ/status.h"

occ_status occ_vfail(occ_error *e, occ_status status, const char *fmt, va_list ap)
{
    if (e) {
        e->status = status;
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    }
    return status;
}

occ_status occ_fail(occ_error *e, occ_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    occ_vfail(e, status, fmt, ap);
    va_end(ap);
    return status;
}

occ_status occ_error_prefix(occ_error *e, const char *fmt, ...)
{
    if (!e)
        return OCC_ERR_INTERNAL;
    char prefix[OCC_ERROR_MSG_SIZE];
    char old[OCC_ERROR_MSG_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, e->msg, sizeof old);
    old[sizeof old - 1] = '\0';
    size_t n = strlen(prefix);
    if (n > sizeof e->msg - 3)
        n = sizeof e->msg - 3;
    memcpy(e->msg, prefix, n);
    memcpy(e->msg + n, ": ", 2);
    size_t rest = sizeof e->msg - n - 3;
    size_t m = strnlen(old, rest);
    memcpy(e->msg + n + 2, old, m);
    e->msg[n + 2 + m] = '\0';
    return e->status;
}

const char *occ_status_name(occ_status s)
{
    switch (s) {
    case OCC_OK: return "ok";
    case OCC_ERR_INVALID: return "invalid argument";
    case OCC_ERR_NOMEM: return "out of memory";
    case OCC_ERR_IO: return "I/O error";
    case OCC_ERR_FORMAT: return "format error";
    case OCC_ERR_UNSUPPORTED: return "unsupported";
    case OCC_ERR_INTEGRITY: return "integrity error";
    case OCC_ERR_BUDGET: return "over budget";
    case OCC_ERR_SHAPE: return "shape error";
    case OCC_ERR_INTERNAL: return "internal error";
    case OCC_ERR_ATTEST: return "attestation refused";
    case OCC_ERR_KEY: return "key error";
    }
    return "unknown error";
}

occ_status occ_parse_size(const char *s, unsigned long long *out)
{
    if (!s || !*s || !out)
        return OCC_ERR_INVALID;
    char *end = NULL;
    errno = 0;
    if (*s == '-')
        return OCC_ERR_INVALID;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return OCC_ERR_INVALID;
    unsigned long long mul = 1;
    if (*end) {
        switch (*end) {
        case 'k': case 'K': mul = 1ull << 10; break;
        case 'm': case 'M': mul = 1ull << 20; break;
        case 'g': case 'G': mul = 1ull << 30; break;
        case 'b': case 'B': mul = 1; break;
        default: return OCC_ERR_INVALID;
        }
        end++;
        if (mul > 1 && (*end == 'i' || *end == 'I'))
            end++;
        if (mul > 1 && (*end == 'b' || *end == 'B'))
            end++;
        if (*end)
            return OCC_ERR_INVALID;
    }
    if (v > ~0ull / mul)
        return OCC_ERR_INVALID;
    *out = v * mul;
    return OCC_OK;
}
