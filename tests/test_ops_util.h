/* Hand-built graphs for the operator and engine tests: a tiny builder that
 * makes an occ_model, lays its weights out (page-aligned per node, one hashed
 * chunk per node, like the packer), infers shapes with occ_op_infer and runs
 * it through the engine. Plus naive reference helpers. */
#ifndef OCC_TEST_OPS_UTIL_H
#define OCC_TEST_OPS_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"
#include "occ/crypto.h"
#include "occ/engine.h"
#include "ops/ops.h"
#include "test.h"

#define TB_MAX 128

typedef struct tb {
    occ_model m;
    occ_tensor t[TB_MAX];
    occ_node n[TB_MAX];
    int32_t io[TB_MAX][2][OCC_MAX_NODE_IO];
    occ_attr attrs[TB_MAX][16];
    int32_t gin[8], gout[8];
    const float *wsrc[TB_MAX]; /* weight data by tensor */
    occ_chunk chunks[TB_MAX];
    uint8_t *data;
} tb;

static uint32_t tb_rng = 12345u;
static inline float frand(void)
{
    tb_rng = tb_rng * 1664525u + 1013904223u;
    return (float)((tb_rng >> 8) & 0xffff) / 32768.0f - 1.0f;
}
static inline float *rand_buf(int64_t n)
{
    float *p = malloc((size_t)n * sizeof(float) + 4);
    for (int64_t i = 0; i < n; i++)
        p[i] = frand();
    return p;
}

static inline void tb_init(tb *b)
{
    memset(b, 0, sizeof *b);
    b->m.name = "test";
    b->m.tensors = b->t;
    b->m.nodes = b->n;
    b->m.inputs = b->gin;
    b->m.outputs = b->gout;
    b->m.chunks = b->chunks;
}

static inline int tb_tensor(tb *b, const char *name, uint32_t kind, int ndim, const int64_t *dims)
{
    int i = (int)b->m.n_tensors++;
    occ_tensor *t = &b->t[i];
    t->name = name;
    t->kind = kind;
    t->ndim = ndim;
    uint64_t c = 1; /* wraps on absurd test dims; the engine must reject those */
    for (int d = 0; d < ndim && d < OCC_MAX_DIMS; d++) {
        t->dims[d] = dims[d];
        c *= (uint64_t)dims[d];
    }
    t->size = c * 4u;
    return i;
}
static inline int tb_input(tb *b, const char *name, int ndim, const int64_t *dims)
{
    int i = tb_tensor(b, name, OCC_TENSOR_INPUT, ndim, dims);
    b->gin[b->m.n_inputs++] = i;
    return i;
}
static inline int tb_weight(tb *b, const char *name, int ndim, const int64_t *dims, const float *data)
{
    int i = tb_tensor(b, name, OCC_TENSOR_WEIGHT, ndim, dims);
    b->wsrc[i] = data;
    return i;
}
static inline int tb_act(tb *b, const char *name)
{
    return tb_tensor(b, name, OCC_TENSOR_ACT, 0, NULL);
}
static inline void tb_output(tb *b, int t)
{
    b->gout[b->m.n_outputs++] = t;
}

/* attributes */
static inline occ_attr A_INT(const char *name, int64_t v)
{
    occ_attr a = {name, OCC_ATTR_INT, 0, v, 0, NULL, NULL, NULL};
    return a;
}
static inline occ_attr A_FLOAT(const char *name, float v)
{
    occ_attr a = {name, OCC_ATTR_FLOAT, 0, 0, v, NULL, NULL, NULL};
    return a;
}
static inline occ_attr A_INTS(const char *name, const int64_t *v, uint32_t n)
{
    occ_attr a = {name, OCC_ATTR_INTS, n, 0, 0, v, NULL, NULL};
    return a;
}
static inline occ_attr A_FLOATS(const char *name, const float *v, uint32_t n)
{
    occ_attr a = {name, OCC_ATTR_FLOATS, n, 0, 0, NULL, v, NULL};
    return a;
}
static inline occ_attr A_STR(const char *name, const char *s)
{
    occ_attr a = {name, OCC_ATTR_STRING, (uint32_t)strlen(s), 0, 0, NULL, NULL, s};
    return a;
}

