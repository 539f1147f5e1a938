/* Internal contract between the operator files (the .c files of src/ops), the registry and
 * the executor (src/engine). Not a public header.
 *
 * Each operator kind provides a vtable:
 *   infer    - validate attributes and input shapes, write output shapes
 *              (the common checks - indices, arity, dims - are done by the
 *              registry before infer is called);
 *   flops    - operation count for `occ inspect`;
 *   layout   - optional: may this node consume its runtime inputs in the
 *              (possibly blocked) oneDNN layouts they were produced in?
 *              When absent or 0, the executor hands it plain row-major data;
 *   prepare  - build kernel state from verified weights (called once at
 *              engine create); ops with a layout hook also report the layout
 *              of their output;
 *   run      - execute one inference;
 *   destroy  - free the state.
 *
 * Types: each tensor has a dtype (occ/model.h). The vtable declares what each
 * input accepts (in_types, masks of OCC_DTM bits; none declared = float32
 * only, so a float kernel never reads integer bytes); the registry refuses
 * other types before infer runs. Before infer, the registry gives every
 * output the type of the op's first present input (float32 when it has
 * none): right for float ops and for data movement; ops whose output type
 * differs (Cast, comparisons, ArgMax, Shape) set it with occ_ops_set_dtype.
 * Buffers are untyped pointers (in, out, w): the kernel reads them as the
 * declared type (`const float *a = x->in[0];`).
 */
#ifndef OCC_OPS_INTERNAL_H
#define OCC_OPS_INTERNAL_H

#include <dnnl.h>
#include <stdint.h>

#include "occ/half.h" /* occ_half_to_float, occ_float_to_half */
#include "occ/model.h"
#include "ops/ops.h"

/* A fused element-wise epilogue (Conv only, set by the executor). */
enum { OCC_POST_RELU = 1, OCC_POST_CLIP, OCC_POST_SUM };
typedef struct occ_post {
    int kind;
    float a, b; /* RELU: a = negative slope; CLIP: [a, b] */
} occ_post;
#define OCC_MAX_POST 4

typedef struct occ_op_prep {
    const occ_model *m;
    const occ_node *n;
    /* n->n_inputs entries: verified plain data of weight inputs, NULL for
     * runtime inputs and absent ones. Valid during prepare; valid during run
     * too unless the vtable has OCC_OPF_COPIES_WEIGHTS. Each holds its
     * tensor's dtype. */
    const void *const *w;
    dnnl_engine_t eng;
    /* n->n_inputs entries: layout of each runtime input, NULL = plain. Only
     * non-NULL for ops whose layout hook accepted them. */
    const dnnl_memory_desc_t *const *in_md;
    /* Fused post-ops, in order (Conv only). */
    int n_post;
    occ_post post[OCC_MAX_POST];
    /* Conv: do not use Winograd (its weights are 4x larger: the engine may
     * turn it off for streamed layers). */
    int no_winograd;
    /* Out: layout of output 0 when not plain (ops with a layout hook). */
    int out_blocked;
    dnnl_memory_desc_t out_md;
} occ_op_prep;

typedef struct occ_op_exec {
    const void *const *in;  /* n_inputs: runtime or weight data (NULL if absent), each of its
                               tensor's dtype */
    void *const *out;       /* n_outputs */
    dnnl_stream_t stream;
} occ_op_exec;

#define OCC_OPF_COPIES_WEIGHTS 1u /* run never reads prep.w (repacked at prepare) */
/* Zero-size tensors: the op's infer handles inputs with a 0 dim and may give
 * outputs with one. Without the flag the registry refuses both, so a kernel
 * never sees an empty tensor it was not written for. A node whose outputs are
 * all empty never runs its kernel at all (occ_op_node_vtable); an op with the
 * flag whose node has a non-empty output must run correctly with the empty
 * ones (Split's zero-size parts). */
#define OCC_OPF_EMPTY 2u

/* Type masks for occ_op_vtable.in_types. */
#define OCC_DTM(dt) (1u << (dt))
#define OCC_DTM_FLOAT OCC_DTM(OCC_DTYPE_FLOAT)
#define OCC_DTM_INDEX (OCC_DTM(OCC_DTYPE_INT32) | OCC_DTM(OCC_DTYPE_INT64))
#define OCC_DTM_INT                                                                        \
    (OCC_DTM_INDEX | OCC_DTM(OCC_DTYPE_INT8) | OCC_DTM(OCC_DTYPE_UINT8) |                  \
     OCC_DTM(OCC_DTYPE_INT16) | OCC_DTM(OCC_DTYPE_UINT16) | OCC_DTM(OCC_DTYPE_UINT32) |    \
     OCC_DTM(OCC_DTYPE_UINT64))
