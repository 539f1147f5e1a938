/* Add, Sub, Mul, Div, Pow, PRelu with numpy broadcasting, and the variadic
 * Max, Min, Sum, Mean (any number of inputs, all broadcast together); any
 * operand may be a weight. Each broadcast pair is collapsed at prepare time
 * into at most OCC_MAX_DIMS (size, stride_a, stride_b) dimensions; the
 * innermost runs as a flat loop. A variadic op is a chain of such steps over
 * the output (y = x0; y = y op x1; ...). Equal-shaped operands in the same
 * (possibly blocked) layout run as one flat loop over the buffer (Add, Sub,
 * Mul only: Div's blocked zero padding would give 0/0). Add, Sub, Mul, Div,
 * Max and Min also take every integer type (8 to 64 bits, signed or not) with
 * ONNX integer semantics (two's complement wrap-around, Div truncating toward
 * zero; a zero divisor is an error, not a trap) and float64 (in double; Sum
 * and Mean too); Max and Min also float16 (exact). Pow's
 * exponent may be of another numeric type than its base (the output has the
 * base's): an integer base with an integer exponent multiplies exactly
 * (wrapping), otherwise it is computed in double and converted. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"
#include "ops/par.h"

enum { B_ADD, B_SUB, B_MUL, B_DIV, B_POW, B_PRELU, B_MAX, B_MIN, B_SUM, B_MEAN, B_COPY };

static int binary_kind(const char *op)
{
    static const char *const names[] = {"Add", "Sub", "Mul", "Div", "Pow",
                                        "PRelu", "Max", "Min", "Sum", "Mean"};
    for (int k = 0; k < (int)(sizeof names / sizeof names[0]); k++)
        if (strcmp(op, names[k]) == 0)
            return k;
    return B_DIV;
}

static int is_variadic(int kind)
{
    return kind >= B_MAX && kind <= B_MEAN;
}

static occ_status binary_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    int kind = binary_kind(n->op);
    const occ_tensor *a = occ_ops_in(m, n, 0);
    int64_t d[OCC_MAX_DIMS];
    int nd = a->ndim;
    memcpy(d, a->dims, sizeof d);
    if (!is_variadic(kind) && n->n_inputs != 2)
        return occ_fail(e, OCC_ERR_INVALID, "%s takes 2 inputs, not %u", n->op, n->n_inputs);
    for (uint32_t i = 1; i < n->n_inputs; i++) {
        const occ_tensor *b = occ_ops_in(m, n, i);
        if (!b)
            return occ_fail(e, OCC_ERR_INVALID, "input %u is absent", i);
        if (occ_ops_dtype(a) != occ_ops_dtype(b) && kind != B_POW)
            return occ_fail(e, OCC_ERR_INVALID, "operands are %s and %s (must be one type)",
                            occ_dtype_name(occ_ops_dtype(a)), occ_dtype_name(occ_ops_dtype(b)));
        int64_t t[OCC_MAX_DIMS];
        int nt;
        occ_status st = occ_ops_broadcast(nd, d, b->ndim, b->dims, &nt, t, e);
        if (st)
            return st;
        nd = nt;
        memcpy(d, t, sizeof d);
    }
    if (kind == B_PRELU && (nd != a->ndim || memcmp(d, a->dims, sizeof(int64_t) * (size_t)nd)))
        return occ_fail(e, OCC_ERR_SHAPE, "PRelu slope does not broadcast to X's shape");
    return occ_ops_set_out(m, n, 0, nd, d, e);
}

static int binary_layout(const occ_model *m, const occ_node *n, const dnnl_memory_desc_t *const *md)
{
    if (n->n_inputs != 2)
        return 0;
    const occ_tensor *a = occ_ops_in(m, n, 0), *b = occ_ops_in(m, n, 1);
    int kind = binary_kind(n->op);
    if ((kind != B_ADD && kind != B_SUB && kind != B_MUL) || !md[0] || !md[1])
        return 0;
    if (a->ndim != b->ndim || memcmp(a->dims, b->dims, sizeof(int64_t) * (size_t)a->ndim))
        return 0;
    return dnnl_memory_desc_equal(md[0], md[1]);
}

typedef struct binary_state {
    int kind;
    uint32_t dtype, dtype_b; /* the inputs' (only Pow's may differ) */
    int nd;                       /* collapsed dims, innermost last */
    int64_t size[OCC_MAX_DIMS];
    int64_t sa[OCC_MAX_DIMS], sb[OCC_MAX_DIMS];
    int64_t count;                /* output elements (or buffer floats, blocked) */
    uint32_t n_steps;             /* variadic: one more state per input after the first */
    struct binary_state *steps;
} binary_state;

