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
 * Memory and weights (docs/streaming.md): every enclave byte comes from one
 * counting allocator over the caller's provider. Activations live in one
 * arena placed by the planner (src/engine/planner.c; greedy-by-size with
 * lifetime reuse, or naive for baseline). Each layer's weights become one or
 * more *segments* of kernel-ready bytes (a Conv split by output channels in
 * multiples of 16, a Gemm by output columns, so no segment exceeds the
 * budget's share); the planner keeps what fits resident and streams the
 * rest (by priority: FC layers first, their streaming cannot hide behind
 * compute): at create every pack chunk is SHA-256-checked in enclave
 * memory, each streamed segment gets a Poly1305 tag under a one-time key
 * derived (AES-256) from a key made in the enclave and is parked in
 * untrusted memory; at run, loader threads copy each segment into a ring
 * slot in enclave memory piece by piece and authenticate the enclave copy
 * while the compute thread runs earlier layers - and the compute thread,
 * rather than wait for a segment, loads the next free one itself. In
 * occlumency mode each step's working buffer is an arena buffer alive during
 * that step only, and a batch runs its convolutional part image by image and
 * its fully connected part once for all images (split_k).
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
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/engine_internal.h"
#include "engine/exec_int.h"
#include "engine/planner.h"
#include "engine/weights_crypt_int.h"
#include "ops/ops_internal.h"
#include "occ/boundary.h"
#include "occ/crypto.h"
#include "occ/fault.h"
#include "occ/weights_crypt.h"
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/crypto.h>

#define MAX_TENSORS (1u << 24)
#define MAX_NODES (1u << 24)
#define MAX_DATA_SIZE (UINT64_C(1) << 48)
#define MAX_BATCH 4096u
#define GEMM_SEG_MAX (UINT64_C(1) << 20)

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
    size_t es = occ_dtype_size(occ_tensor_dtype(t));
    return c > 0 && es && t->size == (uint64_t)c * es;
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
                 (t->data_offset % occ_dtype_size(occ_tensor_dtype(t)) ||
                  t->data_offset > m->data_size ||
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
            int same = a->ndim == b->ndim && a->size == b->size &&
                       occ_tensor_dtype(a) == occ_tensor_dtype(b);
            for (int d = 0; same && d < b->ndim; d++)
                same = a->dims[d] == b->dims[d];
            if (!same) {
                char da[160], db[160];
                shape_str(a, da, sizeof da);
                shape_str(b, db, sizeof db);
                st = occ_fail(e, OCC_ERR_SHAPE,
                              "node %s (%s): tensor %s is declared %s %s but inferred %s %s",
                              nm(n->name), nm(n->op), nm(a->name),
                              nm(occ_dtype_name(occ_tensor_dtype(a))), da,
                              nm(occ_dtype_name(occ_tensor_dtype(b))), db);
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

/* ---- enclave memory: one counting allocator over the provider ---- */

static occ_status mp_default_alloc(void *ctx, size_t size, void **out, occ_error *e)
{
    (void)ctx;
    size_t sz = (size + 63) & ~(size_t)63;
    *out = sz >= size ? aligned_alloc(64, sz ? sz : 64) : NULL;
    if (!*out)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory for %zu bytes", size);
    return OCC_OK;
}

static void mp_default_free(void *ctx, void *p, size_t size)
{
    (void)ctx;
    (void)size;
    free(p);
}

/* What an allocation of `size` bytes really occupies from the provider. */
static uint64_t emem_round(const emem *m, uint64_t size)
{
    uint64_t g = m->p.granularity > 64 ? (uint64_t)m->p.granularity : 64;
    size = (size + g - 1) & ~(g - 1);
    return size ? size : g;
}

static void *emem_alloc(emem *m, uint64_t size, occ_error *e)
{
    void *p = NULL;
    if (size > (UINT64_C(1) << 44)) {
        occ_fail(e, OCC_ERR_NOMEM, "absurd allocation of %llu bytes", (unsigned long long)size);
        return NULL;
    }
    size = emem_round(m, size);
    occ_error tmp = {0};
    if (occ_fault_hit(OCC_FAULT_ALLOC)) /* test-only (occ/fault.h) */
        return occ_fail(e ? e : &tmp, OCC_ERR_NOMEM, "injected enclave allocation failure"), NULL;
    if (m->p.alloc(m->p.ctx, (size_t)size, &p, e ? e : &tmp) || !p)
        return NULL;
    pthread_mutex_lock(&m->mu);
    m->cur += size;
    if (m->cur > m->peak)
        m->peak = m->cur;
    pthread_mutex_unlock(&m->mu);
    return p;
}

static void emem_free(emem *m, void *p, uint64_t size)
{
    if (!p)
        return;
    size = emem_round(m, size);
    m->p.free(m->p.ctx, p, (size_t)size);
    pthread_mutex_lock(&m->mu);
    m->cur -= size;
    pthread_mutex_unlock(&m->mu);
}

static void *emem_ops_alloc(void *ctx, size_t size)
{
    return emem_alloc(ctx, size, NULL);
}

static void emem_ops_free(void *ctx, void *p, size_t size)
{
    emem_free(ctx, p, size);
}

/* ---- untrusted host memory for ciphertext ----
 * Outside the enclave and outside the budget. One place, so that under a real
 * enclave it becomes an ocall (the host allocates; the enclave gets a pointer
 * it must treat as hostile). */
static uint8_t *untrusted_alloc(uint64_t size)
{
    /* from the host (alloc_untrusted ocall, range checked) in a server's
     * enclave, malloc without one (occ/boundary.h) */
    return size > SIZE_MAX - 64 ? NULL : occ_untrusted_alloc((size_t)(size ? size : 1));
}

static void untrusted_free(uint8_t *p)
{
    occ_untrusted_free(p);
}

/* ---- verified reads of the data section (at create) ---- */

typedef struct vreader {
    occ_engine *eng;
    occ_read_fn read;
    void *ctx;
    uint8_t *cache;          /* one verified chunk, enclave memory */
    uint64_t cache_cap;
    int64_t cached;          /* chunk index in cache, -1 none */
    occ_wcrypt *wc;          /* encrypted pack: the chunk cipher (NULL: plain) */
} vreader;

/* Copies verified bytes [lo, hi) of the data section into dst: each chunk
 * covering them is read into enclave memory and its SHA-256 checked there
 * before a byte of it is used. */
static occ_status vread(vreader *r, uint64_t lo, uint64_t hi, uint8_t *dst, occ_error *e)
{
    const occ_model *m = r->eng->m;
    if (hi <= lo)
        return OCC_OK;
    /* first chunk whose end is past lo (chunks are sorted, disjoint) */
    uint32_t a = 0, b = m->n_chunks;
    while (a < b) {
        uint32_t mid = a + (b - a) / 2;
        if (m->chunks[mid].offset + m->chunks[mid].size <= lo)
            a = mid + 1;
        else
            b = mid;
    }
    uint64_t at = lo;
    for (uint32_t i = a; i < m->n_chunks && at < hi; i++) {
        const occ_chunk *c = &m->chunks[i];
        if (c->offset > at)
            break; /* gap */
        if (r->cached != (int64_t)i) {
            if (c->size > r->cache_cap)
                return occ_fail(e, OCC_ERR_INTERNAL, "chunk %u larger than the load buffer", i);
            r->cached = -1;
            occ_status st = r->read(r->ctx, c->offset, r->cache, c->size, e);
            if (st)
                return st;
            uint8_t h[32];
            if (occ_sha256(r->cache, (size_t)c->size, h))
                return occ_fail(e, OCC_ERR_INTERNAL, "SHA-256 failed");
            r->eng->chunks_loaded++;
            r->eng->bytes_loaded += c->size;
            r->eng->bytes_verified += c->size;
            if (occ_ct_memcmp(h, c->sha256, 32) != 0) {
                r->eng->integrity_failures++;
                return occ_fail(e, OCC_ERR_INTEGRITY, "weight chunk %u failed verification", i);
            }
            /* encrypted: decrypt the verified ciphertext in enclave memory;
             * nothing of it is used before its GCM tag checked */
            if (r->wc && (st = occ_wcrypt_open(r->wc, i, c, r->cache, e))) {
                r->eng->integrity_failures++;
                return st;
            }
            if (r->wc)
                r->eng->bytes_decrypted += c->size;
            if (r->eng->on_chunk)
                r->eng->on_chunk(r->eng->hook_ctx, i);
            r->cached = i;
        }
        uint64_t end = c->offset + c->size < hi ? c->offset + c->size : hi;
        memcpy(dst + (at - lo), r->cache + (at - c->offset), (size_t)(end - at));
        at = end;
    }
    if (at < hi)
        return occ_fail(e, OCC_ERR_INTEGRITY,
                        "weights at [%llu, %llu) are not exactly covered by hashed chunks",
                        (unsigned long long)lo, (unsigned long long)hi);
    return OCC_OK;
}

static void node_weight_range(const occ_model *m, const occ_node *n, uint64_t *lo, uint64_t *hi)
{
    *lo = UINT64_MAX;
    *hi = 0;
    for (uint32_t k = 0; k < n->n_inputs; k++) {
        const occ_tensor *t = occ_ops_in(m, n, k);
        if (!t || t->kind != OCC_TENSOR_WEIGHT)
            continue;
        if (t->data_offset < *lo)
            *lo = t->data_offset;
        if (t->data_offset + t->size > *hi)
            *hi = t->data_offset + t->size;
    }
    if (*hi == 0)
        *lo = 0;
}

static int blocked16(const dnnl_memory_desc_t *md)
{
    return md->format_kind == dnnl_blocked && md->format_desc.blocking.inner_nblks == 1 &&
           md->format_desc.blocking.inner_blks[0] == 16 &&
           md->format_desc.blocking.inner_idxs[0] == 1;
}

/* Does a part [o0, o1) use the same kernel as the whole layer (so that it
 * computes bit for bit what the whole layer would)? */
static int part_matches(occ_op_prep *p, int64_t o0, int64_t o1, const char *impl)
{
    void *st = NULL;
    occ_error e2 = {0};
    int ob = p->out_blocked;
    dnnl_memory_desc_t omd = p->out_md;
    int ok = occ_conv_part_prepare(p, o0, o1, &st, &e2) == OCC_OK;
    if (ok) {
        occ_conv_info in;
        occ_conv_part_info(st, &in);
        ok = !in.reorders_input && strcmp(in.impl, impl) == 0;
    }
    occ_conv_part_destroy(st);
    p->out_blocked = ob;
    p->out_md = omd;
    return ok;
}

/* Splits a prepared Conv by output channels into parts whose blobs are at
 * most eng->seg_max bytes (multiples of 16 channels for a blocked output),
 * each part using the whole layer's kernel. oneDNN picks its Winograd
 * variant by the channel count, so the part size is searched downwards
 * for one that keeps the variant; if none does, the layer switches to
 * direct convolution (whose parts match) - numerically a different but
 * equally valid summation order, noted in docs/streaming.md. */
static occ_status split_conv(occ_engine *eng, step *s, occ_op_prep *p, occ_error *e)
{
    const occ_model *m = eng->m;
    occ_conv_info full;
    occ_conv_part_info(s->state, &full);
    const occ_tensor *x = occ_ops_in(m, p->n, 0), *w = occ_ops_in(m, p->n, 1);
    int64_t mch = w->dims[0];
    int64_t group = 1;
    const occ_attr *ga = occ_ops_attr(p->n, "group");
    if (ga && ga->type == OCC_ATTR_INT)
        group = ga->i;
    int ob = p->out_blocked;
    dnnl_memory_desc_t omd = p->out_md;
    /* grouped: only 1-D (plain), at group boundaries (conv.c) */
    int64_t gran = ob ? 16 : group > 1 ? mch / group : 1, per = 0;
    /* a grouped 1-D part reorders only its own groups' input: no extra work */
    const int g1d = group > 1 && x->ndim == 3 && !ob;
    int ok = full.blob_size > eng->seg_max && x->dims[0] == 1 && (group == 1 || g1d) &&
             (!full.reorders_input || g1d) && (!ob || blocked16(&p->out_md));
    int forced = 0;
    for (int pass = 0; ok && pass < 3 && !per; pass++) {
        uint64_t bpc = full.blob_size / (uint64_t)mch + 1;
        int64_t base = (int64_t)(eng->seg_max / bpc) / gran * gran;
        /* parts of a multiple of 32 channels: oneDNN's direct kernels block
         * output channels by 32/64 (VGG-16's 256-channel 56x56 layers in
         * 112-channel parts took 41 ms, in 96-channel parts 32) */
        if (ob && base >= 32)
            base = base / 32 * 32;
        if (base < gran)
            base = gran;
        if (base >= mch)
            break;
        char impl[64];
        snprintf(impl, sizeof impl, "%s", full.impl);
        if (pass == 2) {
            /* nothing keeps the kernel: split anyway (fits the budget; the
             * parts may sum in another order) */
            per = base;
            forced = 1;
            break;
        }
        for (int64_t c = base, tries = 0; c >= gran && tries < 6; c -= gran, tries++) {
            int64_t last0 = (mch - 1) / c * c;
            if (part_matches(p, 0, c, impl) && (last0 == 0 || part_matches(p, last0, mch, impl))) {
                per = c;
                break;
            }
        }
        if (!per && pass == 0 && strstr(impl, "wino")) {
            /* no part size keeps the Winograd variant: direct for this layer */
            void *d = NULL;
            p->no_winograd = 1;
            occ_status st = occ_conv_part_prepare(p, 0, 0, &d, e);
            p->no_winograd = 0;
            if (st)
                return st;
            s->v->destroy(s->state);
            s->state = d;
            occ_conv_part_info(s->state, &full);
            p->out_blocked = ob;
            p->out_md = omd;
        }
    }
    uint32_t np = per ? (uint32_t)((mch + per - 1) / per) : 1;
    s->parts = calloc(np, sizeof *s->parts);
    if (!s->parts)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    s->n_parts = np;
    s->work = full.scratch_size;
    if (np == 1) {
        s->parts[0] = s->state;
        s->state = NULL;
        return OCC_OK;
    }
    s->work = 0;
    for (uint32_t i = 0; i < np; i++) {
        int64_t o0 = (int64_t)i * per, o1 = o0 + per < mch ? o0 + per : mch;
        occ_status st = occ_conv_part_prepare(p, o0, o1, &s->parts[i], e);
        if (st)
            return st;
        occ_conv_info in;
        occ_conv_part_info(s->parts[i], &in);
        /* (a grouped 1-D part has fewer groups: oneDNN may pick another
         * kernel for it; its sums stay per output channel) */
        if ((in.reorders_input && !g1d) || (!forced && !g1d && strcmp(in.impl, full.impl) != 0)) {
            for (uint32_t k = 0; k <= i; k++)
                occ_conv_part_destroy(s->parts[k]);
            s->parts[0] = s->state;
            s->state = NULL;
            s->n_parts = 1;
            s->work = full.scratch_size;
            p->out_blocked = ob;
            p->out_md = omd;
            return OCC_OK;
        }
        if (in.scratch_size > s->work)
            s->work = in.scratch_size;
    }
    p->out_blocked = ob;
    p->out_md = omd;
    s->v->destroy(s->state);
    s->state = NULL;
    return OCC_OK;
}

/* Gemm with B = weights [N, K] (transB) and C absent or a weight: split by
 * output columns into rows of B of at most seg_max bytes. */
static occ_status split_gemm(occ_engine *eng, step *s, const occ_node *n, occ_error *e)
{
    const occ_model *m = eng->m;
    int64_t ncols = 0, k = 0;
    const occ_tensor *a = occ_ops_in(m, n, 0), *b = occ_ops_in(m, n, 1),
                     *c = occ_ops_in(m, n, 2);
    int ok = occ_gemm_splittable(s->state, &ncols, &k) && a->kind != OCC_TENSOR_WEIGHT &&
             b->kind == OCC_TENSOR_WEIGHT && (!c || c->kind == OCC_TENSOR_WEIGHT);
    if (!ok)
        return OCC_OK; /* stays K_GENERIC */
    s->kind = K_GEMM;
    s->gemm_c_full = c && !(c->ndim >= 1 && c->dims[c->ndim - 1] == ncols && ncols > 1);
    uint64_t rowb = (uint64_t)k * 4u;
    /* a Gemm's pieces cost nothing to split (its columns are independent and
     * keep the kernel), so they are small: a small window slot, and a
     * streamed piece is still in cache when compute reads it */
    uint64_t cap = eng->seg_max < GEMM_SEG_MAX ? eng->seg_max : GEMM_SEG_MAX;
    int64_t per = (int64_t)(cap / (rowb + 4u));
    if (per < 1)
        per = 1;
    if (per > ncols)
        per = ncols;
    uint32_t np = (uint32_t)((ncols + per - 1) / per);
    s->cols = calloc(np + 1u, sizeof *s->cols);
    if (!s->cols)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    for (uint32_t i = 0; i <= np; i++)
        s->cols[i] = (int64_t)i * per < ncols ? (int64_t)i * per : ncols;
    s->n_parts = np;
    return OCC_OK;
}
/* MatMul with a 2-D weight B (a transformer's Linear) and Gather of a weight
 * table by ids from the request (an embedding): split into contiguous row
 * pieces of B / of the table of at most seg_max bytes (GEMM_SEG_MAX like a
 * Gemm's pieces). A MatMul's pieces are pieces of K whose partial products
 * are summed in Y; a Gather's pieces are all read whatever the ids. */
static occ_status split_rows(occ_engine *eng, step *s, const occ_node *n, int gather,
                             occ_error *e)
{
    const occ_model *m = eng->m;
    const occ_tensor *a = occ_ops_in(m, n, 0), *b = occ_ops_in(m, n, 1);
    int64_t rows = 0, rowb = 0;
    int ok;
    if (gather)
        ok = a->kind == OCC_TENSOR_WEIGHT && b->kind != OCC_TENSOR_WEIGHT &&
             occ_gather_rows_splittable(s->state, &rows, &rowb);
    else {
        ok = a->kind != OCC_TENSOR_WEIGHT && b->kind == OCC_TENSOR_WEIGHT && b->ndim == 2 &&
             occ_matmul_splittable(s->state, &rows);
        rowb = rows ? (int64_t)(b->size / (uint64_t)rows) : 0;
    }
    if (!ok || rows < 1 || rowb < 1)
        return OCC_OK; /* stays K_GENERIC */
    /* pieces as large as the plan allows (seg_max: budget/8..32, whole in
     * native mode): a piece of K re-reads and re-writes all of Y, so small
     * pieces cost (BERT's FFN in 1 MiB pieces: 9 passes over a 1.5 MB Y) */
    uint64_t cap = eng->seg_max;
    int64_t per = (int64_t)(cap / (uint64_t)rowb);
    if (per < 1)
        per = 1;
    if (per > rows)
        per = rows;
    uint32_t np = (uint32_t)((rows + per - 1) / per);
    s->cols = calloc(np + 1u, sizeof *s->cols);
    if (!s->cols)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    for (uint32_t i = 0; i <= np; i++)
        s->cols[i] = (int64_t)i * per < rows ? (int64_t)i * per : rows;
    s->kind = gather ? K_GATHER : K_MATMUL;
    s->row_bytes = (uint64_t)rowb;
    s->n_parts = np;
    return OCC_OK;
}

static occ_status build_steps(occ_engine *eng, vreader *vr, occ_error *e)
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
        const void *w[OCC_MAX_NODE_IO];
        const dnnl_memory_desc_t *in_md[OCC_MAX_NODE_IO];
        s->node = i;
        s->v = v;
        s->sum_src = -1;
        uint8_t *wtmp = NULL;
        uint64_t wtmp_size = 0;
        int is_conv = strcmp(n->op, "Conv") == 0, is_gemm = strcmp(n->op, "Gemm") == 0;
        int is_matmul = strcmp(n->op, "MatMul") == 0, is_gather = strcmp(n->op, "Gather") == 0;
        node_weight_range(m, n, &s->wlo, &s->whi);
        for (uint32_t k = 0; k < n->n_inputs; k++)
            w[k] = NULL;
        if (s->whi > s->wlo && !is_conv && !is_gemm && !is_matmul && !is_gather) {
            /* ops that may read their weights at prepare get them now
             * (verified); Conv, Gemm, MatMul and Gather are prepared from
             * shapes alone (a table of 94 MB must never be whole in the
             * enclave at once) */
            wtmp_size = s->whi - s->wlo;
            wtmp = emem_alloc(&eng->mem, wtmp_size, e);
            if (!wtmp) {
                st = occ_fail(e, OCC_ERR_NOMEM, "out of memory for %llu bytes of weights",
                              (unsigned long long)wtmp_size);
                goto node_fail;
            }
            if ((st = vread(vr, s->wlo, s->whi, wtmp, e)))
                goto node_fail;
            for (uint32_t k = 0; k < n->n_inputs; k++) {
                const occ_tensor *t = occ_ops_in(m, n, k);
                if (t && t->kind == OCC_TENSOR_WEIGHT)
                    w[k] = wtmp + (t->data_offset - s->wlo);
            }
        }
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
    prepare:
        for (;;) {
            p.out_blocked = 0;
            st = is_conv ? occ_conv_part_prepare(&p, 0, 0, &s->state, e)
                         : v->prepare(&p, &s->state, e);
            if (!st && is_conv && eng->mode == OCC_MODE_OCCLUMENCY && !p.no_winograd) {
                /* a Winograd working buffer too large for the budget: direct */
                occ_conv_info ci;
                occ_conv_part_info(s->state, &ci);
                /* (a layer to be split is judged by its parts' buffers) */
                if (ci.blob_size <= eng->seg_max && ci.scratch_size > eng->budget / eng->wino_div) {
                    v->destroy(s->state);
                    s->state = NULL;
                    p.no_winograd = 1;
                    continue;
                }
            }
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
        if (is_conv) {
            s->kind = K_CONV;
            if ((st = split_conv(eng, s, &p, e)))
                goto node_fail;
            if (eng->mode == OCC_MODE_OCCLUMENCY && !p.no_winograd &&
                s->work > eng->budget / eng->wino_div) {
                /* even its parts' Winograd working buffers are too large */
                for (uint32_t k = 0; k < s->n_parts; k++)
                    occ_conv_part_destroy(s->parts[k]);
                free(s->parts);
                s->parts = NULL;
                s->n_parts = 0;
                s->work = 0;
                if (s->state)
                    v->destroy(s->state);
                s->state = NULL;
                p.no_winograd = 1;
                goto prepare;
            }
        } else if (s->whi > s->wlo && !(v->flags & OCC_OPF_COPIES_WEIGHTS)) {
            s->kind = K_GENERIC;
            s->n_parts = 1;
            if (is_gemm && (st = split_gemm(eng, s, n, e)))
                goto node_fail;
            /* native mode makes no access-pattern claim (docs/security.md):
             * its Gather reads the rows named */
            if ((is_matmul || (is_gather && !occ_engine_gather_direct &&
                               eng->mode != OCC_MODE_NATIVE)) &&
                (st = split_rows(eng, s, n, is_gather, e)))
                goto node_fail;
        }
        emem_free(&eng->mem, wtmp, wtmp_size);
        wtmp = NULL;
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
        for (uint32_t k = 0; k < n->n_inputs; k++) {
            const occ_tensor *t = occ_ops_in(m, n, k);
            if (t && t->kind == OCC_TENSOR_WEIGHT)
                eng->weights_size += t->size;
        }
        eng->node_step[i] = (int32_t)eng->n_steps;
        eng->n_steps++;
        continue;
    node_fail:
        emem_free(&eng->mem, wtmp, wtmp_size);
        if (st)
            eng->n_steps++; /* so that free() destroys what was prepared */
        occ_error_prefix(e, "node %s (%s)", nm(n->name), nm(n->op));
    }
    free(fused);
    return st;
}

/* ---- segments: the unit of residency and streaming ---- */

static occ_status make_segments(occ_engine *eng, occ_error *e)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < eng->n_steps; i++)
        n += eng->steps[i].kind == K_NONE ? 0 : eng->steps[i].n_parts;
    eng->segs = calloc(n + 1u, sizeof *eng->segs);
    if (!eng->segs)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    const occ_model *m = eng->m;
    for (uint32_t i = 0; i < eng->n_steps; i++) {
        step *s = &eng->steps[i];
        if (s->kind == K_NONE)
            continue;
        s->first_seg = eng->n_segs;
        const occ_node *nd = &m->nodes[s->node];
        for (uint32_t p = 0; p < s->n_parts; p++) {
            seg *g = &eng->segs[eng->n_segs++];
            g->step = i;
            g->part = p;
            if (s->kind == K_CONV) {
                occ_conv_info in;
                occ_conv_part_info(s->parts[p], &in);
                g->size = in.blob_size;
            } else if (s->kind == K_GEMM) {
                const occ_tensor *b = occ_ops_in(m, nd, 1), *c = occ_ops_in(m, nd, 2);
                int64_t nc = s->cols[p + 1] - s->cols[p];
                uint64_t k = b->size / 4u / (uint64_t)b->dims[0];
                g->size = ((uint64_t)nc * k * 4u + 63u) & ~UINT64_C(63);
                if (c)
                    g->size += s->gemm_c_full ? c->size : (uint64_t)nc * 4u;
            } else if (s->kind == K_MATMUL || s->kind == K_GATHER) {
                g->size = ((uint64_t)(s->cols[p + 1] - s->cols[p]) * s->row_bytes + 63u) &
                          ~UINT64_C(63);
            } else {
                g->size = s->whi - s->wlo;
            }
        }
    }
    return OCC_OK;
}

