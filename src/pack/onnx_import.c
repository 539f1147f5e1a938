/* ONNX -> occ_model. The ONNX bytes are untrusted: every name, index, dim and
 * size is checked, and every failure is a status with a message, never a
 * crash. See include/occ/packer.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "occ/packer.h"
#include "ops/ops.h"
#include "pack/imp_graph.h"

struct occ_import {
    imp_arena arena;
    Onnx__ModelProto *proto;
    imp_val *vals;        /* owns folded constant data */
    uint32_t n_vals;
    occ_model model;
    const void **wdata;   /* per model tensor: its bytes (of its dtype) */
    occ_pack_stats stats;
};

/* ---------------------------------------------------------------- map -- */

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    return h;
}

int32_t imp_map_get(const imp_map *m, const char *key)
{
    if (!m->cap)
        return -1;
    uint32_t mask = m->cap - 1, i = (uint32_t)hash_str(key) & mask;
    while (m->e[i].key) {
        if (!strcmp(m->e[i].key, key))
            return m->e[i].val;
        i = (i + 1) & mask;
    }
    return -1;
}

occ_status imp_map_put(imp_map *m, const char *key, int32_t val, occ_error *e)
{
    if ((m->n + 1) * 2 > m->cap) {
        uint32_t cap = m->cap ? m->cap * 2 : 256;
        if (cap < m->cap || cap > (1u << 30))
            return occ_fail(e, OCC_ERR_NOMEM, "too many names");
        imp_map_entry *ne = calloc(cap, sizeof *ne);
        if (!ne)
            return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
        for (uint32_t k = 0; k < m->cap; k++) {
            if (!m->e[k].key)
                continue;
            uint32_t i = (uint32_t)hash_str(m->e[k].key) & (cap - 1);
            while (ne[i].key)
                i = (i + 1) & (cap - 1);
            ne[i] = m->e[k];
        }
        free(m->e);
        m->e = ne;
        m->cap = cap;
    }
    uint32_t mask = m->cap - 1, i = (uint32_t)hash_str(key) & mask;
    while (m->e[i].key) {
        if (!strcmp(m->e[i].key, key)) {
            m->e[i].val = val;
            return OCC_OK;
        }
        i = (i + 1) & mask;
    }
    m->e[i].key = key;
    m->e[i].val = val;
    m->n++;
    return OCC_OK;
}

void imp_map_free(imp_map *m)
{
    free(m->e);
    memset(m, 0, sizeof *m);
}

/* ------------------------------------------------------------- values -- */

int32_t imp_val_new(imp_ctx *c, const char *name)
{
    if (c->nv == c->vcap) {
        uint32_t cap = c->vcap ? c->vcap * 2 : 256;
        if (cap > (1u << 28))
            return occ_fail(c->e, OCC_ERR_UNSUPPORTED, "too many tensors");
        occ_tensor *t = realloc(c->t, cap * sizeof *t);
        if (!t)
            return occ_fail(c->e, OCC_ERR_NOMEM, "out of memory");
        c->t = t;
        imp_val *v = realloc(c->v, cap * sizeof *v);
        if (!v)
            return occ_fail(c->e, OCC_ERR_NOMEM, "out of memory");
        c->v = v;
        c->vcap = cap;
    }
    int32_t idx = (int32_t)c->nv;
    memset(&c->t[idx], 0, sizeof c->t[idx]);
    memset(&c->v[idx], 0, sizeof c->v[idx]);
    c->t[idx].name = name;
    c->t[idx].kind = OCC_TENSOR_ACT;
    c->v[idx].producer = -1;
    occ_status s = imp_map_put(&c->names, name, idx, c->e);
    if (s)
        return s;
    c->nv++;
    return idx;
}

const char *imp_unique_name(imp_ctx *c, const char *base)
{
    size_t n = strlen(base) + 24;
    char *buf = imp_alloc(c->A, n);
    if (!buf)
        return NULL;
    if (imp_map_get(&c->names, base) < 0) {
        memcpy(buf, base, strlen(base) + 1);
        return buf;
    }
    for (unsigned k = 1;; k++) {
        snprintf(buf, n, "%s#%u", base, k);
        if (imp_map_get(&c->names, buf) < 0)
            return buf;
    }
}

/* Shape and kind of a value from its constant data. */
void imp_val_set_const(imp_ctx *c, int32_t idx, imp_cval *cv)
{
    c->v[idx].c = *cv;
    c->v[idx].is_const = 1;
    memset(cv, 0, sizeof *cv);
    occ_tensor *t = &c->t[idx];
    t->kind = OCC_TENSOR_WEIGHT;
    t->dtype = imp_cval_dtype(&c->v[idx].c);
    t->ndim = c->v[idx].c.ndim;
    memcpy(t->dims, c->v[idx].c.dims, sizeof t->dims);
    t->size = occ_dtype_size(t->dtype) * (uint64_t)c->v[idx].c.count;
}

