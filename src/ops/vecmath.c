/* Vectorised element-wise functions (vecmath.h). The build is plain x86-64
 * (SSE2, no FMA) so that one binary runs everywhere; these loops are where
 * transformers and LSTMs spend their non-GEMM time (GELU over [tokens,
 * 3072], the LSTM's five gate functions per unit and step), so they get an
 * AVX2 + FMA version compiled for that target alone and picked at run time
 * with __builtin_cpu_supports. The scalar fallbacks use the same
 * approximations where the formula is ours (erf) and libm otherwise. */
#include "ops/vecmath.h"

#include "ops/par.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define OCC_HAVE_AVX2_PATH 1
#endif

/* Eigen's fast float erf: x P(x^2) / Q(x^2) on [-4, 4] (erf is +-1 in
 * float outside). */
static const float ERF_P[7] = {-2.72614225801306e-10f, 2.77068142495902e-08f,
                               -2.10102402082508e-06f, -5.69250639462346e-05f,
                               -7.34990630326855e-04f, -2.95459980854025e-03f,
                               -1.60960333262415e-02f};
static const float ERF_Q[5] = {-1.45660718464996e-05f, -2.13374055278905e-04f,
                               -1.68282697438203e-03f, -7.37332916720468e-03f,
                               -1.42647390514189e-02f};

static inline float erf_s(float v)
{
    const float x = fminf(fmaxf(v, -4.0f), 4.0f), x2 = x * x;
    float p = ERF_P[0], q = ERF_Q[0];
    for (int i = 1; i < 7; i++)
        p = p * x2 + ERF_P[i];
    for (int i = 1; i < 5; i++)
        q = q * x2 + ERF_Q[i];
    return x * p / q;
}

/* GELU, tanh form: unary.c's loop, this very expression. noinline and
 * compiled for the base target: inlined into an AVX2 function the compiler
 * could contract it into FMAs and change the last bit. */
__attribute__((noinline)) static float gelu_tanh_s(float v)
{
    return 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
}

/* The separate ops' scalar formulas (unary.c, occ_vec_gelu's scalar path). */
static float act_s(int act, float v)
{
    switch (act) {
    case OCC_ACT_RELU: return v > 0.0f ? v : 0.0f;
    case OCC_ACT_GELU: return 0.5f * v * (1.0f + erf_s(v * 0.7071067811865476f));
    case OCC_ACT_GELU_TANH: return gelu_tanh_s(v);
    default: return v;
    }
}

#ifdef OCC_HAVE_AVX2_PATH
static int use_avx2(void)
{
    static int v = -1; /* benign race: every thread computes the same value */
    if (v < 0) {
        __builtin_cpu_init();
        v = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return v;
}

#define AVX2 __attribute__((target("avx2,fma")))

AVX2 static inline __m256 erf8(__m256 v)
{
    const __m256 x = _mm256_min_ps(_mm256_set1_ps(4.0f), _mm256_max_ps(_mm256_set1_ps(-4.0f), v));
    const __m256 x2 = _mm256_mul_ps(x, x);
    __m256 p = _mm256_set1_ps(ERF_P[0]), q = _mm256_set1_ps(ERF_Q[0]);
    for (int i = 1; i < 7; i++)
        p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(ERF_P[i]));
    for (int i = 1; i < 5; i++)
        q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(ERF_Q[i]));
    return _mm256_div_ps(_mm256_mul_ps(x, p), q);
}

/* e^r for r = x - n ln 2 (the reduction in two parts, then Cephes'
 * degree-6 polynomial): the part of exp shared by exp8 and expneg8, which
 * differ in how they find n and apply 2^n. */
AVX2 static inline __m256 exp8_reduced(__m256 x, __m256 fx)
{
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
    x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
    __m256 y = _mm256_set1_ps(1.9875691500e-4f);
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507e-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073e-3f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894e-2f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459e-1f));
    y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201e-1f));
    return _mm256_fmadd_ps(y, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
}

/* exp: n = round(x log2 e), r = x - n ln 2 (in two parts), e^r by Cephes'
 * degree-6 polynomial, times 2^n through the exponent bits. x is clamped
 * to [-87.3, 88.3] (2^n stays a normal float); a NaN stays NaN. */
AVX2 static inline __m256 exp8(__m256 x)
{
    x = _mm256_min_ps(_mm256_set1_ps(88.3762626647949f),
                      _mm256_max_ps(_mm256_set1_ps(-87.3365478515625f), x));
    __m256 fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 y = exp8_reduced(x, fx);
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)),
                                  23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

