/* KServe v2 request decoding / response encoding against a small model
 * description: JSON (flat and nested), the binary extension, and every
 * refusal (malformed, name, datatype, shape, truncation, leftovers). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "enclave/kserve.h"
#include "test.h"

static occ_tensor tensors[2];
static const int32_t in_idx[1] = {0}, out_idx[1] = {1};
static occ_model model;

static void setup(void)
{
    tensors[0] = (occ_tensor){.name = "x", .kind = OCC_TENSOR_INPUT, .ndim = 3, .dims = {1, 2, 3}, .size = 24};
    tensors[1] = (occ_tensor){.name = "y", .kind = OCC_TENSOR_ACT, .ndim = 2, .dims = {1, 4}, .size = 16};
    model.name = "t";
    model.n_tensors = 2;
    model.tensors = tensors;
    model.n_inputs = model.n_outputs = 1;
    model.inputs = in_idx;
    model.outputs = out_idx;
}

static occ_status dec(const char *json, const void *bin, size_t bin_size, int with_header, float *out,
                      occ_kserve_request *req, occ_error *e)
{
    size_t jn = strlen(json);
    uint8_t *body = malloc(jn + bin_size + 1);
    memcpy(body, json, jn);
    if (bin_size)
        memcpy(body + jn, bin, bin_size);
    void *ins[1] = {out};
    occ_status st = occ_kserve_decode_infer(&model, body, jn + bin_size, with_header ? (int64_t)jn : -1, 0, ins, req, e);
    free(body);
    return st;
}

static void json_ok(void)
{
    float x[6] = {0};
    occ_kserve_request req;
    occ_error e = {0};
    CHECK(dec("{\"id\":\"r1\",\"inputs\":[{\"name\":\"x\",\"shape\":[1,2,3],\"datatype\":\"FP32\","
              "\"data\":[1,2,3,4,5,6.5]}]}",
              NULL, 0, 0, x, &req, &e) == OCC_OK);
    CHECK(x[0] == 1 && x[5] == 6.5f);
    CHECK(req.has_id && !strcmp(req.id, "r1") && req.out_mode[0] == 1);
    memset(x, 0, sizeof x);
    CHECK_MSG(dec("{\"inputs\":[{\"name\":\"x\",\"shape\":[1,2,3],\"datatype\":\"FP32\","
                  "\"data\":[[[1,2,3],[4,5,6]]]}],\"outputs\":[{\"name\":\"y\",\"parameters\":{\"binary_data\":true}}]}",
                  NULL, 0, 0, x, &req, &e) == OCC_OK,
              "%s", e.msg);
    CHECK(x[3] == 4 && req.out_mode[0] == 2);
}

static void binary_ok(void)
{
    float src[6] = {0.1f, -2, 3e-8f, 4, 5, 1e30f}, x[6] = {0};
    occ_kserve_request req;
    occ_error e = {0};
    const char *j = "{\"inputs\":[{\"name\":\"x\",\"shape\":[1,2,3],\"datatype\":\"FP32\","
                    "\"parameters\":{\"binary_data_size\":24}}],\"parameters\":{\"binary_data_output\":true}}";
    CHECK_MSG(dec(j, src, 24, 1, x, &req, &e) == OCC_OK, "%s", e.msg);
    CHECK(!memcmp(x, src, 24));
    CHECK(req.out_mode[0] == 2);
    /* truncated at every length, and one byte too many */
    for (size_t cut = 0; cut < 24; cut++) {
        occ_error e2 = {0};
        CHECK(dec(j, src, cut, 1, x, &req, &e2) != OCC_OK);
        CHECK(strstr(e2.msg, cut ? "truncated binary tensor" : "truncated") != NULL);
    }
    float extra[7] = {0};
    CHECK(dec(j, extra, 28, 1, x, &req, &e) != OCC_OK && strstr(e.msg, "unused bytes"));
    /* binary size without the header */
    CHECK(dec(j, src, 24, 0, x, &req, &e) != OCC_OK);
}

