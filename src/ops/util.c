/* Shared helpers of the operators: attributes, shapes, oneDNN glue. */
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"

/* Largest element count of one tensor: keeps bytes and flop counts far from
 * int64 overflow (2^40 elements = 4 TiB). */
#define OCC_MAX_COUNT (INT64_C(1) << 40)

const occ_attr *occ_ops_attr(const occ_node *n, const char *name)
{
    if (!n->attrs)
        return NULL;
    for (uint32_t i = 0; i < n->n_attrs; i++)
        if (n->attrs[i].name && strcmp(n->attrs[i].name, name) == 0)
            return &n->attrs[i];
    return NULL;
}

occ_status occ_ops_attr_int(const occ_node *n, const char *name, int64_t def, int64_t *out,
                            occ_error *e)
{
    const occ_attr *a = occ_ops_attr(n, name);
    *out = def;
    if (!a)
        return OCC_OK;
    if (a->type != OCC_ATTR_INT)
        return occ_fail(e, OCC_ERR_INVALID, "attribute %s must be an int", name);
    *out = a->i;
    return OCC_OK;
}

occ_status occ_ops_attr_float(const occ_node *n, const char *name, float def, float *out,
                              occ_error *e)
{
    const occ_attr *a = occ_ops_attr(n, name);
    *out = def;
    if (!a)
        return OCC_OK;
    if (a->type == OCC_ATTR_FLOAT)
        *out = a->f;
    else if (a->type == OCC_ATTR_INT)
        *out = (float)a->i;
    else if (a->type == OCC_ATTR_FLOATS && a->count == 1 && a->floats)
        *out = a->floats[0];
    else
        return occ_fail(e, OCC_ERR_INVALID, "attribute %s must be a float", name);
    return OCC_OK;
}

occ_status occ_ops_attr_ints(const occ_node *n, const char *name, uint32_t max,
                             const int64_t **vals, uint32_t *count, occ_error *e)
{
    const occ_attr *a = occ_ops_attr(n, name);
    *vals = NULL;
    *count = 0;
    if (!a)
        return OCC_OK;
    if (a->type != OCC_ATTR_INTS || (a->count && !a->ints))
        return occ_fail(e, OCC_ERR_INVALID, "attribute %s must be a list of ints", name);
    if (a->count > max)
        return occ_fail(e, OCC_ERR_INVALID, "attribute %s has %u values, at most %u allowed",
                        name, a->count, max);
    *vals = a->ints;
    *count = a->count;
    return OCC_OK;
}

occ_status occ_ops_attr_str(const occ_node *n, const char *name, const char *def,
                            const char **out, occ_error *e)
{
    const occ_attr *a = occ_ops_attr(n, name);
    *out = def;
    if (!a)
        return OCC_OK;
    if (a->type != OCC_ATTR_STRING || !a->s)
        return occ_fail(e, OCC_ERR_INVALID, "attribute %s must be a string", name);
    *out = a->s;
    return OCC_OK;
}

const occ_tensor *occ_ops_in(const occ_model *m, const occ_node *n, uint32_t i)
{
    if (i >= n->n_inputs || n->inputs[i] < 0)
        return NULL;
    return &m->tensors[n->inputs[i]];
}

occ_tensor *occ_ops_out(occ_model *m, const occ_node *n, uint32_t i)
{
    return &m->tensors[n->outputs[i]];
}

int occ_ops_is_weight(const occ_model *m, const occ_node *n, uint32_t i)
{
    const occ_tensor *t = occ_ops_in(m, n, i);
    return t && t->kind == OCC_TENSOR_WEIGHT;
}

/* dims in [0, OCC_MAX_COUNT] whose nonzero ones multiply to at most OCC_MAX_COUNT: an
 * empty tensor (a 0 dim) is legal, but its other dims stay bounded so that strides
 * computed from them never overflow. */