/* Collapses y = a op b (a, b broadcast to y) into s's dims. */
static void binary_collapse(binary_state *s, const occ_tensor *y, const occ_tensor *a,
                            const occ_tensor *b)
{
    int r = y->ndim;
    int64_t size[OCC_MAX_DIMS], sa[OCC_MAX_DIMS], sb[OCC_MAX_DIMS];
    int64_t ca = 1, cb = 1;
    for (int i = r - 1; i >= 0; i--) {
        int ia = i - (r - a->ndim), ib = i - (r - b->ndim);
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        size[i] = y->dims[i];
        sa[i] = da == 1 ? 0 : ca;
        sb[i] = db == 1 ? 0 : cb;
        ca *= da;
        cb *= db;
    }
    /* collapse: drop size-1 dims, merge contiguous runs */
    int nd = 0;
    for (int i = 0; i < r; i++) {
        if (size[i] == 1)
            continue;
        if (nd > 0 && s->sa[nd - 1] == sa[i] * size[i] && s->sb[nd - 1] == sb[i] * size[i]) {
            s->size[nd - 1] *= size[i];
            s->sa[nd - 1] = sa[i];
            s->sb[nd - 1] = sb[i];
            continue;
        }
        s->size[nd] = size[i];
        s->sa[nd] = sa[i];
        s->sb[nd] = sb[i];
        nd++;
    }
    if (nd == 0) {
        nd = 1;
        s->size[0] = 1;
        s->sa[0] = s->sb[0] = 0;
    }
    s->nd = nd;
    s->count = occ_ops_count(y->ndim, y->dims);
}

static void binary_destroy(void *state)
{
    binary_state *s = state;
    if (s)
        free(s->steps);
    free(s);
}

static occ_status binary_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    binary_state *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    s->kind = binary_kind(p->n->op);
    const occ_tensor *a = occ_ops_in(p->m, p->n, 0);
    s->dtype = occ_ops_dtype(a);
    s->dtype_b = p->n->n_inputs > 1 ? occ_ops_dtype(occ_ops_in(p->m, p->n, 1)) : s->dtype;
    const occ_tensor *y = &p->m->tensors[p->n->outputs[0]];
    if (p->in_md && p->in_md[0]) {
        /* same shape, same layout: flat over the whole buffer */
        s->nd = 1;
        s->count = s->size[0] = (int64_t)(dnnl_memory_desc_get_size(p->in_md[0]) / 4);
        s->sa[0] = s->sb[0] = 1;
        p->out_blocked = 1;
        p->out_md = *p->in_md[0];
        *state = s;
        return OCC_OK;
    }
    if (!is_variadic(s->kind)) {
        binary_collapse(s, y, a, occ_ops_in(p->m, p->n, 1));
        *state = s;
        return OCC_OK;
    }
    /* y = x0 (broadcast), then y = y op xi */
    s->n_steps = p->n->n_inputs;
    s->steps = calloc(s->n_steps, sizeof *s->steps);
    if (!s->steps) {
        free(s);
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    }
    binary_collapse(&s->steps[0], y, a, a);
    s->steps[0].kind = B_COPY;
    for (uint32_t i = 1; i < s->n_steps; i++) {
        binary_collapse(&s->steps[i], y, y, occ_ops_in(p->m, p->n, i));
        s->steps[i].kind = s->kind == B_MEAN ? B_SUM : s->kind;
    }
    s->count = s->steps[0].count;
    *state = s;
    return OCC_OK;
}

/* One inner row: out[i] = a[i*sa] op b[i*sb]. o may be a (a variadic op's
 * running result, same index): hence no restrict on those two. */
