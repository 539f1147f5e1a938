/* IEEE 754 binary16 and bfloat16 <-> binary32, bit-exact (round to nearest even),
 * shared by the engine's float16 data movement and Cast (src/ops) and the
 * client's FP16 tensors (src/client). */
#include <math.h>
#include <string.h>

#include "occ/half.h"

float occ_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ffu, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13); /* inf / NaN */
    } else if (exp) {
        bits = sign | ((exp + 112u) << 23) | (man << 13);
    } else if (man) { /* subnormal: normalise */
        int e = -1;
        do {
            e++;
            man <<= 1;
        } while (!(man & 0x400u));
        bits = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ffu) << 13);
    } else {
        bits = sign;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t occ_float_to_half(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t exp = (x >> 23) & 0xffu, man = x & 0x7fffffu;
    if (exp == 0xff)
        return (uint16_t)(sign | 0x7c00u | (man ? 0x200u : 0)); /* inf / quiet NaN */
    int e = (int)exp - 127 + 15;
    if (e >= 0x1f)
        return (uint16_t)(sign | 0x7c00u); /* overflow: infinity */
    if (e <= 0) { /* subnormal or zero */
        if (e < -10)
            return sign;
        man |= 0x800000u;
        uint32_t shift = (uint32_t)(14 - e), half = man >> shift, rem = man & ((1u << shift) - 1);
        uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1)))
            half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = ((uint32_t)e << 10) | (man >> 13), rem = man & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (half & 1)))
        half++; /* may carry into the exponent: still right (up to infinity) */
    return (uint16_t)(sign | half);
}

float occ_bf16_to_float(uint16_t b)
{
    uint32_t bits = (uint32_t)b << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t occ_float_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((x >> 16) | 0x40u); /* NaN: keep it a (quiet) NaN */
    /* round to nearest even on the dropped 16 bits; a carry may reach the
     * exponent and give infinity, as it should */
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

/* d as a float32 rounded to odd: truncated toward zero, with the last bit
 * set when that dropped anything. Rounding it again to a format of fewer
 * than 23 - 1 fraction bits is then the correct rounding of d. */
static float to_float_odd(double d)
{
    float f = (float)d;
    if (f != f || (double)f == d || f == INFINITY || f == -INFINITY)
        return f; /* NaN, exact, or beyond float32 (infinity either way) */
    uint32_t x;
    memcpy(&x, &f, 4);
    if (fabs((double)f) > fabs(d))
        x--; /* rounded away from zero: step back toward it */
    x |= 1u;
    memcpy(&f, &x, 4);
    return f;
}

uint16_t occ_double_to_half(double d)
{
    return occ_float_to_half(to_float_odd(d));
}

uint16_t occ_double_to_bf16(double d)
{
    return occ_float_to_bf16(to_float_odd(d));
}
