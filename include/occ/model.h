/* The model IR: what a .occ manifest describes, shared by the host-side packer
 * (src/pack) and the trusted engine (src/engine, src/ops).
 *
 * Conventions of the IR (the packer guarantees them; the engine re-checks them
 * because a manifest is untrusted input):
 *  - Every tensor has a dtype (occ_dtype: ONNX TensorProto codes) and its
 *    size is occ_dtype_size(dtype) * elements, little-endian, row-major.
 *    Integer constants that steer an operator's shapes (Reshape's shape,
 *    Pad's pads, Resize's scales/sizes, Clip's min/max, Squeeze/Unsqueeze
 *    axes, Slice's starts/ends, ...) are folded into attributes named after
 *    the ONNX input they replace ("shape", "pads", "value", "scales",
 *    "sizes", "min", "max", "axes", ...): the planner needs static shapes.
 *    Integer data that flows (Gather indices, masks) stays a typed tensor.
 *  - Softmax, LogSoftmax and Hardmax of opsets before 13 carry "coerce_2d" = 1
 *    and an explicit "axis" (they normalise the flattened trailing dims).
 *  - Tensors of kind OCC_TENSOR_WEIGHT hold constant data stored in the
 *    pack's data section at [data_offset, data_offset + size). The data of
 *    one node's weights is contiguous and starts on a page boundary; it is
 *    covered by one or more chunks (occ_chunk), each with its SHA-256.
 *  - Nodes are in a valid execution (topological) order.
 *  - Dropout and Identity are removed; BatchNormalization after a Conv is
 *    folded into it; constant subgraphs are folded.
 *  - layout: 0 (OCC_LAYOUT_PLAIN) means ONNX's row-major layout for the
 *    tensor's dims. Other values are reserved for kernel-specific layouts.
 */
#ifndef OCC_MODEL_H
#define OCC_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "occ/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define OCC_MAX_DIMS 8
#define OCC_MAX_NODE_IO 64      /* inputs or outputs of one node (Concat) */
#define OCC_PAGE_SIZE 4096u

typedef enum occ_tensor_kind {
    OCC_TENSOR_ACT = 1,    /* produced by a node (or a graph input) at run time */
    OCC_TENSOR_INPUT = 2,  /* a graph input, provided by the caller            */
    OCC_TENSOR_WEIGHT = 3, /* constant data in the pack                        */
} occ_tensor_kind;

#define OCC_LAYOUT_PLAIN 0u

/* Element types, with ONNX TensorProto.DataType codes (the manifest stores
 * the code). Bool is one byte, 0 or 1. */
typedef enum occ_dtype {
    OCC_DTYPE_FLOAT = 1,
    OCC_DTYPE_UINT8 = 2,
    OCC_DTYPE_INT8 = 3,
    OCC_DTYPE_UINT16 = 4,
    OCC_DTYPE_INT16 = 5,
    OCC_DTYPE_INT32 = 6,
    OCC_DTYPE_INT64 = 7,
    OCC_DTYPE_BOOL = 9,
    OCC_DTYPE_FLOAT16 = 10, /* IEEE half: moved, converted (Cast), Max/Min/Mod */
    OCC_DTYPE_DOUBLE = 11,  /* IEEE binary64: computed in double */
    OCC_DTYPE_UINT32 = 12,
    OCC_DTYPE_UINT64 = 13,
    OCC_DTYPE_BFLOAT16 = 16, /* the top half of a float32: moved and converted (Cast) */
} occ_dtype;

/* Bytes of one element; 0 for a code that is not an occ_dtype. */
size_t occ_dtype_size(uint32_t dtype);
/* "float32", "uint8", "int8", "uint16", "int16", "int32", "int64", "bool",
 * "float16", "float64", "uint32", "uint64", "bfloat16"; NULL when unknown. */
const char *occ_dtype_name(uint32_t dtype);
/* The dtype named name (as occ_dtype_name gives it); 0 when unknown. */
uint32_t occ_dtype_from_name(const char *name);
/* 1 for float32, float16, float64 and bfloat16; 0 otherwise. */
int occ_dtype_is_float(uint32_t dtype);
/* 1 for uint8, uint16, uint32, uint64 (and bool); 0 otherwise. */
int occ_dtype_is_unsigned(uint32_t dtype);