static inline occ_node *tb_node(tb *b, const char *op, int n_in, const int *in, int out,
                         int n_attrs, const occ_attr *attrs)
{
    int i = (int)b->m.n_nodes++;
    occ_node *n = &b->n[i];
    n->name = op;
    n->op = op;
    n->n_inputs = (uint32_t)n_in;
    n->n_outputs = 1;
    for (int k = 0; k < n_in; k++)
        b->io[i][0][k] = in[k];
    b->io[i][1][0] = out;
    n->inputs = b->io[i][0];
    n->outputs = b->io[i][1];
    n->n_attrs = (uint32_t)n_attrs;
    for (int k = 0; k < n_attrs; k++)
        b->attrs[i][k] = attrs[k];
    n->attrs = b->attrs[i];
    return n;
}

/* Infers shapes, lays out weights, hashes chunks. */
static inline occ_status tb_finish(tb *b, occ_error *e)
{
    for (uint32_t i = 0; i < b->m.n_nodes; i++) {
        occ_status st = occ_op_infer(&b->m, &b->n[i], e);
        if (st)
            return st;
    }
    uint64_t off = 0;
    for (uint32_t i = 0; i < b->m.n_nodes; i++) {
        const occ_node *n = &b->n[i];
        uint64_t start = off;
        for (uint32_t k = 0; k < n->n_inputs; k++) {
            int32_t t = n->inputs[k];
            if (t < 0 || b->t[t].kind != OCC_TENSOR_WEIGHT || b->t[t].data_offset)
                continue;
            b->t[t].data_offset = off;
            off += (b->t[t].size + 63) & ~63u;
        }
        if (off > start) {
            occ_chunk *c = &b->chunks[b->m.n_chunks++];
            c->offset = start;
            off = (off + OCC_PAGE_SIZE - 1) & ~(uint64_t)(OCC_PAGE_SIZE - 1);
            c->size = off - start;
        }
    }
    b->m.data_size = off;
    free(b->data);
    b->data = calloc(1, off + 1);
    for (uint32_t t = 0; t < b->m.n_tensors; t++)
        if (b->t[t].kind == OCC_TENSOR_WEIGHT && b->wsrc[t])
            memcpy(b->data + b->t[t].data_offset, b->wsrc[t], b->t[t].size);
    for (uint32_t i = 0; i < b->m.n_chunks; i++) {
        if (occ_sha256(b->data + b->chunks[i].offset, (size_t)b->chunks[i].size,
                       b->chunks[i].sha256))
            return occ_fail(e, OCC_ERR_INTERNAL, "sha256");
    }
    return OCC_OK;
}

static inline occ_status tb_read(void *ctx, uint64_t offset, void *dst, uint64_t size, occ_error *e)
{
    tb *b = ctx;
    if (offset > b->m.data_size || size > b->m.data_size - offset)
        return occ_fail(e, OCC_ERR_IO, "read out of range");
    memcpy(dst, b->data + offset, size);
    return OCC_OK;
}

static inline void tb_free(tb *b)
{
    free(b->data);
    b->data = NULL;
}

/* Builds, runs once with the given inputs, writes output 0 into out
 * (allocated). Returns status. */
static inline occ_status tb_run(tb *b, const float *const *inputs, float **out, occ_error *e)
{
    occ_engine *eng = NULL;
    occ_engine_opts o = {.threads = 1};
    occ_status st = occ_engine_create(&b->m, &o, tb_read, b, &eng, e);
    if (st)
        return st;
    const occ_tensor *y = &b->t[b->gout[0]];
    *out = malloc((size_t)y->size + 4);
    float *outs[1] = {*out};
    st = occ_engine_run(eng, (const void *const *)inputs, (void *const *)outs, e);
    occ_engine_free(eng);
    return st;
}

