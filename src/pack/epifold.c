/* Pack-time rewrite after fuse.c: an activation that follows a panel
 * MatMul (occ_packB, a Linear) goes into the MatMul as occ_act, applied by
 * the GEMM to each finished tile while it is in registers (src/ops/matmul.c,
 * vecmath.c's store epilogue). A transformer's MLP wrote [tokens, 3072]
 * and read it back for its GELU; now it writes it once.
 *
 *   MatMul(occ_packB, no occ_act) -> Relu            =>  occ_act = 1
 *   MatMul(occ_packB, no occ_act) -> Gelu (none)     =>  occ_act = 2
 *   MatMul(occ_packB, no occ_act) -> Gelu (tanh)     =>  occ_act = 3
 *
 * Only when the activation is the product's one reader (not another node,
 * not a graph output): the product's own value disappears. The kernel uses
 * the separate op's formulas, so the outputs do not change. */
#include <stdlib.h>
#include <string.h>

#include "ops/vecmath.h"
#include "pack/imp_graph.h"

static const occ_attr *find_attr(const occ_node *n, const char *name)
{
    for (uint32_t k = 0; k < n->n_attrs; k++)
        if (strcmp(n->attrs[k].name, name) == 0)
            return &n->attrs[k];
    return NULL;
}

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
    const occ_attr *ap = find_attr(n, "approximate");
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
    if (strcmp(n->op, "MatMul") != 0 || n->n_outputs != 1 || !find_attr(n, "occ_packB"))
        return 0;
    for (uint32_t k = 0; k < n->n_attrs; k++)
        if (strcmp(n->attrs[k].name, "occ_packB") && strcmp(n->attrs[k].name, "occ_bias"))
            return 0;
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
            occ_tensor_dtype(&c->t[z]) != OCC_DTYPE_FLOAT || c->t[z].ndim != c->t[y].ndim ||
            memcmp(c->t[z].dims, c->t[y].dims, sizeof(int64_t) * (size_t)c->t[y].ndim))
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
    free(use);
    free(cons);
    return s;
}
