/* The element types added for issue 12 (float64, int16, uint16, uint32,
 * uint64, bfloat16) through the engine: the dtype table, bfloat16 and float64
 * conversion edge cases (Cast), float64 computed in double (not through
 * float), uint64 beyond int64 (compared, divided, shifted unsigned), and the
 * type-generic operators taking them. */
#include <float.h>
#include <math.h>

#include "occ/half.h"
#include "test_typed_run.h"

static void test_table(void)
{
    static const struct { uint32_t dt; size_t size; const char *name; } t[] = {
        {OCC_DTYPE_DOUBLE, 8, "float64"}, {OCC_DTYPE_INT16, 2, "int16"},
        {OCC_DTYPE_UINT16, 2, "uint16"},  {OCC_DTYPE_UINT32, 4, "uint32"},
        {OCC_DTYPE_UINT64, 8, "uint64"},  {OCC_DTYPE_BFLOAT16, 2, "bfloat16"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        CHECK_MSG(occ_dtype_size(t[i].dt) == t[i].size, "size of %s", t[i].name);
        CHECK_MSG(occ_dtype_name(t[i].dt) && !strcmp(occ_dtype_name(t[i].dt), t[i].name), "name of %u",
                  t[i].dt);
        CHECK_MSG(occ_dtype_from_name(t[i].name) == t[i].dt, "from name %s", t[i].name);
    }
    CHECK(t[0].dt == 11 && t[1].dt == 5 && t[2].dt == 4 && t[3].dt == 12 && t[4].dt == 13 && t[5].dt == 16);
    /* still no element type: string, complex, and codes beyond the table */
    CHECK(occ_dtype_size(8) == 0 && occ_dtype_size(14) == 0 && occ_dtype_size(15) == 0 &&
          occ_dtype_size(17) == 0 && occ_dtype_name(8) == NULL);
    CHECK(occ_dtype_is_float(OCC_DTYPE_DOUBLE) && occ_dtype_is_float(OCC_DTYPE_BFLOAT16) &&
          !occ_dtype_is_float(OCC_DTYPE_UINT64));
    CHECK(occ_dtype_is_unsigned(OCC_DTYPE_UINT64) && occ_dtype_is_unsigned(OCC_DTYPE_UINT16) &&
          !occ_dtype_is_unsigned(OCC_DTYPE_INT16));
}

/* bfloat16 <-> float32 bit for bit: round to nearest even on the dropped
 * half, carry into the exponent, overflow to infinity, NaN kept quiet. */
static void test_bf16_bits(void)
{
    static const struct { uint32_t f; uint16_t b; } v[] = {
        {0x3f800000u, 0x3f80}, /* 1.0 */
        {0x3f808000u, 0x3f80}, /* exactly half way, even below: down */
        {0x3f818000u, 0x3f82}, /* half way, odd below: up */
        {0x3f808001u, 0x3f81}, /* just above half: up */
        {0x3f807fffu, 0x3f80}, /* just below half: down */
        {0x3fffffffu, 0x4000}, /* carries into the exponent */
        {0x7f7fffffu, 0x7f80}, /* FLT_MAX rounds to infinity */
        {0xff800000u, 0xff80}, /* -inf */
        {0x7f800001u, 0x7fc0}, /* signalling NaN: stays NaN, made quiet */
        {0xffc00000u, 0xffc0}, /* -NaN */
        {0x00000001u, 0x0000}, /* the smallest subnormal: to +0 */
        {0x80000000u, 0x8000}, /* -0 */
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        float f;
        memcpy(&f, &v[i].f, 4);
        CHECK_MSG(occ_float_to_bf16(f) == v[i].b, "bf16(0x%08x) = 0x%04x, want 0x%04x", v[i].f,
                  occ_float_to_bf16(f), v[i].b);
    }
    CHECK(occ_bf16_to_float(0x3f80) == 1.0f && occ_bf16_to_float(0xc040) == -3.0f);
    CHECK(isinf(occ_bf16_to_float(0x7f80)) && isnan(occ_bf16_to_float(0x7fc0)));
    /* every bfloat16 survives a trip through float32 */
    int bad = 0;
    for (uint32_t b = 0; b < 0x10000u; b++) {
        float f = occ_bf16_to_float((uint16_t)b);
        if (!isnan(f) && occ_float_to_bf16(f) != b)
            bad++;
    }
    CHECK(bad == 0);
}

static void test_cast(void)
{
    res r;
    /* float64 -> float32 / int64 / uint8 / bfloat16 / float16 */
    const double d[6] = {0.1, -2.5, 1e300, NAN, 3.999999999, -1e-320};
    tv ind[1] = {{OCC_DTYPE_DOUBLE, 1, {6}, d, 0}};
    occ_attr to_f[1] = {A_INT("to", OCC_DTYPE_FLOAT)};
    run_op(&r, "Cast", 1, ind, 1, 1, to_f);
    float fw[6] = {0.1f, -2.5f, INFINITY, NAN, 4.0f, -0.0f};
    {
        int ok = r.st == OCC_OK;
        for (int i = 0; ok && i < 6; i++) {
            float g = ((const float *)r.out[0])[i];
            ok = isnan(fw[i]) ? isnan(g) : (g == fw[i] && signbit(g) == signbit(fw[i]));
        }
        CHECK_MSG(ok, "Cast float64->float32 (rounded once, overflow to inf, NaN kept): %s", r.msg);
    }
    res_free(&r);
    occ_attr to_i64[1] = {A_INT("to", OCC_DTYPE_INT64)};
    run_op(&r, "Cast", 1, ind, 1, 1, to_i64);
    expect_out("Cast float64->int64 (truncating, saturating, NaN 0)", &r, 0, OCC_DTYPE_INT64, 1,
               (int64_t[]){6}, (int64_t[]){0, -2, INT64_MAX, 0, 3, 0});
    res_free(&r);
    occ_attr to_bf[1] = {A_INT("to", OCC_DTYPE_BFLOAT16)};
    run_op(&r, "Cast", 1, ind, 1, 1, to_bf);
    expect_out("Cast float64->bfloat16", &r, 0, OCC_DTYPE_BFLOAT16, 1, (int64_t[]){6},
               (uint16_t[]){0x3dcd, 0xc020, 0x7f80, 0x7fc0, 0x4080, 0x8000});
    res_free(&r);
    /* float64 -> float16 / bfloat16 rounds once: just above a tie rounds up
     * (through float32 the 2^-40 would be lost and the tie go to even) */
    const double ties[4] = {1.0 + 0x1p-11 + 0x1p-40, -(1.0 + 0x1p-11 + 0x1p-40), 1.0 + 0x1p-8 + 0x1p-40,
                            1.0 + 0x1p-11};
    tv intie[1] = {{OCC_DTYPE_DOUBLE, 1, {4}, ties, 0}};
    occ_attr to_h[1] = {A_INT("to", OCC_DTYPE_FLOAT16)};
    run_op(&r, "Cast", 1, intie, 1, 1, to_h);
    expect_out("Cast float64->float16 (one rounding)", &r, 0, OCC_DTYPE_FLOAT16, 1, (int64_t[]){4},
               (uint16_t[]){0x3c01, 0xbc01, 0x3c04, 0x3c00});
    res_free(&r);
    run_op(&r, "Cast", 1, intie, 1, 1, to_bf);
    expect_out("Cast float64->bfloat16 (one rounding)", &r, 0, OCC_DTYPE_BFLOAT16, 1, (int64_t[]){4},
               (uint16_t[]){0x3f80, 0xbf80, 0x3f81, 0x3f80});
    res_free(&r);
    CHECK(occ_double_to_half(65520.0) == 0x7c00 && occ_double_to_half(65519.99) == 0x7bff &&
          occ_double_to_bf16(1e-300) == 0x0000 && occ_double_to_bf16(-1e-300) == 0x8000 &&
          occ_double_to_bf16(1e300) == 0x7f80 && occ_double_to_half(NAN) == 0x7e00);
    /* float32 -> float64 exact; bfloat16 -> float64 exact */
    const float f[3] = {0.1f, -3e38f, 1.5f};
    tv inf[1] = {{OCC_DTYPE_FLOAT, 1, {3}, f, 0}};
    occ_attr to_d[1] = {A_INT("to", OCC_DTYPE_DOUBLE)};
    run_op(&r, "Cast", 1, inf, 1, 1, to_d);
    expect_out("Cast float32->float64 (exact)", &r, 0, OCC_DTYPE_DOUBLE, 1, (int64_t[]){3},
               (double[]){(double)0.1f, (double)-3e38f, 1.5});
    res_free(&r);
    const uint16_t bf[3] = {0x3f80, 0xc2f7, 0x0001};
    tv inb[1] = {{OCC_DTYPE_BFLOAT16, 1, {3}, bf, 0}};
    run_op(&r, "Cast", 1, inb, 1, 1, to_d);
    expect_out("Cast bfloat16->float64", &r, 0, OCC_DTYPE_DOUBLE, 1, (int64_t[]){3},
               (double[]){1.0, -123.5, (double)occ_bf16_to_float(0x0001)});
    res_free(&r);
    /* uint64 beyond int64 -> float32 / float64 / int16 (wraps) */
    const uint64_t u[3] = {UINT64_MAX, 1ull << 63, 70000};
    tv inu[1] = {{OCC_DTYPE_UINT64, 1, {3}, u, 0}};
    run_op(&r, "Cast", 1, inu, 1, 1, to_d);
    expect_out("Cast uint64->float64", &r, 0, OCC_DTYPE_DOUBLE, 1, (int64_t[]){3},
               (double[]){18446744073709551615.0, 9223372036854775808.0, 70000.0});
    res_free(&r);
    run_op(&r, "Cast", 1, inu, 1, 1, to_f);
    expect_out("Cast uint64->float32", &r, 0, OCC_DTYPE_FLOAT, 1, (int64_t[]){3},
               (float[]){18446744073709551615.0f, 9223372036854775808.0f, 70000.0f});
    res_free(&r);
    occ_attr to_i16[1] = {A_INT("to", OCC_DTYPE_INT16)};
    run_op(&r, "Cast", 1, inu, 1, 1, to_i16);
    expect_out("Cast uint64->int16 (wraps)", &r, 0, OCC_DTYPE_INT16, 1, (int64_t[]){3},
               (int16_t[]){-1, 0, 4464});
    res_free(&r);
    /* float -> unsigned saturates at both ends */
    const float fs[4] = {-5.0f, 1e20f, 65535.9f, 4294967296.0f};
    tv infs[1] = {{OCC_DTYPE_FLOAT, 1, {4}, fs, 0}};
    occ_attr to_u16[1] = {A_INT("to", OCC_DTYPE_UINT16)}, to_u32[1] = {A_INT("to", OCC_DTYPE_UINT32)},
             to_u64[1] = {A_INT("to", OCC_DTYPE_UINT64)};
    run_op(&r, "Cast", 1, infs, 1, 1, to_u16);
    expect_out("Cast float->uint16 (saturating)", &r, 0, OCC_DTYPE_UINT16, 1, (int64_t[]){4},
               (uint16_t[]){0, 65535, 65535, 65535});
    res_free(&r);
    run_op(&r, "Cast", 1, infs, 1, 1, to_u32);
    expect_out("Cast float->uint32 (saturating)", &r, 0, OCC_DTYPE_UINT32, 1, (int64_t[]){4},
               (uint32_t[]){0, UINT32_MAX, 65535, UINT32_MAX});
    res_free(&r);
    run_op(&r, "Cast", 1, infs, 1, 1, to_u64);
    expect_out("Cast float->uint64 (saturating)", &r, 0, OCC_DTYPE_UINT64, 1, (int64_t[]){4},
               (uint64_t[]){0, UINT64_MAX, 65535, 4294967296ull});
    res_free(&r);
}

/* float64 arithmetic keeps double precision (through float these would
 * round); uint64 compares, divides and takes Max/Min unsigned. */
static void test_arith(void)
{
    res r;
    const double a[3] = {1.0, 1e300, 0.1}, b[3] = {1e-12, 1e300, 0.2};
    tv in[2] = {{OCC_DTYPE_DOUBLE, 1, {3}, a, 0}, {OCC_DTYPE_DOUBLE, 1, {3}, b, 1}};
    run_op(&r, "Add", 2, in, 1, 0, NULL);
    expect_out("Add float64", &r, 0, OCC_DTYPE_DOUBLE, 1, (int64_t[]){3},
               (double[]){1.0 + 1e-12, 2e300, 0.1 + 0.2});
    res_free(&r);
    run_op(&r, "Div", 2, in, 1, 0, NULL);
    expect_out("Div float64", &r, 0, OCC_DTYPE_DOUBLE, 1, (int64_t[]){3},
               (double[]){1.0 / 1e-12, 1.0, 0.1 / 0.2});
    res_free(&r);
    run_op(&r, "Max", 2, in, 1, 0, NULL);
    expect_out("Max float64", &r, 0, OCC_DTYPE_DOUBLE, 1, (int64_t[]){3}, (double[]){1.0, 1e300, 0.2});
    res_free(&r);
    run_op(&r, "Less", 2, in, 1, 0, NULL);
    expect_out("Less float64", &r, 0, OCC_DTYPE_BOOL, 1, (int64_t[]){3}, (uint8_t[]){0, 0, 1});
    res_free(&r);
    run_op(&r, "Mean", 2, in, 1, 0, NULL);
    expect_out("Mean float64", &r, 0, OCC_DTYPE_DOUBLE, 1, (int64_t[]){3},
               (double[]){(1.0 + 1e-12) / 2, 1e300, (0.1 + 0.2) / 2});
    res_free(&r);
    const uint64_t ua[3] = {UINT64_MAX, 5, 1ull << 63}, ub[3] = {2, 1ull << 63, 3};
    tv inu[2] = {{OCC_DTYPE_UINT64, 1, {3}, ua, 0}, {OCC_DTYPE_UINT64, 1, {3}, ub, 0}};
    run_op(&r, "Max", 2, inu, 1, 0, NULL);
    expect_out("Max uint64", &r, 0, OCC_DTYPE_UINT64, 1, (int64_t[]){3},
               (uint64_t[]){UINT64_MAX, 1ull << 63, 1ull << 63});
    res_free(&r);
    run_op(&r, "Min", 2, inu, 1, 0, NULL);
    expect_out("Min uint64", &r, 0, OCC_DTYPE_UINT64, 1, (int64_t[]){3}, (uint64_t[]){2, 5, 3});
    res_free(&r);
    run_op(&r, "Div", 2, inu, 1, 0, NULL);
    expect_out("Div uint64 (unsigned)", &r, 0, OCC_DTYPE_UINT64, 1, (int64_t[]){3},
               (uint64_t[]){UINT64_MAX / 2, 0, (1ull << 63) / 3});
    res_free(&r);
    occ_attr nofmod[1] = {A_INT("fmod", 0)};
    run_op(&r, "Mod", 2, inu, 1, 1, nofmod);
    expect_out("Mod uint64", &r, 0, OCC_DTYPE_UINT64, 1, (int64_t[]){3},
               (uint64_t[]){1, 5, (1ull << 63) % 3});
    res_free(&r);
    run_op(&r, "Greater", 2, inu, 1, 0, NULL);
    expect_out("Greater uint64", &r, 0, OCC_DTYPE_BOOL, 1, (int64_t[]){3}, (uint8_t[]){1, 0, 1});
    res_free(&r);
    run_op(&r, "Add", 2, inu, 1, 0, NULL);
    expect_out("Add uint64 (wraps)", &r, 0, OCC_DTYPE_UINT64, 1, (int64_t[]){3},
               (uint64_t[]){1, 5 + (1ull << 63), (1ull << 63) + 3});
    res_free(&r);
    const int16_t sa[3] = {32767, -7, -32768}, sb[3] = {1, 2, -1};
    tv ins[2] = {{OCC_DTYPE_INT16, 1, {3}, sa, 0}, {OCC_DTYPE_INT16, 1, {3}, sb, 0}};
    run_op(&r, "Add", 2, ins, 1, 0, NULL);
    expect_out("Add int16 (wraps)", &r, 0, OCC_DTYPE_INT16, 1, (int64_t[]){3},
               (int16_t[]){-32768, -5, 32767});
    res_free(&r);
    run_op(&r, "Mod", 2, ins, 1, 1, nofmod);
    expect_out("Mod int16 (divisor's sign)", &r, 0, OCC_DTYPE_INT16, 1, (int64_t[]){3},
               (int16_t[]){0, 1, 0});
    res_free(&r);
    const uint16_t za[2] = {1, 2}, zb[2] = {0, 1};
    tv inz[2] = {{OCC_DTYPE_UINT16, 1, {2}, za, 0}, {OCC_DTYPE_UINT16, 1, {2}, zb, 0}};
    run_op(&r, "Div", 2, inz, 1, 0, NULL);
    expect_fail("Div uint16 by zero", &r, OCC_ERR_INVALID, 1, "integer division by zero");
    res_free(&r);
    /* Pow: float32 base, uint32 / uint64 exponents (ONNX's mixed types) */
    const float pb[3] = {2.0f, -3.0f, 0.5f};
    const uint32_t pe[3] = {10, 3, 2};
    tv inp[2] = {{OCC_DTYPE_FLOAT, 1, {3}, pb, 0}, {OCC_DTYPE_UINT32, 1, {3}, pe, 0}};
    run_op(&r, "Pow", 2, inp, 1, 0, NULL);
    expect_out("Pow float32^uint32", &r, 0, OCC_DTYPE_FLOAT, 1, (int64_t[]){3},
               (float[]){1024.0f, -27.0f, 0.25f});
    res_free(&r);
    /* types still refused where the spec has none: bfloat16 arithmetic */
    const uint16_t hb[2] = {0x3f80, 0x4000};
    tv inh[2] = {{OCC_DTYPE_BFLOAT16, 1, {2}, hb, 0}, {OCC_DTYPE_BFLOAT16, 1, {2}, hb, 0}};
    run_op(&r, "Add", 2, inh, 1, 0, NULL);
    expect_fail("Add bfloat16", &r, OCC_ERR_UNSUPPORTED, 0, "is bfloat16, which Add does not take");
    res_free(&r);
}

static void test_unsigned_ops(void)
{
    res r;
    const uint32_t x[4] = {0x80000001u, 1, 5, 7}, s[4] = {1, 31, 32, 0};
    tv in[2] = {{OCC_DTYPE_UINT32, 1, {4}, x, 0}, {OCC_DTYPE_UINT32, 1, {4}, s, 0}};
    occ_attr left[1] = {A_STR("direction", "LEFT")}, right[1] = {A_STR("direction", "RIGHT")};
    run_op(&r, "BitShift", 2, in, 1, 1, left);
    expect_out("BitShift uint32 left (width or more: 0)", &r, 0, OCC_DTYPE_UINT32, 1, (int64_t[]){4},
               (uint32_t[]){2, 0x80000000u, 0, 7});
    res_free(&r);
    const uint64_t y[2] = {UINT64_MAX, 1}, t[2] = {60, 64};
    tv in64[2] = {{OCC_DTYPE_UINT64, 1, {2}, y, 0}, {OCC_DTYPE_UINT64, 1, {2}, t, 0}};
    run_op(&r, "BitShift", 2, in64, 1, 1, right);
    expect_out("BitShift uint64 right (logical)", &r, 0, OCC_DTYPE_UINT64, 1, (int64_t[]){2},
               (uint64_t[]){15, 0});
    res_free(&r);
    const uint16_t h[2] = {0xffff, 1}, hs[2] = {4, 15};
    tv in16[2] = {{OCC_DTYPE_UINT16, 1, {2}, h, 0}, {OCC_DTYPE_UINT16, 1, {2}, hs, 0}};
    run_op(&r, "BitShift", 2, in16, 1, 1, left);
    expect_out("BitShift uint16 left (truncated)", &r, 0, OCC_DTYPE_UINT16, 1, (int64_t[]){2},
               (uint16_t[]){0xfff0, 0x8000});
    res_free(&r);
    /* ArgMax and TopK order uint64 beyond int64 */
    const uint64_t v[4] = {3, UINT64_MAX, 1ull << 63, 0};
    tv inv[1] = {{OCC_DTYPE_UINT64, 1, {4}, v, 0}};
    run_op(&r, "ArgMax", 1, inv, 1, 0, NULL);
    expect_out("ArgMax uint64", &r, 0, OCC_DTYPE_INT64, 1, (int64_t[]){1}, (int64_t[]){1});
    res_free(&r);
    run_op(&r, "ArgMin", 1, inv, 1, 0, NULL);
    expect_out("ArgMin uint64", &r, 0, OCC_DTYPE_INT64, 1, (int64_t[]){1}, (int64_t[]){3});
    res_free(&r);
    occ_attr ak[1] = {A_INT("k", 2)};
    run_op(&r, "TopK", 1, inv, 2, 1, ak);
    expect_out("TopK uint64 values", &r, 0, OCC_DTYPE_UINT64, 1, (int64_t[]){2},
               (uint64_t[]){UINT64_MAX, 1ull << 63});
    expect_out("TopK uint64 indices", &r, 1, OCC_DTYPE_INT64, 1, (int64_t[]){2}, (int64_t[]){1, 2});
    res_free(&r);
    run_op(&r, "Abs", 1, inv, 1, 0, NULL);
    expect_out("Abs uint64 (the value)", &r, 0, OCC_DTYPE_UINT64, 1, (int64_t[]){4}, v);
    res_free(&r);
}

/* float64 CumSum, ReduceLogSumExp, Einsum (and its diagonals), Neg in
 * double; EyeLike to every type; data movement of 2- and 8-byte types. */
static void test_f64_kernels(void)
{
    res r;
    /* exact in double, lost in float (whose step at 1e10 is 1024) */
    const double x[4] = {1e10, 1.0, 1.0, -1e10};
    tv in[1] = {{OCC_DTYPE_DOUBLE, 1, {4}, x, 0}};
    const int64_t ax0[1] = {0};
    occ_attr ax[1] = {A_INTS("axis", ax0, 1)};
    run_op(&r, "CumSum", 1, in, 1, 1, ax);
    expect_out("CumSum float64", &r, 0, OCC_DTYPE_DOUBLE, 1, (int64_t[]){4},
               (double[]){1e10, 1e10 + 1.0, 1e10 + 2.0, 2.0});
    res_free(&r);
    const double l[3] = {1000.0, 1000.0, 0.0};
    tv inl[1] = {{OCC_DTYPE_DOUBLE, 1, {3}, l, 0}};
    occ_attr keep[1] = {A_INT("keepdims", 0)};
    run_op(&r, "ReduceLogSumExp", 1, inl, 1, 1, keep);
    {
        double want = 1000.0 + log(2.0 + exp(-1000.0));
        CHECK_MSG(r.st == OCC_OK && r.t[0].ndim == 0 && occ_tensor_dtype(&r.t[0]) == OCC_DTYPE_DOUBLE &&
                      fabs(((const double *)r.out[0])[0] - want) < 1e-12,
                  "ReduceLogSumExp float64 (no overflow): %s", r.msg);
    }
    res_free(&r);
    const double ea[6] = {1, 2, 3, 4, 5, 6}, eb[6] = {1e-9, 1, 1, 0, 0, 1};
    tv ine[2] = {{OCC_DTYPE_DOUBLE, 2, {2, 3}, ea, 0}, {OCC_DTYPE_DOUBLE, 2, {3, 2}, eb, 0}};
    occ_attr eq[1] = {A_STR("equation", "ij,jk->ik")};
    run_op(&r, "Einsum", 2, ine, 1, 1, eq);
    expect_out("Einsum float64 matmul", &r, 0, OCC_DTYPE_DOUBLE, 2, (int64_t[]){2, 2},
               (double[]){1e-9 + 2.0, 4.0, 4.0 * 1e-9 + 5.0, 10.0});
    res_free(&r);
    occ_attr eqt[1] = {A_STR("equation", "ij->ji")};
    run_op(&r, "Einsum", 1, ine, 1, 1, eqt);
    expect_out("Einsum float64 transpose", &r, 0, OCC_DTYPE_DOUBLE, 2, (int64_t[]){3, 2},
               (double[]){1, 4, 2, 5, 3, 6});
    res_free(&r);
    const double uv[4] = {2.0, 2.5, -0.5, 1e-10};
    tv inu[1] = {{OCC_DTYPE_DOUBLE, 1, {4}, uv, 0}};
    const double sq[3] = {2.0, 2.5, 1e-10};
    tv insq[1] = {{OCC_DTYPE_DOUBLE, 1, {3}, sq, 0}};
    run_op(&r, "Sqrt", 1, insq, 1, 0, NULL);
    expect_out("Sqrt float64", &r, 0, OCC_DTYPE_DOUBLE, 1, (int64_t[]){3},
               (double[]){sqrt(2.0), sqrt(2.5), sqrt(1e-10)});
    res_free(&r);
    run_op(&r, "Round", 1, inu, 1, 0, NULL);
    expect_out("Round float64 (half to even)", &r, 0, OCC_DTYPE_DOUBLE, 1, (int64_t[]){4},
               (double[]){2.0, 2.0, -0.0, 0.0});
    res_free(&r);
    run_op(&r, "Erf", 1, inu, 1, 0, NULL);
    expect_out("Erf float64 (libm erf, not the float polynomial)", &r, 0, OCC_DTYPE_DOUBLE, 1,
               (int64_t[]){4}, (double[]){erf(2.0), erf(2.5), erf(-0.5), erf(1e-10)});
    res_free(&r);
    const double big[3] = {1e300, INFINITY, NAN};
    tv inbig[1] = {{OCC_DTYPE_DOUBLE, 1, {3}, big, 0}};
    run_op(&r, "IsInf", 1, inbig, 1, 0, NULL);
    expect_out("IsInf float64 (1e300 is finite)", &r, 0, OCC_DTYPE_BOOL, 1, (int64_t[]){3}, (uint8_t[]){0, 1, 0});
    res_free(&r);
    run_op(&r, "Neg", 1, in, 1, 0, NULL);
    expect_out("Neg float64", &r, 0, OCC_DTYPE_DOUBLE, 1, (int64_t[]){4}, (double[]){-1e10, -1.0, -1.0, 1e10});
    res_free(&r);
    const float shape_only[4] = {0};
    tv iny[1] = {{OCC_DTYPE_FLOAT, 2, {2, 2}, shape_only, 0}};
    occ_attr dt_d[1] = {A_INT("dtype", OCC_DTYPE_DOUBLE)}, dt_b[1] = {A_INT("dtype", OCC_DTYPE_BFLOAT16)};
    run_op(&r, "EyeLike", 1, iny, 1, 1, dt_d);
    expect_out("EyeLike float64", &r, 0, OCC_DTYPE_DOUBLE, 2, (int64_t[]){2, 2}, (double[]){1, 0, 0, 1});
    res_free(&r);
    run_op(&r, "EyeLike", 1, iny, 1, 1, dt_b);
    expect_out("EyeLike bfloat16", &r, 0, OCC_DTYPE_BFLOAT16, 2, (int64_t[]){2, 2},
               (uint16_t[]){0x3f80, 0, 0, 0x3f80});
    res_free(&r);
    /* movement by size: bfloat16 Transpose, uint64 Concat with a weight */
    const int64_t perm[2] = {1, 0};
    occ_attr tp[1] = {A_INTS("perm", perm, 2)};
    const uint16_t bf[4] = {1, 2, 3, 4};
    tv inb[1] = {{OCC_DTYPE_BFLOAT16, 2, {2, 2}, bf, 0}};
    run_op(&r, "Transpose", 1, inb, 1, 1, tp);
    expect_out("Transpose bfloat16", &r, 0, OCC_DTYPE_BFLOAT16, 2, (int64_t[]){2, 2}, (uint16_t[]){1, 3, 2, 4});
    res_free(&r);
    const uint64_t c0[1] = {UINT64_MAX}, c1[2] = {1, 2};
    tv inc[2] = {{OCC_DTYPE_UINT64, 1, {1}, c0, 0}, {OCC_DTYPE_UINT64, 1, {2}, c1, 1}};
    occ_attr cax[1] = {A_INT("axis", 0)};
    run_op(&r, "Concat", 2, inc, 1, 1, cax);
    expect_out("Concat uint64", &r, 0, OCC_DTYPE_UINT64, 1, (int64_t[]){3}, (uint64_t[]){UINT64_MAX, 1, 2});
    res_free(&r);
    /* diagonals: a letter repeated within an operand */
    const double dg[8] = {1, 2, 3, 4, 5, 6, 7, 8}; /* [2, 2, 2] */
    tv ind[1] = {{OCC_DTYPE_DOUBLE, 3, {2, 2, 2}, dg, 0}};
    occ_attr eqd[1] = {A_STR("equation", "...ii->...i")};
    run_op(&r, "Einsum", 1, ind, 1, 1, eqd);
    expect_out("Einsum batch diagonal", &r, 0, OCC_DTYPE_DOUBLE, 2, (int64_t[]){2, 2}, (double[]){1, 4, 5, 8});
    res_free(&r);
    const float tr[4] = {1, 2, 3, 4};
    tv intr[2] = {{OCC_DTYPE_FLOAT, 2, {2, 2}, tr, 0}, {OCC_DTYPE_FLOAT, 1, {2}, tr, 0}};
    occ_attr eqtr[1] = {A_STR("equation", "ii")};
    run_op(&r, "Einsum", 1, intr, 1, 1, eqtr);
    expect_out("Einsum trace (implicit output)", &r, 0, OCC_DTYPE_FLOAT, 0, NULL, (float[]){5});
    res_free(&r);
    occ_attr eqdb[1] = {A_STR("equation", "ii,i->i")};
    run_op(&r, "Einsum", 2, intr, 1, 1, eqdb);
    expect_out("Einsum diag(A) * b", &r, 0, OCC_DTYPE_FLOAT, 1, (int64_t[]){2}, (float[]){1, 8});
    res_free(&r);
    occ_attr eqbad[1] = {A_STR("equation", "ij->ii")};
    run_op(&r, "Einsum", 1, intr, 1, 1, eqbad);
    expect_fail("Einsum output letter repeated", &r, OCC_ERR_INVALID, 0, "output letter repeated");
    res_free(&r);
    /* Einsum operands must share one type */
    const float ef[6] = {0};
    tv inm[2] = {{OCC_DTYPE_DOUBLE, 2, {2, 3}, ea, 0}, {OCC_DTYPE_FLOAT, 2, {3, 2}, ef, 0}};
    run_op(&r, "Einsum", 2, inm, 1, 1, eq);
    expect_fail("Einsum float64 x float32", &r, OCC_ERR_INVALID, 0, "must be one type");
    res_free(&r);
}

int main(void)
{
    RUN(test_table);
    RUN(test_bf16_bits);
    RUN(test_cast);
    RUN(test_arith);
    RUN(test_unsigned_ops);
    RUN(test_f64_kernels);
    TEST_DONE();
}
