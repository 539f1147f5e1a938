/* KServe v2 request decoding and response encoding (see kserve.h). */
#include "occ/crypto.h"
#include "enclave/kserve.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>

#include "ops/ops_internal.h"

static const occ_tensor *input_tensor(const occ_model *m, uint32_t i)
{
    return &m->tensors[m->inputs[i]];
}

static void shape_str(const int64_t *dims, int ndim, char *buf, size_t size)
{
    size_t n = 0;
    n += (size_t)snprintf(buf + n, size - n, "[");
    for (int i = 0; i < ndim && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%s%lld", i ? "," : "", (long long)dims[i]);
    if (n < size)
        snprintf(buf + n, size - n, "]");
}

const char *occ_kserve_datatype(uint32_t dtype)
{
    switch (dtype) {
    case OCC_DTYPE_FLOAT: return "FP32";
    case OCC_DTYPE_INT64: return "INT64";
    case OCC_DTYPE_INT32: return "INT32";
    case OCC_DTYPE_BOOL: return "BOOL";
    case OCC_DTYPE_UINT8: return "UINT8";
    case OCC_DTYPE_INT8: return "INT8";
    case OCC_DTYPE_FLOAT16: return "FP16";
    case OCC_DTYPE_DOUBLE: return "FP64";
    case OCC_DTYPE_INT16: return "INT16";
    case OCC_DTYPE_UINT16: return "UINT16";
    case OCC_DTYPE_UINT32: return "UINT32";
    case OCC_DTYPE_UINT64: return "UINT64";
    case OCC_DTYPE_BFLOAT16: return "BF16";
    default: return NULL;
    }
}

/* Below 2^53 every integer a JSON number spells parses to itself; at or
 * beyond it cJSON's double may be a neighbour (2^53 + 1 reads as 2^53). */
#define EXACT_LIMIT 9007199254740992.0

/* One JSON value into element k of dst (type dt). Returns NULL or why the
 * value is refused (static text). */
static const char *put_value(const cJSON *v, uint32_t dt, void *dst, size_t k)
{
    if (dt == OCC_DTYPE_BOOL) {
        uint8_t b;
        if (cJSON_IsBool(v))
            b = cJSON_IsTrue(v) ? 1 : 0;
        else if (cJSON_IsNumber(v) && (v->valuedouble == 0 || v->valuedouble == 1))
            b = v->valuedouble == 1;
        else
            return "BOOL values are true, false, 0 or 1";
        ((uint8_t *)dst)[k] = b;
        return NULL;
    }
    if (dt == OCC_DTYPE_INT64 && cJSON_IsString(v)) {
        /* exact for the whole int64 range: a decimal string */
        const char *s = v->valuestring;
        char *end = NULL;
        if (!*s || strlen(s) > 20 || (*s != '-' && (*s < '0' || *s > '9')))
            return "an INT64 string must be a decimal integer";
        errno = 0;
        long long x = strtoll(s, &end, 10);
        if (errno || *end || end == s || (*s == '-' && !s[1]))
            return "an INT64 string must be a decimal integer within int64";
        ((int64_t *)dst)[k] = (int64_t)x;
        return NULL;
    }
    if (dt == OCC_DTYPE_UINT64 && cJSON_IsString(v)) {
        /* the same for uint64: digits only (strtoull would take "-1" as 2^64 - 1) */
        const char *s = v->valuestring;
        char *end = NULL;
        if (!*s || strlen(s) > 20 || strspn(s, "0123456789") != strlen(s))
            return "a UINT64 string must be a decimal integer without a sign";
        errno = 0;
        unsigned long long x = strtoull(s, &end, 10);
        if (errno || *end || end == s)
            return "a UINT64 string must be a decimal integer within uint64";
        ((uint64_t *)dst)[k] = (uint64_t)x;
        return NULL;
    }
    if (!cJSON_IsNumber(v))
        return "a value is not a number";
    double d = v->valuedouble;
    switch (dt) {
    case OCC_DTYPE_FLOAT:
        ((float *)dst)[k] = (float)d;
        return NULL;
    case OCC_DTYPE_FLOAT16:
        ((uint16_t *)dst)[k] = occ_double_to_half(d);
        return NULL;
    case OCC_DTYPE_DOUBLE:
        ((double *)dst)[k] = d; /* cJSON reads numbers with strtod: exact */
        return NULL;
    case OCC_DTYPE_BFLOAT16:
        ((uint16_t *)dst)[k] = occ_double_to_bf16(d);
        return NULL;
    default:
        break;
    }
    if (d != floor(d))
        return "a value is not an integer";
    switch (dt) {
    case OCC_DTYPE_INT64:
        if (!(d > -EXACT_LIMIT && d < EXACT_LIMIT))
            return "an INT64 JSON number at or beyond 2^53 is not exact in JSON (send it as a decimal string "
                   "or use binary data)";
        ((int64_t *)dst)[k] = (int64_t)d;
        return NULL;
    case OCC_DTYPE_INT32:
        if (d < -2147483648.0 || d > 2147483647.0)
            return "a value is outside INT32 [-2147483648, 2147483647]";
        ((int32_t *)dst)[k] = (int32_t)d;
        return NULL;
    case OCC_DTYPE_INT8:
        if (d < -128 || d > 127)
            return "a value is outside INT8 [-128, 127]";
        ((int8_t *)dst)[k] = (int8_t)d;
        return NULL;
    case OCC_DTYPE_UINT8:
        if (d < 0 || d > 255)
            return "a value is outside UINT8 [0, 255]";
        ((uint8_t *)dst)[k] = (uint8_t)d;
        return NULL;
    case OCC_DTYPE_INT16:
        if (d < -32768 || d > 32767)
            return "a value is outside INT16 [-32768, 32767]";
        ((int16_t *)dst)[k] = (int16_t)d;
        return NULL;
    case OCC_DTYPE_UINT16:
        if (d < 0 || d > 65535)
            return "a value is outside UINT16 [0, 65535]";
        ((uint16_t *)dst)[k] = (uint16_t)d;
        return NULL;
    case OCC_DTYPE_UINT32:
        if (d < 0 || d > 4294967295.0)
            return "a value is outside UINT32 [0, 4294967295]";
        ((uint32_t *)dst)[k] = (uint32_t)d;
        return NULL;
    case OCC_DTYPE_UINT64:
        if (d < 0)
            return "a value is outside UINT64 (negative)";
        if (!(d < EXACT_LIMIT))
            return "a UINT64 JSON number at or beyond 2^53 is not exact in JSON (send it as a decimal string "
                   "or use binary data)";
        ((uint64_t *)dst)[k] = (uint64_t)d;
        return NULL;
    default:
        return "unsupported datatype";
    }
}

/* Flattens nested arrays of values (row-major) into dst of type dt;
 * returns NULL or why (too many values, too deep, a refused value). */
static const char *flatten(const cJSON *a, uint32_t dt, void *dst, size_t cap, size_t *n, int depth)
{
    if (depth > OCC_MAX_DIMS + 1)
        return "\"data\" is nested too deeply";
    const cJSON *v;
    cJSON_ArrayForEach(v, a)
    {
        if (cJSON_IsArray(v)) {
            const char *why = flatten(v, dt, dst, cap, n, depth + 1);
            if (why)
                return why;
        } else {
            if (*n >= cap)
                return "too many values";
            const char *why = put_value(v, dt, dst, *n);
            if (why)
                return why;
            (*n)++;
        }
    }
    return NULL;
}

size_t occ_kserve_json_values(const uint8_t *json, size_t size)
{
    size_t n = 1;
    int in_str = 0;
    for (size_t i = 0; i < size; i++) {
        uint8_t ch = json[i];
        if (in_str) {
            if (ch == '\\')
                i++;
            else if (ch == '"')
                in_str = 0;
        } else if (ch == '"') {
            in_str = 1;
        } else if (ch == ',' || ch == '[' || ch == '{' || ch == ':') {
            n++;
        }
    }
    return n;
}

/* Zeroes every value and string of a tree (the client's numbers and names)
 * and frees it. Depth is bounded by cJSON's nesting limit. */
static void wipe_json(cJSON *j)
{
    for (cJSON *c = j; c; c = c->next) {
        if (c->child)
            wipe_json(c->child);
        if (c->valuestring)
            occ_wipe(c->valuestring, strlen(c->valuestring));
        if (c->string)
            occ_wipe(c->string, strlen(c->string));
        c->valuedouble = 0;
        c->valueint = 0;
    }
}

static void delete_wiped(cJSON *j)
{
    if (j)
        wipe_json(j);
    cJSON_Delete(j);
}

occ_status occ_kserve_decode_infer(const occ_model *m, const uint8_t *body, size_t size, int64_t header_size,
                                   size_t max_values, void *const *inputs, occ_kserve_request *req, occ_error *e)
{
    memset(req, 0, sizeof *req);
    size_t json_size = size;
    if (header_size >= 0) {
        if ((uint64_t)header_size > size)
            return occ_fail(e, OCC_ERR_FORMAT,
                            "Inference-Header-Content-Length %lld is larger than the body (%zu bytes)",
                            (long long)header_size, size);
        json_size = (size_t)header_size;
    }
    if (!json_size || !body)
        return occ_fail(e, OCC_ERR_FORMAT, "empty request: expected a JSON object with \"inputs\"");
    const uint8_t *bin = body + json_size;
    size_t bin_size = size - json_size, bin_off = 0;
    if (max_values && occ_kserve_json_values(body, json_size) > max_values)
        return occ_fail(e, OCC_ERR_FORMAT,
                        "the request holds more JSON values than this model's inputs need (at most %zu)", max_values);
    cJSON *root = cJSON_ParseWithLength((const char *)body, json_size);
    if (!root)
        return occ_fail(e, OCC_ERR_FORMAT, "malformed JSON in the request");
    occ_status st = OCC_OK;
    uint8_t seen[256] = {0};
    if (!cJSON_IsObject(root)) {
        st = occ_fail(e, OCC_ERR_FORMAT, "the request must be a JSON object");
        goto done;
    }
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
    if (id) {
        if (!cJSON_IsString(id) || strlen(id->valuestring) > OCC_KSERVE_MAX_ID) {
            st = occ_fail(e, OCC_ERR_FORMAT, "\"id\" must be a string of at most %d bytes", OCC_KSERVE_MAX_ID);
            goto done;
        }
        snprintf(req->id, sizeof req->id, "%s", id->valuestring);
        req->has_id = 1;
    }
    int all_binary = 0;
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(root, "parameters");
    if (params) {
        if (!cJSON_IsObject(params)) {
            st = occ_fail(e, OCC_ERR_FORMAT, "\"parameters\" must be an object");
            goto done;
        }
        const cJSON *bo = cJSON_GetObjectItemCaseSensitive(params, "binary_data_output");
        if (bo && !cJSON_IsBool(bo)) {
            st = occ_fail(e, OCC_ERR_FORMAT, "\"binary_data_output\" must be true or false");
            goto done;
        }
        all_binary = cJSON_IsTrue(bo);
    }
    const cJSON *ins = cJSON_GetObjectItemCaseSensitive(root, "inputs");
    if (!cJSON_IsArray(ins)) {
        st = occ_fail(e, OCC_ERR_FORMAT, "\"inputs\" must be an array of tensors");
        goto done;
    }
    if (m->n_inputs > sizeof seen) {
        st = occ_fail(e, OCC_ERR_UNSUPPORTED, "model has too many inputs");
        goto done;
    }
    int n_given = cJSON_GetArraySize(ins);
    if (n_given != (int)m->n_inputs) {
        st = occ_fail(e, OCC_ERR_INVALID, "the model takes %u input(s), the request has %d", m->n_inputs, n_given);
        goto done;
    }
    const cJSON *in;
    cJSON_ArrayForEach(in, ins)
    {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(in, "name");
        if (!cJSON_IsObject(in) || !cJSON_IsString(name)) {
            st = occ_fail(e, OCC_ERR_FORMAT, "every input needs a \"name\" string");
            goto done;
        }
        uint32_t k = 0;
        while (k < m->n_inputs && strcmp(input_tensor(m, k)->name, name->valuestring))
            k++;
        if (k == m->n_inputs) {
            st = occ_fail(e, OCC_ERR_INVALID, "unknown input tensor '%.64s' (the model's first input is '%.64s')",
                          name->valuestring, input_tensor(m, 0)->name);
            goto done;
        }
        if (seen[k]) {
            st = occ_fail(e, OCC_ERR_INVALID, "input '%.64s' given twice", name->valuestring);
            goto done;
        }
        seen[k] = 1;
        const occ_tensor *t = input_tensor(m, k);
        const cJSON *dt = cJSON_GetObjectItemCaseSensitive(in, "datatype");
        if (!cJSON_IsString(dt)) {
            st = occ_fail(e, OCC_ERR_FORMAT, "input '%.64s' needs a \"datatype\"", t->name);
            goto done;
        }
        const uint32_t tdt = occ_tensor_dtype(t);
        const char *want_dt = occ_kserve_datatype(tdt);
        if (!want_dt) {
            st = occ_fail(e, OCC_ERR_UNSUPPORTED, "input '%.64s' is %s, which KServe cannot carry", t->name,
                          occ_dtype_name(tdt));
            goto done;
        }
        if (strcmp(dt->valuestring, want_dt)) {
            st = occ_fail(e, OCC_ERR_INVALID, "input '%.64s' has datatype '%.16s'; the model takes %s", t->name,
                          dt->valuestring, want_dt);
            goto done;
        }
        const cJSON *shape = cJSON_GetObjectItemCaseSensitive(in, "shape");
        char want[160];
        shape_str(t->dims, t->ndim, want, sizeof want);
        if (!cJSON_IsArray(shape)) {
            st = occ_fail(e, OCC_ERR_FORMAT, "input '%.64s' needs a \"shape\" array, e.g. %s", t->name, want);
            goto done;
        }
        int64_t dims[OCC_MAX_DIMS];
        int nd = 0, shape_ok = 1;
        const cJSON *d;
        cJSON_ArrayForEach(d, shape)
        {
            if (nd >= OCC_MAX_DIMS || !cJSON_IsNumber(d) || d->valuedouble < 0 || d->valuedouble > 1e15 ||
                d->valuedouble != floor(d->valuedouble)) {
                shape_ok = 0;
                break;
            }
            dims[nd++] = (int64_t)d->valuedouble;
        }
        if (shape_ok && nd == t->ndim) {
            for (int i = 0; i < nd; i++)
                if (dims[i] != t->dims[i])
                    shape_ok = 0;
        } else {
            shape_ok = 0;
        }
        if (!shape_ok) {
            char got[160] = "(invalid)";
            if (nd <= OCC_MAX_DIMS && cJSON_GetArraySize(shape) == nd)
                shape_str(dims, nd, got, sizeof got);
            st = occ_fail(e, OCC_ERR_SHAPE, "input '%.64s' has shape %s; the model takes %s", t->name, got, want);
            goto done;
        }
        size_t count = (size_t)(t->size / occ_dtype_size(tdt));
        const cJSON *ip = cJSON_GetObjectItemCaseSensitive(in, "parameters");
        const cJSON *bds = ip ? cJSON_GetObjectItemCaseSensitive(ip, "binary_data_size") : NULL;
        const cJSON *data = cJSON_GetObjectItemCaseSensitive(in, "data");
        if (ip && !cJSON_IsObject(ip)) {
            st = occ_fail(e, OCC_ERR_FORMAT, "input '%.64s': \"parameters\" must be an object", t->name);
            goto done;
        }
        if (bds) {
            if (data) {
                st = occ_fail(e, OCC_ERR_FORMAT, "input '%.64s' has both \"data\" and binary data", t->name);
                goto done;
            }
            if (header_size < 0) {
                st = occ_fail(e, OCC_ERR_FORMAT,
                              "input '%.64s' has binary_data_size but the request has no "
                              "Inference-Header-Content-Length header",
                              t->name);
                goto done;
            }
            if (!cJSON_IsNumber(bds) || bds->valuedouble != (double)t->size) {
                st = occ_fail(e, OCC_ERR_SHAPE, "input '%.64s': binary_data_size must be %llu bytes (%s %s)",
                              t->name, (unsigned long long)t->size, want_dt, want);
                goto done;
            }
            if (bin_size - bin_off < t->size) {
                st = occ_fail(e, OCC_ERR_SHAPE,
                              "input '%.64s': truncated binary tensor (%zu of %llu bytes present)", t->name,
                              bin_size - bin_off, (unsigned long long)t->size);
                goto done;
            }
            if (tdt == OCC_DTYPE_BOOL) {
                /* the engine's bool is one byte, 0 or 1 */
                for (size_t b = 0; b < t->size; b++)
                    if (bin[bin_off + b] > 1) {
                        st = occ_fail(e, OCC_ERR_INVALID,
                                      "input '%.64s': BOOL byte %zu is %u (binary BOOL is one byte, 0 or 1)",
                                      t->name, b, bin[bin_off + b]);
                        goto done;
                    }
            }
            if (t->size) /* an empty tensor ([0, ...]) may come with no binary part at all */
                memcpy(inputs[k], bin + bin_off, t->size);
            bin_off += t->size;
        } else {
            if (!cJSON_IsArray(data)) {
                st = occ_fail(e, OCC_ERR_FORMAT, "input '%.64s' needs a \"data\" array (or binary data)", t->name);
                goto done;
            }
            size_t n = 0;
            const char *why = flatten(data, tdt, inputs[k], count, &n, 0);
            if (why && strcmp(why, "too many values")) {
                st = occ_fail(e, OCC_ERR_INVALID, "input '%.64s' (%s): %s (value %zu)", t->name, want_dt, why, n);
                goto done;
            }
            if (why || n != count) {
                st = occ_fail(e, OCC_ERR_SHAPE,
                              "input '%.64s': \"data\" must hold exactly %zu values for %s %s", t->name, count,
                              want_dt, want);
                goto done;
            }
        }
    }
    if (bin_off != bin_size) {
        st = occ_fail(e, OCC_ERR_FORMAT, "%zu unused bytes of binary data after the tensors", bin_size - bin_off);
        goto done;
    }
    /* Requested outputs. */
    const cJSON *outs = cJSON_GetObjectItemCaseSensitive(root, "outputs");
    uint32_t n_out = m->n_outputs < OCC_KSERVE_MAX_OUTPUTS ? m->n_outputs : OCC_KSERVE_MAX_OUTPUTS;
    if (!outs) {
        for (uint32_t i = 0; i < n_out; i++)
            req->out_mode[i] = all_binary ? 2 : 1;
    } else {
        if (!cJSON_IsArray(outs)) {
            st = occ_fail(e, OCC_ERR_FORMAT, "\"outputs\" must be an array");
            goto done;
        }
        const cJSON *o;
        cJSON_ArrayForEach(o, outs)
        {
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
            if (!cJSON_IsObject(o) || !cJSON_IsString(name)) {
                st = occ_fail(e, OCC_ERR_FORMAT, "every requested output needs a \"name\"");
                goto done;
            }
            uint32_t k = 0;
            while (k < n_out && strcmp(m->tensors[m->outputs[k]].name, name->valuestring))
                k++;
            if (k == n_out) {
                st = occ_fail(e, OCC_ERR_INVALID, "unknown output tensor '%.64s'", name->valuestring);
                goto done;
            }
            const cJSON *op = cJSON_GetObjectItemCaseSensitive(o, "parameters");
            const cJSON *bd = op ? cJSON_GetObjectItemCaseSensitive(op, "binary_data") : NULL;
            if (bd && !cJSON_IsBool(bd)) {
                st = occ_fail(e, OCC_ERR_FORMAT, "\"binary_data\" must be true or false");
                goto done;
            }
            req->out_mode[k] = (bd ? cJSON_IsTrue(bd) : all_binary) ? 2 : 1;
        }
    }
done:
    delete_wiped(root);
    return st;
}

static cJSON *shape_json(const occ_tensor *t)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < t->ndim; i++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber((double)t->dims[i]));
    return a;
}

