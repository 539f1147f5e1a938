/* libFuzzer target: the host-side ONNX importer on arbitrary bytes. Seeds in
 * fuzz/corpus/onnx/ (small torch exports and a hand-made Conv+BN+shape-chain
 * model).
 *
 * Invariant checked beyond "no crash, no leak": whatever the importer accepts
 * lays out and encodes into a manifest that the trusted decoder accepts too,
 * with the same graph size. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "occ/model.h"
#include "occ/packer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    occ_import *im = NULL;
    occ_error e;
    occ_pack_options o = {0};
    if (occ_import_onnx(data, size, &o, &im, &e) != OCC_OK)
        return 0;
    occ_model *m = occ_import_model(im);
    uint8_t *section = NULL;
    if (occ_import_layout(im, 64u << 10, &section, &e) == OCC_OK) {
        uint8_t *man = NULL;
        size_t man_size = 0;
        if (occ_manifest_encode(m, &man, &man_size, &e) == OCC_OK) {
            occ_model *back = NULL;
            if (occ_manifest_decode(man, man_size, &back, &e) != OCC_OK)
                __builtin_trap(); /* the packer wrote a manifest the engine refuses */
            if (back->n_nodes != m->n_nodes || back->n_tensors != m->n_tensors)
                __builtin_trap();
            occ_model_free(back);
            free(man);
        }
        free(section);
    }
    occ_import_free(im);
    return 0;
}
