/* An engine context (include/occ/engine.h, "Compile once, run many"): what
 * a run writes, on a compiled model (compiled.c) that it shares read-only.
 *
 * The context copies the compiled engine's struct and takes its own: the
 * counting allocator (over the same provider), the oneDNN engine and
 * stream, the tensors' plain-shadow reorders, every step's kernel, the
 * arena, working buffer, streaming ring with its loader threads, and the
 * fused FC's buffers. Kernels are per context because op states hold what
 * a run writes (oneDNN memory handles set per run, input conversion
 * buffers, recurrent and reduction scratch): sharing them would race.
 * They are prepared again from what the compiled model recorded of each
 * step (post-ops, Winograd off, part ranges), with weights only from
 * enclave memory - the shared resident segments, an op's kept prepare
 * weights, or a streamed segment opened (authenticated) from the stash -
 * never from the host; each Conv part must come out with the blob size and
 * kernel it had at compile, since its weight blob is the compiled model's.
 * oneDNN's primitive cache makes the second creation cheap. */
#include <dnnl.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"
#include "engine/exec_int.h"
#include "occ/crypto.h"
#include <openssl/crypto.h>

/* ---- kernels ---- */

/* A Conv part as compiled: prepared with the recorded settings; when oneDNN
 * picks another kernel than at compile (split_conv may have turned
 * Winograd off for the whole layer only), the other setting. */
static occ_status conv_part(occ_engine *eng, occ_op_prep *p, const step *s, uint32_t k,
                            void **out, occ_error *e)
{
    const conv_sig *g = &s->sig[k];
    for (int pass = 0; pass < 2; pass++) {
        void *st = NULL;
        p->no_winograd = pass ? !s->no_winograd : s->no_winograd;
        occ_status rc = occ_conv_part_prepare(p, g->o0, g->o1, &st, e);
        if (rc)
            return rc;
        occ_conv_info ci;
        occ_conv_part_info(st, &ci);
        if (ci.blob_size == g->blob_size && strcmp(ci.impl ? ci.impl : "", g->impl) == 0) {
            *out = st;
            return OCC_OK;
        }
        occ_conv_part_destroy(st);
    }
    (void)eng;
    return occ_fail(e, OCC_ERR_INTERNAL,
                    "this context's Conv kernel differs from the compiled model's (%s, %llu bytes of weights): "
                    "make contexts with the compiled model's thread count",
                    s->sig[k].impl, (unsigned long long)s->sig[k].blob_size);
}

/* The weight bytes [wlo, whi) an op reads at prepare: kept by the compiled
 * model, or its one segment (resident, or opened from the stash into tmp). */
static occ_status prep_weights(occ_engine *eng, const step *s, segmac **mc, uint8_t **tmp,
                               const uint8_t **out, occ_error *e)
{
    if (s->wprep) {
        *out = s->wprep;
        return OCC_OK;
    }
    if (s->kind != K_GENERIC || s->first_seg >= eng->n_segs)
        return occ_fail(e, OCC_ERR_INTERNAL, "no weights to prepare the kernel from");
    const seg *g = &eng->segs[s->first_seg];
    if (!g->streamed) {
        *out = g->res;
        return OCC_OK;
    }
    if (!*mc && !(*mc = occ_eng_segmac_new(eng)))
        return occ_fail(e, OCC_ERR_INTERNAL, "segment MAC setup failed");
    if (!(*tmp = occ_eng_emem_alloc(&eng->mem, g->size, e)))
        return occ_fail(e, OCC_ERR_NOMEM, "out of enclave memory for %llu bytes of weights",
                        (unsigned long long)g->size);
    if (!occ_eng_seg_begin(eng, *mc, s->first_seg, g->size) ||
        !occ_eng_seg_piece(*mc, *tmp, eng->stash + g->ct_off, g->size) ||
        !occ_eng_seg_end(*mc, g->tag)) {
        __atomic_add_fetch(&eng->integrity_failures, 1, __ATOMIC_RELAXED);
        return occ_fail(e, OCC_ERR_INTEGRITY, "weight segment %u failed authentication",
                        s->first_seg);
    }
    *out = *tmp;
    return OCC_OK;
}