occ_status occ_kserve_encode_infer(const occ_model *m, const char *model_name, const occ_kserve_request *req,
                                   const void *const *outputs, uint8_t **out, size_t *size, size_t *json_size,
                                   occ_error *e)
{
    *out = NULL;
    *size = *json_size = 0;
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = cJSON_CreateArray();
    if (!root || !arr) {
        cJSON_Delete(root);
        cJSON_Delete(arr);
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    }
    cJSON_AddStringToObject(root, "model_name", model_name);
    cJSON_AddStringToObject(root, "model_version", "1");
    if (req->has_id)
        cJSON_AddStringToObject(root, "id", req->id);
    cJSON_AddItemToObject(root, "outputs", arr);
    size_t bin_total = 0;
    for (uint32_t i = 0; i < m->n_outputs; i++) {
        int mode = i < OCC_KSERVE_MAX_OUTPUTS ? req->out_mode[i] : 1;
        if (!mode)
            continue;
        const occ_tensor *t = &m->tensors[m->outputs[i]];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToArray(arr, o);
        cJSON_AddStringToObject(o, "name", t->name);
        const uint32_t tdt = occ_tensor_dtype(t);
        const char *dtn = occ_kserve_datatype(tdt);
        if (!dtn) {
            delete_wiped(root);
            return occ_fail(e, OCC_ERR_UNSUPPORTED, "output '%.64s' is %s, which KServe cannot carry", t->name,
                            occ_dtype_name(tdt));
        }
        cJSON_AddStringToObject(o, "datatype", dtn);
        cJSON_AddItemToObject(o, "shape", shape_json(t));
        if (mode == 2) {
            cJSON *p = cJSON_AddObjectToObject(o, "parameters");
            cJSON_AddNumberToObject(p, "binary_data_size", (double)t->size);
            bin_total += t->size;
        } else {
            size_t count = (size_t)(t->size / occ_dtype_size(tdt));
            cJSON *d = cJSON_AddArrayToObject(o, "data");
            for (size_t k = 0; d && k < count; k++) {
                cJSON *item = NULL;
                char num[32];
                switch (tdt) {
                case OCC_DTYPE_INT64:
                    /* printed exactly (a double would round beyond 2^53) */
                    snprintf(num, sizeof num, "%lld", (long long)((const int64_t *)outputs[i])[k]);
                    item = cJSON_CreateRaw(num);
                    break;
                case OCC_DTYPE_INT32:
                    item = cJSON_CreateNumber((double)((const int32_t *)outputs[i])[k]);
                    break;
                case OCC_DTYPE_INT8:
                    item = cJSON_CreateNumber((double)((const int8_t *)outputs[i])[k]);
                    break;
                case OCC_DTYPE_UINT8:
                    item = cJSON_CreateNumber((double)((const uint8_t *)outputs[i])[k]);
                    break;
                case OCC_DTYPE_BOOL:
                    item = cJSON_CreateBool(((const uint8_t *)outputs[i])[k] != 0);
                    break;
                case OCC_DTYPE_UINT64:
                    snprintf(num, sizeof num, "%llu", (unsigned long long)((const uint64_t *)outputs[i])[k]);
                    item = cJSON_CreateRaw(num);
                    break;
                case OCC_DTYPE_UINT32:
                    item = cJSON_CreateNumber((double)((const uint32_t *)outputs[i])[k]);
                    break;
                case OCC_DTYPE_INT16:
                    item = cJSON_CreateNumber((double)((const int16_t *)outputs[i])[k]);
                    break;
                case OCC_DTYPE_UINT16:
                    item = cJSON_CreateNumber((double)((const uint16_t *)outputs[i])[k]);
                    break;
                case OCC_DTYPE_DOUBLE: {
                    /* cJSON prints 17 digits when 15 do not read back: exact */
                    double v = ((const double *)outputs[i])[k];
                    item = isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull();
                    break;
                }
                default: {
                    float v = tdt == OCC_DTYPE_FLOAT16    ? occ_half_to_float(((const uint16_t *)outputs[i])[k])
                              : tdt == OCC_DTYPE_BFLOAT16 ? occ_bf16_to_float(((const uint16_t *)outputs[i])[k])
                                                          : ((const float *)outputs[i])[k];
                    /* JSON has no NaN/Inf: send null for them (documented). */
                    item = isfinite(v) ? cJSON_CreateNumber((double)v) : cJSON_CreateNull();
                    break;
                }
                }
                cJSON_AddItemToArray(d, item);
            }
        }
    }
    char *json = cJSON_PrintUnformatted(root);
    delete_wiped(root); /* the outputs are the client's */
    if (!json)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory encoding the response");
    size_t jn = strlen(json);
    uint8_t *buf = malloc(jn + bin_total + 1);
    if (!buf) {
        occ_wipe(json, jn);
        free(json);
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory encoding the response");
    }
    memcpy(buf, json, jn);
    occ_wipe(json, jn);
    free(json);
    size_t off = jn;
    for (uint32_t i = 0; i < m->n_outputs && i < OCC_KSERVE_MAX_OUTPUTS; i++) {
        if (req->out_mode[i] != 2)
            continue;
        const occ_tensor *t = &m->tensors[m->outputs[i]];
        if (t->size) /* (an empty output has no bytes) */
            memcpy(buf + off, outputs[i], t->size);
        off += t->size;
    }
    *out = buf;
    *size = off;
    *json_size = jn;
    return OCC_OK;
}

