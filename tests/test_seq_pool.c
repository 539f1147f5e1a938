/* The operators' thread pool and the kernels moved onto it (issue 13, 2
 * threads):
 *  - occ_par_for runs every index exactly once, for any count and chunk,
 *    at 1, 2 and 3 threads; a call from inside a task runs inline; callers
 *    on several threads at once (engines of a server pool) all complete,
 *    over thousands of jobs (the open/close handshake of par.c);
 *  - the panel GEMM at 2 threads with blocks of rows (m >= 192) and without;
 *  - vecmath.c's plain-B GEMM (attention's products), softmax row,
 *    moments / normalize / affine against double references over odd
 *    sizes;
 *  - through the engine at 2 threads: a batched MatMul (with broadcast B
 *    and a partial last panel), Softmax, LayerNormalization and
 *    InstanceNormalization against naive references. */
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "occ/engine.h"
#include "ops/par.h"
#include "ops/vecmath.h"
#include "test_ops_util.h"

/* ---- the pool ---- */

typedef struct cover {
    _Atomic int *hits;
    _Atomic int64_t calls;
    int nested; /* each task also runs a small occ_par_for of its own */
    _Atomic int64_t inner;
} cover;

static void inner_fn(void *ctx, int64_t i0, int64_t i1)
{
    cover *c = ctx;
    atomic_fetch_add(&c->inner, i1 - i0);
}

static void cover_fn(void *ctx, int64_t i0, int64_t i1)
{
    cover *c = ctx;
    atomic_fetch_add(&c->calls, 1);
    for (int64_t i = i0; i < i1; i++)
        atomic_fetch_add(&c->hits[i], 1);
    if (c->nested)
        occ_par_for(10, 1, inner_fn, c); /* inline: already inside a job */
}

static int covered_once(int64_t n, int64_t grain, int nested)
{
    cover c = {.nested = nested};
    c.hits = calloc((size_t)(n > 0 ? n : 1), sizeof *c.hits);
    occ_par_for(n, grain, cover_fn, &c);
    int ok = 1;
    for (int64_t i = 0; i < n; i++)
        ok &= atomic_load(&c.hits[i]) == 1;
    if (nested)
        ok &= atomic_load(&c.inner) == 10 * atomic_load(&c.calls);
    free(c.hits);
    return ok;
}

static void test_par_cover(void)
{
    const int64_t ns[] = {0, 1, 2, 7, 64, 1000, 4097};
    const int64_t gs[] = {0, 1, 3, 64, 5000};
    for (int t = 1; t <= 3; t++) {
        omp_set_num_threads(t);
        CHECK(occ_par_threads() == t);
        for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++)
            for (size_t b = 0; b < sizeof gs / sizeof gs[0]; b++)
                CHECK_MSG(covered_once(ns[a], gs[b], (int)(a + b) % 2), "t %d n %lld grain %lld",
                          t, (long long)ns[a], (long long)gs[b]);
    }
    /* many short jobs back to back: workers join late, leave early */
    omp_set_num_threads(2);
    int ok = 1;
    for (int r = 0; r < 3000; r++)
        ok &= covered_once(1 + r % 37, 1, 0);
    CHECK_MSG(ok, "a short job lost or repeated an index");
}

typedef struct caller_arg {
    int ok;
} caller_arg;

static void *caller(void *p)
{
    caller_arg *a = p;
    omp_set_num_threads(2); /* per thread, as each engine sets its own */
    a->ok = 1;
    for (int r = 0; r < 500; r++)
        a->ok &= covered_once(50 + r % 13, 1 + r % 4, r % 3 == 0);
    return NULL;
}

static void test_par_concurrent_callers(void)
{
    enum { NC = 3 };
    pthread_t th[NC];
    caller_arg args[NC];
    for (int i = 0; i < NC; i++)
        CHECK(pthread_create(&th[i], NULL, caller, &args[i]) == 0);
    for (int i = 0; i < NC; i++) {
        pthread_join(th[i], NULL);
        CHECK_MSG(args[i].ok, "caller %d saw a wrong cover", i);
    }
}

/* ---- kernels ---- */

