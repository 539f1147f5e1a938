/* KServe v2 / Open Inference Protocol bodies (inside the enclave): the
 * infer request (JSON tensors and the binary tensor extension) and the
 * responses, checked against the model's inputs and outputs. Pure
 * functions, no I/O; every error message is meant for the client. */
#ifndef OCC_ENCLAVE_KSERVE_H
#define OCC_ENCLAVE_KSERVE_H

#include <stddef.h>
#include <stdint.h>

#include "occ/model.h"
#include "occ/status.h"

#define OCC_KSERVE_MAX_OUTPUTS 64
#define OCC_KSERVE_MAX_ID 128

typedef struct occ_kserve_request {
    char id[OCC_KSERVE_MAX_ID + 1]; /* echoed back; "" when absent */
    int has_id;
    /* per model output: 0 = not returned, 1 = JSON data, 2 = binary data
     * (outputs beyond OCC_KSERVE_MAX_OUTPUTS are returned as JSON) */
    uint8_t out_mode[OCC_KSERVE_MAX_OUTPUTS];
} occ_kserve_request;

/* Decodes an infer request body for model m. header_size is the
 * Inference-Header-Content-Length value (-1 when absent: the body is all
 * JSON). max_values bounds the JSON before it is parsed: a body with more
 * values (numbers, strings, literals, arrays, objects) is refused without
 * building its tree (0 = no bound). inputs[i] receives model input i
 * (m->tensors[m->inputs[i]].size bytes of its dtype, caller-allocated).
 * Datatypes FP32, FP64, FP16, BF16, INT64, INT32, INT16, INT8, UINT64,
 * UINT32, UINT16, UINT8, BOOL must equal the input's; JSON values are
 * range-checked (integers exact: INT64/UINT64 numbers below 2^53 in
 * magnitude, or decimal strings; BOOL true/false/0/1) and
 * binary BOOL bytes must be 0 or 1. The JSON tree
 * is wiped before it is freed. Errors are OCC_ERR_FORMAT (malformed, too
 * many values), OCC_ERR_SHAPE (shape / size) or OCC_ERR_INVALID (name,
 * datatype): all 400. */
occ_status occ_kserve_decode_infer(const occ_model *m, const uint8_t *body, size_t size, int64_t header_size,
                                   size_t max_values, void *const *inputs, occ_kserve_request *req,
                                   occ_error *e) OCC_MUST_CHECK;

/* The KServe datatype of an occ_dtype ("FP32", "INT64", ...); NULL for
 * none. */
const char *occ_kserve_datatype(uint32_t dtype);

/* Upper bound of the values in a JSON text (counted without parsing:
 * separators and openers outside strings, plus one). */
size_t occ_kserve_json_values(const uint8_t *json, size_t size);

/* Encodes the infer response: JSON, then the binary outputs when any
 * output is binary (*json_size is then the Inference-Header-Content-Length,
 * else *json_size == *size). *out is malloc'd (caller frees). */
occ_status occ_kserve_encode_infer(const occ_model *m, const char *model_name, const occ_kserve_request *req,
                                   const void *const *outputs, uint8_t **out, size_t *size, size_t *json_size,
                                   occ_error *e) OCC_MUST_CHECK;

/* GET /v2/models/{name}: name, versions, platform, inputs, outputs. */
char *occ_kserve_model_metadata(const occ_model *m, const char *name);
/* GET /v2/models/{name}/occ: model id, labels, preprocessing, inputs, outputs. */
char *occ_kserve_model_occ(const occ_model *m, const char *name, const char *binding_hex);
/* GET /v2/models/{name}/ready: {"name": name, "ready": true}, escaped by cJSON. */
char *occ_kserve_model_ready(const char *name);
/* {"error": msg} (malloc'd; NULL on OOM). */
char *occ_kserve_error_json(const char *msg);

#endif
