/* libFuzzer: KServe v2 infer request decoding (JSON tensors and the binary
 * extension) against a two-input model, and the response encoding of what
 * was accepted. Bytes 0-1: Inference-Header-Content-Length (0xffff = absent). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "enclave/kserve.h"

static occ_tensor tensors[4] = {
    {.name = "a", .kind = OCC_TENSOR_INPUT, .ndim = 2, .dims = {1, 3}, .size = 12},
    {.name = "b", .kind = OCC_TENSOR_INPUT, .ndim = 3, .dims = {1, 2, 2}, .size = 16},
    {.name = "y", .kind = OCC_TENSOR_ACT, .ndim = 2, .dims = {1, 2}, .size = 8},
    {.name = "z", .kind = OCC_TENSOR_ACT, .ndim = 1, .dims = {3}, .size = 12},
};
static const int32_t in_idx[2] = {0, 1}, out_idx[2] = {2, 3};
static const occ_model model = {.name = "m", .n_tensors = 4, .tensors = tensors, .n_inputs = 2, .n_outputs = 2,
                                .inputs = in_idx, .outputs = out_idx};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    unsigned hl = (unsigned)data[0] | (unsigned)data[1] << 8;
    int64_t header = hl == 0xffff ? -1 : (int64_t)hl;
    data += 2;
    size -= 2;
    /* the body in its own allocation so reads past it are caught */
    uint8_t *body = malloc(size ? size : 1);
    if (!body)
        return 0;
    memcpy(body, data, size);
    float a[3], b[4];
    void *ins[2] = {a, b};
    occ_kserve_request req;
    if (occ_kserve_decode_infer(&model, body, size, header, 256, ins, &req, NULL) == OCC_OK) {
        float y[2] = {a[0], b[3]}, z[3] = {a[1], a[2], b[0]};
        const void *outs[2] = {y, z};
        uint8_t *out = NULL;
        size_t n = 0, js = 0;
        if (occ_kserve_encode_infer(&model, "m", &req, outs, &out, &n, &js, NULL) == OCC_OK) {
            if (js > n)
                __builtin_trap();
            free(out);
        }
    }
    free(body);
    return 0;
}
