/* Importer utilities: arena, constant values, ONNX tensors and attributes. */
#include <stdlib.h>
#include <string.h>

#include "pack/imp.h"

struct imp_block {
    imp_block *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

#define IMP_BLOCK_SIZE (64u << 10)

void *imp_alloc(imp_arena *a, size_t size)
{
    size = (size + 15u) & ~(size_t)15u;
    if (size == 0)
        size = 16;
    imp_block *b = a->head;
    if (!b || b->cap - b->used < size) {
        size_t cap = size > IMP_BLOCK_SIZE / 4 ? size : IMP_BLOCK_SIZE;
        imp_block *nb = malloc(sizeof *nb + cap);
        if (!nb)
            return NULL;
        nb->used = 0;
        nb->cap = cap;
        if (cap == size && b) { /* a big one-off: keep the current block open */
            nb->next = b->next;
            b->next = nb;
        } else {
            nb->next = b;
            a->head = nb;
        }
        b = nb;
    }
    void *p = b->data + b->used;
    b->used += size;
    memset(p, 0, size);
    return p;
}

char *imp_strdup(imp_arena *a, const char *s)
{
    size_t n = strlen(s);
    char *p = imp_alloc(a, n + 1);
    if (p)
        memcpy(p, s, n + 1);
    return p;
}

void imp_arena_free(imp_arena *a)
{
    imp_block *b = a->head;
    while (b) {
        imp_block *n = b->next;
        free(b);
        b = n;
    }
    a->head = NULL;
}

void imp_cval_clear(imp_cval *c)
{
    if (c->owned) {
        free(c->f);
        free(c->i);
        free(c->d);
    }
    memset(c, 0, sizeof *c);
}

int64_t imp_count(int32_t ndim, const int64_t *dims)
{
    if (ndim < 0 || ndim > OCC_MAX_DIMS)
        return -1;
    int64_t n = 1;
    for (int32_t k = 0; k < ndim; k++) {
        if (dims[k] < 0 || dims[k] > IMP_MAX_ELEMS)
            return -1;
        if (dims[k] == 0)
            n = 0;
        else if (n > IMP_MAX_ELEMS / dims[k])
            return -1;
        else
            n *= dims[k];
    }
    return n;
}

occ_status imp_cval_alloc(imp_cval *c, occ_error *e)
{
    if (c->count < 0 || c->count > IMP_MAX_ELEMS)
        return occ_fail(e, OCC_ERR_SHAPE, "tensor of %lld elements is too large", (long long)c->count);
    size_t n = c->count ? (size_t)c->count : 1;
    if (c->type == CV_FLOAT) {
        c->f = calloc(n, sizeof(float));
        if (!c->f)
            return occ_fail(e, OCC_ERR_NOMEM, "out of memory (%zu floats)", n);
    } else {
        c->i = calloc(n, sizeof(int64_t));
        if (!c->i)
            return occ_fail(e, OCC_ERR_NOMEM, "out of memory (%zu integers)", n);
    }
    c->owned = 1;
    return OCC_OK;
}

uint32_t imp_cval_dtype(const imp_cval *c)
{
    if (c->dt)
        return c->dt;
    return c->type == CV_INT ? OCC_DTYPE_INT64 : OCC_DTYPE_FLOAT;
}

uint32_t imp_onnx_dtype(int32_t t)
{
    /* occ_dtype codes are the ONNX ones */
    return t > 0 && t < 64 && occ_dtype_size((uint32_t)t) ? (uint32_t)t : 0;
}

/* Writes v into element k of a little-endian buffer of integer dtype dt
 * (two's complement truncation; bool = v != 0). */
static void put_int(uint8_t *out, uint32_t dt, int64_t k, int64_t v)
{
    size_t es = occ_dtype_size(dt);
    uint64_t u = dt == OCC_DTYPE_BOOL ? v != 0 : (uint64_t)v;
    for (size_t b = 0; b < es; b++)
        out[(size_t)k * es + b] = (uint8_t)(u >> (8 * b));
}

const void *imp_cval_bytes(imp_arena *a, const imp_cval *c)
{
    uint32_t dt = imp_cval_dtype(c);
    if (c->type == CV_FLOAT && dt != OCC_DTYPE_DOUBLE)
        return c->f; /* float32 */
    if (c->type == CV_FLOAT && c->d)
        return c->d; /* float64 as read */
    if (c->type != CV_FLOAT && (dt == OCC_DTYPE_INT64 || dt == OCC_DTYPE_UINT64))
        return c->i; /* uint64: the bits */
    size_t es = occ_dtype_size(dt);
    uint8_t *out = imp_alloc(a, (size_t)(c->count ? c->count : 1) * (es ? es : 1));
    if (!out)
        return NULL;
    for (int64_t k = 0; k < c->count; k++) {
        if (c->type == CV_FLOAT) { /* a folded float64: widened from the fold's float */
            double d = c->f[k];
            memcpy(out + 8 * k, &d, 8);
        } else {
            put_int(out, dt, k, c->i[k]);
        }
    }
    return out;
}

occ_status imp_cval_from_bytes(imp_cval *c, uint32_t dtype, const void *data, occ_error *e)
{
    int is_f = dtype == OCC_DTYPE_FLOAT || dtype == OCC_DTYPE_DOUBLE;
    if (!is_f && occ_dtype_is_float(dtype))
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "%s values cannot be bound at pack time "
                        "(float32, float64, integer and bool can)", occ_dtype_name(dtype));
    c->type = is_f ? CV_FLOAT : CV_INT;
    c->dt = dtype;
    occ_status s = imp_cval_alloc(c, e);
    if (s)
        return s;
    if (dtype == OCC_DTYPE_DOUBLE) {
        c->d = malloc((size_t)(c->count ? c->count : 1) * sizeof(double));
        if (!c->d)
            return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    }
    const uint8_t *p = data;
    for (int64_t k = 0; k < c->count; k++) {
        switch (dtype) {
        case OCC_DTYPE_FLOAT: memcpy(&c->f[k], p + 4 * k, 4); break;
        case OCC_DTYPE_DOUBLE: memcpy(&c->d[k], p + 8 * k, 8); c->f[k] = (float)c->d[k]; break;
        case OCC_DTYPE_INT64: case OCC_DTYPE_UINT64: memcpy(&c->i[k], p + 8 * k, 8); break;
        case OCC_DTYPE_INT32: { int32_t x; memcpy(&x, p + 4 * k, 4); c->i[k] = x; break; }
        case OCC_DTYPE_UINT32: { uint32_t x; memcpy(&x, p + 4 * k, 4); c->i[k] = x; break; }
        case OCC_DTYPE_INT16: { int16_t x; memcpy(&x, p + 2 * k, 2); c->i[k] = x; break; }
        case OCC_DTYPE_UINT16: { uint16_t x; memcpy(&x, p + 2 * k, 2); c->i[k] = x; break; }
        case OCC_DTYPE_INT8: c->i[k] = (int8_t)p[k]; break;
        case OCC_DTYPE_BOOL: c->i[k] = p[k] != 0; break;
        default: c->i[k] = p[k]; break;
        }
    }
    return OCC_OK;
}

