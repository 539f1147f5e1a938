/* MaxUnpool (opset 11): scatters X [N, C, spatial...] into a zeroed output at
 * the positions of I (int64, X's shape), indices into the whole output
 * flattened - what MaxPool's Indices give. The output shape is output_shape
 * (an input known at pack time, arriving as an attribute) or, without it,
 * (in - 1) * stride - pad_begin - pad_end + kernel per spatial dim (the
 * "unpooled" shape). Indices always address the unpooled shape; a larger
 * output_shape holds it in its leading corner, the rest zero (the ONNX
 * reference's definition). Every index is checked before anything is
 * written. */
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"

/* d: the output's shape; u: the unpooled one the indices address */
static occ_status unpool_shape(const occ_model *m, const occ_node *n, int64_t *d, int64_t *u,
                               occ_error *e)
{
    const occ_tensor *x = occ_ops_in(m, n, 0), *ix = occ_ops_in(m, n, 1);
    const int64_t *k, *st, *pd, *os;
    uint32_t nk, ns, np, nos;
    occ_status s;
    if (n->n_inputs > 2 && n->inputs[2] >= 0)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "a run-time output_shape is not supported (it sets "
                        "the output shape: a constant, or --bind the input it comes from)");
    if ((s = occ_ops_attr_ints(n, "kernel_shape", OCC_MAX_DIMS, &k, &nk, e)) ||
        (s = occ_ops_attr_ints(n, "strides", OCC_MAX_DIMS, &st, &ns, e)) ||
        (s = occ_ops_attr_ints(n, "pads", 2 * OCC_MAX_DIMS, &pd, &np, e)) ||
        (s = occ_ops_attr_ints(n, "output_shape", OCC_MAX_DIMS, &os, &nos, e)))
        return s;
    if (x->ndim < 3)
        return occ_fail(e, OCC_ERR_SHAPE, "X has rank %d, MaxUnpool needs [N, C, spatial...]",
                        x->ndim);
    if (ix->ndim != x->ndim || memcmp(ix->dims, x->dims, sizeof(int64_t) * (size_t)x->ndim))
        return occ_fail(e, OCC_ERR_SHAPE, "I must have X's shape");
    int nsp = x->ndim - 2;
    if (nk != (uint32_t)nsp || (ns && ns != (uint32_t)nsp) || (np && np != 2u * (uint32_t)nsp))
        return occ_fail(e, OCC_ERR_INVALID, "kernel_shape, strides and pads must have %d, %d and "
                        "%d values", nsp, nsp, 2 * nsp);
    d[0] = x->dims[0];
    d[1] = x->dims[1];
    for (int i = 0; i < nsp; i++) {
        int64_t kk = k[i], ss = ns ? st[i] : 1, pb = np ? pd[i] : 0, pe = np ? pd[i + nsp] : 0;
        if (kk < 1 || kk > (1 << 20) || ss < 1 || ss > (1 << 20) || pb < 0 || pe < 0 ||
            pb > (1 << 20) || pe > (1 << 20))
            return occ_fail(e, OCC_ERR_INVALID, "kernel %lld, stride %lld, pads %lld/%lld on "
                            "spatial dim %d", (long long)kk, (long long)ss, (long long)pb,
                            (long long)pe, i);
        /* x->dims are bounded by 2^40: no overflow in int64 */
        d[2 + i] = (x->dims[2 + i] - 1) * ss - pb - pe + kk;
        if (d[2 + i] < 1)
            return occ_fail(e, OCC_ERR_SHAPE, "spatial dim %d of the output would be %lld", i,
                            (long long)d[2 + i]);
    }
    if (nos) {
        /* output_shape: the whole output's shape, at least the default in each dim */
        if (nos != (uint32_t)x->ndim)
            return occ_fail(e, OCC_ERR_SHAPE, "output_shape has %u values for rank %d", nos,
                            x->ndim);
        for (int i = 0; i < x->ndim; i++) {
            if (i < 2 ? os[i] != d[i] : os[i] < d[i])
                return occ_fail(e, OCC_ERR_SHAPE, "output_shape[%d] = %lld (%s %lld)", i,
                                (long long)os[i], i < 2 ? "must be" : "at least", (long long)d[i]);
        }
    }
    for (int i = 0; i < x->ndim; i++) {
        u[i] = d[i];
        if (nos)
            d[i] = os[i];
    }
    return OCC_OK;
}

static occ_status unpool_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    int64_t d[OCC_MAX_DIMS], u[OCC_MAX_DIMS];
    occ_status st = unpool_shape(m, n, d, u, e);
    if (st)
        return st;
    return occ_ops_set_out(m, n, 0, occ_ops_in(m, n, 0)->ndim, d, e);
}

typedef struct unpool_state {
    int nd;
    int64_t in_count, out_count, u_count;
    int64_t u[OCC_MAX_DIMS], ostride[OCC_MAX_DIMS]; /* unpooled dims, output strides */
} unpool_state;

static occ_status unpool_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    int64_t d[OCC_MAX_DIMS];
    unpool_state *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    occ_status st = unpool_shape(p->m, p->n, d, s->u, e);
    if (st) {
        free(s);
        return st;
    }
    const occ_tensor *x = occ_ops_in(p->m, p->n, 0);
    s->nd = x->ndim;
    s->in_count = occ_ops_count(x->ndim, x->dims);
    s->out_count = occ_ops_count(x->ndim, d);
    s->u_count = occ_ops_count(x->ndim, s->u);
    int64_t str = 1;
    for (int i = s->nd - 1; i >= 0; i--) {
        s->ostride[i] = str;
        str *= d[i];
    }
    *state = s;
    return OCC_OK;
}

static occ_status unpool_run(void *state, const occ_op_exec *x, occ_error *e)
{
    const unpool_state *s = state;
    const float *in = x->in[0];
    const int64_t *ix = x->in[1];
    float *out = x->out[0];
    for (int64_t i = 0; i < s->in_count; i++)
        if (ix[i] < 0 || ix[i] >= s->u_count)
            return occ_fail(e, OCC_ERR_INVALID, "index %lld at %lld is outside the unpooled "
                            "tensor (0..%lld)", (long long)ix[i], (long long)i,
                            (long long)(s->u_count - 1));
    memset(out, 0, (size_t)s->out_count * sizeof *out);
    for (int64_t i = 0; i < s->in_count; i++) {
        /* unravel in the unpooled shape, ravel in the output's */
        int64_t r = ix[i], o = 0;
        for (int k = s->nd - 1; k >= 0; k--) {
            o += (r % s->u[k]) * s->ostride[k];
            r /= s->u[k];
        }
        out[o] = in[i];
    }
    return OCC_OK;
}

static void unpool_destroy(void *s)
{
    free(s);
}

static uint64_t unpool_flops(const occ_model *m, const occ_node *n)
{
    return 0;
}

const occ_op_vtable occ_op_maxunpool = {
    .op = "MaxUnpool",
    .min_in = 2,
    .max_in = 3,
    .n_out = 1,
    .n_in_types = 3,
    .in_types = {OCC_DTM_FLOAT, OCC_DTM(OCC_DTYPE_INT64), OCC_DTM(OCC_DTYPE_INT64)},
    .infer = unpool_infer,
    .flops = unpool_flops,
    .prepare = unpool_prepare,
    .run = unpool_run,
    .destroy = unpool_destroy,
};