/* Plain weight bytes a segment is built from (conv: rows of W and bias). */
static uint64_t seg_plain_size(const occ_engine *eng, const seg *g)
{
    const step *s = &eng->steps[g->step];
    if (s->kind != K_CONV)
        return 0; /* read straight into the blob */
    const occ_node *nd = &eng->m->nodes[s->node];
    const occ_tensor *w = occ_ops_in(eng->m, nd, 1), *b = occ_ops_in(eng->m, nd, 2);
    occ_conv_info in;
    occ_conv_part_info(s->parts[g->part], &in);
    uint64_t rowb = w->size / (uint64_t)w->dims[0];
    uint64_t sz = (((uint64_t)(in.o1 - in.o0) * rowb) + 63u) & ~UINT64_C(63);
    if (b)
        sz += (uint64_t)(in.o1 - in.o0) * 4u;
    return sz;
}

/* Builds segment g's plaintext into dst from verified pack bytes. */
static occ_status build_seg(occ_engine *eng, vreader *vr, const seg *g, uint8_t *plain,
                            uint8_t *dst, occ_error *e)
{
    const occ_model *m = eng->m;
    const step *s = &eng->steps[g->step];
    const occ_node *nd = &m->nodes[s->node];
    occ_status st;
    if (s->kind == K_CONV) {
        const occ_tensor *w = occ_ops_in(m, nd, 1), *b = occ_ops_in(m, nd, 2);
        occ_conv_info in;
        occ_conv_part_info(s->parts[g->part], &in);
        uint64_t rowb = w->size / (uint64_t)w->dims[0];
        uint64_t wb = (uint64_t)(in.o1 - in.o0) * rowb, boff = (wb + 63u) & ~UINT64_C(63);
        if ((st = vread(vr, w->data_offset + (uint64_t)in.o0 * rowb,
                        w->data_offset + (uint64_t)in.o1 * rowb, plain, e)))
            return st;
        if (b && (st = vread(vr, b->data_offset + (uint64_t)in.o0 * 4u,
                             b->data_offset + (uint64_t)in.o1 * 4u, plain + boff, e)))
            return st;
        return occ_conv_part_pack(s->parts[g->part], eng->deng, (const float *)plain,
                                  b ? (const float *)(plain + boff) : NULL, dst, e);
    }
    if (s->kind == K_GEMM) {
        const occ_tensor *b = occ_ops_in(m, nd, 1), *c = occ_ops_in(m, nd, 2);
        int64_t j0 = s->cols[g->part], j1 = s->cols[g->part + 1];
        uint64_t rowb = b->size / (uint64_t)b->dims[0];
        uint64_t bb = (uint64_t)(j1 - j0) * rowb, coff = (bb + 63u) & ~UINT64_C(63);
        if ((st = vread(vr, b->data_offset + (uint64_t)j0 * rowb,
                        b->data_offset + (uint64_t)j1 * rowb, dst, e)))
            return st;
        if (c) {
            if (s->gemm_c_full)
                st = vread(vr, c->data_offset, c->data_offset + c->size, dst + coff, e);
            else
                st = vread(vr, c->data_offset + (uint64_t)j0 * 4u,
                           c->data_offset + (uint64_t)j1 * 4u, dst + coff, e);
        }
        return st;
    }
    if (s->kind == K_MATMUL || s->kind == K_GATHER) {
        const occ_tensor *w = occ_ops_in(m, nd, s->kind == K_MATMUL ? 1 : 0);
        uint64_t r0 = (uint64_t)s->cols[g->part], r1 = (uint64_t)s->cols[g->part + 1];
        return vread(vr, w->data_offset + r0 * s->row_bytes, w->data_offset + r1 * s->row_bytes,
                     dst, e);
    }
    return vread(vr, s->wlo, s->whi, dst, e);
}

