/* Folds BatchNormalization into the Conv producing its input:
 *   f[m] = gamma[m] / sqrt(var[m] + eps)
 *   W'[m,...] = W[m,...] * f[m]
 *   b'[m] = (b[m] - mean[m]) * f[m] + beta[m]
 * computed in double, stored as float. Only when the Conv's output feeds
 * nothing but the BN (and is not a graph output) and every parameter is a
 * float constant of the right size; otherwise the BN stays a node. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pack/imp_graph.h"

static int float_const(const imp_ctx *c, int32_t idx, int64_t count)
{
    return idx >= 0 && c->v[idx].is_const && c->v[idx].c.type == CV_FLOAT &&
           c->v[idx].c.count == count && (count == 0 || c->v[idx].c.f);
}

static float node_float_attr(const occ_node *n, const char *name, float dflt)
{
    for (uint32_t k = 0; k < n->n_attrs; k++)
        if (!strcmp(n->attrs[k].name, name) && n->attrs[k].type == OCC_ATTR_FLOAT)
            return n->attrs[k].f;
    return dflt;
}

static occ_status fold_one(imp_ctx *c, uint32_t bi, uint32_t ci)
{
    occ_error *e = c->e;
    occ_node *bn = &c->nodes[bi];
    occ_node *conv = &c->nodes[ci];
    int32_t w = conv->inputs[1];
    int32_t b = conv->n_inputs >= 3 ? conv->inputs[2] : -1;
    const imp_cval *W = &c->v[w].c;
    int64_t M = W->dims[0], inner = M ? W->count / M : 0;
    const float *gamma = c->v[bn->inputs[1]].c.f, *beta = c->v[bn->inputs[2]].c.f;
    const float *mean = c->v[bn->inputs[3]].c.f, *var = c->v[bn->inputs[4]].c.f;
    const float *bias = b >= 0 ? c->v[b].c.f : NULL;
    double eps = node_float_attr(bn, "epsilon", 1e-5f);

    imp_cval nw = {.type = CV_FLOAT, .ndim = W->ndim, .count = W->count};
    memcpy(nw.dims, W->dims, sizeof nw.dims);
    imp_cval nb = {.type = CV_FLOAT, .ndim = 1, .count = M};
    nb.dims[0] = M;
    occ_status s;
    if ((s = imp_cval_alloc(&nw, e)) || (s = imp_cval_alloc(&nb, e))) {
        imp_cval_clear(&nw);
        imp_cval_clear(&nb);
        return s;
    }
    for (int64_t m = 0; m < M; m++) {
        double f = (double)gamma[m] / sqrt((double)var[m] + eps);
        const float *src = W->f + m * inner;
        float *dst = nw.f + m * inner;
        for (int64_t k = 0; k < inner; k++)
            dst[k] = (float)((double)src[k] * f);
        double b0 = bias ? bias[m] : 0.0;
        nb.f[m] = (float)((b0 - (double)mean[m]) * f + (double)beta[m]);
    }
    /* new values (may move c->v / c->t; no pointers into them are used below) */
    const char *wname = imp_unique_name(c, c->t[w].name);
    int32_t wi = wname ? imp_val_new(c, wname) : OCC_ERR_NOMEM;
    if (wi < 0) {
        imp_cval_clear(&nw);
        imp_cval_clear(&nb);
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    }
    c->v[wi].c = nw;
    c->v[wi].is_const = 1;
    c->t[wi].kind = OCC_TENSOR_WEIGHT;
    c->t[wi].ndim = nw.ndim;
    memcpy(c->t[wi].dims, nw.dims, sizeof nw.dims);
    c->t[wi].size = 4u * (uint64_t)nw.count;
    char base[200];
    snprintf(base, sizeof base, "%.180s.bias", conv->name);
    const char *bname = imp_unique_name(c, base);
    int32_t bidx = bname ? imp_val_new(c, bname) : OCC_ERR_NOMEM;
    if (bidx < 0) {
        imp_cval_clear(&nb);
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    }
    c->v[bidx].c = nb;
    c->v[bidx].is_const = 1;
    c->t[bidx].kind = OCC_TENSOR_WEIGHT;
    c->t[bidx].ndim = 1;
    c->t[bidx].dims[0] = M;
    c->t[bidx].size = 4u * (uint64_t)M;

    int32_t *ni = imp_alloc(c->A, 3 * sizeof *ni);
    if (!ni)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    ni[0] = conv->inputs[0];
    ni[1] = wi;
    ni[2] = bidx;
    conv->inputs = ni;
    conv->n_inputs = 3;
    int32_t out = bn->outputs[0];
    ((int32_t *)conv->outputs)[0] = out;
    c->v[out].producer = (int32_t)ci;
    c->dead[bi] = 1;
    c->stats.bn_folded++;
    return OCC_OK;
}

occ_status imp_fold_batchnorm(imp_ctx *c, const int32_t *gouts, uint32_t ngouts)
{
    uint32_t nv = c->nv;
    uint32_t *use = calloc(nv + 1, sizeof *use);
    if (!use)
        return occ_fail(c->e, OCC_ERR_NOMEM, "out of memory");
    for (uint32_t k = 0; k < ngouts; k++)
        use[gouts[k]]++;
    for (uint32_t k = 0; k < c->nn; k++) {
        if (c->dead[k])
            continue;
        for (uint32_t j = 0; j < c->nodes[k].n_inputs; j++)
            if (c->nodes[k].inputs[j] >= 0)
                use[c->nodes[k].inputs[j]]++;
    }
    occ_status s = OCC_OK;
    for (uint32_t k = 0; k < c->nn && !s; k++) {
        const occ_node *bn = &c->nodes[k];
        if (c->dead[k] || strcmp(bn->op, "BatchNormalization") || bn->n_inputs != 5)
            continue;
        int32_t x = bn->inputs[0];
        if (x < 0 || (uint32_t)x >= nv || use[x] != 1)
            continue;
        int32_t p = c->v[x].producer;
        if (p < 0 || c->dead[p] || strcmp(c->nodes[p].op, "Conv") || c->nodes[p].n_outputs != 1 ||
            c->nodes[p].outputs[0] != x || c->nodes[p].n_inputs < 2)
            continue;
        int extra_used = 0;
        for (uint32_t j = 1; j < bn->n_outputs; j++)
            if ((uint32_t)bn->outputs[j] < nv && use[bn->outputs[j]])
                extra_used = 1;
        if (extra_used)
            continue;
        const occ_node *conv = &c->nodes[p];
        int32_t w = conv->inputs[1];
        if (w < 0 || !c->v[w].is_const || c->v[w].c.type != CV_FLOAT || c->v[w].c.ndim < 3 ||
            !c->v[w].c.f || c->v[w].c.dims[0] <= 0)
            continue;
        int64_t M = c->v[w].c.dims[0];
        if (conv->n_inputs >= 3 && conv->inputs[2] >= 0 && !float_const(c, conv->inputs[2], M))
            continue;
        if (!float_const(c, bn->inputs[1], M) || !float_const(c, bn->inputs[2], M) ||
            !float_const(c, bn->inputs[3], M) || !float_const(c, bn->inputs[4], M))
            continue;
        s = fold_one(c, k, (uint32_t)p);
    }
    free(use);
    return s;
}
