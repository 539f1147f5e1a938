/* Weight loading: copy chunks in through the read callback, verify each one
 * against the SHA-256 in the manifest before anything uses the bytes. */
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"
#include "occ/crypto.h"

occ_status occ_weights_load(const occ_model *m, uint64_t lo, uint64_t hi, occ_read_fn read,
                            void *ctx, uint8_t **buf, uint64_t *base, occ_error *e)
{
    *buf = NULL;
    *base = 0;
    if (hi <= lo)
        return occ_fail(e, OCC_ERR_INTERNAL, "empty weight range");
    /* the chunks overlapping [lo, hi) must tile it without gaps */
    uint64_t start = UINT64_MAX, end = 0, covered = 0;
    for (uint32_t i = 0; i < m->n_chunks; i++) {
        const occ_chunk *c = &m->chunks[i];
        if (c->offset < hi && c->offset + c->size > lo) {
            if (c->offset < start)
                start = c->offset;
            if (c->offset + c->size > end)
                end = c->offset + c->size;
            covered += c->size;
            if (covered > (UINT64_C(1) << 52))
                return occ_fail(e, OCC_ERR_INTEGRITY, "overlapping weight chunks");
        }
    }
    /* overlapping chunks would double count; gaps would leave covered short */
    if (start > lo || end < hi || covered != end - start)
        return occ_fail(e, OCC_ERR_INTEGRITY,
                        "weights at [%llu, %llu) are not exactly covered by hashed chunks",
                        (unsigned long long)lo, (unsigned long long)hi);
    uint64_t size = end - start;
    uint8_t *b = (size > SIZE_MAX - 64) ? NULL : aligned_alloc(64, (size_t)((size + 63) & ~63u));
    if (!b)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory for %llu bytes of weights",
                        (unsigned long long)size);
    for (uint32_t i = 0; i < m->n_chunks; i++) {
        const occ_chunk *c = &m->chunks[i];
        if (!(c->offset < hi && c->offset + c->size > lo))
            continue;
        uint8_t *dst = b + (c->offset - start);
        occ_status st = read(ctx, c->offset, dst, c->size, e);
        if (st) {
            free(b);
            return st;
        }
        uint8_t h[32];
        if (c->size > SIZE_MAX || occ_sha256(dst, (size_t)c->size, h)) {
            free(b);
            return occ_fail(e, OCC_ERR_INTERNAL, "SHA-256 failed");
        }
        if (memcmp(h, c->sha256, 32) != 0) {
            free(b);
            return occ_fail(e, OCC_ERR_INTEGRITY, "weight chunk %u failed verification", i);
        }
    }
    *buf = b;
    *base = start;
    return OCC_OK;
}