static const char *sname(const char *s)
{
    return s ? s : "";
}

/* -------------------------------------------------------- topo sort -- */

occ_status imp_node_prefix(occ_error *e, const Onnx__NodeProto *n, const char *name)
{
    return occ_error_prefix(e, "node '%s' (%s)", name, sname(n->op_type));
}

/* Orders graph nodes topologically (Kahn; ties broken by file order so an
 * already sorted graph keeps its order). names: node display names. */
static occ_status topo_sort(imp_ctx *c, const Onnx__GraphProto *g, const char **names,
                            uint32_t *order)
{
    occ_error *e = c->e;
    size_t nn = g->n_node;
    imp_map prod = {0};
    occ_status s = OCC_OK;
    uint32_t *indeg = calloc(nn + 1, sizeof *indeg);
    uint32_t *start = calloc(nn + 2, sizeof *start);
    uint32_t *heap = calloc(nn + 1, sizeof *heap);
    size_t nedges = 0;
    for (size_t k = 0; k < nn; k++)
        nedges += g->node[k]->n_input;
    uint32_t *adj = calloc(nedges + 1, sizeof *adj);
    uint32_t *fill = calloc(nn + 1, sizeof *fill);
    if (!indeg || !start || !heap || !adj || !fill) {
        s = occ_fail(e, OCC_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (size_t k = 0; k < nn; k++) {
        const Onnx__NodeProto *n = g->node[k];
        for (size_t j = 0; j < n->n_output; j++) {
            const char *o = n->output[j];
            if (!*o)
                continue;
            int32_t other = imp_map_get(&prod, o);
            if (other >= 0 || imp_map_get(&c->names, o) >= 0) {
                s = occ_fail(e, OCC_ERR_FORMAT, "output '%s' is produced twice (%s)", o,
                             other >= 0 ? names[other] : "it is also an initializer or graph input");
                imp_node_prefix(e, n, names[k]);
                goto out;
            }
            if ((s = imp_map_put(&prod, o, (int32_t)k, e)))
                goto out;
        }
    }
    /* edges producer -> consumer, CSR */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t k = 0; k < nn; k++) {
            const Onnx__NodeProto *n = g->node[k];
            for (size_t j = 0; j < n->n_input; j++) {
                const char *in = n->input[j];
                if (!*in)
                    continue;
                int32_t p = imp_map_get(&prod, in);
                if (p < 0) {
                    if (pass == 0 && imp_map_get(&c->names, in) < 0) {
                        s = occ_fail(e, OCC_ERR_FORMAT, "input '%s' is not produced by any node, "
                                     "initializer or graph input", in);
                        imp_node_prefix(e, n, names[k]);
                        goto out;
                    }
                    continue;
                }
                if (pass == 0) {
                    start[p + 1]++;
                    indeg[k]++;
                } else {
                    adj[start[p] + fill[p]++] = (uint32_t)k;
                }
            }
        }
        if (pass == 0)
            for (size_t k = 0; k < nn; k++)
                start[k + 1] += start[k];
    }
    /* Kahn with a min-heap of node indices */
    size_t hn = 0, done = 0;
    for (size_t k = 0; k < nn; k++)
        if (!indeg[k])
            heap[hn++] = (uint32_t)k; /* increasing: already a heap */
    while (hn) {
        uint32_t top = heap[0];
        heap[0] = heap[--hn];
        for (size_t i = 0;;) {
            size_t l = 2 * i + 1, r = l + 1, m = i;
            if (l < hn && heap[l] < heap[m])
                m = l;
            if (r < hn && heap[r] < heap[m])
                m = r;
            if (m == i)
                break;
            uint32_t tmp = heap[i];
            heap[i] = heap[m];
            heap[m] = tmp;
            i = m;
        }
        order[done++] = top;
        for (uint32_t q = start[top]; q < start[top + 1]; q++) {
            uint32_t k = adj[q];
            if (--indeg[k] == 0) {
                size_t i = hn++;
                heap[i] = k;
                while (i && heap[(i - 1) / 2] > heap[i]) {
                    uint32_t tmp = heap[i];
                    heap[i] = heap[(i - 1) / 2];
                    heap[(i - 1) / 2] = tmp;
                    i = (i - 1) / 2;
                }
            }
        }
    }
    if (done != nn) {
        size_t k = 0;
        while (k < nn && !indeg[k])
            k++;
        s = occ_fail(e, OCC_ERR_FORMAT, "the graph has a cycle (through node '%s' (%s))",
                     names[k < nn ? k : 0], sname(g->node[k < nn ? k : 0]->op_type));
    }
out:
    imp_map_free(&prod);
    free(indeg);
    free(start);
    free(heap);
    free(adj);
    free(fill);
    return s;
}

/* --------------------------------------------------------- inputs -- */