/* tanh: Eigen's rational approximation, x P(x^2) / Q(x^2) on [-9, 9]. */
AVX2 static inline __m256 tanh8(__m256 v)
{
    const __m256 x = _mm256_min_ps(_mm256_set1_ps(7.90531110763549805f),
                                   _mm256_max_ps(_mm256_set1_ps(-7.90531110763549805f), v));
    const __m256 x2 = _mm256_mul_ps(x, x);
    __m256 p = _mm256_set1_ps(-2.76076847742355e-16f);
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(2.00018790482477e-13f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(-8.60467152213735e-11f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(5.12229709037114e-08f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(1.48572235717979e-05f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(6.37261928875436e-04f));
    p = _mm256_fmadd_ps(p, x2, _mm256_set1_ps(4.89352455891786e-03f));
    __m256 q = _mm256_set1_ps(1.19825839466702e-06f);
    q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(1.18534705686654e-04f));
    q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(2.26843463243900e-03f));
    q = _mm256_fmadd_ps(q, x2, _mm256_set1_ps(4.89352518554385e-03f));
    return _mm256_div_ps(_mm256_mul_ps(x, p), q);
}

AVX2 static void erf_avx2(const float *in, float *out, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, erf8(_mm256_loadu_ps(in + i)));
    for (; i < n; i++)
        out[i] = erf_s(in[i]);
}

/* 0.5 x (1 + erf(x / sqrt 2)) as 0.5 x erf(..) + 0.5 x: the Gelu op's
 * lanes, and through gelu_avx2 the GEMM's erf-GELU pass, bit for bit */
AVX2 static inline __m256 gelu8(__m256 x)
{
    const __m256 hx = _mm256_mul_ps(_mm256_set1_ps(0.5f), x);
    return _mm256_fmadd_ps(hx, erf8(_mm256_mul_ps(x, _mm256_set1_ps(0.7071067811865476f))), hx);
}

AVX2 static void gelu_avx2(const float *in, float *out, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, gelu8(_mm256_loadu_ps(in + i)));
    for (; i < n; i++)
        out[i] = 0.5f * in[i] * (1.0f + erf_s(in[i] * 0.7071067811865476f));
}

AVX2 static void sigmoid_avx2(const float *in, float *out, int64_t n)
{
    const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 e = exp8(_mm256_sub_ps(zero, _mm256_loadu_ps(in + i)));
        _mm256_storeu_ps(out + i, _mm256_div_ps(one, _mm256_add_ps(one, e)));
    }
    for (; i < n; i++)
        out[i] = 1.0f / (1.0f + expf(-in[i]));
}

AVX2 static inline float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

AVX2 static void gemv_avx2(const float *A, int64_t rows, int64_t cols, int64_t lda,
                           const float *x, const float *add, float *y)
{
    const int64_t c8 = cols & ~(int64_t)7;
    int64_t r = 0;
    for (; r + 4 <= rows; r += 4) {
        const float *a0 = A + r * lda, *a1 = a0 + lda, *a2 = a1 + lda, *a3 = a2 + lda;
        __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
        for (int64_t j = 0; j < c8; j += 8) {
            const __m256 xv = _mm256_loadu_ps(x + j);
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a0 + j), xv, s0);
            s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a1 + j), xv, s1);
            s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a2 + j), xv, s2);
            s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a3 + j), xv, s3);
        }
        float t0 = hsum8(s0), t1 = hsum8(s1), t2 = hsum8(s2), t3 = hsum8(s3);
        for (int64_t j = c8; j < cols; j++) {
            t0 += a0[j] * x[j];
            t1 += a1[j] * x[j];
            t2 += a2[j] * x[j];
            t3 += a3[j] * x[j];
        }
        y[r] = (add ? add[r] : 0.0f) + t0;
        y[r + 1] = (add ? add[r + 1] : 0.0f) + t1;
        y[r + 2] = (add ? add[r + 2] : 0.0f) + t2;
        y[r + 3] = (add ? add[r + 3] : 0.0f) + t3;
    }
    for (; r < rows; r++) {
        const float *a0 = A + r * lda;
        __m256 s0 = _mm256_setzero_ps();
        for (int64_t j = 0; j < c8; j += 8)
            s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a0 + j), _mm256_loadu_ps(x + j), s0);
        float t0 = hsum8(s0);
        for (int64_t j = c8; j < cols; j++)
            t0 += a0[j] * x[j];
        y[r] = (add ? add[r] : 0.0f) + t0;
    }
}

/* The activation of the store epilogue on 16 outputs in registers: ReLU as
 * max(v, 0) (NaN and -0 give +0, as unary.c's v > 0 ? v : 0), the tanh
 * form of GELU by its scalar loop. (The erf form is a pass over finished
 * rows instead: see panels_groups.) */
AVX2 static inline void act16(int act, __m256 *v0, __m256 *v1)
{
    if (act == OCC_ACT_RELU) {
        *v0 = _mm256_max_ps(*v0, _mm256_setzero_ps());
        *v1 = _mm256_max_ps(*v1, _mm256_setzero_ps());
    } else {
        float t[16];
        _mm256_storeu_ps(t, *v0);
        _mm256_storeu_ps(t + 8, *v1);
        for (int q = 0; q < 16; q++)
            t[q] = act_s(act, t[q]);
        *v0 = _mm256_loadu_ps(t);
        *v1 = _mm256_loadu_ps(t + 8);
    }
}

