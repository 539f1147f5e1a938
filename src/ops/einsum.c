/* Einsum with one or two operands, the forms exporters emit: batched
 * matmul-like contractions ("bij,bjk->bik", "bhid,bhjd->bhij", "...ij,...jk->
 * ...ik"), transposes ("ij->ji"), sums over a letter ("ij->i"), outer
 * products, implicit outputs, diagonals (a letter repeated within one operand:
 * "ii->i", "...ii->...i", "ii" a trace). Refused with one line: more than two
 * operands, a letter repeated in the output, a letter whose sizes differ
 * (broadcasting of size-1 dims).
 *
 * Every letter is classified: batch (both operands and the output), m (first
 * operand and output), n (second and output), k (both, summed). Each operand
 * is first summed over its own letters the output does not keep, then laid
 * out as [batch, m, k] and [batch, k, n] by one generic permute-and-sum loop,
 * multiplied with oneDNN's sgemm per batch entry, and the [batch, m, n] result
 * permuted into the output's letter order. float64 operands take the same
 * steps in double, the product a plain loop (oneDNN has no dgemm). */
#include <stdlib.h>
#include <string.h>

#include "ops/ops_internal.h"

#define EIN_MAX_LETTERS 60 /* a-z, A-Z, then ellipsis dims */

typedef struct ein_term {
    int n;                        /* letters (= rank) */
    int code[OCC_MAX_DIMS];
} ein_term;

typedef struct ein_plan {
    int n_ops;
    ein_term in[2], out;
    int64_t dim[EIN_MAX_LETTERS]; /* size per letter code */
    /* two operands: */
    ein_term a_red, b_red;        /* operands without their private summed letters */
    ein_term a_mat, b_mat, c_mat; /* [batch.., m.., k..], [batch.., k.., n..], [batch.., m.., n..] */
    ein_term b_matT;              /* [batch.., n.., k..]: B already so is multiplied transposed */
    int64_t batch, m, n, k;
} ein_plan;

static int letter_code(char ch)
{
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a';
    if (ch >= 'A' && ch <= 'Z')
        return 26 + ch - 'A';
    return -1;
}

/* Parses one term against a rank (rank < 0: the output, ellipsis of n_ell
 * dims). */
static occ_status parse_term(const char *s, size_t len, int rank, int n_ell, ein_term *t,
                             int *ell_out, occ_error *e)
{
    int letters = 0, ell = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.') {
            if (ell || i + 2 >= len || s[i + 1] != '.' || s[i + 2] != '.')
                return occ_fail(e, OCC_ERR_INVALID, "Einsum: bad ellipsis in the equation");
            ell = 1;
            i += 2;
            continue;
        }
        if (letter_code(s[i]) < 0)
            return occ_fail(e, OCC_ERR_INVALID, "Einsum: '%c' is not a letter", s[i]);
        letters++;
    }
    int ne = rank >= 0 ? rank - letters : (ell ? n_ell : 0);
    if (rank >= 0 && (ne < 0 || (!ell && ne != 0)))
        return occ_fail(e, OCC_ERR_SHAPE, "Einsum: term '%.*s' does not match an operand of "
                        "rank %d", (int)len, s, rank);
    if (letters + ne > OCC_MAX_DIMS)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "Einsum: more than %d dims", OCC_MAX_DIMS);
    t->n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.') {
            /* ellipsis dims aligned to the right across operands */
            for (int j = 0; j < ne; j++)
                t->code[t->n++] = 52 + (n_ell - ne) + j;
            i += 2;
            continue;
        }
        t->code[t->n++] = letter_code(s[i]);
    }
    if (rank < 0) /* an output letter once (an input's repeats walk a diagonal) */
        for (int i = 0; i < t->n; i++)
            for (int j = 0; j < i; j++)
                if (t->code[i] == t->code[j])
                    return occ_fail(e, OCC_ERR_INVALID, "Einsum: output letter repeated");
    if (ell_out)
        *ell_out = ne;
    return OCC_OK;
}

static int term_has(const ein_term *t, int code)
{
    for (int i = 0; i < t->n; i++)
        if (t->code[i] == code)
            return 1;
    return 0;
}

/* Appends code to t unless it is there (a repeated letter is one dim). */
static void term_add(ein_term *t, int code)
{
    if (!term_has(t, code))
        t->code[t->n++] = code;
}

