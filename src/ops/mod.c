/* Mod(A, B) with numpy broadcasting, one type: integers (8 to 64 bits,
 * signed or not) with fmod = 0 take the divisor's sign (Python's %), fmod = 1
 * the dividend's (C's %); float32, float64 (in double) and float16 (computed
 * in float32, rounded back) need fmod = 1 (ONNX). A zero integer divisor is an error. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"

static occ_status mod_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    const occ_tensor *in[2] = {occ_ops_in(m, n, 0), occ_ops_in(m, n, 1)};
    int64_t fm;
    occ_status st = occ_ops_attr_int(n, "fmod", 0, &fm, e);
    if (st)
        return st;
    if (occ_ops_dtype(in[0]) != occ_ops_dtype(in[1]))
        return occ_fail(e, OCC_ERR_INVALID, "operands are %s and %s (must be one type)",
                        occ_dtype_name(occ_ops_dtype(in[0])), occ_dtype_name(occ_ops_dtype(in[1])));
    uint32_t dt = occ_ops_dtype(in[0]);
    if (occ_dtype_is_float(dt) && fm != 1)
        return occ_fail(e, OCC_ERR_INVALID, "float operands need fmod = 1");
    int64_t d[OCC_MAX_DIMS];
    int nd;
    if ((st = occ_ops_broadcast_n(2, in, &nd, d, e)))
        return st;
    return occ_ops_set_out(m, n, 0, nd, d, e);
}

typedef struct mod_state {
    uint32_t dtype;
    int fmod;
    occ_bcast b;
} mod_state;

static occ_status mod_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    mod_state *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    const occ_tensor *in[2] = {occ_ops_in(p->m, p->n, 0), occ_ops_in(p->m, p->n, 1)};
    int64_t fm = 0;
    occ_status st = occ_ops_attr_int(p->n, "fmod", 0, &fm, e);
    if (st) {
        free(s);
        return st;
    }
    s->fmod = fm != 0;
    s->dtype = occ_ops_dtype(in[0]);
    occ_bcast_init(&s->b, 2, in, &p->m->tensors[p->n->outputs[0]]);
    *state = s;
    return OCC_OK;
}

static occ_status mod_run(void *state, const occ_op_exec *x, occ_error *e)
{
    const mod_state *s = state;
    for (int64_t k = 0; k < s->b.count; k++) {
        int64_t off[2];
        occ_bcast_offsets(&s->b, k, off);
        if (s->dtype == OCC_DTYPE_FLOAT) {
            ((float *)x->out[0])[k] = fmodf(((const float *)x->in[0])[off[0]],
                                            ((const float *)x->in[1])[off[1]]);
            continue;
        }
        if (s->dtype == OCC_DTYPE_FLOAT16) {
            const uint16_t *a = x->in[0], *b = x->in[1];
            ((uint16_t *)x->out[0])[k] = occ_float_to_half(
                fmodf(occ_half_to_float(a[off[0]]), occ_half_to_float(b[off[1]])));
            continue;
        }
        if (s->dtype == OCC_DTYPE_DOUBLE) {
            ((double *)x->out[0])[k] = fmod(((const double *)x->in[0])[off[0]],
                                           ((const double *)x->in[1])[off[1]]);
            continue;
        }
        if (s->dtype == OCC_DTYPE_UINT64) { /* beyond int64: both signs are + */
            uint64_t a = ((const uint64_t *)x->in[0])[off[0]], b = ((const uint64_t *)x->in[1])[off[1]];
            if (b == 0)
                return occ_fail(e, OCC_ERR_INVALID, "integer modulo by zero (element %lld)",
                                (long long)k);
            ((uint64_t *)x->out[0])[k] = a % b;
            continue;
        }
        int64_t a = occ_ops_load_i64(s->dtype, x->in[0], off[0]);
        int64_t b = occ_ops_load_i64(s->dtype, x->in[1], off[1]);
        if (b == 0)
            return occ_fail(e, OCC_ERR_INVALID, "integer modulo by zero (element %lld)",
                            (long long)k);
        int64_t r = b == -1 ? 0 : a % b; /* INT64_MIN % -1 would trap */
        if (!s->fmod && r != 0 && ((r < 0) != (b < 0)))
            r += b;
        occ_ops_store_i64(s->dtype, x->out[0], k, r);
    }
    return OCC_OK;
}

static void mod_destroy(void *s)
{
    free(s);
}

const occ_op_vtable occ_op_mod = {
    .op = "Mod",
    .min_in = 2,
    .max_in = 2,
    .n_out = 1,
    .n_in_types = 1,
    .in_types = {OCC_DTM_NUM | OCC_DTM_F16},
    .infer = mod_infer,
    .prepare = mod_prepare,
    .run = mod_run,
    .destroy = mod_destroy,
};