#define OCC_DTM_F64 OCC_DTM(OCC_DTYPE_DOUBLE)
/* Numbers: float32, float64 and every integer type. A kernel over NUM reads
 * anything but float32 through the element helpers below (occ_ops_load_f64,
 * occ_ops_load_i64, occ_ops_load_key), so uint64 and float64 keep their
 * meaning. */
#define OCC_DTM_NUM (OCC_DTM_FLOAT | OCC_DTM_F64 | OCC_DTM_INT)
#define OCC_DTM_BOOL OCC_DTM(OCC_DTYPE_BOOL)
#define OCC_DTM_F16 OCC_DTM(OCC_DTYPE_FLOAT16) /* data movement, Cast, Max/Min/Mod */
#define OCC_DTM_BF16 OCC_DTM(OCC_DTYPE_BFLOAT16) /* data movement and Cast only */
#define OCC_DTM_ALL (OCC_DTM_NUM | OCC_DTM_BOOL | OCC_DTM_F16 | OCC_DTM_BF16)
#define OCC_OP_MAX_TYPED 8

typedef struct occ_op_vtable {
    const char *op;
    uint32_t min_in, max_in, n_out;
    uint32_t min_out; /* optional trailing outputs: min_out..n_out (0 = exactly n_out) */
    uint32_t flags;
    /* Accepted dtypes of input i: in_types[i] (inputs past n_in_types take
     * the last entry); n_in_types = 0: float32 only. */
    uint32_t n_in_types;
    uint32_t in_types[OCC_OP_MAX_TYPED];
    occ_status (*infer)(occ_model *m, const occ_node *n, occ_error *e);
    uint64_t (*flops)(const occ_model *m, const occ_node *n);
    int (*layout)(const occ_model *m, const occ_node *n, const dnnl_memory_desc_t *const *in_md);
    occ_status (*prepare)(occ_op_prep *p, void **state, occ_error *e);
    occ_status (*run)(void *state, const occ_op_exec *x, occ_error *e);
    void (*destroy)(void *state);
} occ_op_vtable;

const occ_op_vtable *occ_op_find(const char *op);
/* The vtable the executor runs for node n (shapes inferred): n's operator,
 * or, when every output of n is empty, a kernel that does nothing (nothing
 * to write; inputs never read, so an empty one is never indexed). */
const occ_op_vtable *occ_op_node_vtable(const occ_model *m, const occ_node *n);

/* ---- vtables, one per operator (defined in the op files) ---- */
extern const occ_op_vtable occ_op_conv, occ_op_gemm, occ_op_matmul, occ_op_relu,
    occ_op_leakyrelu, occ_op_clip, occ_op_sigmoid, occ_op_tanh, occ_op_hardsigmoid,
    occ_op_hardswish, occ_op_add, occ_op_sub, occ_op_mul, occ_op_div, occ_op_maxpool,
    occ_op_averagepool, occ_op_globalaveragepool, occ_op_lrn, occ_op_concat, occ_op_flatten,
    occ_op_reshape, occ_op_transpose, occ_op_squeeze, occ_op_unsqueeze, occ_op_softmax,
    occ_op_pad, occ_op_resize, occ_op_upsample, occ_op_reducemean, occ_op_batchnorm,
    occ_op_cast, occ_op_gather, occ_op_where, occ_op_equal, occ_op_less,
    occ_op_greater, occ_op_lessorequal, occ_op_greaterorequal, occ_op_not, occ_op_and, occ_op_or,
    occ_op_xor, occ_op_slice, occ_op_expand, occ_op_tile, occ_op_split, occ_op_argmax,
    occ_op_argmin, occ_op_topk, occ_op_mod, occ_op_gatherelements, occ_op_gathernd,
    occ_op_scatternd;
