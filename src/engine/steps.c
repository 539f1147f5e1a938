/* The engine's steps (split out of exec.c): fusion, storage layouts and
 * kernel preparation of each node, and the splitting of a layer's weights
 * into parts (a Conv by output channels, a Gemm by columns, a MatMul or a
 * weight-table Gather by rows). Types: exec_int.h. */
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
#include <openssl/crypto.h>

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

int32_t occ_eng_root_of(const occ_engine *eng, int32_t t)
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
    int32_t root = occ_eng_root_of(eng, r);
    for (uint32_t u = 0; u < m->n_tensors; u++) {
        if (eng->t[u].virt || occ_eng_root_of(eng, (int32_t)u) != root)
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

/* The channel block of a blocked layout (16 for nChw16c on AVX-512, 8 for
 * nChw8c on AVX2), 0 for any other layout: a part must start on a block. */
static int64_t channel_block(const dnnl_memory_desc_t *md)
{
    if (md->format_kind != dnnl_blocked || md->format_desc.blocking.inner_nblks != 1 ||
        md->format_desc.blocking.inner_idxs[0] != 1)
        return 0;
    return md->format_desc.blocking.inner_blks[0];
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
 * most eng->seg_max bytes (whole channel blocks for a blocked output),
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
    const int64_t cb = ob ? channel_block(&p->out_md) : 0;
    int64_t gran = ob ? cb : group > 1 ? mch / group : 1, per = 0;
    /* a grouped 1-D part reorders only its own groups' input: no extra work */
    const int g1d = group > 1 && x->ndim == 3 && !ob;
    int ok = full.blob_size > eng->seg_max && x->dims[0] == 1 && (group == 1 || g1d) &&
             (!full.reorders_input || g1d) && (!ob || cb > 0);
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

/* A channel Concat of blocked feature maps needs no copy when each input is
 * written straight into its place in the Concat's output: with one image
 * and whole channel blocks, input i's channels [c0, c0 + C_i) are one
 * contiguous range of the output (byte c0 * H * W * 4 on). Only inputs
 * that nothing else reads, that are no graph output and that share no
 * storage already; every input and the output in the canonical layout. */
static int concat_elidable(const occ_engine *eng, const step *s, const occ_node *n)
{
    const occ_model *m = eng->m;
    const occ_attr *ax = occ_ops_attr(n, "axis");
    const trt *to = &eng->t[s->out];
    const occ_tensor *y = &m->tensors[s->out];
    if (!ax || ax->type != OCC_ATTR_INT || (ax->i != 1 && ax->i != -3) || y->ndim != 4 ||
        y->dims[0] != 1 || !to->blocked || to->alias >= 0 || n->n_inputs < 2)
        return 0;
    const int64_t cb = channel_block(&to->md);
    dnnl_memory_desc_t want;
    dnnl_dims_t d = {y->dims[0], y->dims[1], y->dims[2], y->dims[3]};
    if (cb <= 0 || dnnl_memory_desc_init_by_tag(&want, 4, d, dnnl_f32, occ_conv_canonical_tag()) ||
        !dnnl_memory_desc_equal(&want, &to->md))
        return 0;
    for (uint32_t k = 0; k < n->n_inputs; k++) {
        int32_t t = n->inputs[k];
        if (t < 0 || m->tensors[t].kind == OCC_TENSOR_WEIGHT || s->in_plain[k])
            return 0;
        const trt *ti = &eng->t[t];
        const occ_tensor *x = &m->tensors[t];
        if (ti->producer_node < 0 || ti->n_cons != 1 || ti->is_output || ti->alias >= 0 ||
            ti->need_plain || !ti->blocked || x->ndim != 4 || x->dims[1] % cb)
            return 0;
        int32_t ps = eng->node_step[ti->producer_node];
        if (ps < 0 || eng->steps[ps].out != t || eng->steps[ps].sum_src >= 0)
            return 0;
        dnnl_dims_t dx = {x->dims[0], x->dims[1], x->dims[2], x->dims[3]};
        if (dnnl_memory_desc_init_by_tag(&want, 4, dx, dnnl_f32, occ_conv_canonical_tag()) ||
            !dnnl_memory_desc_equal(&want, &ti->md))
            return 0;
        for (uint32_t j = 0; j < k; j++)
            if (n->inputs[j] == t)
                return 0;
    }
    return 1;
}

static void elide_concat(occ_engine *eng, step *s, const occ_node *n)
{
    const occ_tensor *y = &eng->m->tensors[s->out];
    uint64_t c0 = 0;
    for (uint32_t k = 0; k < n->n_inputs; k++) {
        trt *ti = &eng->t[n->inputs[k]];
        ti->alias = s->out;
        ti->alias_off = c0 * (uint64_t)y->dims[2] * (uint64_t)y->dims[3] * 4u;
        c0 += (uint64_t)eng->m->tensors[n->inputs[k]].dims[1];
    }
    s->elided = 1;
    eng->n_concats_elided++;
}

occ_status occ_eng_build_steps(occ_engine *eng, vreader *vr, occ_error *e)
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
        const occ_op_vtable *v = occ_op_node_vtable(m, n); /* a no-op when every output is empty */
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
        occ_eng_node_weight_range(m, n, &s->wlo, &s->whi);
        for (uint32_t k = 0; k < n->n_inputs; k++)
            w[k] = NULL;
        if (s->whi > s->wlo && !is_conv && !is_gemm && !is_matmul && !is_gather) {
            /* ops that may read their weights at prepare get them now
             * (verified); Conv, Gemm, MatMul and Gather are prepared from
             * shapes alone (a table of 94 MB must never be whole in the
             * enclave at once) */
            wtmp_size = s->whi - s->wlo;
            wtmp = occ_eng_emem_alloc(&eng->mem, wtmp_size, e);
            if (!wtmp) {
                st = occ_fail(e, OCC_ERR_NOMEM, "out of memory for %llu bytes of weights",
                              (unsigned long long)wtmp_size);
                goto node_fail;
            }
            if ((st = occ_eng_vread(vr, s->wlo, s->whi, wtmp, e)))
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
        /* what a context needs to prepare this kernel again (context.c) */
        s->n_post = p.n_post;
        memcpy(s->post, p.post, sizeof s->post);
        s->no_winograd = p.no_winograd;
        if (s->kind == K_CONV) {
            if (!(s->sig = calloc(s->n_parts, sizeof *s->sig))) {
                st = occ_fail(e, OCC_ERR_NOMEM, "out of memory");
                goto node_fail;
            }
            for (uint32_t k = 0; k < s->n_parts; k++) {
                occ_conv_info ci;
                occ_conv_part_info(s->parts[k], &ci);
                s->sig[k].o0 = s->n_parts > 1 ? ci.o0 : 0;
                s->sig[k].o1 = s->n_parts > 1 ? ci.o1 : 0;
                s->sig[k].blob_size = ci.blob_size;
                snprintf(s->sig[k].impl, sizeof s->sig[k].impl, "%s", ci.impl ? ci.impl : "");
            }
        }
        if (s->kind == K_NONE && wtmp) {
            /* an op that copies its weights at prepare: keep the verified
             * bytes (shared by the contexts, which prepare it again) */
            s->wprep = wtmp;
            eng->wprep_bytes += occ_eng_emem_round(&eng->mem, wtmp_size);
        } else {
            occ_eng_emem_free(&eng->mem, wtmp, wtmp_size);
        }
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
            to->alias = occ_eng_root_of(eng, s->sum_src);
        }
        if (strcmp(n->op, "Concat") == 0 && s->kind == K_NONE && concat_elidable(eng, s, n))
            elide_concat(eng, s, n);
        for (uint32_t k = 0; k < n->n_inputs; k++) {
            const occ_tensor *t = occ_ops_in(m, n, k);
            if (t && t->kind == OCC_TENSOR_WEIGHT)
                eng->weights_size += t->size;
        }
        eng->node_step[i] = (int32_t)eng->n_steps;
        eng->n_steps++;
        continue;
    node_fail:
        occ_eng_emem_free(&eng->mem, wtmp, wtmp_size);
        if (st)
            eng->n_steps++; /* so that free() destroys what was prepared */
        occ_error_prefix(e, "node %s (%s)", nm(n->name), nm(n->op));
    }
    free(fused);
    return st;
}