/* ---- the memory plan ---- */

static occ_status collect_buffers(occ_engine *eng, occ_error *e)
{
    const occ_model *m = eng->m;
    for (uint32_t i = 0; i < m->n_outputs; i++) {
        trt *t = &eng->t[m->outputs[i]];
        if (t->blocked)
            t->need_plain = 1;
    }
    eng->reqs = calloc(2u * m->n_tensors + 1u, sizeof *eng->reqs);
    if (!eng->reqs)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    for (uint32_t t = 0; t < m->n_tensors; t++) {
        trt *tt = &eng->t[t];
        tt->buf = tt->plain_buf = -1;
        if (!tt->live || tt->virt || m->tensors[t].kind == OCC_TENSOR_WEIGHT)
            continue;
        uint32_t first = tt->producer_node >= 0 ? (uint32_t)eng->node_step[tt->producer_node] + 1u : 0;
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
    /* first/last here are step + 1 (0 = before the first step: graph inputs);
     * the planner gets them shifted back (-1 = an input) */
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
                    (uint32_t)eng->node_step[i] + 1u > last)
                    last = (uint32_t)eng->node_step[i] + 1u;
        }
        occ_buf_req *r = &eng->reqs[eng->t[root_of(eng, (int32_t)t)].buf];
        if (last > r->last)
            r->last = last;
        if (tt->plain_buf >= 0 && last > eng->reqs[tt->plain_buf].last)
            eng->reqs[tt->plain_buf].last = last;
    }
    for (uint32_t r = 0; r < eng->n_reqs; r++) {
        if (eng->reqs[r].last < eng->reqs[r].first)
            eng->reqs[r].last = eng->reqs[r].first;
        if (eng->reqs[r].last == 0)
            eng->reqs[r].last = 1;
    }
    return OCC_OK;
}