static void binary_row(int kind, float *o, const float *a, const float *restrict b, int64_t n,
                       int64_t sa, int64_t sb)
{
#define ROW(EXPR)                                                                        \
    do {                                                                                 \
        if (sa == 1 && sb == 1) {                                                        \
            _Pragma("omp simd") for (int64_t i = 0; i < n; i++) {                        \
                float x = a[i], y = b[i];                                                \
                o[i] = EXPR;                                                             \
            }                                                                            \
        } else if (sa == 1 && sb == 0) {                                                 \
            const float y = b[0];                                                        \
            _Pragma("omp simd") for (int64_t i = 0; i < n; i++) {                        \
                float x = a[i];                                                          \
                o[i] = EXPR;                                                             \
            }                                                                            \
        } else if (sa == 0 && sb == 1) {                                                 \
            const float x = a[0];                                                        \
            _Pragma("omp simd") for (int64_t i = 0; i < n; i++) {                        \
                float y = b[i];                                                          \
                o[i] = EXPR;                                                             \
            }                                                                            \
        } else {                                                                         \
            for (int64_t i = 0; i < n; i++) {                                            \
                float x = a[i * sa], y = b[i * sb];                                      \
                o[i] = EXPR;                                                             \
            }                                                                            \
        }                                                                                \
    } while (0)
    switch (kind) {
    case B_ADD: ROW(x + y); break;
    case B_SUB: ROW(x - y); break;
    case B_MUL: ROW(x * y); break;
    case B_POW:
        /* LayerNorm's decomposed variance squares (exporters' Pow(x, 2)):
         * x * x is what powf returns for y = 2, vectorized */
        if (sb == 0 && b[0] == 2.0f)
            ROW(((void)y, x * x));
        else
            ROW(powf(x, y));
        break;
    case B_PRELU: ROW(x < 0.0f ? x * y : x); break;
    case B_MAX: ROW(x != x || y != y ? x + y : (x > y ? x : y)); break; /* NaN wins */
    case B_MIN: ROW(x != x || y != y ? x + y : (x < y ? x : y)); break;
    case B_SUM: ROW(x + y); break;
    case B_COPY: ROW(((void)y, x)); break;
    default: ROW(x / y); break;
    }
#undef ROW
}

typedef struct binary_job {
    const binary_state *s;
    const float *a, *b;
    float *o;
} binary_job;

/* one long row's blocks [k0, k1) of 16 K elements */
static void binary_blocks(void *ctx, int64_t k0, int64_t k1)
{
    const binary_job *j = ctx;
    const binary_state *s = j->s;
    const int nd = s->nd;
    const int64_t inner = s->size[nd - 1], sa = s->sa[nd - 1], sb = s->sb[nd - 1], blk = 16384;
    for (int64_t k = k0; k < k1; k++) {
        int64_t lo = k * blk, len = inner - lo < blk ? inner - lo : blk;
        binary_row(s->kind, j->o + lo, j->a + lo * sa, j->b + lo * sb, len, sa, sb);
    }
}

static void binary_rows(void *ctx, int64_t r0, int64_t r1)
{
    const binary_job *j = ctx;
    const binary_state *s = j->s;
    const int nd = s->nd;
    const int64_t inner = s->size[nd - 1];
    for (int64_t r = r0; r < r1; r++) {
        int64_t rem = r, oa = 0, ob = 0;
        for (int d = nd - 2; d >= 0; d--) {
            int64_t idx = rem % s->size[d];
            rem /= s->size[d];
            oa += idx * s->sa[d];
            ob += idx * s->sb[d];
        }
        binary_row(s->kind, j->o + r * inner, j->a + oa, j->b + ob, inner, s->sa[nd - 1],
                   s->sb[nd - 1]);
    }
}

/* Rows (or a long row's blocks) shared by par.h's pool: whichever thread
 * is running takes the next chunk, none waits for a descheduled one. */
static void binary_step(const binary_state *s, const float *a, const float *b, float *o)
{
    int nd = s->nd;
    int64_t inner = s->size[nd - 1];
    int64_t rows = s->count / inner;
    binary_job j = {.s = s, .a = a, .b = b, .o = o};
    if (rows == 1) {
        /* one long row: split it across threads */
        int64_t nblk = (inner + 16383) / 16384;
        occ_par_for(nblk, nblk > 2 ? 1 : nblk, binary_blocks, &j);
        return;
    }
    occ_par_for(rows, s->count > 32768 ? (8192 + inner - 1) / inner : rows, binary_rows, &j);
}

