/* The executor: validates a model, loads and verifies its weights, prepares
 * the kernels (up to a compiled model: compiled.c), and runs inference.
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
 *    descriptor its producer chose (Conv asks for nChw16c where oneDNN
 *    runs AVX-512 kernels, nChw8c on AVX2-only CPUs, which have no
 *    Winograd in oneDNN 2.6; the first conv keeps a plain nchw source);
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
 * occ_engine_run is not reentrant: one run at a time per engine. Create is
 * in two halves (include/occ/engine.h): this file makes the engine up to
 * its loaded weights - the compiled model (compiled.c), which then drops
 * its kernels - and context.c makes the engines that run on it.
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
    /* a 0 dim is an empty tensor (size 0); the other dims stay bounded */
    int64_t c = occ_ops_count(t->ndim, t->dims);
    size_t es = occ_dtype_size(occ_tensor_dtype(t));
    return occ_ops_shape_ok(t->ndim, t->dims) && es && t->size == (uint64_t)c * es;
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
uint64_t occ_eng_emem_round(const emem *m, uint64_t size)
{
    uint64_t g = m->p.granularity > 64 ? (uint64_t)m->p.granularity : 64;
    size = (size + g - 1) & ~(g - 1);
    return size ? size : g;
}

void *occ_eng_emem_alloc(emem *m, uint64_t size, occ_error *e)
{
    void *p = NULL;
    if (size > (UINT64_C(1) << 44)) {
        occ_fail(e, OCC_ERR_NOMEM, "absurd allocation of %llu bytes", (unsigned long long)size);
        return NULL;
    }
    size = occ_eng_emem_round(m, size);
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

void occ_eng_emem_free(emem *m, void *p, uint64_t size)
{
    if (!p)
        return;
    size = occ_eng_emem_round(m, size);
    m->p.free(m->p.ctx, p, (size_t)size);
    pthread_mutex_lock(&m->mu);
    m->cur -= size;
    pthread_mutex_unlock(&m->mu);
}

static void *emem_ops_alloc(void *ctx, size_t size)
{
    return occ_eng_emem_alloc(ctx, size, NULL);
}

static void emem_ops_free(void *ctx, void *p, size_t size)
{
    occ_eng_emem_free(ctx, p, size);
}

/* ---- untrusted host memory for ciphertext ----
 * Outside the enclave and outside the budget. One place, so that under a real
 * enclave it becomes an ocall (the host allocates; the enclave gets a pointer
 * it must treat as hostile). */
uint8_t *occ_eng_untrusted_alloc(uint64_t size)
{
    /* from the host (alloc_untrusted ocall, range checked) in a server's
     * enclave, malloc without one (occ/boundary.h) */
    return size > SIZE_MAX - 64 ? NULL : occ_untrusted_alloc((size_t)(size ? size : 1));
}

static void untrusted_free(uint8_t *p)
{
    occ_untrusted_free(p);
}

static float *storage(const occ_engine *eng, int32_t t, uint32_t b)
{
    uint64_t off = 0;
    for (; eng->t[t].alias >= 0; t = eng->t[t].alias)
        off += eng->t[t].alias_off;
    return (float *)(eng->arena + eng->offsets[b * eng->n_reqs + (uint32_t)eng->t[t].buf] + off);
}

static float *plain_view(const occ_engine *eng, int32_t t, uint32_t b)
{
    if (eng->t[t].plain_buf >= 0)
        return (float *)(eng->arena + eng->offsets[b * eng->n_reqs + (uint32_t)eng->t[t].plain_buf]);
    return storage(eng, t, b);
}

/* ---- public API ---- */

void occ_eng_set_threads(const occ_engine *eng)
{
    if (eng->threads > 0)
        omp_set_num_threads(eng->threads);
}

static occ_status engine_create1(const occ_model *m, const occ_engine_opts *opts, occ_read_fn read,
                                 void *read_ctx, int plan_only, int split_all, uint32_t seg_div,
                                 uint32_t wino_div, int strips, occ_engine **out, occ_error *e);

/* Bytes copied in and checked per run of a whole batch. */
uint64_t occ_eng_streamed_per_run(const occ_engine *eng)
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
    /* strip chains (strips.c) only when no plan fits without them: a model
     * that fits keeps its plan */
    occ_error first[2] = {{0}, {0}}; /* each pass's refusal with the largest segments */
    for (int strips = 0; strips < 2; strips++) {
        occ_error e0 = {0};
        if (strips && e)
            e0 = *e; /* the refusal without strip chains */
        for (size_t i = 0; i < sizeof divs / sizeof divs[0]; i++) {
            st = engine_create1(m, opts, read, read_ctx, plan_only, split_all, divs[i][0], divs[i][1],
                                strips, out, e);
            if (st != OCC_ERR_BUDGET || !opts || opts->mode != OCC_MODE_OCCLUMENCY)
                return st;
            if (!i && e)
                first[strips] = *e;
        }
        if (strips && e) {
            /* no chain formed: the refusal as without them; chains that
             * did not suffice: where the plan with them fails */
            if (!strcmp(first[0].msg, first[1].msg))
                *e = e0;
            else if (!strstr(e->msg, "strip chain")) {
                *e = first[1];
                occ_error_prefix(e, "with strip chains");
            }
        }
        if (!occ_engine_strips || (opts->batch > 1 && split_all))
            break;
    }
    return st;
}

