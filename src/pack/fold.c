/* Constant folding: evaluates at pack time the nodes whose inputs are all
 * constants (and Shape/Size of a tensor whose static shape is known). Inputs
 * are untrusted: every index, axis and size is checked. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pack/imp.h"

static const char *const fold_ops[] = {
    "Shape", "Size", "Gather", "Unsqueeze", "Squeeze", "Concat", "Cast", "Slice",
    "Add", "Sub", "Mul", "Div", "Min", "Max", "Equal", "Less", "Greater", "Where",
    "Reshape", "Flatten", "Transpose", "Identity", "ConstantOfShape", "Range",
    "Neg", "Abs", "Floor", "Ceil", "Sqrt", "Reciprocal", "Mod", "Expand", "Split", "TopK", NULL};

int imp_fold_known(const char *op)
{
    for (int k = 0; fold_ops[k]; k++)
        if (!strcmp(fold_ops[k], op))
            return 1;
    return 0;
}

/* Prepares out with the given type and dims, checks the element cap and
 * allocates its data. */
static occ_status out_init(imp_cval *o, int type, int32_t ndim, const int64_t *dims, int64_t cap,
                           occ_error *e)
{
    memset(o, 0, sizeof *o);
    if (ndim < 0 || ndim > OCC_MAX_DIMS)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "result has rank %d (at most %d supported)",
                        (int)ndim, OCC_MAX_DIMS);
    o->type = type;
    o->ndim = ndim;
    for (int32_t k = 0; k < ndim; k++)
        o->dims[k] = dims[k];
    o->count = imp_count(ndim, dims);
    if (o->count < 0)
        return occ_fail(e, OCC_ERR_SHAPE, "result dims are absurdly large");
    if (o->count > cap)
        return occ_fail(e, OCC_ERR_SHAPE,
                        "folding would create a constant of %lld elements from %lld input elements",
                        (long long)o->count, (long long)cap);
    return imp_cval_alloc(o, e);
}

static void ecopy(imp_cval *d, int64_t di, const imp_cval *s, int64_t si, int64_t n)
{
    if (n <= 0)
        return;
    if (d->type == CV_FLOAT)
        memcpy(d->f + di, s->f + si, (size_t)n * sizeof(float));
    else
        memcpy(d->i + di, s->i + si, (size_t)n * sizeof(int64_t));
}

static int norm_axis(int64_t *ax, int64_t rank)
{
    if (*ax < -rank || *ax >= rank)
        return 0;
    if (*ax < 0)
        *ax += rank;
    return 1;
}

static int64_t prod(const int64_t *d, int32_t from, int32_t to)
{
    int64_t p = 1;
    for (int32_t k = from; k < to; k++)
        p *= d[k];
    return p;
}

/* Integer list from an attribute (ints) or a constant input; *n = -1 when
 * neither is present. */
static occ_status get_ints(const Onnx__NodeProto *n, const char *attr, const imp_cval *in,
                           const int64_t **v, int64_t *cnt, occ_error *e)
{
    *v = NULL;
    *cnt = -1;
    if (in) {
        if (in->type != CV_INT)
            return occ_fail(e, OCC_ERR_INVALID, "input for '%s' must be integer", attr);
        if (in->ndim > 1)
            return occ_fail(e, OCC_ERR_INVALID, "input for '%s' must be 1-D", attr);
        *v = in->i;
        *cnt = in->count;
        return OCC_OK;
    }
    const Onnx__AttributeProto *a = attr ? imp_onnx_attr(n, attr) : NULL;
    if (a) {
        *v = a->ints;
        *cnt = (int64_t)a->n_ints;
    }
    return OCC_OK;
}

static int64_t fdiv_trunc(int64_t a, int64_t b)
{
    if (a == INT64_MIN && b == -1)
        return INT64_MIN;
    return a / b;
}

static int64_t f2i(float x)
{
    if (isnan(x))
        return 0;
    if (x >= 9.2233720368547758e18f)
        return INT64_MAX;
    if (x <= -9.2233720368547758e18f)
        return INT64_MIN;
    return (int64_t)x;
}

/* Arithmetic codes first, comparisons (bool results) from B_EQ on. */
enum { B_ADD, B_SUB, B_MUL, B_DIV, B_MIN, B_MAX, B_MOD, B_FMOD, B_EQ, B_LT, B_GT };

static int binop_code(const char *op)
{
    /* Indexed by the B_ codes; Mod is decided by fold_one from its fmod attribute. */
    static const char *const names[] = {"Add", "Sub", "Mul", "Div", "Min", "Max", "", "",
                                        "Equal", "Less", "Greater"};
    for (int k = 0; k < (int)(sizeof names / sizeof names[0]); k++)
        if (names[k][0] && !strcmp(op, names[k]))
            return k;
    return -1;
}

/* Broadcast output dims of n inputs; per input strides (0 on broadcast dims)
 * aligned to the output rank. */
static occ_status broadcast(const imp_cval *const *in, int nin, imp_cval *shape,
                            int64_t strides[][OCC_MAX_DIMS], occ_error *e)
{
    int32_t r = 0;
    for (int k = 0; k < nin; k++)
        if (in[k]->ndim > r)
            r = in[k]->ndim;
    shape->ndim = r;
    for (int32_t d = 0; d < r; d++) {
        int64_t v = 1;
        for (int k = 0; k < nin; k++) {
            int32_t off = r - in[k]->ndim;
            if (d < off)
                continue;
            int64_t x = in[k]->dims[d - off];
            if (x == v || x == 1)
                continue;
            if (v == 1) {
                v = x;
                continue;
            }
            return occ_fail(e, OCC_ERR_SHAPE, "shapes cannot be broadcast (%lld vs %lld)",
                            (long long)v, (long long)x);
        }
        shape->dims[d] = v;
    }
    for (int k = 0; k < nin; k++) {
        int32_t off = r - in[k]->ndim;
        int64_t s = 1;
        for (int32_t d = r - 1; d >= 0; d--) {
            if (d < off) {
                strides[k][d] = 0;
                continue;
            }
            int64_t x = in[k]->dims[d - off];
            strides[k][d] = x == 1 ? 0 : s;
            s *= x;
        }
    }
    return OCC_OK;
}