/* x^y for integers: exact, wrapping; a negative exponent gives 0 but for
 * bases 1 and -1. uexp: y is a uint64 exponent (its bits). */
static int64_t ipow(int64_t x, int64_t y, int uexp)
{
    if (y < 0 && !uexp)
        return x == 1 ? 1 : x == -1 ? (y & 1 ? -1 : 1) : 0;
    uint64_t r = 1, b = (uint64_t)x;
    for (uint64_t u = (uint64_t)y; u; u >>= 1, b *= b)
        if (u & 1)
            r *= b;
    return (int64_t)r;
}

/* One step of the typed (non-float32) path over every element, reading and
 * writing through the element helpers: integer arithmetic in 64 bits, stored
 * back wrapping (uint64 compared and divided unsigned); float64 in double,
 * float16 Max/Min through float; Pow with mixed types. o may be a (a variadic
 * op's running result, same index). Returns nonzero on a zero integer
 * divisor. */
static int typed_step(const binary_state *s, int kind, uint32_t dt, uint32_t dtb, void *o,
                      const void *a, const void *b)
{
    int nd = s->nd;
    int64_t inner = s->size[nd - 1], rows = s->count / inner;
    int64_t sa = s->sa[nd - 1], sb = s->sb[nd - 1];
    int isint = !occ_dtype_is_float(dt), bint = !occ_dtype_is_float(dtb);
    int u64 = dt == OCC_DTYPE_UINT64;
    for (int64_t r = 0; r < rows; r++) {
        int64_t rem = r, oa = 0, ob = 0;
        for (int d = nd - 2; d >= 0; d--) {
            int64_t idx = rem % s->size[d];
            rem /= s->size[d];
            oa += idx * s->sa[d];
            ob += idx * s->sb[d];
        }
        for (int64_t i = 0; i < inner; i++) {
            int64_t k = r * inner + i, ia = oa + i * sa, ib = ob + i * sb;
            if (!isint || (kind == B_POW && !bint)) {
                double x = occ_ops_load_f64(dt, a, ia), y = occ_ops_load_f64(dtb, b, ib), v;
                switch (kind) {
                case B_ADD: case B_SUM: v = x + y; break;
                case B_SUB: v = x - y; break;
                case B_MUL: v = x * y; break;
                case B_DIV: v = x / y; break;
                case B_POW: v = pow(x, y); break;
                case B_MAX: v = x != x || y != y ? x + y : (x > y ? x : y); break;
                case B_MIN: v = x != x || y != y ? x + y : (x < y ? x : y); break;
                default: v = x; break; /* B_COPY */
                }
                if (!isint) {
                    occ_ops_store_f64(dt, o, k, v);
                } else {
                    int64_t iv; /* saturating, NaN to 0 */
                    occ_ops_scalar_from_double(OCC_DTYPE_INT64, trunc(v), &iv);
                    occ_ops_store_i64(dt, o, k, iv);
                }
                continue;
            }
            int64_t x = occ_ops_load_i64(dt, a, ia), y = occ_ops_load_i64(dtb, b, ib), v;
            switch (kind) {
            case B_ADD: case B_SUM: v = (int64_t)((uint64_t)x + (uint64_t)y); break;
            case B_SUB: v = (int64_t)((uint64_t)x - (uint64_t)y); break;
            case B_MUL: v = (int64_t)((uint64_t)x * (uint64_t)y); break;
            case B_POW: v = ipow(x, y, dtb == OCC_DTYPE_UINT64); break;
            case B_MAX: v = (u64 ? (uint64_t)x > (uint64_t)y : x > y) ? x : y; break;
            case B_MIN: v = (u64 ? (uint64_t)x < (uint64_t)y : x < y) ? x : y; break;
            case B_COPY: v = x; break;
            default:
                if (y == 0)
                    return 1;
                if (u64)
                    v = (int64_t)((uint64_t)x / (uint64_t)y);
                else
                    v = x == INT64_MIN && y == -1 ? INT64_MIN : x / y;
                break;
            }
            occ_ops_store_i64(dt, o, k, v);
        }
    }
    return 0;
}

