/* Logic on bool tensors: Not, and And, Or, Xor with numpy broadcasting. */
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"

enum { L_NOT, L_AND, L_OR, L_XOR };

static int logic_kind(const char *op)
{
    if (!strcmp(op, "And"))
        return L_AND;
    if (!strcmp(op, "Or"))
        return L_OR;
    if (!strcmp(op, "Xor"))
        return L_XOR;
    return L_NOT;
}

static occ_status logic_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    const occ_tensor *in[2] = {occ_ops_in(m, n, 0), n->n_inputs > 1 ? occ_ops_in(m, n, 1) : NULL};
    int64_t d[OCC_MAX_DIMS];
    int nd;
    occ_status st = occ_ops_broadcast_n(in[1] ? 2 : 1, in, &nd, d, e);
    if (st)
        return st;
    return occ_ops_set_out(m, n, 0, nd, d, e);
}

typedef struct logic_state {
    int kind;
    occ_bcast b;
} logic_state;

static occ_status logic_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    logic_state *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    s->kind = logic_kind(p->n->op);
    const occ_tensor *in[2] = {occ_ops_in(p->m, p->n, 0),
                               p->n->n_inputs > 1 ? occ_ops_in(p->m, p->n, 1) : NULL};
    occ_bcast_init(&s->b, in[1] ? 2 : 1, in, &p->m->tensors[p->n->outputs[0]]);
    *state = s;
    return OCC_OK;
}

static occ_status logic_run(void *state, const occ_op_exec *x, occ_error *e)
{
    const logic_state *s = state;
    const uint8_t *a = x->in[0], *b = s->kind == L_NOT ? NULL : x->in[1];
    uint8_t *o = x->out[0];
    for (int64_t k = 0; k < s->b.count; k++) {
        int64_t off[2];
        occ_bcast_offsets(&s->b, k, off);
        int p = a[off[0]] != 0, q = b ? b[off[1]] != 0 : 0;
        switch (s->kind) {
        case L_NOT: o[k] = !p; break;
        case L_AND: o[k] = (uint8_t)(p && q); break;
        case L_OR: o[k] = (uint8_t)(p || q); break;
        default: o[k] = (uint8_t)(p != q); break;
        }
    }
    return OCC_OK;
}

static void logic_destroy(void *s)
{
    free(s);
}

#define LOGIC(var, name, nin)                                                             \
    const occ_op_vtable var = {.op = name,                                                \
                               .min_in = nin,                                             \
                               .max_in = nin,                                             \
                               .n_out = 1,                                                \
                               .n_in_types = 1,                                           \
                               .in_types = {OCC_DTM_BOOL},                                \
                               .infer = logic_infer,                                      \
                               .prepare = logic_prepare,                                  \
                               .run = logic_run,                                          \
                               .destroy = logic_destroy}

LOGIC(occ_op_not, "Not", 1);
LOGIC(occ_op_and, "And", 2);
LOGIC(occ_op_or, "Or", 2);
LOGIC(occ_op_xor, "Xor", 2);
