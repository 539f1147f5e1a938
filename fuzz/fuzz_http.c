/* libFuzzer: the enclave's HTTP request path — the request framing
 * (src/enclave/http.c) fed in fuzzer-chosen pieces (a Content-Length body
 * written in place first, as the server decrypts it there), every complete
 * request answered in order, infer bodies decoded against a small model
 * (src/enclave/kserve.c) as the server does. First byte: piece size. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "enclave/http.h"
#include "enclave/kserve.h"

static occ_tensor tensors[2] = {
    {.name = "input", .kind = OCC_TENSOR_INPUT, .ndim = 4, .dims = {1, 1, 2, 2}, .size = 16},
    {.name = "logits", .kind = OCC_TENSOR_ACT, .ndim = 2, .dims = {1, 3}, .size = 12},
};
static const int32_t in_idx[1] = {0}, out_idx[1] = {1};
static const occ_model model = {.name = "m", .n_tensors = 2, .tensors = tensors, .n_inputs = 1, .n_outputs = 1,
                                .inputs = in_idx, .outputs = out_idx};

static void serve(const occ_http_request *r)
{
    if (r->body_size > 4096 || strlen(r->path) >= OCC_HTTP_MAX_URL)
        __builtin_trap();
    size_t n = strlen(r->path);
    if (n >= 6 && !strcmp(r->path + n - 6, "/infer")) {
        float in[4];
        void *ins[1] = {in};
        occ_kserve_request req;
        if (occ_kserve_decode_infer(&model, r->body, r->body_size, r->inference_header_length, 64, ins, &req, NULL) ==
            OCC_OK) {
            float out[3] = {in[0], in[1], in[2]};
            const void *outs[1] = {out};
            uint8_t *body = NULL;
            size_t size = 0, js = 0;
            if (occ_kserve_encode_infer(&model, "m", &req, outs, &body, &size, &js, NULL) == OCC_OK)
                free(body);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!size)
        return 0;
    size_t piece = (size_t)data[0] % 64 + 1;
    data++;
    size--;
    occ_http *h = NULL;
    if (occ_http_new(4096, &h, NULL))
        return 0;
    for (size_t off = 0, n = 0; off < size; off += n) {
        int hs = 0;
        n = size - off < piece ? size - off : piece;
        /* as the server does: a Content-Length body is written straight
         * into place and fed from there */
        size_t left = 0;
        uint8_t *dst = occ_http_body_dest(h, &left);
        if (dst && n > left)
            n = left;
        if (dst)
            memcpy(dst, data + off, n);
        if (occ_http_feed(h, dst ? dst : data + off, n, &hs, NULL)) {
            if (hs < 400 || hs > 599)
                __builtin_trap();
            break;
        }
        (void)occ_http_take_expect_continue(h);
        const occ_http_request *r;
        int failed = 0;
        while ((r = occ_http_ready(h))) {
            serve(r);
            if (occ_http_next(h, &hs, NULL)) {
                failed = 1;
                break;
            }
        }
        if (failed)
            break;
        (void)occ_http_partial(h);
    }
    occ_http_free(h);
    return 0;
}
