/* libFuzzer target: the trusted manifest decoder on arbitrary bytes. */
#include <stddef.h>
#include <stdint.h>

#include "occ/model.h"

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
        occ_model_free(m);
    }
    return 0;
}