static occ_status ein_parse(const occ_model *m, const occ_node *n, ein_plan *p, occ_error *e)
{
    const char *eq;
    occ_status st = occ_ops_attr_str(n, "equation", "", &eq, e);
    if (st)
        return st;
    memset(p, 0, sizeof *p);
    char buf[256];
    size_t bl = 0;
    for (const char *c = eq; *c; c++) {
        if (*c == ' ')
            continue;
        if (bl + 1 >= sizeof buf)
            return occ_fail(e, OCC_ERR_INVALID, "Einsum equation too long");
        buf[bl++] = *c;
    }
    buf[bl] = 0;
    if (n->n_inputs < 1 || n->n_inputs > 2)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "Einsum with %u operands is not supported "
                        "(one or two)", n->n_inputs);
    p->n_ops = (int)n->n_inputs;
    char *arrow = strstr(buf, "->");
    size_t lhs_len = arrow ? (size_t)(arrow - buf) : bl;
    const char *terms[2];
    size_t lens[2];
    int nt = 0;
    size_t start = 0;
    for (size_t i = 0; i <= lhs_len; i++) {
        if (i == lhs_len || buf[i] == ',') {
            if (nt >= 2)
                return occ_fail(e, OCC_ERR_UNSUPPORTED, "Einsum with more than two operands is "
                                "not supported");
            terms[nt] = buf + start;
            lens[nt++] = i - start;
            start = i + 1;
        }
    }
    if (nt != p->n_ops)
        return occ_fail(e, OCC_ERR_INVALID, "Einsum equation has %d terms for %d inputs", nt,
                        p->n_ops);
    int n_ell = 0;
    for (int k = 0; k < nt; k++) {
        const occ_tensor *x = occ_ops_in(m, n, (uint32_t)k);
        int ne = 0;
        /* first pass to know this operand's ellipsis count */
        if ((st = parse_term(terms[k], lens[k], x->ndim, OCC_MAX_DIMS, &p->in[k], &ne, e)))
            return st;
        n_ell = ne > n_ell ? ne : n_ell;
    }
    for (int k = 0; k < EIN_MAX_LETTERS; k++)
        p->dim[k] = -1;
    for (int k = 0; k < nt; k++) {
        const occ_tensor *x = occ_ops_in(m, n, (uint32_t)k);
        if ((st = parse_term(terms[k], lens[k], x->ndim, n_ell, &p->in[k], NULL, e)))
            return st;
        for (int i = 0; i < p->in[k].n; i++) {
            int c = p->in[k].code[i];
            if (p->dim[c] >= 0 && p->dim[c] != x->dims[i])
                return occ_fail(e, OCC_ERR_UNSUPPORTED, "Einsum: a letter has sizes %lld and "
                                "%lld (broadcasting is not supported)", (long long)p->dim[c],
                                (long long)x->dims[i]);
            p->dim[c] = x->dims[i];
        }
    }
    if (arrow) {
        if ((st = parse_term(arrow + 2, strlen(arrow + 2), -1, n_ell, &p->out, NULL, e)))
            return st;
        for (int i = 0; i < p->out.n; i++)
            if (p->dim[p->out.code[i]] < 0)
                return occ_fail(e, OCC_ERR_INVALID, "Einsum: output letter not in any input");
    } else {
        /* implicit: ellipsis dims, then the letters seen once, alphabetically */
        for (int c = 52; c < 52 + n_ell; c++)
            p->out.code[p->out.n++] = c;
        for (int c = 0; c < 52; c++) {
            int cnt = 0; /* occurrences: "ii" is a trace, not "i" */
            for (int k = 0; k < nt; k++)
                for (int i = 0; i < p->in[k].n; i++)
                    cnt += p->in[k].code[i] == c;
            if (cnt == 1) {
                if (p->out.n >= OCC_MAX_DIMS)
                    return occ_fail(e, OCC_ERR_UNSUPPORTED, "Einsum: output rank too large");
                p->out.code[p->out.n++] = c;
            }
        }
    }
    if (p->n_ops == 1)
        return OCC_OK;
    /* two operands: classify and build the matrix layouts */
    const ein_term *A = &p->in[0], *B = &p->in[1], *O = &p->out;
    p->batch = p->m = p->n = p->k = 1;
    ein_term bat = {0}, mm = {0}, nn = {0}, kk = {0};
    for (int i = 0; i < A->n; i++) {
        int c = A->code[i], inb = term_has(B, c), ino = term_has(O, c);
        if (inb && ino)
            term_add(&bat, c);
        else if (ino)
            term_add(&mm, c);
        else if (inb)
            term_add(&kk, c);
    }
    for (int i = 0; i < B->n; i++) {
        int c = B->code[i];
        if (term_has(O, c) && !term_has(A, c))
            term_add(&nn, c);
    }
    p->a_red.n = p->b_red.n = 0;
    for (int i = 0; i < A->n; i++)
        if (term_has(B, A->code[i]) || term_has(O, A->code[i]))
            term_add(&p->a_red, A->code[i]);
    for (int i = 0; i < B->n; i++)
        if (term_has(A, B->code[i]) || term_has(O, B->code[i]))
            term_add(&p->b_red, B->code[i]);
    const ein_term *parts_a[3] = {&bat, &mm, &kk}, *parts_b[3] = {&bat, &kk, &nn},
                   *parts_c[3] = {&bat, &mm, &nn}, *parts_bt[3] = {&bat, &nn, &kk};
    ein_term *dst[4] = {&p->a_mat, &p->b_mat, &p->c_mat, &p->b_matT};
    const ein_term *const *src[4] = {parts_a, parts_b, parts_c, parts_bt};
    for (int t = 0; t < 4; t++) {
        dst[t]->n = 0;
        for (int q = 0; q < 3; q++)
            for (int i = 0; i < src[t][q]->n; i++)
                dst[t]->code[dst[t]->n++] = src[t][q]->code[i];
        if (dst[t]->n > OCC_MAX_DIMS)
            return occ_fail(e, OCC_ERR_UNSUPPORTED, "Einsum: too many dims");
    }
    for (int i = 0; i < bat.n; i++)
        p->batch *= p->dim[bat.code[i]];
    for (int i = 0; i < mm.n; i++)
        p->m *= p->dim[mm.code[i]];
    for (int i = 0; i < nn.n; i++)
        p->n *= p->dim[nn.code[i]];
    for (int i = 0; i < kk.n; i++)
        p->k *= p->dim[kk.code[i]];
    return OCC_OK;
}

