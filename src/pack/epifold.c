/* Pack-time rewrite after fuse.c: an activation that follows a panel
 * MatMul (occ_packB, a Linear) goes into the MatMul as occ_act, applied by
 * the GEMM while its output is in cache (src/ops/matmul.c, vecmath.c: ReLU
 * and tanh-GELU on each tile in registers, erf-GELU on each finished block
 * of rows). A transformer's MLP wrote [tokens, 3072] and read it back for
 * its GELU; now it writes it once.
 *
 *   MatMul(occ_packB, no occ_act) -> Relu            =>  occ_act = 1
 *   MatMul(occ_packB, no occ_act) -> Gelu (none)     =>  occ_act = 2
 *   MatMul(occ_packB, no occ_act) -> Gelu (tanh)     =>  occ_act = 3
 *
 * Only when the activation is the product's one reader (not another node,
 * not a graph output): the product's own value disappears. The kernel uses
 * the separate op's formulas, so the outputs do not change.
 *
 * Attention's scale and mask before its Softmax (BERT: scores / 8 + mask):
 *
 *   [Div(x, c)] -> [Add(., mask)] -> Softmax(last axis)
 *     =>  Softmax(x[, mask]) with occ_div = c[, occ_mask = 1]
 *
 * when c is a float scalar constant, the mask is len floats (every other
 * dim 1: one row added to every row), the Div's and Add's outputs have
 * their first input's shape and each is read by the next node alone.
 * src/ops/softmax.c does the same division and addition per row, in the
 * pass that finds the row's max. */
#include <stdlib.h>
#include <string.h>

#include "ops/vecmath.h"
#include "pack/imp_graph.h"

/* OCC_ACT_* for activation node n, or OCC_ACT_NONE when it is not one we
 * fold (or carries an attribute we do not know). */
static int act_kind(const occ_node *n)
{
    if (n->n_inputs != 1 || n->n_outputs != 1)
        return OCC_ACT_NONE;
    if (strcmp(n->op, "Relu") == 0)
        return n->n_attrs == 0 ? OCC_ACT_RELU : OCC_ACT_NONE;
    if (strcmp(n->op, "Gelu") != 0 || n->n_attrs > 1)
        return OCC_ACT_NONE;
    const occ_attr *ap = occ_node_attr(n, "approximate");
    if (n->n_attrs == 1 && !ap)
        return OCC_ACT_NONE;
    if (!ap)
        return OCC_ACT_GELU;
    if (ap->type != OCC_ATTR_STRING || !ap->s)
        return OCC_ACT_NONE;
    return strcmp(ap->s, "none") == 0   ? OCC_ACT_GELU
           : strcmp(ap->s, "tanh") == 0 ? OCC_ACT_GELU_TANH
                                        : OCC_ACT_NONE;
}

/* A panel MatMul without an activation yet: its attributes are occ_packB
 * and perhaps occ_bias (what fuse.c writes), nothing else. */
static int panel_matmul(const occ_node *n)
{
    if (strcmp(n->op, "MatMul") != 0 || n->n_outputs != 1 || !occ_node_attr(n, "occ_packB"))
        return 0;
    for (uint32_t k = 0; k < n->n_attrs; k++)
        if (strcmp(n->attrs[k].name, "occ_packB") && strcmp(n->attrs[k].name, "occ_bias"))
            return 0;
    return 1;
}

static int same_shape(const occ_tensor *a, const occ_tensor *b)
{
    return a->ndim == b->ndim && !memcmp(a->dims, b->dims, sizeof(int64_t) * (size_t)a->ndim);
}

static int live(const imp_ctx *c, int32_t node, const char *op)
{
    return node >= 0 && (uint32_t)node < c->nn && !c->dead[node] &&
           strcmp(c->nodes[node].op, op) == 0 && c->nodes[node].n_inputs == 2 &&
           c->nodes[node].n_outputs == 1;
}

/* Softmax node k over the last axis (opset 13 form: no coerce_2d) of a
 * float tensor: its rank, else 0 */
static int softmax_last(const imp_ctx *c, uint32_t k)
{
    const occ_node *n = &c->nodes[k];
    if (strcmp(n->op, "Softmax") || n->n_inputs != 1 || n->n_outputs != 1 || n->inputs[0] < 0 ||
        (uint32_t)n->inputs[0] >= c->nv)
        return 0;
    const occ_tensor *x = &c->t[n->inputs[0]];
    if (x->ndim < 1 || occ_tensor_dtype(x) != OCC_DTYPE_FLOAT)
        return 0;
    for (uint32_t q = 0; q < n->n_attrs; q++) {
        const occ_attr *a = &n->attrs[q];
        if (strcmp(a->name, "axis") || a->type != OCC_ATTR_INT ||
            (a->i != -1 && a->i != x->ndim - 1))
            return 0;
    }
    return x->ndim;
}

/* Folds the Div and/or Add before Softmax node k (see the top); 1 when
 * done. use/cons: readers per value. */