/* Iterates an N-d counter; returns the per-input offsets increment-wise. */
typedef struct nd_iter {
    int32_t r;
    int64_t dims[OCC_MAX_DIMS];
    int64_t idx[OCC_MAX_DIMS];
} nd_iter;

static void nd_next(nd_iter *it, int nin, int64_t strides[][OCC_MAX_DIMS], int64_t *off)
{
    for (int32_t d = it->r - 1; d >= 0; d--) {
        it->idx[d]++;
        for (int k = 0; k < nin; k++)
            off[k] += strides[k][d];
        if (it->idx[d] < it->dims[d])
            return;
        for (int k = 0; k < nin; k++)
            off[k] -= strides[k][d] * it->dims[d];
        it->idx[d] = 0;
    }
}

static int fold_binary(int code, const imp_cval *a, const imp_cval *b, imp_cval *o, int64_t cap,
                       occ_error *e)
{
    if (a->type != b->type)
        return IMP_FOLD_NO;
    const imp_cval *ins[2] = {a, b};
    int64_t st[2][OCC_MAX_DIMS];
    imp_cval shp = {0};
    occ_status s = broadcast(ins, 2, &shp, st, e);
    if (s)
        return s;
    int otype = code >= B_EQ ? CV_INT : a->type;
    s = out_init(o, otype, shp.ndim, shp.dims, cap, e);
    if (s)
        return s;
    nd_iter it = {.r = shp.ndim};
    memcpy(it.dims, shp.dims, sizeof it.dims);
    int64_t off[2] = {0, 0};
    for (int64_t k = 0; k < o->count; k++) {
        if (a->type == CV_FLOAT) {
            float x = a->f[off[0]], y = b->f[off[1]], r = 0;
            switch (code) {
            case B_ADD: r = x + y; break;
            case B_SUB: r = x - y; break;
            case B_MUL: r = x * y; break;
            case B_DIV: r = x / y; break;
            case B_MIN: r = x < y ? x : y; break;
            case B_MAX: r = x > y ? x : y; break;
            case B_FMOD: r = fmodf(x, y); break;
            case B_MOD: /* the divisor's sign, like Python's % (ONNX Mod, fmod=0) */
                r = fmodf(x, y);
                if (r != 0 && (r < 0) != (y < 0))
                    r += y;
                break;
            case B_EQ: o->i[k] = x == y; break;
            case B_LT: o->i[k] = x < y; break;
            case B_GT: o->i[k] = x > y; break;
            }
            if (code < B_EQ)
                o->f[k] = r;
        } else {
            int64_t x = a->i[off[0]], y = b->i[off[1]], r = 0;
            switch (code) {
            case B_ADD: r = (int64_t)((uint64_t)x + (uint64_t)y); break;
            case B_SUB: r = (int64_t)((uint64_t)x - (uint64_t)y); break;
            case B_MUL: r = (int64_t)((uint64_t)x * (uint64_t)y); break;
            case B_DIV:
                if (y == 0)
                    return occ_fail(e, OCC_ERR_INVALID, "integer division by zero");
                r = fdiv_trunc(x, y);
                break;
            case B_MIN: r = x < y ? x : y; break;
            case B_MAX: r = x > y ? x : y; break;
            case B_MOD:
            case B_FMOD:
                if (y == 0)
                    return occ_fail(e, OCC_ERR_INVALID, "integer modulo by zero");
                r = y == -1 ? 0 : x % y; /* INT64_MIN % -1 would trap */
                if (code == B_MOD && r != 0 && (r < 0) != (y < 0))
                    r += y;
                break;
            case B_EQ: r = x == y; break;
            case B_LT: r = x < y; break;
            case B_GT: r = x > y; break;
            }
            o->i[k] = r;
        }
        nd_next(&it, 2, st, off);
    }
    return IMP_FOLD_DONE;
}

static int fold_where(const imp_cval *c, const imp_cval *a, const imp_cval *b, imp_cval *o,
                      int64_t cap, occ_error *e)
{
    if (c->type != CV_INT || a->type != b->type)
        return IMP_FOLD_NO;
    const imp_cval *ins[3] = {c, a, b};
    int64_t st[3][OCC_MAX_DIMS];
    imp_cval shp = {0};
    occ_status s = broadcast(ins, 3, &shp, st, e);
    if (s)
        return s;
    s = out_init(o, a->type, shp.ndim, shp.dims, cap, e);
    if (s)
        return s;
    nd_iter it = {.r = shp.ndim};
    memcpy(it.dims, shp.dims, sizeof it.dims);
    int64_t off[3] = {0, 0, 0};
    for (int64_t k = 0; k < o->count; k++) {
        int pick = c->i[off[0]] != 0;
        if (o->type == CV_FLOAT)
            o->f[k] = pick ? a->f[off[1]] : b->f[off[2]];
        else
            o->i[k] = pick ? a->i[off[1]] : b->i[off[2]];
        nd_next(&it, 3, st, off);
    }
    return IMP_FOLD_DONE;
}