/* MR (1..6) rows x 16 columns of Y over kc steps of k: two accumulators a
 * row, two panel vectors and one broadcast of A per row and step (six rows
 * are the register budget of AVX2's 16 ymm). Each MR has its own code
 * (micro_6x16 dispatches), so a block of fewer rows does only its own FMAs:
 * rows are split into blocks of 5 and 6 (next_mr), not 6s and a tail that
 * cost a whole block (49 tokens: 9 blocks of 6 did 10% more work).
 * Columns past nc go through a buffer. acc: add to Y. The 16 values of step
 * k are at Bp + k ldb: 16 for a stored panel, the row length for a plain B
 * (attention's products). act (OCC_ACT_RELU or _GELU_TANH, on the last k
 * block only) is applied to the finished sums while they are in registers:
 * no second pass over Y. */
__attribute__((always_inline)) AVX2 static inline void
micro_rows(const int MR, const float *A, int64_t lda, const float *Bp, int64_t ldb, int64_t kc,
           float *Y, int64_t ldy, int nc, int acc, const float *bias, int act)
{
    const float *a0 = A, *a1 = A + (MR > 1 ? lda : 0), *a2 = A + (MR > 2 ? 2 * lda : 0),
                *a3 = A + (MR > 3 ? 3 * lda : 0), *a4 = A + (MR > 4 ? 4 * lda : 0),
                *a5 = A + (MR > 5 ? 5 * lda : 0);
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
           c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    for (int64_t k = 0; k < kc; k++) {
        const __m256 b0 = _mm256_loadu_ps(Bp + k * ldb), b1 = _mm256_loadu_ps(Bp + k * ldb + 8);
        __m256 av = _mm256_broadcast_ss(a0 + k);
        c00 = _mm256_fmadd_ps(av, b0, c00);
        c01 = _mm256_fmadd_ps(av, b1, c01);
        if (MR > 1) {
            av = _mm256_broadcast_ss(a1 + k);
            c10 = _mm256_fmadd_ps(av, b0, c10);
            c11 = _mm256_fmadd_ps(av, b1, c11);
        }
        if (MR > 2) {
            av = _mm256_broadcast_ss(a2 + k);
            c20 = _mm256_fmadd_ps(av, b0, c20);
            c21 = _mm256_fmadd_ps(av, b1, c21);
        }
        if (MR > 3) {
            av = _mm256_broadcast_ss(a3 + k);
            c30 = _mm256_fmadd_ps(av, b0, c30);
            c31 = _mm256_fmadd_ps(av, b1, c31);
        }
        if (MR > 4) {
            av = _mm256_broadcast_ss(a4 + k);
            c40 = _mm256_fmadd_ps(av, b0, c40);
            c41 = _mm256_fmadd_ps(av, b1, c41);
        }
        if (MR > 5) {
            av = _mm256_broadcast_ss(a5 + k);
            c50 = _mm256_fmadd_ps(av, b0, c50);
            c51 = _mm256_fmadd_ps(av, b1, c51);
        }
    }
    __m256 c[12] = {c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51};
    for (int r = 0; r < MR; r++) {
        float *y = Y + r * ldy;
        __m256 v0 = c[2 * r], v1 = c[2 * r + 1];
        if (nc == 16) {
            if (acc) {
                v0 = _mm256_add_ps(v0, _mm256_loadu_ps(y));
                v1 = _mm256_add_ps(v1, _mm256_loadu_ps(y + 8));
            } else if (bias) {
                v0 = _mm256_add_ps(v0, _mm256_loadu_ps(bias));
                v1 = _mm256_add_ps(v1, _mm256_loadu_ps(bias + 8));
            }
            if (act)
                act16(act, &v0, &v1);
            _mm256_storeu_ps(y, v0);
            _mm256_storeu_ps(y + 8, v1);
        } else {
            float t[16];
            _mm256_storeu_ps(t, v0);
            _mm256_storeu_ps(t + 8, v1);
            for (int j = 0; j < nc; j++)
                t[j] = acc ? y[j] + t[j] : bias ? t[j] + bias[j] : t[j];
            if (act) {
                v0 = _mm256_loadu_ps(t);
                v1 = _mm256_loadu_ps(t + 8);
                act16(act, &v0, &v1);
                _mm256_storeu_ps(t, v0);
                _mm256_storeu_ps(t + 8, v1);
            }
            for (int j = 0; j < nc; j++)
                y[j] = t[j];
        }
    }
}

/* micro_N: no activation (act a constant 0: the epilogue's code is
 * compiled out, the kernel every GEMM but the activation's last k block
 * runs is what it was before occ_act); micro_N_act: with one */
#define MICRO_ROWS(n)                                                                              \
    AVX2 static void micro_##n(const float *A, int64_t lda, const float *Bp, int64_t ldb,         \
                               int64_t kc, float *Y, int64_t ldy, int nc, int acc,                 \
                               const float *bias)                                                  \
    {                                                                                              \
        micro_rows(n, A, lda, Bp, ldb, kc, Y, ldy, nc, acc, bias, 0);                              \
    }                                                                                              \
    AVX2 static void micro_##n##_act(const float *A, int64_t lda, const float *Bp, int64_t ldb,   \
                                     int64_t kc, float *Y, int64_t ldy, int nc, int acc,           \
                                     const float *bias, int act)                                   \
    {                                                                                              \
        micro_rows(n, A, lda, Bp, ldb, kc, Y, ldy, nc, acc, bias, act);                            \
    }
