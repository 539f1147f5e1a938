/* The panel layout of a Linear's weight (src/pack/fuse.c, the MatMul's
 * occ_packB), built by hand for the GEMM tests (test_seq_kernels.c,
 * test_seq_epilogue.c). */
#ifndef OCC_TEST_PANELS_H
#define OCC_TEST_PANELS_H

#include <stdint.h>
#include <stdlib.h>

/* W [K, N] row-major (and a bias [N]) -> panels [ceil(N/16), (K + 1?) * 16] */
static inline float *panels_b(const float *w, const float *bias, int64_t K, int64_t N)
{
    int64_t np = (N + 15) / 16, kb = K + (bias != NULL);
    float *p = calloc((size_t)(np * 16 * kb), sizeof *p);
    for (int64_t j = 0; j < np; j++)
        for (int64_t i = 0; i < kb; i++)
            for (int64_t q = 0; q < 16 && j * 16 + q < N; q++)
                p[(j * kb + i) * 16 + q] = i < K ? w[i * N + j * 16 + q] : bias[j * 16 + q];
    return p;
}

#endif
