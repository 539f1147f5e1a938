/* HannWindow, HammingWindow, BlackmanWindow: a float32 1-D window of `size`
 * values (the size input, known at pack time, arrives as an attribute),
 * periodic (default: denominator size) or symmetric (size - 1), the ONNX
 * formulas. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"

static occ_status win_params(const occ_node *n, int64_t *size, int64_t *periodic, occ_error *e)
{
    const int64_t *v;
    uint32_t c;
    int64_t odt;
    occ_status st;
    if ((st = occ_ops_attr_ints(n, "size", 1, &v, &c, e)) ||
        (st = occ_ops_attr_int(n, "periodic", 1, periodic, e)) ||
        (st = occ_ops_attr_int(n, "output_datatype", OCC_DTYPE_FLOAT, &odt, e)))
        return st;
    if (c != 1 || v[0] < 1 || v[0] > (1 << 30))
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "size must be one value known at pack time, "
                        "1 to 2^30");
    if (odt != OCC_DTYPE_FLOAT)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "output_datatype %lld (float32 only)", (long long)odt);
    *size = v[0];
    return OCC_OK;
}

static occ_status win_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    int64_t size, periodic;
    occ_status st = win_params(n, &size, &periodic, e);
    if (st)
        return st;
    occ_ops_set_dtype(m, n, 0, OCC_DTYPE_FLOAT);
    return occ_ops_set_out(m, n, 0, 1, &size, e);
}

typedef struct win_state {
    int kind; /* 0 Hann, 1 Hamming, 2 Blackman */
    int64_t size, periodic;
} win_state;

static occ_status win_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    win_state *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    occ_status st = win_params(p->n, &s->size, &s->periodic, e);
    if (st) {
        free(s);
        return st;
    }
    s->kind = !strcmp(p->n->op, "HannWindow") ? 0 : !strcmp(p->n->op, "HammingWindow") ? 1 : 2;
    *state = s;
    return OCC_OK;
}

static occ_status win_run(void *state, const occ_op_exec *x, occ_error *e)
{
    (void)e;
    const win_state *s = state;
    float *o = x->out[0];
    double den = (double)(s->periodic ? s->size : s->size - 1);
    const double pi = 3.14159265358979323846;
    for (int64_t i = 0; i < s->size; i++) {
        double t = den > 0 ? 2.0 * pi * (double)i / den : 0.0, v;
        switch (s->kind) {
        case 0: v = 0.5 - 0.5 * cos(t); break;
        case 1: v = 25.0 / 46.0 - (21.0 / 46.0) * cos(t); break;
        default: v = 0.42 - 0.5 * cos(t) + 0.08 * cos(2.0 * t); break;
        }
        o[i] = (float)v;
    }
    return OCC_OK;
}

static void win_destroy(void *s)
{
    free(s);
}

#define WINDOW(var, name)                                                                 \
    const occ_op_vtable var = {.op = name,                                                \
                               .min_in = 0,                                               \
                               .max_in = 1,                                               \
                               .n_out = 1,                                                \
                               .n_in_types = 1,                                           \
                               .in_types = {OCC_DTM_INDEX},                               \
                               .infer = win_infer,                                        \
                               .prepare = win_prepare,                                    \
                               .run = win_run,                                            \
                               .destroy = win_destroy}

WINDOW(occ_op_hannwindow, "HannWindow");
WINDOW(occ_op_hammingwindow, "HammingWindow");
WINDOW(occ_op_blackmanwindow, "BlackmanWindow");
