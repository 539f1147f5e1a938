/* The sequence models' kernels (issue 13, speed):
 *  - vecmath.c's AVX2 functions (GELU, erf, sigmoid, tanh, softmax rows,
 *    GEMV, the 6x16 panel GEMM) against double-precision references, over
 *    odd sizes that exercise every tail;
 *  - MatMul with occ_packB (a Linear's weight in panels of 16 columns, as
 *    the packer stores it): native equals a naive product, and occlumency
 *    with the weight streamed in pieces of panels equals native bit for bit
 *    (each output column is a whole dot product whatever the pieces);
 *  - OccIm2Col -> panel MatMul (bias row inside) -> Transpose (the
 *    packer's form of a 1-D Conv) equals a naive strided, padded, dilated
 *    convolution with bias; its OccIm2Col has no layout attribute, as in
 *    packs made before layout 1 (tests/test_seq_conv_chain.c) existed. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "occ/engine.h"
#include "ops/vecmath.h"
#include "test_ops_util.h"
#include "test_panels.h"

static void rechunk(tb *b)
{
    const uint64_t cs = 128u << 10;
    b->m.n_chunks = 0;
    for (uint64_t off = 0; off < b->m.data_size; off += cs) {
        occ_chunk *c = &b->chunks[b->m.n_chunks++];
        c->offset = off;
        c->size = b->m.data_size - off < cs ? b->m.data_size - off : cs;
        CHECK(occ_sha256(b->data + off, (size_t)c->size, c->sha256) == 0);
    }
}

static float *panels(const float *w, int64_t K, int64_t N)
{
    return panels_b(w, NULL, K, N);
}

static void test_vec_functions(void)
{
    enum { N = 1003 };
    float x[N], y[N];
    for (int i = 0; i < N; i++)
        x[i] = -9.0f + 18.0f * (float)i / (N - 1);
    double eg = 0, ee = 0, es = 0, et = 0;
    occ_vec_gelu(x, y, N);
    for (int i = 0; i < N; i++)
        eg = fmax(eg, fabs(y[i] - 0.5 * x[i] * (1.0 + erf(x[i] / sqrt(2.0)))));
    occ_vec_erf(x, y, N);
    for (int i = 0; i < N; i++)
        ee = fmax(ee, fabs(y[i] - erf(x[i])));
    occ_vec_sigmoid(x, y, N);
    for (int i = 0; i < N; i++)
        es = fmax(es, fabs(y[i] - 1.0 / (1.0 + exp(-(double)x[i]))));
    occ_vec_tanh(x, y, N);
    for (int i = 0; i < N; i++)
        et = fmax(et, fabs(y[i] - tanh(x[i])));
    CHECK_MSG(eg < 2e-6 && ee < 1e-6 && es < 1e-6 && et < 1e-6,
              "gelu %g erf %g sigmoid %g tanh %g", eg, ee, es, et);
    /* tanh stays odd and exact near 0 */
    float t[3] = {1e-6f, -3e-5f, 0.0f}, u[3];
    occ_vec_tanh(t, u, 3);
    CHECK(fabsf(u[0] - 1e-6f) < 1e-12f && fabsf(u[1] + 3e-5f) < 1e-10f && u[2] == 0.0f);
}

/* Softmax rows against double: every length class of the AVX2 row (under
 * 8, a tail of 1..7, whole vectors), inputs over [-10, 10], in place too.
 * The reference takes the float differences x - max (their rounding is
 * the format's, not the kernel's): relative error <= 6e-7 (vecmath.h says
 * 4.3e-7 measured). */