MICRO_ROWS(1)
MICRO_ROWS(2)
MICRO_ROWS(3)
MICRO_ROWS(4)
MICRO_ROWS(5)
MICRO_ROWS(6)

AVX2 static void micro_6x16(const float *A, int64_t lda, const float *Bp, int64_t ldb,
                            int64_t kc, float *Y, int64_t ldy, int mr, int nc, int acc,
                            const float *bias, int act)
{
    if (act) {
        switch (mr) {
        case 1: micro_1_act(A, lda, Bp, ldb, kc, Y, ldy, nc, acc, bias, act); break;
        case 2: micro_2_act(A, lda, Bp, ldb, kc, Y, ldy, nc, acc, bias, act); break;
        case 3: micro_3_act(A, lda, Bp, ldb, kc, Y, ldy, nc, acc, bias, act); break;
        case 4: micro_4_act(A, lda, Bp, ldb, kc, Y, ldy, nc, acc, bias, act); break;
        case 5: micro_5_act(A, lda, Bp, ldb, kc, Y, ldy, nc, acc, bias, act); break;
        default: micro_6_act(A, lda, Bp, ldb, kc, Y, ldy, nc, acc, bias, act); break;
        }
        return;
    }
    switch (mr) {
    case 1: micro_1(A, lda, Bp, ldb, kc, Y, ldy, nc, acc, bias); break;
    case 2: micro_2(A, lda, Bp, ldb, kc, Y, ldy, nc, acc, bias); break;
    case 3: micro_3(A, lda, Bp, ldb, kc, Y, ldy, nc, acc, bias); break;
    case 4: micro_4(A, lda, Bp, ldb, kc, Y, ldy, nc, acc, bias); break;
    case 5: micro_5(A, lda, Bp, ldb, kc, Y, ldy, nc, acc, bias); break;
    default: micro_6(A, lda, Bp, ldb, kc, Y, ldy, nc, acc, bias); break;
    }
}

/* rows of the next block when rem rows are left: the fewest blocks of at
 * most 6, as even as they go (49 -> 6 6 6 6 5 5 5 5 5) */
static inline int next_mr(int64_t rem)
{
    const int64_t nb = (rem + 5) / 6;
    return (int)((rem + nb - 1) / nb);
}

/* Blocking: kc steps of k keep a group of panels (GP x 16 columns x kc) in
 * L2 and six rows of A (6 x kc) in L1 while the group is swept. */
enum { GEMM_KC = 256, GEMM_GP = 8, GEMM_MB = 96 };

typedef struct panels_job {
    const float *A, *B;
    int64_t m, k, lda, np, ps, c0, n, ldy, gp, mb, nrb;
    int bias, act;
    float *Y;
} panels_job;

/* tasks [t0, t1): task t is group t / nrb of gp panels against rows block
 * t % nrb of mb rows of A */
AVX2 static void panels_groups(void *ctx, int64_t t0, int64_t t1)
{
    const panels_job *p = ctx;
    const float *A = p->A, *B = p->B;
    const int64_t m = p->m, k = p->k, lda = p->lda, np = p->np, ps = p->ps, n = p->n;
    for (int64_t t = t0; t < t1; t++) {
        const int64_t g = t / p->nrb, r0 = (t % p->nrb) * p->mb;
        const int64_t r1 = r0 + p->mb < m ? r0 + p->mb : m;
        const int64_t j0 = g * p->gp, j1 = j0 + p->gp < np ? j0 + p->gp : np;
        for (int64_t k0 = 0; k0 < k; k0 += GEMM_KC) {
            const int64_t kc = k - k0 < GEMM_KC ? k - k0 : GEMM_KC;
            for (int64_t i = r0, mr; i < r1; i += mr) {
                mr = next_mr(r1 - i);
                const int last = k0 + kc == k;
                for (int64_t j = j0; j < j1; j++) {
                    const int64_t col = p->c0 + j * 16;
                    const int nc = (int)(n - col < 16 ? n - col : 16);
                    micro_6x16(A + i * lda + k0, lda, B + j * ps + k0 * 16, 16, kc,
                               p->Y + i * p->ldy + col, p->ldy, (int)mr, nc, k0 > 0,
                               p->bias ? B + j * ps + k * 16 : NULL,
                               last && p->act != OCC_ACT_GELU ? p->act : 0);
                }
                if (last && p->act == OCC_ACT_GELU) {
                    /* GELU over the mr rows of the group just finished,
                     * still in L1 (at most 6 x 128 floats), as the Gelu
                     * op's loop does it: in the tile's epilogue its 12
                     * erf (a division each) overflowed the out-of-order
                     * window and ran slower than a separate pass
                     * (docs/benchmarks.md). */
                    const int64_t cb = p->c0 + j0 * 16;
                    const int64_t ce = p->c0 + j1 * 16 < n ? p->c0 + j1 * 16 : n;
                    for (int64_t r = i; r < i + mr; r++)
                        gelu_avx2(p->Y + r * p->ldy + cb, p->Y + r * p->ldy + cb, ce - cb);
                }
            }
        }
    }
}

