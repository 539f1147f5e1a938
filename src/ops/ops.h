/* Operator registry (trusted). One file per operator kind in src/ops/; this
 * header is the only way the packer and the engine reach them.
 *
 * Shape inference is written once, here, and used twice: by the packer to
 * compute every tensor's shape, and by the engine to re-check an untrusted
 * manifest (the shapes it declares must equal what inference gives). */
#ifndef OCC_OPS_H
#define OCC_OPS_H

#include <stdint.h>

#include "occ/model.h"

/* Nonzero when op (an ONNX op_type after packing) has a kernel. */
int occ_op_supported(const char *op);

/* Validates n's attributes and the shapes of its inputs (read from
 * m->tensors), and writes ndim, dims and size of every output tensor of n into
 * m->tensors. Unsupported attribute values give OCC_ERR_UNSUPPORTED, bad
 * shapes OCC_ERR_SHAPE, bad attributes OCC_ERR_INVALID; the message names the
 * problem (the caller prefixes node name and op). Pure: no allocation that
 * outlives the call, no I/O. */
occ_status occ_op_infer(occ_model *m, const occ_node *n, occ_error *e) OCC_MUST_CHECK;

/* Floating-point operations of one execution of n (multiply-add = 2), for
 * `occ inspect`. Shapes must already be inferred. */
uint64_t occ_op_flops(const occ_model *m, const occ_node *n);

#endif
