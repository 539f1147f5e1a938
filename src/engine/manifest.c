/* The .occ manifest: a compact little-endian binary encoding of occ_model.
 * Pure (no I/O). The decoder is trusted code reading untrusted bytes: every
 * length, count, index and offset is checked before use. The format is
 * documented in docs/pack-format.md; keep both in step. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "occ/crypto.h"
#include "occ/model.h"
#include "occ/weights_crypt.h"

#define MANIFEST_MAGIC "OCCMAN1"  /* 8 bytes with the NUL */
/* 2: every tensor carries its dtype (a version-1 manifest is refused: its
 * tensors have no type, and guessing float32 would change the model id's meaning) */
#define MANIFEST_VERSION 2u
/* 3: version 2 plus encrypted weights (occ/weights_crypt.h): a weights
 * encryption block after data_size and a GCM tag per chunk. Written only for
 * encrypted packs, so plain packs (and their model ids) stay version 2. */
#define MANIFEST_VERSION_CRYPT 3u

/* Limits that keep a hostile manifest from asking for absurd work. */
#define MAX_TENSORS (1u << 20)
#define MAX_NODES (1u << 20)
#define MAX_ATTRS 64u
#define MAX_ATTR_COUNT (1u << 20)
#define MAX_LABELS 100000u
#define MAX_STRING (1u << 16)
#define MAX_DIM (1ll << 40)
#define MAX_TENSOR_COUNT (1ll << 40) /* elements */

/* ------------------------------------------------------------------ */
/* Encoder                                                              */
/* ------------------------------------------------------------------ */

typedef struct {
    uint8_t *buf;
    size_t size, cap;
    int oom;
} wbuf;

static void w_bytes(wbuf *w, const void *p, size_t n)
{
    if (w->oom)
        return;
    if (w->size + n > w->cap) {
        size_t cap = w->cap ? w->cap : 4096;
        while (cap < w->size + n)
            cap *= 2;
        uint8_t *nb = realloc(w->buf, cap);
        if (!nb) {
            w->oom = 1;
            return;
        }
        w->buf = nb;
        w->cap = cap;
    }
    memcpy(w->buf + w->size, p, n);
    w->size += n;
}

