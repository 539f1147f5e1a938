/* Fuzz target: operator inference on untrusted manifests. The engine
 * re-infers every node's types and shapes from a decoded manifest before it
 * trusts them (src/engine/exec.c validate); this runs the same registry
 * checks and every operator's infer (typed operators included) on whatever
 * decodes, in execution order, as the engine does. Seeds: fuzz/corpus/infer/. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "occ/model.h"
#include "ops/ops.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    occ_model *m = NULL;
    occ_error e;
    if (occ_manifest_decode(data, size, &m, &e) != OCC_OK)
        return 0;
    occ_tensor *copy = malloc(((size_t)m->n_tensors + 1) * sizeof *copy);
    if (copy) {
        memcpy(copy, m->tensors, (size_t)m->n_tensors * sizeof *copy);
        occ_model mm = *m;
        mm.tensors = copy;
        for (uint32_t i = 0; i < m->n_nodes; i++)
            if (occ_op_infer(&mm, &m->nodes[i], &e) == OCC_OK)
                (void)occ_op_flops(&mm, &m->nodes[i]);
        free(copy);
    }
    occ_model_free(m);
    return 0;
}