static void refusals(void)
{
    float x[6];
    occ_kserve_request req;
    struct {
        const char *json, *needle;
        occ_status st;
    } cases[] = {
        {"{", "malformed JSON", OCC_ERR_FORMAT},
        {"[]", "JSON object", OCC_ERR_FORMAT},
        {"{\"inputs\":{}}", "\"inputs\" must be an array", OCC_ERR_FORMAT},
        {"{\"inputs\":[]}", "takes 1 input", OCC_ERR_INVALID},
        {"{\"inputs\":[{\"name\":\"z\",\"shape\":[1,2,3],\"datatype\":\"FP32\",\"data\":[1,2,3,4,5,6]}]}",
         "unknown input tensor 'z'", OCC_ERR_INVALID},
        {"{\"inputs\":[{\"name\":\"x\",\"shape\":[1,2,3],\"datatype\":\"INT8\",\"data\":[1,2,3,4,5,6]}]}",
         "datatype 'INT8'", OCC_ERR_INVALID},
        {"{\"inputs\":[{\"name\":\"x\",\"shape\":[1,3,2],\"datatype\":\"FP32\",\"data\":[1,2,3,4,5,6]}]}",
         "shape [1,3,2]; the model takes [1,2,3]", OCC_ERR_SHAPE},
        {"{\"inputs\":[{\"name\":\"x\",\"shape\":[1,2,3,1],\"datatype\":\"FP32\",\"data\":[1,2,3,4,5,6]}]}",
         "shape", OCC_ERR_SHAPE},
        {"{\"inputs\":[{\"name\":\"x\",\"shape\":[1,2,\"3\"],\"datatype\":\"FP32\",\"data\":[1,2,3,4,5,6]}]}",
         "shape", OCC_ERR_SHAPE},
        {"{\"inputs\":[{\"name\":\"x\",\"shape\":[1,2,3],\"datatype\":\"FP32\",\"data\":[1,2,3,4,5]}]}",
         "exactly 6 values for FP32 [1,2,3]", OCC_ERR_SHAPE},
        {"{\"inputs\":[{\"name\":\"x\",\"shape\":[1,2,3],\"datatype\":\"FP32\",\"data\":[1,2,3,4,5,6,7]}]}",
         "exactly 6 values for FP32 [1,2,3]", OCC_ERR_SHAPE},
        {"{\"inputs\":[{\"name\":\"x\",\"shape\":[1,2,3],\"datatype\":\"FP32\",\"data\":[1,2,3,4,5,\"6\"]}]}",
         "input 'x' (FP32): a value is not a number (value 5)", OCC_ERR_INVALID},
        {"{\"inputs\":[{\"name\":\"x\",\"shape\":[1,2,3],\"datatype\":\"FP32\"}]}", "needs a \"data\"",
         OCC_ERR_FORMAT},
        {"{\"inputs\":[{\"name\":\"x\",\"shape\":[1,2,3],\"datatype\":\"FP32\",\"data\":[1,2,3,4,5,6]}],"
         "\"outputs\":[{\"name\":\"nope\"}]}",
         "unknown output tensor", OCC_ERR_INVALID},
        {"{\"inputs\":[{\"name\":\"x\",\"shape\":[1,2,3],\"datatype\":\"FP32\",\"data\":[1,2,3,4,5,6]},"
         "{\"name\":\"x\",\"shape\":[1,2,3],\"datatype\":\"FP32\",\"data\":[1,2,3,4,5,6]}]}",
         "takes 1 input", OCC_ERR_INVALID},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        occ_error e = {0};
        occ_status st = dec(cases[i].json, NULL, 0, 0, x, &req, &e);
        CHECK_MSG(st == cases[i].st && strstr(e.msg, cases[i].needle), "case %zu: st %d msg '%s'", i, st, e.msg);
    }
    occ_error e = {0};
    void *ins[1] = {x};
    CHECK(occ_kserve_decode_infer(&model, (const uint8_t *)"{}", 2, 5, 0, ins, &req, &e) != OCC_OK);
    CHECK(occ_kserve_decode_infer(&model, (const uint8_t *)"", 0, -1, 0, ins, &req, &e) != OCC_OK);
}