static void w_u32(wbuf *w, uint32_t v)
{
    uint8_t b[4];
    for (int i = 0; i < 4; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    w_bytes(w, b, 4);
}

static void w_u64(wbuf *w, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    w_bytes(w, b, 8);
}

static void w_i32(wbuf *w, int32_t v) { w_u32(w, (uint32_t)v); }
static void w_i64(wbuf *w, int64_t v) { w_u64(w, (uint64_t)v); }

static void w_f32(wbuf *w, float f)
{
    uint32_t v;
    memcpy(&v, &f, 4);
    w_u32(w, v);
}

static void w_str(wbuf *w, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    w_u32(w, (uint32_t)n);
    w_bytes(w, s, n);
}

occ_status occ_manifest_encode(const occ_model *m, uint8_t **out, size_t *out_size, occ_error *e)
{
    wbuf w = {0};
    if (m->weights_crypt != OCC_WCRYPT_NONE && m->weights_crypt != OCC_WCRYPT_AES256GCM)
        return occ_fail(e, OCC_ERR_INVALID, "unknown weights encryption scheme %u", m->weights_crypt);
    const int crypt = m->weights_crypt != OCC_WCRYPT_NONE;
    w_bytes(&w, MANIFEST_MAGIC, 8);
    w_u32(&w, crypt ? MANIFEST_VERSION_CRYPT : MANIFEST_VERSION);
    w_str(&w, m->name);

    w_u32(&w, m->n_tensors);
    for (uint32_t i = 0; i < m->n_tensors; i++) {
        const occ_tensor *t = &m->tensors[i];
        if (t->ndim < 0 || t->ndim > OCC_MAX_DIMS) {
            free(w.buf);
            return occ_fail(e, OCC_ERR_INVALID, "tensor '%s': rank %d out of range", t->name, t->ndim);
        }
        w_str(&w, t->name);
        uint32_t dt = occ_tensor_dtype(t);
        if (!occ_dtype_size(dt)) {
            free(w.buf);
            return occ_fail(e, OCC_ERR_INVALID, "tensor '%s': unknown dtype %u", t->name, dt);
        }
        w_u32(&w, t->kind);
        w_u32(&w, dt);
        w_u32(&w, t->layout);
        w_u32(&w, (uint32_t)t->ndim);
        for (int d = 0; d < t->ndim; d++)
            w_i64(&w, t->dims[d]);
        w_u64(&w, t->data_offset);
        w_u64(&w, t->size);
    }

    w_u32(&w, m->n_nodes);
    for (uint32_t i = 0; i < m->n_nodes; i++) {
        const occ_node *n = &m->nodes[i];
        w_str(&w, n->name);
        w_str(&w, n->op);
        w_u32(&w, n->n_inputs);
        for (uint32_t k = 0; k < n->n_inputs; k++)
            w_i32(&w, n->inputs[k]);
        w_u32(&w, n->n_outputs);
        for (uint32_t k = 0; k < n->n_outputs; k++)
            w_i32(&w, n->outputs[k]);
        w_u32(&w, n->n_attrs);
        for (uint32_t k = 0; k < n->n_attrs; k++) {
            const occ_attr *a = &n->attrs[k];
            w_str(&w, a->name);
            w_u32(&w, a->type);
            switch (a->type) {
            case OCC_ATTR_INT: w_i64(&w, a->i); break;
            case OCC_ATTR_FLOAT: w_f32(&w, a->f); break;
            case OCC_ATTR_INTS:
                w_u32(&w, a->count);
                for (uint32_t j = 0; j < a->count; j++)
                    w_i64(&w, a->ints[j]);
                break;
            case OCC_ATTR_FLOATS:
                w_u32(&w, a->count);
                for (uint32_t j = 0; j < a->count; j++)
                    w_f32(&w, a->floats[j]);
                break;
            case OCC_ATTR_STRING: w_str(&w, a->s); break;
            default:
                free(w.buf);
                return occ_fail(e, OCC_ERR_INVALID, "node '%s': attribute '%s' has unknown type %u",
                                n->name, a->name, a->type);
            }
        }
    }

    w_u32(&w, m->n_inputs);
    for (uint32_t i = 0; i < m->n_inputs; i++)
        w_i32(&w, m->inputs[i]);
    w_u32(&w, m->n_outputs);
    for (uint32_t i = 0; i < m->n_outputs; i++)
        w_i32(&w, m->outputs[i]);

    w_u32(&w, m->pre.present ? 1u : 0u);
    if (m->pre.present) {
        w_i32(&w, m->pre.height);
        w_i32(&w, m->pre.width);
        w_i32(&w, m->pre.channels);
        w_bytes(&w, m->pre.channel_order, 4);
        w_f32(&w, m->pre.scale);
        for (int c = 0; c < 4; c++)
            w_f32(&w, m->pre.mean[c]);
        for (int c = 0; c < 4; c++)
            w_f32(&w, m->pre.std[c]);
    }

    w_u32(&w, m->n_labels);
    for (uint32_t i = 0; i < m->n_labels; i++)
        w_str(&w, m->labels[i]);

    w_u64(&w, m->data_size);
    if (crypt) {
        w_u32(&w, m->weights_crypt);
        w_bytes(&w, m->pack_id, OCC_PACK_ID_SIZE);
        w_bytes(&w, m->key_check, 32);
    }
    w_u32(&w, m->n_chunks);
    for (uint32_t i = 0; i < m->n_chunks; i++) {
        w_u64(&w, m->chunks[i].offset);
        w_u64(&w, m->chunks[i].size);
        w_bytes(&w, m->chunks[i].sha256, 32);
        if (crypt)
            w_bytes(&w, m->chunks[i].tag, 16);
    }

    if (w.oom) {
        free(w.buf);
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory encoding the manifest");
    }
    *out = w.buf;
    *out_size = w.size;
    return OCC_OK;
}

/* ------------------------------------------------------------------ */
/* Arena for the decoded model                                          */
/* ------------------------------------------------------------------ */

typedef struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    max_align_t data[];
} arena_block;

typedef struct {
    arena_block *head;
} arena;

static void *arena_alloc(arena *a, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    if (!a->head || a->head->cap - a->head->used < size) {
        size_t cap = size > (64u << 10) ? size : (64u << 10);
        arena_block *b = malloc(sizeof *b + cap);
        if (!b)
            return NULL;
        b->next = a->head;
        b->used = 0;
        b->cap = cap;
        a->head = b;
    }
    void *p = (uint8_t *)a->head->data + a->head->used;
    a->head->used += size;
    memset(p, 0, size);
    return p;
}

static void arena_free(arena *a)
{
    arena_block *b = a ? a->head : NULL;
    while (b) {
        arena_block *n = b->next;
        free(b);
        b = n;
    }
}