int occ_ops_shape_ok(int ndim, const int64_t *dims)
{
    if (ndim < 0 || ndim > OCC_MAX_DIMS)
        return 0;
    int64_t c = 1;
    for (int i = 0; i < ndim; i++) {
        if (dims[i] < 0 || dims[i] > OCC_MAX_COUNT)
            return 0;
        if (dims[i] && c > OCC_MAX_COUNT / dims[i])
            return 0;
        c *= dims[i] ? dims[i] : 1;
    }
    return 1;
}

int64_t occ_ops_count(int ndim, const int64_t *dims)
{
    if (!occ_ops_shape_ok(ndim, dims))
        return 0;
    int64_t c = 1;
    for (int i = 0; i < ndim; i++)
        c *= dims[i];
    return c;
}

occ_status occ_ops_set_out(occ_model *m, const occ_node *n, uint32_t i, int ndim,
                           const int64_t *dims, occ_error *e)
{
    if (ndim < 0 || ndim > OCC_MAX_DIMS)
        return occ_fail(e, OCC_ERR_SHAPE, "output rank %d out of range", ndim);
    for (int d = 0; d < ndim; d++)
        if (dims[d] < 0)
            return occ_fail(e, OCC_ERR_SHAPE, "output dimension %d is %lld (must be >= 0)", d,
                            (long long)dims[d]);
    if (!occ_ops_shape_ok(ndim, dims))
        return occ_fail(e, OCC_ERR_SHAPE, "output tensor too large");
    int64_t c = occ_ops_count(ndim, dims);
    occ_tensor *t = occ_ops_out(m, n, i);
    t->ndim = ndim;
    memset(t->dims, 0, sizeof t->dims);
    for (int d = 0; d < ndim; d++)
        t->dims[d] = dims[d];
    t->size = (uint64_t)c * occ_ops_esize(t);
    return OCC_OK;
}

uint32_t occ_ops_dtype(const occ_tensor *t)
{
    return occ_tensor_dtype(t);
}

size_t occ_ops_esize(const occ_tensor *t)
{
    return occ_dtype_size(occ_tensor_dtype(t));
}

static int64_t sat_i64(double v, double lo, double hi)
{
    if (v != v)
        return 0;
    if (v <= lo)
        return (int64_t)lo;
    if (v >= hi)
        return (int64_t)hi;
    return (int64_t)v;
}

void occ_ops_scalar_from_double(uint32_t dtype, double v, void *out)
{
    switch (dtype) {
    case OCC_DTYPE_FLOAT: { float f = (float)v; memcpy(out, &f, 4); break; }
    case OCC_DTYPE_DOUBLE: memcpy(out, &v, 8); break;
    case OCC_DTYPE_INT32: { int32_t x = (int32_t)sat_i64(v, INT32_MIN, INT32_MAX); memcpy(out, &x, 4); break; }
    case OCC_DTYPE_INT64: {
        /* 2^63 is exact in double; the largest double below it converts safely */
        int64_t x = v != v ? 0 : v >= 9223372036854775807.0 ? INT64_MAX
                  : v <= -9223372036854775808.0 ? INT64_MIN : (int64_t)v;
        memcpy(out, &x, 8);
        break;
    }
    case OCC_DTYPE_UINT64: {
        /* 2^64 is exact in double, as above */
        uint64_t x = v != v || v <= 0.0 ? 0 : v >= 18446744073709551615.0 ? UINT64_MAX : (uint64_t)v;
        memcpy(out, &x, 8);
        break;
    }
    case OCC_DTYPE_UINT32: { uint32_t x = (uint32_t)sat_i64(v, 0, UINT32_MAX); memcpy(out, &x, 4); break; }
    case OCC_DTYPE_INT16: { int16_t x = (int16_t)sat_i64(v, INT16_MIN, INT16_MAX); memcpy(out, &x, 2); break; }
    case OCC_DTYPE_UINT16: { uint16_t x = (uint16_t)sat_i64(v, 0, UINT16_MAX); memcpy(out, &x, 2); break; }
    case OCC_DTYPE_INT8: { int8_t x = (int8_t)sat_i64(v, -128, 127); memcpy(out, &x, 1); break; }
    case OCC_DTYPE_UINT8: { uint8_t x = (uint8_t)sat_i64(v, 0, 255); memcpy(out, &x, 1); break; }
    case OCC_DTYPE_BOOL: { uint8_t x = v != 0; memcpy(out, &x, 1); break; }
    case OCC_DTYPE_FLOAT16: { uint16_t x = occ_double_to_half(v); memcpy(out, &x, 2); break; }
    case OCC_DTYPE_BFLOAT16: { uint16_t x = occ_double_to_bf16(v); memcpy(out, &x, 2); break; }
    default: break;
    }
}