static void encode_round_trip(void)
{
    float y[4] = {0.1f, -1e-7f, 3.4028235e38f, 1.0f / 3.0f};
    const void *outs[1] = {y};
    occ_kserve_request req = {0};
    req.out_mode[0] = 1;
    strcpy(req.id, "abc");
    req.has_id = 1;
    uint8_t *body = NULL;
    size_t size = 0, js = 0;
    occ_error e = {0};
    CHECK(occ_kserve_encode_infer(&model, "t", &req, outs, &body, &size, &js, &e) == OCC_OK);
    CHECK(size == js);
    cJSON *r = cJSON_ParseWithLength((const char *)body, size);
    CHECK(r != NULL);
    cJSON *o = cJSON_GetArrayItem(cJSON_GetObjectItem(r, "outputs"), 0);
    cJSON *d = cJSON_GetObjectItem(o, "data");
    CHECK(cJSON_GetArraySize(d) == 4);
    for (int i = 0; i < 4; i++)
        CHECK((float)cJSON_GetArrayItem(d, i)->valuedouble == y[i]); /* exact round trip */
    CHECK(!strcmp(cJSON_GetObjectItem(r, "id")->valuestring, "abc"));
    cJSON_Delete(r);
    free(body);
    req.out_mode[0] = 2;
    CHECK(occ_kserve_encode_infer(&model, "t", &req, outs, &body, &size, &js, &e) == OCC_OK);
    CHECK(size == js + 16 && !memcmp(body + js, y, 16));
    CHECK(strstr((const char *)body, "\"binary_data_size\":16") != NULL);
    free(body);
    char *meta = occ_kserve_model_metadata(&model, "t");
    CHECK(meta && strstr(meta, "\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[1,2,3]}]"));
    free(meta);
    char *rd = occ_kserve_model_ready("m\"x\\y");
    CHECK(rd && !strcmp(rd, "{\"name\":\"m\\\"x\\\\y\",\"ready\":true}"));
    free(rd);
    char *err = occ_kserve_error_json("bad \"thing\"");
    CHECK(err && !strcmp(err, "{\"error\":\"bad \\\"thing\\\"\"}"));
    free(err);
}

/* The JSON is bounded before its tree is built: a body with more values
 * than the inputs need is refused by counting, and the count is an upper
 * bound (strings with separators in them do not count). */
static void json_bounded(void)
{
    float x[6];
    void *ins[1] = {x};
    occ_kserve_request req;
    occ_error e = {0};
    const char *okj = "{\"inputs\":[{\"name\":\"x\",\"shape\":[1,2,3],\"datatype\":\"FP32\",\"data\":[1,2,3,4,5,6]}]}";
    size_t n = occ_kserve_json_values((const uint8_t *)okj, strlen(okj));
    CHECK_MSG(n >= 17 && n <= 24, "%zu values", n); /* 17 nodes; the count is an upper bound */
    CHECK(occ_kserve_decode_infer(&model, (const uint8_t *)okj, strlen(okj), -1, n, ins, &req, &e) == OCC_OK);
    CHECK(occ_kserve_json_values((const uint8_t *)"\"a,b,[c{\\\",d\"", 14) == 1);
    /* 200,000 zeros where 6 numbers are wanted: refused before parsing */
    size_t big = 400000;
    char *b = malloc(big + 64);
    size_t k = (size_t)snprintf(b, 64, "{\"inputs\":[{\"data\":[");
    while (k < big)
        b[k++] = '0', b[k++] = ',';
    memcpy(b + k, "0]}]}", 5);
    k += 5;
    e = (occ_error){0};
    CHECK(occ_kserve_decode_infer(&model, (const uint8_t *)b, k, -1, 6 + 4096, ins, &req, &e) == OCC_ERR_FORMAT);
    CHECK_MSG(strstr(e.msg, "more JSON values"), "%s", e.msg);
    free(b);
}

/* A typed model: an input and an output of every KServe datatype. */
static occ_tensor tt[12];
static const int32_t tin_idx[7] = {0, 1, 2, 3, 4, 5, 6}, tout_idx[5] = {7, 8, 9, 10, 11};
static occ_model tmodel;

