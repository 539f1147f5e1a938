/* Element-wise activations, binary arithmetic with numpy broadcasting
 * (either operand a weight), BatchNormalization, Softmax, Gemm and MatMul,
 * against straightforward references. 4-D cases also run with the input in
 * oneDNN's blocked layout (through an identity 1x1 Conv). */
#include "test_ops_util.h"

static float relu(float x) { return x > 0 ? x : 0; }

static void test_unary(void)
{
    int64_t n = 2 * 5 * 3 * 4;
    float *x = rand_buf(n), *r = malloc(n * 4);
    for (int i = 0; i < n; i++)
        x[i] *= 8.0f; /* cover the clip ranges */
    tin in[1] = {T4(2, 5, 3, 4, x)};
    int64_t d[4] = {2, 5, 3, 4};
    for (int vc = 0; vc < 2; vc++) {
        for (int i = 0; i < n; i++)
            r[i] = relu(x[i]);
        run1("Relu", "Relu", 1, in, 0, NULL, 4, d, r, 0, vc);
        occ_attr la[1] = {A_FLOAT("alpha", 0.2f)};
        for (int i = 0; i < n; i++)
            r[i] = x[i] >= 0 ? x[i] : 0.2f * x[i];
        run1("LeakyRelu", "LeakyRelu", 1, in, 1, la, 4, d, r, 0, vc);
        occ_attr ca[2] = {A_FLOAT("min", 0.0f), A_FLOAT("max", 6.0f)};
        for (int i = 0; i < n; i++)
            r[i] = x[i] < 0 ? 0 : (x[i] > 6 ? 6 : x[i]);
        run1("Clip 0..6", "Clip", 1, in, 2, ca, 4, d, r, 0, vc);
        occ_attr cb[1] = {A_FLOAT("min", 1.5f)};
        for (int i = 0; i < n; i++)
            r[i] = x[i] < 1.5f ? 1.5f : x[i];
        run1("Clip min only", "Clip", 1, in, 1, cb, 4, d, r, 0, vc);
        for (int i = 0; i < n; i++)
            r[i] = 1.0f / (1.0f + expf(-x[i]));
        run1("Sigmoid", "Sigmoid", 1, in, 0, NULL, 4, d, r, 1e-6, vc);
        for (int i = 0; i < n; i++)
            r[i] = tanhf(x[i]);
        run1("Tanh", "Tanh", 1, in, 0, NULL, 4, d, r, 1e-6, vc);
        occ_attr ha[2] = {A_FLOAT("alpha", 0.25f), A_FLOAT("beta", 0.4f)};
        for (int i = 0; i < n; i++) {
            float v = 0.25f * x[i] + 0.4f;
            r[i] = v < 0 ? 0 : (v > 1 ? 1 : v);
        }
        run1("HardSigmoid", "HardSigmoid", 1, in, 2, ha, 4, d, r, 1e-6, vc);
        for (int i = 0; i < n; i++) {
            float v = x[i] / 6.0f + 0.5f;
            r[i] = x[i] * (v < 0 ? 0 : (v > 1 ? 1 : v));
        }
        run1("HardSwish", "HardSwish", 1, in, 0, NULL, 4, d, r, 1e-6, vc);
    }
    free(x);
    free(r);
}

static float bop(int k, float a, float b)
{
    return k == 0 ? a + b : k == 1 ? a - b : k == 2 ? a * b : a / b;
}

/* reference broadcast: out dims given, a/b dims right-aligned */
static void ref_binary(int k, int r, const int64_t *od, int ra, const int64_t *ad, const float *a,
                       int rb, const int64_t *bd, const float *b, float *out)
{
    int64_t total = 1;
    for (int i = 0; i < r; i++)
        total *= od[i];
    for (int64_t idx = 0; idx < total; idx++) {
        int64_t rem = idx, oa = 0, ob = 0, sa = 1, sb = 1;
        for (int d = r - 1; d >= 0; d--) {
            int64_t i = rem % od[d];
            rem /= od[d];
            int ia = d - (r - ra), ib = d - (r - rb);
            if (ia >= 0) {
                oa += (ad[ia] == 1 ? 0 : i) * sa;
                sa *= ad[ia];
            }
            if (ib >= 0) {
                ob += (bd[ib] == 1 ? 0 : i) * sb;
                sb *= bd[ib];
            }
        }
        out[idx] = bop(k, a[oa], b[ob]);
    }
}