/* unary.c: element-wise functions added for ONNX conformance */
extern const occ_op_vtable occ_op_elu, occ_op_selu, occ_op_celu, occ_op_softplus, occ_op_softsign,
    occ_op_thresholdedrelu, occ_op_mish, occ_op_gelu, occ_op_shrink, occ_op_sqrt, occ_op_exp,
    occ_op_log, occ_op_erf, occ_op_reciprocal, occ_op_neg, occ_op_abs, occ_op_floor, occ_op_ceil,
    occ_op_round, occ_op_sign, occ_op_sin, occ_op_cos, occ_op_tan, occ_op_asin, occ_op_acos,
    occ_op_atan, occ_op_sinh, occ_op_cosh, occ_op_asinh, occ_op_acosh, occ_op_atanh;
/* binary.c */
extern const occ_op_vtable occ_op_pow, occ_op_prelu, occ_op_max, occ_op_min, occ_op_sum,
    occ_op_mean;
/* reduce.c */
extern const occ_op_vtable occ_op_reducesum, occ_op_reducemax, occ_op_reducemin, occ_op_reduceprod,
    occ_op_reducel1, occ_op_reducel2, occ_op_reducelogsum, occ_op_reducelogsumexp,
    occ_op_reducesumsquare;
/* softmax.c */
extern const occ_op_vtable occ_op_logsoftmax, occ_op_hardmax;
/* trilu.c, classify.c (IsInf, IsNaN), eyelike.c, onehot.c, scatter_elements.c, bitshift.c, det.c,
 * reverse_sequence.c, quantize.c (and DynamicQuantizeLinear), matmul_integer.c (MatMulInteger,
 * QLinearMatMul), window.c (Hann/Hamming/BlackmanWindow),
 * conv_integer.c (ConvInteger, QLinearConv), cumsum.c,
 * grid_sample.c */
extern const occ_op_vtable occ_op_trilu, occ_op_isinf, occ_op_isnan, occ_op_eyelike, occ_op_onehot,
    occ_op_scatterelements, occ_op_scatter, occ_op_bitshift,
    occ_op_det, occ_op_reversesequence, occ_op_dynamicquantizelinear, occ_op_matmulinteger,
    occ_op_qlinearmatmul, occ_op_hannwindow, occ_op_hammingwindow, occ_op_blackmanwindow,
    occ_op_convinteger, occ_op_qlinearconv, occ_op_cumsum,
    occ_op_gridsample,
    occ_op_quantizelinear, occ_op_dequantizelinear;
/* einsum.c */
extern const occ_op_vtable occ_op_einsum;
/* A DFT's table of cos and sin of 2 pi k / n, k < n, in double: dft.c makes
 * it for DFT and STFT (0 or -1 when out of memory; free it either way). */
typedef struct occ_twiddles {
    double *cs, *sn;
} occ_twiddles;
int occ_ops_twiddles(occ_twiddles *t, int64_t n);
void occ_ops_twiddles_free(occ_twiddles *t);
/* dft.c, stft.c, melweight.c (MelWeightMatrix), maxunpool.c, roialign.c */
extern const occ_op_vtable occ_op_dft, occ_op_stft, occ_op_melweightmatrix, occ_op_maxunpool,
    occ_op_roialign;
/* shape.c */
extern const occ_op_vtable occ_op_identity;
/* rnn.c */
extern const occ_op_vtable occ_op_rnn, occ_op_gru, occ_op_lstm;
/* depthspace.c */
extern const occ_op_vtable occ_op_depthtospace, occ_op_spacetodepth;
/* deconv.c */
extern const occ_op_vtable occ_op_convtranspose;
/* pool.c */
extern const occ_op_vtable occ_op_lppool, occ_op_globalmaxpool;
/* norm.c */
extern const occ_op_vtable occ_op_layernorm, occ_op_instancenorm, occ_op_lpnorm, occ_op_mvn,
    occ_op_groupnorm;

/* ---- partitioned Conv and Gemm (for the engine's weight streaming) ----
 * A Conv "part" computes output channels [o0, o1) (group 1, batch 1, o0 a
 * multiple of 16 when the output is blocked) with its weights, bias included,
 * in a caller-owned blob of prepared (reordered) bytes, and a caller-owned
 * scratchpad (the working buffer). o1 = 0 means the whole layer. */