static uint32_t window_slots(const occ_engine *eng)
{
    return (uint32_t)(eng->loader_threads + 2 > 4 ? eng->loader_threads + 2 : 4);
}

/* The run's iteration at which step i runs for image b (see split_k). */
static uint32_t iteration(const occ_engine *eng, uint32_t i, uint32_t b)
{
    uint32_t K = eng->split_k;
    return !K ? i : i < K ? b * K + i : eng->batch * K + (i - K);
}

/* The step iteration it runs, for a run of n images split at K (the
 * inverse of iteration()). */
static uint32_t step_of(uint32_t K, uint32_t n, uint32_t it)
{
    return !K ? it : it < n * K ? it % K : K + (it - n * K);
}

/* Batch > 1 in occlumency mode, two ways to run (engine_create plans both
 * and keeps the one that streams fewer bytes per batch):
 *  - split (split_all = 0): the steps before the first fully connected layer
 *    run image by image (one image's feature maps at a time: VGG-16's
 *    224x224 maps for 8 images would be 196 MiB), the rest for the whole
 *    batch at once, so that each of their streamed segments - the ones
 *    compute cannot hide - is copied and checked once for all the images;
 *  - all batched (split_all = 1): every step for the whole batch, so every
 *    streamed segment is copied and checked once per batch, at the price of
 *    the batch's feature maps (ResNet-50 at 93M, batch 4: 17.5 MiB streamed
 *    per image instead of 61). */
static uint32_t choose_split(const occ_engine *eng, int split_all)
{
    if (eng->mode != OCC_MODE_OCCLUMENCY || eng->batch < 2 || split_all)
        return 0;
    uint32_t k = 0;
    while (k < eng->n_steps && eng->steps[k].kind != K_GEMM)
        k++;
    return k;
}

