/* Det(X): the determinant of each square matrix in X's last two dims
 * ([..., M, M] -> [...]), by LU decomposition with partial pivoting in
 * double. float32. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"

#define DET_MAX 256 /* rows: the work matrix lives on the heap, M*M doubles */

static occ_status det_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    const occ_tensor *x = occ_ops_in(m, n, 0);
    if (x->ndim < 2 || x->dims[x->ndim - 1] != x->dims[x->ndim - 2])
        return occ_fail(e, OCC_ERR_SHAPE, "input must be [..., M, M]");
    if (x->dims[x->ndim - 1] > DET_MAX)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "matrices of %lld rows (at most %d)",
                        (long long)x->dims[x->ndim - 1], DET_MAX);
    return occ_ops_set_out(m, n, 0, x->ndim - 2, x->dims, e);
}

typedef struct det_state {
    int64_t mats, n;
    double *w;
} det_state;

static void det_destroy(void *state)
{
    det_state *s = state;
    if (s)
        occ_ops_free(s->w);
    free(s);
}

static occ_status det_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    det_state *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    const occ_tensor *x = occ_ops_in(p->m, p->n, 0);
    s->n = x->dims[x->ndim - 1];
    s->mats = occ_ops_count(x->ndim, x->dims) / (s->n * s->n);
    s->w = occ_ops_alloc((uint64_t)(s->n * s->n) * sizeof(double));
    if (!s->w) {
        free(s);
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    }
    *state = s;
    return OCC_OK;
}

static occ_status det_run(void *state, const occ_op_exec *x, occ_error *e)
{
    (void)e;
    const det_state *s = state;
    const float *in = x->in[0];
    float *out = x->out[0];
    const int64_t n = s->n;
    double *a = s->w;
    for (int64_t m = 0; m < s->mats; m++) {
        for (int64_t i = 0; i < n * n; i++)
            a[i] = in[m * n * n + i];
        double det = 1.0;
        for (int64_t c = 0; c < n && det != 0.0; c++) {
            int64_t piv = c;
            for (int64_t r = c + 1; r < n; r++)
                if (fabs(a[r * n + c]) > fabs(a[piv * n + c]))
                    piv = r;
            if (a[piv * n + c] == 0.0) {
                det = 0.0;
                break;
            }
            if (piv != c) {
                for (int64_t j = 0; j < n; j++) {
                    double t = a[c * n + j];
                    a[c * n + j] = a[piv * n + j];
                    a[piv * n + j] = t;
                }
                det = -det;
            }
            det *= a[c * n + c];
            for (int64_t r = c + 1; r < n; r++) {
                double f = a[r * n + c] / a[c * n + c];
                for (int64_t j = c; j < n; j++)
                    a[r * n + j] -= f * a[c * n + j];
            }
        }
        out[m] = (float)det;
    }
    return OCC_OK;
}

const occ_op_vtable occ_op_det = {
    .op = "Det",
    .min_in = 1,
    .max_in = 1,
    .n_out = 1,
    .infer = det_infer,
    .prepare = det_prepare,
    .run = det_run,
    .destroy = det_destroy,
};