static int fold_unary(const char *op, const imp_cval *a, imp_cval *o, int64_t cap, occ_error *e)
{
    int isf = a->type == CV_FLOAT;
    if (!isf && (!strcmp(op, "Sqrt") || !strcmp(op, "Reciprocal")))
        return IMP_FOLD_NO;
    occ_status s = out_init(o, a->type, a->ndim, a->dims, cap, e);
    if (s)
        return s;
    for (int64_t k = 0; k < a->count; k++) {
        if (isf) {
            float x = a->f[k], r = x;
            if (!strcmp(op, "Neg")) r = -x;
            else if (!strcmp(op, "Abs")) r = fabsf(x);
            else if (!strcmp(op, "Floor")) r = floorf(x);
            else if (!strcmp(op, "Ceil")) r = ceilf(x);
            else if (!strcmp(op, "Sqrt")) r = sqrtf(x);
            else if (!strcmp(op, "Reciprocal")) r = 1.0f / x;
            o->f[k] = r;
        } else {
            int64_t x = a->i[k], r = x;
            if (!strcmp(op, "Neg")) r = (int64_t)(0u - (uint64_t)x);
            else if (!strcmp(op, "Abs")) r = x < 0 ? (int64_t)(0u - (uint64_t)x) : x;
            o->i[k] = r;
        }
    }
    return IMP_FOLD_DONE;
}

static int fold_gather(const Onnx__NodeProto *n, const imp_cval *d, const imp_cval *ix, imp_cval *o,
                       int64_t cap, occ_error *e)
{
    if (ix->type != CV_INT)
        return occ_fail(e, OCC_ERR_INVALID, "Gather indices must be integers");
    if (d->ndim < 1)
        return occ_fail(e, OCC_ERR_INVALID, "Gather of a scalar");
    int64_t axis = imp_attr_int(n, "axis", 0);
    if (!norm_axis(&axis, d->ndim))
        return occ_fail(e, OCC_ERR_INVALID, "axis %lld out of range", (long long)axis);
    int32_t r = d->ndim - 1 + ix->ndim;
    if (r > OCC_MAX_DIMS)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "result rank %d too large", (int)r);
    int64_t dims[OCC_MAX_DIMS];
    int32_t q = 0;
    for (int32_t k = 0; k < axis; k++)
        dims[q++] = d->dims[k];
    for (int32_t k = 0; k < ix->ndim; k++)
        dims[q++] = ix->dims[k];
    for (int32_t k = (int32_t)axis + 1; k < d->ndim; k++)
        dims[q++] = d->dims[k];
    occ_status s = out_init(o, d->type, r, dims, cap, e);
    if (s)
        return s;
    int64_t outer = prod(d->dims, 0, (int32_t)axis), ad = d->dims[axis];
    int64_t inner = prod(d->dims, (int32_t)axis + 1, d->ndim);
    for (int64_t j = 0; j < ix->count; j++) {
        int64_t k = ix->i[j];
        if (k < -ad || k >= ad)
            return occ_fail(e, OCC_ERR_INVALID, "Gather index %lld out of range [0, %lld)",
                            (long long)k, (long long)ad);
    }
    for (int64_t oo = 0; oo < outer; oo++)
        for (int64_t j = 0; j < ix->count; j++) {
            int64_t k = ix->i[j] < 0 ? ix->i[j] + ad : ix->i[j];
            ecopy(o, (oo * ix->count + j) * inner, d, (oo * ad + k) * inner, inner);
        }
    return IMP_FOLD_DONE;
}

static int fold_concat(const Onnx__NodeProto *n, const imp_cval *const *in, uint32_t nin,
                       imp_cval *o, int64_t cap, occ_error *e)
{
    if (nin == 0 || !in[0])
        return occ_fail(e, OCC_ERR_INVALID, "Concat without inputs");
    const imp_cval *a = in[0];
    int64_t axis = imp_attr_int(n, "axis", INT64_MIN);
    if (axis == INT64_MIN)
        return occ_fail(e, OCC_ERR_INVALID, "Concat needs an 'axis' attribute");
    if (a->ndim < 1 || !norm_axis(&axis, a->ndim))
        return occ_fail(e, OCC_ERR_INVALID, "axis %lld out of range", (long long)axis);
    int64_t dims[OCC_MAX_DIMS];
    memcpy(dims, a->dims, sizeof dims);
    dims[axis] = 0;
    for (uint32_t k = 0; k < nin; k++) {
        const imp_cval *b = in[k];
        if (!b || b->type != a->type || b->ndim != a->ndim)
            return IMP_FOLD_NO;
        for (int32_t d = 0; d < a->ndim; d++)
            if (d != axis && b->dims[d] != a->dims[d])
                return occ_fail(e, OCC_ERR_SHAPE, "Concat inputs disagree on dim %d", (int)d);
        if (b->dims[axis] > IMP_MAX_ELEMS - dims[axis])
            return occ_fail(e, OCC_ERR_SHAPE, "Concat result too large");
        dims[axis] += b->dims[axis];
    }
    occ_status s = out_init(o, a->type, a->ndim, dims, cap, e);
    if (s)
        return s;
    int64_t outer = prod(a->dims, 0, (int32_t)axis), inner = prod(a->dims, (int32_t)axis + 1, a->ndim);
    int64_t pos = 0;
    for (int64_t oo = 0; oo < outer; oo++)
        for (uint32_t k = 0; k < nin; k++) {
            int64_t len = in[k]->dims[axis] * inner;
            ecopy(o, pos, in[k], oo * len, len);
            pos += len;
        }
    return IMP_FOLD_DONE;
}