static occ_status prepare_step(occ_engine *eng, step *s, segmac **mc, occ_error *e)
{
    const occ_model *m = eng->m;
    const occ_node *n = &m->nodes[s->node];
    const void *w[OCC_MAX_NODE_IO];
    const dnnl_memory_desc_t *in_md[OCC_MAX_NODE_IO];
    int is_conv = strcmp(n->op, "Conv") == 0;
    int by_shape = is_conv || !strcmp(n->op, "Gemm") || !strcmp(n->op, "MatMul") ||
                   !strcmp(n->op, "Gather");
    uint8_t *tmp = NULL;
    occ_status st = OCC_OK;
    for (uint32_t k = 0; k < n->n_inputs; k++) {
        int32_t t = n->inputs[k];
        w[k] = NULL;
        in_md[k] = t >= 0 && eng->t[t].blocked && !s->in_plain[k] ? &eng->t[t].md : NULL;
    }
    if (s->whi > s->wlo && !by_shape) {
        const uint8_t *src = NULL;
        if ((st = prep_weights(eng, s, mc, &tmp, &src, e)))
            goto out;
        for (uint32_t k = 0; k < n->n_inputs; k++) {
            const occ_tensor *t = occ_ops_in(m, n, k);
            if (t && t->kind == OCC_TENSOR_WEIGHT)
                w[k] = src + (t->data_offset - s->wlo);
        }
    }
    occ_op_prep p;
    memset(&p, 0, sizeof p);
    p.m = m;
    p.n = n;
    p.w = w;
    p.eng = eng->deng;
    p.in_md = in_md;
    p.n_post = s->n_post;
    memcpy(p.post, s->post, sizeof p.post);
    p.no_winograd = s->no_winograd;
    if (is_conv) {
        s->parts = calloc(s->n_parts ? s->n_parts : 1u, sizeof *s->parts);
        if (!s->parts) {
            st = occ_fail(e, OCC_ERR_NOMEM, "out of memory");
            goto out;
        }
        for (uint32_t k = 0; k < s->n_parts && !st; k++)
            st = conv_part(eng, &p, s, k, &s->parts[k], e);
    } else {
        st = s->v->prepare(&p, &s->state, e);
    }
    /* the layout the compiled model planned for the output (a Conv split
     * in parts reports each part's own: its blob signature was checked) */
    const trt *to = &eng->t[s->out];
    if (!st && !(is_conv && s->n_parts > 1) && (p.out_blocked != to->blocked ||
                (to->blocked && !dnnl_memory_desc_equal(&p.out_md, &to->md))))
        st = occ_fail(e, OCC_ERR_INTERNAL, "this context's kernel writes another layout than the compiled model's");
out:
    if (tmp) {
        OPENSSL_cleanse(tmp, (size_t)eng->segs[s->first_seg].size);
        occ_eng_emem_free(&eng->mem, tmp, eng->segs[s->first_seg].size);
    }
    if (st)
        occ_error_prefix(e, "node %s (%s)", nm(n->name), nm(n->op));
    return st;
}

/* ---- run memory ---- */

