/* KServe v2 datatypes of issue 12 (FP64, INT16, UINT16, UINT32, UINT64,
 * BF16): JSON and binary requests decode to the tensor's own bytes, every
 * range and form refusal, and responses print them exactly (FP64 to 17
 * digits when needed, UINT64 as decimal digits beyond 2^53). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "enclave/kserve.h"
#include "test.h"

#define NIN 6
static occ_tensor tt[NIN * 2];
static const int32_t in_idx[NIN] = {0, 1, 2, 3, 4, 5}, out_idx[NIN] = {6, 7, 8, 9, 10, 11};
static occ_model model;

static const char *const names[NIN] = {"d", "s", "w", "u32", "u64", "bf"};
static const char *const dts[NIN] = {"FP64", "INT16", "UINT16", "UINT32", "UINT64", "BF16"};
static const uint32_t types[NIN] = {OCC_DTYPE_DOUBLE, OCC_DTYPE_INT16,  OCC_DTYPE_UINT16,
                                    OCC_DTYPE_UINT32, OCC_DTYPE_UINT64, OCC_DTYPE_BFLOAT16};
static const size_t esz[NIN] = {8, 2, 2, 4, 8, 2};
static const char *const defaults[NIN] = {
    "[0.1,0.33333333333333331]", "[-32768,32767]", "[0,65535]", "[0,4294967295]",
    "[\"18446744073709551615\",9007199254740991]", "[1.5,-2]"};

static void setup(void)
{
    for (int k = 0; k < NIN; k++) {
        tt[k] = (occ_tensor){.name = names[k], .kind = OCC_TENSOR_INPUT, .dtype = types[k], .ndim = 1,
                             .dims = {2}, .size = 2 * esz[k]};
        tt[NIN + k] = tt[k];
        tt[NIN + k].kind = OCC_TENSOR_ACT;
    }
    static const char *const onames[NIN] = {"od", "os", "ow", "ou32", "ou64", "obf"};
    for (int k = 0; k < NIN; k++)
        tt[NIN + k].name = onames[k];
    model.name = "dm";
    model.n_tensors = 2 * NIN;
    model.tensors = tt;
    model.n_inputs = model.n_outputs = NIN;
    model.inputs = in_idx;
    model.outputs = out_idx;
}

typedef struct bufs {
    double d[2];
    int16_t s[2];
    uint16_t w[2];
    uint32_t u32[2];
    uint64_t u64[2];
    uint16_t bf[2];
} bufs;

/* A request with every input in JSON (vals[k] overrides input k's values,
 * dt[k] its datatype) or all binary (bin, bin_size; sizes[k] overrides a
 * binary_data_size). */
static occ_status dec(const char *const *vals, const char *const *dt, const void *bin, size_t bin_size,
                      const size_t *sizes, bufs *x, occ_error *e)
{
    char json[4096];
    size_t n = (size_t)snprintf(json, sizeof json, "{\"inputs\":[");
    for (int k = 0; k < NIN; k++) {
        const char *d = dt && dt[k] ? dt[k] : dts[k];
        if (bin)
            n += (size_t)snprintf(json + n, sizeof json - n,
                                  "%s{\"name\":\"%s\",\"shape\":[2],\"datatype\":\"%s\",\"parameters\":"
                                  "{\"binary_data_size\":%zu}}",
                                  k ? "," : "", names[k], d, sizes && sizes[k] ? sizes[k] : 2 * esz[k]);
        else
            n += (size_t)snprintf(json + n, sizeof json - n,
                                  "%s{\"name\":\"%s\",\"shape\":[2],\"datatype\":\"%s\",\"data\":%s}",
                                  k ? "," : "", names[k], d, vals && vals[k] ? vals[k] : defaults[k]);
    }
    n += (size_t)snprintf(json + n, sizeof json - n, "]}");
    uint8_t *body = malloc(n + bin_size + 1);
    memcpy(body, json, n);
    if (bin_size)
        memcpy(body + n, bin, bin_size);
    void *ins[NIN] = {x->d, x->s, x->w, x->u32, x->u64, x->bf};
    occ_kserve_request req;
    occ_status st = occ_kserve_decode_infer(&model, body, n + bin_size, bin ? (int64_t)n : -1, 0, ins, &req, e);
    free(body);
    return st;
}