typedef struct occ_conv_info {
    uint64_t blob_size;    /* prepared weights + bias */
    uint64_t scratch_size; /* working buffer: the converted input (reorders_input), then
                            * the oneDNN scratchpad */
    uint64_t dst_offset;   /* bytes into the output where this part writes */
    int reorders_input;    /* converts its input first (into the working buffer) */
    int64_t o0, o1;
    const char *impl;      /* oneDNN implementation name (valid while the state lives) */
} occ_conv_info;
occ_status occ_conv_part_prepare(occ_op_prep *p, int64_t o0, int64_t o1, void **state,
                                 occ_error *e) OCC_MUST_CHECK;
void occ_conv_part_info(const void *state, occ_conv_info *info);
/* nChw16c where oneDNN runs AVX-512 kernels, nChw8c elsewhere. */
dnnl_format_tag_t occ_conv_canonical_tag(void);
/* w_rows: plain OIHW rows o0..o1; bias_rows: bias[o0..o1) or NULL. */
occ_status occ_conv_part_pack(void *state, dnnl_engine_t eng, const float *w_rows,
                              const float *bias_rows, void *blob, occ_error *e) OCC_MUST_CHECK;
occ_status occ_conv_part_run(void *state, const float *src, float *dst, const void *blob,
                             void *scratch, dnnl_stream_t stream, occ_error *e) OCC_MUST_CHECK;
void occ_conv_part_destroy(void *state);

/* ---- strips: a layer over a band of rows (the engine's strip chains,
 * src/engine/strips.c). h_in input rows with pt/pb rows of the layer's own
 * padding above/below them give h_out output rows; src and dst in the
 * given format tags (nchw, nhwc or the blocked nChw8c/nChw16c). A Conv
 * band uses a whole-layer part's weight layout (its blob) and is run by
 * occ_conv_part_run, destroyed by occ_conv_part_destroy. The scratchpad
 * (occ_*_strip_scratch bytes) is the caller's. */
typedef struct occ_strip_geom {
    int64_t h_in, pt, pb, h_out;
    dnnl_format_tag_t src_tag, dst_tag;
} occ_strip_geom;
occ_status occ_conv_strip_prepare(occ_op_prep *p, const void *part, const occ_strip_geom *g,
                                  void **state, occ_error *e) OCC_MUST_CHECK;
uint64_t occ_conv_strip_scratch(const void *state);
occ_status occ_pool_strip_prepare(occ_op_prep *p, const occ_strip_geom *g, void **state,
                                  occ_error *e) OCC_MUST_CHECK;
uint64_t occ_pool_strip_scratch(const void *state);
occ_status occ_pool_strip_run(void *state, const void *src, void *dst, void *scratch,
                              dnnl_stream_t stream, occ_error *e) OCC_MUST_CHECK;
void occ_pool_strip_destroy(void *state);

/* Gemm state from the vtable's prepare: columns [j0, j1) of Y from rows
 * j0..j1 of B (transB = 1 only: occ_gemm_splittable) and C. */
int occ_gemm_splittable(const void *state, int64_t *n_cols, int64_t *k);
occ_status occ_gemm_run_cols(const void *state, const float *a, const float *b_rows,
                             const float *c, int64_t j0, int64_t j1, float *y,
                             occ_error *e) OCC_MUST_CHECK;
/* nimg inputs at once (A blocks and y blocks back to back), when
 * occ_gemm_rows_batchable (transA = 0). */
/* A prepared Gemm's parameters (the engine's fused streamed FC computes
 * alpha * A * B' per piece itself and adds beta * C once the piece's
 * segment has been authenticated). cc: C's columns as broadcast, 1 or n. */
typedef struct occ_gemm_desc {
    int64_t m, n, k;
    int ta, tb;
    float alpha, beta;
    int has_c;
    int64_t cc;
} occ_gemm_desc;
void occ_gemm_describe(const void *state, occ_gemm_desc *d);
int occ_gemm_rows_batchable(const void *state);
occ_status occ_gemm_run_cols_n(const void *state, const float *a, const float *b_rows,
                               const float *c, int64_t j0, int64_t j1, float *y, int64_t nimg,
                               occ_error *e) OCC_MUST_CHECK;

/* MatMul with a 2-D B [K, N] that A's rows share (no batch on B): the rows
 * of A (all its leading dims flattened) times rows k0..k1 of B, added into Y
 * (or written, for the first part k0 = 0) - B split into contiguous row
 * pieces that stream (occ_matmul_splittable gives K). A B the packer stored
 * as panels of 16 columns (occ_packB, src/pack/fuse.c) has one "row" per
 * panel instead: rows k0..k1 are panels, which write output columns
 * [16 k0, min(16 k1, N)) whole (bias included), in any order. */