/* ------------------------------------------------------------------ */
/* Decoder                                                              */
/* ------------------------------------------------------------------ */

typedef struct {
    const uint8_t *p;
    size_t left;
    arena *a;
    occ_error *e;
    const char *where; /* what is being read, for messages */
} rbuf;

static occ_status r_trunc(rbuf *r)
{
    return occ_fail(r->e, OCC_ERR_FORMAT, "manifest truncated while reading %s", r->where);
}

static occ_status r_bytes(rbuf *r, void *dst, size_t n)
{
    if (r->left < n)
        return r_trunc(r);
    memcpy(dst, r->p, n);
    r->p += n;
    r->left -= n;
    return OCC_OK;
}

static occ_status r_u32(rbuf *r, uint32_t *v)
{
    uint8_t b[4] = {0};
    occ_status s = r_bytes(r, b, 4);
    if (s)
        return s;
    *v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    return OCC_OK;
}

static occ_status r_u64(rbuf *r, uint64_t *v)
{
    uint32_t lo = 0, hi = 0;
    occ_status s = r_u32(r, &lo);
    if (!s)
        s = r_u32(r, &hi);
    if (!s)
        *v = (uint64_t)hi << 32 | lo;
    return s;
}

static occ_status r_i32(rbuf *r, int32_t *v)
{
    uint32_t u;
    occ_status s = r_u32(r, &u);
    if (!s)
        *v = (int32_t)u;
    return s;
}

static occ_status r_i64(rbuf *r, int64_t *v)
{
    uint64_t u;
    occ_status s = r_u64(r, &u);
    if (!s)
        *v = (int64_t)u;
    return s;
}

static occ_status r_f32(rbuf *r, float *f)
{
    uint32_t u;
    occ_status s = r_u32(r, &u);
    if (!s)
        memcpy(f, &u, 4);
    return s;
}

/* A count of items each at least min_size bytes: bounded by what is left. */
static occ_status r_count(rbuf *r, uint32_t *n, uint32_t max, size_t min_size)
{
    occ_status s = r_u32(r, n);
    if (s)
        return s;
    if (*n > max)
        return occ_fail(r->e, OCC_ERR_FORMAT, "manifest: %s count %u exceeds the limit %u", r->where, *n, max);
    if (min_size && (uint64_t)*n * min_size > r->left)
        return r_trunc(r);
    return OCC_OK;
}

static void *r_alloc(rbuf *r, size_t size, occ_status *s)
{
    void *p = arena_alloc(r->a, size ? size : 1);
    if (!p)
        *s = occ_fail(r->e, OCC_ERR_NOMEM, "out of memory decoding the manifest");
    return p;
}

static occ_status r_str(rbuf *r, const char **out)
{
    uint32_t n;
    occ_status s = r_u32(r, &n);
    if (s)
        return s;
    if (n > MAX_STRING)
        return occ_fail(r->e, OCC_ERR_FORMAT, "manifest: string of %u bytes in %s is too long", n, r->where);
    if (n > r->left)
        return r_trunc(r);
    if (memchr(r->p, '\0', n))
        return occ_fail(r->e, OCC_ERR_FORMAT, "manifest: string in %s contains a NUL byte", r->where);
    char *d = r_alloc(r, (size_t)n + 1, &s);
    if (!d)
        return s;
    memcpy(d, r->p, n);
    d[n] = '\0';
    r->p += n;
    r->left -= n;
    *out = d;
    return OCC_OK;
}

#define TRY(x)                                                                                 \
    do {                                                                                       \
        occ_status _s = (x);                                                                   \
        if (_s)                                                                                \
            return _s;                                                                         \
    } while (0)