static void setup_typed(void)
{
    tt[0] = (occ_tensor){.name = "i64", .dtype = OCC_DTYPE_INT64, .ndim = 2, .dims = {1, 3}, .size = 24};
    tt[1] = (occ_tensor){.name = "i32", .dtype = OCC_DTYPE_INT32, .ndim = 1, .dims = {2}, .size = 8};
    tt[2] = (occ_tensor){.name = "b", .dtype = OCC_DTYPE_BOOL, .ndim = 1, .dims = {3}, .size = 3};
    tt[3] = (occ_tensor){.name = "u8", .dtype = OCC_DTYPE_UINT8, .ndim = 1, .dims = {2}, .size = 2};
    tt[4] = (occ_tensor){.name = "s8", .dtype = OCC_DTYPE_INT8, .ndim = 1, .dims = {2}, .size = 2};
    tt[5] = (occ_tensor){.name = "h", .dtype = OCC_DTYPE_FLOAT16, .ndim = 1, .dims = {2}, .size = 4};
    tt[6] = (occ_tensor){.name = "f", .dtype = OCC_DTYPE_FLOAT, .ndim = 1, .dims = {1}, .size = 4};
    tt[7] = (occ_tensor){.name = "o64", .dtype = OCC_DTYPE_INT64, .ndim = 1, .dims = {2}, .size = 16};
    tt[8] = (occ_tensor){.name = "ob", .dtype = OCC_DTYPE_BOOL, .ndim = 1, .dims = {2}, .size = 2};
    tt[9] = (occ_tensor){.name = "of", .dtype = OCC_DTYPE_FLOAT, .ndim = 1, .dims = {1}, .size = 4};
    tt[10] = (occ_tensor){.name = "oh", .dtype = OCC_DTYPE_FLOAT16, .ndim = 1, .dims = {1}, .size = 2};
    tt[11] = (occ_tensor){.name = "o8", .dtype = OCC_DTYPE_INT8, .ndim = 1, .dims = {2}, .size = 2};
    tmodel.name = "tm";
    tmodel.n_tensors = 12;
    tmodel.tensors = tt;
    tmodel.n_inputs = 7;
    tmodel.n_outputs = 5;
    tmodel.inputs = tin_idx;
    tmodel.outputs = tout_idx;
}

typedef struct tin {
    int64_t i64[3];
    int32_t i32[2];
    uint8_t b[3], u8[2];
    int8_t s8[2];
    uint16_t h[2];
    float f[1];
} tin;

/* One JSON input per slot: the value text of input k is vals[k] (NULL:
 * the default below), datatype dts[k]. */
static const char *const tnames[7] = {"i64", "i32", "b", "u8", "s8", "h", "f"};
static const char *const tshapes[7] = {"[1,3]", "[2]", "[3]", "[2]", "[2]", "[2]", "[1]"};
static const char *const tdts[7] = {"INT64", "INT32", "BOOL", "UINT8", "INT8", "FP16", "FP32"};
static const char *const tvals[7] = {"[[1,-2,9007199254740991]]", "[2147483647,-2147483648]", "[true,false,1]",
                                     "[0,255]", "[-128,127]", "[1.5,-2]", "[0.25]"};

static occ_status tdec(const char *const *vals, const char *const *dts, const void *bin, size_t bin_size,
                       int binary, tin *x, occ_kserve_request *req, occ_error *e)
{
    char json[2048];
    size_t n = (size_t)snprintf(json, sizeof json, "{\"inputs\":[");
    for (int k = 0; k < 7; k++) {
        const char *dt = dts && dts[k] ? dts[k] : tdts[k];
        if (binary)
            n += (size_t)snprintf(json + n, sizeof json - n,
                                  "%s{\"name\":\"%s\",\"shape\":%s,\"datatype\":\"%s\",\"parameters\":"
                                  "{\"binary_data_size\":%llu}}",
                                  k ? "," : "", tnames[k], tshapes[k], dt, (unsigned long long)tt[k].size);
        else
            n += (size_t)snprintf(json + n, sizeof json - n, "%s{\"name\":\"%s\",\"shape\":%s,\"datatype\":\"%s\","
                                  "\"data\":%s}",
                                  k ? "," : "", tnames[k], tshapes[k], dt, vals && vals[k] ? vals[k] : tvals[k]);
    }
    n += (size_t)snprintf(json + n, sizeof json - n, "]}");
    uint8_t *body = malloc(n + bin_size + 1);
    memcpy(body, json, n);
    if (bin_size)
        memcpy(body + n, bin, bin_size);
    void *ins[7] = {x->i64, x->i32, x->b, x->u8, x->s8, x->h, x->f};
    occ_status st = occ_kserve_decode_infer(&tmodel, body, n + bin_size, binary ? (int64_t)n : -1, 0, ins, req, e);
    free(body);
    return st;
}

