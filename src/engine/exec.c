/* The executor: validates a model, loads and verifies its weights, prepares
 * the kernels, and runs inference.
 *
 * Activation layout (decided by measurement, oneDNN 2.6, 1 thread, AVX-512):
 *
 *   layer (C->K, HxW, k)     plain nchw        nChw16c direct    nChw16c Winograd
 *   64->64 56x56 3x3         82 GF/s (gemm)    119 (jit)         232
 *   128->128 28x28 3x3       88                122               376
 *   256->256 14x14 3x3       95                129               254
 *   512->512 7x7 3x3         99                138               184
 *   64->256 56x56 1x1        105               116 (jit_1x1)     -
 *   3->64 224x224 7x7 s2     72                117 (nhwc brgconv; nChw16c src: ref!)
 *
 * With plain NCHW activations oneDNN falls back to im2col+gemm; the direct JIT
 * kernels (and nhwc brgconv, about the same speed) are 20-45% faster, and
 * Winograd - only offered for blocked layouts - is 1.3-3x faster again. So:
 *
 *  - every tensor has a storage layout: plain row-major, or the oneDNN memory
 *    descriptor its producer chose (Conv asks for format "any" and gets
 *    nChw16c; the first conv keeps a plain nchw source);
 *  - ops that can consume any layout (Conv, pools, channel Concat, Relu-like
 *    unaries, equal-shape Add/Sub/Mul) keep it; every other op gets a plain
 *    copy made by one reorder right after the producer ran ("plain shadow");
 *    graph outputs are always plain;
 *  - Conv weights are reordered once, at create, into the layout the chosen
 *    implementation wants (native mode keeps them);
 *  - Conv is fused at create with a following Relu/LeakyRelu/Clip and with a
 *    residual Add (oneDNN sum post-op) when the intermediate has no other
 *    consumer; the Add's other operand is written into the output buffer
 *    first, or - when nothing reads it afterwards - the output simply takes
 *    over its buffer (no copy).
 *
 * Memory: activation buffers come from one arena laid out by occ_arena_plan
 * (src/engine/arena.c), the single place to put a lifetime-reusing planner.
 *
 * Whole models (1 thread, sum of per-node minima over 10 runs on a loaded
 * 2-core machine; outputs match PyTorch's to <5e-5): resnet50 62 ms (ORT ~60),
 * vgg16 146 ms (ORT ~225), googlenet 22 ms (ORT ~21), mobilenet_v2 6.9 ms
 * (ORT ~6), alexnet 19.6 ms, squeezenet1_0 16 ms (its Concats cost 4 ms: the
 * next step is to let convs write straight into the concat buffer).
 *
 * occ_engine_run is not reentrant: one run at a time per engine.
 */
#include <dnnl.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/engine_internal.h"
#include "ops/ops_internal.h"

#define MAX_TENSORS (1u << 24)
#define MAX_NODES (1u << 24)
#define MAX_DATA_SIZE (UINT64_C(1) << 48)

typedef struct trt {
    int blocked;            /* storage layout is md (else plain) */
    dnnl_memory_desc_t md;
    uint64_t size;          /* storage bytes */
    int32_t alias;          /* shares the storage of this tensor; -1 none */
    int virt;               /* fused away: never stored */
    int live;               /* produced or a graph input */
    int32_t buf;            /* index in reqs, -1 none */
    int need_plain;         /* blocked and read plain by someone */
    int32_t plain_buf;
    dnnl_primitive_t to_plain;
    dnnl_memory_t from, to;
    int32_t producer_node;  /* -1 for graph inputs and weights */
    uint32_t n_cons;        /* consuming node slots + graph output uses */
    int32_t first_cons;     /* first consuming node */
    int is_output;
} trt;

typedef struct step {
    uint32_t node;
    const occ_op_vtable *v;
    void *state;
    uint8_t *wbuf;           /* verified weights the op reads at run time */
    uint64_t wbase;          /* data-section offset of wbuf[0] */
    uint8_t in_plain[OCC_MAX_NODE_IO];
    int32_t out;             /* output tensor after fusion */
    int32_t sum_src;         /* residual for the sum post-op; -1 none */
    int sum_alias;           /* out shares sum_src's storage: no copy */
} step;