static occ_status read_tensor(rbuf *r, occ_tensor *t, uint32_t idx)
{
    uint32_t ndim;
    TRY(r_str(r, &t->name));
    TRY(r_u32(r, &t->kind));
    TRY(r_u32(r, &t->dtype));
    TRY(r_u32(r, &t->layout));
    TRY(r_u32(r, &ndim));
    if (t->kind < OCC_TENSOR_ACT || t->kind > OCC_TENSOR_WEIGHT)
        return occ_fail(r->e, OCC_ERR_FORMAT, "manifest: tensor %u '%s' has unknown kind %u", idx, t->name, t->kind);
    const uint64_t esize = occ_dtype_size(t->dtype);
    if (!esize)
        return occ_fail(r->e, OCC_ERR_FORMAT, "manifest: tensor '%s' has unknown dtype %u", t->name, t->dtype);
    if (t->layout != OCC_LAYOUT_PLAIN)
        return occ_fail(r->e, OCC_ERR_UNSUPPORTED, "manifest: tensor '%s' has unsupported layout %u", t->name, t->layout);
    if (ndim > OCC_MAX_DIMS)
        return occ_fail(r->e, OCC_ERR_FORMAT, "manifest: tensor '%s' has rank %u (max %d)", t->name, ndim, OCC_MAX_DIMS);
    t->ndim = (int32_t)ndim;
    /* a 0 dim is an empty tensor; the product of the other dims stays bounded
     * all the same (strides are computed from them) */
    int64_t count = 1, nz = 1;
    for (uint32_t d = 0; d < ndim; d++) {
        TRY(r_i64(r, &t->dims[d]));
        if (t->dims[d] < 0 || t->dims[d] > MAX_DIM)
            return occ_fail(r->e, OCC_ERR_SHAPE, "manifest: tensor '%s' has dimension %u = %lld",
                            t->name, d, (long long)t->dims[d]);
        if (t->dims[d] && nz > MAX_TENSOR_COUNT / t->dims[d])
            return occ_fail(r->e, OCC_ERR_SHAPE, "manifest: tensor '%s' is absurdly large", t->name);
        nz *= t->dims[d] ? t->dims[d] : 1;
        count *= t->dims[d];
    }
    TRY(r_u64(r, &t->data_offset));
    TRY(r_u64(r, &t->size));
    if (t->size != (uint64_t)count * esize)
        return occ_fail(r->e, OCC_ERR_FORMAT, "manifest: tensor '%s' declares %llu bytes, its shape and type need %llu",
                        t->name, (unsigned long long)t->size, (unsigned long long)count * esize);
    if (t->kind != OCC_TENSOR_WEIGHT && t->data_offset != 0)
        return occ_fail(r->e, OCC_ERR_FORMAT, "manifest: non-weight tensor '%s' has a data offset", t->name);
    if (t->kind == OCC_TENSOR_WEIGHT && t->data_offset % esize)
        return occ_fail(r->e, OCC_ERR_FORMAT, "manifest: weight '%s' is misaligned", t->name);
    return OCC_OK;
}

static occ_status read_attr(rbuf *r, occ_attr *a)
{
    occ_status s = OCC_OK;
    TRY(r_str(r, &a->name));
    TRY(r_u32(r, &a->type));
    switch (a->type) {
    case OCC_ATTR_INT:
        a->count = 1;
        return r_i64(r, &a->i);
    case OCC_ATTR_FLOAT:
        a->count = 1;
        return r_f32(r, &a->f);
    case OCC_ATTR_INTS: {
        TRY(r_count(r, &a->count, MAX_ATTR_COUNT, 8));
        int64_t *v = r_alloc(r, (size_t)a->count * 8, &s);
        if (!v)
            return s;
        for (uint32_t j = 0; j < a->count; j++)
            TRY(r_i64(r, &v[j]));
        a->ints = v;
        return OCC_OK;
    }
    case OCC_ATTR_FLOATS: {
        TRY(r_count(r, &a->count, MAX_ATTR_COUNT, 4));
        float *v = r_alloc(r, (size_t)a->count * 4, &s);
        if (!v)
            return s;
        for (uint32_t j = 0; j < a->count; j++)
            TRY(r_f32(r, &v[j]));
        a->floats = v;
        return OCC_OK;
    }
    case OCC_ATTR_STRING:
        TRY(r_str(r, &a->s));
        a->count = (uint32_t)strlen(a->s);
        return OCC_OK;
    default:
        return occ_fail(r->e, OCC_ERR_FORMAT, "manifest: attribute '%s' has unknown type %u", a->name, a->type);
    }
}

static occ_status read_index_list(rbuf *r, uint32_t n, int32_t **out, occ_status *s)
{
    int32_t *v = r_alloc(r, (size_t)n * 4 + 4, s);
    if (!v)
        return *s;
    for (uint32_t k = 0; k < n; k++)
        TRY(r_i32(r, &v[k]));
    *out = v;
    return OCC_OK;
}

