/* Writing a .occ pack (host side): weight layout, chunking, hashing, file. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "occ/crypto.h"
#include "occ/pack.h"

static uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Splits [start, end) into chunks of at most chunk_max bytes. Cuts fall on a
 * multiple of `row` bytes (relative to start) when a row fits in a chunk, so a
 * chunk holds whole output rows (output channels) of a weight; otherwise on
 * multiples of chunk_max. The region starts on a page; chunks inside it are
 * contiguous. */
static occ_status add_chunks(occ_model *m, uint32_t *cap, uint64_t start, uint64_t end, uint64_t row,
                             uint64_t chunk_max, occ_error *e)
{
    uint64_t step = chunk_max;
    /* (rows of a multiple of 4 bytes: chunks stay 4-byte aligned, which the
     * decoder requires; a byte tensor's odd rows are cut at chunk_max) */
    if (row > 0 && row <= chunk_max && row % 4u == 0)
        step = chunk_max / row * row;
    uint64_t pos = start;
    while (pos < end) {
        uint64_t n = end - pos < step ? end - pos : step;
        if (m->n_chunks == *cap) {
            uint32_t ncap = *cap ? *cap * 2 : 64;
            occ_chunk *nc = realloc(m->chunks, (size_t)ncap * sizeof *nc);
            if (!nc)
                return occ_fail(e, OCC_ERR_NOMEM, "out of memory laying out weights");
            m->chunks = nc;
            *cap = ncap;
        }
        occ_chunk *c = &m->chunks[m->n_chunks++];
        memset(c, 0, sizeof *c);
        c->offset = pos;
        c->size = n;
        pos += n;
    }
    return OCC_OK;
}

occ_status occ_pack_layout(occ_model *m, uint64_t chunk_max, occ_error *e)
{
    if (chunk_max < OCC_PAGE_SIZE)
        return occ_fail(e, OCC_ERR_INVALID, "chunk size must be at least %u bytes", OCC_PAGE_SIZE);
    chunk_max = chunk_max / OCC_PAGE_SIZE * OCC_PAGE_SIZE;
    uint8_t *placed = calloc(m->n_tensors ? m->n_tensors : 1, 1);
    if (!placed)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory laying out weights");
    free(m->chunks);
    m->chunks = NULL;
    m->n_chunks = 0;
    uint32_t cap = 0;
    uint64_t pos = 0;
    occ_status s = OCC_OK;
    for (uint32_t ni = 0; ni < m->n_nodes && !s; ni++) {
        const occ_node *n = &m->nodes[ni];
        uint64_t region = align_up(pos, OCC_PAGE_SIZE), cur = region;
        for (uint32_t k = 0; k < n->n_inputs; k++) {
            int32_t ti = n->inputs[k];
            if (ti < 0 || (uint32_t)ti >= m->n_tensors || placed[ti] ||
                m->tensors[ti].kind != OCC_TENSOR_WEIGHT)
                continue;
            occ_tensor *t = &m->tensors[ti];
            cur = align_up(cur, 64);
            /* A tensor that is the first of its region and has rows gets
             * its own row-aligned chunking; small companions (bias) share. */
            t->data_offset = cur;
            cur += t->size;
            placed[ti] = 1;
        }
        if (cur == region)
            continue;
        /* Row size of the region's first (largest, by convention: the
         * weight matrix) tensor, for row-aligned cuts. */
        uint64_t row = 0;
        for (uint32_t k = 0; k < n->n_inputs; k++) {
            int32_t ti = n->inputs[k];
            if (ti >= 0 && (uint32_t)ti < m->n_tensors && m->tensors[ti].kind == OCC_TENSOR_WEIGHT &&
                m->tensors[ti].data_offset == region && m->tensors[ti].ndim > 0) {
                row = m->tensors[ti].size / (uint64_t)m->tensors[ti].dims[0];
                break;
            }
        }
        s = add_chunks(m, &cap, region, cur, row, chunk_max, e);
        pos = cur;
    }
    for (uint32_t i = 0; i < m->n_tensors && !s; i++)
        if (m->tensors[i].kind == OCC_TENSOR_WEIGHT && !placed[i])
            s = occ_fail(e, OCC_ERR_INVALID, "weight '%s' is used by no node", m->tensors[i].name);
    free(placed);
    m->data_size = align_up(pos, OCC_PAGE_SIZE);
    return s;
}

