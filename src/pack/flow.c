/* The graph's boundary and control flow at pack time: which graph input a
 * shape-steering value comes from (named in the refusal, fixed by --bind),
 * If inlined when its condition is known at pack time, and graph outputs
 * that need a tensor of their own. Static shapes are the law: the planner
 * sizes every buffer before the first run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops.h"
#include "pack/imp_graph.h"

/* The graph input a run-time value derives from (the first found walking
 * back through its producers), or NULL: names what --bind should fix. */
const char *imp_steering_input(const imp_ctx *c, int32_t v)
{
    int32_t stack[256];
    uint32_t sp = 0, steps = 0;
    stack[sp++] = v;
    while (sp && steps++ < 4096) {
        int32_t x = stack[--sp];
        if (x < 0 || (uint32_t)x >= c->nv)
            continue;
        if (c->v[x].is_input)
            return c->t[x].name;
        int32_t p = c->v[x].producer;
        if (p < 0 || (uint32_t)p >= c->nn)
            continue;
        const occ_node *nd = &c->nodes[p];
        for (uint32_t j = 0; j < nd->n_inputs && sp < 256; j++)
            if (nd->inputs[j] >= 0 && !c->v[nd->inputs[j]].is_const)
                stack[sp++] = nd->inputs[j];
    }
    return NULL;
}

/* If: static shapes are the law (the planner needs them), so only an If whose
 * condition is known at pack time (a constant, or derived from shapes) is
 * taken: the branch's nodes are converted in place of the If, and the If's
 * outputs become names of the branch's outputs. */
occ_status imp_inline_if(imp_ctx *c, const Onnx__NodeProto *n, const char *name,
                         const int32_t *ins, size_t nin, size_t nout)
{
    occ_error *e = c->e;
    if (nin < 1 || ins[0] < 0)
        return occ_fail(e, OCC_ERR_FORMAT, "If without a condition");
    const imp_val *cv = &c->v[ins[0]];
    if (!cv->is_const) {
        const char *gi = imp_steering_input(c, ins[0]);
        if (gi)
            return occ_fail(e, OCC_ERR_UNSUPPORTED, "the condition '%s' depends on graph input "
                            "'%s' at run time (control flow must be decided at pack time: "
                            "--bind %s=FILE)", n->input[0], gi, gi);
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "the condition '%s' is only known at run time "
                        "(control flow must be decided at pack time)", n->input[0]);
    }
    if (cv->c.count != 1)
        return occ_fail(e, OCC_ERR_INVALID, "the condition has %lld elements (one needed)",
                        (long long)cv->c.count);
    int taken = cv->c.type == CV_INT ? cv->c.i[0] != 0 : cv->c.f[0] != 0.0f;
    const char *bn = taken ? "then_branch" : "else_branch";
    const Onnx__AttributeProto *ga = imp_onnx_attr(n, bn);
    const Onnx__GraphProto *g = ga ? ga->g : NULL;
    if (!g)
        return occ_fail(e, OCC_ERR_FORMAT, "missing %s", bn);
    if (g->n_output < nout)
        return occ_fail(e, OCC_ERR_FORMAT, "%s has %zu outputs, the If %zu", bn, g->n_output, nout);
    if (c->if_depth >= 16)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "If nested more than 16 deep");
    c->if_depth++;
    occ_status s = OCC_OK;
    for (size_t k = 0; k < g->n_initializer && !s; k++) {
        const Onnx__TensorProto *tp = g->initializer[k];
        imp_cval v;
        if (!tp->name || !*tp->name) {
            s = occ_fail(e, OCC_ERR_FORMAT, "%s initializer #%zu has no name", bn, k);
            break;
        }
        if ((s = imp_tensor_parse(tp, &v, e))) {
            imp_cval_clear(&v);
            break;
        }
        int32_t idx = imp_val_new(c, tp->name);
        if (idx < 0) {
            imp_cval_clear(&v);
            s = idx;
            break;
        }
        imp_val_set_const(c, idx, &v);
    }
    for (size_t k = 0; k < g->n_node && !s; k++) {
        const Onnx__NodeProto *sn = g->node[k];
        char buf[160];
        snprintf(buf, sizeof buf, "%.60s/%.60s_%zu", name, sn->op_type ? sn->op_type : "?", k);
        const char *snm = sn->name && *sn->name ? sn->name : imp_strdup(c->A, buf);
        int32_t *sins = calloc(sn->n_input + 1, sizeof *sins);
        if (!snm || !sins || !sn->op_type || !*sn->op_type) {
            free(sins);
            s = !sn->op_type || !*sn->op_type
                    ? occ_fail(e, OCC_ERR_FORMAT, "%s node #%zu has no op_type", bn, k)
                    : occ_fail(e, OCC_ERR_NOMEM, "out of memory");
            break;
        }
        /* the branch's values stay alive: nothing in the pack reads them
         * otherwise (dead code removal drops what the outputs do not need) */
        for (size_t j = 0; j < sn->n_input && !s; j++)
            if (*sn->input[j])
                s = imp_map_put(&c->consumed, sn->input[j], 1, e);
        if (!s && (s = imp_convert_node(c, sn, snm, sins)))
            imp_node_prefix(e, sn, snm);
        free(sins);
    }
    for (size_t k = 0; k < nout && !s; k++) {
        const char *on = g->output[k]->name;
        int32_t idx = on ? imp_map_get(&c->names, on) : -1;
        if (idx < 0)
            s = occ_fail(e, OCC_ERR_FORMAT, "%s output '%s' is not produced", bn, on ? on : "");
        else if (*n->output[k])
            s = imp_map_put(&c->names, n->output[k], idx, e);
    }
    c->if_depth--;
    if (!s)
        c->stats.folded++;
    return s;
}

/* A graph output that is a constant (a folded Shape, Size, ...), a graph
 * input, or another output's tensor gets its own run-time tensor: an
 * Identity copy, named as the output (the source keeps or gets another
 * name). */
occ_status imp_materialize_output(imp_ctx *c, int32_t *idx, const char *nm)
{
    occ_error *e = c->e;
    int32_t src = *idx;
    if (!strcmp(c->t[src].name, nm)) {
        const char *other = imp_unique_name(c, nm);
        if (!other)
            return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
        if (c->v[src].is_input)
            nm = other; /* a graph input keeps its name (occ run --input NAME) */
        else
            c->t[src].name = other;
    }
    int32_t *in = imp_alloc(c->A, sizeof *in), *out = imp_alloc(c->A, sizeof *out);
    if (!in || !out)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    int32_t o = imp_val_new(c, nm);
    if (o < 0)
        return o;
    c->v[o].producer = (int32_t)c->nn;
    *in = src;
    *out = o;
    occ_node *node = NULL;
    occ_status s = imp_add_node(c, &node);
    if (s)
        return s;
    node->name = c->t[o].name;
    node->op = "Identity";
    node->n_inputs = node->n_outputs = 1;
    node->inputs = in;
    node->outputs = out;
    occ_model m = {0};
    m.tensors = c->t;
    m.n_tensors = c->nv;
    if ((s = occ_op_infer(&m, node, e)))
        return occ_error_prefix(e, "graph output '%s'", nm);
    *idx = o;
    return OCC_OK;
}