static occ_status read_node(rbuf *r, occ_node *n)
{
    occ_status s = OCC_OK;
    int32_t *v;
    TRY(r_str(r, &n->name));
    TRY(r_str(r, &n->op));
    r->where = "node inputs";
    TRY(r_count(r, &n->n_inputs, OCC_MAX_NODE_IO, 4));
    TRY(read_index_list(r, n->n_inputs, &v, &s));
    n->inputs = v;
    r->where = "node outputs";
    TRY(r_count(r, &n->n_outputs, OCC_MAX_NODE_IO, 4));
    if (n->n_outputs == 0)
        return occ_fail(r->e, OCC_ERR_FORMAT, "manifest: node '%s' has no output", n->name);
    TRY(read_index_list(r, n->n_outputs, &v, &s));
    n->outputs = v;
    r->where = "node attributes";
    TRY(r_count(r, &n->n_attrs, MAX_ATTRS, 8));
    occ_attr *attrs = r_alloc(r, (size_t)n->n_attrs * sizeof *attrs, &s);
    if (!attrs)
        return s;
    for (uint32_t k = 0; k < n->n_attrs; k++) {
        TRY(read_attr(r, &attrs[k]));
        for (uint32_t j = 0; j < k; j++)
            if (!strcmp(attrs[j].name, attrs[k].name))
                return occ_fail(r->e, OCC_ERR_FORMAT, "manifest: node '%s' repeats attribute '%s'",
                                n->name, attrs[k].name);
    }
    n->attrs = attrs;
    return OCC_OK;
}

/* Structural checks across tables: indices in range, a single producer per
 * tensor, producers before consumers, weights covered by chunks. */
static occ_status check_graph(occ_model *m, arena *a, occ_error *e)
{
    uint8_t *state = arena_alloc(a, m->n_tensors ? m->n_tensors : 1); /* 1 = available */
    if (!state)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory checking the manifest");
    uint32_t n_graph_inputs = 0;
    for (uint32_t i = 0; i < m->n_tensors; i++) {
        if (m->tensors[i].kind == OCC_TENSOR_WEIGHT)
            state[i] = 1;
        if (m->tensors[i].kind == OCC_TENSOR_INPUT)
            n_graph_inputs++;
    }
    /* no inputs is allowed: every graph input fixed at pack time (--bind) */
    if (m->n_outputs == 0)
        return occ_fail(e, OCC_ERR_FORMAT, "manifest: the graph has no outputs");
    if (n_graph_inputs != m->n_inputs)
        return occ_fail(e, OCC_ERR_FORMAT, "manifest: %u tensors are marked input but %u inputs are listed",
                        n_graph_inputs, m->n_inputs);
    for (uint32_t i = 0; i < m->n_inputs; i++) {
        int32_t t = m->inputs[i];
        if (t < 0 || (uint32_t)t >= m->n_tensors || m->tensors[t].kind != OCC_TENSOR_INPUT || state[t])
            return occ_fail(e, OCC_ERR_FORMAT, "manifest: graph input %u is not a distinct input tensor", i);
        state[t] = 1;
    }
    for (uint32_t ni = 0; ni < m->n_nodes; ni++) {
        const occ_node *n = &m->nodes[ni];
        for (uint32_t k = 0; k < n->n_inputs; k++) {
            int32_t t = n->inputs[k];
            if (t == -1)
                continue;
            if (t < 0 || (uint32_t)t >= m->n_tensors)
                return occ_fail(e, OCC_ERR_FORMAT, "manifest: node '%s' input %u: tensor index %d out of range",
                                n->name, k, t);
            if (!state[t])
                return occ_fail(e, OCC_ERR_FORMAT,
                                "manifest: node '%s' reads '%s' before it is produced (nodes out of order)",
                                n->name, m->tensors[t].name);
        }
        for (uint32_t k = 0; k < n->n_outputs; k++) {
            int32_t t = n->outputs[k];
            if (t < 0 || (uint32_t)t >= m->n_tensors)
                return occ_fail(e, OCC_ERR_FORMAT, "manifest: node '%s' output %u: tensor index %d out of range",
                                n->name, k, t);
            if (m->tensors[t].kind != OCC_TENSOR_ACT)
                return occ_fail(e, OCC_ERR_FORMAT, "manifest: node '%s' writes non-activation tensor '%s'",
                                n->name, m->tensors[t].name);
            if (state[t])
                return occ_fail(e, OCC_ERR_FORMAT, "manifest: tensor '%s' is produced twice", m->tensors[t].name);
            state[t] = 1;
        }
    }
    for (uint32_t i = 0; i < m->n_outputs; i++) {
        int32_t t = m->outputs[i];
        if (t < 0 || (uint32_t)t >= m->n_tensors || m->tensors[t].kind == OCC_TENSOR_WEIGHT || !state[t])
            return occ_fail(e, OCC_ERR_FORMAT, "manifest: graph output %u is not a computed tensor", i);
    }

    /* Chunks: sorted, float-aligned, non-overlapping, inside the data section. */
    uint64_t end = 0;
    for (uint32_t i = 0; i < m->n_chunks; i++) {
        const occ_chunk *c = &m->chunks[i];
        if (c->offset % 4 || c->size == 0 || c->offset < end || c->size > m->data_size ||
            c->offset > m->data_size - c->size)
            return occ_fail(e, OCC_ERR_FORMAT, "manifest: chunk %u [%llu, +%llu) is misplaced", i,
                            (unsigned long long)c->offset, (unsigned long long)c->size);
        end = c->offset + c->size;
    }
    /* Every weight lies inside a run of adjacent chunks. */
    for (uint32_t i = 0; i < m->n_tensors; i++) {
        const occ_tensor *t = &m->tensors[i];
        if (t->kind != OCC_TENSOR_WEIGHT)
            continue;
        if (t->size > m->data_size || t->data_offset > m->data_size - t->size)
            return occ_fail(e, OCC_ERR_FORMAT, "manifest: weight '%s' lies outside the data section", t->name);
        uint32_t lo = 0, hi = m->n_chunks; /* first chunk with end > offset */
        while (lo < hi) {
            uint32_t mid = lo + (hi - lo) / 2;
            if (m->chunks[mid].offset + m->chunks[mid].size <= t->data_offset)
                lo = mid + 1;
            else
                hi = mid;
        }
        uint64_t pos = t->data_offset, stop = t->data_offset + t->size;
        for (uint32_t c = lo; pos < stop; c++) {
            if (c >= m->n_chunks || m->chunks[c].offset > pos)
                return occ_fail(e, OCC_ERR_FORMAT, "manifest: weight '%s' is not covered by chunks", t->name);
            pos = m->chunks[c].offset + m->chunks[c].size;
        }
    }
    return OCC_OK;
}

