/* MatMul (numpy semantics: 1-D operands promoted, batch dims broadcast), one
 * oneDNN sgemm per batch matrix.
 *
 * occ_packB = N (an attribute only the packer sets, src/pack/fuse.c): the
 * constant 2-D B [K, N] of a Linear is stored in panels of 16 columns,
 * [ceil(N / 16), K * 16] (panel j: for each k the 16 values of columns
 * 16j..16j+15, zeros past N), and A's rows (all leading dims flattened) run
 * through vecmath.c's 6x16 AVX2 kernel on those panels. oneDNN's sgemm
 * re-packs a plain B at every call and reads a [768, 3072] B, whose rows are
 * 12 KiB apart, at half speed (44 vs 83 GFLOP/s); the panels are what its
 * packing would produce, made once at pack time (docs/benchmarks.md).
 * The streamed pieces (occ_matmul_run_rows) are then whole panels: output
 * columns, each a complete dot product over K, so a streamed run computes
 * exactly what a native one does. occ_bias = 1: each panel carries one more
 * row, the bias of its 16 columns (the Add the exporter put after the
 * Linear, fused by the packer: no pass over Y, and it streams with its
 * panel). occ_act = OCC_ACT_* (vecmath.h; with occ_packB only): the
 * activation after the Linear (GELU, ReLU), folded by src/pack/epifold.c
 * and applied by the kernel while the output is in cache (a tile in
 * registers, or for erf-GELU a finished block of rows), as the separate op
 * would compute it; a streamed piece is whole columns, so it applies there
 * too.
 *
 * A batch of small products (attention's Q K^T and attn V: per head
 * [128, 64] x [64, 128]) runs on vecmath.c's kernel reading B in place, the
 * (matrix, block of rows) pairs shared by par.h's pool: oneDNN's sgemm ran
 * the heads one after another, each split statically over the threads. */
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"
#include "ops/par.h"
#include "ops/vecmath.h"

typedef struct matmul_state {
    int64_t m, n, k, batch;
    int nb;                            /* batch rank of the output */
    int64_t bdims[OCC_MAX_DIMS];       /* output batch dims */
    int64_t sa[OCC_MAX_DIMS], sb[OCC_MAX_DIMS]; /* matrix strides per batch dim */
    int flat;                          /* B is 2-D and A holds every batch dim: the
                                        * batch is one [batch * m, k] x [k, n] sgemm */
    int pb;                            /* occ_packB: B stored as panels of 16 columns */
    int64_t np;                        /* occ_packB: panels, ceil(n / 16) */
    int bias;                          /* occ_bias: each panel ends with its bias row */
    int act;                           /* occ_act: OCC_ACT_* applied as Y is stored */
} matmul_state;