static occ_status ein_infer(occ_model *m, const occ_node *n, occ_error *e)
{
    ein_plan p;
    occ_status st = ein_parse(m, n, &p, e);
    if (st)
        return st;
    if (p.n_ops == 2 && occ_ops_dtype(occ_ops_in(m, n, 0)) != occ_ops_dtype(occ_ops_in(m, n, 1)))
        return occ_fail(e, OCC_ERR_INVALID, "operands are %s and %s (must be one type)",
                        occ_dtype_name(occ_ops_dtype(occ_ops_in(m, n, 0))),
                        occ_dtype_name(occ_ops_dtype(occ_ops_in(m, n, 1))));
    int64_t d[OCC_MAX_DIMS];
    for (int i = 0; i < p.out.n; i++)
        d[i] = p.dim[p.out.code[i]];
    return occ_ops_set_out(m, n, 0, p.out.n, d, e);
}

static uint64_t ein_flops(const occ_model *m, const occ_node *n)
{
    ein_plan p;
    if (ein_parse(m, n, &p, NULL))
        return 0;
    if (p.n_ops == 1)
        return (uint64_t)occ_ops_count(occ_ops_in(m, n, 0)->ndim, occ_ops_in(m, n, 0)->dims);
    return 2u * (uint64_t)p.batch * (uint64_t)p.m * (uint64_t)p.n * (uint64_t)p.k;
}

typedef struct ein_state {
    ein_plan p;
    /* operands and result already laid out as the product takes them (an
     * attention's "bhid,bhjd->bhij"): read and written in place, no buffer.
     * maxvit_t's 44 Einsums held 84 MB of copies for the model's life. */
    int a_direct, b_direct, b_trans, c_direct;
    int f64; /* operands are float64 */
    void *a_red, *b_red, *a, *b, *c;
} ein_state;

static void ein_destroy(void *v)
{
    ein_state *s = v;
    if (!s)
        return;
    occ_ops_free(s->a_red);
    occ_ops_free(s->b_red);
    occ_ops_free(s->a);
    occ_ops_free(s->b);
    occ_ops_free(s->c);
    free(s);
}

static uint64_t term_count(const ein_plan *p, const ein_term *t)
{
    uint64_t c = 1;
    for (int i = 0; i < t->n; i++)
        c *= (uint64_t)p->dim[t->code[i]];
    return c;
}