static occ_status check_preproc(const occ_preproc *p, occ_error *e)
{
    if (p->height <= 0 || p->height > 65536 || p->width <= 0 || p->width > 65536)
        return occ_fail(e, OCC_ERR_FORMAT, "manifest: preprocessing size %dx%d is out of range", p->height, p->width);
    int gray = !strcmp(p->channel_order, "L");
    int color = !strcmp(p->channel_order, "RGB") || !strcmp(p->channel_order, "BGR");
    if (!(gray && p->channels == 1) && !(color && p->channels == 3))
        return occ_fail(e, OCC_ERR_FORMAT, "manifest: preprocessing channel order/count is invalid");
    if (!isfinite(p->scale))
        return occ_fail(e, OCC_ERR_FORMAT, "manifest: preprocessing scale is not finite");
    for (int c = 0; c < p->channels; c++)
        if (!isfinite(p->mean[c]) || !isfinite(p->std[c]) || p->std[c] == 0.0f)
            return occ_fail(e, OCC_ERR_FORMAT, "manifest: preprocessing mean/std of channel %d is invalid", c);
    return OCC_OK;
}

static occ_status decode(rbuf *r, occ_model *m, arena *a, occ_error *e)
{
    occ_status s = OCC_OK;
    uint8_t magic[8];
    uint32_t version;
    r->where = "the header";
    TRY(r_bytes(r, magic, 8));
    if (memcmp(magic, MANIFEST_MAGIC, 8))
        return occ_fail(e, OCC_ERR_FORMAT, "manifest: bad magic (not an Occlumency manifest)");
    TRY(r_u32(r, &version));
    if (version != MANIFEST_VERSION && version != MANIFEST_VERSION_CRYPT)
        return occ_fail(e, OCC_ERR_UNSUPPORTED,
                        "manifest: version %u is not supported (this build reads %u, and %u for "
                        "encrypted weights)",
                        version, MANIFEST_VERSION, MANIFEST_VERSION_CRYPT);
    r->where = "the model name";
    TRY(r_str(r, &m->name));

    r->where = "tensors";
    TRY(r_count(r, &m->n_tensors, MAX_TENSORS, 28));
    m->tensors = r_alloc(r, (size_t)m->n_tensors * sizeof *m->tensors, &s);
    if (!m->tensors)
        return s;
    for (uint32_t i = 0; i < m->n_tensors; i++) {
        r->where = "a tensor";
        TRY(read_tensor(r, &m->tensors[i], i));
    }

    r->where = "nodes";
    TRY(r_count(r, &m->n_nodes, MAX_NODES, 20));
    m->nodes = r_alloc(r, (size_t)m->n_nodes * sizeof *m->nodes, &s);
    if (!m->nodes)
        return s;
    for (uint32_t i = 0; i < m->n_nodes; i++) {
        r->where = "a node";
        TRY(read_node(r, &m->nodes[i]));
    }

    int32_t *v;
    r->where = "graph inputs";
    TRY(r_count(r, &m->n_inputs, OCC_MAX_NODE_IO, 4));
    TRY(read_index_list(r, m->n_inputs, &v, &s));
    m->inputs = v;
    r->where = "graph outputs";
    TRY(r_count(r, &m->n_outputs, OCC_MAX_NODE_IO, 4));
    TRY(read_index_list(r, m->n_outputs, &v, &s));
    m->outputs = v;

    uint32_t present;
    r->where = "preprocessing";
    TRY(r_u32(r, &present));
    if (present > 1)
        return occ_fail(e, OCC_ERR_FORMAT, "manifest: bad preprocessing flag");
    m->pre.present = (int32_t)present;
    if (present) {
        TRY(r_i32(r, &m->pre.height));
        TRY(r_i32(r, &m->pre.width));
        TRY(r_i32(r, &m->pre.channels));
        TRY(r_bytes(r, m->pre.channel_order, 4));
        m->pre.channel_order[3] = '\0';
        TRY(r_f32(r, &m->pre.scale));
        for (int c = 0; c < 4; c++)
            TRY(r_f32(r, &m->pre.mean[c]));
        for (int c = 0; c < 4; c++)
            TRY(r_f32(r, &m->pre.std[c]));
        TRY(check_preproc(&m->pre, e));
    }

    r->where = "labels";
    TRY(r_count(r, &m->n_labels, MAX_LABELS, 4));
    const char **labels = r_alloc(r, (size_t)m->n_labels * sizeof *labels, &s);
    if (!labels)
        return s;
    for (uint32_t i = 0; i < m->n_labels; i++)
        TRY(r_str(r, &labels[i]));
    m->labels = labels;

    r->where = "the chunk table";
    TRY(r_u64(r, &m->data_size));
    const int crypt = version == MANIFEST_VERSION_CRYPT;
    if (crypt) {
        r->where = "the weights encryption block";
        TRY(r_u32(r, &m->weights_crypt));
        if (m->weights_crypt != OCC_WCRYPT_AES256GCM)
            return occ_fail(e, m->weights_crypt ? OCC_ERR_UNSUPPORTED : OCC_ERR_FORMAT,
                            "manifest: weights encryption scheme %u is not supported (this build "
                            "reads %u, AES-256-GCM)",
                            m->weights_crypt, OCC_WCRYPT_AES256GCM);
        TRY(r_bytes(r, m->pack_id, OCC_PACK_ID_SIZE));
        TRY(r_bytes(r, m->key_check, 32));
        r->where = "the chunk table";
    }
    TRY(r_count(r, &m->n_chunks, 1u << 24, crypt ? 64 : 48));
    m->chunks = r_alloc(r, (size_t)m->n_chunks * sizeof *m->chunks, &s);
    if (!m->chunks)
        return s;
    for (uint32_t i = 0; i < m->n_chunks; i++) {
        TRY(r_u64(r, &m->chunks[i].offset));
        TRY(r_u64(r, &m->chunks[i].size));
        TRY(r_bytes(r, m->chunks[i].sha256, 32));
        if (crypt)
            TRY(r_bytes(r, m->chunks[i].tag, 16));
    }
    if (r->left)
        return occ_fail(e, OCC_ERR_FORMAT, "manifest: %zu unexpected trailing bytes", r->left);
    return check_graph(m, a, e);
}