static occ_status make_plan(occ_engine *eng, occ_error *e)
{
    const occ_model *m = eng->m;
    occ_status st;
    uint32_t nb = eng->n_reqs * eng->batch;
    /* occlumency: each step's working buffer is an arena buffer alive during
     * that step only (the arena's peak and the largest working buffers fall
     * on different layers), after the nb feature-map buffers */
    int work_in_arena = eng->mode == OCC_MODE_OCCLUMENCY;
    /* The plan's timeline is the run's iterations: with split_k = k, image
     * 0's steps 0..k-1, image 1's, ..., then steps k.. for the whole batch
     * (a feature map of the per-image part lives only while its image runs) */
    const uint32_t K = eng->split_k, N = eng->batch;
    const uint32_t n_it = K ? N * K + (eng->n_steps - K) : eng->n_steps;
    uint32_t nw = 0;
    for (uint32_t i = 0; work_in_arena && i < eng->n_steps; i++)
        nw += eng->steps[i].work > 0 ? (K && i < K ? N : 1) : 0;
    occ_plan_buffer *bufs = calloc(nb + nw + 1u, sizeof *bufs);
    occ_plan_step *steps = calloc(n_it + 1u, sizeof *steps);
    uint64_t *csz = calloc(eng->n_segs + 1u, sizeof *csz);
    uint64_t *prio = calloc(eng->n_segs + 1u, sizeof *prio);
    if (!bufs || !steps || !csz || !prio) {
        st = occ_fail(e, OCC_ERR_NOMEM, "out of memory");
        goto out;
    }
    int32_t last_step = eng->n_steps ? (int32_t)eng->n_steps - 1 : 0;
    for (uint32_t b = 0; b < eng->batch; b++)
        for (uint32_t r = 0; r < eng->n_reqs; r++) {
            occ_plan_buffer *pb = &bufs[b * eng->n_reqs + r];
            int to_end = eng->reqs[r].last >= eng->n_steps; /* a graph output */
            pb->size = eng->reqs[r].size;
            pb->first = (int32_t)eng->reqs[r].first - 1;
            pb->last = (int32_t)eng->reqs[r].last - 1;
            if (pb->last > last_step)
                pb->last = last_step;
            if (pb->last < 0)
                pb->last = 0;
            if (pb->first > pb->last)
                pb->first = pb->last;
            if (K) {
                /* an input is written just before its image's first step */
                pb->first = pb->first < 0 ? (int32_t)(b * K) - 1 : (int32_t)iteration(eng, (uint32_t)pb->first, b);
                pb->last = to_end ? (int32_t)n_it - 1 : (int32_t)iteration(eng, (uint32_t)pb->last, b);
            }
        }
    for (uint32_t it = 0, k = nb; it < n_it; it++) {
        uint32_t i = step_of(K, N, it);
        steps[it].part_size = eng->steps[i].work;
        steps[it].parts_max = 1;
        if (work_in_arena && eng->steps[i].work) {
            bufs[k++] = (occ_plan_buffer){eng->steps[i].work, (int32_t)it, (int32_t)it};
            steps[it].part_size = 0;
        }
        if (eng->steps[i].kind != K_NONE) {
            steps[it].first_chunk = eng->steps[i].first_seg;
            steps[it].n_chunks = eng->steps[i].n_parts;
        }
    }
    for (uint32_t g = 0; g < eng->n_segs; g++)
        csz[g] = emem_round(&eng->mem, eng->segs[g].size); /* as the allocator rounds */
    /* Resident first: the segments of steps with the most weight bytes per
     * FLOP (fully connected layers; the deepest convolutions). Streaming a
     * conv's weights hides behind its compute on the other core; a Gemm at
     * batch 1 does two FLOPs per weight and cannot hide anything. */
    for (uint32_t i = 0; i < eng->n_steps; i++) {
        const step *s = &eng->steps[i];
        if (s->kind == K_NONE)
            continue;
        uint64_t w = 0;
        for (uint32_t p = 0; p < s->n_parts; p++)
            w += eng->segs[s->first_seg + p].size;
        double f = (double)occ_op_flops(m, &m->nodes[s->node]) * (K && i < K ? 1 : N) + 1.0;
        double pr = (double)w / f * 1e6;
        uint64_t v = pr > 1e18 ? UINT64_C(1000000000000000000) : (uint64_t)pr;
        for (uint32_t p = 0; p < s->n_parts; p++)
            prio[s->first_seg + p] = v;
    }
    uint64_t budget = eng->mode == OCC_MODE_OCCLUMENCY ? eng->budget : (UINT64_MAX >> 3);
    /* The arena, the working buffer and the load buffers are single
     * allocations the plan sizes to 64 bytes; a coarser provider (EPC pages)
     * rounds each up: keep that much aside. */
    const uint64_t gran = emem_round(&eng->mem, 1);
    const uint64_t reserve = gran > 64 ? 6 * gran : 0;
    if (budget <= eng->fixed_bytes + reserve) {
        st = occ_fail(e, OCC_ERR_BUDGET,
                      "does not fit the enclave memory budget: needs at least %llu bytes of "
                      "operator state alone, %llu available",
                      (unsigned long long)eng->fixed_bytes, (unsigned long long)budget);
        goto out;
    }
    occ_plan_input in = {.n_buffers = eng->n_steps ? nb + nw : 0,
                         .buffers = bufs,
                         .n_steps = n_it,
                         .steps = steps,
                         .n_chunks = eng->n_segs,
                         .chunk_sizes = csz,
                         .budget = budget - eng->fixed_bytes - reserve,
                         .window_slots = window_slots(eng),
                         .alignment = 64,
                         .strategy = eng->mode == OCC_MODE_BASELINE ? OCC_PLAN_NAIVE
                                                                    : OCC_PLAN_GREEDY_BY_SIZE,
                         .chunk_priority = prio};
    /* creating the engine needs, besides the resident weights, a chunk
     * buffer and room to build one segment; those use memory the arena,
     * working buffer and window take later, so plan again (with fewer
     * resident bytes) until that room exists */
    uint64_t load_tmp = 0, max_chunk = 0, max_plain = 0;
    for (uint32_t i = 0; i < m->n_chunks; i++)
        if (m->chunks[i].size > max_chunk)
            max_chunk = m->chunks[i].size;
    for (uint32_t g = 0; g < eng->n_segs; g++) {
        uint64_t p = seg_plain_size(eng, &eng->segs[g]);
        if (p > max_plain)
            max_plain = p;
    }
    const uint64_t avail0 = in.budget;
    for (int attempt = 0; attempt < 4; attempt++) {
        int32_t bn = -1;
        occ_plan_free(&eng->plan);
        st = occ_plan_make(&in, &eng->plan, &bn, e);
        if (st == OCC_ERR_BUDGET) {
            /* name the bottleneck layer */
            if (bn >= 0 && (uint32_t)bn < n_it) {
                bn = (int32_t)step_of(K, N, (uint32_t)bn);
                const occ_node *nd = &m->nodes[eng->steps[bn].node];
                occ_error_prefix(e, "layer %s (%s, step %d)", nm(nd->name), nm(nd->op), bn);
            }
            if (eng->fixed_bytes)
                occ_error_prefix(e, "(plus %llu bytes of operator state)",
                                 (unsigned long long)eng->fixed_bytes);
            goto out;
        }
        if (st)
            goto out;
        if ((st = occ_plan_check(&in, &eng->plan, e)))
            goto out;
        /* while loading, the resident segments are allocated and the
         * chunk buffer, a segment's plain rows and (when something streams)
         * one segment to seal are held besides them */
        uint64_t max_streamed = 0;
        for (uint32_t g = 0; g < eng->n_segs; g++)
            if (!eng->plan.resident[g] && eng->segs[g].size > max_streamed)
                max_streamed = eng->segs[g].size;
        load_tmp = max_chunk + max_plain + (max_streamed ? max_streamed + 16u : 0) + 3 * gran;
        uint64_t room = avail0 - eng->plan.resident_size;
        if (load_tmp <= room || eng->mode != OCC_MODE_OCCLUMENCY)
            break;
        uint64_t shrink = load_tmp - room;
        if (in.budget <= shrink + eng->plan.arena_size) {
            st = occ_fail(e, OCC_ERR_BUDGET,
                          "does not fit the enclave memory budget: loading needs %llu bytes "
                          "besides the plan's %llu, %llu available",
                          (unsigned long long)load_tmp, (unsigned long long)eng->plan.peak,
                          (unsigned long long)eng->budget);
            goto out;
        }
        in.budget -= shrink;
        st = OCC_ERR_BUDGET;
    }
    if (st) {
        st = occ_fail(e, OCC_ERR_BUDGET,
                      "does not fit the enclave memory budget: no room to load the weights "
                      "within %llu bytes",
                      (unsigned long long)eng->budget);
        goto out;
    }
    eng->planned = 1;
    eng->arena_size = eng->plan.arena_size;
    eng->scratch_size = eng->plan.work_size;
    uint32_t slots = window_slots(eng);
    eng->window_slot = eng->plan.window_size ? eng->plan.window_size / slots : 0;
    eng->offsets = calloc(nb + 1u, sizeof *eng->offsets);
    if (!eng->offsets) {
        st = occ_fail(e, OCC_ERR_NOMEM, "out of memory");
        goto out;
    }
    memcpy(eng->offsets, eng->plan.offsets, (size_t)nb * sizeof *eng->offsets);
    if (nw) {
        eng->work_off = calloc(n_it, sizeof *eng->work_off);
        if (!eng->work_off) {
            st = occ_fail(e, OCC_ERR_NOMEM, "out of memory");
            goto out;
        }
        for (uint32_t it = 0, k = nb; it < n_it; it++)
            if (eng->steps[step_of(K, N, it)].work)
                eng->work_off[it] = eng->plan.offsets[k++];
    }
    for (uint32_t g = 0; g < eng->n_segs; g++)
        eng->segs[g].streamed = !eng->plan.resident[g];
    /* per-layer summary for occ inspect --plan */
    eng->layers = calloc(eng->n_steps + 1u, sizeof *eng->layers);
    if (!eng->layers) {
        st = occ_fail(e, OCC_ERR_NOMEM, "out of memory");
        goto out;
    }
    eng->n_layers = eng->n_steps;
    for (uint32_t i = 0; i < eng->n_steps; i++) {
        occ_plan_layer *L = &eng->layers[i];
        const step *s = &eng->steps[i];
        L->name = nm(m->nodes[s->node].name);
        L->op = nm(m->nodes[s->node].op);
        L->work = s->work;
        L->parts = s->kind == K_NONE ? 1 : s->n_parts;
        int32_t at = K ? (int32_t)iteration(eng, i, 0) : (int32_t)i; /* image 0's */
        for (uint32_t b = 0; b < nb; b++)
            if (bufs[b].first <= at && at <= bufs[b].last)
                L->act_live += bufs[b].size;
        for (uint32_t p = 0; s->kind != K_NONE && p < s->n_parts; p++) {
            const seg *g = &eng->segs[s->first_seg + p];
            if (g->streamed) {
                L->seg_streamed++;
                L->bytes_streamed += g->size;
            } else {
                L->seg_resident++;
                L->bytes_resident += g->size;
            }
        }
    }
    st = OCC_OK;
out:
    free(bufs);
    free(steps);
    free(csz);
    free(prio);
    return st;
}
/* ---- loading: verify every chunk once, keep or seal every segment ---- */

static occ_status load_weights(occ_engine *eng, vreader *vr, occ_error *e)
{
    occ_status st = OCC_OK;
    uint64_t max_plain = 0, max_seg = 0, stash = 0;
    for (uint32_t g = 0; g < eng->n_segs; g++) {
        seg *sg = &eng->segs[g];
        uint64_t p = seg_plain_size(eng, sg);
        if (p > max_plain)
            max_plain = p;
        if (sg->streamed) {
            if (sg->size > max_seg)
                max_seg = sg->size;
            sg->ct_off = stash;
            stash += sg->size; /* contiguous: every stash byte is ciphertext */
        }
    }
    /* resident segments first: they are planned memory */
    for (uint32_t g = 0; g < eng->n_segs; g++) {
        seg *sg = &eng->segs[g];
        if (sg->streamed)
            continue;
        if (!(sg->res = emem_alloc(&eng->mem, sg->size, e)))
            return occ_fail(e, OCC_ERR_NOMEM, "out of memory for %llu bytes of weights",
                            (unsigned long long)sg->size);
        eng->weights_size += sg->size;
    }
    uint8_t *plain = max_plain ? emem_alloc(&eng->mem, max_plain, e) : NULL;
    uint8_t *tmp = max_seg ? emem_alloc(&eng->mem, max_seg + 16u, e) : NULL;
    if ((max_plain && !plain) || (max_seg && !tmp)) {
        st = occ_fail(e, OCC_ERR_NOMEM, "out of memory for the load buffers");
        goto out;
    }
    if (stash) {
        eng->stash = untrusted_alloc(stash);
        eng->stash_size = stash;
        eng->key = emem_alloc(&eng->mem, 32, e);
        if (!eng->stash || !eng->key) {
            st = occ_fail(e, OCC_ERR_NOMEM, "out of memory for the weight stash");
            goto out;
        }
        if (RAND_bytes(eng->key, 32) != 1) {
            st = occ_fail(e, OCC_ERR_INTERNAL, "no randomness for the weight key");
            goto out;
        }
    }
    if (stash && !eng->encrypted && !(eng->mac_alg = EVP_MAC_fetch(NULL, "POLY1305", NULL))) {
        st = occ_fail(e, OCC_ERR_INTERNAL, "Poly1305 is not available");
        goto out;
    }
    segmac *mc = stash ? occ_eng_segmac_new(eng) : NULL;
    if (stash && !mc) {
        st = occ_fail(e, OCC_ERR_INTERNAL, "segment MAC setup failed");
        goto out;
    }
    for (uint32_t g = 0; g < eng->n_segs && !st; g++) {
        seg *sg = &eng->segs[g];
        uint8_t *dst = sg->streamed ? tmp : sg->res;
        if ((st = build_seg(eng, vr, sg, plain, dst, e))) {
            const occ_node *nd = &eng->m->nodes[eng->steps[sg->step].node];
            occ_error_prefix(e, "node %s (%s)", nm(nd->name), nm(nd->op));
            break;
        }
        if (sg->streamed)
            st = occ_eng_seal(eng, mc, g, tmp, sg->size, eng->stash + sg->ct_off, sg->tag, e);
    }
    occ_eng_segmac_free(mc);
out:
    if (tmp) {
        OPENSSL_cleanse(tmp, (size_t)max_seg);
        emem_free(&eng->mem, tmp, max_seg + 16u);
    }
    emem_free(&eng->mem, plain, max_plain);
    return st;
}

/* ---- memory for running ---- */