static int same_term(const ein_term *x, const ein_term *y)
{
    if (x->n != y->n)
        return 0;
    for (int i = 0; i < x->n; i++)
        if (x->code[i] != y->code[i])
            return 0;
    return 1;
}

static occ_status ein_prepare(occ_op_prep *pp, void **state, occ_error *e)
{
    ein_state *s = calloc(1, sizeof *s);
    if (!s)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    occ_status st = ein_parse(pp->m, pp->n, &s->p, e);
    if (st) {
        free(s);
        return st;
    }
    s->f64 = occ_ops_dtype(occ_ops_in(pp->m, pp->n, 0)) == OCC_DTYPE_DOUBLE;
    if (s->p.n_ops == 2) {
        const ein_plan *p = &s->p;
        const uint64_t es = s->f64 ? 8u : 4u;
        /* (a repeated or privately summed letter makes the terms differ) */
        s->a_direct = same_term(&p->in[0], &p->a_mat);
        s->b_direct = same_term(&p->in[1], &p->b_mat);
        s->b_trans = !s->b_direct && same_term(&p->in[1], &p->b_matT);
        s->c_direct = same_term(&p->c_mat, &p->out);
        int bufs_a = !s->a_direct, bufs_b = !s->b_direct && !s->b_trans;
        if (bufs_a) {
            s->a_red = occ_ops_alloc(term_count(p, &p->a_red) * es);
            s->a = occ_ops_alloc(term_count(p, &p->a_mat) * es);
        }
        if (bufs_b) {
            s->b_red = occ_ops_alloc(term_count(p, &p->b_red) * es);
            s->b = occ_ops_alloc(term_count(p, &p->b_mat) * es);
        }
        if (!s->c_direct)
            s->c = occ_ops_alloc(term_count(p, &p->c_mat) * es);
        if ((bufs_a && (!s->a_red || !s->a)) || (bufs_b && (!s->b_red || !s->b)) ||
            (!s->c_direct && !s->c)) {
            ein_destroy(s);
            return occ_fail(e, OCC_ERR_NOMEM, "out of memory for Einsum");
        }
    }
    *state = s;
    return OCC_OK;
}

/* out (letters `to`, zeroed here) = sum over the letters of `from` that `to`
 * lacks of in (letters `from`). Every letter of `to` is in `from`. A letter
 * repeated in `from` walks its diagonal: one index whose input stride is the
 * sum of its positions' strides. Instanced for float and double. */
#define PERMUTE_SUM(NAME, T)                                                              \
    static void NAME(const ein_plan *p, const ein_term *from, const T *in,                \
                     const ein_term *to, T *out)                                          \
    {                                                                                     \
        int64_t ostride[OCC_MAX_DIMS], istride[OCC_MAX_DIMS], dims[OCC_MAX_DIMS];         \
        int64_t pos[OCC_MAX_DIMS], idx[OCC_MAX_DIMS] = {0};                               \
        int code[OCC_MAX_DIMS], r = 0;                                                    \
        int64_t st = 1;                                                                   \
        for (int i = from->n - 1; i >= 0; i--) {                                          \
            pos[i] = st;                                                                  \
            st *= p->dim[from->code[i]];                                                  \
        }                                                                                 \
        for (int i = 0; i < from->n; i++) {                                               \
            int j = 0;                                                                    \
            while (j < r && code[j] != from->code[i])                                     \
                j++;                                                                      \
            if (j == r) {                                                                 \
                code[r] = from->code[i];                                                  \
                dims[r] = p->dim[code[r]];                                                \
                istride[r++] = 0;                                                         \
            }                                                                             \
            istride[j] += pos[i];                                                         \
        }                                                                                 \
        uint64_t total = 1, ocount = term_count(p, to);                                   \
        for (int i = 0; i < r; i++) {                                                     \
            total *= (uint64_t)dims[i];                                                   \
            int64_t s2 = 1;                                                               \
            ostride[i] = 0;                                                               \
            for (int j = to->n - 1; j >= 0; j--) {                                        \
                if (to->code[j] == code[i]) {                                             \
                    ostride[i] = s2;                                                      \
                    break;                                                                \
                }                                                                         \
                s2 *= p->dim[to->code[j]];                                                \
            }                                                                             \
        }                                                                                 \
        memset(out, 0, ocount * sizeof(T));                                               \
        int64_t off = 0, ioff = 0;                                                        \
        for (uint64_t q = 0; q < total; q++) {                                            \
            out[off] += in[ioff];                                                         \
            for (int d = r - 1; d >= 0; d--) {                                            \
                idx[d]++;                                                                 \
                off += ostride[d];                                                        \
                ioff += istride[d];                                                       \
                if (idx[d] < dims[d])                                                     \
                    break;                                                                \
                off -= ostride[d] * dims[d];                                              \
                ioff -= istride[d] * dims[d];                                             \
                idx[d] = 0;                                                               \
            }                                                                             \
        }                                                                                 \
    }