occ_status occ_manifest_decode(const uint8_t *buf, size_t size, occ_model **out, occ_error *e)
{
    *out = NULL;
    if (!buf && size)
        return occ_fail(e, OCC_ERR_INVALID, "manifest: no bytes");
    /* The bytes may be the host's (occ serve hands the enclave the host's
     * pointer): a host that changes them between two reads would get a
     * chunk table parsed that is not the one hashed into the model id. So
     * they are read exactly once, into private memory, and both the
     * parser and the hash read only that copy (issue 15). */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory for a %zu-byte manifest", size);
    if (size)
        memcpy(copy, buf, size);
    arena *a = calloc(1, sizeof *a);
    if (!a) {
        free(copy);
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory decoding the manifest");
    }
    occ_model *m = arena_alloc(a, sizeof *m);
    if (!m) {
        free(a);
        free(copy);
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory decoding the manifest");
    }
    m->owner = a;
    rbuf r = {.p = copy, .left = size, .a = a, .e = e, .where = "the header"};
    occ_status s = decode(&r, m, a, e);
    if (!s && occ_sha256(copy, size, m->model_id))
        s = occ_fail(e, OCC_ERR_INTERNAL, "SHA-256 failed");
    free(copy);
    if (s) {
        occ_model_free(m);
        return s;
    }
    *out = m;
    return OCC_OK;
}

