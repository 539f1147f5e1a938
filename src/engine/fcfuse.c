/* Fused streamed fully connected layers (docs/streaming.md, "Fused fully
 * connected layers").
 *
 * A streamed Gemm at small batch does two FLOPs per weight it streams, so
 * nothing hides its loading. Through the ring, each of its segments was
 * copied into a ring slot and authenticated by a loader, then read back by
 * the compute thread's sgemm: two passes over memory, one of them by a
 * single thread. Here the compute threads take the layer's segments
 * themselves (dynamically, so both cores work) and, piece by piece (whole
 * rows of B, about FUSE_PIECE bytes), copy a piece into their own small
 * enclave buffer, authenticate (or decrypt) it there and multiply it while
 * it is still in cache.
 *
 * Release rule: a piece's products go into the step's output columns,
 * which are enclave memory that no later step reads before this step ends.
 * A segment's bias (C) comes last in its bytes and is added only after the
 * segment's tag compared equal; the step returns OCC_OK only when every
 * segment's tag did; one failure fails the run, and a failed run writes no
 * output (occ_engine_run_n). So no result computed from unauthenticated
 * bytes ever leaves the enclave or reaches another layer. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "engine/exec_int.h"
#include "ops/ops_internal.h"
#include <openssl/crypto.h>

#define FUSE_PIECE (UINT64_C(64) << 10) /* bytes of B per piece: L2-resident */
#define FUSE_ROW_MAX (UINT64_C(1) << 20) /* longer rows: through the ring */
#define FUSE_MAX_THREADS 8               /* crypto is per core; DRAM bounds the rest */

int occ_engine_fuse_fc = 1;

struct occ_fcfuse {
    int n;                  /* threads */
    uint64_t buf_size;      /* bytes per thread buffer */
    segmac **mac;           /* per thread */
    uint8_t **buf;          /* per thread, enclave memory */
    const float **a;        /* per image: A and y of the current step */
    float **y;
};

static int fuse_threads(const occ_engine *eng)
{
    int t = eng->threads > 0 ? eng->threads : omp_get_max_threads();
    return t < 1 ? 1 : t > FUSE_MAX_THREADS ? FUSE_MAX_THREADS : t;
}

static uint64_t row_bytes(const step *s)
{
    occ_gemm_desc d;
    occ_gemm_describe(s->state, &d);
    return (uint64_t)d.k * 4u;
}

static uint64_t piece_rows(uint64_t rowb)
{
    return FUSE_PIECE / rowb ? FUSE_PIECE / rowb : 1;
}

int occ_eng_fuse_candidate(const occ_engine *eng, const step *s)
{
    if (!occ_engine_fuse_fc || eng->mode != OCC_MODE_OCCLUMENCY || s->kind != K_GEMM || !s->state)
        return 0;
    occ_gemm_desc d;
    occ_gemm_describe(s->state, &d);
    return !d.ta && d.tb && d.k > 0 && (uint64_t)d.k * 4u <= FUSE_ROW_MAX;
}

/* Bytes a thread buffer needs for step s: a piece of rows, or a segment's
 * tail (alignment padding and its slice of C), whichever is larger. */
static uint64_t step_buf(const occ_engine *eng, const step *s)
{
    uint64_t rowb = row_bytes(s), need = piece_rows(rowb) * rowb;
    for (uint32_t p = 0; p < s->n_parts; p++) {
        uint64_t rows = (uint64_t)(s->cols[p + 1] - s->cols[p]) * rowb;
        uint64_t size = eng->segs[s->first_seg + p].size;
        if (size > rows && size - rows > need)
            need = size - rows;
    }
    return (need + 63u) & ~UINT64_C(63);
}

static uint64_t max_buf(const occ_engine *eng)
{
    uint64_t need = 0;
    for (uint32_t i = 0; i < eng->n_steps; i++)
        if (occ_eng_fuse_candidate(eng, &eng->steps[i])) {
            uint64_t b = step_buf(eng, &eng->steps[i]);
            need = b > need ? b : need;
        }
    return need;
}

/* Enclave bytes to keep out of the plan for the thread buffers, before
 * the plan decides what streams (0 when no Gemm could be fused). */
uint64_t occ_eng_fuse_reserve(const occ_engine *eng)
{
    uint64_t b = max_buf(eng);
    return b ? (uint64_t)fuse_threads(eng) * occ_eng_emem_round(&eng->mem, b) : 0;
}