static void test_binary(void)
{
    static const char *ops[] = {"Add", "Sub", "Mul", "Div"};
    struct {
        int ra, rb, r;
        int64_t a[4], b[4], o[4];
        int bw; /* b is a weight */
    } cases[] = {
        {4, 4, 4, {2, 3, 4, 5}, {2, 3, 4, 5}, {2, 3, 4, 5}, 0},  /* same shape */
        {4, 3, 4, {2, 3, 4, 5}, {3, 1, 1}, {2, 3, 4, 5}, 1},     /* per-channel weight */
        {4, 1, 4, {2, 3, 4, 5}, {5}, {2, 3, 4, 5}, 1},           /* last-dim weight */
        {4, 0, 4, {2, 3, 4, 5}, {0}, {2, 3, 4, 5}, 1},           /* scalar weight */
        {4, 4, 4, {2, 1, 4, 1}, {1, 3, 1, 5}, {2, 3, 4, 5}, 0},  /* both broadcast */
        {2, 4, 4, {4, 5}, {2, 3, 4, 5}, {2, 3, 4, 5}, 0},        /* lower-rank first */
        {4, 4, 4, {1, 16, 6, 6}, {1, 16, 1, 1}, {1, 16, 6, 6}, 0}, /* SE-style gate */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int64_t na = 1, nb = 1, no = 1;
        for (int i = 0; i < cases[c].ra; i++)
            na *= cases[c].a[i];
        for (int i = 0; i < cases[c].rb; i++)
            nb *= cases[c].b[i];
        for (int i = 0; i < cases[c].r; i++)
            no *= cases[c].o[i];
        float *a = rand_buf(na), *b = rand_buf(nb), *r = malloc(no * 4);
        for (int64_t i = 0; i < nb; i++)
            b[i] = b[i] >= 0 ? b[i] + 0.5f : b[i] - 0.5f; /* no division by ~0 */
        tin in[2] = {{cases[c].ra, {0}, a, 0}, {cases[c].rb, {0}, b, cases[c].bw}};
        memcpy(in[0].dims, cases[c].a, sizeof cases[c].a);
        memcpy(in[1].dims, cases[c].b, sizeof cases[c].b);
        for (int k = 0; k < 4; k++) {
            char label[64];
            snprintf(label, sizeof label, "%s case %zu", ops[k], c);
            ref_binary(k, cases[c].r, cases[c].o, cases[c].ra, cases[c].a, a, cases[c].rb,
                       cases[c].b, b, r);
            for (int vc = 0; vc < 2; vc++)
                run1(label, ops[k], 2, in, 0, NULL, cases[c].r, cases[c].o, r, 1e-6, vc);
            /* swapped operands: the weight first */
            tin sw[2] = {in[1], in[0]};
            ref_binary(k, cases[c].r, cases[c].o, cases[c].rb, cases[c].b, b, cases[c].ra,
                       cases[c].a, a, r);
            snprintf(label, sizeof label, "%s case %zu swapped", ops[k], c);
            run1(label, ops[k], 2, sw, 0, NULL, cases[c].r, cases[c].o, r, 1e-6, 0);
        }
        free(a);
        free(b);
        free(r);
    }
}

static void test_batchnorm(void)
{
    int64_t N = 2, C = 3, H = 4, W = 5, n = N * C * H * W;
    float *x = rand_buf(n), *sc = rand_buf(C), *bi = rand_buf(C), *mu = rand_buf(C);
    float *var = rand_buf(C), *r = malloc(n * 4);
    for (int c = 0; c < C; c++)
        var[c] = fabsf(var[c]) + 0.1f;
    for (int64_t i = 0; i < n; i++) {
        int64_t c = (i / (H * W)) % C;
        r[i] = (x[i] - mu[c]) / sqrtf(var[c] + 1e-3f) * sc[c] + bi[c];
    }
    tin in[5] = {T4(N, C, H, W, x), {1, {C}, sc, 1}, {1, {C}, bi, 1}, {1, {C}, mu, 1},
                 {1, {C}, var, 1}};
    occ_attr a[1] = {A_FLOAT("epsilon", 1e-3f)};
    int64_t d[4] = {N, C, H, W};
    run1("BatchNormalization", "BatchNormalization", 5, in, 1, a, 4, d, r, 1e-5, 0);
    run1("BatchNormalization", "BatchNormalization", 5, in, 1, a, 4, d, r, 1e-5, 1);
    free(x), free(sc), free(bi), free(mu), free(var), free(r);
}