static int fold_unsqueeze(const Onnx__NodeProto *n, const imp_cval *a, const imp_cval *axin,
                          imp_cval *o, int64_t cap, occ_error *e, int squeeze)
{
    const int64_t *ax;
    int64_t nax;
    occ_status s = get_ints(n, "axes", axin, &ax, &nax, e);
    if (s)
        return s;
    int64_t dims[OCC_MAX_DIMS];
    int32_t r = 0;
    if (squeeze) {
        int drop[OCC_MAX_DIMS] = {0};
        if (nax < 0) {
            for (int32_t d = 0; d < a->ndim; d++)
                drop[d] = a->dims[d] == 1;
        } else {
            for (int64_t k = 0; k < nax; k++) {
                int64_t x = ax[k];
                if (!norm_axis(&x, a->ndim))
                    return occ_fail(e, OCC_ERR_INVALID, "axis %lld out of range", (long long)ax[k]);
                if (a->dims[x] != 1)
                    return occ_fail(e, OCC_ERR_SHAPE, "cannot squeeze dim %lld of size %lld",
                                    (long long)x, (long long)a->dims[x]);
                drop[x] = 1;
            }
        }
        for (int32_t d = 0; d < a->ndim; d++)
            if (!drop[d])
                dims[r++] = a->dims[d];
    } else {
        if (nax < 0)
            return occ_fail(e, OCC_ERR_INVALID, "Unsqueeze needs axes");
        if (a->ndim + nax > OCC_MAX_DIMS)
            return occ_fail(e, OCC_ERR_UNSUPPORTED, "result rank too large");
        r = a->ndim + (int32_t)nax;
        int ins[OCC_MAX_DIMS] = {0};
        for (int64_t k = 0; k < nax; k++) {
            int64_t x = ax[k];
            if (!norm_axis(&x, r) || ins[x])
                return occ_fail(e, OCC_ERR_INVALID, "bad Unsqueeze axis %lld", (long long)ax[k]);
            ins[x] = 1;
        }
        int32_t q = 0;
        for (int32_t d = 0; d < r; d++)
            dims[d] = ins[d] ? 1 : a->dims[q++];
    }
    s = out_init(o, a->type, r, dims, cap, e);
    if (s)
        return s;
    ecopy(o, 0, a, 0, a->count);
    return IMP_FOLD_DONE;
}

static int fold_cast(const Onnx__NodeProto *n, const imp_cval *a, imp_cval *o, int64_t cap,
                     occ_error *e)
{
    int64_t to = imp_attr_int(n, "to", -1);
    int type;
    switch (to) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: type = CV_FLOAT; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT8:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT16:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32:
    case ONNX__TENSOR_PROTO__DATA_TYPE__UINT64:
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: type = CV_INT; break;
    default: return IMP_FOLD_NO;
    }
    occ_status s = out_init(o, type, a->ndim, a->dims, cap, e);
    if (s)
        return s;
    int isbool = to == ONNX__TENSOR_PROTO__DATA_TYPE__BOOL;
    for (int64_t k = 0; k < a->count; k++) {
        if (type == CV_FLOAT)
            o->f[k] = a->type == CV_FLOAT ? a->f[k] : (float)a->i[k];
        else if (a->type == CV_FLOAT)
            o->i[k] = isbool ? a->f[k] != 0.0f : f2i(a->f[k]);
        else
            o->i[k] = isbool ? a->i[k] != 0 : a->i[k];
    }
    return IMP_FOLD_DONE;
}

static int fold_slice(const Onnx__NodeProto *n, const imp_cval *const *in, uint32_t nin,
                      imp_cval *o, int64_t cap, occ_error *e)
{
    const imp_cval *a = in[0];
    const int64_t *st, *en, *ax = NULL, *sp = NULL;
    int64_t nst, nen, nax = -1, nsp = -1;
    occ_status s;
    if ((s = get_ints(n, "starts", nin > 1 ? in[1] : NULL, &st, &nst, e)) ||
        (s = get_ints(n, "ends", nin > 2 ? in[2] : NULL, &en, &nen, e)) ||
        (s = get_ints(n, "axes", nin > 3 ? in[3] : NULL, &ax, &nax, e)) ||
        (s = get_ints(n, "steps", nin > 4 ? in[4] : NULL, &sp, &nsp, e)))
        return s;
    if (nst < 0 || nen != nst || (nax >= 0 && nax != nst) || (nsp >= 0 && nsp != nst))
        return occ_fail(e, OCC_ERR_INVALID, "Slice starts/ends/axes/steps disagree");
    int64_t b[OCC_MAX_DIMS], step[OCC_MAX_DIMS], dims[OCC_MAX_DIMS];
    int seen[OCC_MAX_DIMS] = {0};
    for (int32_t d = 0; d < a->ndim; d++) {
        b[d] = 0;
        step[d] = 1;
        dims[d] = a->dims[d];
    }
    for (int64_t k = 0; k < nst; k++) {
        int64_t axis = nax >= 0 ? ax[k] : k;
        if (!norm_axis(&axis, a->ndim) || seen[axis])
            return occ_fail(e, OCC_ERR_INVALID, "bad Slice axis %lld", (long long)axis);
        seen[axis] = 1;
        int64_t dim = a->dims[axis], p = nsp >= 0 ? sp[k] : 1;
        if (p == 0)
            return occ_fail(e, OCC_ERR_INVALID, "Slice step 0");
        if (p > dim)
            p = dim + 1; /* same elements, no overflow in the strides below */
        if (p < -dim - 1)
            p = -dim - 1;
        int64_t s0 = st[k], e0 = en[k];
        if (s0 < 0)
            s0 = s0 < -dim ? -1 : s0 + dim;
        if (e0 < 0)
            e0 = e0 < -dim ? -1 : e0 + dim;
        int64_t len;
        if (dim == 0) {
            s0 = 0;
            len = 0;
        } else if (p > 0) {
            s0 = s0 < 0 ? 0 : s0 > dim ? dim : s0;
            e0 = e0 < 0 ? 0 : e0 > dim ? dim : e0;
            len = e0 > s0 ? (e0 - s0 - 1) / p + 1 : 0;
        } else {
            s0 = s0 < 0 ? 0 : s0 > dim - 1 ? dim - 1 : s0;
            e0 = e0 < -1 ? -1 : e0 > dim - 1 ? dim - 1 : e0;
            len = s0 > e0 ? (s0 - e0 - 1) / (-p) + 1 : 0;
        }
        b[axis] = s0;
        step[axis] = p;
        dims[axis] = len;
    }
    s = out_init(o, a->type, a->ndim, dims, cap, e);
    if (s)
        return s;
    if (o->count == 0)
        return IMP_FOLD_DONE;
    int64_t str[1][OCC_MAX_DIMS], base = 0, sz = 1;
    for (int32_t d = a->ndim - 1; d >= 0; d--) {
        str[0][d] = step[d] * sz;
        base += b[d] * sz;
        sz *= a->dims[d];
    }
    nd_iter it = {.r = a->ndim};
    memcpy(it.dims, dims, sizeof it.dims);
    int64_t off[1] = {base};
    for (int64_t k = 0; k < o->count; k++) {
        ecopy(o, k, a, off[0], 1);
        nd_next(&it, 1, str, off);
    }
    return IMP_FOLD_DONE;
}