static occ_status add_graph_input(imp_ctx *c, const Onnx__ValueInfoProto *vi,
                                  const occ_pack_options *opts, uint8_t *pinned_used)
{
    occ_error *e = c->e;
    const char *nm = vi->name;
    if (!nm || !*nm)
        return occ_fail(e, OCC_ERR_FORMAT, "graph input without a name");
    if (imp_map_get(&c->names, nm) >= 0)
        return OCC_OK; /* an initializer (old exporters list them as inputs) */
    const Onnx__TypeProto *tp = vi->type;
    if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "graph input '%s' is not a tensor", nm);
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    /* inputs arrive as raw bytes of their declared type: only exact occ_dtypes */
    uint32_t dt = tt->has_elem_type ? imp_onnx_dtype(tt->elem_type) : 0;
    if (!dt)
        return occ_fail(e, OCC_ERR_UNSUPPORTED,
                        "graph input '%s' has element type %d (float32, float64, float16, "
                        "bfloat16, int8..int64, uint8..uint64 and bool inputs are supported)", nm,
                        tt->has_elem_type ? (int)tt->elem_type : 0);
    int32_t idx = imp_val_new(c, nm);
    if (idx < 0)
        return idx;
    occ_tensor *t = &c->t[idx];
    c->v[idx].is_input = 1;
    t->kind = OCC_TENSOR_INPUT;
    t->dtype = dt;
    const occ_input_shape *pin = NULL;
    for (uint32_t k = 0; opts && k < opts->n_input_shapes; k++)
        if (opts->input_shapes[k].name && !strcmp(opts->input_shapes[k].name, nm)) {
            pin = &opts->input_shapes[k];
            pinned_used[k] = 1;
        }
    const Onnx__TensorShapeProto *sh = tt->shape;
    if (pin) {
        if (pin->ndim < 0 || pin->ndim > OCC_MAX_DIMS)
            return occ_fail(e, OCC_ERR_INVALID, "--input-shape for '%s' has a bad rank", nm);
        if (sh && (int32_t)sh->n_dim != pin->ndim)
            return occ_fail(e, OCC_ERR_INVALID, "--input-shape for '%s' has %d dims, the model "
                            "says %zu", nm, (int)pin->ndim, sh->n_dim);
        t->ndim = pin->ndim;
        for (int32_t d = 0; d < pin->ndim; d++) {
            if (pin->dims[d] < 0) /* 0: an empty input */
                return occ_fail(e, OCC_ERR_INVALID, "--input-shape for '%s': dims must be >= 0", nm);
            const Onnx__TensorShapeProto__Dimension *dm = sh ? sh->dim[d] : NULL;
            if (dm && dm->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
                dm->dim_value != pin->dims[d])
                return occ_fail(e, OCC_ERR_INVALID, "--input-shape for '%s': dim %d is %lld in "
                                "the model, not %lld", nm, (int)d, (long long)dm->dim_value,
                                (long long)pin->dims[d]);
            t->dims[d] = pin->dims[d];
        }
    } else {
        if (!sh)
            return occ_fail(e, OCC_ERR_UNSUPPORTED, "graph input '%s' has no static shape; pin it "
                            "with --input-shape %s=d0,d1,...", nm, nm);
        if (sh->n_dim > OCC_MAX_DIMS)
            return occ_fail(e, OCC_ERR_UNSUPPORTED, "graph input '%s' has rank %zu", nm, sh->n_dim);
        t->ndim = (int32_t)sh->n_dim;
        for (size_t d = 0; d < sh->n_dim; d++) {
            const Onnx__TensorShapeProto__Dimension *dm = sh->dim[d];
            if (dm->value_case != ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE)
                return occ_fail(e, OCC_ERR_UNSUPPORTED,
                                "graph input '%s' has a symbolic dim %zu ('%s'); pin it with "
                                "--input-shape %s=d0,d1,...", nm, d,
                                dm->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM
                                    ? sname(dm->dim_param) : "?", nm);
            /* a 0 dim: an empty input (an empty file at run time) */
            if (dm->dim_value < 0)
                return occ_fail(e, OCC_ERR_SHAPE, "graph input '%s' has dim %zu = %lld", nm, d,
                                (long long)dm->dim_value);
            t->dims[d] = dm->dim_value;
        }
    }
    int64_t cnt = imp_count(t->ndim, t->dims);
    if (cnt < 0)
        return occ_fail(e, OCC_ERR_SHAPE, "graph input '%s' is absurdly large", nm);
    t->size = occ_dtype_size(dt) * (uint64_t)cnt;
    for (uint32_t k = 0; opts && k < opts->n_binds; k++) {
        const occ_input_bind *b = &opts->binds[k];
        if (!b->name || strcmp(b->name, nm))
            continue;
        /* --bind: the input becomes a constant of its declared type and shape */
        if (b->size != t->size || (b->size && !b->data))
            return occ_fail(e, OCC_ERR_INVALID, "--bind %s: %llu bytes given, the input is %s "
                            "%s and needs %llu", nm, (unsigned long long)b->size,
                            occ_dtype_name(dt), "of its declared shape", (unsigned long long)t->size);
        imp_cval cv;
        memset(&cv, 0, sizeof cv);
        cv.ndim = t->ndim;
        memcpy(cv.dims, t->dims, sizeof cv.dims);
        cv.count = cnt;
        occ_status s = imp_cval_from_bytes(&cv, dt, b->data, e);
        if (s) {
            imp_cval_clear(&cv);
            return s;
        }
        c->v[idx].is_input = 0;
        c->v[idx].bound = 1;
        imp_val_set_const(c, idx, &cv);
        break;
    }
    return OCC_OK;
}

