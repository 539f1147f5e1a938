/* Cast: element-wise conversion between every supported type (float32,
 * float64, float16, bfloat16, int8/16/32/64, uint8/16/32/64, bool; attribute
 * "to", an ONNX TensorProto code). Floats are read as double (exact); to
 * float16 and bfloat16 rounds to nearest even (overflow to infinity). Float to integer
 * saturates (NaN -> 0) so no input has undefined behaviour; integer to
 * narrower integer wraps (two's complement, as ONNX Runtime); anything to
 * bool is value != 0. */
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"

static occ_status cast_to(const occ_node *n, uint32_t *to, occ_error *e)
{
    int64_t v;
    occ_status st = occ_ops_attr_int(n, "to", -1, &v, e);
    if (st)
        return st;
    if (!occ_ops_attr(n, "to"))
        return occ_fail(e, OCC_ERR_INVALID, "missing attribute to");
    if (v < 0 || v > 64 || !occ_dtype_size((uint32_t)v))
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "to = %lld is not a supported type (float32, "
                        "float64, float16, bfloat16, int8..int64, uint8..uint64, bool)", (long long)v);
    *to = (uint32_t)v;
    return OCC_OK;
}

static occ_status cast_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    uint32_t to;
    occ_status st = cast_to(n, &to, e);
    if (st)
        return st;
    const occ_tensor *x = occ_ops_in(m, n, 0);
    occ_ops_set_dtype(m, n, 0, to);
    return occ_ops_set_out(m, n, 0, x->ndim, x->dims, e);
}

typedef struct cast_state {
    uint32_t from, to;
    int64_t count;
} cast_state;

static occ_status cast_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    cast_state *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    const occ_tensor *x = occ_ops_in(p->m, p->n, 0);
    occ_status st = cast_to(p->n, &s->to, e);
    if (st) {
        free(s);
        return st;
    }
    s->from = occ_ops_dtype(x);
    s->count = occ_ops_count(x->ndim, x->dims);
    *state = s;
    return OCC_OK;
}

static occ_status cast_run(void *state, const occ_op_exec *x, occ_error *e)
{
    const cast_state *s = state;
    size_t es = occ_dtype_size(s->to);
    if (s->from == s->to) {
        memcpy(x->out[0], x->in[0], (size_t)s->count * es);
        return OCC_OK;
    }
    uint8_t *out = x->out[0];
    if (occ_dtype_is_float(s->from)) {
        /* every float type is exact in double; to float16/bfloat16 rounded
         * once (occ_double_to_half / _bf16: no double rounding from float64) */
        for (int64_t k = 0; k < s->count; k++) {
            double f = occ_ops_load_f64(s->from, x->in[0], k);
            if (s->to == OCC_DTYPE_BOOL)
                out[k] = f != 0.0;
            else
                occ_ops_scalar_from_double(s->to, f, out + (size_t)k * es);
        }
    } else if (s->to == OCC_DTYPE_FLOAT) {
        /* integer to float32 in one rounding (not through double) */
        for (int64_t k = 0; k < s->count; k++) {
            int64_t v = occ_ops_load_i64(s->from, x->in[0], k);
            ((float *)x->out[0])[k] = s->from == OCC_DTYPE_UINT64 ? (float)(uint64_t)v : (float)v;
        }
    } else if (occ_dtype_is_float(s->to)) {
        for (int64_t k = 0; k < s->count; k++)
            occ_ops_scalar_from_double(s->to, occ_ops_load_f64(s->from, x->in[0], k),
                                       out + (size_t)k * es);
    } else {
        /* integer to integer: two's complement truncation (uint64 kept as its bits) */
        for (int64_t k = 0; k < s->count; k++)
            occ_ops_store_i64(s->to, x->out[0], k, occ_ops_load_i64(s->from, x->in[0], k));
    }
    return OCC_OK;
}

static void cast_destroy(void *s)
{
    free(s);
}

const occ_op_vtable occ_op_cast = {
    .op = "Cast",
    .min_in = 1,
    .max_in = 1,
    .n_out = 1,
    .n_in_types = 1,
    .in_types = {OCC_DTM_ALL},
    .infer = cast_infer,
    .prepare = cast_prepare,
    .run = cast_run,
    .destroy = cast_destroy,
};