static occ_status alloc_run_memory(occ_engine *eng, occ_error *e)
{
    const occ_model *m = eng->m;
    occ_status st;
    eng->arena = eng->arena_size ? emem_alloc(&eng->mem, eng->arena_size, e) : NULL;
    eng->scratch = eng->scratch_size ? emem_alloc(&eng->mem, eng->scratch_size, e) : NULL;
    if ((eng->arena_size && !eng->arena) || (eng->scratch_size && !eng->scratch))
        return occ_fail(e, OCC_ERR_NOMEM, "out of enclave memory for activations");
    /* the run's sequence of streamed segments: with split_k, the per-image
     * steps' segments once per image, then the batched steps' once */
    eng->n_streamed = 0;
    for (uint32_t g = 0; g < eng->n_segs; g++)
        if (eng->segs[g].streamed)
            eng->n_streamed += eng->split_k && eng->segs[g].step < eng->split_k ? eng->batch : 1;
    if (eng->n_streamed) {
        ring *r = &eng->ring;
        eng->streamed = calloc(eng->n_streamed, sizeof *eng->streamed);
        r->slots = window_slots(eng);
        r->slot = calloc(r->slots, sizeof *r->slot);
        r->ready = calloc(r->slots, sizeof *r->ready);
        if (!eng->streamed || !r->slot || !r->ready)
            return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
        uint32_t k = 0;
        for (uint32_t b = 0; eng->split_k && b < eng->batch; b++)
            for (uint32_t g = 0; g < eng->n_segs; g++)
                if (eng->segs[g].streamed && eng->segs[g].step < eng->split_k)
                    eng->streamed[k++] = g;
        eng->n_streamed_img = eng->split_k ? k / eng->batch : 0;
        for (uint32_t g = 0; g < eng->n_segs; g++)
            if (eng->segs[g].streamed && eng->segs[g].step >= eng->split_k)
                eng->streamed[k++] = g;
        for (uint32_t i = 0; i < r->slots; i++)
            if (!(r->slot[i] = emem_alloc(&eng->mem, eng->window_slot, e)))
                return occ_fail(e, OCC_ERR_NOMEM, "out of enclave memory for the weight window");
            else /* touched now: at run the compute thread and the loaders
                  * fill slots concurrently, and first touches would then
                  * come in a timing-dependent order */
                memset(r->slot[i], 0, (size_t)eng->window_slot);
        if (!(eng->help_ctx = occ_eng_segmac_new(eng)))
            return occ_fail(e, OCC_ERR_INTERNAL, "segment MAC setup failed");
    }
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
            (st = occ_dnnl_mem(&tt->to, &pmd, eng->deng, NULL, e)))
            return st;
        eng->n_reorders++;
    }
    return OCC_OK;
}

static float *storage(const occ_engine *eng, int32_t t, uint32_t b)
{
    return (float *)(eng->arena +
                     eng->offsets[b * eng->n_reqs + (uint32_t)eng->t[root_of(eng, t)].buf]);
}

static float *plain_view(const occ_engine *eng, int32_t t, uint32_t b)
{
    if (eng->t[t].plain_buf >= 0)
        return (float *)(eng->arena + eng->offsets[b * eng->n_reqs + (uint32_t)eng->t[t].plain_buf]);
    return storage(eng, t, b);
}

/* ---- public API ---- */

static void set_threads(const occ_engine *eng)
{
    if (eng->threads > 0)
        omp_set_num_threads(eng->threads);
}

static occ_status engine_create1(const occ_model *m, const occ_engine_opts *opts, occ_read_fn read,
                                 void *read_ctx, int plan_only, int split_all, uint32_t seg_div,
                                 uint32_t wino_div, occ_engine **out, occ_error *e);

/* Bytes copied in and checked per run of a whole batch. */
static uint64_t streamed_per_run(const occ_engine *eng)
{
    uint64_t n = 0;
    for (uint32_t g = 0; g < eng->n_segs; g++)
        if (eng->segs[g].streamed)
            n += eng->segs[g].size *
                 (eng->split_k && eng->segs[g].step < eng->split_k ? eng->batch : 1);
    return n;
}

/* Occlumency: try large segments first (fewer, bigger pieces: fewer layers
 * split, kernels as in native), smaller ones when the window does not fit. */
static occ_status engine_create_divs(const occ_model *m, const occ_engine_opts *opts,
                                     occ_read_fn read, void *read_ctx, int plan_only, int split_all,
                                     occ_engine **out, occ_error *e)
{
    /* segment size = budget / d; Winograd kept while its scratchpad is
     * under budget / w. Winograd first (its working buffer is planned in the
     * arena), with smaller segments before giving it up: GoogLeNet at 32M
     * keeps its Winograd convolutions with 2 MiB segments */
    static const uint32_t divs[][2] = {{8, 2}, {16, 2}, {32, 2}, {8, 8}, {16, 8}, {32, 8}, {32, 32}};
    occ_status st = OCC_OK;
    for (size_t i = 0; i < sizeof divs / sizeof divs[0]; i++) {
        st = engine_create1(m, opts, read, read_ctx, plan_only, split_all, divs[i][0], divs[i][1],
                            out, e);
        if (st != OCC_ERR_BUDGET || !opts || opts->mode != OCC_MODE_OCCLUMENCY)
            break;
    }
    return st;
}

int occ_engine_batch_order = -1;
int occ_engine_gather_direct = 0;

static occ_status engine_create(const occ_model *m, const occ_engine_opts *opts, occ_read_fn read,
                                void *read_ctx, int plan_only, occ_engine **out, occ_error *e)
{
    int split_all = occ_engine_batch_order == 1;
    if (opts && opts->mode == OCC_MODE_OCCLUMENCY && opts->batch > 1 && occ_engine_batch_order < 0) {
        /* plan both ways (see choose_split); all batched when it fits and
         * streams no more */
        occ_engine *p[2] = {NULL, NULL};
        for (int sa = 0; sa < 2; sa++) {
            occ_error pe = {0};
            if (engine_create_divs(m, opts, read, read_ctx, 1, sa, &p[sa], &pe) != OCC_OK)
                p[sa] = NULL;
        }
        split_all = p[1] && (!p[0] || streamed_per_run(p[1]) <= streamed_per_run(p[0]));
        if (plan_only && out && p[split_all]) { /* occ inspect --plan: that plan is the answer */
            *out = p[split_all];
            occ_engine_free(p[!split_all]);
            return OCC_OK;
        }
        occ_engine_free(p[0]);
        occ_engine_free(p[1]);
    }
    return engine_create_divs(m, opts, read, read_ctx, plan_only, split_all, out, e);
}

/* Ends create's verified reads: the chunk buffer (an encrypted pack's
 * decrypted weights: wiped) and the chunk cipher with its key. */
static void vr_done(occ_engine *eng, vreader *vr)
{
    if (vr->cache && vr->wc)
        OPENSSL_cleanse(vr->cache, (size_t)vr->cache_cap);
    emem_free(&eng->mem, vr->cache, vr->cache_cap);
    vr->cache = NULL;
    occ_wcrypt_free(vr->wc);
    vr->wc = NULL;
}

