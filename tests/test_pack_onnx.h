/* Builds small ONNX models in memory with the protobuf-c structs, for the
 * importer tests and fuzz seeds. Every allocation is tracked and freed by
 * tb_free. Not thread-safe; one builder at a time. */
#ifndef OCC_TEST_PACK_ONNX_H
#define OCC_TEST_PACK_ONNX_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "onnx.pb-c.h"

typedef struct tb {
    Onnx__ModelProto model;
    Onnx__GraphProto graph;
    Onnx__OperatorSetIdProto opset;
    Onnx__OperatorSetIdProto *opsets[1];
    void **allocs;
    size_t n_allocs, cap_allocs;
} tb;

static inline void *tb_alloc(tb *b, size_t size)
{
    if (b->n_allocs == b->cap_allocs) {
        b->cap_allocs = b->cap_allocs ? 2 * b->cap_allocs : 64;
        b->allocs = realloc(b->allocs, b->cap_allocs * sizeof *b->allocs);
        if (!b->allocs)
            abort();
    }
    void *p = calloc(1, size ? size : 1);
    if (!p)
        abort();
    b->allocs[b->n_allocs++] = p;
    return p;
}

static inline char *tb_str(tb *b, const char *s)
{
    char *p = tb_alloc(b, strlen(s) + 1);
    memcpy(p, s, strlen(s) + 1);
    return p;
}

/* Appends ptr to a growable array of pointers (*arr, *n). */
#define TB_PUSH(b, arr, n, ptr)                                                   \
    do {                                                                          \
        void *tb_old_ = (void *)(arr);                                            \
        void **tb_new_ = tb_alloc((b), ((n) + 1) * sizeof(void *));               \
        if ((n))                                                                  \
            memcpy(tb_new_, tb_old_, (n) * sizeof(void *));                       \
        (arr) = (void *)tb_new_;                                                  \
        (arr)[(n)++] = (ptr);                                                     \
    } while (0)

static inline void tb_init(tb *b, int64_t opset)
{
    memset(b, 0, sizeof *b);
    Onnx__ModelProto m = ONNX__MODEL_PROTO__INIT;
    Onnx__GraphProto g = ONNX__GRAPH_PROTO__INIT;
    Onnx__OperatorSetIdProto o = ONNX__OPERATOR_SET_ID_PROTO__INIT;
    b->model = m;
    b->graph = g;
    b->opset = o;
    b->opset.domain = "";
    b->opset.has_version = 1;
    b->opset.version = opset;
    b->opsets[0] = &b->opset;
    b->model.has_ir_version = 1;
    b->model.ir_version = 8;
    b->model.producer_name = "occ-test";
    b->model.n_opset_import = 1;
    b->model.opset_import = b->opsets;
    b->model.graph = &b->graph;
    b->graph.name = "test_graph";
}

static inline void tb_free(tb *b)
{
    for (size_t k = 0; k < b->n_allocs; k++)
        free(b->allocs[k]);
    free(b->allocs);
    memset(b, 0, sizeof *b);
}

/* dims < 0 are symbolic ("N"). */
static inline Onnx__ValueInfoProto *tb_value_info(tb *b, const char *name, int ndim, const int64_t *dims)
{
    Onnx__ValueInfoProto *vi = tb_alloc(b, sizeof *vi);
    Onnx__ValueInfoProto v0 = ONNX__VALUE_INFO_PROTO__INIT;
    *vi = v0;
    vi->name = tb_str(b, name);
    Onnx__TypeProto *tp = tb_alloc(b, sizeof *tp);
    Onnx__TypeProto t0 = ONNX__TYPE_PROTO__INIT;
    *tp = t0;
    Onnx__TypeProto__Tensor *tt = tb_alloc(b, sizeof *tt);
    Onnx__TypeProto__Tensor tt0 = ONNX__TYPE_PROTO__TENSOR__INIT;
    *tt = tt0;
    tt->has_elem_type = 1;
    tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    if (ndim >= 0) {
        Onnx__TensorShapeProto *sh = tb_alloc(b, sizeof *sh);
        Onnx__TensorShapeProto s0 = ONNX__TENSOR_SHAPE_PROTO__INIT;
        *sh = s0;
        for (int k = 0; k < ndim; k++) {
            Onnx__TensorShapeProto__Dimension *d = tb_alloc(b, sizeof *d);
            Onnx__TensorShapeProto__Dimension d0 = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT;
            *d = d0;
            if (dims[k] >= 0) {
                d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
                d->dim_value = dims[k];
            } else {
                d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
                d->dim_param = tb_str(b, "N");
            }
            TB_PUSH(b, sh->dim, sh->n_dim, d);
        }
        tt->shape = sh;
    }
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    vi->type = tp;
    return vi;
}

static inline void tb_input(tb *b, const char *name, int ndim, const int64_t *dims)
{
    Onnx__ValueInfoProto *vi = tb_value_info(b, name, ndim, dims);
    TB_PUSH(b, b->graph.input, b->graph.n_input, vi);
}

static inline void tb_output(tb *b, const char *name)
{
    Onnx__ValueInfoProto *vi = tb_value_info(b, name, -1, NULL);
    vi->type->tensor_type->shape = NULL;
    TB_PUSH(b, b->graph.output, b->graph.n_output, vi);
}