static void test_vec_softmax(void)
{
    const int lens[] = {1, 3, 7, 8, 9, 15, 16, 49, 128, 197, 1000};
    float *x = malloc(sizeof(float) * 1000), *y = malloc(sizeof(float) * 1000);
    double worst = 0, dsum = 0;
    for (int c = 0; c < 11; c++)
        for (int rep = 0; rep < 20; rep++) {
            const int len = lens[c];
            for (int i = 0; i < len; i++)
                x[i] = 20.0f * ((float)rand() / (float)RAND_MAX - 0.5f);
            occ_vec_softmax(x, y, len);
            float mx = x[0];
            for (int i = 1; i < len; i++)
                mx = x[i] > mx ? x[i] : mx;
            double s = 0, t = 0;
            for (int i = 0; i < len; i++)
                s += exp((double)(x[i] - mx));
            for (int i = 0; i < len; i++) {
                const double r = exp((double)(x[i] - mx)) / s;
                worst = fmax(worst, fabs(y[i] - r) / r);
                t += y[i];
            }
            dsum = fmax(dsum, fabs(t - 1.0));
            /* in place: the same bits */
            occ_vec_softmax(x, x, len);
            CHECK_MSG(!memcmp(x, y, sizeof(float) * (size_t)len), "len %d: in place differs",
                      len);
        }
    CHECK_MSG(worst <= 6e-7 && dsum < 1e-5, "softmax: rel err %g, |sum - 1| %g", worst, dsum);
    /* a masked key (-inf) weighs nothing; a NaN stays NaN */
    float m[11] = {1, 2, -INFINITY, 3, 4, 5, 6, 7, 8, 9, -INFINITY}, o[11];
    occ_vec_softmax(m, o, 11);
    CHECK_MSG(o[2] < 1e-37f && o[10] < 1e-37f && o[9] > 0.6f, "masked: %g %g %g", o[2], o[10],
              o[9]);
    m[10] = NAN;
    occ_vec_softmax(m, o, 11);
    CHECK(isnan(o[0]) && isnan(o[10]));
    free(x), free(y);
}

static void test_vec_gemv_gemm(void)
{
    /* GEMV: rows 4k and tails, cols with and without a tail of 8 */
    for (int rows = 1; rows <= 11; rows += 5)
        for (int cols = 5; cols <= 37; cols += 16) {
            float *a = rand_buf(rows * cols), *xv = rand_buf(cols), *add = rand_buf(rows);
            float y[16];
            occ_vec_gemv(a, rows, cols, cols, xv, add, y);
            double worst = 0;
            for (int r = 0; r < rows; r++) {
                double s = add[r];
                for (int j = 0; j < cols; j++)
                    s += (double)a[r * cols + j] * xv[j];
                worst = fmax(worst, fabs(y[r] - s));
            }
            CHECK_MSG(worst < 1e-5, "gemv %dx%d: %g", rows, cols, worst);
            free(a), free(xv), free(add);
        }
    /* panel GEMM: m across the row blocks (every block size 1..6: 2, 3,
     * 6, 13 = 5 4 4, 49 = 6 6 6 6 5 5 5 5 5), n across the 16-column
     * panels, k across the 256-step blocks */
    const int ms[] = {1, 2, 3, 6, 13, 49}, ks[] = {1, 37, 300}, ns[] = {1, 16, 45};
    for (int a0 = 0; a0 < 6; a0++)
        for (int b0 = 0; b0 < 3; b0++)
            for (int c0 = 0; c0 < 3; c0++) {
                int m = ms[a0], k = ks[b0], n = ns[c0];
                const int hb = (a0 + b0 + c0) % 2; /* half the cases with a bias row */
                float *a = rand_buf(m * k), *w = rand_buf(k * n), *bv = rand_buf(n);
                float *p = panels_b(w, hb ? bv : NULL, k, n);
                float *y = calloc((size_t)(m * n + 1), sizeof *y);
                occ_vec_gemm_panels(a, m, k, k, p, (n + 15) / 16, hb, 0, n, y, n);
                double worst = 0;
                for (int i = 0; i < m; i++)
                    for (int j = 0; j < n; j++) {
                        double s = hb ? bv[j] : 0.0;
                        for (int q = 0; q < k; q++)
                            s += (double)a[i * k + q] * w[q * n + j];
                        worst = fmax(worst, fabs(y[i * n + j] - s));
                    }
                CHECK_MSG(worst < 1e-4, "panels %dx%dx%d bias %d: %g", m, k, n, hb, worst);
                free(a), free(w), free(bv), free(p), free(y);
            }
}