/* ------------------------------------------------------ finishing -- */

static occ_status resolve_outputs(imp_ctx *c, const Onnx__GraphProto *g, int32_t *outs)
{
    occ_error *e = c->e;
    for (size_t k = 0; k < g->n_output; k++) {
        const char *nm = g->output[k]->name;
        if (!nm || !*nm)
            return occ_fail(e, OCC_ERR_FORMAT, "graph output without a name");
        int32_t idx = imp_map_get(&c->names, nm);
        if (idx < 0)
            return occ_fail(e, OCC_ERR_FORMAT, "graph output '%s' is not produced by any node", nm);
        if (c->v[idx].undefined)
            return occ_fail(e, OCC_ERR_UNSUPPORTED, "graph output '%s' is a Dropout mask", nm);
        if (c->v[idx].is_input && !strcmp(c->t[idx].name, nm))
            return occ_fail(e, OCC_ERR_UNSUPPORTED, "graph output '%s' is a graph input", nm);
        int shared = 0;
        for (size_t j = 0; j < k; j++)
            shared |= outs[j] == idx;
        if (c->v[idx].is_const || c->v[idx].is_input || shared) {
            occ_status s = imp_materialize_output(c, &idx, nm);
            if (s)
                return s;
        }
        outs[k] = idx;
        if (!c->v[idx].is_input)
            c->t[idx].name = nm; /* keeps the graph output's name through Identity */
    }
    return OCC_OK;
}

static uint32_t dead_code(imp_ctx *c, const int32_t *outs, uint32_t nouts, uint32_t *used)
{
    memset(used, 0, c->nv * sizeof *used);
    for (uint32_t k = 0; k < nouts; k++)
        used[outs[k]]++;
    uint32_t removed = 0;
    for (uint32_t k = c->nn; k-- > 0;) {
        if (c->dead[k])
            continue;
        const occ_node *n = &c->nodes[k];
        int live = 0;
        for (uint32_t j = 0; j < n->n_outputs; j++)
            live |= used[n->outputs[j]] > 0;
        if (!live) {
            c->dead[k] = 1;
            removed++;
            continue;
        }
        for (uint32_t j = 0; j < n->n_inputs; j++)
            if (n->inputs[j] >= 0)
                used[n->inputs[j]]++;
    }
    return removed;
}

