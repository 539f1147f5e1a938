/* libFuzzer target: occ_engine_create (and one run) with hostile manifests
 * and chunks (issue 15). Input: byte 0 = options, then the manifest bytes.
 *   bit 0: batch 2 instead of 1
 *   bit 7: chunks as they come (their SHA-256 from the manifest must match
 *          the data: the integrity check refuses them), else the target
 *          rehashes every chunk of the decoded model over its data, so the
 *          fuzzer reaches what comes after verification: shape re-inference,
 *          planning, weight layout, kernels.
 * The data section is the input's bytes repeated (up to 4 MiB). The engine
 * runs in occlumency mode under a 2 MiB budget, so what it may allocate is
 * bounded whatever the manifest claims; a model it accepts runs once on
 * zeros when its tensors are small. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "occ/crypto.h"
#include "occ/engine.h"
#include "occ/model.h"

typedef struct src {
    const uint8_t *data;
    uint64_t size;
} src;

static occ_status rd(void *ctx, uint64_t off, void *dst, uint64_t size, occ_error *e)
{
    src *s = ctx;
    if (off > s->size || size > s->size - off)
        return occ_fail(e, OCC_ERR_IO, "read out of range");
    memcpy(dst, s->data + off, size);
    return OCC_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint8_t opt = data[0];
    occ_model *m = NULL;
    occ_error e;
    if (occ_manifest_decode(data + 1, size - 1, &m, &e) != OCC_OK)
        return 0;
    if (m->data_size > (4u << 20)) {
        occ_model_free(m);
        return 0;
    }
    uint8_t *ds = malloc(m->data_size ? m->data_size : 1);
    for (uint64_t i = 0; ds && i < m->data_size; i++)
        ds[i] = data[i % size];
    if (ds && !(opt & 0x80))
        for (uint32_t i = 0; i < m->n_chunks; i++)
            if (m->chunks[i].offset <= m->data_size && m->chunks[i].size <= m->data_size - m->chunks[i].offset)
                (void)occ_sha256(ds + m->chunks[i].offset, (size_t)m->chunks[i].size, m->chunks[i].sha256);
    src s = {ds, m->data_size};
    occ_engine_opts o = {0};
    o.threads = 1;
    o.mode = OCC_MODE_OCCLUMENCY;
    o.budget = 2u << 20;
    o.batch = (opt & 1) ? 2 : 1;
    occ_engine *eng = NULL;
    if (ds && occ_engine_create(m, &o, rd, &s, &eng, &e) == OCC_OK) {
        uint64_t io = 0;
        for (uint32_t i = 0; i < m->n_inputs; i++)
            io += m->tensors[m->inputs[i]].size;
        for (uint32_t i = 0; i < m->n_outputs; i++)
            io += m->tensors[m->outputs[i]].size;
        if (io * o.batch <= (1u << 20) && m->n_inputs + m->n_outputs <= 64) {
            void *bufs[64] = {0};
            int ok = 1;
            for (uint32_t i = 0; i < m->n_inputs; i++)
                ok &= (bufs[i] = calloc(o.batch, (size_t)m->tensors[m->inputs[i]].size + 1)) != NULL;
            for (uint32_t i = 0; i < m->n_outputs; i++)
                ok &= (bufs[m->n_inputs + i] = calloc(o.batch, (size_t)m->tensors[m->outputs[i]].size + 1)) != NULL;
            if (ok)
                (void)occ_engine_run(eng, (const void *const *)bufs, bufs + m->n_inputs, &e);
            for (uint32_t i = 0; i < m->n_inputs + m->n_outputs; i++)
                free(bufs[i]);
        }
        occ_engine_free(eng);
    }
    free(ds);
    occ_model_free(m);
    return 0;
}