int64_t occ_ops_load_i64(uint32_t dtype, const void *p, int64_t i)
{
    switch (dtype) {
    case OCC_DTYPE_INT32: return ((const int32_t *)p)[i];
    case OCC_DTYPE_INT64: return ((const int64_t *)p)[i];
    case OCC_DTYPE_INT8: return ((const int8_t *)p)[i];
    case OCC_DTYPE_UINT8: case OCC_DTYPE_BOOL: return ((const uint8_t *)p)[i];
    case OCC_DTYPE_INT16: return ((const int16_t *)p)[i];
    case OCC_DTYPE_UINT16: return ((const uint16_t *)p)[i];
    case OCC_DTYPE_UINT32: return ((const uint32_t *)p)[i];
    case OCC_DTYPE_UINT64: return (int64_t)((const uint64_t *)p)[i]; /* the bits: wraps */
    case OCC_DTYPE_FLOAT: case OCC_DTYPE_DOUBLE: case OCC_DTYPE_FLOAT16: case OCC_DTYPE_BFLOAT16: {
        int64_t x;
        occ_ops_scalar_from_double(OCC_DTYPE_INT64, occ_ops_load_f64(dtype, p, i), &x);
        return x;
    }
    default: return 0;
    }
}

int64_t occ_ops_load_key(uint32_t dtype, const void *p, int64_t i)
{
    int64_t v = occ_ops_load_i64(dtype, p, i);
    /* uint64 ordered as int64: flip the top bit */
    return dtype == OCC_DTYPE_UINT64 ? (int64_t)((uint64_t)v ^ 0x8000000000000000u) : v;
}

void occ_ops_store_i64(uint32_t dtype, void *p, int64_t i, int64_t v)
{
    switch (dtype) {
    case OCC_DTYPE_INT32: ((int32_t *)p)[i] = (int32_t)(uint32_t)(uint64_t)v; break;
    case OCC_DTYPE_INT64: ((int64_t *)p)[i] = v; break;
    case OCC_DTYPE_INT8: ((int8_t *)p)[i] = (int8_t)(uint8_t)(uint64_t)v; break;
    case OCC_DTYPE_UINT8: ((uint8_t *)p)[i] = (uint8_t)(uint64_t)v; break;
    case OCC_DTYPE_BOOL: ((uint8_t *)p)[i] = v != 0; break;
    case OCC_DTYPE_INT16: ((int16_t *)p)[i] = (int16_t)(uint16_t)(uint64_t)v; break;
    case OCC_DTYPE_UINT16: ((uint16_t *)p)[i] = (uint16_t)(uint64_t)v; break;
    case OCC_DTYPE_UINT32: ((uint32_t *)p)[i] = (uint32_t)(uint64_t)v; break;
    case OCC_DTYPE_UINT64: ((uint64_t *)p)[i] = (uint64_t)v; break;
    default: break;
    }
}

double occ_ops_load_f64(uint32_t dtype, const void *p, int64_t i)
{
    switch (dtype) {
    case OCC_DTYPE_FLOAT: return ((const float *)p)[i];
    case OCC_DTYPE_DOUBLE: return ((const double *)p)[i];
    case OCC_DTYPE_FLOAT16: return occ_half_to_float(((const uint16_t *)p)[i]);
    case OCC_DTYPE_BFLOAT16: return occ_bf16_to_float(((const uint16_t *)p)[i]);
    case OCC_DTYPE_UINT64: return (double)((const uint64_t *)p)[i];
    default: return (double)occ_ops_load_i64(dtype, p, i);
    }
}