AVX2 static void panels_avx2(const float *A, int64_t m, int64_t k, int64_t lda, const float *B,
                             int64_t np, int64_t ps, int bias, int act, int64_t c0, int64_t n,
                             float *Y, int64_t ldy)
{
    /* at least 4 groups a thread (a Linear of 768 outputs at 2 threads: 12
     * groups of 4 panels), so that the last group, which one thread may
     * finish alone, is short; 8 panels a group otherwise */
    const int threads = occ_par_threads();
    const int64_t want = 4 * (int64_t)threads;
    int64_t gp = GEMM_GP;
    while (gp > 2 && (np + gp - 1) / gp < want)
        gp /= 2;
    const int64_t ng = (np + gp - 1) / gp;
    /* many rows (a 1-D convolution's 1599 steps): blocks of 96 rows too,
     * or a group's task would be milliseconds long, the whole of A, and a
     * descheduled thread's last one the layer's tail. Each output still sums
     * its k blocks in the same order. */
    const int64_t mb = threads > 1 && m >= 2 * GEMM_MB ? GEMM_MB : m;
    panels_job p = {.A = A, .B = B, .m = m, .k = k, .lda = lda, .np = np, .ps = ps,
                    .c0 = c0, .n = n, .ldy = ldy, .bias = bias, .act = act, .Y = Y, .gp = gp, .mb = mb,
                    .nrb = (m + mb - 1) / mb};
    const int64_t tasks = ng * p.nrb;
    /* independent tasks taken one at a time by whichever thread is free
     * (par.c), so that a busy or descheduled core takes fewer */
    occ_par_for(tasks, m * k * np > 65536 ? 1 : tasks, panels_groups, &p);
}

/* Y = A B for a plain row-major B (ldb), one thread: a panel of 16
 * columns is read in place (a partial last one through a zero-padded copy),
 * kept in L1 while the rows of A sweep it. */
AVX2 static void plain_avx2(const float *A, int64_t m, int64_t k, int64_t lda, const float *B,
                            int64_t ldb, int64_t n, float *Y, int64_t ldy)
{
    float tail[GEMM_KC * 16];
    for (int64_t k0 = 0; k0 < k; k0 += GEMM_KC) {
        const int64_t kc = k - k0 < GEMM_KC ? k - k0 : GEMM_KC;
        for (int64_t col = 0; col < n; col += 16) {
            const int nc = (int)(n - col < 16 ? n - col : 16);
            const float *Bp = B + k0 * ldb + col;
            int64_t lb = ldb;
            if (nc < 16) {
                for (int64_t kk = 0; kk < kc; kk++)
                    for (int q = 0; q < 16; q++)
                        tail[kk * 16 + q] = q < nc ? Bp[kk * ldb + q] : 0.0f;
                Bp = tail;
                lb = 16;
            }
            for (int64_t i = 0, mr; i < m; i += mr) {
                mr = next_mr(m - i);
                micro_6x16(A + i * lda + k0, lda, Bp, lb, kc, Y + i * ldy + col, ldy, (int)mr,
                           nc, k0 > 0, NULL, 0);
            }
        }
    }
}

/* Grouped 1-D convolution, stride 1, as panels read in place: Y[r, t] +=
 * sum_{c, j} W[r, c, j] Xp[c lp + t + d j]. For a fixed channel c the k
 * steps of a 16-wide column panel are 16 consecutive values of the padded
 * input row shifted by d: the 6x16 kernel with ldb = d, and W's rows as A
 * (lda = cg k); no im2col copy. Reads up to 15 floats past the last row's
 * Lo + d (k - 1) values (the caller's slack). */
AVX2 static void gconv1d_avx2(const float *W, int64_t rows, int64_t cg, int64_t k,
                              const float *Xp, int64_t lp, int64_t d, int64_t lo, float *Y)
{
    for (int64_t i = 0, mr; i < rows; i += mr) {
        mr = next_mr(rows - i);
        for (int64_t t0 = 0; t0 < lo; t0 += 16) {
            const int nc = (int)(lo - t0 < 16 ? lo - t0 : 16);
            for (int64_t c = 0; c < cg; c++)
                micro_6x16(W + i * cg * k + c * k, cg * k, Xp + c * lp + t0, d, k,
                           Y + i * lo + t0, lo, (int)mr, nc, 1, NULL, 0);
        }
    }
}