static occ_status build_model(imp_ctx *c, occ_import *im, const int32_t *gouts, uint32_t ngouts,
                              const char *const *in_names, uint32_t nin_names)
{
    occ_error *e = c->e;
    occ_model *m = &im->model;
    int32_t *remap = malloc(c->nv * sizeof *remap);
    int32_t *owner = malloc(c->nv * sizeof *owner);
    uint32_t live = 0;
    for (uint32_t k = 0; k < c->nn; k++)
        live += !c->dead[k];
    /* upper bound of final tensors: inputs + every node's inputs/outputs */
    size_t maxt = nin_names;
    for (uint32_t k = 0; k < c->nn; k++)
        if (!c->dead[k])
            maxt += c->nodes[k].n_inputs + c->nodes[k].n_outputs;
    occ_tensor *t = imp_alloc(c->A, (maxt + 1) * sizeof *t);
    const void **wd = calloc(maxt + 1, sizeof *wd);
    occ_node *nodes = imp_alloc(c->A, (live + 1) * sizeof *nodes);
    int32_t *ins = imp_alloc(c->A, (nin_names + 1) * sizeof *ins);
    int32_t *outs = imp_alloc(c->A, (ngouts + 1) * sizeof *outs);
    if (!remap || !owner || !t || !wd || !nodes || !ins || !outs) {
        free(remap);
        free(owner);
        free(wd);
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    }
    im->wdata = wd;
    for (uint32_t k = 0; k < c->nv; k++) {
        remap[k] = -1;
        owner[k] = -1;
    }
    uint32_t nt = 0;
    for (uint32_t k = 0; k < nin_names; k++) {
        int32_t idx = imp_map_get(&c->names, in_names[k]);
        remap[idx] = (int32_t)nt;
        t[nt++] = c->t[idx];
        ins[k] = remap[idx];
    }
    uint32_t q = 0;
    for (uint32_t k = 0; k < c->nn; k++) {
        if (c->dead[k])
            continue;
        const occ_node *src = &c->nodes[k];
        occ_node *dst = &nodes[q];
        *dst = *src;
        int32_t *ni = imp_alloc(c->A, (src->n_inputs + 1) * sizeof *ni);
        int32_t *no = imp_alloc(c->A, (src->n_outputs + 1) * sizeof *no);
        if (!ni || !no) {
            free(remap);
            free(owner);
            return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
        }
        for (uint32_t j = 0; j < src->n_inputs; j++) {
            int32_t v = src->inputs[j];
            if (v < 0) {
                ni[j] = -1;
                continue;
            }
            if (c->v[v].is_const && owner[v] >= 0 && owner[v] != (int32_t)q) {
                /* a weight shared by two nodes: each node gets its own copy */
                const char *nm = imp_unique_name(c, c->t[v].name);
                if (!nm || imp_map_put(&c->names, nm, v, e)) {
                    free(remap);
                    free(owner);
                    return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
                }
                t[nt] = c->t[v];
                t[nt].name = nm;
                if (!(wd[nt] = imp_cval_bytes(c->A, &c->v[v].c))) {
                    free(remap);
                    free(owner);
                    return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
                }
                ni[j] = (int32_t)nt++;
                continue;
            }
            if (remap[v] < 0) {
                remap[v] = (int32_t)nt;
                t[nt] = c->t[v];
                if (c->v[v].is_const) {
                    owner[v] = (int32_t)q;
                    t[nt].kind = OCC_TENSOR_WEIGHT;
                    if (!(wd[nt] = imp_cval_bytes(c->A, &c->v[v].c))) {
                        free(remap);
                        free(owner);
                        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
                    }
                }
                nt++;
            }
            ni[j] = remap[v];
        }
        for (uint32_t j = 0; j < src->n_outputs; j++) {
            int32_t v = src->outputs[j];
            if (remap[v] < 0) {
                remap[v] = (int32_t)nt;
                t[nt++] = c->t[v];
            }
            no[j] = remap[v];
        }
        dst->inputs = ni;
        dst->outputs = no;
        q++;
    }
    for (uint32_t k = 0; k < ngouts; k++)
        outs[k] = remap[gouts[k]];
    free(remap);
    free(owner);
    for (uint32_t k = 0; k < nt; k++) {
        t[k].layout = OCC_LAYOUT_PLAIN;
        t[k].data_offset = 0;
        t[k].dtype = occ_tensor_dtype(&t[k]);
        t[k].size = occ_dtype_size(t[k].dtype) * (uint64_t)imp_count(t[k].ndim, t[k].dims);
        if (t[k].kind == OCC_TENSOR_WEIGHT) {
            c->stats.n_weights++;
            c->stats.weight_size += t[k].size;
        }
    }
    for (uint32_t k = 0; k < ngouts; k++)
        if (outs[k] < 0)
            return occ_fail(e, OCC_ERR_INTERNAL, "graph output lost");
    m->n_tensors = nt;
    m->tensors = t;
    m->n_nodes = q;
    m->nodes = nodes;
    m->n_inputs = nin_names;
    m->inputs = ins;
    m->n_outputs = ngouts;
    m->outputs = outs;
    c->stats.nodes = q;
    c->stats.n_tensors = nt;
    return OCC_OK;
}