void occ_ops_store_f64(uint32_t dtype, void *p, int64_t i, double v)
{
    occ_ops_scalar_from_double(dtype, v, (uint8_t *)p + (size_t)i * occ_dtype_size(dtype));
}

void occ_ops_set_dtype(occ_model *m, const occ_node *n, uint32_t i, uint32_t dtype)
{
    occ_tensor *t = occ_ops_out(m, n, i);
    t->dtype = dtype;
    int64_t c = occ_ops_count(t->ndim, t->dims);
    t->size = c ? (uint64_t)c * occ_ops_esize(t) : 0;
}

occ_status occ_ops_axis(int64_t axis, int rank, int extra, int *out, occ_error *e)
{
    int64_t r = rank + (extra ? 1 : 0);
    if (axis < -r || axis >= r)
        return occ_fail(e, OCC_ERR_INVALID, "axis %lld out of range for rank %d", (long long)axis,
                        rank);
    *out = (int)(axis < 0 ? axis + r : axis);
    return OCC_OK;
}

occ_status occ_ops_broadcast(int na, const int64_t *a, int nb, const int64_t *b, int *nout,
                             int64_t *out, occ_error *e)
{
    int r = na > nb ? na : nb;
    for (int i = 0; i < r; i++) {
        int ia = i - (r - na), ib = i - (r - nb);
        int64_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return occ_fail(e, OCC_ERR_SHAPE, "shapes not broadcastable at dim %d: %lld vs %lld",
                            i, (long long)da, (long long)db);
        out[i] = da == 1 ? db : da;
    }
    *nout = r;
    return OCC_OK;
}

/* ---- oneDNN ---- */

occ_status occ_dnnl_check(dnnl_status_t s, const char *what, occ_error *e)
{
    if (s == dnnl_success)
        return OCC_OK;
    if (s == dnnl_unimplemented)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "oneDNN has no implementation for %s", what);
    if (s == dnnl_out_of_memory)
        return occ_fail(e, OCC_ERR_NOMEM, "oneDNN out of memory in %s", what);
    return occ_fail(e, OCC_ERR_INTERNAL, "oneDNN %s failed (status %d)", what, (int)s);
}

occ_status occ_dnnl_plain_md(dnnl_memory_desc_t *md, int ndim, const int64_t *dims, occ_error *e)
{
    dnnl_dims_t d, strides;
    int nd = ndim > 0 ? ndim : 1;
    for (int i = 0; i < nd; i++)
        d[i] = ndim > 0 ? dims[i] : 1;
    int64_t s = 1;
    for (int i = nd - 1; i >= 0; i--) {
        strides[i] = s;
        s *= d[i];
    }
    return occ_dnnl_check(dnnl_memory_desc_init_by_strides(md, nd, d, dnnl_f32, strides),
                          "memory descriptor", e);
}

int occ_dnnl_md_is_plain(const dnnl_memory_desc_t *md)
{
    if (md->format_kind != dnnl_blocked || md->format_desc.blocking.inner_nblks != 0)
        return 0;
    int64_t s = 1;
    for (int i = md->ndims - 1; i >= 0; i--) {
        if (md->dims[i] != 1 && md->format_desc.blocking.strides[i] != s)
            return 0;
        if (md->padded_dims[i] != md->dims[i] || md->padded_offsets[i] != 0)
            return 0;
        s *= md->dims[i];
    }
    return md->offset0 == 0;
}

occ_status occ_dnnl_exec(dnnl_primitive_t p, dnnl_stream_t s, int n, const dnnl_exec_arg_t *args,
                         occ_error *e)
{
    occ_status st = occ_dnnl_check(dnnl_primitive_execute(p, s, n, args), "execute", e);
    if (st)
        return st;
    return occ_dnnl_check(dnnl_stream_wait(s), "stream wait", e);
}

