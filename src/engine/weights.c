/* Weights at create (split out of exec.c): verified reads of the data
 * section, the segments (the unit of residency and streaming) and their
 * kernel-ready bytes, and the loading that keeps every resident segment and
 * seals every streamed one into the untrusted stash (stream.c). Types:
 * exec_int.h. */
#include <dnnl.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* ---- verified reads of the data section (at create) ---- */

/* Copies verified bytes [lo, hi) of the data section into dst: each chunk
 * covering them is read into enclave memory and its SHA-256 checked there
 * before a byte of it is used. */
occ_status occ_eng_vread(vreader *r, uint64_t lo, uint64_t hi, uint8_t *dst, occ_error *e)
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

void occ_eng_node_weight_range(const occ_model *m, const occ_node *n, uint64_t *lo, uint64_t *hi)
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

/* ---- segments: the unit of residency and streaming ---- */

occ_status occ_eng_make_segments(occ_engine *eng, occ_error *e)
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
uint64_t occ_eng_seg_plain_size(const occ_engine *eng, const seg *g)
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
        if ((st = occ_eng_vread(vr, w->data_offset + (uint64_t)in.o0 * rowb,
                        w->data_offset + (uint64_t)in.o1 * rowb, plain, e)))
            return st;
        if (b && (st = occ_eng_vread(vr, b->data_offset + (uint64_t)in.o0 * 4u,
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
        if ((st = occ_eng_vread(vr, b->data_offset + (uint64_t)j0 * rowb,
                        b->data_offset + (uint64_t)j1 * rowb, dst, e)))
            return st;
        if (c) {
            if (s->gemm_c_full)
                st = occ_eng_vread(vr, c->data_offset, c->data_offset + c->size, dst + coff, e);
            else
                st = occ_eng_vread(vr, c->data_offset + (uint64_t)j0 * 4u,
                           c->data_offset + (uint64_t)j1 * 4u, dst + coff, e);
        }
        return st;
    }
    if (s->kind == K_MATMUL || s->kind == K_GATHER) {
        const occ_tensor *w = occ_ops_in(m, nd, s->kind == K_MATMUL ? 1 : 0);
        uint64_t r0 = (uint64_t)s->cols[g->part], r1 = (uint64_t)s->cols[g->part + 1];
        return occ_eng_vread(vr, w->data_offset + r0 * s->row_bytes, w->data_offset + r1 * s->row_bytes,
                     dst, e);
    }
    return occ_eng_vread(vr, s->wlo, s->whi, dst, e);
}

/* ---- loading: verify every chunk once, keep or seal every segment ---- */

occ_status occ_eng_load_weights(occ_engine *eng, vreader *vr, occ_error *e)
{
    occ_status st = OCC_OK;
    uint64_t max_plain = 0, max_seg = 0, stash = 0;
    for (uint32_t g = 0; g < eng->n_segs; g++) {
        seg *sg = &eng->segs[g];
        uint64_t p = occ_eng_seg_plain_size(eng, sg);
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
        if (!(sg->res = occ_eng_emem_alloc(&eng->mem, sg->size, e)))
            return occ_fail(e, OCC_ERR_NOMEM, "out of memory for %llu bytes of weights",
                            (unsigned long long)sg->size);
        eng->weights_size += sg->size;
    }
    uint8_t *plain = max_plain ? occ_eng_emem_alloc(&eng->mem, max_plain, e) : NULL;
    uint8_t *tmp = max_seg ? occ_eng_emem_alloc(&eng->mem, max_seg + 16u, e) : NULL;
    if ((max_plain && !plain) || (max_seg && !tmp)) {
        st = occ_fail(e, OCC_ERR_NOMEM, "out of memory for the load buffers");
        goto out;
    }
    if (stash) {
        eng->stash = occ_eng_untrusted_alloc(stash);
        eng->stash_size = stash;
        eng->key = occ_eng_emem_alloc(&eng->mem, 32, e);
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
        occ_eng_emem_free(&eng->mem, tmp, max_seg + 16u);
    }
    occ_eng_emem_free(&eng->mem, plain, max_plain);
    return st;
}

