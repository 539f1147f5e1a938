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

/* Einsum with three or more operands (linear attention's "btd,btde,bt->bte"):
 * the kernel contracts two, so the chain is split left to right into
 * two-operand Einsums. Each intermediate keeps the letters (and the
 * ellipsis) that a later operand or the output still needs, in order of
 * first appearance; the last step writes the node's output. Summing a letter
 * as soon as nothing later needs it keeps the intermediates small. */
#define EIN_TERM_MAX 64

/* One term with "..." as '.', spaces dropped; 0 on a malformed term. */
static int ein_term(const char *s, size_t len, char *out)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == ' ')
            continue;
        if (n + 1 >= EIN_TERM_MAX)
            return 0;
        if (s[i] == '.') {
            if (i + 2 >= len || s[i + 1] != '.' || s[i + 2] != '.' || strchr(out, '.'))
                return 0;
            i += 2;
        }
        out[n++] = s[i];
        out[n] = 0;
    }
    return 1;
}

/* Appends term t to buf, '.' spelled "..." again. */
static void ein_put(char *buf, size_t cap, const char *t)
{
    size_t n = strlen(buf);
    for (; *t && n + 4 < cap; t++) {
        if (*t == '.') {
            memcpy(buf + n, "...", 3);
            n += 3;
        } else {
            buf[n++] = *t;
        }
    }
    buf[n] = 0;
}

occ_status imp_split_einsum(imp_ctx *c, const Onnx__NodeProto *n, const char *name, size_t nin)
{
    occ_error *e = c->e;
    const Onnx__AttributeProto *ea = imp_onnx_attr(n, "equation");
    if (!ea || ea->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING || !ea->s.len ||
        ea->s.len > 1024 || memchr(ea->s.data, 0, ea->s.len))
        return occ_fail(e, OCC_ERR_INVALID, "Einsum without a valid 'equation'");
    if (nin > 16)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "Einsum with %zu operands (16 at most)", nin);
    const char *eq = (const char *)ea->s.data, *end = eq + ea->s.len;
    char terms[17][EIN_TERM_MAX];
    memset(terms, 0, sizeof terms);
    const char *arrow = NULL;
    for (const char *p = eq; p + 1 < end; p++)
        if (p[0] == '-' && p[1] == '>') {
            arrow = p;
            break;
        }
    const char *lhs_end = arrow ? arrow : end, *p = eq;
    size_t nt = 0;
    for (;;) {
        const char *q = p;
        while (q < lhs_end && *q != ',')
            q++;
        if (nt >= nin || !ein_term(p, (size_t)(q - p), terms[nt]))
            return occ_fail(e, OCC_ERR_INVALID, "Einsum: the equation does not have %zu valid "
                            "operand terms", nin);
        nt++;
        if (q >= lhs_end)
            break;
        p = q + 1;
    }
    if (nt != nin)
        return occ_fail(e, OCC_ERR_INVALID, "Einsum: the equation has %zu operand terms, the "
                        "node %zu inputs", nt, nin);
    char *out = terms[nin];
    if (arrow) {
        if (!ein_term(arrow + 2, (size_t)(end - arrow - 2), out))
            return occ_fail(e, OCC_ERR_INVALID, "Einsum: bad output term");
    } else {
        /* implicit output: the ellipsis, then letters seen once, sorted */
        int count[128] = {0}, ell = 0;
        for (size_t k = 0; k < nin; k++)
            for (const char *t = terms[k]; *t; t++) {
                if (*t == '.')
                    ell = 1;
                else
                    count[(unsigned char)*t & 127]++;
            }
        size_t m = 0;
        if (ell)
            out[m++] = '.';
        for (int ch = 0; ch < 128; ch++)
            if (count[ch] == 1 && m + 1 < EIN_TERM_MAX)
                out[m++] = (char)ch;
        out[m] = 0;
    }
    const char *cur = n->input[0];
    char acc[EIN_TERM_MAX];
    memcpy(acc, terms[0], EIN_TERM_MAX);
    occ_status s = OCC_OK;
    for (size_t k = 1; k < nin && !s; k++) {
        char keep[EIN_TERM_MAX] = {0};
        if (k + 1 == nin) {
            memcpy(keep, out, EIN_TERM_MAX);
        } else {
            size_t m = 0;
            const char *pair[2] = {acc, terms[k]};
            for (int j = 0; j < 2; j++)
                for (const char *t = pair[j]; *t; t++) {
                    int later = *t == '.' || strchr(out, *t) != NULL;
                    for (size_t r = k + 1; r < nin && !later; r++)
                        later = strchr(terms[r], *t) != NULL;
                    if (later && !memchr(keep, *t, m) && m + 1 < EIN_TERM_MAX)
                        keep[m++] = *t;
                }
        }
        char eqbuf[4 * EIN_TERM_MAX + 8] = {0}, nbuf[160];
        ein_put(eqbuf, sizeof eqbuf, acc);
        ein_put(eqbuf, sizeof eqbuf, ",");
        ein_put(eqbuf, sizeof eqbuf, terms[k]);
        ein_put(eqbuf, sizeof eqbuf, "->");
        ein_put(eqbuf, sizeof eqbuf, keep);
        snprintf(nbuf, sizeof nbuf, "%.120s/pair%zu", name, k);
        const char *snm = imp_strdup(c->A, nbuf);
        const char *onm = k + 1 == nin ? n->output[0] : imp_unique_name(c, nbuf);
        char *eqs = imp_strdup(c->A, eqbuf);
        char **sin = imp_alloc(c->A, 2 * sizeof *sin), **sout = imp_alloc(c->A, sizeof *sout);
        Onnx__AttributeProto *at = imp_alloc(c->A, sizeof *at);
        Onnx__AttributeProto **ats = imp_alloc(c->A, sizeof *ats);
        if (!snm || !onm || !eqs || !sin || !sout || !at || !ats)
            return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
        Onnx__AttributeProto a0 = ONNX__ATTRIBUTE_PROTO__INIT;
        *at = a0;
        at->name = (char *)"equation";
        at->has_type = 1;
        at->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING;
        at->has_s = 1;
        at->s.data = (uint8_t *)eqs;
        at->s.len = strlen(eqs);
        ats[0] = at;
        sin[0] = (char *)cur;
        sin[1] = n->input[k];
        sout[0] = (char *)onm;
        Onnx__NodeProto sub = ONNX__NODE_PROTO__INIT;
        sub.op_type = (char *)"Einsum";
        sub.name = (char *)snm;
        sub.n_input = 2;
        sub.input = sin;
        sub.n_output = 1;
        sub.output = sout;
        sub.n_attribute = 1;
        sub.attribute = ats;
        int32_t sins[3];
        s = imp_convert_node(c, &sub, snm, sins);
        cur = onm;
        memcpy(acc, keep, EIN_TERM_MAX);
    }
    return s;
}