/* mean and variance (two passes, float lanes: 32 partial sums) */
AVX2 static void moments_avx2(const float *r, int64_t len, float *mean, float *var)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = 0;
    for (; i + 32 <= len; i += 32) {
        s0 = _mm256_add_ps(s0, _mm256_loadu_ps(r + i));
        s1 = _mm256_add_ps(s1, _mm256_loadu_ps(r + i + 8));
        s2 = _mm256_add_ps(s2, _mm256_loadu_ps(r + i + 16));
        s3 = _mm256_add_ps(s3, _mm256_loadu_ps(r + i + 24));
    }
    for (; i + 8 <= len; i += 8)
        s0 = _mm256_add_ps(s0, _mm256_loadu_ps(r + i));
    float t = hsum8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < len; i++)
        t += r[i];
    const float mu = t / (float)len;
    const __m256 mv = _mm256_set1_ps(mu);
    s0 = s1 = s2 = s3 = _mm256_setzero_ps();
    for (i = 0; i + 32 <= len; i += 32) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(r + i), mv);
        __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(r + i + 8), mv);
        __m256 d2 = _mm256_sub_ps(_mm256_loadu_ps(r + i + 16), mv);
        __m256 d3 = _mm256_sub_ps(_mm256_loadu_ps(r + i + 24), mv);
        s0 = _mm256_fmadd_ps(d0, d0, s0);
        s1 = _mm256_fmadd_ps(d1, d1, s1);
        s2 = _mm256_fmadd_ps(d2, d2, s2);
        s3 = _mm256_fmadd_ps(d3, d3, s3);
    }
    for (; i + 8 <= len; i += 8) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(r + i), mv);
        s0 = _mm256_fmadd_ps(d0, d0, s0);
    }
    t = hsum8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < len; i++)
        t += (r[i] - mu) * (r[i] - mu);
    *mean = mu;
    *var = t / (float)len;
}

/* w = (r - mean) inv scale + bias (bias may be NULL) */
AVX2 static void normalize_avx2(const float *r, float *w, int64_t len, float mean, float inv,
                                const float *scale, const float *bias)
{
    const __m256 mv = _mm256_set1_ps(mean), iv = _mm256_set1_ps(inv);
    int64_t i = 0;
    for (; i + 8 <= len; i += 8) {
        __m256 y = _mm256_mul_ps(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(r + i), mv), iv),
                                 _mm256_loadu_ps(scale + i));
        if (bias)
            y = _mm256_add_ps(y, _mm256_loadu_ps(bias + i));
        _mm256_storeu_ps(w + i, y);
    }
    for (; i < len; i++)
        w[i] = (r[i] - mean) * inv * scale[i] + (bias ? bias[i] : 0.0f);
}

/* w = r a + b */
AVX2 static void affine_avx2(const float *r, float *w, int64_t len, float a, float b)
{
    const __m256 av = _mm256_set1_ps(a), bv = _mm256_set1_ps(b);
    int64_t i = 0;
    for (; i + 8 <= len; i += 8)
        _mm256_storeu_ps(w + i, _mm256_fmadd_ps(_mm256_loadu_ps(r + i), av, bv));
    for (; i < len; i++)
        w[i] = r[i] * a + b;
}

/* exp of x <= 0 (softmax's x - max; NaN stays NaN), exp8's polynomial
 * with four operations fewer: no upper clamp, and n = round(x log2 e)
 * found by adding 1.5 2^23 + 127 (n + 127 in the low mantissa bits, then
 * shifted into the exponent field): no round, no conversion, no integer
 * add. Below -87.3 the result is 2^-126 e^r (tiny, and later divided by a
 * sum >= 1). */
AVX2 static inline __m256 expneg8(__m256 x)
{
    const __m256 magic = _mm256_set1_ps(12583039.0f); /* 1.5 2^23 + 127 */
    x = _mm256_max_ps(_mm256_set1_ps(-87.3365478515625f), x);
    const __m256 fb = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), magic);
    const __m256 fx = _mm256_sub_ps(fb, magic); /* n, exactly */
    __m256 y = exp8_reduced(x, fx);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(fb), 23)));
}

/* lanes [0, r) of 8 (r in 1..7): the tail of a row */
AVX2 static inline __m256i tail_mask(int64_t r)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)r),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* the max pass of softmax_scaled: out = in / div (+ mask), as Div and Add
 * round them, and its max */
AVX2 static __m256 scaled_max(const float *in, float *out, int64_t len, float div,
                              const float *mask)
{
    const __m256 dv = _mm256_set1_ps(div);
    __m256 mx8 = _mm256_set1_ps(-INFINITY);
    int64_t i = 0;
    for (; i + 8 <= len; i += 8) {
        __m256 v = _mm256_loadu_ps(in + i);
        if (div != 1.0f)
            v = _mm256_div_ps(v, dv);
        if (mask)
            v = _mm256_add_ps(v, _mm256_loadu_ps(mask + i));
        _mm256_storeu_ps(out + i, v);
        mx8 = _mm256_max_ps(mx8, v);
    }
    for (; i < len; i++) {
        float v = in[i];
        if (div != 1.0f)
            v = v / div;
        if (mask)
            v = v + mask[i];
        out[i] = v;
        mx8 = _mm256_max_ps(mx8, _mm256_set1_ps(v));
    }
    return mx8;
}