static occ_status set_meta(imp_ctx *c, occ_import *im, const Onnx__GraphProto *g,
                           const occ_pack_options *opts)
{
    occ_error *e = c->e;
    occ_model *m = &im->model;
    const char *nm = opts && opts->name && *opts->name ? opts->name
                     : g->name && *g->name ? g->name : "model";
    m->name = imp_strdup(c->A, nm);
    if (!m->name)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    if (opts && opts->n_labels) {
        const char **lab = imp_alloc(c->A, opts->n_labels * sizeof *lab);
        if (!lab)
            return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
        for (uint32_t k = 0; k < opts->n_labels; k++)
            if (!(lab[k] = imp_strdup(c->A, opts->labels[k] ? opts->labels[k] : "")))
                return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
        m->labels = lab;
        m->n_labels = opts->n_labels;
        if (m->n_outputs >= 1) {
            const occ_tensor *o = &m->tensors[m->outputs[0]];
            int64_t classes = o->ndim ? o->dims[o->ndim - 1] : 1;
            if (classes != (int64_t)opts->n_labels)
                return occ_fail(e, OCC_ERR_INVALID, "%u labels given but output '%s' has %lld "
                                "classes", opts->n_labels, o->name, (long long)classes);
        }
    }
    if (opts && opts->pre.present) {
        occ_preproc p = opts->pre;
        if (m->n_inputs != 1)
            return occ_fail(e, OCC_ERR_INVALID, "image preprocessing needs a model with one input");
        const occ_tensor *in = &m->tensors[m->inputs[0]];
        if (!p.channel_order[0])
            memcpy(p.channel_order, "RGB", 4);
        p.channel_order[3] = '\0';
        if (strcmp(p.channel_order, "RGB") && strcmp(p.channel_order, "BGR") &&
            strcmp(p.channel_order, "L"))
            return occ_fail(e, OCC_ERR_INVALID, "channel order must be RGB, BGR or L");
        int ch = p.channel_order[0] == 'L' ? 1 : 3;
        if (p.channels && p.channels != ch)
            return occ_fail(e, OCC_ERR_INVALID, "channel order %s has %d channels, not %d",
                            p.channel_order, ch, (int)p.channels);
        p.channels = ch;
        if (in->ndim != 4)
            return occ_fail(e, OCC_ERR_INVALID, "image preprocessing needs an NCHW input; '%s' "
                            "has rank %d", in->name, (int)in->ndim);
        if (in->dims[1] != ch)
            return occ_fail(e, OCC_ERR_INVALID, "input '%s' has %lld channels, channel order %s "
                            "gives %d", in->name, (long long)in->dims[1], p.channel_order, ch);
        if (!p.height && !p.width) {
            p.height = (int32_t)in->dims[2];
            p.width = (int32_t)in->dims[3];
        }
        if (p.height != in->dims[2] || p.width != in->dims[3])
            return occ_fail(e, OCC_ERR_INVALID, "input size %dx%d differs from the model's "
                            "%lldx%lld", (int)p.height, (int)p.width, (long long)in->dims[2],
                            (long long)in->dims[3]);
        if (!(p.scale > 0) || !isfinite(p.scale))
            return occ_fail(e, OCC_ERR_INVALID, "scale must be positive");
        for (int k = 0; k < 4; k++) {
            if (k >= ch) {
                p.mean[k] = 0;
                p.std[k] = 0;
                continue;
            }
            if (!(p.std[k] > 0) || !isfinite(p.std[k]) || !isfinite(p.mean[k]))
                return occ_fail(e, OCC_ERR_INVALID, "std must be positive and mean finite");
        }
        p.present = 1;
        m->pre = p;
    }
    return OCC_OK;
}

static void ctx_free(imp_ctx *c)
{
    free(c->t);
    free(c->nodes);
    free(c->dead);
    imp_map_free(&c->names);
    imp_map_free(&c->consumed);
}

/* Operators whose opset 1-6 versions compute what their current versions do. */
static int legacy_opset_ok(const char *op)
{
    static const char *const ok[] = {
        "Abs", "Ceil", "Elu", "Exp", "Floor", "GlobalAveragePool", "GlobalMaxPool",
        "HardSigmoid", "InstanceNormalization", "LeakyRelu", "Log", "Neg", "Reciprocal", "Relu",
        "Selu", "Sigmoid", "Softplus", "Softsign", "Sqrt", "Tanh", "ReduceL1", "ReduceL2",
        "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean", "ReduceMin", "ReduceProd",
        "ReduceSum", "ReduceSumSquare", "Constant", "Identity", "Not",
    };
    for (size_t k = 0; k < sizeof ok / sizeof ok[0]; k++)
        if (!strcmp(op, ok[k]))
            return 1;
    return 0;
}