static occ_status binary_run_typed(const binary_state *s, const occ_op_exec *x, occ_error *e)
{
    int bad = 0;
    if (!s->n_steps) {
        bad = typed_step(s, s->kind, s->dtype, s->dtype_b, x->out[0], x->in[0], x->in[1]);
    } else {
        bad = typed_step(&s->steps[0], B_COPY, s->dtype, s->dtype, x->out[0], x->in[0], x->in[0]);
        for (uint32_t i = 1; i < s->n_steps && !bad; i++)
            bad = typed_step(&s->steps[i], s->steps[i].kind, s->dtype, s->dtype, x->out[0],
                             x->out[0], x->in[i]);
        if (s->kind == B_MEAN && s->dtype == OCC_DTYPE_DOUBLE) /* Mean: float types only */
            for (int64_t i = 0; i < s->count; i++)
                ((double *)x->out[0])[i] /= (double)s->n_steps;
    }
    if (bad)
        return occ_fail(e, OCC_ERR_INVALID, "integer division by zero");
    return OCC_OK;
}

static occ_status binary_run(void *state, const occ_op_exec *x, occ_error *e)
{
    const binary_state *s = state;
    if (s->dtype != OCC_DTYPE_FLOAT || s->dtype_b != OCC_DTYPE_FLOAT)
        return binary_run_typed(s, x, e);
    float *o = x->out[0];
    if (!s->n_steps) {
        const float *a = x->in[0], *b = x->in[1];
        binary_step(s, a, b, o);
        return OCC_OK;
    }
    const float *x0 = x->in[0];
    binary_step(&s->steps[0], x0, x0, o);
    for (uint32_t i = 1; i < s->n_steps; i++) {
        const float *xi = x->in[i];
        binary_step(&s->steps[i], o, xi, o);
    }
    if (s->kind == B_MEAN) {
        const float inv = 1.0f / (float)s->n_steps;
        for (int64_t i = 0; i < s->count; i++)
            o[i] *= inv;
    }
    return OCC_OK;
}

#define BINARY(var, name, TYPES)                                                        \
    const occ_op_vtable var = {.op = name,                                                \
                               .min_in = 2,                                               \
                               .max_in = 2,                                               \
                               .n_out = 1,                                                \
                               .n_in_types = 1,                                           \
                               .in_types = {TYPES},                                       \
                               .infer = binary_infer,                                     \
                               .layout = binary_layout,                                   \
                               .prepare = binary_prepare,                                 \
                               .run = binary_run,                                         \
                               .destroy = binary_destroy}

BINARY(occ_op_add, "Add", OCC_DTM_NUM);
BINARY(occ_op_sub, "Sub", OCC_DTM_NUM);
BINARY(occ_op_mul, "Mul", OCC_DTM_NUM);
BINARY(occ_op_div, "Div", OCC_DTM_NUM);
BINARY(occ_op_pow, "Pow", OCC_DTM_NUM);
BINARY(occ_op_prelu, "PRelu", OCC_DTM_FLOAT);

#define VARIADIC(var, name, TYPES)                                                        \
    const occ_op_vtable var = {.op = name,                                                \
                               .min_in = 1,                                               \
                               .max_in = OCC_MAX_NODE_IO,                                 \
                               .n_out = 1,                                                \
                               .n_in_types = 1,                                           \
                               .in_types = {TYPES},                                       \
                               .infer = binary_infer,                                     \
                               .layout = binary_layout,                                   \
                               .prepare = binary_prepare,                                 \
                               .run = binary_run,                                         \
                               .destroy = binary_destroy}

VARIADIC(occ_op_max, "Max", OCC_DTM_NUM | OCC_DTM_F16);
VARIADIC(occ_op_min, "Min", OCC_DTM_NUM | OCC_DTM_F16);
VARIADIC(occ_op_sum, "Sum", OCC_DTM_FLOAT | OCC_DTM_F64);
VARIADIC(occ_op_mean, "Mean", OCC_DTM_FLOAT | OCC_DTM_F64);