static occ_status matmul_params(const occ_model *m, const occ_node *n, matmul_state *s,
                                int *ond, int64_t *od, occ_error *e)
{
    const occ_tensor *a = occ_ops_in(m, n, 0), *b = occ_ops_in(m, n, 1);
    if (a->ndim < 1 || b->ndim < 1)
        return occ_fail(e, OCC_ERR_SHAPE, "MatMul operands must have rank >= 1");
    int ra = a->ndim, rb = b->ndim;
    int64_t pn, pbias, pact;
    occ_status st = occ_ops_attr_int(n, "occ_packB", 0, &pn, e);
    if (st || (st = occ_ops_attr_int(n, "occ_bias", 0, &pbias, e)) ||
        (st = occ_ops_attr_int(n, "occ_act", 0, &pact, e)))
        return st;
    if ((pbias != 0 && pbias != 1) || (pbias && !pn))
        return occ_fail(e, OCC_ERR_INVALID, "occ_bias = %lld (0, or 1 with occ_packB)",
                        (long long)pbias);
    if (pact < OCC_ACT_NONE || pact > OCC_ACT_GELU_TANH || (pact && !pn))
        return occ_fail(e, OCC_ERR_INVALID, "occ_act = %lld (0; 1..3 with occ_packB)",
                        (long long)pact);
    s->bias = (int)pbias;
    s->act = (int)pact;
    s->pb = pn != 0;
    s->m = ra >= 2 ? a->dims[ra - 2] : 1;
    s->k = a->dims[ra - 1];
    int64_t kb = rb >= 2 ? b->dims[rb - 2] : b->dims[0];
    s->n = rb >= 2 ? b->dims[rb - 1] : 1;
    if (s->pb) {
        /* B is [ceil(N / 16), (K + bias) * 16] */
        if (pn < 1 || pn > (INT64_C(1) << 40) || rb != 2 || ra < 2 ||
            b->dims[0] != (pn + 15) / 16 || b->dims[1] % 16)
            return occ_fail(e, OCC_ERR_INVALID, "occ_packB = %lld does not match B [%lld, %lld] "
                            "(A of rank %d)", (long long)pn, (long long)b->dims[0],
                            (long long)b->dims[rb - 1], ra);
        s->np = b->dims[0];
        kb = b->dims[1] / 16 - s->bias;
        s->n = pn;
    }
    if (kb != s->k)
        return occ_fail(e, OCC_ERR_SHAPE, "inner dimensions differ: %lld vs %lld",
                        (long long)s->k, (long long)kb);
    int ba = ra > 2 ? ra - 2 : 0, bb = rb > 2 ? rb - 2 : 0;
    st = occ_ops_broadcast(ba, a->dims, bb, b->dims, &s->nb, s->bdims, e);
    if (st)
        return st;
    int64_t ca = s->m * s->k, cb = s->k * s->n;
    s->batch = 1;
    for (int i = s->nb - 1; i >= 0; i--) {
        int ia = i - (s->nb - ba), ib = i - (s->nb - bb);
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        s->sa[i] = da == 1 ? 0 : ca;
        s->sb[i] = db == 1 ? 0 : cb;
        ca *= da;
        cb *= db;
        s->batch *= s->bdims[i];
    }
    s->flat = rb == 2 && ra >= 2;
    for (int i = 0; i < s->nb; i++)
        s->flat &= s->sa[i] != 0 || s->bdims[i] == 1;
    int r = 0;
    for (int i = 0; i < s->nb; i++)
        od[r++] = s->bdims[i];
    if (ra >= 2)
        od[r++] = s->m;
    if (rb >= 2)
        od[r++] = s->n;
    *ond = r;
    return OCC_OK;
}

static occ_status matmul_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    matmul_state s;
    int nd;
    int64_t d[OCC_MAX_DIMS + 2];
    occ_status st = matmul_params(m, n, &s, &nd, d, e);
    if (st)
        return st;
    return occ_ops_set_out(m, n, 0, nd, d, e);
}

static uint64_t matmul_flops(const occ_model *m, const occ_node *n)
{
    matmul_state s;
    int nd;
    int64_t d[OCC_MAX_DIMS + 2];
    if (matmul_params(m, n, &s, &nd, d, NULL))
        return 0;
    return 2u * (uint64_t)s.batch * s.m * s.n * s.k;
}

static occ_status matmul_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    matmul_state *s = calloc(1, sizeof *s);
    int nd;
    int64_t d[OCC_MAX_DIMS + 2];
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    occ_status st = matmul_params(p->m, p->n, s, &nd, d, e);
    if (st) {
        free(s);
        return st;
    }
    *state = s;
    return OCC_OK;
}

/* Offsets of matrix bi of the batch in A and in B (broadcast batch dims) */
static void batch_offsets(const matmul_state *s, int64_t bi, int64_t *oa, int64_t *ob)
{
    int64_t rem = bi;
    *oa = *ob = 0;
    for (int d = s->nb - 1; d >= 0; d--) {
        const int64_t idx = rem % s->bdims[d];
        rem /= s->bdims[d];
        *oa += idx * s->sa[d];
        *ob += idx * s->sb[d];
    }
}

/* Rows of output a pool task computes in one matrix (a multiple of 6, the
 * kernel's block): 12 heads of 128 rows make 36 tasks. */
enum { MM_ROWS = 48 };

typedef struct mm_batch_job {
    const matmul_state *s;
    const float *a, *b;
    float *y;
    int64_t rblk; /* blocks of MM_ROWS rows per matrix */
} mm_batch_job;