static void test_vec_plain_gemm(void)
{
    const int ms[] = {1, 7, 50}, ks[] = {1, 37, 300}, ns[] = {1, 16, 45, 197};
    for (int a0 = 0; a0 < 3; a0++)
        for (int b0 = 0; b0 < 3; b0++)
            for (int c0 = 0; c0 < 4; c0++) {
                const int m = ms[a0], k = ks[b0], n = ns[c0], ldb = n + 3, ldy = n + 1;
                float *a = rand_buf(m * k), *b = rand_buf(k * ldb);
                float *y = calloc((size_t)(m * ldy), sizeof *y);
                occ_vec_gemm_plain(a, m, k, k, b, ldb, n, y, ldy);
                double worst = 0;
                for (int i = 0; i < m; i++)
                    for (int j = 0; j < n; j++) {
                        double s = 0;
                        for (int q = 0; q < k; q++)
                            s += (double)a[i * k + q] * b[q * ldb + j];
                        worst = fmax(worst, fabs(y[i * ldy + j] - s));
                    }
                CHECK_MSG(worst < 1e-4, "plain %dx%dx%d: %g", m, k, n, worst);
                free(a), free(b), free(y);
            }
}

static void test_vec_rows(void)
{
    const int lens[] = {1, 7, 8, 130, 3199};
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        const int n = lens[li];
        float *x = rand_buf(n), *y = malloc(sizeof(float) * (size_t)n);
        float *sc = rand_buf(n), *bi = rand_buf(n);
        for (int i = 0; i < n; i++)
            x[i] = 8.0f * x[i] + 3.0f; /* an offset: moments must not lose it */
        if (n > 7)
            x[3] = -INFINITY; /* a masked score */
        occ_vec_softmax(x, y, n);
        double mx = -INFINITY, sum = 0, worst = 0;
        for (int i = 0; i < n; i++)
            mx = fmax(mx, x[i]);
        for (int i = 0; i < n; i++)
            sum += exp((double)x[i] - mx);
        for (int i = 0; i < n; i++)
            worst = fmax(worst, fabs(y[i] - exp((double)x[i] - mx) / sum));
        CHECK_MSG(worst < 1e-6, "softmax len %d: %g", n, worst);
        if (n > 7)
            x[3] = 1.5f;
        double m = 0, v = 0;
        for (int i = 0; i < n; i++)
            m += x[i];
        m /= n;
        for (int i = 0; i < n; i++)
            v += (x[i] - m) * (x[i] - m);
        v /= n;
        float fm, fv;
        occ_vec_moments(x, n, &fm, &fv);
        CHECK_MSG(fabs(fm - m) < 1e-5 * (1 + fabs(m)) && fabs(fv - v) < 1e-4 * (1 + v),
                  "moments len %d: %g %g vs %g %g", n, fm, fv, m, v);
        const float inv = 1.0f / sqrtf(fv + 1e-5f);
        occ_vec_normalize(x, y, n, fm, inv, sc, bi);
        worst = 0;
        for (int i = 0; i < n; i++)
            worst = fmax(worst, fabs(y[i] - ((x[i] - m) / sqrt(v + 1e-5) * sc[i] + bi[i])));
        CHECK_MSG(worst < 1e-5, "normalize len %d: %g", n, worst);
        occ_vec_normalize(x, y, n, fm, inv, sc, NULL);
        worst = 0;
        for (int i = 0; i < n; i++)
            worst = fmax(worst, fabs(y[i] - ((x[i] - m) / sqrt(v + 1e-5) * sc[i])));
        CHECK_MSG(worst < 1e-5, "normalize (no bias) len %d: %g", n, worst);
        occ_vec_affine(x, y, n, 0.5f, -2.0f);
        worst = 0;
        for (int i = 0; i < n; i++)
            worst = fmax(worst, fabs(y[i] - (x[i] * 0.5 - 2.0)));
        CHECK_MSG(worst < 1e-5, "affine len %d: %g", n, worst);
        free(x), free(y), free(sc), free(bi);
    }
}

/* the panel GEMM at 2 threads over many rows (blocks of rows as well as
 * groups of panels) and few (groups only), bias row inside */
