/* IsInf (detect_negative, detect_positive, both 1 by default) and IsNaN:
 * float32, float64, float16 or bfloat16 in, bool out, element-wise. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"

static occ_status classify_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    const occ_tensor *x = occ_ops_in(m, n, 0);
    int64_t v;
    occ_status st;
    if ((st = occ_ops_attr_int(n, "detect_negative", 1, &v, e)) ||
        (st = occ_ops_attr_int(n, "detect_positive", 1, &v, e)))
        return st;
    if ((st = occ_ops_set_out(m, n, 0, x->ndim, x->dims, e)))
        return st;
    occ_ops_set_dtype(m, n, 0, OCC_DTYPE_BOOL);
    return OCC_OK;
}

typedef struct classify_state {
    int nan, neg, pos;
    uint32_t dtype;
    int64_t count;
} classify_state;

static occ_status classify_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    classify_state *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    const occ_tensor *x = occ_ops_in(p->m, p->n, 0);
    int64_t neg = 1, pos = 1;
    occ_status st;
    if ((st = occ_ops_attr_int(p->n, "detect_negative", 1, &neg, e)) ||
        (st = occ_ops_attr_int(p->n, "detect_positive", 1, &pos, e))) {
        free(s);
        return st;
    }
    s->nan = !strcmp(p->n->op, "IsNaN");
    s->neg = neg != 0;
    s->pos = pos != 0;
    s->dtype = occ_ops_dtype(x);
    s->count = occ_ops_count(x->ndim, x->dims);
    *state = s;
    return OCC_OK;
}

static occ_status classify_run(void *state, const occ_op_exec *x, occ_error *e)
{
    (void)e;
    const classify_state *s = state;
    uint8_t *o = x->out[0];
    for (int64_t i = 0; i < s->count; i++) {
        double v = occ_ops_load_f64(s->dtype, x->in[0], i); /* exact for every float type */
        o[i] = s->nan ? isnan(v) != 0 : isinf(v) && (v < 0 ? s->neg : s->pos);
    }
    return OCC_OK;
}

static void classify_destroy(void *s)
{
    free(s);
}

#define CLASSIFY(var, name)                                                               \
    const occ_op_vtable var = {.op = name,                                                \
                               .min_in = 1,                                               \
                               .max_in = 1,                                               \
                               .n_out = 1,                                                \
                               .n_in_types = 1,                                           \
                               .in_types = {OCC_DTM_FLOAT | OCC_DTM_F16 | OCC_DTM_F64 | OCC_DTM_BF16}, \
                               .infer = classify_infer,                                   \
                               .prepare = classify_prepare,                               \
                               .run = classify_run,                                       \
                               .destroy = classify_destroy}

CLASSIFY(occ_op_isinf, "IsInf");
CLASSIFY(occ_op_isnan, "IsNaN");