occ_status occ_dnnl_mem(dnnl_memory_t *mem, const dnnl_memory_desc_t *md, dnnl_engine_t eng,
                        void *handle, occ_error *e)
{
    return occ_dnnl_check(dnnl_memory_create(mem, md, eng, handle ? handle : DNNL_MEMORY_NONE),
                          "memory create", e);
}

occ_status occ_dnnl_user_attr(dnnl_primitive_attr_t *attr, occ_error *e)
{
    occ_status st = occ_dnnl_check(dnnl_primitive_attr_create(attr), "primitive attributes", e);
    if (!st && (st = occ_dnnl_check(
                    dnnl_primitive_attr_set_scratchpad_mode(*attr, dnnl_scratchpad_mode_user),
                    "scratchpad mode", e))) {
        dnnl_primitive_attr_destroy(*attr);
        *attr = NULL;
    }
    return st;
}

occ_status occ_dnnl_scratch_init(occ_dnnl_scratch *s, const_dnnl_primitive_desc_t pd,
                                 dnnl_engine_t eng, occ_error *e)
{
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t size = md ? dnnl_memory_desc_get_size(md) : 0;
    if (!size)
        return OCC_OK;
    if (!(s->buf = occ_ops_alloc(size)))
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory for a %zu-byte scratchpad", size);
    return occ_dnnl_mem(&s->mem, md, eng, s->buf, e);
}

int occ_dnnl_scratch_arg(const occ_dnnl_scratch *s, dnnl_exec_arg_t *args, int n)
{
    if (s->mem)
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, s->mem};
    return n;
}

void occ_dnnl_scratch_free(occ_dnnl_scratch *s)
{
    if (s->mem)
        dnnl_memory_destroy(s->mem);
    occ_ops_free(s->buf);
    s->mem = NULL;
    s->buf = NULL;
}

/* Every op buffer carries a 64-byte header: its total size and the allocator
 * that made it, so occ_ops_free needs no context. */
typedef struct ops_hdr {
    uint64_t total;
    const occ_ops_allocator *a;
} ops_hdr;

static _Thread_local const occ_ops_allocator *ops_allocator;

void occ_ops_set_allocator(const occ_ops_allocator *a)
{
    ops_allocator = a;
}

void *occ_ops_alloc(uint64_t size)
{
    if (size == 0)
        size = 64;
    if (size > (UINT64_C(1) << 42))
        return NULL;
    size_t sz = (size_t)((size + 63) & ~UINT64_C(63)) + 64;
    const occ_ops_allocator *a = ops_allocator;
    uint8_t *p = a ? a->alloc(a->ctx, sz) : aligned_alloc(64, sz);
    if (!p)
        return NULL;
    memset(p, 0, sz);
    ops_hdr *h = (ops_hdr *)p;
    h->total = sz;
    h->a = a;
    return p + 64;
}

void occ_ops_free(void *ptr)
{
    if (!ptr)
        return;
    uint8_t *p = (uint8_t *)ptr - 64;
    ops_hdr *h = (ops_hdr *)p;
    if (h->a)
        h->a->free(h->a->ctx, p, (size_t)h->total);
    else
        free(p);
}

occ_status occ_dnnl_reorder_into(dnnl_engine_t eng, const dnnl_memory_desc_t *src_md,
                                 const void *src, const dnnl_memory_desc_t *dst_md, void *dst,
                                 occ_error *e)
{
    occ_status st;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t prim = NULL;
    dnnl_memory_t ms = NULL, md = NULL;
    dnnl_stream_t stream = NULL;
    if ((st = occ_dnnl_check(dnnl_reorder_primitive_desc_create(&pd, src_md, eng, dst_md, eng,
                                                                NULL),
                             "weight reorder", e)))
        goto out;
    if ((st = occ_dnnl_check(dnnl_primitive_create(&prim, pd), "weight reorder", e)))
        goto out;
    if ((st = occ_dnnl_mem(&ms, src_md, eng, (void *)src, e)))
        goto out;
    if ((st = occ_dnnl_mem(&md, dst_md, eng, dst, e)))
        goto out;
    if ((st = occ_dnnl_check(dnnl_stream_create(&stream, eng, dnnl_stream_default_flags),
                             "stream", e)))
        goto out;
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, ms}, {DNNL_ARG_TO, md}};
    st = occ_dnnl_exec(prim, stream, 2, args, e);