static void test_softmax(void)
{
    int64_t d[3] = {2, 3, 4}, n = 24;
    float *x = rand_buf(n), *r = malloc(n * 4);
    for (int axis = -1; axis < 3; axis++) {
        int ax = axis < 0 ? 2 : axis;
        int64_t outer = 1, inner = 1;
        for (int i = 0; i < ax; i++)
            outer *= d[i];
        for (int i = ax + 1; i < 3; i++)
            inner *= d[i];
        for (int64_t o = 0; o < outer; o++)
            for (int64_t j = 0; j < inner; j++) {
                double s = 0;
                for (int64_t i = 0; i < d[ax]; i++)
                    s += exp(x[(o * d[ax] + i) * inner + j]);
                for (int64_t i = 0; i < d[ax]; i++)
                    r[(o * d[ax] + i) * inner + j] = (float)(exp(x[(o * d[ax] + i) * inner + j]) / s);
            }
        tin in[1] = {{3, {2, 3, 4}, x, 0}};
        occ_attr a[1] = {A_INT("axis", axis)};
        run1("Softmax", "Softmax", 1, in, 1, a, 3, d, r, 1e-6, 0);
    }
    free(x);
    free(r);
}

static void test_gemm(void)
{
    int64_t M = 3, K = 5, N = 4;
    float *A = rand_buf(M * K), *B = rand_buf(K * N), *C = rand_buf(M * N), *r = malloc(M * N * 4);
    for (int ta = 0; ta < 2; ta++)
        for (int tbb = 0; tbb < 2; tbb++)
            for (int cshape = 0; cshape < 4; cshape++) {
                /* cshape: 0 none, 1 [N], 2 [M,1], 3 [M,N] */
                float alpha = 0.5f, beta = 2.0f;
                for (int64_t i = 0; i < M; i++)
                    for (int64_t j = 0; j < N; j++) {
                        double s = 0;
                        for (int64_t k = 0; k < K; k++) {
                            float a = ta ? A[k * M + i] : A[i * K + k];
                            float b = tbb ? B[j * K + k] : B[k * N + j];
                            s += (double)a * b;
                        }
                        float c = cshape == 0 ? 0 : cshape == 1 ? C[j] : cshape == 2 ? C[i] : C[i * N + j];
                        r[i * N + j] = (float)(alpha * s + beta * c);
                    }
                tin in[3] = {{2, {ta ? K : M, ta ? M : K}, A, 0},
                             {2, {tbb ? N : K, tbb ? K : N}, B, 1},
                             {cshape == 3 ? 2 : cshape == 2 ? 2 : 1,
                              {cshape == 1 ? N : M, cshape == 2 ? 1 : N}, C, 1}};
                occ_attr at[4] = {A_INT("transA", ta), A_INT("transB", tbb),
                                  A_FLOAT("alpha", alpha), A_FLOAT("beta", beta)};
                int64_t d[2] = {M, N};
                char label[64];
                snprintf(label, sizeof label, "Gemm tA=%d tB=%d C=%d", ta, tbb, cshape);
                run1(label, "Gemm", cshape ? 3 : 2, in, 4, at, 2, d, r, 1e-5, 0);
            }
    free(A), free(B), free(C), free(r);
}

static void test_matmul(void)
{
    /* [2,1,3,4] x [3,4,5] -> [2,3,3,5] */
    int64_t ad[4] = {2, 1, 3, 4}, bd[3] = {3, 4, 5}, od[4] = {2, 3, 3, 5};
    float *a = rand_buf(24), *b = rand_buf(60), *r = malloc(90 * 4);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int m = 0; m < 3; m++)
                for (int n = 0; n < 5; n++) {
                    double s = 0;
                    for (int k = 0; k < 4; k++)
                        s += (double)a[(i * 3 + m) * 4 + k] * b[(j * 4 + k) * 5 + n];
                    r[((i * 3 + j) * 3 + m) * 5 + n] = (float)s;
                }
    tin in[2] = {{4, {0}, a, 0}, {3, {0}, b, 1}};
    memcpy(in[0].dims, ad, sizeof ad);
    memcpy(in[1].dims, bd, sizeof bd);
    run1("MatMul batched broadcast", "MatMul", 2, in, 0, NULL, 4, od, r, 1e-5, 0);
    /* 1-D x 2-D: [4] x [4,5] -> [5] */
    tin v[2] = {{1, {4}, a, 0}, {2, {4, 5}, b, 1}};
    for (int n = 0; n < 5; n++) {
        double s = 0;
        for (int k = 0; k < 4; k++)
            s += (double)a[k] * b[k * 5 + n];
        r[n] = (float)s;
    }
    int64_t d5[1] = {5};
    run1("MatMul vector", "MatMul", 2, v, 0, NULL, 1, d5, r, 1e-5, 0);
    free(a), free(b), free(r);
}

int main(void)
{
    RUN(test_unary);
    RUN(test_binary);
    RUN(test_batchnorm);
    RUN(test_softmax);
    RUN(test_gemm);
    RUN(test_matmul);
    TEST_DONE();
}
