/* Host-side ONNX import and `occ pack` (src/pack). Never linked into the
 * enclave.
 *
 * occ_import_onnx parses an untrusted ONNX ModelProto (protobuf-c over
 * Debian's onnx.proto), folds constant subgraphs, removes Identity/Dropout,
 * turns constant operands into attributes (see occ/model.h), folds
 * BatchNormalization into a preceding Conv, orders the nodes topologically and
 * infers every shape with occ_op_infer. The result is an occ_model whose
 * weight tensors still point at their float data (occ_import_weight), ready
 * for occ_import_layout (page-aligned data section) and occ_pack_write.
 *
 * occ_pack_onnx does all of that for files. Errors about one node read
 * "node '<name>' (<op>): <reason>". */
#ifndef OCC_PACKER_H
#define OCC_PACKER_H

#include <stddef.h>
#include <stdint.h>

#include "occ/model.h"
#include "occ/pack.h"
#include "occ/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Pins the shape of a graph input (needed when the ONNX file has symbolic
 * dims such as "batch_size"). */
typedef struct occ_input_shape {
    const char *name;
    int32_t ndim;
    int64_t dims[OCC_MAX_DIMS];
} occ_input_shape;

/* Fixes a graph input to a value at pack time (--bind NAME=FILE): raw
 * little-endian bytes of the input's declared type and shape. It becomes a
 * constant and folds. */
typedef struct occ_input_bind {
    const char *name;
    const void *data;
    uint64_t size;                     /* bytes */
} occ_input_bind;

typedef struct occ_pack_options {
    const char *name;                  /* model name; NULL: ONNX graph name */
    occ_preproc pre;                   /* pre.present = 0: none             */
    uint32_t n_labels;
    const char *const *labels;         /* copied                            */
    uint64_t chunk_size;               /* 0: OCC_PACK_DEFAULT_CHUNK_SIZE    */
    uint32_t n_input_shapes;
    const occ_input_shape *input_shapes;
    uint32_t n_binds;
    const occ_input_bind *binds;
    const uint8_t *encrypt_key;        /* 32 bytes: encrypt the weights (occ_pack_encrypt,
                                          occ_pack_onnx only); NULL = plain  */
    occ_progress_fn progress;          /* occ_pack_onnx only; may be NULL   */
    void *progress_ctx;
} occ_pack_options;

typedef struct occ_pack_stats {
    uint32_t onnx_nodes;     /* nodes in the ONNX graph                      */
    uint32_t nodes;          /* nodes in the pack                            */
    uint32_t folded;         /* ONNX nodes evaluated at pack time (incl. Constant) */
    uint32_t removed;        /* Identity / Dropout removed                   */
    uint32_t bn_folded;      /* BatchNormalization folded into Conv          */
    uint32_t dead;           /* nodes removed because nothing used them      */
    uint32_t n_tensors;
    uint32_t n_weights;      /* weight tensors                               */
    uint64_t weight_size;    /* bytes of weights (without page padding)      */
    uint64_t data_size;      /* bytes of the data section (after layout)     */
    uint32_t n_chunks;
    uint64_t file_size;      /* occ_pack_onnx only                           */
    uint8_t model_id[32];    /* occ_pack_onnx only                           */
} occ_pack_stats;

typedef struct occ_import occ_import;

/* Parses and converts an ONNX model held in memory (untrusted bytes). opts may
 * be NULL. On success *out is owned by the caller (occ_import_free). */
occ_status occ_import_onnx(const uint8_t *buf, size_t size, const occ_pack_options *opts,
                           occ_import **out, occ_error *e) OCC_MUST_CHECK;

/* The converted model (owned by im). Weight tensors have kind
 * OCC_TENSOR_WEIGHT; data_offset is meaningless until occ_import_layout. */
occ_model *occ_import_model(occ_import *im);

/* The data of weight tensor `tensor` (size bytes of its dtype), or NULL
 * when the tensor is not a weight. */
const void *occ_import_weight(const occ_import *im, uint32_t tensor);

const occ_pack_stats *occ_import_stats(const occ_import *im);

/* Calls occ_pack_layout(model, chunk_max) and returns in *data a newly
 * allocated data section (m->data_size bytes, caller frees with free()) with
 * every weight copied at its data_offset and zero padding. */
occ_status occ_import_layout(occ_import *im, uint64_t chunk_max, uint8_t **data,
                             occ_error *e) OCC_MUST_CHECK;

void occ_import_free(occ_import *im);

/* Reads onnx_path, converts it and writes the pack to out_path. stats may be
 * NULL. */
occ_status occ_pack_onnx(const char *onnx_path, const char *out_path,
                         const occ_pack_options *opts, occ_pack_stats *stats,
                         occ_error *e) OCC_MUST_CHECK;

/* Parses "name=d0,d1,..." (the --input-shape option) in place: on success the
 * '=' in s becomes a NUL and out->name points at s. */
occ_status occ_parse_input_shape(char *s, occ_input_shape *out, occ_error *e) OCC_MUST_CHECK;

#ifdef __cplusplus
}
#endif
#endif