PERMUTE_SUM(permute_sum, float)
PERMUTE_SUM(permute_sum_d, double)
#undef PERMUTE_SUM

static void ein_run_f64(ein_state *s, const occ_op_exec *x)
{
    const ein_plan *p = &s->p;
    const double *a = x->in[0];
    double *y = x->out[0];
    if (p->n_ops == 1) {
        permute_sum_d(p, &p->in[0], a, &p->out, y);
        return;
    }
    const double *am = a, *bm = x->in[1];
    double *cm = s->c_direct ? y : s->c;
    if (!s->a_direct) {
        permute_sum_d(p, &p->in[0], a, &p->a_red, s->a_red);
        permute_sum_d(p, &p->a_red, s->a_red, &p->a_mat, s->a);
        am = s->a;
    }
    if (!s->b_direct && !s->b_trans) {
        permute_sum_d(p, &p->in[1], x->in[1], &p->b_red, s->b_red);
        permute_sum_d(p, &p->b_red, s->b_red, &p->b_mat, s->b);
        bm = s->b;
    }
    const int64_t M = p->m, N = p->n, K = p->k;
    for (int64_t bi = 0; bi < p->batch; bi++)
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double acc = 0.0;
                for (int64_t k = 0; k < K; k++)
                    acc += am[(bi * M + i) * K + k] *
                           (s->b_trans ? bm[(bi * N + j) * K + k] : bm[(bi * K + k) * N + j]);
                cm[(bi * M + i) * N + j] = acc;
            }
    if (!s->c_direct)
        permute_sum_d(p, &p->c_mat, cm, &p->out, y);
}

static occ_status ein_run(void *state, const occ_op_exec *x, occ_error *e)
{
    ein_state *s = state;
    const ein_plan *p = &s->p;
    if (s->f64) {
        ein_run_f64(s, x);
        return OCC_OK;
    }
    const float *a = x->in[0];
    float *y = x->out[0];
    if (p->n_ops == 1) {
        permute_sum(p, &p->in[0], a, &p->out, y);
        return OCC_OK;
    }
    const float *b = x->in[1];
    const float *am = a, *bm = b;
    float *cm = s->c_direct ? y : s->c;
    if (!s->a_direct) {
        permute_sum(p, &p->in[0], a, &p->a_red, s->a_red);
        permute_sum(p, &p->a_red, s->a_red, &p->a_mat, s->a);
        am = s->a;
    }
    if (!s->b_direct && !s->b_trans) {
        permute_sum(p, &p->in[1], b, &p->b_red, s->b_red);
        permute_sum(p, &p->b_red, s->b_red, &p->b_mat, s->b);
        bm = s->b;
    }
    const int64_t M = p->m, N = p->n, K = p->k;
    for (int64_t bi = 0; bi < p->batch; bi++) {
        occ_status st = occ_dnnl_check(
            dnnl_sgemm('N', s->b_trans ? 'T' : 'N', M, N, K, 1.0f, am + bi * M * K, K,
                       bm + bi * K * N, s->b_trans ? K : N, 0.0f, cm + bi * M * N, N),
            "sgemm", e);
        if (st)
            return st;
    }
    if (!s->c_direct)
        permute_sum(p, &p->c_mat, cm, &p->out, y);
    return OCC_OK;
}

const occ_op_vtable occ_op_einsum = {
    .op = "Einsum",
    .min_in = 1,
    .max_in = 2,
    .n_out = 1,
    .n_in_types = 1,
    .in_types = {OCC_DTM_FLOAT | OCC_DTM_F64},
    .infer = ein_infer,
    .flops = ein_flops,
    .prepare = ein_prepare,
    .run = ein_run,
    .destroy = ein_destroy,
};