static void json_ok(void)
{
    bufs x;
    memset(&x, 0x55, sizeof x);
    occ_error e = {0};
    CHECK_MSG(dec(NULL, NULL, NULL, 0, NULL, &x, &e) == OCC_OK, "%s", e.msg);
    CHECK(x.d[0] == 0.1 && x.d[1] == 1.0 / 3.0); /* FP64 exact, not through float */
    CHECK(x.s[0] == INT16_MIN && x.s[1] == INT16_MAX);
    CHECK(x.w[0] == 0 && x.w[1] == UINT16_MAX);
    CHECK(x.u32[0] == 0 && x.u32[1] == UINT32_MAX);
    CHECK(x.u64[0] == UINT64_MAX && x.u64[1] == 9007199254740991ULL);
    CHECK(x.bf[0] == 0x3fc0 && x.bf[1] == 0xc000); /* 1.5, -2 in bfloat16 */
    /* nested arrays flatten the same way */
    const char *nested[NIN] = {"[[1e-300],[-0.0]]"};
    CHECK_MSG(dec(nested, NULL, NULL, 0, NULL, &x, &e) == OCC_OK, "%s", e.msg);
    CHECK(x.d[0] == 1e-300 && x.d[1] == 0.0 && signbit(x.d[1]));
}

static void binary_ok(void)
{
    bufs src = {{0.1, -1e308}, {-5, 6}, {65535, 7}, {UINT32_MAX, 8}, {UINT64_MAX, 1ULL << 63}, {0x7fc0, 0x0001}};
    uint8_t bin[sizeof src];
    size_t n = 0;
    memcpy(bin + n, src.d, 16), n += 16;
    memcpy(bin + n, src.s, 4), n += 4;
    memcpy(bin + n, src.w, 4), n += 4;
    memcpy(bin + n, src.u32, 8), n += 8;
    memcpy(bin + n, src.u64, 16), n += 16;
    memcpy(bin + n, src.bf, 4), n += 4;
    bufs x;
    memset(&x, 0, sizeof x);
    occ_error e = {0};
    CHECK_MSG(dec(NULL, NULL, bin, n, NULL, &x, &e) == OCC_OK, "%s", e.msg);
    CHECK(!memcmp(x.d, src.d, 16) && !memcmp(x.s, src.s, 4) && !memcmp(x.w, src.w, 4) &&
          !memcmp(x.u32, src.u32, 8) && !memcmp(x.u64, src.u64, 16) && !memcmp(x.bf, src.bf, 4));
    /* the binary size follows the datatype: FP64 [2] is 16 bytes, not 8 */
    size_t sizes[NIN] = {8};
    CHECK(dec(NULL, NULL, bin, n, sizes, &x, &e) == OCC_ERR_SHAPE);
    CHECK_MSG(strstr(e.msg, "input 'd': binary_data_size must be 16 bytes (FP64 [2])"), "%s", e.msg);
    /* one byte short: truncated */
    CHECK(dec(NULL, NULL, bin, n - 1, NULL, &x, &e) == OCC_ERR_SHAPE);
    CHECK_MSG(strstr(e.msg, "input 'bf': truncated binary tensor"), "%s", e.msg);
}

static void refusals(void)
{
    static const struct {
        int k;
        const char *vals, *dt, *msg;
        occ_status st;
    } c[] = {
        {1, "[32768,0]", NULL, "input 's' (INT16): a value is outside INT16 [-32768, 32767] (value 0)", OCC_ERR_INVALID},
        {1, "[1.5,0]", NULL, "input 's' (INT16): a value is not an integer", OCC_ERR_INVALID},
        {2, "[-1,0]", NULL, "input 'w' (UINT16): a value is outside UINT16 [0, 65535]", OCC_ERR_INVALID},
        {3, "[0,4294967296]", NULL, "input 'u32' (UINT32): a value is outside UINT32 [0, 4294967295] (value 1)",
         OCC_ERR_INVALID},
        {4, "[-1,0]", NULL, "input 'u64' (UINT64): a value is outside UINT64 (negative)", OCC_ERR_INVALID},
        {4, "[9007199254740993,0]", NULL, "input 'u64' (UINT64): a UINT64 JSON number at or beyond 2^53",
         OCC_ERR_INVALID},
        {4, "[\"-1\",0]", NULL, "a UINT64 string must be a decimal integer without a sign", OCC_ERR_INVALID},
        {4, "[\"+1\",0]", NULL, "a UINT64 string must be a decimal integer without a sign", OCC_ERR_INVALID},
        {4, "[\"18446744073709551616\",0]", NULL, "a UINT64 string must be a decimal integer within uint64",
         OCC_ERR_INVALID},
        {4, "[\"\",0]", NULL, "a UINT64 string must be a decimal integer without a sign", OCC_ERR_INVALID},
        {4, "[\"1e3\",0]", NULL, "a UINT64 string must be a decimal integer without a sign", OCC_ERR_INVALID},
        {0, "[\"0.5\",0]", NULL, "input 'd' (FP64): a value is not a number", OCC_ERR_INVALID},
        {0, "[null,0]", NULL, "input 'd' (FP64): a value is not a number", OCC_ERR_INVALID},
        {5, "[true,0]", NULL, "input 'bf' (BF16): a value is not a number", OCC_ERR_INVALID},
        {0, "[1,2,3]", NULL, "input 'd': \"data\" must hold exactly 2 values for FP64 [2]", OCC_ERR_SHAPE},
        {0, NULL, "FP32", "input 'd' has datatype 'FP32'; the model takes FP64", OCC_ERR_INVALID},
        {5, NULL, "FP16", "input 'bf' has datatype 'FP16'; the model takes BF16", OCC_ERR_INVALID},
        {4, NULL, "INT64", "input 'u64' has datatype 'INT64'; the model takes UINT64", OCC_ERR_INVALID},
        {1, NULL, "UINT16", "input 's' has datatype 'UINT16'; the model takes INT16", OCC_ERR_INVALID},
        {3, NULL, "uint32", "input 'u32' has datatype 'uint32'; the model takes UINT32", OCC_ERR_INVALID},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        const char *vals[NIN] = {0}, *dt[NIN] = {0};
        vals[c[i].k] = c[i].vals;
        dt[c[i].k] = c[i].dt;
        bufs x;
        occ_error e = {0};
        occ_status st = dec(vals, dt, NULL, 0, NULL, &x, &e);
        CHECK_MSG(st == c[i].st && strstr(e.msg, c[i].msg), "case %zu: status %d, '%s' (want '%s')", i, (int)st,
                  e.msg, c[i].msg);
    }
}