out:
    if (stream)
        dnnl_stream_destroy(stream);
    if (ms)
        dnnl_memory_destroy(ms);
    if (md)
        dnnl_memory_destroy(md);
    if (prim)
        dnnl_primitive_destroy(prim);
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    return st;
}

occ_status occ_dnnl_reorder_new(dnnl_engine_t eng, const dnnl_memory_desc_t *src_md,
                                const void *src, const dnnl_memory_desc_t *dst_md, void **out,
                                occ_error *e)
{
    void *buf = occ_ops_alloc(dnnl_memory_desc_get_size(dst_md));
    *out = NULL;
    if (!buf)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory for a reordered weight");
    occ_status st = occ_dnnl_reorder_into(eng, src_md, src, dst_md, buf, e);
    if (st)
        occ_ops_free(buf);
    else
        *out = buf;
    return st;
}

occ_status occ_ops_window(const occ_node *n, const int64_t *in, const int64_t *k, int ceil_mode,
                          occ_window *w, occ_error *e)
{
    return occ_ops_window_nd(n, 2, in, k, ceil_mode, w, e);
}

/* Slots: 0 and 1 are the 2-D kernels' H and W. nsp = 1: the one spatial dim
 * goes to slot 1 and slot 0 is a trivial (size 1, kernel 1) dim, so 1-D
 * windows run on the 2-D kernels unchanged. nsp = 3: H and W in slots 0 and
 * 1 as ever, the leading (depth) dim in slot 2; unused slots are trivial. */
static int window_slot(int nsp, int i)
{
    return nsp == 3 ? (i == 0 ? 2 : i - 1) : nsp == 1 ? 1 : i;
}