static void mm_batch_tasks(void *ctx, int64_t t0, int64_t t1)
{
    const mm_batch_job *j = ctx;
    const matmul_state *s = j->s;
    for (int64_t t = t0; t < t1; t++) {
        const int64_t bi = t / j->rblk, r0 = (t % j->rblk) * MM_ROWS;
        const int64_t rows = s->m - r0 < MM_ROWS ? s->m - r0 : MM_ROWS;
        int64_t oa, ob;
        batch_offsets(s, bi, &oa, &ob);
        occ_vec_gemm_plain(j->a + oa + r0 * s->k, rows, s->k, s->k, j->b + ob, s->n, s->n,
                           j->y + (bi * s->m + r0) * s->n, s->n);
    }
}

static occ_status matmul_run(void *state, const occ_op_exec *x, occ_error *e)
{
    const matmul_state *s = state;
    const float *a = x->in[0], *b = x->in[1]; /* typed once, whatever exec's pointer type */
    float *y = x->out[0];
    if (s->flat) /* one sgemm for the whole batch (a transformer's Linear: tokens x features) */
        return occ_matmul_run_rows(s, a, b, 0, s->pb ? s->np : s->k, y, e);
    /* small matrices (B within 1 MiB, L2's reach): our kernel, all heads at once */
    if (occ_vec_fast() && s->n >= 16 && s->k * s->n <= 256 * 1024) {
        mm_batch_job j = {.s = s, .a = a, .b = b, .y = y,
                          .rblk = (s->m + MM_ROWS - 1) / MM_ROWS};
        const int64_t tasks = s->batch * j.rblk;
        occ_par_for(tasks, s->batch * s->m * s->n * s->k > 65536 ? 1 : tasks, mm_batch_tasks,
                    &j);
        return OCC_OK;
    }
    for (int64_t bi = 0; bi < s->batch; bi++) {
        int64_t oa, ob;
        batch_offsets(s, bi, &oa, &ob);
        occ_status st = occ_dnnl_check(dnnl_sgemm('N', 'N', s->m, s->n, s->k, 1.0f, a + oa,
                                                  s->k, b + ob, s->n, 0.0f,
                                                  y + bi * s->m * s->n, s->n),
                                       "sgemm", e);
        if (st)
            return st;
    }
    return OCC_OK;
}

/* Rows of B as stored: K, or the panels (occ_packB). */
int occ_matmul_splittable(const void *state, int64_t *k)
{
    const matmul_state *s = state;
    *k = s->pb ? s->np : s->k;
    return s->flat;
}

/* Plain B: y (+)= A[:, k0:k1] B[k0:k1, :] for all rows of A at once; the
 * first piece (k0 = 0) writes y, the others add to it. Panels (occ_packB):
 * panels k0..k1 give columns 16 k0 .. min(16 k1, N) of y, written whole, in
 * any order of pieces. */
occ_status occ_matmul_run_rows(const void *state, const float *a, const float *b_rows,
                               int64_t k0, int64_t k1, float *y, occ_error *e)
{
    const matmul_state *s = state;
    const int64_t rows = s->pb ? s->np : s->k;
    if (!s->flat || k0 < 0 || k1 > rows || k1 <= k0)
        return occ_fail(e, OCC_ERR_INTERNAL, "MatMul rows [%lld, %lld) of %lld", (long long)k0,
                        (long long)k1, (long long)rows);
    if (s->pb) {
        occ_vec_gemm_panels_act(a, s->batch * s->m, s->k, s->k, b_rows, k1 - k0, s->bias, s->act,
                                16 * k0, s->n, y, s->n);
        return OCC_OK;
    }
    return occ_dnnl_check(dnnl_sgemm('N', 'N', s->batch * s->m, s->n, k1 - k0, 1.0f, a + k0,
                                     s->k, b_rows, s->n, k0 ? 1.0f : 0.0f, y, s->n),
                          "sgemm", e);
}

static void matmul_destroy(void *s)
{
    free(s);
}

const occ_op_vtable occ_op_matmul = {
    .op = "MatMul",
    .min_in = 2,
    .max_in = 2,
    .n_out = 1,
    .infer = matmul_infer,
    .flops = matmul_flops,
    .prepare = matmul_prepare,
    .run = matmul_run,
    .destroy = matmul_destroy,
};
