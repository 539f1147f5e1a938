/* libFuzzer: KServe v2 infer request decoding (JSON tensors and the binary
 * extension) against a two-input FP32 model, a typed model (INT64, BOOL,
 * UINT8, INT8, INT32, FP16 inputs and outputs) and a wide one (FP64, INT16,
 * UINT16, UINT32, UINT64, BF16), and the response encoding of what was
 * accepted. Bytes 0-1: Inference-Header-Content-Length (0xffff =
 * absent). */
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

static occ_tensor ttensors[10] = {
    {.name = "ids", .dtype = OCC_DTYPE_INT64, .ndim = 2, .dims = {1, 3}, .size = 24},
    {.name = "m", .dtype = OCC_DTYPE_BOOL, .ndim = 1, .dims = {2}, .size = 2},
    {.name = "q", .dtype = OCC_DTYPE_UINT8, .ndim = 1, .dims = {2}, .size = 2},
    {.name = "s", .dtype = OCC_DTYPE_INT8, .ndim = 1, .dims = {1}, .size = 1},
    {.name = "i", .dtype = OCC_DTYPE_INT32, .ndim = 1, .dims = {1}, .size = 4},
    {.name = "h", .dtype = OCC_DTYPE_FLOAT16, .ndim = 1, .dims = {2}, .size = 4},
    {.name = "o64", .dtype = OCC_DTYPE_INT64, .ndim = 1, .dims = {2}, .size = 16},
    {.name = "ob", .dtype = OCC_DTYPE_BOOL, .ndim = 1, .dims = {1}, .size = 1},
    {.name = "oh", .dtype = OCC_DTYPE_FLOAT16, .ndim = 1, .dims = {1}, .size = 2},
    {.name = "oi", .dtype = OCC_DTYPE_INT32, .ndim = 1, .dims = {1}, .size = 4},
};
static const int32_t tin_idx[6] = {0, 1, 2, 3, 4, 5}, tout_idx[4] = {6, 7, 8, 9};
static const occ_model tmodel = {.name = "t", .n_tensors = 10, .tensors = ttensors, .n_inputs = 6, .n_outputs = 4,
                                 .inputs = tin_idx, .outputs = tout_idx};

static void typed(const uint8_t *body, size_t size, int64_t header)
{
    /* each tensor in its own allocation so a write past it is caught */
    void *ins[6];
    for (int k = 0; k < 6; k++)
        ins[k] = malloc(ttensors[k].size);
    occ_kserve_request req;
    if (occ_kserve_decode_infer(&tmodel, body, size, header, 256, ins, &req, NULL) == OCC_OK) {
        /* bool outputs must be 0/1 as the engine writes them */
        const uint8_t *m = ins[1];
        if (m[0] > 1 || m[1] > 1)
            __builtin_trap();
        uint8_t ob[1] = {m[0]};
        const void *outs[4] = {ins[0], ob, ins[5], ins[4]};
        uint8_t *out = NULL;
        size_t n = 0, js = 0;
        if (occ_kserve_encode_infer(&tmodel, "t", &req, outs, &out, &n, &js, NULL) == OCC_OK) {
            if (js > n)
                __builtin_trap();
            free(out);
        }
    }
    for (int k = 0; k < 6; k++)
        free(ins[k]);
}

static occ_tensor wtensors[12] = {
    {.name = "d", .dtype = OCC_DTYPE_DOUBLE, .ndim = 1, .dims = {2}, .size = 16},
    {.name = "s", .dtype = OCC_DTYPE_INT16, .ndim = 1, .dims = {2}, .size = 4},
    {.name = "w", .dtype = OCC_DTYPE_UINT16, .ndim = 1, .dims = {2}, .size = 4},
    {.name = "u32", .dtype = OCC_DTYPE_UINT32, .ndim = 1, .dims = {2}, .size = 8},
    {.name = "u64", .dtype = OCC_DTYPE_UINT64, .ndim = 1, .dims = {2}, .size = 16},
    {.name = "bf", .dtype = OCC_DTYPE_BFLOAT16, .ndim = 1, .dims = {2}, .size = 4},
    {.name = "od", .dtype = OCC_DTYPE_DOUBLE, .ndim = 1, .dims = {2}, .size = 16},
    {.name = "os", .dtype = OCC_DTYPE_INT16, .ndim = 1, .dims = {2}, .size = 4},
    {.name = "ow", .dtype = OCC_DTYPE_UINT16, .ndim = 1, .dims = {2}, .size = 4},
    {.name = "ou32", .dtype = OCC_DTYPE_UINT32, .ndim = 1, .dims = {2}, .size = 8},
    {.name = "ou64", .dtype = OCC_DTYPE_UINT64, .ndim = 1, .dims = {2}, .size = 16},
    {.name = "obf", .dtype = OCC_DTYPE_BFLOAT16, .ndim = 1, .dims = {2}, .size = 4},
};
static const int32_t win_idx[6] = {0, 1, 2, 3, 4, 5}, wout_idx[6] = {6, 7, 8, 9, 10, 11};
static const occ_model wmodel = {.name = "w", .n_tensors = 12, .tensors = wtensors, .n_inputs = 6, .n_outputs = 6,
                                 .inputs = win_idx, .outputs = wout_idx};

/* The wide model: what decodes is echoed back (input k as output k), so
 * every accepted value (NaN, infinities, uint64 beyond 2^53) is encoded. */
static void wide(const uint8_t *body, size_t size, int64_t header)
{
    void *ins[6];
    for (int k = 0; k < 6; k++)
        ins[k] = malloc(wtensors[k].size);
    occ_kserve_request req;
    if (occ_kserve_decode_infer(&wmodel, body, size, header, 256, ins, &req, NULL) == OCC_OK) {
        const void *outs[6] = {ins[0], ins[1], ins[2], ins[3], ins[4], ins[5]};
        uint8_t *out = NULL;
        size_t n = 0, js = 0;
        if (occ_kserve_encode_infer(&wmodel, "w", &req, outs, &out, &n, &js, NULL) == OCC_OK) {
            if (js > n)
                __builtin_trap();
            free(out);
        }
    }
    for (int k = 0; k < 6; k++)
        free(ins[k]);
}

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
    typed(body, size, header);
    wide(body, size, header);
    free(body);
    return 0;
}
