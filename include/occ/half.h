/* IEEE 754 binary16 and bfloat16 <-> binary32 (src/common/half.c). */
#ifndef OCC_HALF_H
#define OCC_HALF_H

#include <stdint.h>

/* Exact: every half is a float. */
float occ_half_to_float(uint16_t h);
/* Rounds to nearest even; overflow gives infinity, NaN stays NaN (quiet). */
uint16_t occ_float_to_half(float f);

/* bfloat16 (the top 16 bits of a binary32). To float: exact. From float:
 * rounds to nearest even (as ONNX >= 1.13 and ONNX Runtime); NaN stays a
 * quiet NaN, overflow rounds to infinity. */
float occ_bf16_to_float(uint16_t b);
uint16_t occ_float_to_bf16(float f);
/* float64 to float16 / bfloat16 rounded once to nearest even (through a
 * float32 rounded to odd, so no double rounding). */
uint16_t occ_double_to_half(double d);
uint16_t occ_double_to_bf16(double d);

#endif