static const char *dtype_name(int32_t t)
{
    static const char *names[] = {"UNDEFINED", "FLOAT", "UINT8", "INT8", "UINT16", "INT16",
                                  "INT32", "INT64", "STRING", "BOOL", "FLOAT16", "DOUBLE",
                                  "UINT32", "UINT64", "COMPLEX64", "COMPLEX128", "BFLOAT16"};
    if (t >= 0 && t < (int32_t)(sizeof names / sizeof names[0]))
        return names[t];
    return "unknown";
}

static int64_t rd_int(const uint8_t *p, int32_t dtype)
{
    switch (dtype) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8: return p[0];
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: return p[0] != 0;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8: return (int8_t)p[0];
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16: return (uint16_t)(p[0] | p[1] << 8);
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT16: return (int16_t)(uint16_t)(p[0] | p[1] << 8);
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32: {
        uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        return dtype == ONNX__TENSOR_PROTO__DATA_TYPE__INT32 ? (int64_t)(int32_t)v : (int64_t)v;
    }
    default: {
        uint64_t v = 0;
        for (int k = 7; k >= 0; k--)
            v = v << 8 | p[k];
        return (int64_t)v;
    }
    }
}

/* A float64 tensor keeps its exact values beside the narrowed ones. */
static occ_status alloc_doubles(imp_cval *c, occ_error *e)
{
    if (c->dt != OCC_DTYPE_DOUBLE)
        return OCC_OK;
    c->d = malloc((size_t)(c->count ? c->count : 1) * sizeof(double));
    return c->d ? OCC_OK : occ_fail(e, OCC_ERR_NOMEM, "out of memory (%lld doubles)",
                                    (long long)c->count);
}

