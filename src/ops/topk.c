/* TopK: the k largest (or smallest) elements along "axis" and their int64
 * indices; k from attribute "k" (the constant input, folded at pack: it sets
 * the output shape). Sorted output; ties go to the lower index (a stable
 * order, as ONNX specifies). Float (NaN ranks last) or integer values. The
 * indices output may be absent (nobody reads it). */
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"

typedef struct topk_geom {
    int ax, largest;
    int64_t k;
} topk_geom;

static occ_status topk_get(const occ_model *m, const occ_node *n, topk_geom *g, occ_error *e)
{
    const occ_tensor *x = occ_ops_in(m, n, 0);
    int64_t axis, largest, sorted;
    const occ_attr *ka = occ_ops_attr(n, "k");
    occ_status st;
    if (n->n_inputs > 1 && n->inputs[1] >= 0)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "a run-time k is not supported (it sets the "
                        "output shape: a constant, folded at pack)");
    if ((st = occ_ops_attr_int(n, "axis", -1, &axis, e)) ||
        (st = occ_ops_attr_int(n, "largest", 1, &largest, e)) ||
        (st = occ_ops_attr_int(n, "sorted", 1, &sorted, e)))
        return st;
    if (!ka || !((ka->type == OCC_ATTR_INT) || (ka->type == OCC_ATTR_INTS && ka->count == 1 && ka->ints)))
        return occ_fail(e, OCC_ERR_INVALID, "missing k (an int, or one int)");
    g->k = ka->type == OCC_ATTR_INT ? ka->i : ka->ints[0];
    if (x->ndim < 1)
        return occ_fail(e, OCC_ERR_SHAPE, "input is a scalar");
    if ((st = occ_ops_axis(axis, x->ndim, 0, &g->ax, e)))
        return st;
    if (g->k < 1 || g->k > x->dims[g->ax])
        return occ_fail(e, OCC_ERR_INVALID, "k = %lld is outside 1..%lld (the axis)",
                        (long long)g->k, (long long)x->dims[g->ax]);
    g->largest = largest != 0;
    (void)sorted; /* always sorted: a valid order for sorted = 0 too */
    return OCC_OK;
}

static occ_status topk_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    topk_geom g;
    occ_status st = topk_get(m, n, &g, e);
    if (st)
        return st;
    const occ_tensor *x = occ_ops_in(m, n, 0);
    int64_t d[OCC_MAX_DIMS];
    memcpy(d, x->dims, sizeof d);
    d[g.ax] = g.k;
    if ((st = occ_ops_set_out(m, n, 0, x->ndim, d, e)))
        return st;
    if (n->n_outputs > 1) {
        occ_ops_set_dtype(m, n, 1, OCC_DTYPE_INT64);
        st = occ_ops_set_out(m, n, 1, x->ndim, d, e);
    }
    return st;
}

typedef struct topk_state {
    topk_geom g;
    uint32_t dtype;
    size_t esize;
    int64_t outer, len, inner;
    int64_t *order;           /* len entries: working index list */
    int with_indices;         /* the indices output exists */
} topk_state;

static void topk_destroy(void *v)
{
    topk_state *s = v;
    if (s)
        occ_ops_free(s->order);
    free(s);
}

static occ_status topk_prepare(occ_op_prep *p, void **state, occ_error *e)
{
    topk_state *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    occ_status st = topk_get(p->m, p->n, &s->g, e);
    if (st) {
        topk_destroy(s);
        return st;
    }
    const occ_tensor *x = occ_ops_in(p->m, p->n, 0);
    s->dtype = occ_ops_dtype(x);
    s->esize = occ_ops_esize(x);
    s->outer = s->inner = 1;
    for (int d = 0; d < s->g.ax; d++)
        s->outer *= x->dims[d];
    for (int d = s->g.ax + 1; d < x->ndim; d++)
        s->inner *= x->dims[d];
    s->len = x->dims[s->g.ax];
    s->with_indices = p->n->n_outputs > 1;
    if (!(s->order = occ_ops_alloc((uint64_t)s->len * sizeof(int64_t)))) {
        topk_destroy(s);
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    }
    *state = s;
    return OCC_OK;
}

/* Does element i rank before element j (the better value; ties: lower index)? */
static int ranks_before(const topk_state *s, const void *in, int64_t base, int64_t i, int64_t j)
{
    int64_t a = base + i * s->inner, b = base + j * s->inner;
    int c;
    if (s->dtype == OCC_DTYPE_FLOAT) {
        float x = ((const float *)in)[a], y = ((const float *)in)[b];
        int nx = x != x, ny = y != y;
        if (nx || ny) /* NaN ranks last, whatever the direction */
            return nx != ny ? ny : i < j;
        c = x > y ? 1 : x < y ? -1 : 0;
    } else if (s->dtype == OCC_DTYPE_DOUBLE) {
        double x = ((const double *)in)[a], y = ((const double *)in)[b];
        int nx = x != x, ny = y != y;
        if (nx || ny) /* NaN ranks last, whatever the direction */
            return nx != ny ? ny : i < j;
        c = x > y ? 1 : x < y ? -1 : 0;
    } else {
        int64_t x = occ_ops_load_key(s->dtype, in, a), y = occ_ops_load_key(s->dtype, in, b);
        c = x > y ? 1 : x < y ? -1 : 0;
    }
    if (!s->g.largest)
        c = -c;
    return c > 0 || (c == 0 && i < j);
}

static occ_status topk_run(void *state, const occ_op_exec *x, occ_error *e)
{
    topk_state *s = state;
    int64_t *ord = s->order, k = s->g.k;
    for (int64_t a = 0; a < s->outer; a++)
        for (int64_t c = 0; c < s->inner; c++) {
            int64_t base = a * s->len * s->inner + c;
            /* selection of the k best by insertion into a sorted prefix */
            int64_t have = 0;
            for (int64_t i = 0; i < s->len; i++) {
                if (have == k && !ranks_before(s, x->in[0], base, i, ord[k - 1]))
                    continue;
                int64_t at = have < k ? have++ : k - 1;
                while (at > 0 && ranks_before(s, x->in[0], base, i, ord[at - 1])) {
                    ord[at] = ord[at - 1];
                    at--;
                }
                ord[at] = i;
            }
            for (int64_t j = 0; j < k; j++) {
                int64_t o = (a * k + j) * s->inner + c;
                memcpy((uint8_t *)x->out[0] + (size_t)o * s->esize,
                       (const uint8_t *)x->in[0] + (size_t)(base + ord[j] * s->inner) * s->esize,
                       s->esize);
                if (s->with_indices)
                    ((int64_t *)x->out[1])[o] = ord[j];
            }
        }
    return OCC_OK;
}

const occ_op_vtable occ_op_topk = {
    .op = "TopK",
    .min_in = 1,
    .max_in = 2,
    .n_out = 2,
    .min_out = 1, /* Split: any count; TopK: indices may go unread */
    .n_in_types = 2,
    .in_types = {OCC_DTM_NUM, OCC_DTM_INDEX},
    .infer = topk_infer,
    .prepare = topk_prepare,
    .run = topk_run,
    .destroy = topk_destroy,
};
