/* Gemm: Y = alpha * A' B' + beta * C (C broadcast to [M, N]). Computed with
 * oneDNN's sgemm (row-major, JIT AVX-512 kernels) on plain weights, which is
 * what inner-product would do for batch 1 without a weight repack. */
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"

typedef struct gemm_state {
    int64_t m, n, k;
    int ta, tb;
    float alpha, beta;
    int has_c;
    int64_t cr, cc; /* C rows/cols as broadcast (1 or m / 1 or n) */
} gemm_state;

static occ_status gemm_params(const occ_model *m, const occ_node *n, gemm_state *s, occ_error *e)
{
    occ_status st;
    int64_t ta, tb;
    const occ_tensor *a = occ_ops_in(m, n, 0), *b = occ_ops_in(m, n, 1), *c = occ_ops_in(m, n, 2);
    if ((st = occ_ops_attr_int(n, "transA", 0, &ta, e)) ||
        (st = occ_ops_attr_int(n, "transB", 0, &tb, e)) ||
        (st = occ_ops_attr_float(n, "alpha", 1.0f, &s->alpha, e)) ||
        (st = occ_ops_attr_float(n, "beta", 1.0f, &s->beta, e)))
        return st;
    if ((ta != 0 && ta != 1) || (tb != 0 && tb != 1))
        return occ_fail(e, OCC_ERR_INVALID, "transA/transB must be 0 or 1");
    if (a->ndim != 2 || b->ndim != 2)
        return occ_fail(e, OCC_ERR_SHAPE, "A and B must be 2-D (got rank %d and %d)", a->ndim,
                        b->ndim);
    s->ta = (int)ta;
    s->tb = (int)tb;
    s->m = ta ? a->dims[1] : a->dims[0];
    s->k = ta ? a->dims[0] : a->dims[1];
    int64_t kb = tb ? b->dims[1] : b->dims[0];
    s->n = tb ? b->dims[0] : b->dims[1];
    if (kb != s->k)
        return occ_fail(e, OCC_ERR_SHAPE, "inner dimensions differ: %lld vs %lld",
                        (long long)s->k, (long long)kb);
    s->has_c = c != NULL;
    s->cr = s->cc = 1;
    if (c) {
        if (c->ndim > 2)
            return occ_fail(e, OCC_ERR_SHAPE, "C has rank %d (at most 2)", c->ndim);
        int64_t r = c->ndim == 2 ? c->dims[0] : 1, cl = c->ndim >= 1 ? c->dims[c->ndim - 1] : 1;
        if ((r != 1 && r != s->m) || (cl != 1 && cl != s->n))
            return occ_fail(e, OCC_ERR_SHAPE, "C [%lld, %lld] does not broadcast to [%lld, %lld]",
                            (long long)r, (long long)cl, (long long)s->m, (long long)s->n);
        s->cr = r;
        s->cc = cl;
    }
    return OCC_OK;
}

static occ_status gemm_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    gemm_state s;
    occ_status st = gemm_params(m, n, &s, e);
    if (st)
        return st;
    int64_t d[2] = {s.m, s.n};
    return occ_ops_set_out(m, n, 0, 2, d, e);
}

static uint64_t gemm_flops(const occ_model *m, const occ_node *n)
{
    gemm_state s;
    if (gemm_params(m, n, &s, NULL))
        return 0;
    return 2u * (uint64_t)s.m * s.n * s.k + (s.has_c ? (uint64_t)s.m * s.n : 0);
}

static occ_status gemm_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    gemm_state *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    occ_status st = gemm_params(p->m, p->n, s, e);
    if (st) {
        free(s);
        return st;
    }
    *state = s;
    return OCC_OK;
}

int occ_gemm_splittable(const void *state, int64_t *n_cols, int64_t *k)
{
    const gemm_state *s = state;
    *n_cols = s->n;
    *k = s->k;
    /* rows of B = output columns; C must be a row vector or scalar to slice */
    return s->tb == 1 && s->cr == 1;
}

/* y[:, j0:j1] = alpha * A' * B[j0:j1, :]' + beta * C[:, j0:j1] (or the
 * whole Gemm with j0 = 0, j1 = n, b_rows = B, for any transB). */
occ_status occ_gemm_run_cols(const void *state, const float *a, const float *b_rows,
                             const float *c, int64_t j0, int64_t j1, float *y, occ_error *e)
{
    return occ_gemm_run_cols_n(state, a, b_rows, c, j0, j1, y, 1, e);
}

void occ_gemm_describe(const void *state, occ_gemm_desc *d)
{
    const gemm_state *s = state;
    *d = (occ_gemm_desc){s->m, s->n, s->k, s->ta, s->tb, s->alpha, s->beta, s->has_c, s->cc};
}

int occ_gemm_rows_batchable(const void *state)
{
    const gemm_state *s = state;
    return !s->ta;
}

/* The same for nimg inputs at once: A is nimg row-major [m, k] blocks back
 * to back, y nimg [m, n] blocks (transA = 0 only). */
occ_status occ_gemm_run_cols_n(const void *state, const float *a, const float *b_rows,
                               const float *c, int64_t j0, int64_t j1, float *y, int64_t nimg,
                               occ_error *e)
{
    const gemm_state *s = state;
    int64_t nc = j1 - j0;
    float beta = 0.0f;
    if (nimg < 1 || (nimg > 1 && s->ta))
        return occ_fail(e, OCC_ERR_INTERNAL, "gemm: %lld images need transA = 0", (long long)nimg);
    int64_t rows = s->m * nimg;
    if (s->has_c && s->beta != 0.0f) {
        for (int64_t i = 0; i < rows; i++) {
            const float *crow = c + (s->cr == 1 ? 0 : (i % s->m) * s->cc);
            float *yrow = y + i * s->n;
            if (s->cc == 1)
                for (int64_t j = j0; j < j1; j++)
                    yrow[j] = crow[0];
            else
                memcpy(yrow + j0, crow + j0, (size_t)nc * sizeof(float));
        }
        beta = s->beta;
    }
    int64_t lda = s->ta ? s->m : s->k, ldb = s->tb ? s->k : s->n;
    const float *bp = s->tb ? b_rows : b_rows + j0;
    return occ_dnnl_check(dnnl_sgemm(s->ta ? 'T' : 'N', s->tb ? 'T' : 'N', rows, nc, s->k,
                                     s->alpha, a, lda, bp, ldb, beta, y + j0, s->n),
                          "sgemm", e);
}

static occ_status gemm_run(void *state, const occ_op_exec *x, occ_error *e)
{
    const gemm_state *s = state;
    return occ_gemm_run_cols(s, x->in[0], x->in[1], x->in[2], 0, s->n, x->out[0], e);
}

static void gemm_destroy(void *s)
{
    free(s);
}

const occ_op_vtable occ_op_gemm = {
    .op = "Gemm",
    .min_in = 2,
    .max_in = 3,
    .n_out = 1,
    .infer = gemm_infer,
    .flops = gemm_flops,
    .prepare = gemm_prepare,
    .run = gemm_run,
    .destroy = gemm_destroy,
};