static int fold_reshape(const Onnx__NodeProto *n, const imp_cval *a, const imp_cval *sh,
                        imp_cval *o, int64_t cap, occ_error *e)
{
    const int64_t *v;
    int64_t nv;
    occ_status s = get_ints(n, "shape", sh, &v, &nv, e);
    if (s)
        return s;
    if (nv < 0)
        return occ_fail(e, OCC_ERR_INVALID, "Reshape without a shape");
    if (nv > OCC_MAX_DIMS)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "Reshape to rank %lld", (long long)nv);
    int allowzero = imp_attr_int(n, "allowzero", 0) != 0;
    int64_t dims[OCC_MAX_DIMS];
    int neg = -1;
    int64_t known = 1;
    for (int64_t k = 0; k < nv; k++) {
        int64_t x = v[k];
        if (x == 0 && !allowzero) {
            if (k >= a->ndim)
                return occ_fail(e, OCC_ERR_SHAPE, "Reshape copies dim %lld of a rank-%d tensor",
                                (long long)k, (int)a->ndim);
            x = a->dims[k];
        }
        if (x == -1) {
            if (neg >= 0)
                return occ_fail(e, OCC_ERR_SHAPE, "Reshape has two -1 dims");
            neg = (int)k;
            dims[k] = 1;
            continue;
        }
        if (x < 0 || x > IMP_MAX_ELEMS)
            return occ_fail(e, OCC_ERR_SHAPE, "Reshape dim %lld", (long long)x);
        dims[k] = x;
        if (x && known > IMP_MAX_ELEMS / x)
            return occ_fail(e, OCC_ERR_SHAPE, "Reshape dims too large");
        known *= x;
    }
    if (neg >= 0) {
        if (known == 0 || a->count % known)
            return occ_fail(e, OCC_ERR_SHAPE, "Reshape cannot infer the -1 dim");
        dims[neg] = a->count / known;
        known = a->count;
    }
    if (known != a->count)
        return occ_fail(e, OCC_ERR_SHAPE, "Reshape of %lld elements to %lld",
                        (long long)a->count, (long long)known);
    s = out_init(o, a->type, (int32_t)nv, dims, cap, e);
    if (s)
        return s;
    ecopy(o, 0, a, 0, a->count);
    return IMP_FOLD_DONE;
}

static int fold_transpose(const Onnx__NodeProto *n, const imp_cval *a, imp_cval *o, int64_t cap,
                          occ_error *e)
{
    int64_t perm[OCC_MAX_DIMS];
    const Onnx__AttributeProto *p = imp_onnx_attr(n, "perm");
    int used[OCC_MAX_DIMS] = {0};
    for (int32_t d = 0; d < a->ndim; d++) {
        if (p) {
            if ((int64_t)p->n_ints != a->ndim)
                return occ_fail(e, OCC_ERR_INVALID, "perm has %zu entries for rank %d",
                                p->n_ints, (int)a->ndim);
            perm[d] = p->ints[d];
        } else {
            perm[d] = a->ndim - 1 - d;
        }
        if (!norm_axis(&perm[d], a->ndim) || used[perm[d]])
            return occ_fail(e, OCC_ERR_INVALID, "bad perm");
        used[perm[d]] = 1;
    }
    int64_t dims[OCC_MAX_DIMS], sst[OCC_MAX_DIMS], str[1][OCC_MAX_DIMS];
    int64_t sz = 1;
    for (int32_t d = a->ndim - 1; d >= 0; d--) {
        sst[d] = sz;
        sz *= a->dims[d];
    }
    for (int32_t d = 0; d < a->ndim; d++) {
        dims[d] = a->dims[perm[d]];
        str[0][d] = sst[perm[d]];
    }
    occ_status s = out_init(o, a->type, a->ndim, dims, cap, e);
    if (s)
        return s;
    nd_iter it = {.r = a->ndim};
    memcpy(it.dims, dims, sizeof it.dims);
    int64_t off[1] = {0};
    for (int64_t k = 0; k < o->count; k++) {
        ecopy(o, k, a, off[0], 1);
        nd_next(&it, 1, str, off);
    }
    return IMP_FOLD_DONE;
}

static int fold_cos(const Onnx__NodeProto *n, const imp_cval *sh, imp_cval *o, int64_t cap,
                    occ_error *e)
{
    if (sh->type != CV_INT || sh->ndim != 1)
        return occ_fail(e, OCC_ERR_INVALID, "ConstantOfShape needs a 1-D integer shape");
    if (sh->count > OCC_MAX_DIMS)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "ConstantOfShape of rank %lld", (long long)sh->count);
    imp_cval val = {.type = CV_FLOAT};
    float zero = 0;
    val.f = &zero;
    val.count = 1;
    const Onnx__AttributeProto *va = imp_onnx_attr(n, "value");
    int have = 0;
    if (va && va->t) {
        occ_status s = imp_tensor_parse(va->t, &val, e);
        if (s) {
            imp_cval_clear(&val);
            return s;
        }
        have = 1;
        if (val.count != 1) {
            imp_cval_clear(&val);
            return occ_fail(e, OCC_ERR_INVALID, "ConstantOfShape value must have one element");
        }
    }
    occ_status s = out_init(o, val.type, (int32_t)sh->count, sh->i, cap, e);
    if (!s)
        o->dt = have ? imp_cval_dtype(&val) : OCC_DTYPE_FLOAT;
    if (!s && val.d) { /* float64: the exact value too */
        o->d = malloc((size_t)(o->count ? o->count : 1) * sizeof(double));
        if (!o->d)
            s = occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    }
    if (!s)
        for (int64_t k = 0; k < o->count; k++) {
            if (o->type == CV_FLOAT)
                o->f[k] = val.f[0];
            else
                o->i[k] = val.i[0];
            if (o->d)
                o->d[k] = val.d[0];
        }
    if (have)
        imp_cval_clear(&val);
    return s ? s : IMP_FOLD_DONE;
}