static occ_status run(const tb *b, occ_mode mode, uint64_t budget, const float *x, float *y,
                      occ_engine_stats *st_out)
{
    occ_error e = {0};
    occ_engine_opts opts = {.threads = 1, .loader_threads = 1, .mode = mode, .budget = budget};
    occ_engine *eng = NULL;
    occ_status st = occ_engine_create(&b->m, &opts, tb_read, (void *)b, &eng, &e);
    CHECK_MSG(st == OCC_OK, "mode %d: create: %s", (int)mode, e.msg);
    if (st)
        return st;
    const void *ins[1] = {x};
    void *outs[1] = {y};
    st = occ_engine_run(eng, ins, outs, &e);
    CHECK_MSG(st == OCC_OK, "run: %s", e.msg);
    if (st_out)
        occ_engine_get_stats(eng, st_out);
    occ_engine_free(eng);
    return st;
}

static void test_packed_matmul_streams(void)
{
    /* A [2, 9, 512] x B [512, 1000]: 63 panels of 32 KiB, 2 MiB, more than
     * this budget holds: pieces of panels stream */
    enum { BT = 2, M = 9, K = 512, N = 1000, NP = (N + 15) / 16 };
    static tb b;
    tb_init(&b);
    int64_t dx[3] = {BT, M, K}, dw[2] = {NP, K * 16};
    float *x = rand_buf(BT * M * K), *w = rand_buf(K * N), *p = panels(w, K, N);
    int ix = tb_input(&b, "x", 3, dx), iw = tb_weight(&b, "w", 2, dw, p), y = tb_act(&b, "y");
    int in[2] = {ix, iw};
    occ_attr at[1] = {A_INT("occ_packB", N)};
    tb_node(&b, "MatMul", 2, in, y, 1, at);
    tb_output(&b, y);
    occ_error e = {0};
    CHECK_MSG(tb_finish(&b, &e) == OCC_OK, "%s", e.msg);
    CHECK(b.t[y].ndim == 3 && b.t[y].dims[2] == N);
    rechunk(&b);
    static float ref[BT * M * N], yn[BT * M * N], yo[BT * M * N];
    for (int i = 0; i < BT * M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int q = 0; q < K; q++)
                s += (double)x[i * K + q] * w[q * N + j];
            ref[i * N + j] = (float)s;
        }
    occ_engine_stats so;
    const uint64_t budget = 1280u << 10;
    if (run(&b, OCC_MODE_NATIVE, 0, x, yn, NULL) == OCC_OK)
        CHECK_MSG(max_rel_err(yn, ref, BT * M * N) < 1e-5, "native: %g",
                  max_rel_err(yn, ref, BT * M * N));
    if (run(&b, OCC_MODE_OCCLUMENCY, budget, x, yo, &so) == OCC_OK) {
        CHECK_MSG(memcmp(yo, yn, sizeof yn) == 0, "occlumency differs from native: %g",
                  max_rel_err(yo, yn, BT * M * N));
        CHECK_MSG(so.peak_enclave_bytes <= budget, "peak %llu > budget %llu",
                  (unsigned long long)so.peak_enclave_bytes, (unsigned long long)budget);
        CHECK_MSG(so.plan_stream_bytes > 0, "expected streamed pieces (peak %llu)",
                  (unsigned long long)so.peak_enclave_bytes);
    }
    /* a B that does not match the attribute is refused */
    static tb bad;
    tb_init(&bad);
    int64_t dw2[2] = {NP + 1, K * 16};
    ix = tb_input(&bad, "x", 3, dx);
    iw = tb_weight(&bad, "w", 2, dw2, NULL);
    y = tb_act(&bad, "y");
    int in2[2] = {ix, iw};
    tb_node(&bad, "MatMul", 2, in2, y, 1, at);
    tb_output(&bad, y);
    CHECK(tb_finish(&bad, &e) != OCC_OK);
    tb_free(&bad);
    tb_free(&b);
    free(x), free(w), free(p);
}