occ_status occ_eng_alloc_run_memory(occ_engine *eng, occ_error *e)
{
    const occ_model *m = eng->m;
    occ_status st;
    eng->arena = eng->arena_size ? occ_eng_emem_alloc(&eng->mem, eng->arena_size, e) : NULL;
    eng->scratch = eng->scratch_size ? occ_eng_emem_alloc(&eng->mem, eng->scratch_size, e) : NULL;
    if ((eng->arena_size && !eng->arena) || (eng->scratch_size && !eng->scratch))
        return occ_fail(e, OCC_ERR_NOMEM, "out of enclave memory for activations");
    /* the run's sequence of streamed segments: with split_k, the per-image
     * steps' segments once per image, then the batched steps' once */
    eng->n_streamed = 0;
    for (uint32_t g = 0; g < eng->n_segs; g++)
        if (eng->segs[g].streamed && !eng->segs[g].fused)
            eng->n_streamed += eng->split_k && eng->segs[g].step < eng->split_k ? eng->batch : 1;
    if (eng->n_streamed) {
        ring *r = &eng->ring;
        eng->streamed = calloc(eng->n_streamed, sizeof *eng->streamed);
        r->slots = occ_eng_window_slots(eng);
        r->slot = calloc(r->slots, sizeof *r->slot);
        r->ready = calloc(r->slots, sizeof *r->ready);
        if (!eng->streamed || !r->slot || !r->ready)
            return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
        uint32_t k = 0;
        for (uint32_t b = 0; eng->split_k && b < eng->batch; b++)
            for (uint32_t g = 0; g < eng->n_segs; g++)
                if (eng->segs[g].streamed && !eng->segs[g].fused && eng->segs[g].step < eng->split_k)
                    eng->streamed[k++] = g;
        eng->n_streamed_img = eng->split_k ? k / eng->batch : 0;
        for (uint32_t g = 0; g < eng->n_segs; g++)
            if (eng->segs[g].streamed && !eng->segs[g].fused && eng->segs[g].step >= eng->split_k)
                eng->streamed[k++] = g;
        for (uint32_t i = 0; i < r->slots; i++)
            if (!(r->slot[i] = occ_eng_emem_alloc(&eng->mem, eng->window_slot, e)))
                return occ_fail(e, OCC_ERR_NOMEM, "out of enclave memory for the weight window");
            else /* touched now: at run the compute thread and the loaders
                  * fill slots concurrently, and first touches would then
                  * come in a timing-dependent order */
                memset(r->slot[i], 0, (size_t)eng->window_slot);
        if (!(eng->help_ctx = occ_eng_segmac_new(eng)))
            return occ_fail(e, OCC_ERR_INTERNAL, "segment MAC setup failed");
        occ_status lst = occ_eng_loaders_start(eng, (uint32_t)eng->loader_threads, e);
        if (lst)
            return lst;
    }
    if ((st = occ_eng_fuse_alloc(eng, e)))
        return st;
    /* layout conversions to the plain shadows */
    for (uint32_t t = 0; t < m->n_tensors; t++) {
        trt *tt = &eng->t[t];
        if (tt->plain_buf < 0)
            continue;
        dnnl_memory_desc_t pmd;
        dnnl_primitive_desc_t pd;
        if ((st = occ_dnnl_plain_md(&pmd, m->tensors[t].ndim, m->tensors[t].dims, e)))
            return st;
        /* user scratchpad mode and none asked for: oneDNN 2.6 here shares a
         * library-mode scratchpad among the primitives a thread made, and
         * contexts made on one thread run on several */
        dnnl_primitive_attr_t attr = NULL;
        if ((st = occ_dnnl_check(dnnl_primitive_attr_create(&attr), "reorder attributes", e)))
            return st;
        dnnl_status_t as = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
        if (as == dnnl_success)
            as = dnnl_reorder_primitive_desc_create(&pd, &tt->md, eng->deng, &pmd, eng->deng, attr);
        dnnl_primitive_attr_destroy(attr);
        if ((st = occ_dnnl_check(as, "reorder to plain", e)))
            return st;
        const dnnl_memory_desc_t *spd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
        if (spd && dnnl_memory_desc_get_size(spd) > 0) {
            dnnl_primitive_desc_destroy(pd);
            return occ_fail(e, OCC_ERR_INTERNAL, "a layout conversion asks oneDNN for a scratchpad");
        }
        dnnl_status_t ds = dnnl_primitive_create(&tt->to_plain, pd);
        dnnl_primitive_desc_destroy(pd);
        if ((st = occ_dnnl_check(ds, "reorder to plain", e)))
            return st;
        if ((st = occ_dnnl_mem(&tt->from, &tt->md, eng->deng, NULL, e)) ||
            (st = occ_dnnl_mem(&tt->to, &pmd, eng->deng, NULL, e)))
            return st;
        eng->n_reorders++;
    }
    eng->times = calloc(m->n_nodes + 1u, sizeof *eng->times);
    if (!eng->times)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    return OCC_OK;
}

void occ_eng_free_run_memory(occ_engine *eng)
{
    occ_eng_loaders_quit(eng); /* before anything they read goes */
    if (eng->t) {
        for (uint32_t t = 0; t < eng->m->n_tensors; t++) {
            if (eng->t[t].to_plain)
                dnnl_primitive_destroy(eng->t[t].to_plain);
            if (eng->t[t].from)
                dnnl_memory_destroy(eng->t[t].from);
            if (eng->t[t].to)
                dnnl_memory_destroy(eng->t[t].to);
            eng->t[t].to_plain = NULL;
            eng->t[t].from = eng->t[t].to = NULL;
        }
    }
    if (eng->ring.slot) {
        for (uint32_t i = 0; i < eng->ring.slots; i++) {
            if (eng->ring.slot[i])
                OPENSSL_cleanse(eng->ring.slot[i], (size_t)eng->window_slot);
            occ_eng_emem_free(&eng->mem, eng->ring.slot[i], eng->window_slot);
        }
    }
    occ_eng_fuse_free(eng);
    occ_eng_segmac_free(eng->help_ctx);
    eng->help_ctx = NULL;
    occ_eng_emem_free(&eng->mem, eng->arena, eng->arena_size);
    occ_eng_emem_free(&eng->mem, eng->scratch, eng->scratch_size);
    eng->arena = eng->scratch = NULL;
    free(eng->ring.slot);
    free(eng->ring.ready);
    eng->ring.slot = NULL;
    eng->ring.ready = NULL;
    free(eng->streamed);
    eng->streamed = NULL;
    free(eng->times);
    eng->times = NULL;
}

