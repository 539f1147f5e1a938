/* A tiny strict CBOR reader for the TCG RA-TLS evidence: definite lengths
 * only, minimal heads only, bounded nesting. */
#include "attest/attest_int.h"

int occ_cbor_head(occ_cur *c, unsigned *major, uint64_t *arg)
{
    const uint8_t *p;
    if (!occ_cur_take(c, 1, &p))
        return 0;
    *major = p[0] >> 5;
    unsigned ai = p[0] & 31;
    if (ai < 24) {
        *arg = ai;
        return 1;
    }
    if (ai > 27)
        return 0; /* indefinite lengths and reserved values refused */
    size_t n = (size_t)1 << (ai - 24);
    if (!occ_cur_take(c, n, &p))
        return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v << 8 | p[i];
    /* minimal encoding: the value needed this many bytes */
    if ((ai == 24 && v < 24) || (ai == 25 && v <= 0xff) || (ai == 26 && v <= 0xffff) ||
        (ai == 27 && v <= 0xffffffffull)) {
        if (*major != 7) /* floats (major 7) have their own widths */
            return 0;
    }
    *arg = v;
    return 1;
}

/* Skips one data item. */
int occ_cbor_skip(occ_cur *c, int depth)
{
    unsigned major;
    uint64_t arg;
    if (depth > 16 || !occ_cbor_head(c, &major, &arg))
        return 0;
    switch (major) {
    case 0:
    case 1:
        return 1;
    case 2:
    case 3:
        return arg <= c->left && occ_cur_take(c, (size_t)arg, NULL);
    case 4:
        if (arg > c->left)
            return 0;
        for (uint64_t i = 0; i < arg; i++)
            if (!occ_cbor_skip(c, depth + 1))
                return 0;
        return 1;
    case 5:
        if (arg > c->left)
            return 0;
        for (uint64_t i = 0; i < 2 * arg; i++)
            if (!occ_cbor_skip(c, depth + 1))
                return 0;
        return 1;
    case 6:
        return occ_cbor_skip(c, depth + 1);
    default: /* 7: simple values and floats; the head carried them */
        return 1;
    }
}