static cJSON *tensors_json(const occ_model *m, const int32_t *idx, uint32_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (uint32_t i = 0; a && i < n; i++) {
        const occ_tensor *t = &m->tensors[idx[i]];
        cJSON *o = cJSON_CreateObject();
        const char *dtn = occ_kserve_datatype(occ_tensor_dtype(t));
        cJSON_AddStringToObject(o, "name", t->name);
        cJSON_AddStringToObject(o, "datatype", dtn ? dtn : occ_dtype_name(occ_tensor_dtype(t)));
        cJSON_AddItemToObject(o, "shape", shape_json(t));
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

static char *print_free(cJSON *root)
{
    char *s = root ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    return s;
}

char *occ_kserve_model_metadata(const occ_model *m, const char *name)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "name", name);
    cJSON *v = cJSON_AddArrayToObject(root, "versions");
    cJSON_AddItemToArray(v, cJSON_CreateString("1"));
    cJSON_AddStringToObject(root, "platform", "occlumency");
    cJSON_AddItemToObject(root, "inputs", tensors_json(m, m->inputs, m->n_inputs));
    cJSON_AddItemToObject(root, "outputs", tensors_json(m, m->outputs, m->n_outputs));
    return print_free(root);
}

char *occ_kserve_model_occ(const occ_model *m, const char *name, const char *binding_hex)
{
    char id[65];
    occ_hex(m->model_id, 32, id);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "name", name);
    cJSON_AddStringToObject(root, "model_id", id);
    cJSON_AddStringToObject(root, "report_data_model_binding", binding_hex);
    cJSON *labels = cJSON_AddArrayToObject(root, "labels");
    for (uint32_t i = 0; labels && i < m->n_labels; i++)
        cJSON_AddItemToArray(labels, cJSON_CreateString(m->labels[i]));
    const occ_preproc *p = &m->pre;
    if (!p->present) {
        cJSON_AddNullToObject(root, "preprocessing");
    } else {
        cJSON *o = cJSON_AddObjectToObject(root, "preprocessing");
        cJSON_AddNumberToObject(o, "height", p->height);
        cJSON_AddNumberToObject(o, "width", p->width);
        cJSON_AddNumberToObject(o, "channels", p->channels);
        cJSON_AddStringToObject(o, "channel_order", p->channel_order);
        cJSON_AddNumberToObject(o, "scale", p->scale);
        cJSON *mean = cJSON_AddArrayToObject(o, "mean"), *std = cJSON_AddArrayToObject(o, "std");
        for (int c = 0; c < p->channels && c < 4; c++) {
            cJSON_AddItemToArray(mean, cJSON_CreateNumber(p->mean[c]));
            cJSON_AddItemToArray(std, cJSON_CreateNumber(p->std[c]));
        }
    }
    cJSON_AddItemToObject(root, "inputs", tensors_json(m, m->inputs, m->n_inputs));
    cJSON_AddItemToObject(root, "outputs", tensors_json(m, m->outputs, m->n_outputs));
    return print_free(root);
}

char *occ_kserve_model_ready(const char *name)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "name", name);
    cJSON_AddTrueToObject(root, "ready");
    return print_free(root);
}

char *occ_kserve_error_json(const char *msg)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "error", msg);
    return print_free(root);
}