static occ_status engine_create1(const occ_model *m, const occ_engine_opts *opts, occ_read_fn read,
                                 void *read_ctx, int plan_only, int split_all, uint32_t seg_div,
                                 uint32_t wino_div, occ_engine **out, occ_error *e)
{
    occ_status st;
    if (!out)
        return occ_fail(e, OCC_ERR_INVALID, "no output handle");
    *out = NULL;
    if (!m || !read)
        return occ_fail(e, OCC_ERR_INVALID, "no model or read callback");
    occ_engine_opts o;
    memset(&o, 0, sizeof o);
    if (opts)
        o = *opts;
    if (o.threads < 0 || o.loader_threads < 0 || o.loader_threads > 64)
        return occ_fail(e, OCC_ERR_INVALID, "threads must be >= 0, loader threads 0..64");
    if (o.mode != OCC_MODE_NATIVE && o.mode != OCC_MODE_BASELINE && o.mode != OCC_MODE_OCCLUMENCY)
        return occ_fail(e, OCC_ERR_INVALID, "unknown mode %d", (int)o.mode);
    if (o.batch > MAX_BATCH)
        return occ_fail(e, OCC_ERR_INVALID, "batch %u is over %u", o.batch, MAX_BATCH);
    if (o.mem && (!o.mem->alloc || !o.mem->free))
        return occ_fail(e, OCC_ERR_INVALID, "memory provider lacks alloc or free");
    if (o.mem && (o.mem->granularity & (o.mem->granularity - 1) || o.mem->granularity > (1u << 20)))
        return occ_fail(e, OCC_ERR_INVALID, "memory provider granularity %zu is not a power of two up to 1 MiB",
                        o.mem->granularity);
    occ_engine *eng = calloc(1, sizeof *eng);
    if (!eng)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    eng->m = m;
    eng->threads = o.threads;
    eng->loader_threads = o.loader_threads ? o.loader_threads : 1;
    eng->mode = o.mode;
    eng->budget = o.budget ? o.budget : OCC_DEFAULT_BUDGET;
    eng->batch = o.batch ? o.batch : 1;
    eng->on_chunk = o.on_chunk;
    eng->hook_ctx = o.hook_ctx;
    eng->mem.p = o.mem ? *o.mem
                       : (occ_mem_provider){NULL, mp_default_alloc, mp_default_free, 64};
    pthread_mutex_init(&eng->mem.mu, NULL);
    pthread_mutex_init(&eng->ring.mu, NULL);
    pthread_cond_init(&eng->ring.cv, NULL);
    eng->ring.eng = eng;
    eng->wino_div = wino_div;
    eng->mem.ops = (occ_ops_allocator){&eng->mem, emem_ops_alloc, emem_ops_free};
    /* segments: small enough that a ring of them is a small part of the
     * budget; native and baseline never split a layer */
    eng->seg_max = UINT64_MAX >> 4;
    if (eng->mode == OCC_MODE_OCCLUMENCY) {
        eng->seg_max = eng->budget / seg_div;
        if (eng->seg_max < (256u << 10))
            eng->seg_max = 256u << 10;
        if (eng->seg_max > (8u << 20))
            eng->seg_max = 8u << 20;
    }
    occ_ops_set_allocator(&eng->mem.ops);
    set_threads(eng);
    vreader vr = {eng, read, read_ctx, NULL, 0, -1, NULL};
    /* an encrypted pack: the key must be the one it was packed with
     * (before anything is read or prepared) */
    eng->encrypted = m->weights_crypt != OCC_WCRYPT_NONE;
    if ((st = occ_wcrypt_for_model(m, o.weights_key, &vr.wc, e)))
        goto fail;
    if ((st = validate(eng, e)))
        goto fail;
    for (uint32_t i = 0; i < m->n_chunks; i++)
        if (m->chunks[i].size > vr.cache_cap)
            vr.cache_cap = m->chunks[i].size;
    if (vr.cache_cap && !(vr.cache = emem_alloc(&eng->mem, vr.cache_cap, e))) {
        st = occ_fail(e, OCC_ERR_NOMEM, "out of memory for a weight chunk");
        goto fail;
    }
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
    if ((st = build_steps(eng, &vr, e)))
        goto fail;
    /* what the ops hold themselves (input conversion buffers, folded
     * constants), besides the chunk buffer used while loading */
    eng->fixed_bytes = eng->mem.cur - (vr.cache_cap ? emem_round(&eng->mem, vr.cache_cap) : 0);
    eng->split_k = choose_split(eng, split_all);
    for (uint32_t i = eng->split_k; eng->split_k && i < eng->n_steps; i++) {
        step *s = &eng->steps[i];
        const occ_node *nd = &m->nodes[s->node];
        if (s->kind != K_GEMM || !occ_gemm_rows_batchable(s->state))
            continue;
        uint64_t a = m->tensors[nd->inputs[0]].size, y = m->tensors[s->out].size;
        s->gemm_batch = a;
        s->work = ((eng->batch * a + 63u) & ~UINT64_C(63)) + eng->batch * y;
    }
    if ((st = make_segments(eng, e)) || (st = collect_buffers(eng, e)) || (st = make_plan(eng, e)))
        goto fail;
    if (plan_only) {
        vr_done(eng, &vr);
        occ_ops_set_allocator(NULL);
        *out = eng;
        return OCC_OK;
    }
    if ((st = load_weights(eng, &vr, e)))
        goto fail;
    vr_done(eng, &vr);
    if ((st = alloc_run_memory(eng, e)))
        goto fail;
    eng->times = calloc(m->n_nodes + 1u, sizeof *eng->times);
    if (!eng->times) {
        st = occ_fail(e, OCC_ERR_NOMEM, "out of memory");
        goto fail;
    }
    occ_ops_set_allocator(NULL);
    *out = eng;
    return OCC_OK;
fail:
    vr_done(eng, &vr);
    occ_ops_set_allocator(NULL);
    occ_engine_free(eng);
    return st;
}

occ_status occ_engine_create(const occ_model *m, const occ_engine_opts *opts, occ_read_fn read,
                             void *read_ctx, occ_engine **out, occ_error *e)
{
    return engine_create(m, opts, read, read_ctx, 0, out, e);
}

occ_status occ_engine_plan_only(const occ_model *m, const occ_engine_opts *opts, occ_read_fn read,
                                void *read_ctx, occ_engine **out, occ_error *e)
{
    return engine_create(m, opts, read, read_ctx, 1, out, e);
}

/* A Gemm part's bias within its blob (rows of B, then C from column j0),
 * indexed by output column; NULL without C. */
static const float *gemm_c(const occ_model *m, const occ_node *n, const step *s, uint32_t part,
                           const uint8_t *blob)
{
    if (!occ_ops_in(m, n, 2))
        return NULL;
    int64_t j0 = s->cols[part], j1 = s->cols[part + 1];
    const occ_tensor *bt = occ_ops_in(m, n, 1);
    uint64_t coff = ((uint64_t)(j1 - j0) * (bt->size / (uint64_t)bt->dims[0]) + 63u) & ~UINT64_C(63);
    return s->gemm_c_full ? (const float *)(blob + coff) : (const float *)(blob + coff) - j0;
}

/* Runs step s for image b with the weight blob of the current part. */
static occ_status run_part(occ_engine *eng, const step *s, uint32_t part, const uint8_t *blob,
                           uint32_t b, uint32_t it, occ_error *e)
{
    const occ_model *m = eng->m;
    const occ_node *n = &m->nodes[s->node];
    const void *in[OCC_MAX_NODE_IO];
    void *outp[OCC_MAX_NODE_IO];
    for (uint32_t k = 0; k < n->n_inputs; k++) {
        int32_t t = n->inputs[k];
        if (t < 0)
            in[k] = NULL;
        else if (m->tensors[t].kind == OCC_TENSOR_WEIGHT)
            in[k] = blob && s->kind == K_GENERIC ? blob + (m->tensors[t].data_offset - s->wlo)
                                                 : NULL;
        else
            in[k] = s->in_plain[k] ? plain_view(eng, t, b) : storage(eng, t, b);
    }
    outp[0] = storage(eng, s->out, b);
    for (uint32_t k = 1; k < n->n_outputs; k++)
        outp[k] = storage(eng, n->outputs[k], b);
    if (s->kind == K_CONV) {
        uint8_t *work = eng->work_off ? eng->arena + eng->work_off[it] : eng->scratch;
        return occ_conv_part_run(s->parts[part], in[0], outp[0], blob, work, eng->stream, e);
    }
    if (s->kind == K_GEMM)
        return occ_gemm_run_cols(s->state, in[0], (const float *)blob, gemm_c(m, n, s, part, blob),
                                 s->cols[part], s->cols[part + 1], outp[0], e);
    if (s->kind == K_MATMUL)
        return occ_matmul_run_rows(s->state, in[0], (const float *)blob, s->cols[part],
                                   s->cols[part + 1], outp[0], e);
    if (s->kind == K_GATHER) {
        /* every id is checked before the first piece; each piece then
         * blends the rows it holds, whatever the ids */
        occ_status st;
        if (part == 0 && (st = occ_gather_check(s->state, in[1], e)))
            return st;
        occ_gather_select_rows(s->state, in[1], blob, s->cols[part], s->cols[part + 1], outp[0]);
        return OCC_OK;
    }
    occ_op_exec x = {in, outp, eng->stream};
    return s->v->run(s->state, &x, e);
}

occ_status occ_engine_run(occ_engine *eng, const void *const *inputs, void *const *outputs,
                          occ_error *e)
{
    return occ_engine_run_n(eng, eng ? eng->batch : 1, inputs, outputs, e);
}

