/* Packer tests that import what they build and run it (test_pack_import.c,
 * test_pack_typed.c, test_zerosize.c, test_seq_gconv.c, test_seq_conv_chain.c,
 * test_seq_epilogue.c): the graph b packed and imported, the weights read
 * from memory, and the imported model run once as a pack would be. */
#ifndef OCC_TEST_PACK_RUN_H
#define OCC_TEST_PACK_RUN_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "occ/crypto.h"
#include "occ/engine.h"
#include "occ/packer.h"
#include "occ/status.h"
#include "test_pack_onnx.h"

/* Packs b into ONNX bytes and imports them with options o (NULL: defaults). */
static inline occ_status tb_import(tb *b, const occ_pack_options *o, occ_import **im, occ_error *e)
{
    uint8_t *buf;
    size_t size;
    tb_pack(b, &buf, &size);
    memset(e, 0, sizeof *e);
    *im = NULL;
    occ_status s = occ_import_onnx(buf, size, o, im, e);
    free(buf);
    return s;
}

/* An engine's read function over weights in memory. */
typedef struct tb_mem {
    const uint8_t *data;
    uint64_t size;
} tb_mem;

static inline occ_status tb_mem_read(void *ctx, uint64_t off, void *dst, uint64_t size, occ_error *e)
{
    const tb_mem *r = ctx;
    if (off > r->size || size > r->size - off)
        return occ_fail(e, OCC_ERR_IO, "read outside the data");
    memcpy(dst, r->data + off, size);
    return OCC_OK;
}

/* Lays out the imported model's weights in chunks of chunk_size, hashes
 * them, encodes and decodes its manifest (as a pack's), then creates an
 * engine with options o and runs it once: inputs ins, outputs outs; its
 * stats into *st and the decoded model's output tensors (shapes, types)
 * into mout[0..n_outputs) when not NULL. */
static inline occ_status tb_run_import(occ_import *im, uint64_t chunk_size,
                                       const occ_engine_opts *o, const void *const *ins,
                                       void *const *outs, occ_engine_stats *st, occ_tensor *mout,
                                       occ_error *e)
{
    uint8_t *data = NULL, *man = NULL;
    size_t man_size = 0;
    occ_model *m = NULL;
    occ_engine *eng = NULL;
    occ_status s = occ_import_layout(im, chunk_size, &data, e);
    occ_model *im_m = occ_import_model(im);
    for (uint32_t k = 0; !s && k < im_m->n_chunks; k++)
        if (occ_sha256(data + im_m->chunks[k].offset, (size_t)im_m->chunks[k].size,
                       im_m->chunks[k].sha256))
            s = occ_fail(e, OCC_ERR_INTERNAL, "sha256");
    if (!s)
        s = occ_manifest_encode(im_m, &man, &man_size, e);
    if (!s)
        s = occ_manifest_decode(man, man_size, &m, e);
    for (uint32_t k = 0; !s && mout && k < m->n_outputs; k++)
        mout[k] = m->tensors[m->outputs[k]];
    tb_mem r = {data, m ? m->data_size : 0};
    if (!s)
        s = occ_engine_create(m, o, tb_mem_read, &r, &eng, e);
    if (!s)
        s = occ_engine_run(eng, (const void **)ins, (void **)outs, e);
    if (!s && st)
        occ_engine_get_stats(eng, st);
    occ_engine_free(eng);
    occ_model_free(m);
    free(man);
    free(data);
    return s;
}

/* One float input x, one output y, chunks of 64 KiB. */
static inline occ_status tb_run_import1(occ_import *im, const occ_engine_opts *o, const float *x,
                                        float *y, occ_error *e)
{
    const void *ins[1] = {x};
    void *outs[1] = {y};
    return tb_run_import(im, 64u << 10, o, ins, outs, NULL, NULL, e);
}

/* How many nodes of the model run op. */
static inline int tb_count_op(const occ_model *m, const char *op)
{
    int c = 0;
    for (uint32_t k = 0; k < m->n_nodes; k++)
        c += !strcmp(m->nodes[k].op, op);
    return c;
}

#endif