struct occ_engine {
    const occ_model *m;
    int threads;
    dnnl_engine_t deng;
    dnnl_stream_t stream;
    trt *t;
    step *steps;
    uint32_t n_steps;
    int32_t *node_step;      /* node -> step that runs it (fused: the Conv's) */
    occ_buf_req *reqs;
    uint32_t n_reqs;
    uint8_t *arena;
    uint64_t arena_size;
    uint64_t weights_size;
    uint32_t n_fused, n_reorders;
    int profiling;
    uint64_t *times;
};

static const char *nm(const char *s)
{
    return s ? s : "?";
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void shape_str(const occ_tensor *t, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = '\0';
    n += (size_t)snprintf(buf + n, size - n, "[");
    for (int i = 0; i < t->ndim && i < OCC_MAX_DIMS && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%s%lld", i ? "," : "", (long long)t->dims[i]);
    if (n < size)
        snprintf(buf + n, size - n, "]");
}

static int valid_shape(const occ_tensor *t)
{
    if (t->ndim < 0 || t->ndim > OCC_MAX_DIMS)
        return 0;
    int64_t c = occ_ops_count(t->ndim, t->dims);
    return c > 0 && t->size == (uint64_t)c * 4u;
}

/* ---- validation: structure, shapes (re-inferred), weight placement ---- */

static occ_status validate(occ_engine *eng, occ_error *e)
{
    const occ_model *m = eng->m;
    occ_status st = OCC_OK;
    if (m->n_tensors > MAX_TENSORS || (m->n_tensors && !m->tensors))
        return occ_fail(e, OCC_ERR_FORMAT, "bad tensor table");
    if (m->n_nodes > MAX_NODES || (m->n_nodes && !m->nodes))
        return occ_fail(e, OCC_ERR_FORMAT, "bad node table");
    if ((m->n_inputs && !m->inputs) || (m->n_outputs && !m->outputs) || !m->n_outputs)
        return occ_fail(e, OCC_ERR_FORMAT, "bad graph input/output lists");
    if (m->data_size > MAX_DATA_SIZE || (m->n_chunks && !m->chunks))
        return occ_fail(e, OCC_ERR_FORMAT, "bad data section or chunk table");
    for (uint32_t i = 0; i < m->n_chunks; i++) {
        const occ_chunk *c = &m->chunks[i];
        if (!c->size || c->offset > m->data_size || c->size > m->data_size - c->offset)
            return occ_fail(e, OCC_ERR_FORMAT, "weight chunk %u lies outside the data section", i);
    }
    uint8_t *defined = calloc(m->n_tensors + 1u, 1);
    occ_tensor *copy = malloc(((size_t)m->n_tensors + 1u) * sizeof *copy);
    if (!defined || !copy) {
        free(defined);
        free(copy);
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    }
    for (uint32_t i = 0; i < m->n_tensors && !st; i++) {
        const occ_tensor *t = &m->tensors[i];
        copy[i] = *t;
        if (t->kind != OCC_TENSOR_ACT && t->kind != OCC_TENSOR_INPUT &&
            t->kind != OCC_TENSOR_WEIGHT)
            st = occ_fail(e, OCC_ERR_FORMAT, "tensor %s has unknown kind %u", nm(t->name),
                          t->kind);
        else if (t->layout != OCC_LAYOUT_PLAIN)
            st = occ_fail(e, OCC_ERR_UNSUPPORTED, "tensor %s has layout %u (only plain)",
                          nm(t->name), t->layout);
        else if (t->kind != OCC_TENSOR_ACT && !valid_shape(t))
            st = occ_fail(e, OCC_ERR_SHAPE, "tensor %s has an invalid shape or size",
                          nm(t->name));
        else if (t->kind == OCC_TENSOR_WEIGHT &&
                 (t->data_offset % 4u || t->data_offset > m->data_size ||
                  t->size > m->data_size - t->data_offset))
            st = occ_fail(e, OCC_ERR_FORMAT,
                          "weight tensor %s lies outside the data section or is misaligned",
                          nm(t->name));
        if (t->kind != OCC_TENSOR_ACT)
            defined[i] = 1;
    }
    for (uint32_t i = 0; i < m->n_inputs && !st; i++) {
        int32_t t = m->inputs[i];
        if (t < 0 || (uint32_t)t >= m->n_tensors || m->tensors[t].kind != OCC_TENSOR_INPUT)
            st = occ_fail(e, OCC_ERR_FORMAT, "graph input %u is not an input tensor", i);
    }
    for (uint32_t i = 0; i < m->n_tensors && !st; i++) {
        if (m->tensors[i].kind != OCC_TENSOR_INPUT)
            continue;
        int listed = 0;
        for (uint32_t k = 0; k < m->n_inputs; k++)
            listed |= m->inputs[k] == (int32_t)i;
        if (!listed)
            st = occ_fail(e, OCC_ERR_FORMAT, "input tensor %s is not a graph input",
                          nm(m->tensors[i].name));
    }
    occ_model mm = *m;
    mm.tensors = copy;
    for (uint32_t i = 0; i < m->n_nodes && !st; i++) {
        const occ_node *n = &m->nodes[i];
        if ((n->n_inputs && !n->inputs) || !n->outputs || n->n_inputs > OCC_MAX_NODE_IO ||
            n->n_outputs > OCC_MAX_NODE_IO) {
            st = occ_fail(e, OCC_ERR_FORMAT, "node %s has bad input/output lists", nm(n->name));
            break;
        }
        for (uint32_t k = 0; k < n->n_inputs && !st; k++) {
            int32_t t = n->inputs[k];
            if (t >= 0 && (uint32_t)t < m->n_tensors && !defined[t])
                st = occ_fail(e, OCC_ERR_FORMAT,
                              "node %s (%s) reads tensor %s before it is produced", nm(n->name),
                              nm(n->op), nm(m->tensors[t].name));
        }
        for (uint32_t k = 0; k < n->n_outputs && !st; k++) {
            int32_t t = n->outputs[k];
            if (t >= 0 && (uint32_t)t < m->n_tensors && defined[t])
                st = occ_fail(e, OCC_ERR_FORMAT, "node %s (%s) rewrites tensor %s",
                              nm(n->name), nm(n->op), nm(m->tensors[t].name));
        }
        if (st)
            break;
        if ((st = occ_op_infer(&mm, n, e))) {
            occ_error_prefix(e, "node %s (%s)", nm(n->name), nm(n->op));
            break;
        }
        for (uint32_t k = 0; k < n->n_outputs && !st; k++) {
            int32_t t = n->outputs[k];
            const occ_tensor *a = &m->tensors[t], *b = &copy[t];
            int same = a->ndim == b->ndim && a->size == b->size;
            for (int d = 0; same && d < b->ndim; d++)
                same = a->dims[d] == b->dims[d];
            if (!same) {
                char da[160], db[160];
                shape_str(a, da, sizeof da);
                shape_str(b, db, sizeof db);
                st = occ_fail(e, OCC_ERR_SHAPE,
                              "node %s (%s): tensor %s is declared %s but inferred %s",
                              nm(n->name), nm(n->op), nm(a->name), da, db);
            }
            defined[t] = 1;
        }
    }
    for (uint32_t i = 0; i < m->n_outputs && !st; i++) {
        int32_t t = m->outputs[i];
        if (t < 0 || (uint32_t)t >= m->n_tensors || !defined[t] ||
            m->tensors[t].kind == OCC_TENSOR_WEIGHT)
            st = occ_fail(e, OCC_ERR_FORMAT, "graph output %u is not computed", i);
    }
    free(defined);
    free(copy);
    return st;
}

/* ---- steps: weights, layouts, fusion, kernel preparation ---- */

static int fusable_unary(const occ_node *n, occ_post *q)
{
    float a = 0.0f, b = 0.0f;
    if (n->n_inputs != 1)
        return 0;
    if (strcmp(n->op, "Relu") == 0) {
        q->kind = OCC_POST_RELU;
        q->a = 0.0f;
        return 1;
    }
    if (strcmp(n->op, "LeakyRelu") == 0) {
        if (occ_ops_attr_float(n, "alpha", 0.01f, &a, NULL))
            return 0;
        q->kind = OCC_POST_RELU;
        q->a = a;
        return 1;
    }
    if (strcmp(n->op, "Clip") == 0) {
        if (occ_ops_attr_float(n, "min", -3.4028235e38f, &a, NULL) ||
            occ_ops_attr_float(n, "max", 3.4028235e38f, &b, NULL))
            return 0;
        q->kind = OCC_POST_CLIP;
        q->a = a;
        q->b = b;
        return 1;
    }
    return 0;
}

static int32_t root_of(const occ_engine *eng, int32_t t)
{
    while (eng->t[t].alias >= 0)
        t = eng->t[t].alias;
    return t;
}

/* May the Conv at node index `at` write its output over r's storage (the Add
 * node add_node being the one read of r we absorb)? Only if nothing reads any
 * tensor sharing that storage after `at`. */
static int can_alias(const occ_engine *eng, int32_t r, uint32_t at, uint32_t add_node)
{
    const occ_model *m = eng->m;
    if (m->tensors[r].kind != OCC_TENSOR_ACT)
        return 0;
    int32_t root = root_of(eng, r);
    for (uint32_t u = 0; u < m->n_tensors; u++) {
        if (eng->t[u].virt || root_of(eng, (int32_t)u) != root)
            continue;
        if (eng->t[u].is_output)
            return 0;
        for (uint32_t i = at + 1; i < m->n_nodes; i++) {
            const occ_node *n = &m->nodes[i];
            for (uint32_t k = 0; k < n->n_inputs; k++)
                if (n->inputs[k] == (int32_t)u && !(i == add_node && u == (uint32_t)r))
                    return 0;
        }
    }
    return 1;
}

static occ_status load_node_weights(occ_engine *eng, const occ_node *n, occ_read_fn read,
                                    void *ctx, const float **w, uint8_t **wbuf, uint64_t *wbase,
                                    occ_error *e)
{
    const occ_model *m = eng->m;
    uint64_t lo = UINT64_MAX, hi = 0, base = 0;
    *wbuf = NULL;
    for (uint32_t k = 0; k < n->n_inputs; k++) {
        w[k] = NULL;
        const occ_tensor *t = occ_ops_in(m, n, k);
        if (!t || t->kind != OCC_TENSOR_WEIGHT)
            continue;
        if (t->data_offset < lo)
            lo = t->data_offset;
        if (t->data_offset + t->size > hi)
            hi = t->data_offset + t->size;
    }
    if (hi == 0)
        return OCC_OK;
    occ_status st = occ_weights_load(m, lo, hi, read, ctx, wbuf, &base, e);
    if (st)
        return st;
    *wbase = base;
    for (uint32_t k = 0; k < n->n_inputs; k++) {
        const occ_tensor *t = occ_ops_in(m, n, k);
        if (t && t->kind == OCC_TENSOR_WEIGHT)
            w[k] = (const float *)(*wbuf + (t->data_offset - base));
    }
    return OCC_OK;
}

static occ_status build_steps(occ_engine *eng, occ_read_fn read, void *ctx, occ_error *e)
{
    const occ_model *m = eng->m;
    occ_status st = OCC_OK;
    uint8_t *fused = calloc(m->n_nodes + 1u, 1);
    eng->steps = calloc(m->n_nodes + 1u, sizeof *eng->steps);
    eng->node_step = malloc((m->n_nodes + 1u) * sizeof *eng->node_step);
    if (!fused || !eng->steps || !eng->node_step) {
        free(fused);
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    }
    for (uint32_t i = 0; i < m->n_nodes; i++)
        eng->node_step[i] = -1;

    for (uint32_t i = 0; i < m->n_nodes && !st; i++) {
        if (fused[i])
            continue;
        const occ_node *n = &m->nodes[i];
        const occ_op_vtable *v = occ_op_find(n->op);
        step *s = &eng->steps[eng->n_steps];
        const float *w[OCC_MAX_NODE_IO];
        const dnnl_memory_desc_t *in_md[OCC_MAX_NODE_IO];
        s->node = i;
        s->v = v;
        s->sum_src = -1;
        if ((st = load_node_weights(eng, n, read, ctx, w, &s->wbuf, &s->wbase, e)))
            goto node_fail;
        int any_blocked = 0;
        for (uint32_t k = 0; k < n->n_inputs; k++) {
            int32_t t = n->inputs[k];
            in_md[k] = (t >= 0 && eng->t[t].blocked) ? &eng->t[t].md : NULL;
            any_blocked |= in_md[k] != NULL;
        }
        if (any_blocked && !(v->layout && v->layout(m, n, in_md))) {
            for (uint32_t k = 0; k < n->n_inputs; k++)
                if (in_md[k]) {
                    s->in_plain[k] = 1;
                    eng->t[n->inputs[k]].need_plain = 1;
                    in_md[k] = NULL;
                }
        }

        /* fusion candidates: Conv -> [Relu|LeakyRelu|Clip] -> [Add] -> [...] */
        occ_op_prep p;
        memset(&p, 0, sizeof p);
        uint32_t chain[OCC_MAX_POST];
        int sum_at = -1;
        int32_t out = n->outputs[0];
        if (strcmp(n->op, "Conv") == 0) {
            while (p.n_post < OCC_MAX_POST) {
                const trt *tt = &eng->t[out];
                if (tt->n_cons != 1 || tt->is_output || tt->first_cons < 0)
                    break;
                uint32_t c = (uint32_t)tt->first_cons;
                const occ_node *cn = &m->nodes[c];
                occ_post q;
                if (fusable_unary(cn, &q)) {
                    p.post[p.n_post] = q;
                } else if (strcmp(cn->op, "Add") == 0 && sum_at < 0 && cn->n_inputs == 2) {
                    int32_t r = cn->inputs[0] == out ? cn->inputs[1] : cn->inputs[0];
                    const occ_tensor *ta = &m->tensors[out], *tr;
                    if (r < 0 || r == out)
                        break;
                    tr = &m->tensors[r];
                    if (tr->kind == OCC_TENSOR_WEIGHT || !eng->t[r].live || eng->t[r].virt ||
                        !eng->t[r].blocked || tr->ndim != ta->ndim ||
                        memcmp(tr->dims, ta->dims, sizeof(int64_t) * (size_t)ta->ndim))
                        break;
                    p.post[p.n_post].kind = OCC_POST_SUM;
                    sum_at = p.n_post;
                    s->sum_src = r;
                } else {
                    break;
                }
                chain[p.n_post++] = c;
                out = cn->outputs[0];
            }
        }
        p.m = m;
        p.n = n;
        p.w = w;
        p.eng = eng->deng;
        p.in_md = in_md;
        for (;;) {
            p.out_blocked = 0;
            st = v->prepare(&p, &s->state, e);
            if (!st && sum_at >= 0 &&
                !(p.out_blocked && dnnl_memory_desc_equal(&p.out_md, &eng->t[s->sum_src].md))) {
                /* the residual's layout differs: stop the fusion before the Add */
                v->destroy(s->state);
                s->state = NULL;
                p.n_post = sum_at;
                sum_at = -1;
                s->sum_src = -1;
                out = p.n_post ? m->nodes[chain[p.n_post - 1]].outputs[0] : n->outputs[0];
                continue;
            }
            if (st && p.n_post) {
                /* post-ops not supported here: run the ops on their own */
                p.n_post = 0;
                sum_at = -1;
                s->sum_src = -1;
                out = n->outputs[0];
                continue;
            }
            break;
        }
        if (st)
            goto node_fail;
        for (int k = 0; k < p.n_post; k++) {
            fused[chain[k]] = 1;
            eng->node_step[chain[k]] = (int32_t)eng->n_steps;
            /* every tensor of the chain but the last is never stored */
            eng->t[k == 0 ? n->outputs[0] : m->nodes[chain[k - 1]].outputs[0]].virt = 1;
        }
        eng->n_fused += (uint32_t)p.n_post;
        s->out = out;
        trt *to = &eng->t[out];
        to->virt = 0;
        to->live = 1;
        to->blocked = p.out_blocked;
        if (p.out_blocked) {
            to->md = p.out_md;
            to->size = dnnl_memory_desc_get_size(&p.out_md);
        } else {
            to->size = m->tensors[out].size;
        }
        for (uint32_t k = 1; k < n->n_outputs; k++) {
            eng->t[n->outputs[k]].live = 1;
            eng->t[n->outputs[k]].size = m->tensors[n->outputs[k]].size;
        }
        if (s->sum_src >= 0 && can_alias(eng, s->sum_src, i, chain[sum_at >= 0 ? sum_at : 0])) {
            s->sum_alias = 1;
            to->alias = root_of(eng, s->sum_src);
        }
        if (v->flags & OCC_OPF_COPIES_WEIGHTS) {
            free(s->wbuf);
            s->wbuf = NULL;
        }
        for (uint32_t k = 0; k < n->n_inputs; k++) {
            const occ_tensor *t = occ_ops_in(m, n, k);
            if (t && t->kind == OCC_TENSOR_WEIGHT)
                eng->weights_size += t->size;
        }
        eng->node_step[i] = (int32_t)eng->n_steps;
        eng->n_steps++;
        continue;
    node_fail:
        free(s->wbuf);
        s->wbuf = NULL;
        occ_error_prefix(e, "node %s (%s)", nm(n->name), nm(n->op));
    }
    free(fused);
    return st;
}

/* ---- memory ---- */

static occ_status plan_memory(occ_engine *eng, occ_error *e)
{
    const occ_model *m = eng->m;
    occ_status st;
    for (uint32_t i = 0; i < m->n_outputs; i++) {
        trt *t = &eng->t[m->outputs[i]];
        if (t->blocked)
            t->need_plain = 1;
    }
    eng->reqs = calloc(2u * m->n_tensors + 1u, sizeof *eng->reqs);
    if (!eng->reqs)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    /* last step reading each tensor (graph outputs: n_steps) */
    for (uint32_t t = 0; t < m->n_tensors; t++) {
        trt *tt = &eng->t[t];
        tt->buf = tt->plain_buf = -1;
        if (!tt->live || tt->virt || m->tensors[t].kind == OCC_TENSOR_WEIGHT)
            continue;
        uint32_t first = tt->producer_node >= 0 ? (uint32_t)eng->node_step[tt->producer_node] : 0;
        if (tt->alias < 0) {
            tt->buf = (int32_t)eng->n_reqs++;
            eng->reqs[tt->buf].size = tt->size;
            eng->reqs[tt->buf].first = first;
        }
        if (tt->need_plain) {
            tt->plain_buf = (int32_t)eng->n_reqs++;
            eng->reqs[tt->plain_buf].size = m->tensors[t].size;
            eng->reqs[tt->plain_buf].first = first;
        }
    }
    for (uint32_t t = 0; t < m->n_tensors; t++) {
        trt *tt = &eng->t[t];
        if (!tt->live || tt->virt || m->tensors[t].kind == OCC_TENSOR_WEIGHT)
            continue;
        uint32_t last = 0;
        if (tt->is_output)
            last = eng->n_steps;
        for (uint32_t i = 0; i < m->n_nodes; i++) {
            const occ_node *n = &m->nodes[i];
            for (uint32_t k = 0; k < n->n_inputs; k++)
                if (n->inputs[k] == (int32_t)t && eng->node_step[i] >= 0 &&
                    (uint32_t)eng->node_step[i] > last)
                    last = (uint32_t)eng->node_step[i];
        }
        occ_buf_req *r = &eng->reqs[eng->t[root_of(eng, (int32_t)t)].buf];
        if (last > r->last)
            r->last = last;
        if (tt->plain_buf >= 0 && last > eng->reqs[tt->plain_buf].last)
            eng->reqs[tt->plain_buf].last = last;
    }
    if ((st = occ_arena_plan(eng->reqs, eng->n_reqs, &eng->arena_size, e)))
        return st;
    eng->arena = occ_ops_alloc(eng->arena_size);
    if (!eng->arena)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory for %llu bytes of activations",
                        (unsigned long long)eng->arena_size);
    /* layout conversions to the plain shadows */
    for (uint32_t t = 0; t < m->n_tensors; t++) {
        trt *tt = &eng->t[t];
        if (tt->plain_buf < 0)
            continue;
        dnnl_memory_desc_t pmd;
        dnnl_primitive_desc_t pd;
        if ((st = occ_dnnl_plain_md(&pmd, m->tensors[t].ndim, m->tensors[t].dims, e)))
            return st;
        if ((st = occ_dnnl_check(dnnl_reorder_primitive_desc_create(&pd, &tt->md, eng->deng, &pmd,
                                                                    eng->deng, NULL),
                                 "reorder to plain", e)))
            return st;
        dnnl_status_t ds = dnnl_primitive_create(&tt->to_plain, pd);
        dnnl_primitive_desc_destroy(pd);
        if ((st = occ_dnnl_check(ds, "reorder to plain", e)))
            return st;
        if ((st = occ_dnnl_mem(&tt->from, &tt->md, eng->deng, NULL, e)) ||
            (st = occ_dnnl_mem(&tt->to, &pmd, eng->deng,
                               eng->arena + eng->reqs[tt->plain_buf].offset, e)))
            return st;
        eng->n_reorders++;
    }
    return OCC_OK;
}

static float *storage(const occ_engine *eng, int32_t t)
{
    return (float *)(eng->arena + eng->reqs[eng->t[root_of(eng, t)].buf].offset);
}

static const float *plain_view(const occ_engine *eng, int32_t t)
{
    if (eng->t[t].plain_buf >= 0)
        return (const float *)(eng->arena + eng->reqs[eng->t[t].plain_buf].offset);
    return storage(eng, t);
}

/* ---- public API ---- */

static void set_threads(const occ_engine *eng)
{
    if (eng->threads > 0)
        omp_set_num_threads(eng->threads);
}

occ_status occ_engine_create(const occ_model *m, const occ_engine_opts *opts, occ_read_fn read,
                             void *read_ctx, occ_engine **out, occ_error *e)
{
    occ_status st;
    if (!out)
        return occ_fail(e, OCC_ERR_INVALID, "no output handle");
    *out = NULL;
    if (!m || !read)
        return occ_fail(e, OCC_ERR_INVALID, "no model or read callback");
    occ_engine *eng = calloc(1, sizeof *eng);
    if (!eng)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    eng->m = m;
    eng->threads = opts && opts->threads > 0 ? opts->threads : 0;
    if (opts && opts->threads < 0) {
        free(eng);
        return occ_fail(e, OCC_ERR_INVALID, "threads must be >= 0");
    }
    set_threads(eng);
    if ((st = validate(eng, e)))
        goto fail;
    eng->t = calloc(m->n_tensors + 1u, sizeof *eng->t);
    if (!eng->t) {
        st = occ_fail(e, OCC_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (uint32_t t = 0; t < m->n_tensors; t++) {
        eng->t[t].alias = -1;
        eng->t[t].buf = eng->t[t].plain_buf = -1;
        eng->t[t].producer_node = -1;
        eng->t[t].first_cons = -1;
        if (m->tensors[t].kind == OCC_TENSOR_INPUT) {
            eng->t[t].live = 1;
            eng->t[t].size = m->tensors[t].size;
        }
    }
    for (uint32_t i = 0; i < m->n_nodes; i++) {
        const occ_node *n = &m->nodes[i];
        for (uint32_t k = 0; k < n->n_inputs; k++) {
            int32_t t = n->inputs[k];
            if (t < 0)
                continue;
            if (eng->t[t].first_cons < 0)
                eng->t[t].first_cons = (int32_t)i;
            eng->t[t].n_cons++;
        }
        for (uint32_t k = 0; k < n->n_outputs; k++)
            eng->t[n->outputs[k]].producer_node = (int32_t)i;
    }
    for (uint32_t i = 0; i < m->n_outputs; i++) {
        eng->t[m->outputs[i]].is_output = 1;
        eng->t[m->outputs[i]].n_cons++;
    }
    if ((st = occ_dnnl_check(dnnl_engine_create(&eng->deng, dnnl_cpu, 0), "engine", e)) ||
        (st = occ_dnnl_check(dnnl_stream_create(&eng->stream, eng->deng,
                                                dnnl_stream_default_flags),
                             "stream", e)))
        goto fail;
    if ((st = build_steps(eng, read, read_ctx, e)))
        goto fail;
    if ((st = plan_memory(eng, e)))
        goto fail;
    eng->times = calloc(m->n_nodes + 1u, sizeof *eng->times);
    if (!eng->times) {
        st = occ_fail(e, OCC_ERR_NOMEM, "out of memory");
        goto fail;
    }
    *out = eng;
    return OCC_OK;
fail:
    occ_engine_free(eng);
    return st;
}

occ_status occ_engine_run(occ_engine *eng, const float *const *inputs, float *const *outputs,
                          occ_error *e)
{
    if (!eng || (eng->m->n_inputs && !inputs) || !outputs)
        return occ_fail(e, OCC_ERR_INVALID, "no engine, inputs or outputs");
    const occ_model *m = eng->m;
    set_threads(eng);
    for (uint32_t i = 0; i < m->n_inputs; i++) {
        if (!inputs[i])
            return occ_fail(e, OCC_ERR_INVALID, "input %u is NULL", i);
        memcpy(storage(eng, m->inputs[i]), inputs[i], (size_t)m->tensors[m->inputs[i]].size);
    }
    const float *in[OCC_MAX_NODE_IO];
    float *outp[OCC_MAX_NODE_IO];
    for (uint32_t si = 0; si < eng->n_steps; si++) {
        const step *s = &eng->steps[si];
        const occ_node *n = &m->nodes[s->node];
        uint64_t t0 = eng->profiling ? now_ns() : 0;
        for (uint32_t k = 0; k < n->n_inputs; k++) {
            int32_t t = n->inputs[k];
            if (t < 0)
                in[k] = NULL;
            else if (m->tensors[t].kind == OCC_TENSOR_WEIGHT)
                in[k] = s->wbuf ? (const float *)(s->wbuf + (m->tensors[t].data_offset - s->wbase))
                                : NULL;
            else
                in[k] = s->in_plain[k] ? plain_view(eng, t) : storage(eng, t);
        }
        outp[0] = storage(eng, s->out);
        for (uint32_t k = 1; k < n->n_outputs; k++)
            outp[k] = storage(eng, n->outputs[k]);
        if (s->sum_src >= 0 && !s->sum_alias)
            memcpy(outp[0], storage(eng, s->sum_src), (size_t)eng->t[s->out].size);
        occ_op_exec x = {in, outp, eng->stream};
        occ_status st = s->v->run(s->state, &x, e);
        if (st)
            return occ_error_prefix(e, "node %s (%s)", nm(n->name), nm(n->op));
        const trt *to = &eng->t[s->out];
        if (to->to_plain) {
            dnnl_memory_set_data_handle(to->from, outp[0]);
            dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, to->from}, {DNNL_ARG_TO, to->to}};
            if ((st = occ_dnnl_exec(to->to_plain, eng->stream, 2, ra, e)))
                return occ_error_prefix(e, "node %s (%s): reorder", nm(n->name), nm(n->op));
        }
        if (eng->profiling)
            eng->times[s->node] = now_ns() - t0;
    }
    for (uint32_t i = 0; i < m->n_outputs; i++) {
        if (!outputs[i])
            return occ_fail(e, OCC_ERR_INVALID, "output %u is NULL", i);
        memcpy(outputs[i], plain_view(eng, m->outputs[i]),
               (size_t)m->tensors[m->outputs[i]].size);
    }
    return OCC_OK;
}

void occ_engine_free(occ_engine *eng)
{
    if (!eng)
        return;
    for (uint32_t i = 0; i < eng->n_steps; i++) {
        if (eng->steps[i].state)
            eng->steps[i].v->destroy(eng->steps[i].state);
        free(eng->steps[i].wbuf);
    }
    if (eng->t) {
        for (uint32_t t = 0; t < eng->m->n_tensors; t++) {
            if (eng->t[t].to_plain)
                dnnl_primitive_destroy(eng->t[t].to_plain);
            if (eng->t[t].from)
                dnnl_memory_destroy(eng->t[t].from);
            if (eng->t[t].to)
                dnnl_memory_destroy(eng->t[t].to);
        }
    }
    if (eng->stream)
        dnnl_stream_destroy(eng->stream);
    if (eng->deng)
        dnnl_engine_destroy(eng->deng);
    free(eng->steps);
    free(eng->node_step);
    free(eng->t);
    free(eng->reqs);
    free(eng->arena);
    free(eng->times);
    free(eng);
}

void occ_engine_get_info(const occ_engine *eng, occ_engine_info *info)
{
    memset(info, 0, sizeof *info);
    if (!eng)
        return;
    info->arena_size = eng->arena_size;
    info->weights_size = eng->weights_size;
    info->n_steps = eng->n_steps;
    info->n_fused = eng->n_fused;
    info->n_reorders = eng->n_reorders;
}

void occ_engine_set_profiling(occ_engine *eng, int on)
{
    if (eng)
        eng->profiling = on != 0;
}

const uint64_t *occ_engine_node_times(const occ_engine *eng)
{
    return eng ? eng->times : NULL;
}
