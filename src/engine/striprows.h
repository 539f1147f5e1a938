/* Strip arithmetic (pure): which input rows a band of output rows of a
 * row-local layer (a Conv or pool window along the height) reads, and the
 * same backwards through a strip chain (src/engine/strips.c). */
#ifndef OCC_STRIPROWS_H
#define OCC_STRIPROWS_H

#include <stdint.h>

/* A layer's window along the height: kernel, stride, dilation, padding at
 * the top, input rows and output rows (the bottom padding follows). */
typedef struct occ_rows_win {
    int64_t k, s, d, pt, in, out;
} occ_rows_win;

/* Input rows [lo, hi) a band of output rows reads, and the padding rows the
 * band's kernel sees above (pt) and below (pb) them: nonzero only at the
 * input's top and bottom, where they are the layer's own padding. */
typedef struct occ_rows {
    int64_t lo, hi, pt, pb;
} occ_rows;

/* The input rows output rows [o0, o1) read (0 <= o0 < o1 <= w->out). */
void occ_rows_needed(const occ_rows_win *w, int64_t o0, int64_t o1, occ_rows *r);

/* Backwards through layers w[0..n) (layer i reads layer i-1's output): for
 * output rows [o0, o1) of the last, r[i] = the rows layer i reads. */
void occ_rows_chain(const occ_rows_win *w, uint32_t n, int64_t o0, int64_t o1, occ_rows *r);

/* Strips of `rows` output rows of the last layer (the last strip may be
 * shorter): how many; and per tensor of the chain (0 = the input, i + 1 =
 * layer i's output) the most rows any strip holds of it, in max_rows[0..n].
 * Returns 0 (max_rows untouched) if some strip reads no row at all. */
uint32_t occ_rows_strips(const occ_rows_win *w, uint32_t n, int64_t rows, int64_t *max_rows);

#endif
