/* Element-wise float functions on arrays, 8 lanes at a time with AVX2 and
 * FMA when the CPU has them (chosen at run time: the build targets plain
 * x86-64), a scalar loop of the same formulas otherwise (src/ops/vecmath.c).
 * Not thread-parallel: callers split the work. Internal to src/ops. */
#ifndef OCC_OPS_VECMATH_H
#define OCC_OPS_VECMATH_H

#include <stdint.h>

/* erf by Eigen's rational approximation on [-4, 4] (max error 4.2e-7). */
void occ_vec_erf(const float *in, float *out, int64_t n);
/* GELU (exact form): 0.5 x (1 + erf(x / sqrt 2)). */
void occ_vec_gelu(const float *in, float *out, int64_t n);
/* 1 / (1 + exp(-x)); relative error ~2e-7 (exp by a degree-6 polynomial
 * after range reduction, arguments clamped to [-88, 88]). */
void occ_vec_sigmoid(const float *in, float *out, int64_t n);
/* tanh by a rational approximation (|x| < 9; +-1 beyond), error ~3e-7. */
void occ_vec_tanh(const float *in, float *out, int64_t n);

/* y[r] = add[r] + A[r, :] . x for r < rows (A row-major, lda floats a
 * row; add may be NULL): an LSTM step's recurrence, one row of h against
 * R. Single-threaded, so that two directions can run on two cores. */
void occ_vec_gemv(const float *A, int64_t rows, int64_t cols, int64_t lda, const float *x,
                  const float *add, float *y);

/* Y[:, c0:c0+16*np) (clipped at column n) = A B (+ bias) for A [m, k]
 * (lda) and B given as np panels of 16 columns, each [k][16] floats (zero
 * beyond column n) followed, when bias, by one more row of 16: the bias of
 * those columns. The layout the packer stores a Linear's weight in
 * (src/pack/fuse.c). Y has ldy floats a row. Splits the panels over the
 * threads of par.h's pool. */
void occ_vec_gemm_panels(const float *A, int64_t m, int64_t k, int64_t lda, const float *B,
                         int64_t np, int bias, int64_t c0, int64_t n, float *Y, int64_t ldy);

/* Activations the panel GEMM applies in its store epilogue (MatMul's
 * occ_act, set by src/pack/epifold.c): the formulas of the separate ops
 * (GELU erf form as occ_vec_gelu, tanh form as unary.c's scalar loop), so
 * that folding changes no bit. */
enum { OCC_ACT_NONE = 0, OCC_ACT_RELU = 1, OCC_ACT_GELU = 2, OCC_ACT_GELU_TANH = 3 };
/* occ_vec_gemm_panels, then act on every output (act: OCC_ACT_*). */
void occ_vec_gemm_panels_act(const float *A, int64_t m, int64_t k, int64_t lda, const float *B,
                             int64_t np, int bias, int act, int64_t c0, int64_t n, float *Y,
                             int64_t ldy);

/* Mean and (biased) variance of r[0, len), two passes (len >= 1). */
void occ_vec_moments(const float *r, int64_t len, float *mean, float *var);
/* w = (r - mean) inv scale + bias, per element scale and bias (NULL: 0). */
void occ_vec_normalize(const float *r, float *w, int64_t len, float mean, float inv,
                       const float *scale, const float *bias);
/* w = r a + b */
void occ_vec_affine(const float *r, float *w, int64_t len, float a, float b);
/* Softmax of one contiguous row (in == out allowed): exp(x - max) / sum;
 * exp by occ_vec_sigmoid's polynomial (the AVX2 path on its whole row, the
 * tail included). Relative error <= 4.3e-7 (3.6 ulp) against a double
 * softmax of the float differences x - max (tests/test_seq_kernels.c);
 * the difference itself, rounded like any float softmax's, adds up to
 * |x - max| 2^-24. */
void occ_vec_softmax(const float *in, float *out, int64_t len);
/* Softmax of in / div + mask (mask: len floats, or NULL; div 1: none),
 * the Div and Add attention puts before its Softmax (src/pack/epifold.c):
 * the same two roundings as the separate ops, written to out, then
 * occ_vec_softmax in place. Bitwise what Div, Add, Softmax give. */
void occ_vec_softmax_scaled(const float *in, float *out, int64_t len, float div,
                            const float *mask);

/* Y[r, t] += sum_{c < cg, j < k} W[(r cg + c) k + j] Xp[c lp + t + d j]
 * for r < rows, t < lo (Y rows lo apart): one group of a stride-1 1-D
 * convolution over its zero-padded input rows (lp floats apart). Xp must
 * stay readable 16 floats past its last row. One thread. */
void occ_vec_gconv1d(const float *W, int64_t rows, int64_t cg, int64_t k, const float *Xp,
                     int64_t lp, int64_t d, int64_t lo, float *Y);

/* 1 when the AVX2 + FMA kernels run (else the scalar loops: callers with
 * a oneDNN alternative take it). */
int occ_vec_fast(void);

/* Y[m, n] = A[m, k] B[k, n] for a plain row-major B (ldb floats a row),
 * one thread: attention's batched products, which callers split by batch
 * and rows. */
void occ_vec_gemm_plain(const float *A, int64_t m, int64_t k, int64_t lda, const float *B,
                        int64_t ldb, int64_t n, float *Y, int64_t ldy);

#endif