/* Every datatype decodes from JSON to its own bytes, several inputs at once. */
static void typed_json_ok(void)
{
    tin x;
    memset(&x, 0x55, sizeof x);
    occ_kserve_request req;
    occ_error e = {0};
    CHECK_MSG(tdec(NULL, NULL, NULL, 0, 0, &x, &req, &e) == OCC_OK, "%s", e.msg);
    CHECK(x.i64[0] == 1 && x.i64[1] == -2 && x.i64[2] == 9007199254740991LL);
    CHECK(x.i32[0] == INT32_MAX && x.i32[1] == INT32_MIN);
    CHECK(x.b[0] == 1 && x.b[1] == 0 && x.b[2] == 1);
    CHECK(x.u8[0] == 0 && x.u8[1] == 255 && x.s8[0] == -128 && x.s8[1] == 127);
    CHECK(x.h[0] == 0x3e00 && x.h[1] == 0xc000); /* 1.5, -2 in IEEE half */
    CHECK(x.f[0] == 0.25f);
    for (int k = 0; k < 5; k++)
        CHECK(req.out_mode[k] == 1);
    /* INT64 beyond 2^53: exact as decimal strings */
    const char *big[7] = {"[[\"9223372036854775807\",\"-9223372036854775808\",\"9007199254740993\"]]"};
    CHECK_MSG(tdec(big, NULL, NULL, 0, 0, &x, &req, &e) == OCC_OK, "%s", e.msg);
    CHECK(x.i64[0] == INT64_MAX && x.i64[1] == INT64_MIN && x.i64[2] == 9007199254740993LL);
}

/* The binary extension: each input's bytes as they are, in input order. */
static void typed_binary_ok(void)
{
    tin src = {{INT64_MAX, INT64_MIN, 9007199254740993LL}, {-7, 7}, {1, 0, 1}, {200, 3}, {-100, 5},
               {0x3c00, 0x7c00}, {-1.5f}};
    uint8_t bin[64];
    size_t n = 0;
    memcpy(bin + n, src.i64, 24), n += 24;
    memcpy(bin + n, src.i32, 8), n += 8;
    memcpy(bin + n, src.b, 3), n += 3;
    memcpy(bin + n, src.u8, 2), n += 2;
    memcpy(bin + n, src.s8, 2), n += 2;
    memcpy(bin + n, src.h, 4), n += 4;
    memcpy(bin + n, src.f, 4), n += 4;
    tin x;
    memset(&x, 0, sizeof x);
    occ_kserve_request req;
    occ_error e = {0};
    CHECK_MSG(tdec(NULL, NULL, bin, n, 1, &x, &req, &e) == OCC_OK, "%s", e.msg);
    CHECK(!memcmp(x.i64, src.i64, 24) && !memcmp(x.i32, src.i32, 8) && !memcmp(x.b, src.b, 3));
    CHECK(!memcmp(x.u8, src.u8, 2) && !memcmp(x.s8, src.s8, 2) && !memcmp(x.h, src.h, 4) && x.f[0] == -1.5f);
    /* one byte short: truncated; a BOOL byte other than 0/1: refused naming the input */
    CHECK(tdec(NULL, NULL, bin, n - 1, 1, &x, &req, &e) != OCC_OK && strstr(e.msg, "input 'f': truncated"));
    bin[24 + 8 + 1] = 2;
    CHECK(tdec(NULL, NULL, bin, n, 1, &x, &req, &e) == OCC_ERR_INVALID);
    CHECK_MSG(strstr(e.msg, "input 'b': BOOL byte 1 is 2"), "%s", e.msg);
}

/* Out of range, inexact, wrong datatype or shape: a 400 naming the input,
 * what it takes and what came. */