/* After a plan: with fuse, a candidate with a streamed segment is fused
 * (its resident segments are multiplied in place by the same threads);
 * reserve: the bytes that plan kept aside for the buffers. */
void occ_eng_fuse_mark(occ_engine *eng, int fuse, uint64_t reserve)
{
    int any = 0;
    for (uint32_t i = 0; i < eng->n_steps; i++) {
        step *s = &eng->steps[i];
        int streams = 0;
        for (uint32_t p = 0; s->kind != K_NONE && p < s->n_parts; p++)
            streams |= eng->segs[s->first_seg + p].streamed;
        s->fused = fuse && streams && occ_eng_fuse_candidate(eng, s);
        for (uint32_t p = 0; s->kind != K_NONE && p < s->n_parts; p++)
            eng->segs[s->first_seg + p].fused = s->fused && eng->segs[s->first_seg + p].streamed;
        any |= s->fused;
    }
    eng->fuse_reserve = any ? reserve : 0; /* else kept aside, never allocated */
}

occ_status occ_eng_fuse_alloc(occ_engine *eng, occ_error *e)
{
    if (!eng->fuse_reserve)
        return OCC_OK;
    struct occ_fcfuse *f = calloc(1, sizeof *f);
    if (!f)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    eng->fuse = f;
    f->n = fuse_threads(eng);
    f->buf_size = max_buf(eng);
    f->mac = calloc((size_t)f->n, sizeof *f->mac);
    f->buf = calloc((size_t)f->n, sizeof *f->buf);
    f->a = calloc(eng->batch, sizeof *f->a);
    f->y = calloc(eng->batch, sizeof *f->y);
    if (!f->mac || !f->buf || !f->a || !f->y)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    for (int t = 0; t < f->n; t++) {
        if (!(f->mac[t] = occ_eng_segmac_new(eng)))
            return occ_fail(e, OCC_ERR_INTERNAL, "segment MAC setup failed");
        if (!(f->buf[t] = occ_eng_emem_alloc(&eng->mem, f->buf_size, e)))
            return occ_fail(e, OCC_ERR_NOMEM, "out of enclave memory for the fused FC buffers");
        memset(f->buf[t], 0, (size_t)f->buf_size); /* first touches now, not at run */
    }
    return OCC_OK;
}

void occ_eng_fuse_free(occ_engine *eng)
{
    struct occ_fcfuse *f = eng->fuse;
    if (!f)
        return;
    for (int t = 0; t < f->n; t++) {
        occ_eng_segmac_free(f->mac ? f->mac[t] : NULL);
        if (f->buf && f->buf[t]) {
            OPENSSL_cleanse(f->buf[t], (size_t)f->buf_size);
            occ_eng_emem_free(&eng->mem, f->buf[t], f->buf_size);
        }
    }
    free(f->mac);
    free(f->buf);
    free(f->a);
    free(f->y);
    free(f);
    eng->fuse = NULL;
}

/* y[:, j0:j1] += beta * C, with cv the segment's C (a slice from j0, or
 * C's one value when it is a scalar). */
static void add_c(const occ_gemm_desc *d, const float *cv, float *const *y, uint32_t n_img,
                  int64_t rows, int64_t j0, int64_t j1)
{
    if (!d->has_c || d->beta == 0.0f)
        return;
    for (uint32_t b = 0; b < n_img; b++)
        for (int64_t i = 0; i < rows; i++) {
            float *yr = y[b] + i * d->n;
            for (int64_t j = j0; j < j1; j++)
                yr[j] += d->beta * (d->cc == 1 ? cv[0] : cv[j - j0]);
        }
}

/* One segment (part p of step s) by one thread: copy, authenticate and
 * multiply piece by piece, then - tag checked - add beta * C. Returns 1 when
 * the segment authenticated and every sgemm ran. */