static void encode(void)
{
    double od[2] = {0.1, 1.0 / 3.0};
    int16_t os[2] = {-5, INT16_MAX};
    uint16_t ow[2] = {UINT16_MAX, 0};
    uint32_t ou32[2] = {UINT32_MAX, 1};
    uint64_t ou64[2] = {UINT64_MAX, 9007199254740993ULL};
    uint16_t obf[2] = {0x3fc0, 0x7fc0};
    const void *outs[NIN] = {od, os, ow, ou32, ou64, obf};
    occ_kserve_request req = {0};
    for (int k = 0; k < NIN; k++)
        req.out_mode[k] = 1;
    uint8_t *body = NULL;
    size_t size = 0, js = 0;
    occ_error e = {0};
    CHECK_MSG(occ_kserve_encode_infer(&model, "dm", &req, outs, &body, &size, &js, &e) == OCC_OK, "%s", e.msg);
    const char *b = (const char *)body;
    CHECK_MSG(strstr(b, "{\"name\":\"os\",\"datatype\":\"INT16\",\"shape\":[2],\"data\":[-5,32767]}") &&
                  strstr(b, "{\"name\":\"ow\",\"datatype\":\"UINT16\",\"shape\":[2],\"data\":[65535,0]}") &&
                  strstr(b, "{\"name\":\"ou32\",\"datatype\":\"UINT32\",\"shape\":[2],\"data\":[4294967295,1]}") &&
                  strstr(b, "{\"name\":\"ou64\",\"datatype\":\"UINT64\",\"shape\":[2],\"data\":"
                            "[18446744073709551615,9007199254740993]}") &&
                  strstr(b, "{\"name\":\"obf\",\"datatype\":\"BF16\",\"shape\":[2],\"data\":[1.5,null]}"),
              "%.*s", (int)size, b);
    /* FP64 reads back bit for bit */
    cJSON *r = cJSON_ParseWithLength(b, size);
    const cJSON *o0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(r, "outputs"), 0);
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(o0, "data");
    CHECK(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o0, "datatype")) &&
          !strcmp(cJSON_GetObjectItemCaseSensitive(o0, "datatype")->valuestring, "FP64"));
    CHECK(cJSON_GetArraySize(d) == 2 && cJSON_GetArrayItem(d, 0)->valuedouble == 0.1 &&
          cJSON_GetArrayItem(d, 1)->valuedouble == 1.0 / 3.0);
    cJSON_Delete(r);
    free(body);
    /* binary: the raw bytes, back to back */
    for (int k = 0; k < NIN; k++)
        req.out_mode[k] = 2;
    CHECK(occ_kserve_encode_infer(&model, "dm", &req, outs, &body, &size, &js, &e) == OCC_OK);
    CHECK(size == js + 16 + 4 + 4 + 8 + 16 + 4);
    CHECK(!memcmp(body + js, od, 16) && !memcmp(body + js + 24, ou32, 8) && !memcmp(body + js + 32, ou64, 16));
    free(body);
    char *meta = occ_kserve_model_metadata(&model, "dm");
    CHECK_MSG(meta && strstr(meta, "{\"name\":\"d\",\"datatype\":\"FP64\",\"shape\":[2]}") &&
                  strstr(meta, "{\"name\":\"bf\",\"datatype\":\"BF16\",\"shape\":[2]}") &&
                  strstr(meta, "{\"name\":\"ou64\",\"datatype\":\"UINT64\",\"shape\":[2]}"),
              "%s", meta ? meta : "(null)");
    free(meta);
    for (int k = 0; k < NIN; k++)
        CHECK(!strcmp(occ_kserve_datatype(types[k]), dts[k]));
}

int main(void)
{
    setup();
    RUN(json_ok);
    RUN(binary_ok);
    RUN(refusals);
    RUN(encode);
    TEST_DONE();
}