/* max |a-b| / (1 + |b|) */
static inline double max_rel_err(const float *a, const float *ref, int64_t n)
{
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)ref[i]) / (1.0 + fabs((double)ref[i]));
        if (!(d <= worst))
            worst = d; /* NaN propagates */
    }
    return worst;
}

/* ---- single-node cases ---- */

typedef struct tin {
    int ndim;
    int64_t dims[OCC_MAX_DIMS];
    const float *data;
    int weight;
} tin;

/* Runs `op` on the inputs; when via_conv, every 4-D run-time input first goes
 * through an identity 1x1 Conv so it reaches the op in oneDNN's blocked
 * layout (exercises the layout paths). Checks the output shape and values. */
static inline void run1(const char *label, const char *op, int n_in, const tin *ins, int n_attrs,
                        const occ_attr *attrs, int ndim_exp, const int64_t *dims_exp,
                        const float *ref, double tol, int via_conv)
{
    tb b;
    occ_error e = {0};
    int tid[OCC_MAX_NODE_IO];
    const float *gin[8];
    int ngin = 0;
    static const char *names[] = {"in0", "in1", "in2", "in3", "in4", "in5", "in6", "in7"};
    float *eyes[OCC_MAX_NODE_IO];
    int neyes = 0;
    tb_init(&b);
    for (int i = 0; i < n_in; i++) {
        if (ins[i].ndim < 0) {
            tid[i] = -1;
            continue;
        }
        if (ins[i].weight) {
            tid[i] = tb_weight(&b, names[i], ins[i].ndim, ins[i].dims, ins[i].data);
            continue;
        }
        tid[i] = tb_input(&b, names[i], ins[i].ndim, ins[i].dims);
        gin[ngin++] = ins[i].data;
    }
    for (int i = 0; via_conv && i < n_in; i++) {
        if (tid[i] < 0 || ins[i].weight || ins[i].ndim != 4 || ins[i].dims[1] > 64)
            continue;
        int64_t C = ins[i].dims[1];
        int64_t wd[4] = {C, C, 1, 1};
        /* identity weights */
        float *w = calloc((size_t)(C * C), sizeof(float));
        for (int64_t c = 0; c < C; c++)
            w[c * C + c] = 1.0f;
        int tw = tb_weight(&b, "eye", 4, wd, w);
        int tc = tb_act(&b, "blocked");
        int cin[2] = {tid[i], tw};
        tb_node(&b, "Conv", 2, cin, tc, 0, NULL);
        tid[i] = tc;
        eyes[neyes++] = w;
    }
    int ty = tb_act(&b, "y");
    tb_node(&b, op, n_in, tid, ty, n_attrs, attrs);
    tb_output(&b, ty);
    occ_status st = tb_finish(&b, &e);
    for (int i = 0; i < neyes; i++)
        free(eyes[i]);
    CHECK_MSG(st == OCC_OK, "%s: infer: %s", label, e.msg);
    if (st) {
        tb_free(&b);
        return;
    }
    const occ_tensor *y = &b.t[ty];
    int same = y->ndim == ndim_exp;
    for (int d = 0; same && d < ndim_exp; d++)
        same = y->dims[d] == dims_exp[d];
    CHECK_MSG(same, "%s: output shape (rank %d, dims %lld %lld %lld %lld)", label, y->ndim,
              (long long)y->dims[0], (long long)y->dims[1], (long long)y->dims[2],
              (long long)y->dims[3]);
    float *out = NULL;
    if (same) {
        st = tb_run(&b, gin, &out, &e);
        CHECK_MSG(st == OCC_OK, "%s: run: %s", label, e.msg);
        if (!st) {
            int64_t cnt = 1;
            for (int d = 0; d < y->ndim; d++)
                cnt *= y->dims[d];
            double err = max_rel_err(out, ref, cnt);
            CHECK_MSG(err <= tol, "%s%s: max rel err %g", label, via_conv ? " (blocked)" : "",
                      err);
        }
    }
    free(out);
    tb_free(&b);
}

static inline tin T4(int64_t a, int64_t b_, int64_t c, int64_t d, const float *data)
{
    tin t = {4, {a, b_, c, d}, data, 0};
    return t;
}

#endif