static int fuse_part(occ_engine *eng, const step *s, const occ_gemm_desc *d, uint32_t p,
                     segmac *c, uint8_t *buf, uint32_t n_img, int64_t rows)
{
    struct occ_fcfuse *f = eng->fuse;
    const uint32_t gi = s->first_seg + p;
    const seg *g = &eng->segs[gi];
    const uint8_t *src = eng->stash + g->ct_off;
    const int64_t j0 = s->cols[p], j1 = s->cols[p + 1];
    const uint64_t rowb = (uint64_t)d->k * 4u, pr = piece_rows(rowb);
    const uint64_t body = (uint64_t)(j1 - j0) * rowb;
    const uint64_t coff = ((body + 63u) & ~UINT64_C(63)) - body;
    if (!g->streamed) { /* resident: verified at create */
        int ok = 1;
        for (uint32_t b = 0; ok && b < n_img; b++)
            ok = dnnl_sgemm('N', 'T', rows, j1 - j0, d->k, d->alpha, f->a[b], d->k,
                            (const float *)(const void *)g->res, d->k, 0.0f, f->y[b] + j0,
                            d->n) == dnnl_success;
        if (ok)
            add_c(d, (const float *)(const void *)(g->res + body + coff), f->y, n_img, rows, j0,
                  j1);
        return ok;
    }
    int ok = occ_eng_seg_begin(eng, c, gi, g->size);
    for (int64_t j = j0; ok && j < j1; j += (int64_t)pr) {
        int64_t nr = j1 - j < (int64_t)pr ? j1 - j : (int64_t)pr;
        uint64_t off = (uint64_t)(j - j0) * rowb, bytes = (uint64_t)nr * rowb;
        ok = occ_eng_seg_piece(c, buf, src + off, bytes);
        /* alpha * A * piece': unauthenticated until the tag below checks */
        for (uint32_t b = 0; ok && b < n_img; b++)
            ok = dnnl_sgemm('N', 'T', rows, nr, d->k, d->alpha, f->a[b], d->k,
                            (const float *)(const void *)buf, d->k, 0.0f, f->y[b] + j,
                            d->n) == dnnl_success;
    }
    /* the tail: alignment padding, then C (a slice, or the whole C when it
     * is a scalar: see gemm_c in exec.c) */
    const uint64_t tail = g->size > body ? g->size - body : 0;
    ok = ok && (!tail || occ_eng_seg_piece(c, buf, src + body, tail));
    ok = ok && occ_eng_seg_end(c, g->tag);
    __atomic_add_fetch(&eng->chunks_loaded, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&eng->bytes_loaded, g->size, __ATOMIC_RELAXED);
    __atomic_add_fetch(&eng->bytes_verified, g->size, __ATOMIC_RELAXED);
    if (eng->encrypted)
        __atomic_add_fetch(&eng->bytes_decrypted, g->size, __ATOMIC_RELAXED);
    if (ok)
        add_c(d, (const float *)(const void *)(buf + coff), f->y, n_img, rows, j0, j1);
    return ok;
}

/* Runs fused step s: y[b] = alpha * a[b] * B' + beta * C for n_img images
 * whose A and y pointers the caller put in a and y (rows_per: rows of A per
 * pointer). */
occ_status occ_eng_fuse_run_n(occ_engine *eng, const step *s, const float *const *a,
                              float *const *y, uint32_t n_img, int64_t rows_per, occ_error *e)
{
    struct occ_fcfuse *f = eng->fuse;
    if (!f || n_img > eng->batch)
        return occ_fail(e, OCC_ERR_INTERNAL, "fused FC step without its buffers");
    occ_gemm_desc d;
    occ_gemm_describe(s->state, &d);
    for (uint32_t b = 0; b < n_img; b++) {
        f->a[b] = a[b];
        f->y[b] = y[b];
    }
    /* the host sees the stash read in whatever order the threads take the
     * segments; the load hooks (traces) report the layer's segments in
     * their order, as the ring does */
    for (uint32_t p = 0; eng->on_chunk && p < s->n_parts; p++)
        eng->on_chunk(eng->hook_ctx, s->first_seg + p);
    int bad = -1;
    const int np = (int)s->n_parts;
#pragma omp parallel for schedule(dynamic, 1) num_threads(f->n)
    for (int p = 0; p < np; p++) {
        int t = omp_get_thread_num();
        int failed;
        __atomic_load(&bad, &failed, __ATOMIC_RELAXED);
        if (failed >= 0)
            continue;
        if (!fuse_part(eng, s, &d, (uint32_t)p, f->mac[t], f->buf[t], n_img, rows_per)) {
            int none = -1;
            __atomic_compare_exchange_n(&bad, &none, p, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
        }
    }
    if (bad < 0)
        return OCC_OK;
    __atomic_add_fetch(&eng->integrity_failures, 1, __ATOMIC_RELAXED);
    const uint32_t gi = s->first_seg + (uint32_t)bad;
    const occ_node *nd = &eng->m->nodes[s->node];
    return occ_fail(e, OCC_ERR_INTEGRITY,
                    "weight segment %u (node %s, part %u) failed authentication: the host's copy "
                    "was altered",
                    gi, nm(nd->name), eng->segs[gi].part);
}