int occ_matmul_splittable(const void *state, int64_t *k);
occ_status occ_matmul_run_rows(const void *state, const float *a, const float *b_rows,
                               int64_t k0, int64_t k1, float *y, occ_error *e) OCC_MUST_CHECK;

/* Gather along axis 0 of a weight table with run-time indices, a piece of
 * rows [r0, r1) at a time, obliviously: every index is checked first
 * (occ_gather_check); then occ_gather_select_rows touches every page of the
 * piece in a fixed order and, for every index, blends the row it names (or
 * row r0's when it names none of the piece) into the output with a
 * branch-free mask. docs/security.md, "Embedding lookups". */
int occ_gather_rows_splittable(const void *state, int64_t *rows, int64_t *row_bytes);
occ_status occ_gather_check(const void *state, const void *idx, occ_error *e) OCC_MUST_CHECK;
void occ_gather_select_rows(const void *state, const void *idx, const void *piece, int64_t r0,
                            int64_t r1, void *out);

/* ---- helpers (src/ops/util.c) ---- */

const occ_attr *occ_ops_attr(const occ_node *n, const char *name);
/* Integer attribute or default; OCC_ERR_INVALID if present with another type. */
occ_status occ_ops_attr_int(const occ_node *n, const char *name, int64_t def, int64_t *out,
                            occ_error *e) OCC_MUST_CHECK;
occ_status occ_ops_attr_float(const occ_node *n, const char *name, float def, float *out,
                              occ_error *e) OCC_MUST_CHECK;
/* INTS attribute: *count = 0 and *vals = NULL when absent. Checks count <= max. */
occ_status occ_ops_attr_ints(const occ_node *n, const char *name, uint32_t max,
                             const int64_t **vals, uint32_t *count, occ_error *e) OCC_MUST_CHECK;
/* STRING attribute or default. */
occ_status occ_ops_attr_str(const occ_node *n, const char *name, const char *def,
                            const char **out, occ_error *e) OCC_MUST_CHECK;

/* Input/output tensors (indices were validated by the registry). NULL when the
 * optional input is absent. */
const occ_tensor *occ_ops_in(const occ_model *m, const occ_node *n, uint32_t i);
occ_tensor *occ_ops_out(occ_model *m, const occ_node *n, uint32_t i);
int occ_ops_is_weight(const occ_model *m, const occ_node *n, uint32_t i);

/* dtype of a tensor (0 read as float32). */
uint32_t occ_ops_dtype(const occ_tensor *t);
/* Sets the dtype of output i (and its size, if its shape is set). */
void occ_ops_set_dtype(occ_model *m, const occ_node *n, uint32_t i, uint32_t dtype);
/* Bytes per element of a tensor. */
size_t occ_ops_esize(const occ_tensor *t);
/* Writes v converted to dtype (saturating, NaN -> 0 for integers; bool = v != 0)
 * into out (occ_dtype_size(dtype) bytes). */
void occ_ops_scalar_from_double(uint32_t dtype, double v, void *out);
/* Element i of a buffer of dtype as int64 (float truncated, saturating;
 * uint64 as its bits, so add/sub/mul wrap right but comparisons need
 * occ_ops_load_key). */
int64_t occ_ops_load_i64(uint32_t dtype, const void *p, int64_t i);
/* An int64 whose signed order is the element's order (integer dtypes; uint64
 * with its top bit flipped). */
int64_t occ_ops_load_key(uint32_t dtype, const void *p, int64_t i);
/* Stores v as element i of an integer (or bool) buffer of dtype, wrapping
 * (two's complement truncation) for the narrower types. */
void occ_ops_store_i64(uint32_t dtype, void *p, int64_t i, int64_t v);
/* Element i of a numeric buffer (any float or integer type) as double. */
double occ_ops_load_f64(uint32_t dtype, const void *p, int64_t i);
/* Stores v as element i of a buffer of dtype (occ_ops_scalar_from_double). */
void occ_ops_store_f64(uint32_t dtype, void *p, int64_t i, double v);