static inline Onnx__TensorProto *tb_tensor(tb *b, const char *name, int32_t dtype, int ndim,
                                    const int64_t *dims, const void *data, size_t data_size)
{
    Onnx__TensorProto *t = tb_alloc(b, sizeof *t);
    Onnx__TensorProto t0 = ONNX__TENSOR_PROTO__INIT;
    *t = t0;
    t->name = tb_str(b, name);
    t->has_data_type = 1;
    t->data_type = dtype;
    t->n_dims = (size_t)ndim;
    t->dims = tb_alloc(b, (ndim ? ndim : 1) * sizeof(int64_t));
    if (ndim)
        memcpy(t->dims, dims, (size_t)ndim * sizeof(int64_t));
    if (data_size) {
        t->has_raw_data = 1;
        t->raw_data.len = data_size;
        t->raw_data.data = tb_alloc(b, data_size);
        memcpy(t->raw_data.data, data, data_size);
    }
    return t;
}

static inline int64_t tb_count(int ndim, const int64_t *dims)
{
    int64_t n = 1;
    for (int k = 0; k < ndim; k++)
        n *= dims[k];
    return n;
}

static inline Onnx__TensorProto *tb_init_f(tb *b, const char *name, int ndim, const int64_t *dims,
                                    const float *data)
{
    Onnx__TensorProto *t = tb_tensor(b, name, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, ndim, dims, data,
                                     (size_t)tb_count(ndim, dims) * 4);
    TB_PUSH(b, b->graph.initializer, b->graph.n_initializer, t);
    return t;
}

static inline Onnx__TensorProto *tb_init_i64(tb *b, const char *name, int ndim, const int64_t *dims,
                                      const int64_t *data)
{
    Onnx__TensorProto *t = tb_tensor(b, name, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, ndim, dims, data,
                                     (size_t)tb_count(ndim, dims) * 8);
    TB_PUSH(b, b->graph.initializer, b->graph.n_initializer, t);
    return t;
}

/* ins/outs: NULL-terminated lists of names ("" = absent optional input). */
static inline Onnx__NodeProto *tb_node(tb *b, const char *op, const char *name, const char *const *ins,
                                const char *const *outs)
{
    Onnx__NodeProto *n = tb_alloc(b, sizeof *n);
    Onnx__NodeProto n0 = ONNX__NODE_PROTO__INIT;
    *n = n0;
    n->op_type = tb_str(b, op);
    n->name = tb_str(b, name);
    for (int k = 0; ins && ins[k]; k++) {
        char *s = tb_str(b, ins[k]);
        TB_PUSH(b, n->input, n->n_input, s);
    }
    for (int k = 0; outs && outs[k]; k++) {
        char *s = tb_str(b, outs[k]);
        TB_PUSH(b, n->output, n->n_output, s);
    }
    TB_PUSH(b, b->graph.node, b->graph.n_node, n);
    return n;
}

static inline Onnx__AttributeProto *tb_attr(tb *b, Onnx__NodeProto *n, const char *name,
                                     Onnx__AttributeProto__AttributeType type)
{
    Onnx__AttributeProto *a = tb_alloc(b, sizeof *a);
    Onnx__AttributeProto a0 = ONNX__ATTRIBUTE_PROTO__INIT;
    *a = a0;
    a->name = tb_str(b, name);
    a->has_type = 1;
    a->type = type;
    TB_PUSH(b, n->attribute, n->n_attribute, a);
    return a;
}

static inline void tb_attr_i(tb *b, Onnx__NodeProto *n, const char *name, int64_t v)
{
    Onnx__AttributeProto *a = tb_attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    a->has_i = 1;
    a->i = v;
}

static inline void tb_attr_f(tb *b, Onnx__NodeProto *n, const char *name, float v)
{
    Onnx__AttributeProto *a = tb_attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    a->has_f = 1;
    a->f = v;
}

static inline void tb_attr_ints(tb *b, Onnx__NodeProto *n, const char *name, size_t cnt, const int64_t *v)
{
    Onnx__AttributeProto *a = tb_attr(b, n, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    a->n_ints = cnt;
    a->ints = tb_alloc(b, (cnt ? cnt : 1) * sizeof(int64_t));
    memcpy(a->ints, v, cnt * sizeof(int64_t));
}

/* A Constant node producing an int64 tensor (ndim 0: a scalar). */
static inline void tb_const_i64_nd(tb *b, const char *out, int ndim, const int64_t *dims, const int64_t *v)
{
    const char *outs[] = {out, NULL};
    Onnx__NodeProto *n = tb_node(b, "Constant", out, NULL, outs);
    Onnx__AttributeProto *a = tb_attr(b, n, "value", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR);
    a->t = tb_tensor(b, "", ONNX__TENSOR_PROTO__DATA_TYPE__INT64, ndim, dims, v,
                     (size_t)tb_count(ndim, dims) * 8);
}

/* A Constant node producing an int64 1-D tensor. */
static inline void tb_const_i64(tb *b, const char *out, size_t cnt, const int64_t *v)
{
    int64_t d[1] = {(int64_t)cnt};
    tb_const_i64_nd(b, out, 1, d, v);
}

/* Serializes the model; caller frees *buf. */
static inline void tb_pack(tb *b, uint8_t **buf, size_t *size)
{
    *size = onnx__model_proto__get_packed_size(&b->model);
    *buf = malloc(*size ? *size : 1);
    if (!*buf)
        abort();
    onnx__model_proto__pack(&b->model, *buf);
}

#endif
