/* IEEE 754 binary16 <-> binary32 (src/common/half.c). */
#ifndef OCC_HALF_H
#define OCC_HALF_H

#include <stdint.h>

/* Exact: every half is a float. */
float occ_half_to_float(uint16_t h);
/* Rounds to nearest even; overflow gives infinity, NaN stays NaN (quiet). */
uint16_t occ_float_to_half(float f);

#endif