/* Writes shape of output i (its size from the output's dtype); checks dims
 * >= 0 and no overflow (a 0 dim makes an empty tensor: only ops with
 * OCC_OPF_EMPTY may produce one, the registry checks). */
occ_status occ_ops_set_out(occ_model *m, const occ_node *n, uint32_t i, int ndim,
                           const int64_t *dims, occ_error *e) OCC_MUST_CHECK;
/* Elements, with overflow check of dims (0 on bad dims, and for an empty
 * tensor: tell them apart with occ_ops_shape_ok). */
int64_t occ_ops_count(int ndim, const int64_t *dims);
/* Nonzero when every dim is in [0, 2^40] and the nonzero ones multiply to at
 * most 2^40. */
int occ_ops_shape_ok(int ndim, const int64_t *dims);
/* Normalise axis in [-r, r-1] (or [-r, r] when extra=1) to [0, r). */
occ_status occ_ops_axis(int64_t axis, int rank, int extra, int *out, occ_error *e) OCC_MUST_CHECK;
/* Numpy broadcasting of two shapes. */
occ_status occ_ops_broadcast(int na, const int64_t *a, int nb, const int64_t *b, int *nout,
                             int64_t *out, occ_error *e) OCC_MUST_CHECK;

/* Sliding-window geometry of Conv and the pools (2 spatial dims). */
typedef struct occ_window {
    /* [0], [1]: H, W; [2]: depth of a 3-D window (trivial otherwise) */
    int64_t k[3], s[3], d[3], pb[3], pe[3], in[3], out[3];
} occ_window;
/* Reads strides, dilations, pads and auto_pad of n; kernel = k (2 values).
 * ceil_mode rounds the output size up (pools). */
occ_status occ_ops_window(const occ_node *n, const int64_t *in, const int64_t *k, int ceil_mode,
                          occ_window *w, occ_error *e) OCC_MUST_CHECK;
/* The same for nsp (1 to 3) spatial dims, attributes with nsp values: a 1-D
 * window becomes a 2-D one whose first dim is trivial (in = k = out = 1); a
 * 3-D one keeps H, W in [0], [1] and puts the depth in [2]. */
occ_status occ_ops_window_nd(const occ_node *n, int nsp, const int64_t *in, const int64_t *k,
                             int ceil_mode, occ_window *w, occ_error *e) OCC_MUST_CHECK;

/* out[i0..] = in[tab[0][i0], tab[1][i1], ...]; a -1 entry gives fill. Each
 * tab[d] has odims[d] entries in [-1, idims[d]). Used by Pad and Resize. */
void occ_ops_gather(int nd, const int64_t *odims, const int64_t *idims,
                    const int64_t *const *tab, float fill, const float *in, float *out);
/* The same for elements of esize bytes (1, 4 or 8); fill = esize bytes. */
void occ_ops_gather_bytes(int nd, const int64_t *odims, const int64_t *idims,
                          const int64_t *const *tab, const void *fill, size_t esize,
                          const void *in, void *out);

/* GatherElements / ScatterElements addressing (src/ops/elements.c): data and
 * indices of one rank; element k of the indices names the data element at
 * k's coordinates with the axis one replaced by the index. occ_elem_check
 * refuses any index outside [-axis_dim, axis_dim) before anything is read
 * or written; occ_elem_offset is then in range. */
typedef struct occ_elem_geom {
    int nd, ax;
    int64_t idims[OCC_MAX_DIMS], dstride[OCC_MAX_DIMS];
    int64_t count, axis_dim; /* count: index elements */
    uint32_t idx_dtype;
    size_t esize;            /* bytes of a data element */
} occ_elem_geom;
void occ_elem_geom_init(occ_elem_geom *g, const occ_tensor *d, const occ_tensor *ix, int ax);
occ_status occ_elem_check(const occ_elem_geom *g, const void *idx, occ_error *e) OCC_MUST_CHECK;
int64_t occ_elem_offset(const occ_elem_geom *g, const void *idx, int64_t k);

/* Broadcast iteration (numpy rules) of up to 3 inputs over an output shape:
 * occ_bcast_offsets gives, for output element k, the element offset in each
 * input (src/ops/bcast.c). */