static int fold_range(const imp_cval *a, const imp_cval *b, const imp_cval *c, imp_cval *o,
                      int64_t cap, occ_error *e)
{
    if (a->type != b->type || a->type != c->type || a->count != 1 || b->count != 1 || c->count != 1)
        return occ_fail(e, OCC_ERR_INVALID, "Range needs three scalars of one type");
    double st = a->type == CV_FLOAT ? a->f[0] : (double)a->i[0];
    double lim = a->type == CV_FLOAT ? b->f[0] : (double)b->i[0];
    double d = a->type == CV_FLOAT ? c->f[0] : (double)c->i[0];
    if (d == 0 || !isfinite(st) || !isfinite(lim) || !isfinite(d))
        return occ_fail(e, OCC_ERR_INVALID, "bad Range");
    double cnt = ceil((lim - st) / d);
    if (cnt < 0)
        cnt = 0;
    if (cnt > (double)cap)
        return occ_fail(e, OCC_ERR_SHAPE, "Range of %.0f elements is too large", cnt);
    int64_t dims[1] = {(int64_t)cnt};
    occ_status s = out_init(o, a->type, 1, dims, cap, e);
    if (s)
        return s;
    for (int64_t k = 0; k < o->count; k++) {
        if (o->type == CV_FLOAT)
            o->f[k] = a->f[0] + (float)k * c->f[0];
        else
            o->i[k] = (int64_t)((uint64_t)a->i[0] + (uint64_t)k * (uint64_t)c->i[0]);
    }
    return IMP_FOLD_DONE;
}

/* Expand: a's values broadcast to the shape in b (numpy rules, both ways).
 * A result past the cap is left to the kernel rather than refused. */
static int fold_expand(const imp_cval *a, const imp_cval *b, imp_cval *o, int64_t cap,
                       occ_error *e)
{
    if (b->type != CV_INT || b->ndim != 1 || b->count > OCC_MAX_DIMS)
        return IMP_FOLD_NO;
    imp_cval want = {0};
    want.ndim = (int32_t)b->count;
    for (int64_t k = 0; k < b->count; k++) {
        if (b->i[k] < 0)
            return occ_fail(e, OCC_ERR_INVALID, "Expand to a negative dim");
        want.dims[k] = b->i[k];
    }
    const imp_cval *ins[2] = {a, &want};
    int64_t st[2][OCC_MAX_DIMS];
    imp_cval shp = {0};
    occ_status s = broadcast(ins, 2, &shp, st, e);
    if (s)
        return s;
    int64_t cnt = imp_count(shp.ndim, shp.dims);
    if (cnt < 0 || cnt > cap)
        return IMP_FOLD_NO;
    if ((s = out_init(o, a->type, shp.ndim, shp.dims, cap, e)))
        return s;
    nd_iter it = {.r = shp.ndim};
    memcpy(it.dims, shp.dims, sizeof it.dims);
    int64_t off[2] = {0, 0};
    for (int64_t k = 0; k < o->count; k++) {
        ecopy(o, k, a, off[0], 1);
        nd_next(&it, 2, st, off);
    }
    return IMP_FOLD_DONE;
}

/* Split into nout parts on axis: sizes from the 'split' input (opset 13+) or
 * attribute, else equal parts (the last smaller, as opset 18's). */
static int fold_split(const Onnx__NodeProto *n, const imp_cval *const *in, uint32_t nin,
                      imp_cval *out, uint32_t nout, int64_t cap, occ_error *e)
{
    const imp_cval *a = in[0];
    int64_t axis = imp_attr_int(n, "axis", 0), sizes[64];
    if (nout == 0 || nout > 64 || !norm_axis(&axis, a->ndim))
        return occ_fail(e, OCC_ERR_INVALID, "Split: bad axis or %u outputs", nout);
    const int64_t len = a->dims[axis];
    const imp_cval *sp = nin > 1 ? in[1] : NULL;
    const Onnx__AttributeProto *sa = imp_onnx_attr(n, "split");
    if (sp || (sa && sa->n_ints)) {
        int64_t cnt = sp ? sp->count : (int64_t)sa->n_ints;
        if ((sp && sp->type != CV_INT) || cnt != (int64_t)nout)
            return occ_fail(e, OCC_ERR_INVALID, "Split: %lld sizes for %u outputs",
                            (long long)cnt, nout);
        int64_t sum = 0;
        for (uint32_t k = 0; k < nout; k++) {
            sizes[k] = sp ? sp->i[k] : sa->ints[k];
            if (sizes[k] < 0 || sizes[k] > len)
                return occ_fail(e, OCC_ERR_INVALID, "Split: bad size %lld", (long long)sizes[k]);
            sum += sizes[k];
        }
        if (sum != len)
            return occ_fail(e, OCC_ERR_INVALID, "Split: sizes add to %lld, the axis is %lld",
                            (long long)sum, (long long)len);
    } else {
        int64_t part = (len + nout - 1) / nout, left = len;
        for (uint32_t k = 0; k < nout; k++) {
            sizes[k] = left < part ? left : part;
            left -= sizes[k];
        }
    }
    const int64_t outer = prod(a->dims, 0, (int32_t)axis);
    const int64_t inner = prod(a->dims, (int32_t)axis + 1, a->ndim);
    int64_t at = 0;
    for (uint32_t k = 0; k < nout; k++) {
        int64_t d[OCC_MAX_DIMS];
        memcpy(d, a->dims, sizeof d);
        d[axis] = sizes[k];
        occ_status s = out_init(&out[k], a->type, a->ndim, d, cap, e);
        if (s)
            return s;
        for (int64_t o = 0; o < outer; o++)
            ecopy(&out[k], o * sizes[k] * inner, a, (o * len + at) * inner, sizes[k] * inner);
        at += sizes[k];
    }
    return IMP_FOLD_DONE;
}

