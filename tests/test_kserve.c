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
    float *ins[1] = {out};
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
         "exactly 6 numbers", OCC_ERR_SHAPE},
        {"{\"inputs\":[{\"name\":\"x\",\"shape\":[1,2,3],\"datatype\":\"FP32\",\"data\":[1,2,3,4,5,6,7]}]}",
         "exactly 6 numbers", OCC_ERR_SHAPE},
        {"{\"inputs\":[{\"name\":\"x\",\"shape\":[1,2,3],\"datatype\":\"FP32\",\"data\":[1,2,3,4,5,\"6\"]}]}",
         "exactly 6 numbers", OCC_ERR_SHAPE},
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
    float *ins[1] = {x};
    CHECK(occ_kserve_decode_infer(&model, (const uint8_t *)"{}", 2, 5, 0, ins, &req, &e) != OCC_OK);
    CHECK(occ_kserve_decode_infer(&model, (const uint8_t *)"", 0, -1, 0, ins, &req, &e) != OCC_OK);
}

static void encode_round_trip(void)
{
    float y[4] = {0.1f, -1e-7f, 3.4028235e38f, 1.0f / 3.0f};
    const float *outs[1] = {y};
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
    float *ins[1] = {x};
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

int main(void)
{
    setup();
    RUN(json_bounded);
    RUN(json_ok);
    RUN(binary_ok);
    RUN(refusals);
    RUN(encode_round_trip);
    TEST_DONE();
}