static void typed_refusals(void)
{
    struct {
        int k;
        const char *val, *dt, *needle;
        occ_status st;
    } cases[] = {
        {0, "[[1,2,9007199254740993]]", NULL, "input 'i64' (INT64): an INT64 JSON number at or beyond 2^53", OCC_ERR_INVALID},
        {0, "[[1,2,9007199254740992]]", NULL, "beyond 2^53", OCC_ERR_INVALID},
        {0, "[[1,2,-1e19]]", NULL, "beyond 2^53", OCC_ERR_INVALID},
        {0, "[[1,2,1.5]]", NULL, "not an integer (value 2)", OCC_ERR_INVALID},
        {0, "[[1,2,\"9223372036854775808\"]]", NULL, "within int64", OCC_ERR_INVALID},
        {0, "[[1,2,\"12x\"]]", NULL, "decimal integer", OCC_ERR_INVALID},
        {0, "[[1,2,\"\"]]", NULL, "decimal integer", OCC_ERR_INVALID},
        {0, "[[1,2,true]]", NULL, "not a number", OCC_ERR_INVALID},
        {1, "[2147483648,0]", NULL, "outside INT32", OCC_ERR_INVALID},
        {1, "[0,-2147483649]", NULL, "outside INT32", OCC_ERR_INVALID},
        {2, "[true,2,false]", NULL, "input 'b' (BOOL): BOOL values are true, false, 0 or 1 (value 1)", OCC_ERR_INVALID},
        {2, "[true,\"true\",false]", NULL, "BOOL values", OCC_ERR_INVALID},
        {3, "[0,256]", NULL, "outside UINT8", OCC_ERR_INVALID},
        {3, "[-1,0]", NULL, "outside UINT8", OCC_ERR_INVALID},
        {4, "[128,0]", NULL, "outside INT8", OCC_ERR_INVALID},
        {4, "[0,-129]", NULL, "outside INT8", OCC_ERR_INVALID},
        {0, NULL, "FP32", "input 'i64' has datatype 'FP32'; the model takes INT64", OCC_ERR_INVALID},
        {0, NULL, "INT32", "input 'i64' has datatype 'INT32'; the model takes INT64", OCC_ERR_INVALID},
        {2, NULL, "INT64", "input 'b' has datatype 'INT64'; the model takes BOOL", OCC_ERR_INVALID},
        {5, NULL, "FP32", "input 'h' has datatype 'FP32'; the model takes FP16", OCC_ERR_INVALID},
        {0, "[[1,2]]", NULL, "input 'i64': \"data\" must hold exactly 3 values for INT64 [1,3]", OCC_ERR_SHAPE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *vals[7] = {0}, *dts[7] = {0};
        vals[cases[i].k] = cases[i].val;
        dts[cases[i].k] = cases[i].dt;
        tin x;
        occ_kserve_request req;
        occ_error e = {0};
        occ_status st = tdec(vals, dts, NULL, 0, 0, &x, &req, &e);
        CHECK_MSG(st == cases[i].st && strstr(e.msg, cases[i].needle), "case %zu: st %d msg '%s'", i, st, e.msg);
        CHECK(!strchr(e.msg, '\n'));
    }
    /* a wrong sequence length, and the wrong count of inputs */
    tin x;
    occ_kserve_request req;
    occ_error e = {0};
    const char *j = "{\"inputs\":[{\"name\":\"i64\",\"shape\":[1,4],\"datatype\":\"INT64\",\"data\":[1,2,3,4]}]}";
    void *ins[7] = {x.i64, x.i32, x.b, x.u8, x.s8, x.h, x.f};
    CHECK(occ_kserve_decode_infer(&tmodel, (const uint8_t *)j, strlen(j), -1, 0, ins, &req, &e) == OCC_ERR_INVALID);
    CHECK_MSG(strstr(e.msg, "takes 7 input(s), the request has 1"), "%s", e.msg);
    char buf[512];
    snprintf(buf, sizeof buf, "{\"inputs\":[{\"name\":\"i64\",\"shape\":[1,4],\"datatype\":\"INT64\",\"data\":[1,2,3,4]},"
             "{\"name\":\"i32\",\"shape\":[2],\"datatype\":\"INT32\",\"data\":[1,2]},"
             "{\"name\":\"b\",\"shape\":[3],\"datatype\":\"BOOL\",\"data\":[1,1,1]},"
             "{\"name\":\"u8\",\"shape\":[2],\"datatype\":\"UINT8\",\"data\":[1,2]},"
             "{\"name\":\"s8\",\"shape\":[2],\"datatype\":\"INT8\",\"data\":[1,2]},"
             "{\"name\":\"h\",\"shape\":[2],\"datatype\":\"FP16\",\"data\":[1,2]},"
             "{\"name\":\"f\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1]}]}");
    CHECK(occ_kserve_decode_infer(&tmodel, (const uint8_t *)buf, strlen(buf), -1, 0, ins, &req, &e) == OCC_ERR_SHAPE);
    CHECK_MSG(strstr(e.msg, "input 'i64' has shape [1,4]; the model takes [1,3]"), "%s", e.msg);
    /* binary: the size follows the datatype (INT64 [1,3] is 24 bytes, not 12) */
    const char *bj = "{\"inputs\":[{\"name\":\"i64\",\"shape\":[1,3],\"datatype\":\"INT64\",\"parameters\":"
                     "{\"binary_data_size\":12}}]}";
    CHECK(occ_kserve_decode_infer(&tmodel, (const uint8_t *)bj, strlen(bj), (int64_t)strlen(bj), 0, ins, &req, &e) !=
          OCC_OK);
}

/* Typed outputs: each with its datatype; INT64 printed exactly; BOOL as
 * true/false; FP16 as its float value; binary outputs back to back. */
static void typed_encode(void)
{
    int64_t o64[2] = {INT64_MAX, -9007199254740993LL};
    uint8_t ob[2] = {1, 0};
    float of[1] = {0.5f};
    uint16_t oh[1] = {0x3e00};
    int8_t o8[2] = {-128, 7};
    const void *outs[5] = {o64, ob, of, oh, o8};
    occ_kserve_request req = {0};
    for (int k = 0; k < 5; k++)
        req.out_mode[k] = 1;
    uint8_t *body = NULL;
    size_t size = 0, js = 0;
    occ_error e = {0};
    CHECK_MSG(occ_kserve_encode_infer(&tmodel, "tm", &req, outs, &body, &size, &js, &e) == OCC_OK, "%s", e.msg);
    CHECK(size == js);
    const char *b = (const char *)body;
    CHECK_MSG(strstr(b, "{\"name\":\"o64\",\"datatype\":\"INT64\",\"shape\":[2],\"data\":[9223372036854775807,"
                        "-9007199254740993]}"),
              "%.*s", (int)size, b);
    CHECK(strstr(b, "{\"name\":\"ob\",\"datatype\":\"BOOL\",\"shape\":[2],\"data\":[true,false]}"));
    CHECK(strstr(b, "{\"name\":\"of\",\"datatype\":\"FP32\",\"shape\":[1],\"data\":[0.5]}"));
    CHECK(strstr(b, "{\"name\":\"oh\",\"datatype\":\"FP16\",\"shape\":[1],\"data\":[1.5]}"));
    CHECK(strstr(b, "{\"name\":\"o8\",\"datatype\":\"INT8\",\"shape\":[2],\"data\":[-128,7]}"));
    cJSON *r = cJSON_ParseWithLength(b, size);
    CHECK(r != NULL);
    cJSON_Delete(r);
    free(body);
    for (int k = 0; k < 5; k++)
        req.out_mode[k] = 2;
    req.out_mode[2] = 0; /* not asked for */
    CHECK(occ_kserve_encode_infer(&tmodel, "tm", &req, outs, &body, &size, &js, &e) == OCC_OK);
    CHECK(size == js + 16 + 2 + 2 + 2);
    CHECK(!memcmp(body + js, o64, 16) && !memcmp(body + js + 16, ob, 2) && !memcmp(body + js + 18, oh, 2) &&
          !memcmp(body + js + 20, o8, 2));
    CHECK(strstr((const char *)body, "\"name\":\"o64\",\"datatype\":\"INT64\",\"shape\":[2],\"parameters\":"
                                     "{\"binary_data_size\":16}"));
    CHECK(!strstr((const char *)body, "\"of\""));
    free(body);
    char *meta = occ_kserve_model_metadata(&tmodel, "tm");
    CHECK(meta && strstr(meta, "{\"name\":\"i64\",\"datatype\":\"INT64\",\"shape\":[1,3]}") &&
          strstr(meta, "{\"name\":\"b\",\"datatype\":\"BOOL\",\"shape\":[3]}") &&
          strstr(meta, "{\"name\":\"u8\",\"datatype\":\"UINT8\",\"shape\":[2]}") &&
          strstr(meta, "{\"name\":\"h\",\"datatype\":\"FP16\",\"shape\":[2]}") &&
          strstr(meta, "\"outputs\":[{\"name\":\"o64\",\"datatype\":\"INT64\",\"shape\":[2]}"));
    free(meta);
}

/* Zero-size tensors: an input of shape [0, 3] comes with no values (JSON
 * "data": [], or binary_data_size 0 and no bytes at all), values for it are
 * refused; an empty output goes out with its shape and no data. */
static void empty_tensors(void)
{
    occ_tensor et[2] = {
        {.name = "x", .kind = OCC_TENSOR_INPUT, .ndim = 2, .dims = {0, 3}, .size = 0},
        {.name = "y", .kind = OCC_TENSOR_ACT, .ndim = 2, .dims = {2, 0}, .size = 0},
    };
    occ_model em = model;
    em.tensors = et;
    float buf[1] = {42};
    void *ins[1] = {buf};
    occ_kserve_request req;
    occ_error e = {0};
    const char *j = "{\"inputs\":[{\"name\":\"x\",\"shape\":[0,3],\"datatype\":\"FP32\",\"data\":[]}]}";
    CHECK_MSG(occ_kserve_decode_infer(&em, (const uint8_t *)j, strlen(j), -1, 0, ins, &req, &e) == OCC_OK,
              "%s", e.msg);
    CHECK(buf[0] == 42);
    const char *bj = "{\"inputs\":[{\"name\":\"x\",\"shape\":[0,3],\"datatype\":\"FP32\","
                     "\"parameters\":{\"binary_data_size\":0}}]}";
    CHECK_MSG(occ_kserve_decode_infer(&em, (const uint8_t *)bj, strlen(bj), (int64_t)strlen(bj), 0, ins, &req,
                                      &e) == OCC_OK,
              "%s", e.msg);
    const char *v = "{\"inputs\":[{\"name\":\"x\",\"shape\":[0,3],\"datatype\":\"FP32\",\"data\":[1]}]}";
    CHECK(occ_kserve_decode_infer(&em, (const uint8_t *)v, strlen(v), -1, 0, ins, &req, &e) == OCC_ERR_SHAPE);
    const char *w = "{\"inputs\":[{\"name\":\"x\",\"shape\":[1,3],\"datatype\":\"FP32\",\"data\":[1,2,3]}]}";
    CHECK(occ_kserve_decode_infer(&em, (const uint8_t *)w, strlen(w), -1, 0, ins, &req, &e) == OCC_ERR_SHAPE);
    CHECK(buf[0] == 42);

    const void *outs[1] = {buf};
    uint8_t *body = NULL;
    size_t size = 0, js = 0;
    memset(&req, 0, sizeof req);
    req.out_mode[0] = 1;
    CHECK_MSG(occ_kserve_encode_infer(&em, "t", &req, outs, &body, &size, &js, &e) == OCC_OK, "%s", e.msg);
    CHECK_MSG(body && strstr((const char *)body, "\"shape\":[2,0],\"data\":[]"), "%.*s", (int)size,
              body ? (const char *)body : "");
    free(body);
    req.out_mode[0] = 2;
    CHECK(occ_kserve_encode_infer(&em, "t", &req, outs, &body, &size, &js, &e) == OCC_OK);
    CHECK(size == js && body && strstr((const char *)body, "\"binary_data_size\":0"));
    free(body);
}

int main(void)
{
    setup();
    setup_typed();
    RUN(json_bounded);
    RUN(json_ok);
    RUN(binary_ok);
    RUN(refusals);
    RUN(encode_round_trip);
    RUN(typed_json_ok);
    RUN(typed_binary_ok);
    RUN(typed_refusals);
    RUN(typed_encode);
    RUN(empty_tensors);
    TEST_DONE();
}