/* Three passes over a row that stays in L1 after the first: max, exp and
 * sum, scale. The row's tail (197 keys: 5 values) goes through a masked
 * load and the same expneg8 as the rest, not libm expf and scalar loops
 * (figures in docs/benchmarks.md; two accumulators a pass were slower on
 * short rows). xf: the row is in / div + mask (softmax_scaled), made by the max pass
 * into out and read from there by the others */
AVX2 static void softmax_avx2(const float *in, float *out, int64_t len, int xf, float div,
                              const float *mask)
{
    const int64_t l8 = len & ~(int64_t)7, r = len - l8;
    const __m256i tm = tail_mask(r);
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    __m256 mx8 = ninf, mx8b = ninf;
    int64_t i = 0;
    if (xf) {
        mx8 = scaled_max(in, out, len, div, mask);
        in = out;
    } else {
        for (; i < l8; i += 8)
            mx8 = _mm256_max_ps(mx8, _mm256_loadu_ps(in + i));
        if (r) /* masked-off lanes read as 0: -inf in their place */
            mx8b = _mm256_max_ps(mx8b, _mm256_blendv_ps(ninf, _mm256_maskload_ps(in + l8, tm),
                                                         _mm256_castsi256_ps(tm)));
    }
    mx8 = _mm256_max_ps(mx8, mx8b);
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(mx8), _mm256_extractf128_ps(mx8, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_shuffle_ps(h, h, 1));
    const __m256 mv = _mm256_set1_ps(_mm_cvtss_f32(h));
    __m256 s8 = _mm256_setzero_ps(), s8b = s8;
    for (i = 0; i < l8; i += 8) {
        const __m256 v = expneg8(_mm256_sub_ps(_mm256_loadu_ps(in + i), mv));
        _mm256_storeu_ps(out + i, v);
        s8 = _mm256_add_ps(s8, v);
    }
    float t[8];
    if (r) { /* a masked store is slow on AMD: through t */
        const __m256 v = _mm256_and_ps(expneg8(_mm256_sub_ps(_mm256_maskload_ps(in + l8, tm), mv)),
                                       _mm256_castsi256_ps(tm));
        _mm256_storeu_ps(t, v);
        s8b = _mm256_add_ps(s8b, v);
    }
    const float inv = 1.0f / hsum8(_mm256_add_ps(s8, s8b));
    const __m256 iv = _mm256_set1_ps(inv);
    for (i = 0; i < l8; i += 8)
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_loadu_ps(out + i), iv));
    for (int64_t q = 0; q < r; q++)
        out[l8 + q] = t[q] * inv;
}

AVX2 static void tanh_avx2(const float *in, float *out, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, tanh8(_mm256_loadu_ps(in + i)));
    for (; i < n; i++)
        out[i] = tanhf(in[i]);
}
#endif

void occ_vec_erf(const float *in, float *out, int64_t n)
{
#ifdef OCC_HAVE_AVX2_PATH
    if (use_avx2()) {
        erf_avx2(in, out, n);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++)
        out[i] = erf_s(in[i]);
}

void occ_vec_gelu(const float *in, float *out, int64_t n)
{
#ifdef OCC_HAVE_AVX2_PATH
    if (use_avx2()) {
        gelu_avx2(in, out, n);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++)
        out[i] = 0.5f * in[i] * (1.0f + erf_s(in[i] * 0.7071067811865476f));
}

void occ_vec_sigmoid(const float *in, float *out, int64_t n)
{
#ifdef OCC_HAVE_AVX2_PATH
    if (use_avx2()) {
        sigmoid_avx2(in, out, n);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++)
        out[i] = 1.0f / (1.0f + expf(-in[i]));
}

void occ_vec_tanh(const float *in, float *out, int64_t n)
{
#ifdef OCC_HAVE_AVX2_PATH
    if (use_avx2()) {
        tanh_avx2(in, out, n);
        return;
    }
#endif
    for (int64_t i = 0; i < n; i++)
        out[i] = tanhf(in[i]);
}

void occ_vec_gemv(const float *A, int64_t rows, int64_t cols, int64_t lda, const float *x,
                  const float *add, float *y)
{
#ifdef OCC_HAVE_AVX2_PATH
    if (use_avx2()) {
        gemv_avx2(A, rows, cols, lda, x, add, y);
        return;
    }
#endif
    for (int64_t r = 0; r < rows; r++) {
        float t = 0.0f;
        for (int64_t j = 0; j < cols; j++)
            t += A[r * lda + j] * x[j];
        y[r] = (add ? add[r] : 0.0f) + t;
    }
}

void occ_vec_gemm_panels(const float *A, int64_t m, int64_t k, int64_t lda, const float *B,
                         int64_t np, int bias, int64_t c0, int64_t n, float *Y, int64_t ldy)
{
    occ_vec_gemm_panels_act(A, m, k, lda, B, np, bias, OCC_ACT_NONE, c0, n, Y, ldy);
}