occ_status occ_ops_window_nd(const occ_node *n, int nsp, const int64_t *in_sp,
                             const int64_t *k_sp, int ceil_mode, occ_window *w, occ_error *e)
{
    occ_status st;
    const int64_t *v;
    uint32_t c;
    const char *ap;
    memset(w, 0, sizeof *w);
    if (nsp < 1 || nsp > 3)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "%d spatial dims (1 to 3 supported)", nsp);
    int64_t in[3] = {1, 1, 1}, k[3] = {1, 1, 1};
    for (int i = 0; i < nsp; i++) {
        in[window_slot(nsp, i)] = in_sp[i];
        k[window_slot(nsp, i)] = k_sp[i];
    }
    for (int i = 0; i < 3; i++) {
        w->in[i] = in[i];
        w->k[i] = k[i];
        w->s[i] = 1;
        w->d[i] = 1;
        if (k[i] <= 0 || k[i] > (1 << 20))
            return occ_fail(e, OCC_ERR_INVALID, "kernel size %lld out of range", (long long)k[i]);
    }
    if ((st = occ_ops_attr_ints(n, "strides", 8, &v, &c, e)))
        return st;
    if (c && c != (uint32_t)nsp)
        return occ_fail(e, OCC_ERR_INVALID, "strides has %u values, expected %d", c, nsp);
    for (uint32_t i = 0; i < c; i++) {
        if (v[i] <= 0 || v[i] > (1 << 20))
            return occ_fail(e, OCC_ERR_INVALID, "stride %lld out of range", (long long)v[i]);
        w->s[window_slot(nsp, (int)i)] = v[i];
    }
    if ((st = occ_ops_attr_ints(n, "dilations", 8, &v, &c, e)))
        return st;
    if (c && c != (uint32_t)nsp)
        return occ_fail(e, OCC_ERR_INVALID, "dilations has %u values, expected %d", c, nsp);
    for (uint32_t i = 0; i < c; i++) {
        if (v[i] <= 0 || v[i] > (1 << 20))
            return occ_fail(e, OCC_ERR_INVALID, "dilation %lld out of range", (long long)v[i]);
        w->d[window_slot(nsp, (int)i)] = v[i];
    }
    if ((st = occ_ops_attr_str(n, "auto_pad", "NOTSET", &ap, e)))
        return st;
    int64_t ext[3];
    for (int i = 0; i < 3; i++)
        ext[i] = (w->k[i] - 1) * w->d[i] + 1;
    if (strcmp(ap, "NOTSET") == 0) {
        if ((st = occ_ops_attr_ints(n, "pads", 8, &v, &c, e)))
            return st;
        if (c && c != 2u * (uint32_t)nsp)
            return occ_fail(e, OCC_ERR_INVALID, "pads has %u values, expected %d", c, 2 * nsp);
        for (uint32_t i = 0; i < c; i++)
            if (v[i] < 0 || v[i] > (1 << 20))
                return occ_fail(e, OCC_ERR_INVALID, "pad %lld out of range", (long long)v[i]);
        for (int i = 0; i < nsp && c; i++) {
            w->pb[window_slot(nsp, i)] = v[i];
            w->pe[window_slot(nsp, i)] = v[i + nsp];
        }
        for (int i = 0; i < 3; i++) {
            int64_t span = in[i] + w->pb[i] + w->pe[i] - ext[i];
            if (span < 0)
                return occ_fail(e, OCC_ERR_SHAPE,
                                "window %lld larger than padded input %lld in spatial dim %d",
                                (long long)ext[i], (long long)(in[i] + w->pb[i] + w->pe[i]), i);
            w->out[i] = (ceil_mode ? (span + w->s[i] - 1) / w->s[i] : span / w->s[i]) + 1;
            if (ceil_mode && (w->out[i] - 1) * w->s[i] >= in[i] + w->pb[i])
                w->out[i]--;
        }
    } else if (strcmp(ap, "VALID") == 0) {
        for (int i = 0; i < 3; i++) {
            int64_t span = in[i] - ext[i];
            if (span < 0)
                return occ_fail(e, OCC_ERR_SHAPE, "window larger than input in spatial dim %d", i);
            w->out[i] = (ceil_mode ? (span + w->s[i] - 1) / w->s[i] : span / w->s[i]) + 1;
        }
    } else if (strcmp(ap, "SAME_UPPER") == 0 || strcmp(ap, "SAME_LOWER") == 0) {
        int upper = ap[5] == 'U';
        for (int i = 0; i < 3; i++) {
            w->out[i] = (in[i] + w->s[i] - 1) / w->s[i];
            int64_t total = (w->out[i] - 1) * w->s[i] + ext[i] - in[i];
            if (total < 0)
                total = 0;
            w->pb[i] = upper ? total / 2 : total - total / 2;
            w->pe[i] = total - w->pb[i];
        }
    } else {
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "auto_pad = %s is not supported", ap);
    }
    for (int i = 0; i < 3; i++)
        if (w->out[i] <= 0)
            return occ_fail(e, OCC_ERR_SHAPE, "empty output in spatial dim %d", i);
    return OCC_OK;
}

/* The longest stretch [*i0, *i1) of the last axis's table that reads
 * consecutive input elements (a Slice's whole row, a Pad's interior): one
 * memcpy a row instead of a lookup per element. */
static void contiguous_run(const int64_t *last, int64_t inner, int64_t *i0, int64_t *i1)
{
    int64_t b0 = 0, b1 = 0;
    for (int64_t i = 0; i < inner;) {
        if (last[i] < 0) {
            i++;
            continue;
        }
        int64_t j = i + 1;
        while (j < inner && last[j] == last[j - 1] + 1)
            j++;
        if (j - i > b1 - b0) {
            b0 = i;
            b1 = j;
        }
        i = j;
    }
    *i0 = b0;
    *i1 = b1;
}

