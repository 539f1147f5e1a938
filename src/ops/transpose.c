/* Transpose: generic N-d permutation of any dtype; the innermost output
 * dimension runs as a strided gather. 4-byte elements whose last two output
 * dims swap the input's last two (a batched matrix transpose: attention's
 * heads, a 1-D convolution's [L, C] back to [C, L]) go through 32 x 32
 * tiles instead: the gather walked the input a cache line per element
 * (6 ms for wav2vec2's [3199, 512]). 4-byte elements (the float
 * tensors of attention) are shared by par.h's pool, not an OpenMP team
 * (whose static split waits for a descheduled thread). */
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"
#include "ops/par.h"

typedef struct transpose_state {
    int nd;
    int64_t odims[OCC_MAX_DIMS];
    int64_t istride[OCC_MAX_DIMS]; /* input stride for each output dim */
    int64_t count;
    size_t esize;
} transpose_state;

static occ_status transpose_params(const occ_model *m, const occ_node *n, transpose_state *s,
                                   occ_error *e)
{
    const occ_tensor *x = occ_ops_in(m, n, 0);
    const int64_t *perm;
    uint32_t c;
    occ_status st = occ_ops_attr_ints(n, "perm", OCC_MAX_DIMS, &perm, &c, e);
    if (st)
        return st;
    if (c && (int)c != x->ndim)
        return occ_fail(e, OCC_ERR_INVALID, "perm has %u values for rank %d", c, x->ndim);
    int64_t in_stride[OCC_MAX_DIMS];
    int64_t acc = 1;
    for (int i = x->ndim - 1; i >= 0; i--) {
        in_stride[i] = acc;
        acc *= x->dims[i];
    }
    int seen[OCC_MAX_DIMS] = {0};
    s->nd = x->ndim;
    for (int i = 0; i < x->ndim; i++) {
        int64_t p = c ? perm[i] : x->ndim - 1 - i;
        if (p < 0 || p >= x->ndim || seen[p])
            return occ_fail(e, OCC_ERR_INVALID, "perm is not a permutation of 0..%d",
                            x->ndim - 1);
        seen[p] = 1;
        s->odims[i] = x->dims[p];
        s->istride[i] = in_stride[p];
    }
    s->count = occ_ops_count(x->ndim, x->dims);
    s->esize = occ_ops_esize(x);
    return OCC_OK;
}

static occ_status transpose_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    transpose_state s;
    occ_status st = transpose_params(m, n, &s, e);
    if (st)
        return st;
    return occ_ops_set_out(m, n, 0, s.nd, s.odims, e);
}

static occ_status transpose_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    transpose_state *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    occ_status st = transpose_params(p->m, p->n, s, e);
    if (st) {
        free(s);
        return st;
    }
    *state = s;
    return OCC_OK;
}

/* One element type's loop (the op moves elements of 1, 2, 4 or 8 bytes). */
#define TRANSPOSE_LOOP(T)                                                                \
    do {                                                                                 \
        const T *in = x->in[0];                                                          \
        T *out = x->out[0];                                                              \
        _Pragma("omp parallel for if (s->count > 65536) schedule(static)")               \
        for (int64_t r = 0; r < rows; r++) {                                             \
            int64_t rem = r, off = 0;                                                    \
            for (int d = s->nd - 2; d >= 0; d--) {                                       \
                off += (rem % s->odims[d]) * s->istride[d];                              \
                rem /= s->odims[d];                                                      \
            }                                                                            \
            T *o = out + r * inner;                                                      \
            for (int64_t i = 0; i < inner; i++)                                          \
                o[i] = in[off + i * is];                                                 \
        }                                                                                \
    } while (0)

typedef struct tr_job {
    const transpose_state *s;
    const uint32_t *in;
    uint32_t *out;
} tr_job;

