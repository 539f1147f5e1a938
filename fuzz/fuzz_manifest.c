/* libFuzzer target: the trusted manifest decoder on arbitrary bytes, and for
 * every manifest it accepts, the encoder: re-encoding must give a manifest
 * that decodes to the same chunk table and weights-encryption fields
 * (version 3: scheme, pack id, key check, a tag per chunk), and the chunk
 * cipher must take (or refuse) any key check without failing otherwise. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "occ/model.h"
#include "occ/weights_crypt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    occ_model *m = NULL;
    occ_error e;
    if (occ_manifest_decode(data, size, &m, &e) == OCC_OK) {
        /* Touch what a consumer would: every tensor, node and attribute. */
        volatile uint64_t sink = 0;
        for (uint32_t i = 0; i < m->n_tensors; i++)
            sink += (uint64_t)occ_tensor_count(&m->tensors[i]);
        for (uint32_t i = 0; i < m->n_nodes; i++)
            for (uint32_t k = 0; k < m->nodes[i].n_attrs; k++)
                sink += m->nodes[i].attrs[k].count;
        (void)sink;
        uint8_t *enc = NULL;
        size_t n = 0;
        if (occ_manifest_encode(m, &enc, &n, &e) != OCC_OK)
            abort(); /* what the decoder accepts, the encoder writes */
        occ_model *m2 = NULL;
        if (occ_manifest_decode(enc, n, &m2, &e) != OCC_OK || m2->n_chunks != m->n_chunks ||
            m2->weights_crypt != m->weights_crypt || memcmp(m2->pack_id, m->pack_id, 16) ||
            memcmp(m2->key_check, m->key_check, 32))
            abort();
        for (uint32_t i = 0; i < m->n_chunks; i++)
            if (m2->chunks[i].offset != m->chunks[i].offset || m2->chunks[i].size != m->chunks[i].size ||
                memcmp(m2->chunks[i].sha256, m->chunks[i].sha256, 32) ||
                memcmp(m2->chunks[i].tag, m->chunks[i].tag, 16))
                abort();
        static const uint8_t key[32] = {1};
        occ_wcrypt *c = NULL;
        occ_status s = occ_wcrypt_for_model(m, key, &c, &e);
        if (s != OCC_OK && s != OCC_ERR_KEY && s != OCC_ERR_INVALID)
            abort();
        occ_wcrypt_free(c);
        occ_model_free(m2);
        free(enc);
        occ_model_free(m);
    }
    return 0;
}