occ_status occ_import_onnx(const uint8_t *buf, size_t size, const occ_pack_options *opts,
                           occ_import **out, occ_error *e)
{
    *out = NULL;
    if (!buf && size)
        return occ_fail(e, OCC_ERR_INVALID, "no buffer");
    occ_import *im = calloc(1, sizeof *im);
    if (!im)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    imp_ctx c = {0};
    c.A = &im->arena;
    c.e = e;
    occ_status s = OCC_OK;
    const char **names = NULL;
    uint32_t *order = NULL;
    int32_t *ins = NULL, *gouts = NULL, *used = NULL;
    const char **in_names = NULL;
    uint8_t *pinned = NULL;

    im->proto = onnx__model_proto__unpack(NULL, size, buf);
    if (!im->proto) {
        s = occ_fail(e, OCC_ERR_FORMAT, "not a valid ONNX model (protobuf decoding failed; "
                     "truncated or not an .onnx file?)");
        goto fail;
    }
    const Onnx__ModelProto *mp = im->proto;
    const Onnx__GraphProto *g = mp->graph;
    if (!g || g->n_node == 0) {
        s = occ_fail(e, OCC_ERR_FORMAT, "not an ONNX model: no graph%s", g ? " nodes" : "");
        goto fail;
    }
    c.opset = 0;
    for (size_t k = 0; k < mp->n_opset_import; k++) {
        const Onnx__OperatorSetIdProto *os = mp->opset_import[k];
        if ((!os->domain || !*os->domain || !strcmp(os->domain, "ai.onnx")) && os->has_version)
            c.opset = os->version;
    }
    if (c.opset == 0)
        c.opset = 13; /* not declared: assume a current opset */
    if (c.opset < 7) {
        /* Opsets 1-6 changed broadcasting (Add's "broadcast"/"axis") and
         * several operators; only graphs made of operators whose inference
         * semantics have not changed since (their old versions differ only
         * by the in-place hint "consumed_inputs") are taken. */
        for (size_t k = 0; k < g->n_node; k++) {
            const char *op = g->node[k]->op_type;
            if (!op || !legacy_opset_ok(op)) {
                s = occ_fail(e, OCC_ERR_UNSUPPORTED, "ONNX opset %lld is too old for %s "
                             "(7 or newer needed)", (long long)c.opset, op ? op : "(no op_type)");
                goto fail;
            }
        }
    }
    if (g->n_sparse_initializer) {
        s = occ_fail(e, OCC_ERR_UNSUPPORTED, "sparse initializers are not supported");
        goto fail;
    }
    c.stats.onnx_nodes = g->n_node > UINT32_MAX ? UINT32_MAX : (uint32_t)g->n_node;

    /* initializers */
    for (size_t k = 0; k < g->n_initializer; k++) {
        const Onnx__TensorProto *tp = g->initializer[k];
        if (!tp->name || !*tp->name) {
            s = occ_fail(e, OCC_ERR_FORMAT, "initializer #%zu has no name", k);
            goto fail;
        }
        if (imp_map_get(&c.names, tp->name) >= 0) {
            s = occ_fail(e, OCC_ERR_FORMAT, "initializer '%s' is defined twice", tp->name);
            goto fail;
        }
        imp_cval cv;
        if ((s = imp_tensor_parse(tp, &cv, e))) {
            imp_cval_clear(&cv);
            occ_error_prefix(e, "initializer '%s'", tp->name);
            goto fail;
        }
        int32_t idx = imp_val_new(&c, tp->name);
        if (idx < 0) {
            imp_cval_clear(&cv);
            s = idx;
            goto fail;
        }
        imp_val_set_const(&c, idx, &cv);
    }
    /* graph inputs */
    pinned = calloc(opts && opts->n_input_shapes ? opts->n_input_shapes : 1, 1);
    in_names = calloc(g->n_input + 1, sizeof *in_names);
    if (!pinned || !in_names) {
        s = occ_fail(e, OCC_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (uint32_t k = 0; opts && k < opts->n_input_shapes; k++) {
        const char *pn = opts->input_shapes[k].name;
        int found = 0;
        for (size_t j = 0; pn && j < g->n_input; j++)
            found |= g->input[j]->name && !strcmp(g->input[j]->name, pn) &&
                     imp_map_get(&c.names, pn) < 0;
        if (!found) {
            s = occ_fail(e, OCC_ERR_INVALID, "--input-shape names '%s', which is not a graph input",
                         sname(pn));
            goto fail;
        }
    }
    for (uint32_t k = 0; opts && k < opts->n_binds; k++) {
        const char *bn = opts->binds[k].name;
        int found = 0;
        for (size_t j = 0; bn && j < g->n_input; j++)
            found |= g->input[j]->name && !strcmp(g->input[j]->name, bn) &&
                     imp_map_get(&c.names, bn) < 0;
        for (uint32_t j = 0; j < k && found; j++)
            found = strcmp(opts->binds[j].name, bn) != 0;
        if (!found) {
            s = occ_fail(e, OCC_ERR_INVALID, "--bind names '%s', which is not a graph input "
                         "(or is bound twice)", sname(bn));
            goto fail;
        }
    }
    uint32_t n_in = 0;
    for (size_t k = 0; k < g->n_input; k++) {
        uint32_t before = c.nv;
        if ((s = add_graph_input(&c, g->input[k], opts, pinned)))
            goto fail;
        if (c.nv > before && c.v[before].is_input)
            in_names[n_in++] = g->input[k]->name;
    }
    /* (no run-time input at all is fine: every input bound, or none) */
    if (g->n_output == 0) {
        s = occ_fail(e, OCC_ERR_FORMAT, "the graph has no outputs");
        goto fail;
    }

    /* node names, order */
    names = calloc(g->n_node, sizeof *names);
    order = calloc(g->n_node, sizeof *order);
    size_t maxin = 1;
    for (size_t k = 0; k < g->n_node; k++)
        if (g->node[k]->n_input > maxin)
            maxin = g->node[k]->n_input;
    ins = calloc(maxin, sizeof *ins);
    if (!names || !order || !ins) {
        s = occ_fail(e, OCC_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (size_t k = 0; k < g->n_node; k++) {
        const Onnx__NodeProto *n = g->node[k];
        if (!n->op_type || !*n->op_type) {
            s = occ_fail(e, OCC_ERR_FORMAT, "node #%zu has no op_type", k);
            goto fail;
        }
        if (n->name && *n->name) {
            names[k] = n->name;
        } else {
            char buf[96];
            snprintf(buf, sizeof buf, "%.60s_%zu", n->op_type, k);
            if (!(names[k] = imp_strdup(c.A, buf))) {
                s = occ_fail(e, OCC_ERR_NOMEM, "out of memory");
                goto fail;
            }
        }
    }
    if ((s = topo_sort(&c, g, names, order)))
        goto fail;
    for (size_t k = 0; k < g->n_node; k++)
        for (size_t j = 0; j < g->node[k]->n_input; j++)
            if (*g->node[k]->input[j] && (s = imp_map_put(&c.consumed, g->node[k]->input[j], 1, e)))
                goto fail;
    for (size_t k = 0; k < g->n_output; k++)
        if (g->output[k]->name && (s = imp_map_put(&c.consumed, g->output[k]->name, 1, e)))
            goto fail;
    for (size_t k = 0; k < g->n_node; k++) {
        const Onnx__NodeProto *n = g->node[order[k]];
        if ((s = imp_convert_node(&c, n, names[order[k]], ins))) {
            imp_node_prefix(e, n, names[order[k]]);
            goto fail;
        }
    }
    gouts = calloc(g->n_output, sizeof *gouts);
    if (!gouts) {
        s = occ_fail(e, OCC_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if ((s = resolve_outputs(&c, g, gouts)))
        goto fail;
    if ((s = imp_fold_batchnorm(&c, gouts, (uint32_t)g->n_output)))
        goto fail;
    if ((s = imp_fuse(&c, gouts, (uint32_t)g->n_output)))
        goto fail;
    if ((s = imp_fold_epilogue(&c, gouts, (uint32_t)g->n_output)))
        goto fail;
    used = calloc(c.nv + 1, sizeof *used); /* after BN folding added values */
    if (!used) {
        s = occ_fail(e, OCC_ERR_NOMEM, "out of memory");
        goto fail;
    }
    c.stats.dead = dead_code(&c, gouts, (uint32_t)g->n_output, (uint32_t *)used);
    if ((s = build_model(&c, im, gouts, (uint32_t)g->n_output, in_names, n_in)))
        goto fail;
    if ((s = set_meta(&c, im, g, opts)))
        goto fail;
    im->stats = c.stats;
    im->vals = c.v;
    im->n_vals = c.nv;
    c.v = NULL;
    ctx_free(&c);
    free(names);
    free(order);
    free(ins);
    free(gouts);
    free(used);
    free(in_names);
    free(pinned);
    *out = im;
    return OCC_OK;
fail:
    im->vals = c.v;
    im->n_vals = c.nv;
    ctx_free(&c);
    free(names);
    free(order);
    free(ins);
    free(gouts);
    free(used);
    free(in_names);
    free(pinned);
    occ_import_free(im);
    return s ? s : occ_fail(e, OCC_ERR_INTERNAL, "import failed");
}

occ_model *occ_import_model(occ_import *im)
{
    return &im->model;
}

const void *occ_import_weight(const occ_import *im, uint32_t tensor)
{
    if (!im || tensor >= im->model.n_tensors || im->model.tensors[tensor].kind != OCC_TENSOR_WEIGHT)
        return NULL;
    return im->wdata[tensor];
}

const occ_pack_stats *occ_import_stats(const occ_import *im)
{
    return &im->stats;
}

void occ_import_free(occ_import *im)
{
    if (!im)
        return;
    for (uint32_t k = 0; k < im->n_vals; k++)
        imp_cval_clear(&im->vals[k].c);
    free(im->vals);
    free(im->wdata);
    free(im->model.chunks);
    if (im->proto)
        onnx__model_proto__free_unpacked(im->proto, NULL);
    imp_arena_free(&im->arena);
    free(im);
}

occ_status occ_import_layout(occ_import *im, uint64_t chunk_max, uint8_t **data, occ_error *e)
{
    *data = NULL;
    occ_model *m = &im->model;
    free(m->chunks);
    m->chunks = NULL;
    m->n_chunks = 0;
    occ_status s = occ_pack_layout(m, chunk_max ? chunk_max : OCC_PACK_DEFAULT_CHUNK_SIZE, e);
    if (s)
        return s;
    if (m->data_size > SIZE_MAX / 2)
        return occ_fail(e, OCC_ERR_NOMEM, "data section of %llu bytes is too large",
                        (unsigned long long)m->data_size);
    uint8_t *d = calloc(m->data_size ? (size_t)m->data_size : 1, 1);
    if (!d)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory for a %llu-byte data section",
                        (unsigned long long)m->data_size);
    for (uint32_t k = 0; k < m->n_tensors; k++) {
        const occ_tensor *t = &m->tensors[k];
        if (t->kind != OCC_TENSOR_WEIGHT || !t->size)
            continue;
        if (t->data_offset > m->data_size || t->size > m->data_size - t->data_offset || !im->wdata[k]) {
            free(d);
            return occ_fail(e, OCC_ERR_INTERNAL, "weight '%s' lies outside the data section",
                            t->name);
        }
        memcpy(d + t->data_offset, im->wdata[k], t->size);
    }
    im->stats.data_size = m->data_size;
    im->stats.n_chunks = m->n_chunks;
    *data = d;
    return OCC_OK;
}