occ_status imp_tensor_parse(const Onnx__TensorProto *t, imp_cval *c, occ_error *e)
{
    memset(c, 0, sizeof *c);
    if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
        return occ_fail(e, OCC_ERR_UNSUPPORTED,
                        "tensor '%s' keeps its data in an external file; re-save the model with "
                        "the weights embedded (onnx.save(model, path, save_as_external_data=False))",
                        t->name ? t->name : "");
    if (t->segment)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "segmented tensors are not supported");
    if (t->n_dims > OCC_MAX_DIMS)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "tensor has rank %zu (at most %d supported)",
                        t->n_dims, OCC_MAX_DIMS);
    c->ndim = (int32_t)t->n_dims;
    for (size_t k = 0; k < t->n_dims; k++) {
        if (t->dims[k] < 0)
            return occ_fail(e, OCC_ERR_FORMAT, "tensor has a negative dimension (%lld)",
                            (long long)t->dims[k]);
        c->dims[k] = t->dims[k];
    }
    c->count = imp_count(c->ndim, c->dims);
    if (c->count < 0)
        return occ_fail(e, OCC_ERR_SHAPE, "tensor dims are absurdly large");
    int32_t dt = t->has_data_type ? t->data_type : 0;
    size_t esz;
    switch (dt) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: c->type = CV_FLOAT; esz = 4; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: c->type = CV_FLOAT; esz = 8; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64: c->type = CV_INT; esz = 8; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32: c->type = CV_INT; esz = 4; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16: c->type = CV_INT; esz = 2; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8:
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: c->type = CV_INT; esz = 1; break;
    default:
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "tensor '%s' has data type %s (float, double, "
                        "bool and integer tensors are supported)",
                        t->name ? t->name : "", dtype_name(dt));
    }
    c->dt = imp_onnx_dtype(dt);
    size_t n = (size_t)c->count;
    if (t->has_raw_data || t->raw_data.len) {
        if (t->raw_data.len / esz != n || t->raw_data.len % esz)
            return occ_fail(e, OCC_ERR_FORMAT,
                            "tensor '%s': raw_data has %zu bytes but its dims need %zu",
                            t->name ? t->name : "", t->raw_data.len, n * esz);
        const uint8_t *p = t->raw_data.data;
        if (c->type == CV_FLOAT && esz == 4 && n && ((uintptr_t)p % _Alignof(float)) == 0) {
            c->f = (float *)(void *)t->raw_data.data; /* borrowed; little-endian host */
            return OCC_OK;
        }
        occ_status s = imp_cval_alloc(c, e);
        if (s)
            return s;
        if ((s = alloc_doubles(c, e)))
            return s;
        for (size_t k = 0; k < n; k++) {
            if (c->type == CV_FLOAT && esz == 4) {
                memcpy(&c->f[k], p + 4 * k, 4);
            } else if (c->type == CV_FLOAT) {
                memcpy(&c->d[k], p + 8 * k, 8);
                c->f[k] = (float)c->d[k];
            } else {
                c->i[k] = rd_int(p + esz * k, dt);
            }
        }
        return OCC_OK;
    }
    size_t have;
    switch (dt) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: have = t->n_float_data; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: have = t->n_double_data; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: have = t->n_int64_data; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32: have = t->n_uint64_data; break;
    default: have = t->n_int32_data; break;
    }
    if (have != n)
        return occ_fail(e, OCC_ERR_FORMAT, "tensor '%s' has %zu values but its dims need %zu",
                        t->name ? t->name : "", have, n);
    if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT && n) {
        c->f = t->float_data; /* borrowed */
        return OCC_OK;
    }
    occ_status s = imp_cval_alloc(c, e);
    if (s || (s = alloc_doubles(c, e)))
        return s;
    for (size_t k = 0; k < n; k++) {
        switch (dt) {
        case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: c->f[k] = t->float_data[k]; break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE:
            c->d[k] = t->double_data[k];
            c->f[k] = (float)c->d[k];
            break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: c->i[k] = t->int64_data[k]; break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64:
        case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32: c->i[k] = (int64_t)t->uint64_data[k]; break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: c->i[k] = t->int32_data[k] != 0; break;
        default: c->i[k] = t->int32_data[k]; break;
        }
    }
    return OCC_OK;
}

const Onnx__AttributeProto *imp_onnx_attr(const Onnx__NodeProto *n, const char *name)
{
    for (size_t k = 0; k < n->n_attribute; k++)
        if (n->attribute[k] && n->attribute[k]->name && !strcmp(n->attribute[k]->name, name))
            return n->attribute[k];
    return NULL;
}

int64_t imp_attr_int(const Onnx__NodeProto *n, const char *name, int64_t dflt)
{
    const Onnx__AttributeProto *a = imp_onnx_attr(n, name);
    return a && a->has_i ? a->i : dflt;
}

float imp_attr_float(const Onnx__NodeProto *n, const char *name, float dflt)
{
    const Onnx__AttributeProto *a = imp_onnx_attr(n, name);
    return a && a->has_f ? a->f : dflt;
}