/* TopK: values and int64 indices of the k largest (smallest) along axis,
 * sorted, ties to the lower index (ONNX). Insertion sort: folded inputs are
 * small (sequence lengths before pack_padded_sequence), longer axes left
 * to the kernel. */
static int fold_topk(const Onnx__NodeProto *n, const imp_cval *a, const imp_cval *kv,
                     imp_cval *out, uint32_t nout, int64_t cap, occ_error *e)
{
    int64_t axis = imp_attr_int(n, "axis", -1), largest = imp_attr_int(n, "largest", 1);
    if (!kv || kv->type != CV_INT || kv->count != 1 || nout != 2 || !norm_axis(&axis, a->ndim))
        return IMP_FOLD_NO;
    const int64_t len = a->dims[axis], k = kv->i[0];
    if (len > 4096 || a->count * len > (INT64_C(1) << 26))
        return IMP_FOLD_NO; /* insertion sort: bounded work on untrusted input */
    if (k < 0 || k > len)
        return occ_fail(e, OCC_ERR_INVALID, "TopK: k = %lld, the axis is %lld", (long long)k,
                        (long long)len);
    int64_t d[OCC_MAX_DIMS];
    memcpy(d, a->dims, sizeof d);
    d[axis] = k;
    occ_status s = out_init(&out[0], a->type, a->ndim, d, cap, e);
    if (!s)
        s = out_init(&out[1], CV_INT, a->ndim, d, cap, e);
    int64_t *idx = s ? NULL : malloc((size_t)(len ? len : 1) * sizeof *idx);
    if (s || !idx)
        return s ? s : occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    const int64_t outer = prod(a->dims, 0, (int32_t)axis);
    const int64_t inner = prod(a->dims, (int32_t)axis + 1, a->ndim);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t in = 0; in < inner; in++) {
            const int64_t base = o * len * inner + in;
            for (int64_t j = 0; j < len; j++) {
                int64_t t = j, p = j;
                while (p > 0) {
                    int64_t q = idx[p - 1], ft = base + t * inner, fq = base + q * inner;
                    int gt = a->type == CV_FLOAT ? a->f[ft] > a->f[fq] : a->i[ft] > a->i[fq];
                    int lt = a->type == CV_FLOAT ? a->f[ft] < a->f[fq] : a->i[ft] < a->i[fq];
                    if (largest ? !gt : !lt)
                        break; /* stable: an equal value stays after the lower index */
                    idx[p] = q;
                    p--;
                }
                idx[p] = t;
            }
            for (int64_t j = 0; j < k; j++) {
                const int64_t ob = o * k * inner + in + j * inner;
                ecopy(&out[0], ob, a, base + idx[j] * inner, 1);
                out[1].i[ob] = idx[j];
            }
        }
    free(idx);
    return IMP_FOLD_DONE;
}