static void test_im2col_conv1d(void)
{
    /* stride 2, dilation 2, pads 3 and 1: the packer's Conv rewrite; 100
     * output steps are 4 blocks of rows, the middle ones read no padding
     * (im2col.c's unchecked path), the first and last do */
    enum { C = 5, L = 200, O = 21, KK = 3, S = 2, D = 2, PL = 3, PR = 1 };
    enum { LO = (L + PL + PR - D * (KK - 1) - 1) / S + 1, KC = C * KK };
    static tb b;
    tb_init(&b);
    float *x = rand_buf(C * L), *w = rand_buf(O * C * KK), *bias = rand_buf(O);
    /* B = W^T [C KK, O] in panels, the bias row at the end of each */
    float *wt = malloc(sizeof(float) * KC * O);
    for (int o = 0; o < O; o++)
        for (int i = 0; i < KC; i++)
            wt[i * O + o] = w[o * KC + i];
    float *p = panels_b(wt, bias, KC, O);
    int64_t dx[3] = {1, C, L}, dw[2] = {(O + 15) / 16, (KC + 1) * 16};
    int ix = tb_input(&b, "x", 3, dx), iw = tb_weight(&b, "w", 2, dw, p);
    int cols = tb_act(&b, "cols"), mm = tb_act(&b, "mm"), y = tb_act(&b, "y");
    occ_attr ia[5] = {A_INT("kernel", KK), A_INT("stride", S), A_INT("dilation", D),
                      A_INT("pad_l", PL), A_INT("pad_r", PR)};
    occ_attr ma[2] = {A_INT("occ_packB", O), A_INT("occ_bias", 1)};
    int64_t perm[3] = {0, 2, 1};
    occ_attr ta[1] = {A_INTS("perm", perm, 3)};
    int i0[1] = {ix}, i1[2] = {cols, iw}, i2[1] = {mm};
    tb_node(&b, "OccIm2Col", 1, i0, cols, 5, ia);
    tb_node(&b, "MatMul", 2, i1, mm, 2, ma);
    tb_node(&b, "Transpose", 1, i2, y, 1, ta);
    tb_output(&b, y);
    occ_error e = {0};
    CHECK_MSG(tb_finish(&b, &e) == OCC_OK, "%s", e.msg);
    CHECK(b.t[y].ndim == 3 && b.t[y].dims[1] == O && b.t[y].dims[2] == LO);
    static float ref[O * LO], out[O * LO];
    for (int o = 0; o < O; o++)
        for (int t = 0; t < LO; t++) {
            double s = bias[o];
            for (int c = 0; c < C; c++)
                for (int k = 0; k < KK; k++) {
                    int pos = t * S + k * D - PL;
                    if (pos >= 0 && pos < L)
                        s += (double)w[(o * C + c) * KK + k] * x[c * L + pos];
                }
            ref[o * LO + t] = (float)s;
        }
    if (run(&b, OCC_MODE_NATIVE, 0, x, out, NULL) == OCC_OK)
        CHECK_MSG(max_rel_err(out, ref, O * LO) < 1e-5, "conv1d as gemm: %g",
                  max_rel_err(out, ref, O * LO));
    /* a window longer than the padded input is refused */
    static tb bad;
    tb_init(&bad);
    int64_t ds[3] = {1, C, 2};
    ix = tb_input(&bad, "x", 3, ds);
    cols = tb_act(&bad, "cols");
    int j0[1] = {ix};
    occ_attr ib[5] = {A_INT("kernel", 9), A_INT("stride", 1), A_INT("dilation", 1),
                      A_INT("pad_l", 0), A_INT("pad_r", 0)};
    tb_node(&bad, "OccIm2Col", 1, j0, cols, 5, ib);
    tb_output(&bad, cols);
    CHECK(tb_finish(&bad, &e) != OCC_OK);
    tb_free(&bad);
    tb_free(&b);
    free(x), free(w), free(bias), free(wt), free(p);
}

int main(void)
{
    RUN(test_vec_functions);
    RUN(test_vec_softmax);
    RUN(test_vec_gemv_gemm);
    RUN(test_packed_matmul_streams);
    RUN(test_im2col_conv1d);
    TEST_DONE();
}