/* batched matrix transpose: blocks of 32 output rows [q0, q1) */
static void tr_tiles(void *ctx, int64_t q0, int64_t q1)
{
    const tr_job *jb = ctx;
    const transpose_state *s = jb->s;
    const int64_t R = s->odims[s->nd - 2], C = s->odims[s->nd - 1], is = s->istride[s->nd - 1];
    const int64_t tr = (R + 31) / 32, tc = (C + 31) / 32;
    for (int64_t q = q0; q < q1; q++) {
        const int64_t b = q / tr, i0 = (q % tr) * 32, i1 = i0 + 32 < R ? i0 + 32 : R;
        int64_t rem = b, off = 0;
        for (int d = s->nd - 3; d >= 0; d--) {
            off += (rem % s->odims[d]) * s->istride[d];
            rem /= s->odims[d];
        }
        uint32_t *ob = jb->out + b * R * C;
        for (int64_t t = 0; t < tc; t++) {
            const int64_t j0 = t * 32, j1 = j0 + 32 < C ? j0 + 32 : C;
            for (int64_t j = j0; j < j1; j++)
                for (int64_t i = i0; i < i1; i++)
                    ob[i * C + j] = jb->in[off + i + j * is];
        }
    }
}

/* output rows [r0, r1), each a strided gather (a copy when is = 1) */
static void tr_rows(void *ctx, int64_t r0, int64_t r1)
{
    const tr_job *jb = ctx;
    const transpose_state *s = jb->s;
    const int64_t inner = s->odims[s->nd - 1], is = s->istride[s->nd - 1];
    for (int64_t r = r0; r < r1; r++) {
        int64_t rem = r, off = 0;
        for (int d = s->nd - 2; d >= 0; d--) {
            off += (rem % s->odims[d]) * s->istride[d];
            rem /= s->odims[d];
        }
        uint32_t *o = jb->out + r * inner;
        if (is == 1) {
            memcpy(o, jb->in + off, (size_t)inner * 4u);
            continue;
        }
        for (int64_t i = 0; i < inner; i++)
            o[i] = jb->in[off + i * is];
    }
}

static occ_status transpose_run(void *state, const occ_op_exec *x, occ_error *e)
{
    const transpose_state *s = state;
    if (s->nd == 0) {
        memcpy(x->out[0], x->in[0], s->esize);
        return OCC_OK;
    }
    int64_t inner = s->odims[s->nd - 1], is = s->istride[s->nd - 1];
    int64_t rows = s->count / inner;
    if (s->esize == 4) {
        tr_job j = {.s = s, .in = x->in[0], .out = x->out[0]};
        if (s->nd >= 2 && s->istride[s->nd - 2] == 1 && is > 1) {
            const int64_t R = s->odims[s->nd - 2], C = inner, nb = s->count / (R * C);
            const int64_t tr = (R + 31) / 32;
            occ_par_for(nb * tr, s->count > 65536 ? 1 : nb * tr, tr_tiles, &j);
        } else {
            occ_par_for(rows, s->count > 65536 ? (8192 + inner - 1) / inner : rows, tr_rows, &j);
        }
        return OCC_OK;
    }
    if (s->esize == 8)
        TRANSPOSE_LOOP(uint64_t);
    else if (s->esize == 4)
        TRANSPOSE_LOOP(uint32_t);
    else if (s->esize == 2)
        TRANSPOSE_LOOP(uint16_t);
    else
        TRANSPOSE_LOOP(uint8_t);
    return OCC_OK;
}

static uint64_t transpose_flops(const occ_model *m, const occ_node *n)
{
    return 0;
}

static void transpose_destroy(void *s)
{
    free(s);
}

const occ_op_vtable occ_op_transpose = {
    .op = "Transpose",
    .min_in = 1,
    .max_in = 1,
    .n_out = 1,
    .n_in_types = 1,
    .in_types = {OCC_DTM_ALL},
    .infer = transpose_infer,
    .flops = transpose_flops,
    .prepare = transpose_prepare,
    .run = transpose_run,
    .destroy = transpose_destroy,
};
