/* Comparisons: Equal, Less, Greater, LessOrEqual, GreaterOrEqual. Two
 * operands of one type (numpy broadcasting), a bool output. Integers compare
 * as int64 (exact), floats as float (NaN compares false). */
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"

enum { C_EQ, C_LT, C_GT, C_LE, C_GE };

static int cmp_kind(const char *op)
{
    static const char *const names[] = {"Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"};
    for (int k = 0; k < 5; k++)
        if (!strcmp(op, names[k]))
            return k;
    return C_EQ;
}

static occ_status cmp_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    const occ_tensor *in[2] = {occ_ops_in(m, n, 0), occ_ops_in(m, n, 1)};
    if (occ_ops_dtype(in[0]) != occ_ops_dtype(in[1]))
        return occ_fail(e, OCC_ERR_INVALID, "operands are %s and %s (must be one type)",
                        occ_dtype_name(occ_ops_dtype(in[0])), occ_dtype_name(occ_ops_dtype(in[1])));
    int64_t d[OCC_MAX_DIMS];
    int nd;
    occ_status st = occ_ops_broadcast_n(2, in, &nd, d, e);
    if (st)
        return st;
    occ_ops_set_dtype(m, n, 0, OCC_DTYPE_BOOL);
    return occ_ops_set_out(m, n, 0, nd, d, e);
}

typedef struct cmp_state {
    int kind;
    uint32_t dtype;
    occ_bcast b;
} cmp_state;

static occ_status cmp_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    cmp_state *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    const occ_tensor *in[2] = {occ_ops_in(p->m, p->n, 0), occ_ops_in(p->m, p->n, 1)};
    s->kind = cmp_kind(p->n->op);
    s->dtype = occ_ops_dtype(in[0]);
    occ_bcast_init(&s->b, 2, in, &p->m->tensors[p->n->outputs[0]]);
    *state = s;
    return OCC_OK;
}

static int cmp_f(int kind, float x, float y)
{
    switch (kind) {
    case C_EQ: return x == y;
    case C_LT: return x < y;
    case C_GT: return x > y;
    case C_LE: return x <= y;
    default: return x >= y;
    }
}

static int cmp_d(int kind, double x, double y)
{
    switch (kind) {
    case C_EQ: return x == y;
    case C_LT: return x < y;
    case C_GT: return x > y;
    case C_LE: return x <= y;
    default: return x >= y;
    }
}

static int cmp_i(int kind, int64_t x, int64_t y)
{
    switch (kind) {
    case C_EQ: return x == y;
    case C_LT: return x < y;
    case C_GT: return x > y;
    case C_LE: return x <= y;
    default: return x >= y;
    }
}

static occ_status cmp_run(void *state, const occ_op_exec *x, occ_error *e)
{
    const cmp_state *s = state;
    uint8_t *o = x->out[0];
    for (int64_t k = 0; k < s->b.count; k++) {
        int64_t off[2];
        occ_bcast_offsets(&s->b, k, off);
        if (s->dtype == OCC_DTYPE_FLOAT)
            o[k] = (uint8_t)cmp_f(s->kind, ((const float *)x->in[0])[off[0]],
                                  ((const float *)x->in[1])[off[1]]);
        else if (s->dtype == OCC_DTYPE_DOUBLE)
            o[k] = (uint8_t)cmp_d(s->kind, ((const double *)x->in[0])[off[0]],
                                  ((const double *)x->in[1])[off[1]]);
        else
            o[k] = (uint8_t)cmp_i(s->kind, occ_ops_load_key(s->dtype, x->in[0], off[0]),
                                  occ_ops_load_key(s->dtype, x->in[1], off[1]));
    }
    return OCC_OK;
}

static void cmp_destroy(void *s)
{
    free(s);
}

#define CMP(var, name, types)                                                             \
    const occ_op_vtable var = {.op = name,                                                \
                               .min_in = 2,                                               \
                               .max_in = 2,                                               \
                               .n_out = 1,                                                \
                               .n_in_types = 1,                                           \
                               .in_types = {types},                                       \
                               .infer = cmp_infer,                                        \
                               .prepare = cmp_prepare,                                    \
                               .run = cmp_run,                                            \
                               .destroy = cmp_destroy}

CMP(occ_op_equal, "Equal", OCC_DTM_NUM | OCC_DTM_BOOL);
CMP(occ_op_less, "Less", OCC_DTM_NUM);
CMP(occ_op_greater, "Greater", OCC_DTM_NUM);
CMP(occ_op_lessorequal, "LessOrEqual", OCC_DTM_NUM);
CMP(occ_op_greaterorequal, "GreaterOrEqual", OCC_DTM_NUM);