static occ_status write_all(FILE *f, const void *p, size_t n, const char *path, occ_error *e)
{
    if (n && fwrite(p, 1, n, f) != n)
        return occ_fail(e, OCC_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    return OCC_OK;
}

static occ_status write_zeros(FILE *f, uint64_t n, const char *path, occ_error *e)
{
    static const uint8_t zeros[OCC_PAGE_SIZE];
    while (n) {
        size_t k = n > sizeof zeros ? sizeof zeros : (size_t)n;
        occ_status s = write_all(f, zeros, k, path, e);
        if (s)
            return s;
        n -= k;
    }
    return OCC_OK;
}

occ_status occ_pack_write(const char *path, occ_model *m, const uint8_t *data, occ_progress_fn progress,
                          void *progress_ctx, occ_error *e)
{
    uint64_t total = m->data_size * 2; /* hashing + writing */
    for (uint32_t i = 0; i < m->n_chunks; i++) {
        const occ_chunk *c = &m->chunks[i];
        if (c->offset > m->data_size || c->size > m->data_size - c->offset)
            return occ_fail(e, OCC_ERR_INVALID, "chunk %u lies outside the data section", i);
        if (occ_sha256(data + c->offset, c->size, m->chunks[i].sha256))
            return occ_fail(e, OCC_ERR_INTERNAL, "SHA-256 failed");
        if (progress)
            progress(progress_ctx, c->offset + c->size, total);
    }
    uint8_t *man = NULL;
    size_t man_size = 0;
    occ_status s = occ_manifest_encode(m, &man, &man_size, e);
    if (s)
        return s;
    if (man_size > OCC_PACK_MAX_MANIFEST_SIZE) {
        free(man);
        return occ_fail(e, OCC_ERR_INVALID, "manifest of %zu bytes exceeds the limit", man_size);
    }
    s = occ_sha256(man, man_size, m->model_id) ? OCC_ERR_INTERNAL : OCC_OK;
    if (s) {
        free(man);
        return occ_fail(e, s, "SHA-256 failed");
    }

    uint8_t header[OCC_PACK_HEADER_SIZE] = {0};
    uint64_t man_off = OCC_PACK_HEADER_SIZE;
    uint64_t data_off = align_up(man_off + man_size, OCC_PAGE_SIZE);
    memcpy(header, OCC_PACK_MAGIC, 8);
    put_u32(header + 8, OCC_PACK_VERSION);
    put_u32(header + 12, 0);
    put_u64(header + 16, man_off);
    put_u64(header + 24, man_size);
    put_u64(header + 32, data_off);
    put_u64(header + 40, m->data_size);

    /* Write to a temporary name, then rename: a reader never sees half a pack. */
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 8);
    if (!tmp) {
        free(man);
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    }
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        s = occ_fail(e, OCC_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
        free(man);
        free(tmp);
        return s;
    }
    s = write_all(f, header, sizeof header, path, e);
    if (!s)
        s = write_all(f, man, man_size, path, e);
    if (!s)
        s = write_zeros(f, data_off - man_off - man_size, path, e);
    const uint64_t step = 16u << 20;
    for (uint64_t pos = 0; !s && pos < m->data_size; pos += step) {
        uint64_t n = m->data_size - pos < step ? m->data_size - pos : step;
        s = write_all(f, data + pos, (size_t)n, path, e);
        if (progress)
            progress(progress_ctx, m->data_size + pos + n, total);
    }
    if (fclose(f) && !s)
        s = occ_fail(e, OCC_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    if (!s && rename(tmp, path))
        s = occ_fail(e, OCC_ERR_IO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    if (s)
        remove(tmp);
    free(man);
    free(tmp);
    return s;
}
