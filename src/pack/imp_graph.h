/* Private to src/pack: the graph being converted (onnx_import.c, bnfold.c). */
#ifndef OCC_PACK_IMP_GRAPH_H
#define OCC_PACK_IMP_GRAPH_H

#include "pack/imp.h"

typedef struct imp_map_entry {
    const char *key;
    int32_t val;
} imp_map_entry;

typedef struct imp_map {
    imp_map_entry *e;
    uint32_t cap, n;
} imp_map;

int32_t imp_map_get(const imp_map *m, const char *key);
occ_status imp_map_put(imp_map *m, const char *key, int32_t val, occ_error *e) OCC_MUST_CHECK;
void imp_map_free(imp_map *m);

/* One value (tensor) of the graph being converted; parallel to occ_tensor. */
typedef struct imp_val {
    imp_cval c;          /* constant data when is_const */
    int is_const;
    int is_input;        /* graph input (run time) */
    int bound;           /* graph input fixed by --bind (a constant) */
    int undefined;       /* e.g. Dropout's mask: must not be used */
    int32_t producer;    /* runtime node index or -1 */
} imp_val;

typedef struct imp_ctx {
    imp_arena *A;
    occ_error *e;
    int64_t opset;
    occ_tensor *t;       /* shapes, names, kinds (what occ_op_infer sees) */
    imp_val *v;
    uint32_t nv, vcap;
    imp_map names;       /* ONNX name (and aliases) -> value index */
    imp_map consumed;    /* names some node or a graph output reads */
    occ_node *nodes;     /* runtime nodes in execution order */
    uint8_t *dead;       /* per node */
    uint32_t nn, ncap;
    occ_pack_stats stats;
    int if_depth;        /* Ifs being inlined (bounded: branches may nest) */
} imp_ctx;

/* Adds a value; returns its index or a negative status. */
int32_t imp_val_new(imp_ctx *c, const char *name);
/* A name not yet used by any value or alias, derived from base. */
const char *imp_unique_name(imp_ctx *c, const char *base);

/* onnx_import.c: the converter's pieces shared with flow.c */
occ_status imp_convert_node(imp_ctx *c, const Onnx__NodeProto *n, const char *name, int32_t *ins)
    OCC_MUST_CHECK;
void imp_val_set_const(imp_ctx *c, int32_t idx, imp_cval *cv); /* takes cv's data */
occ_status imp_add_node(imp_ctx *c, occ_node **out) OCC_MUST_CHECK;
occ_status imp_node_prefix(occ_error *e, const Onnx__NodeProto *n, const char *name);

/* flow.c */
/* The graph input run-time value v derives from, or NULL. */
const char *imp_steering_input(const imp_ctx *c, int32_t v);
/* Converts the taken branch of an If whose condition is a pack-time constant
 * (else refuses, naming the input to --bind). */
occ_status imp_inline_if(imp_ctx *c, const Onnx__NodeProto *n, const char *name,
                         const int32_t *ins, size_t nin, size_t nout) OCC_MUST_CHECK;
/* Converts an Einsum of nin > 2 operands as a chain of two-operand Einsums. */
occ_status imp_split_einsum(imp_ctx *c, const Onnx__NodeProto *n, const char *name, size_t nin)
    OCC_MUST_CHECK;
/* Gives graph output nm (a constant, graph input or repeated tensor, *idx)
 * a tensor of its own: an Identity copy; *idx becomes it. */
occ_status imp_materialize_output(imp_ctx *c, int32_t *idx, const char *nm) OCC_MUST_CHECK;

/* Folds BatchNormalization nodes into the Conv that produces their input. */
occ_status imp_fold_batchnorm(imp_ctx *c, const int32_t *graph_outputs, uint32_t n_outputs)
    OCC_MUST_CHECK;

/* fuse.c: LayerNorm and GELU patterns into single nodes; MatMul with a
 * constant 2-D B gets it in panels of 16 columns (occ_packB). */
occ_status imp_fuse(imp_ctx *c, const int32_t *graph_outputs, uint32_t n_outputs) OCC_MUST_CHECK;

/* epifold.c (after imp_fuse): a Relu or Gelu that alone reads a panel
 * MatMul's output becomes the MatMul's occ_act (applied as it stores). */
occ_status imp_fold_epilogue(imp_ctx *c, const int32_t *graph_outputs, uint32_t n_outputs)
    OCC_MUST_CHECK;

#endif