static int fold_one(const Onnx__NodeProto *n, int64_t opset, const imp_cval *const *in,
                    uint32_t nin, imp_cval *out, uint32_t nout, occ_error *e)
{
    (void)opset;
    const char *op = n->op_type;
    if (!imp_fold_known(op) || nout == 0 ||
        (nout != 1 && strcmp(op, "Split") && strcmp(op, "TopK")))
        return IMP_FOLD_NO;
    const imp_cval *a = nin > 0 ? in[0] : NULL;
    int64_t cap = 0;
    for (uint32_t k = 0; k < nin; k++)
        if (in[k] && in[k]->type)
            cap += in[k]->count;
    if (cap < IMP_FOLD_MIN_CAP)
        cap = IMP_FOLD_MIN_CAP;
    imp_cval *o = &out[0];

    if (!strcmp(op, "Shape") || !strcmp(op, "Size")) {
        if (!a)
            return occ_fail(e, OCC_ERR_INVALID, "missing input");
        if (op[1] == 'i') {
            int64_t one = 1;
            occ_status s = out_init(o, CV_INT, 0, &one, cap, e);
            if (s)
                return s;
            o->i[0] = imp_count(a->ndim, a->dims);
            return IMP_FOLD_DONE;
        }
        int64_t r = a->ndim, s0 = imp_attr_int(n, "start", 0), e0 = imp_attr_int(n, "end", r);
        if (s0 < 0)
            s0 += r;
        if (e0 < 0)
            e0 += r;
        s0 = s0 < 0 ? 0 : s0 > r ? r : s0;
        e0 = e0 < 0 ? 0 : e0 > r ? r : e0;
        int64_t len = e0 > s0 ? e0 - s0 : 0;
        occ_status s = out_init(o, CV_INT, 1, &len, cap, e);
        if (s)
            return s;
        for (int64_t k = 0; k < len; k++)
            o->i[k] = a->dims[s0 + k];
        return IMP_FOLD_DONE;
    }
    /* Everything else needs data for every present input. */
    for (uint32_t k = 0; k < nin; k++)
        if (in[k] && !in[k]->type)
            return IMP_FOLD_NO;
    if (!a)
        return IMP_FOLD_NO;
    const imp_cval *b = nin > 1 ? in[1] : NULL;
    int code = binop_code(op);
    if (!strcmp(op, "Mod")) /* swin_t's window padding: (w - W % w) % w */
        code = imp_attr_int(n, "fmod", 0) ? B_FMOD : B_MOD;
    if (code >= 0) {
        if (nin != 2 || !b)
            return IMP_FOLD_NO;
        return fold_binary(code, a, b, o, cap, e);
    }
    if (!strcmp(op, "Where")) {
        if (nin != 3 || !b || !in[2])
            return occ_fail(e, OCC_ERR_INVALID, "Where needs three inputs");
        return fold_where(a, b, in[2], o, cap, e);
    }
    if (!strcmp(op, "Neg") || !strcmp(op, "Abs") || !strcmp(op, "Floor") || !strcmp(op, "Ceil") ||
        !strcmp(op, "Sqrt") || !strcmp(op, "Reciprocal"))
        return fold_unary(op, a, o, cap, e);
    if (!strcmp(op, "Identity")) {
        occ_status s = out_init(o, a->type, a->ndim, a->dims, cap, e);
        if (s)
            return s;
        ecopy(o, 0, a, 0, a->count);
        return IMP_FOLD_DONE;
    }
    if (!strcmp(op, "Gather")) {
        if (!b)
            return occ_fail(e, OCC_ERR_INVALID, "Gather needs indices");
        return fold_gather(n, a, b, o, cap, e);
    }
    if (!strcmp(op, "Concat"))
        return fold_concat(n, in, nin, o, cap, e);
    if (!strcmp(op, "Expand"))
        return b ? fold_expand(a, b, o, cap, e) : IMP_FOLD_NO;
    if (!strcmp(op, "Split"))
        return fold_split(n, in, nin, out, nout, cap, e);
    if (!strcmp(op, "TopK"))
        return fold_topk(n, a, b, out, nout, cap, e);
    if (!strcmp(op, "Unsqueeze") || !strcmp(op, "Squeeze"))
        return fold_unsqueeze(n, a, b, o, cap, e, op[0] == 'S');
    if (!strcmp(op, "Cast"))
        return fold_cast(n, a, o, cap, e);
    if (!strcmp(op, "Slice"))
        return fold_slice(n, in, nin, o, cap, e);
    if (!strcmp(op, "Reshape"))
        return fold_reshape(n, a, b, o, cap, e);
    if (!strcmp(op, "Flatten")) {
        int64_t axis = imp_attr_int(n, "axis", 1);
        if (axis < -a->ndim || axis > a->ndim)
            return occ_fail(e, OCC_ERR_INVALID, "Flatten axis %lld out of range", (long long)axis);
        if (axis < 0)
            axis += a->ndim;
        int64_t dims[2] = {prod(a->dims, 0, (int32_t)axis), prod(a->dims, (int32_t)axis, a->ndim)};
        occ_status s = out_init(o, a->type, 2, dims, cap, e);
        if (s)
            return s;
        ecopy(o, 0, a, 0, a->count);
        return IMP_FOLD_DONE;
    }
    if (!strcmp(op, "Transpose"))
        return fold_transpose(n, a, o, cap, e);
    if (!strcmp(op, "ConstantOfShape"))
        return fold_cos(n, a, o, cap, e);
    if (!strcmp(op, "Range")) {
        if (nin != 3 || !b || !in[2])
            return occ_fail(e, OCC_ERR_INVALID, "Range needs three inputs");
        return fold_range(a, b, in[2], o, cap, e);
    }
    return IMP_FOLD_NO;
}

/* The run-time type of a folded result: the ONNX type rule of the op (the
 * values are held as float or int64 while folding). */
static uint32_t folded_dtype(const Onnx__NodeProto *n, const imp_cval *const *in, uint32_t nin,
                             const imp_cval *o)
{
    const char *op = n->op_type;
    if (!strcmp(op, "Shape") || !strcmp(op, "Size"))
        return OCC_DTYPE_INT64;
    if (!strcmp(op, "Equal") || !strcmp(op, "Less") || !strcmp(op, "Greater"))
        return OCC_DTYPE_BOOL;
    if (!strcmp(op, "Cast")) {
        uint32_t dt = imp_onnx_dtype((int32_t)imp_attr_int(n, "to", 0));
        return dt ? dt : imp_cval_dtype(o);
    }
    if (!strcmp(op, "ConstantOfShape"))
        return o->dt ? o->dt : imp_cval_dtype(o);
    const imp_cval *src = !strcmp(op, "Where") ? (nin > 1 ? in[1] : NULL) : (nin > 0 ? in[0] : NULL);
    if (src && src->type == o->type)
        return imp_cval_dtype(src);
    return imp_cval_dtype(o);
}

/* The folder computes in float32 and int64: a float64 value would lose its
 * precision there. A node reading float64 values or casting to float64 is
 * left to run (from its weights, in double); Shape and Size read no values,
 * ConstantOfShape keeps its value's exact bits (fold_cos). */
static int reads_float64(const Onnx__NodeProto *n, const imp_cval *const *in, uint32_t nin)
{
    if (!strcmp(n->op_type, "Shape") || !strcmp(n->op_type, "Size"))
        return 0;
    if (!strcmp(n->op_type, "Cast") && imp_attr_int(n, "to", 0) == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE)
        return 1;
    for (uint32_t k = 0; k < nin; k++)
        if (in[k] && in[k]->type && imp_cval_dtype(in[k]) == OCC_DTYPE_DOUBLE)
            return 1;
    return 0;
}

int imp_fold(const Onnx__NodeProto *n, int64_t opset, const imp_cval *const *in, uint32_t nin,
             imp_cval *out, uint32_t nout, occ_error *e)
{
    if (reads_float64(n, in, nin))
        return IMP_FOLD_NO;
    int r = fold_one(n, opset, in, nin, out, nout, e);
    if (r == IMP_FOLD_DONE)
        for (uint32_t k = 0; k < nout; k++)
            out[k].dt = !strcmp(n->op_type, "TopK") && k == 1
                            ? OCC_DTYPE_INT64 : folded_dtype(n, in, nin, &out[k]);
    return r;
}