typedef struct occ_tensor {
    const char *name;
    uint32_t kind;               /* occ_tensor_kind */
    uint32_t layout;             /* OCC_LAYOUT_PLAIN unless stated */
    uint32_t dtype;              /* occ_dtype; 0 (a zeroed struct) = float32 in memory,
                                    the manifest always stores the code (occ_tensor_dtype) */
    int32_t ndim;                /* 0..OCC_MAX_DIMS; 0 = scalar */
    int64_t dims[OCC_MAX_DIMS];
    uint64_t data_offset;        /* weights only: offset in the data section */
    uint64_t size;               /* bytes = occ_dtype_size(dtype) * product(dims) */
} occ_tensor;

typedef enum occ_attr_type {
    OCC_ATTR_INT = 1,
    OCC_ATTR_FLOAT = 2,
    OCC_ATTR_INTS = 3,
    OCC_ATTR_FLOATS = 4,
    OCC_ATTR_STRING = 5,
} occ_attr_type;

typedef struct occ_attr {
    const char *name;
    uint32_t type;               /* occ_attr_type */
    uint32_t count;              /* elements of ints/floats; bytes of string */
    int64_t i;
    float f;
    const int64_t *ints;
    const float *floats;
    const char *s;               /* NUL-terminated */
} occ_attr;

typedef struct occ_node {
    const char *name;
    const char *op;              /* ONNX op_type, e.g. "Conv" */
    uint32_t n_inputs;
    uint32_t n_outputs;
    const int32_t *inputs;       /* tensor indices; -1 = absent optional input */
    const int32_t *outputs;      /* tensor indices */
    uint32_t n_attrs;
    const occ_attr *attrs;
} occ_node;

typedef struct occ_chunk {
    uint64_t offset;             /* in the data section; a node's first chunk is page-aligned */
    uint64_t size;               /* bytes */
    uint8_t sha256[32];          /* of the bytes as stored (the ciphertext when encrypted) */
    uint8_t tag[16];             /* encrypted packs: the chunk's AES-256-GCM tag */
} occ_chunk;

/* Optional preprocessing for images (occ run --image, the client). The model
 * input is (x * scale - mean[c]) / std[c] with x the 8-bit pixel value. */
typedef struct occ_preproc {
    int32_t present;
    int32_t height, width;
    int32_t channels;            /* 1 (gray) or 3 */
    char channel_order[4];       /* "RGB", "BGR" or "L" */
    float scale;                 /* e.g. 1/255 */
    float mean[4];
    float std[4];
} occ_preproc;

typedef struct occ_model {
    const char *name;
    uint32_t n_tensors;
    occ_tensor *tensors;
    uint32_t n_nodes;
    occ_node *nodes;
    uint32_t n_inputs;
    uint32_t n_outputs;
    const int32_t *inputs;       /* tensor indices */
    const int32_t *outputs;      /* tensor indices */
    occ_preproc pre;
    uint32_t n_labels;
    const char *const *labels;
    uint32_t n_chunks;
    occ_chunk *chunks;
    uint64_t data_size;          /* bytes of the data section */
    /* Weights encryption (occ/weights_crypt.h, docs/pack-format.md): 0 = plain
     * pack; else the scheme, the pack's random id and the key check. */
    uint32_t weights_crypt;
    uint8_t pack_id[16];
    uint8_t key_check[32];
    uint8_t model_id[32];        /* SHA-256 of the encoded manifest */
    void *owner;                 /* private: memory owned by the decoder */
} occ_model;

/* ---- manifest (src/engine/manifest.c; pure, no I/O) ---- */

/* Encodes m's graph, metadata and chunk table into a newly allocated buffer
 * (caller frees with free()). Used by the packer. */
occ_status occ_manifest_encode(const occ_model *m, uint8_t **out, size_t *out_size,
                               occ_error *e) OCC_MUST_CHECK;

/* Decodes an untrusted manifest. Every field is bounds-checked: indices in
 * range, dims positive and products without overflow, weights inside the data
 * section and inside chunks, names NUL-free. Sets model_id = SHA-256(buf).
 * On success *out is owned by the caller (occ_model_free). */
occ_status occ_manifest_decode(const uint8_t *buf, size_t size, occ_model **out,
                               occ_error *e) OCC_MUST_CHECK;

void occ_model_free(occ_model *m);

/* Helpers. */
const occ_attr *occ_node_attr(const occ_node *n, const char *name);
int64_t occ_tensor_count(const occ_tensor *t); /* elements; 1 for a scalar */
uint32_t occ_tensor_dtype(const occ_tensor *t);  /* t->dtype, 0 read as OCC_DTYPE_FLOAT */
void occ_hex(const uint8_t *bytes, size_t size, char *out /* 2*size+1 */);

#ifdef __cplusplus
}
#endif
#endif