static void test_panels_rows(void)
{
    omp_set_num_threads(2);
    const int ms[] = {5, 250}, ks[] = {300}, ns[] = {45, 200};
    for (int a0 = 0; a0 < 2; a0++)
        for (int c0 = 0; c0 < 2; c0++) {
            const int m = ms[a0], k = ks[0], n = ns[c0], np = (n + 15) / 16;
            float *a = rand_buf(m * k), *w = rand_buf(k * n), *bv = rand_buf(n);
            float *p = calloc((size_t)(np * 16 * (k + 1)), sizeof *p);
            for (int j = 0; j < np; j++)
                for (int i = 0; i <= k; i++)
                    for (int q = 0; q < 16 && j * 16 + q < n; q++)
                        p[(j * (k + 1) + i) * 16 + q] =
                            i < k ? w[i * n + j * 16 + q] : bv[j * 16 + q];
            float *y = calloc((size_t)(m * n), sizeof *y);
            occ_vec_gemm_panels(a, m, k, k, p, np, 1, 0, n, y, n);
            double worst = 0;
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++) {
                    double t = bv[j];
                    for (int q = 0; q < k; q++)
                        t += (double)a[i * k + q] * w[q * n + j];
                    worst = fmax(worst, fabs(y[i * n + j] - t));
                }
            CHECK_MSG(worst < 1e-4, "panels %dx%dx%d at 2 threads: %g", m, k, n, worst);
            free(a), free(w), free(bv), free(p), free(y);
        }
}

/* ---- operators through the engine at 2 threads ---- */

static float *run2(tb *b, const float *const *ins)
{
    occ_error e = {0};
    occ_engine *eng = NULL;
    occ_engine_opts o = {.threads = 2};
    occ_status st = occ_engine_create(&b->m, &o, tb_read, b, &eng, &e);
    CHECK_MSG(st == OCC_OK, "create: %s", e.msg);
    if (st)
        return NULL;
    const occ_tensor *y = &b->t[b->gout[0]];
    float *out = malloc((size_t)y->size + 4);
    float *outs[1] = {out};
    st = occ_engine_run(eng, (const void *const *)ins, (void *const *)outs, &e);
    CHECK_MSG(st == OCC_OK, "run: %s", e.msg);
    occ_engine_free(eng);
    if (st) {
        free(out);
        return NULL;
    }
    return out;
}

static void test_batched_matmul(void)
{
    /* heads x queries x keys, B broadcast over the first dim in the second
     * case; 197 columns: a partial last panel */
    enum { H = 3, M = 50, K = 37, N = 197 };
    for (int bc = 0; bc < 2; bc++) {
        static tb b;
        tb_init(&b);
        int64_t da[4] = {2, H, M, K}, db4[4] = {2, H, K, N}, db3[3] = {H, K, N};
        float *a = rand_buf(2 * H * M * K), *bm = rand_buf(2 * H * K * N);
        int ia = tb_input(&b, "a", 4, da), ib = bc ? tb_input(&b, "b", 3, db3)
                                                   : tb_input(&b, "b", 4, db4);
        int y = tb_act(&b, "y"), in[2] = {ia, ib};
        tb_node(&b, "MatMul", 2, in, y, 0, NULL);
        tb_output(&b, y);
        occ_error e = {0};
        CHECK_MSG(tb_finish(&b, &e) == OCC_OK, "%s", e.msg);
        static float ref[2 * H * M * N];
        for (int z = 0; z < 2 * H; z++)
            for (int i = 0; i < M; i++)
                for (int j = 0; j < N; j++) {
                    const float *bz = bm + (bc ? z % H : z) * K * N;
                    double s = 0;
                    for (int q = 0; q < K; q++)
                        s += (double)a[(z * M + i) * K + q] * bz[q * N + j];
                    ref[(z * M + i) * N + j] = (float)s;
                }
        const float *ins[2] = {a, bm};
        float *out = run2(&b, ins);
        if (out)
            CHECK_MSG(max_rel_err(out, ref, 2 * H * M * N) < 1e-5, "batched matmul bc %d: %g",
                      bc, max_rel_err(out, ref, 2 * H * M * N));
        free(out), free(a), free(bm);
        tb_free(&b);
    }
}