/* ---- create ---- */

occ_status occ_engine_create_ctx(const occ_compiled *c, const occ_engine_opts *opts,
                                 occ_engine **out, occ_error *e)
{
    if (!out)
        return occ_fail(e, OCC_ERR_INVALID, "no output handle");
    *out = NULL;
    if (!c || !c->e)
        return occ_fail(e, OCC_ERR_INVALID, "no compiled model");
    if (opts && (opts->threads < 0 || opts->loader_threads < 0 || opts->loader_threads > 64))
        return occ_fail(e, OCC_ERR_INVALID, "threads must be >= 0, loader threads 0..64");
    const occ_engine *ce = c->e;
    const occ_model *m = ce->m;
    occ_engine *eng = malloc(sizeof *eng);
    if (!eng)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    /* the compiled model's fields, then this context's own */
    memcpy(eng, ce, sizeof *eng);
    eng->shared = ce;
    eng->own = NULL;
    if (opts && opts->threads)
        eng->threads = opts->threads;
    if (opts && opts->loader_threads)
        eng->loader_threads = opts->loader_threads;
    eng->mem.cur = eng->mem.peak = 0;
    pthread_mutex_init(&eng->mem.mu, NULL);
    eng->mem.ops = (occ_ops_allocator){&eng->mem, eng->mem.ops.alloc, eng->mem.ops.free};
    memset(&eng->ring, 0, sizeof eng->ring);
    pthread_mutex_init(&eng->ring.mu, NULL);
    pthread_cond_init(&eng->ring.cv, NULL);
    eng->ring.eng = eng;
    eng->deng = NULL;
    eng->stream = NULL;
    eng->help_ctx = NULL;
    eng->fuse = NULL;
    eng->times = NULL;
    eng->streamed = NULL;
    eng->arena = eng->scratch = NULL;
    eng->profiling = 0;
    eng->stall_ns = 0;
    eng->n_reorders = 0;
    /* counters: this context's runs (occ_engine_get_stats adds the compiled model's) */
    eng->chunks_loaded = eng->bytes_loaded = eng->bytes_verified = 0;
    eng->integrity_failures = eng->bytes_decrypted = 0;
    eng->t = malloc((m->n_tensors + 1u) * sizeof *eng->t);
    eng->steps = malloc((ce->n_steps + 1u) * sizeof *eng->steps);
    if (!eng->t || !eng->steps) {
        free(eng->t);
        free(eng->steps);
        pthread_mutex_destroy(&eng->mem.mu);
        pthread_mutex_destroy(&eng->ring.mu);
        pthread_cond_destroy(&eng->ring.cv);
        free(eng);
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    }
    memcpy(eng->t, ce->t, (m->n_tensors + 1u) * sizeof *eng->t);
    memcpy(eng->steps, ce->steps, (ce->n_steps + 1u) * sizeof *eng->steps);
    for (uint32_t t = 0; t < m->n_tensors; t++) {
        eng->t[t].to_plain = NULL;
        eng->t[t].from = eng->t[t].to = NULL;
    }
    for (uint32_t i = 0; i < eng->n_steps; i++) {
        eng->steps[i].state = NULL;
        eng->steps[i].parts = NULL;
    }
    occ_status st;
    segmac *mc = NULL;
    occ_ops_set_allocator(&eng->mem.ops);
    occ_eng_set_threads(eng);
    if ((st = occ_dnnl_check(dnnl_engine_create(&eng->deng, dnnl_cpu, 0), "engine", e)) ||
        (st = occ_dnnl_check(dnnl_stream_create(&eng->stream, eng->deng, dnnl_stream_default_flags),
                             "stream", e)))
        goto fail;
    eng->srun = NULL;
    for (uint32_t i = 0; i < eng->n_steps; i++)
        if ((st = prepare_step(eng, &eng->steps[i], &mc, e)))
            goto fail;
    if ((st = occ_eng_strips_prepare(eng, e)))
        goto fail;
    occ_eng_segmac_free(mc);
    mc = NULL;
    if ((st = occ_eng_alloc_run_memory(eng, e)))
        goto fail;
    occ_ops_set_allocator(NULL);
    *out = eng;
    return OCC_OK;
fail:
    occ_eng_segmac_free(mc);
    occ_ops_set_allocator(NULL);
    occ_engine_free(eng);
    return st;
}
