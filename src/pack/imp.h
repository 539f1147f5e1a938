/* Private to src/pack: the importer's working state. */
#ifndef OCC_PACK_IMP_H
#define OCC_PACK_IMP_H

#include <stddef.h>
#include <stdint.h>

#include "occ/model.h"
#include "occ/packer.h"
#include "onnx.pb-c.h"

/* ---- arena: many small allocations freed at once ---- */
typedef struct imp_block imp_block;
typedef struct imp_arena {
    imp_block *head;
} imp_arena;

void *imp_alloc(imp_arena *a, size_t size);          /* zeroed; NULL on OOM */
char *imp_strdup(imp_arena *a, const char *s);
void imp_arena_free(imp_arena *a);

/* ---- constant values ---- */
enum { CV_FLOAT = 1, CV_INT = 2 };

/* A constant (or a tensor whose only known property is its shape). Integer
 * ONNX types (int8..int64, uint8..uint64, bool) are held as int64; float and
 * double as float. */
typedef struct imp_cval {
    int type;            /* CV_FLOAT / CV_INT; 0 = shape only */
    uint32_t dt;         /* occ_dtype it has at run time (as a weight); 0 = the default
                            of type: float32 / int64 (imp_cval_dtype) */
    int32_t ndim;
    int64_t dims[OCC_MAX_DIMS];
    int64_t count;       /* elements */
    float *f;            /* CV_FLOAT */
    double *d;           /* CV_FLOAT of dtype float64 read from the model or --bind: the exact
                            values (f holds them narrowed, for folding); NULL once folded */
    int64_t *i;          /* CV_INT */
    int owned;           /* data is ours to free (else borrowed from the proto) */
} imp_cval;

void imp_cval_clear(imp_cval *c);

/* The occ_dtype of c (c->dt, else float32 for CV_FLOAT and int64 for CV_INT). */
uint32_t imp_cval_dtype(const imp_cval *c);
/* The occ_dtype of an ONNX TensorProto data type (the same code); 0 when
 * none (strings, complex, ...). */
uint32_t imp_onnx_dtype(int32_t onnx_type);
/* c's data as little-endian bytes of imp_cval_dtype(c) (count elements):
 * c's own arrays when they already are, else a copy in the arena. NULL on OOM. */
const void *imp_cval_bytes(imp_arena *a, const imp_cval *c);
/* Reads count elements of dtype from raw little-endian bytes into c (shape
 * set by the caller): for --bind. */
occ_status imp_cval_from_bytes(imp_cval *c, uint32_t dtype, const void *data, occ_error *e)
    OCC_MUST_CHECK;

/* Upper bound on the elements of one tensor we are willing to hold. */
#define IMP_MAX_ELEMS (1ll << 31)
/* Upper bound on the elements a folded node may produce beyond its inputs. */
#define IMP_FOLD_MIN_CAP (1ll << 22)

/* Element count of dims with overflow/limit checks; -1 when absurd. */
int64_t imp_count(int32_t ndim, const int64_t *dims);

/* Allocates c's data for c->count elements of c->type. */
occ_status imp_cval_alloc(imp_cval *c, occ_error *e) OCC_MUST_CHECK;

/* Parses an ONNX TensorProto into c (data borrowed when possible). */
occ_status imp_tensor_parse(const Onnx__TensorProto *t, imp_cval *c, occ_error *e) OCC_MUST_CHECK;

/* ---- ONNX attribute helpers ---- */
const Onnx__AttributeProto *imp_onnx_attr(const Onnx__NodeProto *n, const char *name);
int64_t imp_attr_int(const Onnx__NodeProto *n, const char *name, int64_t dflt);
float imp_attr_float(const Onnx__NodeProto *n, const char *name, float dflt);

/* ---- constant folding (fold.c) ---- */
enum { IMP_FOLD_DONE = 0, IMP_FOLD_NO = 1 };

/* Evaluates node n at pack time. in[k] is NULL for an absent input; for Shape
 * and Size in[0] may be shape-only (type 0). On success returns
 * IMP_FOLD_DONE with out[0..n_output) filled (owned data); IMP_FOLD_NO when
 * the op (or this use of it) cannot be folded; a negative occ_status on
 * error. */
int imp_fold(const Onnx__NodeProto *n, int64_t opset, const imp_cval *const *in, uint32_t n_in,
             imp_cval *out, uint32_t n_out, occ_error *e);

/* Is op one imp_fold knows (used to decide whether shape-only input helps). */
int imp_fold_known(const char *op);

#endif
