/* Pad: constant, reflect and edge modes, non-negative pads (folded into the
 * "pads" attribute, ONNX order: all begins then all ends). Any dtype: the
 * constant is converted to the input's type. */
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"

enum { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE };

typedef struct pad_params {
    int mode;
    float value;
    int nd;
    int64_t pb[OCC_MAX_DIMS], pe[OCC_MAX_DIMS], odims[OCC_MAX_DIMS];
} pad_params;

static occ_status pad_get(const occ_model *m, const occ_node *n, pad_params *p, occ_error *e)
{
    const occ_tensor *x = occ_ops_in(m, n, 0);
    const int64_t *pads;
    uint32_t c;
    const char *mode;
    occ_status st;
    for (uint32_t i = 1; i < n->n_inputs; i++)
        if (n->inputs[i] >= 0)
            return occ_fail(e, OCC_ERR_UNSUPPORTED,
                            "run-time pads/value/axes inputs are not supported");
    if (occ_ops_attr(n, "axes"))
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "attribute axes is not supported");
    if ((st = occ_ops_attr_ints(n, "pads", 2 * OCC_MAX_DIMS, &pads, &c, e)) ||
        (st = occ_ops_attr_float(n, "value", 0.0f, &p->value, e)) ||
        (st = occ_ops_attr_str(n, "mode", "constant", &mode, e)))
        return st;
    if (strcmp(mode, "constant") == 0)
        p->mode = PAD_CONSTANT;
    else if (strcmp(mode, "reflect") == 0)
        p->mode = PAD_REFLECT;
    else if (strcmp(mode, "edge") == 0)
        p->mode = PAD_EDGE;
    else
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "mode = %s is not supported", mode);
    if ((int)c != 2 * x->ndim)
        return occ_fail(e, OCC_ERR_INVALID, "pads has %u values, expected %d", c, 2 * x->ndim);
    p->nd = x->ndim;
    for (int d = 0; d < x->ndim; d++) {
        p->pb[d] = pads[d];
        p->pe[d] = pads[d + x->ndim];
        if (p->pb[d] < 0 || p->pe[d] < 0)
            return occ_fail(e, OCC_ERR_UNSUPPORTED, "negative pads are not supported");
        if (p->pb[d] > (INT64_C(1) << 32) || p->pe[d] > (INT64_C(1) << 32))
            return occ_fail(e, OCC_ERR_INVALID, "pad too large");
        if (p->mode == PAD_REFLECT && (p->pb[d] >= x->dims[d] || p->pe[d] >= x->dims[d]))
            return occ_fail(e, OCC_ERR_INVALID, "reflect pad must be smaller than the dimension");
        p->odims[d] = x->dims[d] + p->pb[d] + p->pe[d];
    }
    return OCC_OK;
}

static occ_status pad_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    pad_params p;
    occ_status st = pad_get(m, n, &p, e);
    if (st)
        return st;
    return occ_ops_set_out(m, n, 0, p.nd, p.odims, e);
}

static uint64_t pad_flops(const occ_model *m, const occ_node *n)
{
    return 0;
}

typedef struct pad_state {
    pad_params p;
    int64_t idims[OCC_MAX_DIMS];
    int64_t *tab[OCC_MAX_DIMS];
    size_t esize;
    uint8_t fill[8];
} pad_state;

static void pad_destroy(void *v)
{
    pad_state *s = v;
    if (!s)
        return;
    for (int d = 0; d < OCC_MAX_DIMS; d++)
        occ_ops_free(s->tab[d]);
    free(s);
}

static occ_status pad_prepare(occ_op_prep *pp, void **state, occ_error *e)
{
    pad_state *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    occ_status st = pad_get(pp->m, pp->n, &s->p, e);
    if (st) {
        pad_destroy(s);
        return st;
    }
    const occ_tensor *x = occ_ops_in(pp->m, pp->n, 0);
    s->esize = occ_ops_esize(x);
    occ_ops_scalar_from_double(occ_ops_dtype(x), s->p.value, s->fill);
    for (int d = 0; d < s->p.nd; d++) {
        int64_t in = x->dims[d];
        s->idims[d] = in;
        s->tab[d] = occ_ops_alloc((uint64_t)s->p.odims[d] * sizeof(int64_t));
        if (!s->tab[d]) {
            pad_destroy(s);
            return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
        }
        for (int64_t o = 0; o < s->p.odims[d]; o++) {
            int64_t i = o - s->p.pb[d];
            if (i < 0 || i >= in) {
                if (s->p.mode == PAD_CONSTANT)
                    i = -1;
                else if (s->p.mode == PAD_EDGE)
                    i = i < 0 ? 0 : in - 1;
                else
                    i = i < 0 ? -i : 2 * (in - 1) - i;
            }
            s->tab[d][o] = i;
        }
    }
    *state = s;
    return OCC_OK;
}

static occ_status pad_run(void *state, const occ_op_exec *x, occ_error *e)
{
    const pad_state *s = state;
    occ_ops_gather_bytes(s->p.nd, s->p.odims, s->idims, (const int64_t *const *)s->tab, s->fill,
                         s->esize, x->in[0], x->out[0]);
    return OCC_OK;
}

const occ_op_vtable occ_op_pad = {
    .op = "Pad",
    .min_in = 1,
    .max_in = 4,
    .n_out = 1,
    .n_in_types = 1,
    .in_types = {OCC_DTM_ALL},
    .infer = pad_infer,
    .flops = pad_flops,
    .prepare = pad_prepare,
    .run = pad_run,
    .destroy = pad_destroy,
};