void occ_vec_gemm_panels_act(const float *A, int64_t m, int64_t k, int64_t lda, const float *B,
                             int64_t np, int bias, int act, int64_t c0, int64_t n, float *Y,
                             int64_t ldy)
{
    const int64_t ps = (k + (bias ? 1 : 0)) * 16; /* floats per panel */
#ifdef OCC_HAVE_AVX2_PATH
    if (use_avx2()) {
        panels_avx2(A, m, k, lda, B, np, ps, bias, act, c0, n, Y, ldy);
        return;
    }
#endif
    for (int64_t j = 0; j < np; j++)
        for (int64_t i = 0; i < m; i++)
            for (int64_t q = 0; q < 16 && c0 + j * 16 + q < n; q++) {
                float t = 0.0f;
                for (int64_t kk = 0; kk < k; kk++)
                    t += A[i * lda + kk] * B[j * ps + kk * 16 + q];
                Y[i * ldy + c0 + j * 16 + q] = act_s(act, bias ? t + B[j * ps + k * 16 + q] : t);
            }
}

int occ_vec_fast(void)
{
#ifdef OCC_HAVE_AVX2_PATH
    return use_avx2();
#else
    return 0;
#endif
}

void occ_vec_gemm_plain(const float *A, int64_t m, int64_t k, int64_t lda, const float *B,
                        int64_t ldb, int64_t n, float *Y, int64_t ldy)
{
#ifdef OCC_HAVE_AVX2_PATH
    if (use_avx2()) {
        plain_avx2(A, m, k, lda, B, ldb, n, Y, ldy);
        return;
    }
#endif
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            float t = 0.0f;
            for (int64_t kk = 0; kk < k; kk++)
                t += A[i * lda + kk] * B[kk * ldb + j];
            Y[i * ldy + j] = t;
        }
}

void occ_vec_moments(const float *r, int64_t len, float *mean, float *var)
{
#ifdef OCC_HAVE_AVX2_PATH
    if (use_avx2()) {
        moments_avx2(r, len, mean, var);
        return;
    }
#endif
    double t = 0.0, q = 0.0;
    for (int64_t i = 0; i < len; i++)
        t += r[i];
    const double mu = t / (double)len;
    for (int64_t i = 0; i < len; i++)
        q += (r[i] - mu) * (r[i] - mu);
    *mean = (float)mu;
    *var = (float)(q / (double)len);
}

void occ_vec_normalize(const float *r, float *w, int64_t len, float mean, float inv,
                       const float *scale, const float *bias)
{
#ifdef OCC_HAVE_AVX2_PATH
    if (use_avx2()) {
        normalize_avx2(r, w, len, mean, inv, scale, bias);
        return;
    }
#endif
    for (int64_t i = 0; i < len; i++)
        w[i] = (r[i] - mean) * inv * scale[i] + (bias ? bias[i] : 0.0f);
}

void occ_vec_affine(const float *r, float *w, int64_t len, float a, float b)
{
#ifdef OCC_HAVE_AVX2_PATH
    if (use_avx2()) {
        affine_avx2(r, w, len, a, b);
        return;
    }
#endif
    for (int64_t i = 0; i < len; i++)
        w[i] = r[i] * a + b;
}

void occ_vec_softmax(const float *in, float *out, int64_t len)
{
#ifdef OCC_HAVE_AVX2_PATH
    if (use_avx2()) {
        softmax_avx2(in, out, len, 0, 1.0f, NULL);
        return;
    }
#endif
    float mx = -INFINITY, sum = 0.0f;
    for (int64_t i = 0; i < len; i++)
        mx = in[i] > mx ? in[i] : mx;
    for (int64_t i = 0; i < len; i++) {
        out[i] = expf(in[i] - mx);
        sum += out[i];
    }
    const float inv = 1.0f / sum;
    for (int64_t i = 0; i < len; i++)
        out[i] *= inv;
}

void occ_vec_softmax_scaled(const float *in, float *out, int64_t len, float div,
                            const float *mask)
{
    /* x / div exactly as Div does it (a division, not a product by 1 /
     * div), then + mask */
#ifdef OCC_HAVE_AVX2_PATH
    if (use_avx2()) {
        softmax_avx2(in, out, len, 1, div, mask);
        return;
    }
#endif
    for (int64_t i = 0; i < len; i++) {
        float v = div != 1.0f ? in[i] / div : in[i];
        out[i] = mask ? v + mask[i] : v;
    }
    occ_vec_softmax(out, out, len);
}

void occ_vec_gconv1d(const float *W, int64_t rows, int64_t cg, int64_t k, const float *Xp,
                     int64_t lp, int64_t d, int64_t lo, float *Y)
{
#ifdef OCC_HAVE_AVX2_PATH
    if (use_avx2()) {
        gconv1d_avx2(W, rows, cg, k, Xp, lp, d, lo, Y);
        return;
    }
#endif
    for (int64_t r = 0; r < rows; r++)
        for (int64_t t = 0; t < lo; t++) {
            float acc = 0.0f;
            for (int64_t c = 0; c < cg; c++)
                for (int64_t j = 0; j < k; j++)
                    acc += W[(r * cg + c) * k + j] * Xp[c * lp + t + d * j];
            Y[r * lo + t] += acc;
        }
}