int occ_engine_batch_order = -1;
int occ_engine_gather_direct = 0;

occ_status occ_eng_create(const occ_model *m, const occ_engine_opts *opts, occ_read_fn read,
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
        split_all = p[1] && (!p[0] || occ_eng_streamed_per_run(p[1]) <= occ_eng_streamed_per_run(p[0]));
        if (plan_only == 1 && out && p[split_all]) { /* occ inspect --plan: that plan is the answer */
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
    occ_eng_emem_free(&eng->mem, vr->cache, vr->cache_cap);
    vr->cache = NULL;
    occ_wcrypt_free(vr->wc);
    vr->wc = NULL;
}

static occ_status engine_create1(const occ_model *m, const occ_engine_opts *opts, occ_read_fn read,
                                 void *read_ctx, int plan_only, int split_all, uint32_t seg_div,
                                 uint32_t wino_div, int strips, occ_engine **out, occ_error *e)
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
    eng->strips_ok = strips;
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
    occ_eng_set_threads(eng);
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
    if (vr.cache_cap && !(vr.cache = occ_eng_emem_alloc(&eng->mem, vr.cache_cap, e))) {
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
    if ((st = occ_eng_build_steps(eng, &vr, e)))
        goto fail;
    /* what the ops hold themselves (input conversion buffers, folded
     * constants), besides the chunk buffer used while loading */
    eng->fixed_bytes = eng->mem.cur - (vr.cache_cap ? occ_eng_emem_round(&eng->mem, vr.cache_cap) : 0);
    eng->split_k = occ_eng_choose_split(eng, split_all);
    for (uint32_t i = eng->split_k; eng->split_k && i < eng->n_steps; i++) {
        step *s = &eng->steps[i];
        const occ_node *nd = &m->nodes[s->node];
        if (s->kind != K_GEMM || !occ_gemm_rows_batchable(s->state))
            continue;
        uint64_t a = m->tensors[nd->inputs[0]].size, y = m->tensors[s->out].size;
        s->gemm_batch = a;
        s->work = ((eng->batch * a + 63u) & ~UINT64_C(63)) + eng->batch * y;
    }
    if ((st = occ_eng_make_segments(eng, e)) || (st = occ_eng_collect_buffers(eng, e)) ||
        (st = occ_eng_make_plan(eng, e)))
        goto fail;
    if (plan_only == 1) {
        vr_done(eng, &vr);
        occ_ops_set_allocator(NULL);
        *out = eng;
        return OCC_OK;
    }
    if ((st = occ_eng_load_weights(eng, &vr, e)))
        goto fail;
    vr_done(eng, &vr);
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
    occ_compiled *c = NULL;
    occ_status st = occ_compiled_create(m, opts, read, read_ctx, &c, e);
    if (st)
        return st;
    if ((st = occ_engine_create_ctx(c, opts, out, e))) {
        occ_compiled_free(c);
        return st;
    }
    (*out)->own = c;
    return OCC_OK;
}

occ_status occ_engine_plan_only(const occ_model *m, const occ_engine_opts *opts, occ_read_fn read,
                                void *read_ctx, occ_engine **out, occ_error *e)
{
    return occ_eng_create(m, opts, read, read_ctx, 1, out, e);
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

/* A fused Gemm step (fcfuse.c) for images [b0, b1): the gathered A and Y of
 * a batched Gemm, else each image's own. */
static occ_status run_fused(occ_engine *eng, const step *s, float *ga, float *gy, uint32_t b0,
                            uint32_t b1, occ_error *e)
{
    const occ_node *n = &eng->m->nodes[s->node];
    occ_gemm_desc d;
    occ_gemm_describe(s->state, &d);
    if (ga) {
        const float *a[1] = {ga};
        float *y[1] = {gy};
        return occ_eng_fuse_run_n(eng, s, a, y, 1, d.m * (int64_t)(b1 - b0), e);
    }
    const float *ap[64];
    float *yp[64];
    for (uint32_t c0 = b0; c0 < b1; c0 += 64) {
        uint32_t c1 = b1 - c0 < 64 ? b1 : c0 + 64;
        for (uint32_t b = c0; b < c1; b++) {
            int32_t t = n->inputs[0];
            ap[b - c0] = s->in_plain[0] ? plain_view(eng, t, b) : storage(eng, t, b);
            yp[b - c0] = storage(eng, s->out, b);
        }
        occ_status st = occ_eng_fuse_run_n(eng, s, ap, yp, c1 - c0, d.m, e);
        if (st)
            return st;
    }
    return OCC_OK;
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
    occ_eng_set_threads(eng);
    /* N images this run; the plan's iterations are numbered for the
     * engine's batch (see occ_eng_iteration()): eit below */
    const uint32_t K = eng->split_k, N = n, NB = eng->batch;
    const uint32_t n_it = K ? N * K + (eng->n_steps - K) : eng->n_steps;
    for (uint32_t b = 0; b < N; b++)
        for (uint32_t i = 0; !K && i < m->n_inputs; i++) {
            uint64_t sz = m->tensors[m->inputs[i]].size;
            memcpy(storage(eng, m->inputs[i], b), (const uint8_t *)inputs[i] + b * sz, (size_t)sz);
        }
    /* wake the engine's loaders: they run ahead of compute by the ring's
     * size (fewer images than the batch: the positions of the missing
     * images' per-image segments are skipped) */
    occ_status st = OCC_OK;
    uint64_t flip = occ_fault_flip(eng->stash, eng->stash_size); /* test-only: host writes its memory */
    if (eng->n_streamed)
        occ_eng_ring_begin(eng, eng->n_streamed - (NB - N) * eng->n_streamed_img,
                           N * eng->n_streamed_img, (NB - N) * eng->n_streamed_img);
    uint32_t pos = 0;
    eng->stall_ns = 0;
    if (eng->profiling)
        memset(eng->times, 0, m->n_nodes * sizeof *eng->times);
    /* iteration it runs step si for images [b0, b1) (see split_k) */
    for (uint32_t it = 0; it < n_it && !st; it++) {
        uint32_t si = occ_eng_step_of(K, N, it);
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
        const uint32_t eit = K && it >= N * K ? it + (NB - N) * K : it; /* the plan's iteration */
        uint64_t t0 = eng->profiling ? now_ns() : 0;
        /* a strip chain (batch 1, or one image of a batch: split_k): its
         * steps at once, band by band */
        const strip_chain *ch = occ_eng_chain_at(eng, si);
        if (ch) {
            const step *c0 = &eng->steps[ch->s0], *c1 = &eng->steps[ch->s1];
            int32_t tin = m->nodes[c0->node].inputs[0];
            st = occ_eng_strips_run(eng, ch, c0->in_plain[0] ? plain_view(eng, tin, b0) : storage(eng, tin, b0),
                                    storage(eng, c1->out, b0), eng->arena + eng->work_off[eit], e);
            it += ch->s1 - ch->s0;
            si = ch->s1;
        }
        const step *s = &eng->steps[si];
        const occ_node *n = &m->nodes[s->node];
        if (s->sum_src >= 0 && !s->sum_alias)
            for (uint32_t b = b0; b < b1; b++)
                memcpy(storage(eng, s->out, b), storage(eng, s->sum_src, b),
                       (size_t)eng->t[s->out].size);
        uint32_t np = s->elided || ch ? 0 : s->kind == K_NONE ? 1 : s->n_parts;
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
        if (s->fused) { /* its segments stream through fcfuse.c, not the ring */
            st = run_fused(eng, s, ga, gy, b0, b1, e);
            if (st)
                occ_error_prefix(e, "node %s (%s)", nm(n->name), nm(n->op));
            np = 0;
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
    if (eng->n_streamed)
        occ_eng_ring_end(eng);
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

void occ_eng_free_kernels(occ_engine *eng)
{
    occ_ops_set_allocator(&eng->mem.ops);
    occ_eng_strips_free(eng);
    for (uint32_t i = 0; eng->steps && i < eng->n_steps; i++) {
        step *s = &eng->steps[i];
        if (s->state)
            s->v->destroy(s->state);
        for (uint32_t p = 0; s->parts && p < s->n_parts; p++)
            if (s->parts[p])
                occ_conv_part_destroy(s->parts[p]);
        free(s->parts);
        s->parts = NULL;
        s->state = NULL;
    }
    occ_ops_set_allocator(NULL);
}

void occ_engine_free(occ_engine *eng)
{
    if (!eng)
        return;
    occ_eng_free_run_memory(eng);
    occ_eng_free_kernels(eng);
    if (eng->stream)
        dnnl_stream_destroy(eng->stream);
    if (eng->deng)
        dnnl_engine_destroy(eng->deng);
    pthread_mutex_destroy(&eng->ring.mu);
    pthread_cond_destroy(&eng->ring.cv);
    if (eng->shared) { /* a context: the rest is the compiled model's */
        occ_compiled *own = eng->own;
        pthread_mutex_destroy(&eng->mem.mu);
        free(eng->steps);
        free(eng->t);
        free(eng);
        occ_compiled_free(own);
        return;
    }
    for (uint32_t i = 0; eng->steps && i < eng->n_steps; i++) {
        step *s = &eng->steps[i];
        if (s->wprep) {
            OPENSSL_cleanse(s->wprep, (size_t)(s->whi - s->wlo)); /* maybe decrypted weights */
            occ_eng_emem_free(&eng->mem, s->wprep, s->whi - s->wlo);
        }
        free(s->sig);
        free(s->cols);
    }
    for (uint32_t g = 0; eng->segs && g < eng->n_segs; g++)
        occ_eng_emem_free(&eng->mem, eng->segs[g].res, eng->segs[g].size);
    EVP_MAC_free(eng->mac_alg);
    if (eng->key) {
        OPENSSL_cleanse(eng->key, 32);
        occ_eng_emem_free(&eng->mem, eng->key, 32);
    }
    untrusted_free(eng->stash);
    occ_plan_free(&eng->plan);
    pthread_mutex_destroy(&eng->mem.mu);
    free(eng->segs);
    free(eng->chains);
    free(eng->layers);
    free(eng->offsets);
    free(eng->work_off);
    free(eng->steps);
    free(eng->node_step);
    free(eng->t);
    free(eng->reqs);
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
    if (eng->shared) {
        /* a context: plus its compiled model's, which was done (and held
         * what it holds now) before the context began */
        occ_engine *c = (occ_engine *)eng->shared;
        pthread_mutex_lock(&c->mem.mu);
        uint64_t cur = c->mem.cur, peak = c->mem.peak;
        pthread_mutex_unlock(&c->mem.mu);
        out->shared_bytes = cur;
        out->enclave_bytes += cur;
        out->peak_enclave_bytes = cur + out->peak_enclave_bytes > peak
                                      ? cur + out->peak_enclave_bytes : peak;
    } else {
        out->shared_bytes = out->enclave_bytes;
    }
    out->budget_bytes = eng->mode == OCC_MODE_OCCLUMENCY ? eng->budget : 0;
    out->plan_peak_bytes = eng->plan.peak + eng->fixed_bytes + eng->fuse_reserve;
    /* a context counts its runs' loads; the compiled model its create's */
    for (const occ_engine *x = eng; x; x = x->shared) {
        out->chunks_loaded += __atomic_load_n(&x->chunks_loaded, __ATOMIC_RELAXED);
        out->bytes_loaded += __atomic_load_n(&x->bytes_loaded, __ATOMIC_RELAXED);
        out->bytes_verified += __atomic_load_n(&x->bytes_verified, __ATOMIC_RELAXED);
        out->integrity_failures += __atomic_load_n(&x->integrity_failures, __ATOMIC_RELAXED);
        out->bytes_decrypted += __atomic_load_n(&x->bytes_decrypted, __ATOMIC_RELAXED);
    }
    out->plan_stream_bytes = occ_eng_streamed_per_run(eng);
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
    info->n_concats_elided = eng->n_concats_elided;
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
    sum->window_slots = eng->plan.window_size ? occ_eng_window_slots(eng) : 0;
    sum->resident = eng->plan.resident_size;
    sum->fixed = eng->fixed_bytes;
    sum->peak = eng->plan.peak + eng->fixed_bytes + eng->fuse_reserve;
    sum->shared = eng->plan.resident_size + eng->wprep_bytes;
    sum->per_engine = sum->peak > sum->shared ? sum->peak - sum->shared : 0;
    for (uint32_t g = 0; g < eng->n_segs; g++)
        if (eng->segs[g].streamed) { /* and the stash's key */
            sum->shared += occ_eng_emem_round(&eng->mem, 32);
            break;
        }
    sum->n_segs = eng->n_segs;
    for (uint32_t g = 0; g < eng->n_segs; g++)
        sum->n_streamed += eng->segs[g].streamed != 0;
    sum->streamed = occ_eng_streamed_per_run(eng);
    sum->seg_max = eng->seg_max;
    sum->batch = eng->batch;
    sum->split_step = eng->split_k;
    for (uint32_t i = 0; i < eng->n_steps; i++)
        sum->fc_fused += eng->steps[i].fused != 0;
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