static int fold_softmax(imp_ctx *c, uint32_t k, const uint32_t *use, const int32_t *cons,
                        occ_status *st)
{
    const int rank = softmax_last(c, k);
    if (!rank)
        return 0;
    occ_node *sm = &c->nodes[k];
    const int64_t len = c->t[sm->inputs[0]].dims[rank - 1];
    int32_t x = sm->inputs[0], mask = -1, nadd = -1, ndiv = -1;
    float div = 1.0f;
    int32_t p = c->v[x].producer;
    if (use[x] == 1 && cons[x] == (int32_t)k && live(c, p, "Add")) {
        const occ_node *a = &c->nodes[p];
        for (int side = 0; side < 2 && nadd < 0; side++) {
            const int32_t s0 = a->inputs[side], m0 = a->inputs[1 - side];
            if (s0 < 0 || m0 < 0 || (uint32_t)s0 >= c->nv || (uint32_t)m0 >= c->nv || s0 == m0)
                continue;
            const occ_tensor *mt = &c->t[m0];
            if (!same_shape(&c->t[s0], &c->t[x]) || occ_tensor_dtype(mt) != OCC_DTYPE_FLOAT ||
                mt->ndim < 1 || mt->ndim > rank || mt->dims[mt->ndim - 1] != len ||
                imp_count(mt->ndim, mt->dims) != len)
                continue;
            /* x + mask = mask + x: Add is commutative bit for bit */
            nadd = p, mask = m0, x = s0;
        }
    }
    p = x >= 0 ? c->v[x].producer : -1;
    if (use[x] == 1 && (nadd >= 0 ? cons[x] == nadd : cons[x] == (int32_t)k) &&
        live(c, p, "Div")) {
        const occ_node *d = &c->nodes[p];
        const int32_t num = d->inputs[0], dv = d->inputs[1];
        const imp_cval *cv = dv >= 0 && (uint32_t)dv < c->nv && c->v[dv].is_const
                                 ? &c->v[dv].c : NULL;
        if (num >= 0 && cv && cv->type == CV_FLOAT && imp_cval_dtype(cv) == OCC_DTYPE_FLOAT &&
            cv->f && cv->count == 1 && cv->f[0] != 0.0f && cv->f[0] == cv->f[0] &&
            same_shape(&c->t[num], &c->t[x]))
            ndiv = p, div = cv->f[0], x = num;
    }
    if (nadd < 0 && ndiv < 0)
        return 0;
    int32_t *ni = imp_alloc(c->A, 2 * sizeof *ni);
    occ_attr *na = imp_alloc(c->A, (sm->n_attrs + 2) * sizeof *na);
    if (!ni || !na) {
        *st = occ_fail(c->e, OCC_ERR_NOMEM, "out of memory");
        return 0;
    }
    memcpy(na, sm->attrs, sm->n_attrs * sizeof *na);
    uint32_t nat = sm->n_attrs;
    if (ndiv >= 0) {
        na[nat].name = "occ_div";
        na[nat].type = OCC_ATTR_FLOAT;
        na[nat++].f = div;
        c->dead[ndiv] = 1;
    }
    if (nadd >= 0) {
        na[nat].name = "occ_mask";
        na[nat].type = OCC_ATTR_INT;
        na[nat++].i = 1;
        c->dead[nadd] = 1;
    }
    ni[0] = x;
    ni[1] = mask;
    sm->inputs = ni;
    sm->n_inputs = nadd >= 0 ? 2 : 1;
    sm->attrs = na;
    sm->n_attrs = nat;
    return 1;
}

occ_status imp_fold_epilogue(imp_ctx *c, const int32_t *gouts, uint32_t ngouts)
{
    uint32_t *use = calloc(c->nv + 1, sizeof *use);
    int32_t *cons = malloc((c->nv + 1) * sizeof *cons);
    if (!use || !cons) {
        free(use);
        free(cons);
        return occ_fail(c->e, OCC_ERR_NOMEM, "out of memory");
    }
    for (uint32_t v = 0; v < c->nv; v++)
        cons[v] = -1;
    for (uint32_t k = 0; k < ngouts; k++)
        if (gouts[k] >= 0 && (uint32_t)gouts[k] < c->nv)
            use[gouts[k]] += 2; /* a graph output is never folded away */
    for (uint32_t k = 0; k < c->nn; k++) {
        if (c->dead[k])
            continue;
        const occ_node *n = &c->nodes[k];
        for (uint32_t j = 0; j < n->n_inputs; j++) {
            const int32_t v = n->inputs[j];
            if (v >= 0 && (uint32_t)v < c->nv) {
                use[v]++;
                cons[v] = (int32_t)k;
            }
        }
    }
    occ_status s = OCC_OK;
    for (uint32_t k = 0; k < c->nn && !s; k++) {
        occ_node *n = &c->nodes[k];
        if (c->dead[k] || !panel_matmul(n))
            continue;
        const int32_t y = n->outputs[0];
        if (y < 0 || (uint32_t)y >= c->nv || use[y] != 1 || cons[y] < 0 || c->dead[cons[y]])
            continue;
        const occ_node *an = &c->nodes[cons[y]];
        const int act = act_kind(an);
        const int32_t z = act ? an->outputs[0] : -1;
        if (!act || an->inputs[0] != y || z < 0 || (uint32_t)z >= c->nv ||
            occ_tensor_dtype(&c->t[z]) != OCC_DTYPE_FLOAT || !same_shape(&c->t[z], &c->t[y]))
            continue;
        occ_attr *na = imp_alloc(c->A, (n->n_attrs + 1) * sizeof *na);
        int32_t *no = imp_alloc(c->A, sizeof *no);
        if (!na || !no) {
            s = occ_fail(c->e, OCC_ERR_NOMEM, "out of memory");
            break;
        }
        memcpy(na, n->attrs, n->n_attrs * sizeof *na);
        na[n->n_attrs].name = "occ_act";
        na[n->n_attrs].type = OCC_ATTR_INT;
        na[n->n_attrs].i = act;
        /* the product now writes the activation's output */
        no[0] = z;
        c->dead[cons[y]] = 1;
        n->attrs = na;
        n->n_attrs++;
        n->outputs = no;
        c->v[z].producer = (int32_t)k;
    }
    /* the folds above change no reader of a Softmax's chain */
    for (uint32_t k = 0; k < c->nn && !s; k++)
        if (!c->dead[k])
            fold_softmax(c, k, use, cons, &s);
    free(use);
    free(cons);
    return s;
}