void occ_ops_gather(int nd, const int64_t *odims, const int64_t *idims,
                    const int64_t *const *tab, float fill, const float *in, float *out)
{
    int64_t istride[OCC_MAX_DIMS];
    int64_t acc = 1, rows = 1;
    for (int d = nd - 1; d >= 0; d--) {
        istride[d] = acc;
        acc *= idims[d];
    }
    if (nd == 0) {
        out[0] = in[0];
        return;
    }
    for (int d = 0; d < nd - 1; d++)
        rows *= odims[d];
    const int64_t inner = odims[nd - 1];
    const int64_t *last = tab[nd - 1];
    int64_t c0, c1;
    contiguous_run(last, inner, &c0, &c1);
#pragma omp parallel for if (rows * inner > 65536) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        int64_t rem = r, off = 0;
        int outside = 0;
        for (int d = nd - 2; d >= 0; d--) {
            int64_t src = tab[d][rem % odims[d]];
            rem /= odims[d];
            if (src < 0)
                outside = 1;
            else
                off += src * istride[d];
        }
        float *o = out + r * inner;
        if (outside) {
            for (int64_t i = 0; i < inner; i++)
                o[i] = fill;
            continue;
        }
        const float *row = in + off;
        for (int64_t i = 0; i < c0; i++)
            o[i] = last[i] < 0 ? fill : row[last[i]];
        if (c1 > c0)
            memcpy(o + c0, row + last[c0], (size_t)(c1 - c0) * sizeof *o);
        for (int64_t i = c1; i < inner; i++)
            o[i] = last[i] < 0 ? fill : row[last[i]];
    }
}

void occ_ops_gather_bytes(int nd, const int64_t *odims, const int64_t *idims,
                          const int64_t *const *tab, const void *fill, size_t esize,
                          const void *in, void *out)
{
    if (esize == 4) {
        float f;
        memcpy(&f, fill, 4);
        occ_ops_gather(nd, odims, idims, tab, f, in, out);
        return;
    }
    int64_t istride[OCC_MAX_DIMS];
    int64_t acc = 1, rows = 1;
    for (int d = nd - 1; d >= 0; d--) {
        istride[d] = acc;
        acc *= idims[d];
    }
    if (nd == 0) {
        memcpy(out, in, esize);
        return;
    }
    for (int d = 0; d < nd - 1; d++)
        rows *= odims[d];
    const int64_t inner = odims[nd - 1];
    const int64_t *last = tab[nd - 1];
    int64_t c0, c1;
    contiguous_run(last, inner, &c0, &c1);
    for (int64_t r = 0; r < rows; r++) {
        int64_t rem = r, off = 0;
        int outside = 0;
        for (int d = nd - 2; d >= 0; d--) {
            int64_t src = tab[d][rem % odims[d]];
            rem /= odims[d];
            if (src < 0)
                outside = 1;
            else
                off += src * istride[d];
        }
        uint8_t *o = (uint8_t *)out + (size_t)(r * inner) * esize;
        const uint8_t *row = (const uint8_t *)in + (size_t)off * esize;
        if (outside) {
            for (int64_t i = 0; i < inner; i++)
                memcpy(o + (size_t)i * esize, fill, esize);
            continue;
        }
        for (int64_t i = 0; i < inner; i++) {
            if (i == c0 && c1 > c0) { /* the contiguous stretch in one copy */
                memcpy(o + (size_t)i * esize, row + (size_t)last[i] * esize,
                       (size_t)(c1 - c0) * esize);
                i = c1 - 1;
                continue;
            }
            memcpy(o + (size_t)i * esize, last[i] < 0 ? fill : row + (size_t)last[i] * esize,
                   esize);
        }
    }
}