occ_status occ_engine_run_n(occ_engine *eng, uint32_t n, const void *const *inputs,
                            void *const *outputs, occ_error *e)
{
    if (!eng || (eng->m->n_inputs && !inputs) || !outputs)
        return occ_fail(e, OCC_ERR_INVALID, "no engine, inputs or outputs");
    if (n < 1 || n > eng->batch)
        return occ_fail(e, OCC_ERR_INVALID, "%u images for an engine of batch %u", n, eng->batch);
    if (!eng->arena && eng->arena_size)
        return occ_fail(e, OCC_ERR_INVALID, "engine was made for planning only");
    const occ_model *m = eng->m;
    for (uint32_t i = 0; i < m->n_inputs; i++)
        if (!inputs[i])
            return occ_fail(e, OCC_ERR_INVALID, "input %u is NULL", i);
    for (uint32_t i = 0; i < m->n_outputs; i++)
        if (!outputs[i])
            return occ_fail(e, OCC_ERR_INVALID, "output %u is NULL", i);
    set_threads(eng);
    /* N images this run; the plan's iterations are numbered for the
     * engine's batch (see iteration()): eit below */
    const uint32_t K = eng->split_k, N = n, NB = eng->batch;
    const uint32_t n_it = K ? N * K + (eng->n_steps - K) : eng->n_steps;
    for (uint32_t b = 0; b < N; b++)
        for (uint32_t i = 0; !K && i < m->n_inputs; i++) {
            uint64_t sz = m->tensors[m->inputs[i]].size;
            memcpy(storage(eng, m->inputs[i], b), (const uint8_t *)inputs[i] + b * sz, (size_t)sz);
        }
    /* start the loaders: they run ahead of compute by the ring's size */
    pthread_t th[64];
    int nth = 0;
    occ_status st = OCC_OK;
    uint64_t flip = occ_fault_flip(eng->stash, eng->stash_size); /* test-only: host writes its memory */
    ring *r = &eng->ring;
    if (eng->n_streamed) {
        /* fewer images than the batch: the positions of the missing images'
         * per-image segments are skipped */
        r->skip_from = N * eng->n_streamed_img;
        r->skip = (NB - N) * eng->n_streamed_img;
        r->n = eng->n_streamed - r->skip;
        r->next = r->released = r->hooked = 0;
        r->stop = r->failed = 0;
        for (uint32_t i = 0; i < r->slots; i++)
            r->ready[i] = -1;
        for (int i = 0; i < eng->loader_threads; i++) {
            if (pthread_create(&th[nth], NULL, occ_eng_loader_main, r) != 0)
                break;
            nth++;
        }
        if (!nth) {
            return occ_fail(e, OCC_ERR_INTERNAL, "cannot start a weight loader thread");
        }
    }
    uint32_t pos = 0;
    eng->stall_ns = 0;
    if (eng->profiling)
        memset(eng->times, 0, m->n_nodes * sizeof *eng->times);
    /* iteration it runs step si for images [b0, b1) (see split_k) */
    for (uint32_t it = 0; it < n_it && !st; it++) {
        const uint32_t si = step_of(K, N, it);
        uint32_t b0 = 0, b1 = N;
        if (K && it < N * K) {
            b0 = it / K;
            b1 = b0 + 1;
            for (uint32_t i = 0; si == 0 && i < m->n_inputs; i++) {
                uint64_t sz = m->tensors[m->inputs[i]].size;
                memcpy(storage(eng, m->inputs[i], b0), (const uint8_t *)inputs[i] + b0 * sz,
                       (size_t)sz);
            }
        }
        const step *s = &eng->steps[si];
        const occ_node *n = &m->nodes[s->node];
        const uint32_t eit = K && it >= N * K ? it + (NB - N) * K : it; /* the plan's iteration */
        uint64_t t0 = eng->profiling ? now_ns() : 0;
        if (s->sum_src >= 0 && !s->sum_alias)
            for (uint32_t b = b0; b < b1; b++)
                memcpy(storage(eng, s->out, b), storage(eng, s->sum_src, b),
                       (size_t)eng->t[s->out].size);
        uint32_t np = s->kind == K_NONE ? 1 : s->n_parts;
        float *ga = NULL, *gy = NULL; /* gathered A and Y of a batched Gemm */
        if (s->gemm_batch && b1 - b0 > 1 && eng->work_off) {
            uint64_t asz = s->gemm_batch;
            ga = (float *)(eng->arena + eng->work_off[eit]);
            gy = (float *)((uint8_t *)ga + ((N * asz + 63u) & ~UINT64_C(63)));
            int32_t t = n->inputs[0];
            for (uint32_t b = b0; b < b1; b++)
                memcpy((uint8_t *)ga + (b - b0) * asz,
                       s->in_plain[0] ? plain_view(eng, t, b) : storage(eng, t, b), (size_t)asz);
        }
        for (uint32_t p = 0; p < np && !st; p++) {
            const uint8_t *blob = NULL;
            const seg *g = s->kind == K_NONE ? NULL : &eng->segs[s->first_seg + p];
            if (g && g->streamed) {
                uint64_t w0 = eng->profiling ? now_ns() : 0;
                blob = occ_eng_ring_get(eng, pos, e);
                if (eng->profiling)
                    eng->stall_ns += now_ns() - w0;
                if (!blob) {
                    st = OCC_ERR_INTEGRITY;
                    break;
                }
            } else if (g) {
                blob = g->res;
            }
            if (ga && (st = occ_gemm_run_cols_n(s->state, ga, (const float *)blob,
                                                gemm_c(m, n, s, p, blob), s->cols[p], s->cols[p + 1],
                                                gy, (int64_t)(b1 - b0), e)))
                occ_error_prefix(e, "node %s (%s)", nm(n->name), nm(n->op));
            for (uint32_t b = b0; !ga && b < b1 && !st; b++)
                if ((st = run_part(eng, s, p, blob, b, eit, e)))
                    occ_error_prefix(e, "node %s (%s)", nm(n->name), nm(n->op));
            if (g && g->streamed)
                occ_eng_ring_release(eng, pos++);
        }
        for (uint32_t b = b0; ga && !st && b < b1; b++)
            memcpy(storage(eng, s->out, b),
                   (const uint8_t *)gy + (b - b0) * eng->t[s->out].size,
                   (size_t)eng->t[s->out].size);
        const trt *to = &eng->t[s->out];
        for (uint32_t b = b0; !st && to->to_plain && b < b1; b++) {
            dnnl_memory_set_data_handle(to->from, storage(eng, s->out, b));
            dnnl_memory_set_data_handle(to->to, plain_view(eng, s->out, b));
            dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, to->from}, {DNNL_ARG_TO, to->to}};
            if ((st = occ_dnnl_exec(to->to_plain, eng->stream, 2, ra, e)))
                occ_error_prefix(e, "node %s (%s): reorder", nm(n->name), nm(n->op));
        }
        if (eng->profiling)
            eng->times[s->node] += now_ns() - t0;
    }
    if (nth)
        occ_eng_ring_stop(eng, th, nth);
    occ_fault_unflip(eng->stash, flip);
    if (st)
        return st; /* nothing written */
    for (uint32_t b = 0; b < N; b++)
        for (uint32_t i = 0; i < m->n_outputs; i++) {
            uint64_t sz = m->tensors[m->outputs[i]].size;
            memcpy((uint8_t *)outputs[i] + b * sz, plain_view(eng, m->outputs[i], b), (size_t)sz);
        }
    return OCC_OK;
}

void occ_engine_free(occ_engine *eng)
{
    if (!eng)
        return;
    occ_ops_set_allocator(&eng->mem.ops);
    for (uint32_t i = 0; i < eng->n_steps; i++) {
        step *s = &eng->steps[i];
        if (s->state)
            s->v->destroy(s->state);
        for (uint32_t p = 0; s->parts && p < s->n_parts; p++)
            if (s->parts[p])
                occ_conv_part_destroy(s->parts[p]);
        free(s->parts);
        free(s->cols);
    }
    occ_ops_set_allocator(NULL);
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
    for (uint32_t g = 0; eng->segs && g < eng->n_segs; g++)
        emem_free(&eng->mem, eng->segs[g].res, eng->segs[g].size);
    if (eng->ring.slot) {
        for (uint32_t i = 0; i < eng->ring.slots; i++) {
            if (eng->ring.slot[i])
                OPENSSL_cleanse(eng->ring.slot[i], (size_t)eng->window_slot);
            emem_free(&eng->mem, eng->ring.slot[i], eng->window_slot);
        }
    }
    occ_eng_segmac_free(eng->help_ctx);
    EVP_MAC_free(eng->mac_alg);
    if (eng->key) {
        OPENSSL_cleanse(eng->key, 32);
        emem_free(&eng->mem, eng->key, 32);
    }
    untrusted_free(eng->stash);
    emem_free(&eng->mem, eng->arena, eng->arena_size);
    emem_free(&eng->mem, eng->scratch, eng->scratch_size);
    if (eng->stream)
        dnnl_stream_destroy(eng->stream);
    if (eng->deng)
        dnnl_engine_destroy(eng->deng);
    occ_plan_free(&eng->plan);
    free(eng->ring.slot);
    free(eng->ring.ready);
    pthread_mutex_destroy(&eng->ring.mu);
    pthread_cond_destroy(&eng->ring.cv);
    pthread_mutex_destroy(&eng->mem.mu);
    free(eng->streamed);
    free(eng->segs);
    free(eng->layers);
    free(eng->offsets);
    free(eng->work_off);
    free(eng->steps);
    free(eng->node_step);
    free(eng->t);
    free(eng->reqs);
    free(eng->times);
    free(eng);
}

void occ_engine_get_stats(const occ_engine *eng, occ_engine_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!eng)
        return;
    occ_engine *w = (occ_engine *)eng;
    pthread_mutex_lock(&w->mem.mu);
    out->enclave_bytes = eng->mem.cur;
    out->peak_enclave_bytes = eng->mem.peak;
    pthread_mutex_unlock(&w->mem.mu);
    out->budget_bytes = eng->mode == OCC_MODE_OCCLUMENCY ? eng->budget : 0;
    out->plan_peak_bytes = eng->plan.peak + eng->fixed_bytes;
    out->chunks_loaded = __atomic_load_n(&eng->chunks_loaded, __ATOMIC_RELAXED);
    out->bytes_loaded = __atomic_load_n(&eng->bytes_loaded, __ATOMIC_RELAXED);
    out->bytes_verified = __atomic_load_n(&eng->bytes_verified, __ATOMIC_RELAXED);
    out->integrity_failures = __atomic_load_n(&eng->integrity_failures, __ATOMIC_RELAXED);
    out->bytes_decrypted = __atomic_load_n(&eng->bytes_decrypted, __ATOMIC_RELAXED);
    out->plan_stream_bytes = streamed_per_run(eng);
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

void occ_engine_plan_summary(const occ_engine *eng, occ_plan_summary *sum,
                             const occ_plan_layer **layers, uint32_t *n_layers)
{
    memset(sum, 0, sizeof *sum);
    *layers = eng ? eng->layers : NULL;
    *n_layers = eng ? eng->n_layers : 0;
    if (!eng)
        return;
    sum->budget = eng->mode == OCC_MODE_OCCLUMENCY ? eng->budget : 0;
    sum->arena = eng->plan.arena_size;
    sum->work = eng->plan.work_size;
    sum->window = eng->plan.window_size;
    sum->window_slots = eng->plan.window_size ? window_slots(eng) : 0;
    sum->resident = eng->plan.resident_size;
    sum->fixed = eng->fixed_bytes;
    sum->peak = eng->plan.peak + eng->fixed_bytes;
    sum->n_segs = eng->n_segs;
    for (uint32_t g = 0; g < eng->n_segs; g++)
        sum->n_streamed += eng->segs[g].streamed != 0;
    sum->streamed = streamed_per_run(eng);
    sum->seg_max = eng->seg_max;
    sum->batch = eng->batch;
    sum->split_step = eng->split_k;
}

uint8_t *occ_engine_debug_stash(occ_engine *eng, uint64_t *size)
{
    *size = eng ? eng->stash_size : 0;
    return eng ? eng->stash : NULL;
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

uint64_t occ_engine_stall_ns(const occ_engine *eng)
{
    return eng ? eng->stall_ns : 0;
}