typedef struct occ_bcast {
    int nd, nin;
    int64_t size[OCC_MAX_DIMS];
    int64_t st[3][OCC_MAX_DIMS]; /* element strides, 0 on broadcast dims */
    int64_t count;
} occ_bcast;
void occ_bcast_init(occ_bcast *b, int nin, const occ_tensor *const *in, const occ_tensor *y);
void occ_bcast_offsets(const occ_bcast *b, int64_t k, int64_t *off);
/* Broadcast output shape of n inputs (occ_ops_broadcast folded over them). */
occ_status occ_ops_broadcast_n(int nin, const occ_tensor *const *in, int *nout, int64_t *out,
                               occ_error *e) OCC_MUST_CHECK;

/* oneDNN helpers */
occ_status occ_dnnl_check(dnnl_status_t s, const char *what, occ_error *e) OCC_MUST_CHECK;
/* Plain row-major desc for a tensor's dims (ndim 0 -> {1}). */
occ_status occ_dnnl_plain_md(dnnl_memory_desc_t *md, int ndim, const int64_t *dims,
                             occ_error *e) OCC_MUST_CHECK;
/* Executes a primitive with n (arg, memory) pairs and waits. */
occ_status occ_dnnl_exec(dnnl_primitive_t p, dnnl_stream_t s, int n, const dnnl_exec_arg_t *args,
                         occ_error *e) OCC_MUST_CHECK;
/* Creates a memory with no buffer (handle set per run). */
occ_status occ_dnnl_mem(dnnl_memory_t *mem, const dnnl_memory_desc_t *md, dnnl_engine_t eng,
                        void *handle, occ_error *e) OCC_MUST_CHECK;
/* A primitive's own scratchpad. In library scratchpad mode oneDNN 2.6 (built
 * here without DNNL_ENABLE_CONCURRENT_EXEC) allocates it itself, outside the
 * enclave allocator's count, and whether two threads running one primitive
 * at once share it depends on the implementation - while its primitive
 * cache gives every context of a compiled model the same primitive. So every
 * primitive an op keeps is made in user mode (occ_dnnl_user_attr) and the
 * scratchpad it asks for, if any, belongs to the op state (per context). */
typedef struct occ_dnnl_scratch {
    dnnl_memory_t mem; /* NULL: the primitive needs none */
    void *buf;
} occ_dnnl_scratch;
occ_status occ_dnnl_user_attr(dnnl_primitive_attr_t *attr, occ_error *e) OCC_MUST_CHECK;
occ_status occ_dnnl_scratch_init(occ_dnnl_scratch *s, const_dnnl_primitive_desc_t pd,
                                 dnnl_engine_t eng, occ_error *e) OCC_MUST_CHECK;
/* Appends DNNL_ARG_SCRATCHPAD to args[n] when there is one; the new count. */
int occ_dnnl_scratch_arg(const occ_dnnl_scratch *s, dnnl_exec_arg_t *args, int n);
void occ_dnnl_scratch_free(occ_dnnl_scratch *s);
/* Reorders src (src_md) into dst (dst_md, caller's memory). */
occ_status occ_dnnl_reorder_into(dnnl_engine_t eng, const dnnl_memory_desc_t *src_md,
                                 const void *src, const dnnl_memory_desc_t *dst_md, void *dst,
                                 occ_error *e) OCC_MUST_CHECK;
/* Reorders plain src data into a newly allocated buffer of layout dst (64-byte
 * aligned, caller frees with occ_ops_free()). */
occ_status occ_dnnl_reorder_new(dnnl_engine_t eng, const dnnl_memory_desc_t *src_md,
                                const void *src, const dnnl_memory_desc_t *dst_md, void **out,
                                occ_error *e) OCC_MUST_CHECK;
int occ_dnnl_md_is_plain(const dnnl_memory_desc_t *md);

/* Op buffers (64-byte aligned, zeroed; NULL on failure), freed with
 * occ_ops_free. They come from the calling thread's allocator when one is set
 * (the engine sets its counting enclave allocator while it prepares and
 * destroys op state), else from aligned_alloc. */
typedef struct occ_ops_allocator {
    void *ctx;
    void *(*alloc)(void *ctx, size_t size); /* 64-byte aligned */
    void (*free)(void *ctx, void *p, size_t size);
} occ_ops_allocator;
void occ_ops_set_allocator(const occ_ops_allocator *a); /* thread-local; NULL = default */
void *occ_ops_alloc(uint64_t size);
void occ_ops_free(void *p);

#endif