static void test_rows_ops(void)
{
    /* Softmax over [2, 3, 70, 130] (last axis), LayerNormalization over
     * [300, 250] with scale and bias, InstanceNormalization [1, 40, 2000] */
    {
        static tb b;
        tb_init(&b);
        int64_t d[4] = {2, 3, 70, 130};
        const int n = 2 * 3 * 70 * 130;
        float *x = rand_buf(n);
        for (int i = 0; i < n; i++)
            x[i] *= 10.0f;
        int ix = tb_input(&b, "x", 4, d), y = tb_act(&b, "y"), in[1] = {ix};
        tb_node(&b, "Softmax", 1, in, y, 0, NULL);
        tb_output(&b, y);
        occ_error e = {0};
        CHECK_MSG(tb_finish(&b, &e) == OCC_OK, "%s", e.msg);
        float *ref = malloc(sizeof(float) * n);
        for (int r = 0; r < n / 130; r++) {
            double mx = -INFINITY, s = 0;
            for (int i = 0; i < 130; i++)
                mx = fmax(mx, x[r * 130 + i]);
            for (int i = 0; i < 130; i++)
                s += exp(x[r * 130 + i] - mx);
            for (int i = 0; i < 130; i++)
                ref[r * 130 + i] = (float)(exp(x[r * 130 + i] - mx) / s);
        }
        const float *ins[1] = {x};
        float *out = run2(&b, ins);
        if (out)
            CHECK_MSG(max_rel_err(out, ref, n) < 1e-6, "softmax: %g", max_rel_err(out, ref, n));
        free(out), free(x), free(ref);
        tb_free(&b);
    }
    {
        enum { R = 300, L = 250 };
        static tb b;
        tb_init(&b);
        int64_t d[2] = {R, L}, dw[1] = {L};
        float *x = rand_buf(R * L), *sc = rand_buf(L), *bi = rand_buf(L);
        int ix = tb_input(&b, "x", 2, d), is = tb_weight(&b, "s", 1, dw, sc),
            ib = tb_weight(&b, "b", 1, dw, bi), y = tb_act(&b, "y"), in[3] = {ix, is, ib};
        occ_attr at[2] = {A_INT("axis", -1), A_FLOAT("epsilon", 1e-5f)};
        tb_node(&b, "LayerNormalization", 3, in, y, 2, at);
        tb_output(&b, y);
        occ_error e = {0};
        CHECK_MSG(tb_finish(&b, &e) == OCC_OK, "%s", e.msg);
        static float ref[R * L];
        for (int r = 0; r < R; r++) {
            double m = 0, v = 0;
            for (int i = 0; i < L; i++)
                m += x[r * L + i];
            m /= L;
            for (int i = 0; i < L; i++)
                v += (x[r * L + i] - m) * (x[r * L + i] - m);
            v /= L;
            for (int i = 0; i < L; i++)
                ref[r * L + i] = (float)((x[r * L + i] - m) / sqrt(v + 1e-5) * sc[i] + bi[i]);
        }
        const float *ins[1] = {x};
        float *out = run2(&b, ins);
        if (out)
            CHECK_MSG(max_rel_err(out, ref, R * L) < 1e-5, "layernorm: %g",
                      max_rel_err(out, ref, R * L));
        free(out), free(x), free(sc), free(bi);
        tb_free(&b);
    }
    {
        enum { C = 40, L = 2000 };
        static tb b;
        tb_init(&b);
        int64_t d[3] = {1, C, L}, dw[1] = {C};
        float *x = rand_buf(C * L), *sc = rand_buf(C), *bi = rand_buf(C);
        int ix = tb_input(&b, "x", 3, d), is = tb_weight(&b, "s", 1, dw, sc),
            ib = tb_weight(&b, "b", 1, dw, bi), y = tb_act(&b, "y"), in[3] = {ix, is, ib};
        tb_node(&b, "InstanceNormalization", 3, in, y, 0, NULL);
        tb_output(&b, y);
        occ_error e = {0};
        CHECK_MSG(tb_finish(&b, &e) == OCC_OK, "%s", e.msg);
        static float ref[C * L];
        for (int c = 0; c < C; c++) {
            double m = 0, v = 0;
            for (int i = 0; i < L; i++)
                m += x[c * L + i];
            m /= L;
            for (int i = 0; i < L; i++)
                v += (x[c * L + i] - m) * (x[c * L + i] - m);
            v /= L;
            for (int i = 0; i < L; i++)
                ref[c * L + i] = (float)((x[c * L + i] - m) / sqrt(v + 1e-5) * sc[c] + bi[c]);
        }
        const float *ins[1] = {x};
        float *out = run2(&b, ins);
        if (out)
            CHECK_MSG(max_rel_err(out, ref, C * L) < 1e-5, "instancenorm: %g",
                      max_rel_err(out, ref, C * L));
        free(out), free(x), free(sc), free(bi);
        tb_free(&b);
    }
}

int main(void)
{
    RUN(test_par_cover);
    RUN(test_par_concurrent_callers);
    RUN(test_vec_plain_gemm);
    RUN(test_vec_rows);
    RUN(test_panels_rows);
    RUN(test_batched_matmul);
    RUN(test_rows_ops);
    TEST_DONE();
}