void occ_model_free(occ_model *m)
{
    if (!m)
        return;
    arena *a = m->owner;
    arena_free(a); /* m itself lives in the arena */
    free(a);
}

const occ_attr *occ_node_attr(const occ_node *n, const char *name)
{
    for (uint32_t i = 0; i < n->n_attrs; i++)
        if (!strcmp(n->attrs[i].name, name))
            return &n->attrs[i];
    return NULL;
}

size_t occ_dtype_size(uint32_t dtype)
{
    switch (dtype) {
    case OCC_DTYPE_FLOAT: case OCC_DTYPE_INT32: case OCC_DTYPE_UINT32: return 4;
    case OCC_DTYPE_INT64: case OCC_DTYPE_UINT64: case OCC_DTYPE_DOUBLE: return 8;
    case OCC_DTYPE_UINT8: case OCC_DTYPE_INT8: case OCC_DTYPE_BOOL: return 1;
    case OCC_DTYPE_FLOAT16: case OCC_DTYPE_BFLOAT16: case OCC_DTYPE_INT16: case OCC_DTYPE_UINT16:
        return 2;
    default: return 0;
    }
}

static const struct { uint32_t dt; const char *name; } dtype_names[] = {
    {OCC_DTYPE_FLOAT, "float32"},   {OCC_DTYPE_UINT8, "uint8"},     {OCC_DTYPE_INT8, "int8"},
    {OCC_DTYPE_INT32, "int32"},     {OCC_DTYPE_INT64, "int64"},     {OCC_DTYPE_BOOL, "bool"},
    {OCC_DTYPE_FLOAT16, "float16"}, {OCC_DTYPE_DOUBLE, "float64"},  {OCC_DTYPE_INT16, "int16"},
    {OCC_DTYPE_UINT16, "uint16"},   {OCC_DTYPE_UINT32, "uint32"},   {OCC_DTYPE_UINT64, "uint64"},
    {OCC_DTYPE_BFLOAT16, "bfloat16"},
};

const char *occ_dtype_name(uint32_t dtype)
{
    for (size_t i = 0; i < sizeof dtype_names / sizeof dtype_names[0]; i++)
        if (dtype_names[i].dt == dtype)
            return dtype_names[i].name;
    return NULL;
}

uint32_t occ_dtype_from_name(const char *name)
{
    for (size_t i = 0; name && i < sizeof dtype_names / sizeof dtype_names[0]; i++)
        if (!strcmp(dtype_names[i].name, name))
            return dtype_names[i].dt;
    return 0;
}

int occ_dtype_is_float(uint32_t dtype)
{
    return dtype == OCC_DTYPE_FLOAT || dtype == OCC_DTYPE_FLOAT16 || dtype == OCC_DTYPE_DOUBLE ||
           dtype == OCC_DTYPE_BFLOAT16;
}

int occ_dtype_is_unsigned(uint32_t dtype)
{
    return dtype == OCC_DTYPE_UINT8 || dtype == OCC_DTYPE_UINT16 || dtype == OCC_DTYPE_UINT32 ||
           dtype == OCC_DTYPE_UINT64 || dtype == OCC_DTYPE_BOOL;
}

uint32_t occ_tensor_dtype(const occ_tensor *t)
{
    return t->dtype ? t->dtype : OCC_DTYPE_FLOAT;
}

int64_t occ_tensor_count(const occ_tensor *t)
{
    int64_t c = 1;
    for (int d = 0; d < t->ndim; d++)
        c *= t->dims[d];
    return c;
}

void occ_hex(const uint8_t *bytes, size_t size, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < size; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * size] = '\0';
}
