/* Typed tensors through the engine: the type-bearing and data-movement
 * operators on int64/int32/bool/uint8/int8 data (run-time and weight
 * inputs), their error cases (an out-of-range Gather index, integer division
 * by zero), and the registry refusing types an operator does not take. */
#include <math.h>

#include "test_typed_run.h"

static void test_gather(void)
{
    res r;
    const float data[6] = {1, 2, 3, 4, 5, 6}; /* [3, 2] */
    const int64_t idx[3] = {2, -3, 1};
    tv in[2] = {{OCC_DTYPE_FLOAT, 2, {3, 2}, data, 0}, {OCC_DTYPE_INT64, 1, {3}, idx, 0}};
    run_op(&r, "Gather", 2, in, 1, 0, NULL);
    expect_out("Gather int64 run-time indices, negative", &r, 0, OCC_DTYPE_FLOAT, 2,
               (int64_t[]){3, 2}, (float[]){5, 6, 1, 2, 3, 4});
    res_free(&r);
    /* axis 1, int32 indices as a weight, int64 data, 2-D indices */
    const int64_t d64[6] = {10, 11, 12, 13, 14, 15};
    const int32_t i32[4] = {1, 0, 0, -1};
    occ_attr ax[1] = {A_INT("axis", 1)};
    tv in2[2] = {{OCC_DTYPE_INT64, 2, {2, 3}, d64, 0}, {OCC_DTYPE_INT32, 2, {2, 2}, i32, 1}};
    run_op(&r, "Gather", 2, in2, 1, 1, ax);
    expect_out("Gather axis 1 int32 weight indices", &r, 0, OCC_DTYPE_INT64, 3,
               (int64_t[]){2, 2, 2}, (int64_t[]){11, 10, 10, 12, 14, 13, 13, 15});
    res_free(&r);
    /* an index outside [-3, 3): an error naming it, outputs untouched */
    const int64_t bad[3] = {0, 3, 1};
    tv in3[2] = {{OCC_DTYPE_FLOAT, 2, {3, 2}, data, 0}, {OCC_DTYPE_INT64, 1, {3}, bad, 0}};
    run_op(&r, "Gather", 2, in3, 1, 0, NULL);
    expect_fail("Gather out of range", &r, OCC_ERR_INVALID, 1, "index 3 (element 1 of indices) is outside [-3, 3)");
    CHECK(r.out[0] && ((uint8_t *)r.out[0])[0] == 0xA5);
    res_free(&r);
    const int64_t bad2[1] = {-4};
    tv in4[2] = {{OCC_DTYPE_FLOAT, 2, {3, 2}, data, 0}, {OCC_DTYPE_INT64, 1, {1}, bad2, 0}};
    run_op(&r, "Gather", 2, in4, 1, 0, NULL);
    expect_fail("Gather negative out of range", &r, OCC_ERR_INVALID, 1, "index -4");
    res_free(&r);
    /* float indices are refused by the registry */
    tv in5[2] = {{OCC_DTYPE_FLOAT, 2, {3, 2}, data, 0}, {OCC_DTYPE_FLOAT, 1, {2}, data, 0}};
    run_op(&r, "Gather", 2, in5, 1, 0, NULL);
    expect_fail("Gather float indices", &r, OCC_ERR_UNSUPPORTED, 0, "input 1 ('in1') is float32, which Gather does not take");
    res_free(&r);
}

static void test_cast(void)
{
    res r;
    const float f[6] = {1.7f, -2.5f, 0.0f, 3e10f, NAN, -3e10f};
    occ_attr to_i32[1] = {A_INT("to", OCC_DTYPE_INT32)};
    tv in[1] = {{OCC_DTYPE_FLOAT, 1, {6}, f, 0}};
    run_op(&r, "Cast", 1, in, 1, 1, to_i32);
    expect_out("Cast float->int32 (truncating, saturating, NaN 0)", &r, 0, OCC_DTYPE_INT32, 1,
               (int64_t[]){6}, (int32_t[]){1, -2, 0, INT32_MAX, 0, INT32_MIN});
    res_free(&r);
    occ_attr to_b[1] = {A_INT("to", OCC_DTYPE_BOOL)};
    run_op(&r, "Cast", 1, in, 1, 1, to_b);
    expect_out("Cast float->bool", &r, 0, OCC_DTYPE_BOOL, 1, (int64_t[]){6},
               (uint8_t[]){1, 1, 0, 1, 1, 1});
    res_free(&r);
    occ_attr to_u8[1] = {A_INT("to", OCC_DTYPE_UINT8)};
    const int64_t i64[4] = {300, -1, 7, 1ll << 40};
    tv in2[1] = {{OCC_DTYPE_INT64, 1, {4}, i64, 0}};
    run_op(&r, "Cast", 1, in2, 1, 1, to_u8);
    expect_out("Cast int64->uint8 (wraps)", &r, 0, OCC_DTYPE_UINT8, 1, (int64_t[]){4},
               (uint8_t[]){44, 255, 7, 0});
    res_free(&r);
    occ_attr to_f[1] = {A_INT("to", OCC_DTYPE_FLOAT)};
    const uint8_t bools[3] = {1, 0, 1};
    tv in3[1] = {{OCC_DTYPE_BOOL, 1, {3}, bools, 0}};
    run_op(&r, "Cast", 1, in3, 1, 1, to_f);
    expect_out("Cast bool->float", &r, 0, OCC_DTYPE_FLOAT, 1, (int64_t[]){3}, (float[]){1, 0, 1});
    res_free(&r);
    const int8_t i8[3] = {-128, 5, 127};
    occ_attr to_i64[1] = {A_INT("to", OCC_DTYPE_INT64)};
    tv in4[1] = {{OCC_DTYPE_INT8, 1, {3}, i8, 0}};
    run_op(&r, "Cast", 1, in4, 1, 1, to_i64);
    expect_out("Cast int8->int64", &r, 0, OCC_DTYPE_INT64, 1, (int64_t[]){3}, (int64_t[]){-128, 5, 127});
    res_free(&r);
    occ_attr to_str[1] = {A_INT("to", 8)}; /* STRING: still none (float64: test_ops_dtypes.c) */
    run_op(&r, "Cast", 1, in, 1, 1, to_str);
    expect_fail("Cast to string", &r, OCC_ERR_UNSUPPORTED, 0, "to = 8 is not a supported type");
    res_free(&r);
    /* float16: round to nearest even, overflow to infinity, subnormals,
     * NaN kept; back to float32 exactly; integers through float32 */
    const float hf[8] = {1.0f, -2.5f, 65504.0f, 70000.0f, 1.0009765625f + 0.00048828125f,
                         5.9604645e-08f, 1e-9f, NAN};
    const uint16_t hb[8] = {0x3c00, 0xc100, 0x7bff, 0x7c00, 0x3c02, 0x0001, 0x0000, 0x7e00};
    occ_attr to_h[1] = {A_INT("to", OCC_DTYPE_FLOAT16)};
    tv inh[1] = {{OCC_DTYPE_FLOAT, 1, {8}, hf, 0}};
    run_op(&r, "Cast", 1, inh, 1, 1, to_h);
    expect_out("Cast float->float16", &r, 0, OCC_DTYPE_FLOAT16, 1, (int64_t[]){8}, hb);
    res_free(&r);
    tv inh2[1] = {{OCC_DTYPE_FLOAT16, 1, {7}, hb, 0}};
    run_op(&r, "Cast", 1, inh2, 1, 1, to_f);
    expect_out("Cast float16->float", &r, 0, OCC_DTYPE_FLOAT, 1, (int64_t[]){7},
               (float[]){1.0f, -2.5f, 65504.0f, INFINITY, 1.001953125f, 5.9604645e-08f, 0.0f});
    res_free(&r);
    const int32_t hi[2] = {-3, 2049}; /* 2049 is not a half: rounds to even 2048 */
    tv inh3[1] = {{OCC_DTYPE_INT32, 1, {2}, hi, 0}};
    run_op(&r, "Cast", 1, inh3, 1, 1, to_h);
    expect_out("Cast int32->float16", &r, 0, OCC_DTYPE_FLOAT16, 1, (int64_t[]){2}, (uint16_t[]){0xc200, 0x6800});
    res_free(&r);
    /* float16 moves (Transpose) but does no arithmetic or comparison */
    const int64_t perm[2] = {1, 0};
    occ_attr tp[1] = {A_INTS("perm", perm, 2)};
    tv inh4[1] = {{OCC_DTYPE_FLOAT16, 2, {2, 2}, hb, 0}};
    run_op(&r, "Transpose", 1, inh4, 1, 1, tp);
    expect_out("Transpose float16", &r, 0, OCC_DTYPE_FLOAT16, 2, (int64_t[]){2, 2},
               (uint16_t[]){0x3c00, 0x7bff, 0xc100, 0x7c00});
    res_free(&r);
    tv inh5[2] = {{OCC_DTYPE_FLOAT16, 1, {2}, hb, 0}, {OCC_DTYPE_FLOAT16, 1, {2}, hb, 0}};
    run_op(&r, "Equal", 2, inh5, 1, 0, NULL);
    expect_fail("Equal float16", &r, OCC_ERR_UNSUPPORTED, 0, "is float16, which Equal does not take");
    res_free(&r);
    run_op(&r, "Add", 2, inh5, 1, 0, NULL);
    expect_fail("Add float16", &r, OCC_ERR_UNSUPPORTED, 0, "is float16, which Add does not take");
    res_free(&r);
}

static void test_compare_logic_where(void)
{
    res r;
    const int64_t a[6] = {1, 5, 3, -2, 0, 9}; /* [2, 3] */
    const int64_t b[3] = {1, 4, 3};          /* broadcast [3] */
    tv in[2] = {{OCC_DTYPE_INT64, 2, {2, 3}, a, 0}, {OCC_DTYPE_INT64, 1, {3}, b, 1}};
    run_op(&r, "Equal", 2, in, 1, 0, NULL);
    expect_out("Equal int64 broadcast", &r, 0, OCC_DTYPE_BOOL, 2, (int64_t[]){2, 3},
               (uint8_t[]){1, 0, 1, 0, 0, 0});
    res_free(&r);
    run_op(&r, "GreaterOrEqual", 2, in, 1, 0, NULL);
    expect_out("GreaterOrEqual int64", &r, 0, OCC_DTYPE_BOOL, 2, (int64_t[]){2, 3},
               (uint8_t[]){1, 1, 1, 0, 0, 1});
    res_free(&r);
    const float fa[3] = {1, NAN, -1}, fb[3] = {2, 0, -1};
    tv inf[2] = {{OCC_DTYPE_FLOAT, 1, {3}, fa, 0}, {OCC_DTYPE_FLOAT, 1, {3}, fb, 0}};
    run_op(&r, "Less", 2, inf, 1, 0, NULL);
    expect_out("Less float (NaN false)", &r, 0, OCC_DTYPE_BOOL, 1, (int64_t[]){3}, (uint8_t[]){1, 0, 0});
    res_free(&r);
    run_op(&r, "LessOrEqual", 2, inf, 1, 0, NULL);
    expect_out("LessOrEqual float", &r, 0, OCC_DTYPE_BOOL, 1, (int64_t[]){3}, (uint8_t[]){1, 0, 1});
    res_free(&r);
    /* mixed types are refused */
    tv mix[2] = {{OCC_DTYPE_INT64, 1, {3}, b, 0}, {OCC_DTYPE_FLOAT, 1, {3}, fb, 0}};
    run_op(&r, "Greater", 2, mix, 1, 0, NULL);
    expect_fail("Greater int64 vs float", &r, OCC_ERR_INVALID, 0, "operands are int64 and float32");
    res_free(&r);

    const uint8_t p[4] = {1, 1, 0, 0}, q[2] = {1, 0};
    tv lq[2] = {{OCC_DTYPE_BOOL, 2, {2, 2}, p, 0}, {OCC_DTYPE_BOOL, 1, {2}, q, 0}};
    run_op(&r, "And", 2, lq, 1, 0, NULL);
    expect_out("And", &r, 0, OCC_DTYPE_BOOL, 2, (int64_t[]){2, 2}, (uint8_t[]){1, 0, 0, 0});
    res_free(&r);
    run_op(&r, "Or", 2, lq, 1, 0, NULL);
    expect_out("Or", &r, 0, OCC_DTYPE_BOOL, 2, (int64_t[]){2, 2}, (uint8_t[]){1, 1, 1, 0});
    res_free(&r);
    run_op(&r, "Xor", 2, lq, 1, 0, NULL);
    expect_out("Xor", &r, 0, OCC_DTYPE_BOOL, 2, (int64_t[]){2, 2}, (uint8_t[]){0, 1, 1, 0});
    res_free(&r);
    run_op(&r, "Not", 1, lq, 1, 0, NULL);
    expect_out("Not", &r, 0, OCC_DTYPE_BOOL, 2, (int64_t[]){2, 2}, (uint8_t[]){0, 0, 1, 1});
    res_free(&r);
    tv lbad[2] = {{OCC_DTYPE_INT64, 1, {3}, b, 0}, {OCC_DTYPE_BOOL, 1, {2}, q, 0}};
    run_op(&r, "And", 2, lbad, 1, 0, NULL);
    expect_fail("And on int64", &r, OCC_ERR_UNSUPPORTED, 0, "is int64, which And does not take");
    res_free(&r);

    /* Where: bool mask (a weight) broadcast over int64 X and a scalar Y */
    const int64_t y0[1] = {-7};
    tv w[3] = {{OCC_DTYPE_BOOL, 1, {2}, q, 1}, {OCC_DTYPE_INT64, 2, {3, 2}, a, 0},
               {OCC_DTYPE_INT64, 0, {0}, y0, 0}};
    run_op(&r, "Where", 3, w, 1, 0, NULL);
    expect_out("Where bool mask, int64", &r, 0, OCC_DTYPE_INT64, 2, (int64_t[]){3, 2},
               (int64_t[]){1, -7, 3, -7, 0, -7});
    res_free(&r);
    tv wbad[3] = {{OCC_DTYPE_FLOAT, 1, {2}, fb, 0}, {OCC_DTYPE_INT64, 2, {3, 2}, a, 0},
                  {OCC_DTYPE_INT64, 0, {0}, y0, 0}};
    run_op(&r, "Where", 3, wbad, 1, 0, NULL);
    expect_fail("Where float condition", &r, OCC_ERR_UNSUPPORTED, 0, "is float32, which Where does not take");
    res_free(&r);
}

static void test_int_arith(void)
{
    res r;
    const int64_t a[4] = {INT64_MAX, -7, 7, INT64_MIN}, b[4] = {1, 2, -2, -1};
    tv in[2] = {{OCC_DTYPE_INT64, 1, {4}, a, 0}, {OCC_DTYPE_INT64, 1, {4}, b, 0}};
    run_op(&r, "Add", 2, in, 1, 0, NULL);
    expect_out("Add int64 wraps", &r, 0, OCC_DTYPE_INT64, 1, (int64_t[]){4},
               (int64_t[]){INT64_MIN, -5, 5, INT64_MAX});
    res_free(&r);
    run_op(&r, "Div", 2, in, 1, 0, NULL);
    expect_out("Div int64 truncates", &r, 0, OCC_DTYPE_INT64, 1, (int64_t[]){4},
               (int64_t[]){INT64_MAX, -3, -3, INT64_MIN});
    res_free(&r);
    run_op(&r, "Mod", 2, in, 1, 0, NULL);
    expect_out("Mod int64 (sign of divisor)", &r, 0, OCC_DTYPE_INT64, 1, (int64_t[]){4},
               (int64_t[]){0, 1, -1, 0});
    res_free(&r);
    occ_attr fm[1] = {A_INT("fmod", 1)};
    run_op(&r, "Mod", 2, in, 1, 1, fm);
    expect_out("Mod int64 fmod=1 (sign of dividend)", &r, 0, OCC_DTYPE_INT64, 1, (int64_t[]){4},
               (int64_t[]){0, -1, 1, 0});
    res_free(&r);
    const int32_t c[3] = {9, -9, 5}, d[1] = {4};
    tv in32[2] = {{OCC_DTYPE_INT32, 1, {3}, c, 0}, {OCC_DTYPE_INT32, 1, {1}, d, 1}};
    run_op(&r, "Mul", 2, in32, 1, 0, NULL);
    expect_out("Mul int32 broadcast weight", &r, 0, OCC_DTYPE_INT32, 1, (int64_t[]){3},
               (int32_t[]){36, -36, 20});
    res_free(&r);
    run_op(&r, "Sub", 2, in32, 1, 0, NULL);
    expect_out("Sub int32", &r, 0, OCC_DTYPE_INT32, 1, (int64_t[]){3}, (int32_t[]){5, -13, 1});
    res_free(&r);
    const int32_t z[1] = {0};
    tv div0[2] = {{OCC_DTYPE_INT32, 1, {3}, c, 0}, {OCC_DTYPE_INT32, 1, {1}, z, 0}};
    run_op(&r, "Div", 2, div0, 1, 0, NULL);
    expect_fail("Div int32 by zero", &r, OCC_ERR_INVALID, 1, "integer division by zero");
    res_free(&r);
    run_op(&r, "Mod", 2, div0, 1, 0, NULL);
    expect_fail("Mod int32 by zero", &r, OCC_ERR_INVALID, 1, "integer modulo by zero");
    res_free(&r);
    /* float ops refuse integers with one line naming the input */
    tv relu[1] = {{OCC_DTYPE_INT64, 1, {4}, a, 0}};
    run_op(&r, "Relu", 1, relu, 1, 0, NULL);
    expect_fail("Relu int64", &r, OCC_ERR_UNSUPPORTED, 0,
                "input 0 ('in0') is int64, which Relu does not take (float32 and float64 only)");
    res_free(&r);
    tv addmix[2] = {{OCC_DTYPE_INT32, 1, {3}, c, 0}, {OCC_DTYPE_INT64, 1, {4}, a, 0}};
    run_op(&r, "Add", 2, addmix, 1, 0, NULL);
    expect_fail("Add int32 + int64", &r, OCC_ERR_INVALID, 0, "operands are int32 and int64");
    res_free(&r);
}

/* Neg/Abs/Sign/Clip on integers, narrow-type wrap-around, variadic Max/Min on
 * integers and float16, Pow with an exponent of another type. */
static void test_int_unary_variadic_pow(void)
{
    res r;
    const int8_t i8[4] = {-128, -3, 0, 127};
    tv x8[1] = {{OCC_DTYPE_INT8, 1, {4}, i8, 0}};
    run_op(&r, "Neg", 1, x8, 1, 0, NULL);
    expect_out("Neg int8 wraps", &r, 0, OCC_DTYPE_INT8, 1, (int64_t[]){4}, (int8_t[]){-128, 3, 0, -127});
    res_free(&r);
    run_op(&r, "Abs", 1, x8, 1, 0, NULL);
    expect_out("Abs int8 wraps", &r, 0, OCC_DTYPE_INT8, 1, (int64_t[]){4}, (int8_t[]){-128, 3, 0, 127});
    res_free(&r);
    run_op(&r, "Sign", 1, x8, 1, 0, NULL);
    expect_out("Sign int8", &r, 0, OCC_DTYPE_INT8, 1, (int64_t[]){4}, (int8_t[]){-1, -1, 0, 1});
    res_free(&r);
    occ_attr cl[2] = {A_FLOAT("min", -5.0f), A_FLOAT("max", 100.0f)};
    run_op(&r, "Clip", 1, x8, 1, 2, cl);
    expect_out("Clip int8", &r, 0, OCC_DTYPE_INT8, 1, (int64_t[]){4}, (int8_t[]){-5, -3, 0, 100});
    res_free(&r);
    const int64_t i64[3] = {INT64_MIN, -9, 4};
    tv x64[1] = {{OCC_DTYPE_INT64, 1, {3}, i64, 0}};
    run_op(&r, "Neg", 1, x64, 1, 0, NULL);
    expect_out("Neg int64", &r, 0, OCC_DTYPE_INT64, 1, (int64_t[]){3}, (int64_t[]){INT64_MIN, 9, -4});
    res_free(&r);
    const int32_t i32[3] = {-7, 0, 7};
    tv x32[1] = {{OCC_DTYPE_INT32, 1, {3}, i32, 0}};
    run_op(&r, "Abs", 1, x32, 1, 0, NULL);
    expect_out("Abs int32", &r, 0, OCC_DTYPE_INT32, 1, (int64_t[]){3}, (int32_t[]){7, 0, 7});
    res_free(&r);
    const uint8_t u8[3] = {250, 3, 200}, v8[3] = {10, 5, 100};
    tv uadd[2] = {{OCC_DTYPE_UINT8, 1, {3}, u8, 0}, {OCC_DTYPE_UINT8, 1, {3}, v8, 0}};
    run_op(&r, "Add", 2, uadd, 1, 0, NULL);
    expect_out("Add uint8 wraps", &r, 0, OCC_DTYPE_UINT8, 1, (int64_t[]){3}, (uint8_t[]){4, 8, 44});
    res_free(&r);
    run_op(&r, "Neg", 1, uadd, 1, 0, NULL);
    expect_fail("Neg uint8", &r, OCC_ERR_UNSUPPORTED, 0, "is uint8, which Neg does not take");
    res_free(&r);
    const int32_t m0[3] = {1, 9, -4}, m1[1] = {2}, m2[3] = {0, 10, -8};
    tv mx[3] = {{OCC_DTYPE_INT32, 1, {3}, m0, 0}, {OCC_DTYPE_INT32, 1, {1}, m1, 1},
                {OCC_DTYPE_INT32, 1, {3}, m2, 0}};
    run_op(&r, "Max", 3, mx, 1, 0, NULL);
    expect_out("Max int32 x3", &r, 0, OCC_DTYPE_INT32, 1, (int64_t[]){3}, (int32_t[]){2, 10, 2});
    res_free(&r);
    run_op(&r, "Min", 3, mx, 1, 0, NULL);
    expect_out("Min int32 x3", &r, 0, OCC_DTYPE_INT32, 1, (int64_t[]){3}, (int32_t[]){0, 2, -8});
    res_free(&r);
    const uint16_t h0[2] = {0x3C00, 0xC000}, h1[2] = {0x4000, 0xBC00}; /* 1, -2 ; 2, -1 */
    tv mh[2] = {{OCC_DTYPE_FLOAT16, 1, {2}, h0, 0}, {OCC_DTYPE_FLOAT16, 1, {2}, h1, 0}};
    run_op(&r, "Max", 2, mh, 1, 0, NULL);
    expect_out("Max float16", &r, 0, OCC_DTYPE_FLOAT16, 1, (int64_t[]){2}, (uint16_t[]){0x4000, 0xBC00});
    res_free(&r);
    run_op(&r, "Sum", 2, mh, 1, 0, NULL);
    expect_fail("Sum float16", &r, OCC_ERR_UNSUPPORTED, 0, "is float16, which Sum does not take");
    res_free(&r);
    const int64_t pb[3] = {2, -3, 5}, pe[3] = {10, 3, -1};
    tv pii[2] = {{OCC_DTYPE_INT64, 1, {3}, pb, 0}, {OCC_DTYPE_INT64, 1, {3}, pe, 0}};
    run_op(&r, "Pow", 2, pii, 1, 0, NULL);
    expect_out("Pow int64^int64", &r, 0, OCC_DTYPE_INT64, 1, (int64_t[]){3}, (int64_t[]){1024, -27, 0});
    res_free(&r);
    const float fb[3] = {2.0f, 0.5f, 3.0f};
    const int32_t ie[3] = {3, -1, 0};
    tv pfi[2] = {{OCC_DTYPE_FLOAT, 1, {3}, fb, 0}, {OCC_DTYPE_INT32, 1, {3}, ie, 0}};
    run_op(&r, "Pow", 2, pfi, 1, 0, NULL);
    expect_out("Pow float^int32", &r, 0, OCC_DTYPE_FLOAT, 1, (int64_t[]){3}, (float[]){8.0f, 2.0f, 1.0f});
    res_free(&r);
    const float fe[3] = {0.5f, 2.0f, 1.0f};
    const int32_t ib[3] = {9, -3, 7};
    tv pif[2] = {{OCC_DTYPE_INT32, 1, {3}, ib, 0}, {OCC_DTYPE_FLOAT, 1, {3}, fe, 0}};
    run_op(&r, "Pow", 2, pif, 1, 0, NULL);
    expect_out("Pow int32^float", &r, 0, OCC_DTYPE_INT32, 1, (int64_t[]){3}, (int32_t[]){3, 9, 7});
    res_free(&r);
}

/* Indexing operators added for conformance: indices outside the data are an
 * error before any write; the others on small exact cases. */
static void test_scatter_onehot_trilu(void)
{
    res r;
    const float d[6] = {1, 2, 3, 4, 5, 6}, u[2] = {10, 20};
    const int64_t ok[2] = {2, -1}, bad[2] = {0, 3};
    tv in[3] = {{OCC_DTYPE_FLOAT, 2, {2, 3}, d, 0}, {OCC_DTYPE_INT64, 2, {2, 1}, ok, 0},
                {OCC_DTYPE_FLOAT, 2, {2, 1}, u, 0}};
    occ_attr ax[1] = {A_INT("axis", 1)};
    run_op(&r, "ScatterElements", 3, in, 1, 1, ax);
    expect_out("ScatterElements axis 1", &r, 0, OCC_DTYPE_FLOAT, 2, (int64_t[]){2, 3},
               (float[]){1, 2, 10, 4, 5, 20});
    res_free(&r);
    in[1].data = bad;
    run_op(&r, "ScatterElements", 3, in, 1, 1, ax);
    expect_fail("ScatterElements index 3 of 3", &r, OCC_ERR_INVALID, 1, "index 3 (element 1 of indices) is outside [-3, 3)");
    res_free(&r);
    const int32_t ix[3] = {0, -1, 7};
    const float onoff[2] = {0, 5};
    tv oh[3] = {{OCC_DTYPE_INT32, 1, {3}, ix, 0}, {0, 0, {0}, NULL, 0}, {OCC_DTYPE_FLOAT, 1, {2}, onoff, 1}};
    occ_attr depth[1] = {A_FLOAT("depth", 3.0f)};
    run_op(&r, "OneHot", 3, oh, 1, 1, depth);
    expect_out("OneHot depth 3", &r, 0, OCC_DTYPE_FLOAT, 2, (int64_t[]){3, 3},
               (float[]){5, 0, 0, 0, 0, 5, 0, 0, 0});
    res_free(&r);
    const int64_t t[6] = {1, 2, 3, 4, 5, 6}, k[1] = {1};
    tv tr[2] = {{OCC_DTYPE_INT64, 2, {2, 3}, t, 0}, {OCC_DTYPE_INT64, 0, {0}, k, 1}};
    run_op(&r, "Trilu", 2, tr, 1, 0, NULL);
    expect_out("Trilu upper k=1", &r, 0, OCC_DTYPE_INT64, 2, (int64_t[]){2, 3}, (int64_t[]){0, 2, 3, 0, 0, 6});
    res_free(&r);
    run_op(&r, "Trilu", 1, tr, 1, 0, NULL);
    expect_out("Trilu upper, no k", &r, 0, OCC_DTYPE_INT64, 2, (int64_t[]){2, 3}, (int64_t[]){1, 2, 3, 0, 5, 6});
    res_free(&r);
    const uint8_t bx[3] = {1, 0x80, 3}, by[3] = {3, 1, 9};
    tv bs[2] = {{OCC_DTYPE_UINT8, 1, {3}, bx, 0}, {OCC_DTYPE_UINT8, 1, {3}, by, 0}};
    occ_attr left[1] = {A_STR("direction", "LEFT")};
    run_op(&r, "BitShift", 2, bs, 1, 1, left);
    expect_out("BitShift LEFT uint8", &r, 0, OCC_DTYPE_UINT8, 1, (int64_t[]){3}, (uint8_t[]){8, 0, 0});
    res_free(&r);
    const uint8_t px[8] = {3, 9, 200, 7, 1, 1, 0, 2};
    tv mp[1] = {{OCC_DTYPE_UINT8, 4, {1, 2, 2, 2}, px, 0}};
    occ_attr mpk[1] = {A_INTS("kernel_shape", ((int64_t[]){2, 2}), 2)};
    run_op(&r, "MaxPool", 1, mp, 2, 1, mpk);
    expect_out("MaxPool uint8", &r, 0, OCC_DTYPE_UINT8, 4, (int64_t[]){1, 2, 1, 1}, (uint8_t[]){200, 2});
    expect_out("MaxPool Indices (flat, first on ties)", &r, 1, OCC_DTYPE_INT64, 4, (int64_t[]){1, 2, 1, 1},
               (int64_t[]){2, 7});
    res_free(&r);
    const float cx[6] = {1, 2, 3, 4, 5, 6};
    tv cs[1] = {{OCC_DTYPE_FLOAT, 2, {2, 3}, cx, 0}};
    occ_attr csa[3] = {A_INTS("axis", ((int64_t[]){1}), 1), A_INT("exclusive", 1), A_INT("reverse", 1)};
    run_op(&r, "CumSum", 1, cs, 1, 3, csa);
    expect_out("CumSum axis 1 exclusive reverse", &r, 0, OCC_DTYPE_FLOAT, 2, (int64_t[]){2, 3},
               (float[]){5, 3, 0, 11, 6, 0});
    res_free(&r);
    const int32_t ci[4] = {INT32_MAX, 1, 2, 3};
    tv csi[1] = {{OCC_DTYPE_INT32, 1, {4}, ci, 0}};
    occ_attr csa0[1] = {A_INTS("axis", ((int64_t[]){0}), 1)};
    run_op(&r, "CumSum", 1, csi, 1, 1, csa0);
    expect_out("CumSum int32 wraps", &r, 0, OCC_DTYPE_INT32, 1, (int64_t[]){4},
               (int32_t[]){INT32_MAX, INT32_MIN, INT32_MIN + 2, INT32_MIN + 5});
    res_free(&r);
    /* GridSample: an infinite or huge grid coordinate samples inside or gives 0,
     * never an out-of-range conversion (UBSan) or read (ASan) */
    const float gx[4] = {1, 2, 3, 4}, gg[4] = {INFINITY, 0.0f, 1e30f, -1e30f};
    tv gsi[2] = {{OCC_DTYPE_FLOAT, 4, {1, 1, 2, 2}, gx, 0}, {OCC_DTYPE_FLOAT, 4, {1, 1, 2, 2}, gg, 0}};
    for (int pm = 0; pm < 3; pm++) {
        static const char *const pads[3] = {"zeros", "border", "reflection"};
        occ_attr ga[2] = {A_STR("padding_mode", pads[pm]), A_STR("mode", pm == 2 ? "bicubic" : "bilinear")};
        run_op(&r, "GridSample", 2, gsi, 1, 2, ga);
        CHECK_MSG(r.st == OCC_OK, "GridSample %s: %s", pads[pm], r.msg);
        if (!r.st)
            CHECK_MSG(isfinite(((float *)r.out[0])[0]) && isfinite(((float *)r.out[0])[1]) &&
                          (pm != 0 || ((float *)r.out[0])[0] == 0.0f),
                      "GridSample %s: %g %g", pads[pm], (double)((float *)r.out[0])[0],
                      (double)((float *)r.out[0])[1]);
        res_free(&r);
    }
    const float qx[4] = {-1.0f, 0.5f, 2.5f, 300.0f}, qs[1] = {0.5f};
    const uint8_t qz[1] = {10};
    tv q[3] = {{OCC_DTYPE_FLOAT, 1, {4}, qx, 0}, {OCC_DTYPE_FLOAT, 0, {0}, qs, 1}, {OCC_DTYPE_UINT8, 0, {0}, qz, 1}};
    const int64_t lens[2] = {2, 5};
    tv rsq[2] = {{OCC_DTYPE_FLOAT, 2, {3, 2}, d, 0}, {OCC_DTYPE_INT64, 1, {2}, lens, 0}};
    run_op(&r, "ReverseSequence", 2, rsq, 1, 0, NULL);
    expect_fail("ReverseSequence length 5 of 3 steps", &r, OCC_ERR_INVALID, 1,
                "sequence_lens[1] = 5 is outside [1, 3]");
    res_free(&r);
    const float m3[9] = {2, 0, 0, 0, 3, 0, 1, 0, 4};
    tv det[1] = {{OCC_DTYPE_FLOAT, 2, {3, 3}, m3, 0}};
    run_op(&r, "Det", 1, det, 1, 0, NULL);
    expect_out("Det 3x3", &r, 0, OCC_DTYPE_FLOAT, 0, NULL, (float[]){24.0f});
    res_free(&r);
    run_op(&r, "QuantizeLinear", 3, q, 1, 0, NULL);
    expect_out("QuantizeLinear uint8 (half to even, saturating)", &r, 0, OCC_DTYPE_UINT8, 1, (int64_t[]){4},
               (uint8_t[]){8, 11, 15, 255});
    res_free(&r);
}

static void test_movement(void)
{
    res r;
    const int64_t a[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}; /* [3, 4] */
    tv in[1] = {{OCC_DTYPE_INT64, 2, {3, 4}, a, 0}};
    /* Slice: rows 2..0 backwards, columns 1..3 */
    const int64_t st[2] = {-1, 1}, en[2] = {-100, 3}, ax[2] = {0, 1}, sp[2] = {-1, 1};
    occ_attr sa[4] = {A_INTS("starts", st, 2), A_INTS("ends", en, 2), A_INTS("axes", ax, 2),
                      A_INTS("steps", sp, 2)};
    run_op(&r, "Slice", 1, in, 1, 4, sa);
    expect_out("Slice negative step int64", &r, 0, OCC_DTYPE_INT64, 2, (int64_t[]){3, 2},
               (int64_t[]){9, 10, 5, 6, 1, 2});
    res_free(&r);
    const int64_t st0[1] = {5}, en0[1] = {9};
    occ_attr sa0[2] = {A_INTS("starts", st0, 1), A_INTS("ends", en0, 1)};
    run_op(&r, "Slice", 1, in, 1, 2, sa0);
    /* a zero-size result is legal: an empty [0, 4] output, nothing written */
    expect_out("Slice to nothing", &r, 0, OCC_DTYPE_INT64, 2, (int64_t[]){0, 4}, "");
    CHECK(r.st || (r.t[0].size == 0 && ((const uint8_t *)r.out[0])[0] == 0xA5));
    res_free(&r);
    /* Split into 1 + 3 columns, three ways: sizes, equal */
    const int64_t sz[2] = {1, 3};
    occ_attr spl[2] = {A_INT("axis", 1), A_INTS("split", sz, 2)};
    run_op(&r, "Split", 1, in, 2, 2, spl);
    expect_out("Split sizes part 0", &r, 0, OCC_DTYPE_INT64, 2, (int64_t[]){3, 1}, (int64_t[]){0, 4, 8});
    expect_out("Split sizes part 1", &r, 1, OCC_DTYPE_INT64, 2, (int64_t[]){3, 3},
               (int64_t[]){1, 2, 3, 5, 6, 7, 9, 10, 11});
    res_free(&r);
    occ_attr spe[1] = {A_INT("axis", 1)};
    run_op(&r, "Split", 1, in, 2, 1, spe);
    expect_out("Split equal part 1", &r, 1, OCC_DTYPE_INT64, 2, (int64_t[]){3, 2},
               (int64_t[]){2, 3, 6, 7, 10, 11});
    res_free(&r);
    occ_attr spn[2] = {A_INT("axis", 0), A_INT("num_outputs", 2)};
    run_op(&r, "Split", 1, in, 2, 2, spn);
    expect_out("Split num_outputs, last part smaller", &r, 1, OCC_DTYPE_INT64, 2, (int64_t[]){1, 4},
               (int64_t[]){8, 9, 10, 11});
    res_free(&r);
    occ_attr spb[2] = {A_INT("axis", 0), A_INT("num_outputs", 3)};
    run_op(&r, "Split", 1, in, 2, 2, spb);
    expect_fail("Split num_outputs disagrees", &r, OCC_ERR_INVALID, 0, "num_outputs = 3 but the node has 2 outputs");
    res_free(&r);
    /* Expand a bool column, Tile int32 */
    const uint8_t col[2] = {1, 0};
    const int64_t shp[2] = {2, 3};
    occ_attr ex[1] = {A_INTS("shape", shp, 2)};
    tv bin[1] = {{OCC_DTYPE_BOOL, 2, {2, 1}, col, 0}};
    run_op(&r, "Expand", 1, bin, 1, 1, ex);
    expect_out("Expand bool", &r, 0, OCC_DTYPE_BOOL, 2, (int64_t[]){2, 3}, (uint8_t[]){1, 1, 1, 0, 0, 0});
    res_free(&r);
    const int32_t t32[2] = {7, 8};
    const int64_t rep[1] = {3};
    occ_attr ta[1] = {A_INTS("repeats", rep, 1)};
    tv tin32[1] = {{OCC_DTYPE_INT32, 1, {2}, t32, 0}};
    run_op(&r, "Tile", 1, tin32, 1, 1, ta);
    expect_out("Tile int32", &r, 0, OCC_DTYPE_INT32, 1, (int64_t[]){6}, (int32_t[]){7, 8, 7, 8, 7, 8});
    res_free(&r);
    /* the existing data-movement ops on integers */
    const int64_t perm[2] = {1, 0};
    occ_attr tp[1] = {A_INTS("perm", perm, 2)};
    const int8_t i8[6] = {-1, 2, -3, 4, -5, 6};
    tv in8[1] = {{OCC_DTYPE_INT8, 2, {2, 3}, i8, 0}};
    run_op(&r, "Transpose", 1, in8, 1, 1, tp);
    expect_out("Transpose int8", &r, 0, OCC_DTYPE_INT8, 2, (int64_t[]){3, 2}, (int8_t[]){-1, 4, 2, -5, -3, 6});
    res_free(&r);
    occ_attr cat[1] = {A_INT("axis", 0)};
    tv cin[2] = {{OCC_DTYPE_INT64, 1, {2}, a, 0}, {OCC_DTYPE_INT64, 1, {3}, a + 5, 1}};
    run_op(&r, "Concat", 2, cin, 1, 1, cat);
    expect_out("Concat int64 with a weight", &r, 0, OCC_DTYPE_INT64, 1, (int64_t[]){5}, (int64_t[]){0, 1, 5, 6, 7});
    res_free(&r);
    tv cmix[2] = {{OCC_DTYPE_INT64, 1, {2}, a, 0}, {OCC_DTYPE_INT32, 1, {3}, t32, 0}};
    run_op(&r, "Concat", 2, cmix, 1, 1, cat);
    expect_fail("Concat int64 + int32", &r, OCC_ERR_INVALID, 0, "input 1 is int32, input 0 int64");
    res_free(&r);
    const int64_t pads[2] = {1, 2};
    occ_attr pa[2] = {A_INTS("pads", pads, 2), A_FLOAT("value", 9)};
    tv pin[1] = {{OCC_DTYPE_INT32, 1, {2}, t32, 0}};
    run_op(&r, "Pad", 1, pin, 1, 2, pa);
    expect_out("Pad int32 constant", &r, 0, OCC_DTYPE_INT32, 1, (int64_t[]){5}, (int32_t[]){9, 7, 8, 9, 9});
    res_free(&r);
    const int64_t rs[2] = {2, -1};
    occ_attr ra[1] = {A_INTS("shape", rs, 2)};
    tv rin[1] = {{OCC_DTYPE_UINT8, 1, {6}, i8, 0}};
    run_op(&r, "Reshape", 1, rin, 1, 1, ra);
    expect_out("Reshape uint8", &r, 0, OCC_DTYPE_UINT8, 2, (int64_t[]){2, 3}, i8);
    res_free(&r);
}

static void test_arg_topk(void)
{
    res r;
    const float x[8] = {3, 9, 9, 1, -4, 2, 2, 0}; /* [2, 4] */
    tv in[1] = {{OCC_DTYPE_FLOAT, 2, {2, 4}, x, 0}};
    occ_attr am[2] = {A_INT("axis", 1), A_INT("keepdims", 0)};
    run_op(&r, "ArgMax", 1, in, 1, 2, am);
    expect_out("ArgMax first index", &r, 0, OCC_DTYPE_INT64, 1, (int64_t[]){2}, (int64_t[]){1, 1});
    res_free(&r);
    occ_attr aml[3] = {A_INT("axis", 1), A_INT("keepdims", 1), A_INT("select_last_index", 1)};
    run_op(&r, "ArgMax", 1, in, 1, 3, aml);
    expect_out("ArgMax select_last_index keepdims", &r, 0, OCC_DTYPE_INT64, 2, (int64_t[]){2, 1},
               (int64_t[]){2, 2});
    res_free(&r);
    const int32_t xi[4] = {5, -1, 7, -1};
    tv ini[1] = {{OCC_DTYPE_INT32, 1, {4}, xi, 0}};
    occ_attr an[1] = {A_INT("keepdims", 0)};
    run_op(&r, "ArgMin", 1, ini, 1, 1, an);
    expect_out("ArgMin int32 scalar out", &r, 0, OCC_DTYPE_INT64, 0, NULL, (int64_t[]){1});
    res_free(&r);
    const int64_t k2[1] = {2};
    occ_attr tk[3] = {A_INTS("k", k2, 1), A_INT("axis", -1), A_INT("largest", 1)};
    run_op(&r, "TopK", 1, in, 2, 3, tk);
    expect_out("TopK values", &r, 0, OCC_DTYPE_FLOAT, 2, (int64_t[]){2, 2}, (float[]){9, 9, 2, 2});
    expect_out("TopK indices (ties: lower first)", &r, 1, OCC_DTYPE_INT64, 2, (int64_t[]){2, 2},
               (int64_t[]){1, 2, 1, 2});
    res_free(&r);
    occ_attr tks[2] = {A_INT("k", 3), A_INT("largest", 0)};
    run_op(&r, "TopK", 1, ini, 1, 2, tks);
    expect_out("TopK smallest int32, values only", &r, 0, OCC_DTYPE_INT32, 1, (int64_t[]){3},
               (int32_t[]){-1, -1, 5});
    res_free(&r);
    occ_attr tkbad[1] = {A_INT("k", 5)};
    run_op(&r, "TopK", 1, ini, 1, 1, tkbad);
    expect_fail("TopK k too large", &r, OCC_ERR_INVALID, 0, "k = 5 is outside 1..4");
    res_free(&r);
}

static void test_nd_indexing(void)
{
    res r;
    const int64_t d[6] = {1, 2, 3, 4, 5, 6}; /* [2, 3] */
    const int64_t ge[4] = {2, -1, 0, 1};     /* [2, 2] along axis 1 */
    occ_attr ax1[1] = {A_INT("axis", 1)};
    tv in[2] = {{OCC_DTYPE_INT64, 2, {2, 3}, d, 0}, {OCC_DTYPE_INT64, 2, {2, 2}, ge, 0}};
    run_op(&r, "GatherElements", 2, in, 1, 1, ax1);
    expect_out("GatherElements axis 1", &r, 0, OCC_DTYPE_INT64, 2, (int64_t[]){2, 2},
               (int64_t[]){3, 3, 4, 5});
    res_free(&r);
    const int64_t gebad[4] = {0, 3, 0, 0};
    tv inb[2] = {{OCC_DTYPE_INT64, 2, {2, 3}, d, 0}, {OCC_DTYPE_INT64, 2, {2, 2}, gebad, 0}};
    run_op(&r, "GatherElements", 2, inb, 1, 1, ax1);
    expect_fail("GatherElements out of range", &r, OCC_ERR_INVALID, 1, "index 3 (element 1 of indices)");
    res_free(&r);
    /* GatherND: rows by index pairs, and with one batch dim */
    const int32_t pairs[4] = {1, 0, 0, 2}; /* [2, 2] */
    tv nd[2] = {{OCC_DTYPE_INT64, 2, {2, 3}, d, 0}, {OCC_DTYPE_INT32, 2, {2, 2}, pairs, 1}};
    run_op(&r, "GatherND", 2, nd, 1, 0, NULL);
    expect_out("GatherND pairs", &r, 0, OCC_DTYPE_INT64, 1, (int64_t[]){2}, (int64_t[]){4, 3});
    res_free(&r);
    const int64_t per_batch[2] = {2, 0}; /* [2, 1]: one element of each row */
    occ_attr bd[1] = {A_INT("batch_dims", 1)};
    tv ndb[2] = {{OCC_DTYPE_INT64, 2, {2, 3}, d, 0}, {OCC_DTYPE_INT64, 2, {2, 1}, per_batch, 0}};
    run_op(&r, "GatherND", 2, ndb, 1, 1, bd);
    expect_out("GatherND batch_dims 1", &r, 0, OCC_DTYPE_INT64, 1, (int64_t[]){2}, (int64_t[]){3, 4});
    res_free(&r);
    /* ScatterND: rows replaced, or added to */
    const int64_t rows[2] = {1, 1}; /* [2, 1] */
    const int32_t d32[6] = {1, 2, 3, 4, 5, 6}, up[6] = {10, 20, 30, 1, 1, 1};
    tv sc[3] = {{OCC_DTYPE_INT32, 2, {2, 3}, d32, 0}, {OCC_DTYPE_INT64, 2, {1, 1}, rows, 1},
                {OCC_DTYPE_INT32, 2, {1, 3}, up, 0}};
    run_op(&r, "ScatterND", 3, sc, 1, 0, NULL);
    expect_out("ScatterND row", &r, 0, OCC_DTYPE_INT32, 2, (int64_t[]){2, 3}, (int32_t[]){1, 2, 3, 10, 20, 30});
    res_free(&r);
    occ_attr add[1] = {A_STR("reduction", "add")};
    tv sca[3] = {{OCC_DTYPE_INT32, 2, {2, 3}, d32, 0}, {OCC_DTYPE_INT64, 2, {2, 1}, rows, 1},
                 {OCC_DTYPE_INT32, 2, {2, 3}, up, 0}};
    run_op(&r, "ScatterND", 3, sca, 1, 1, add);
    expect_out("ScatterND add (same row twice)", &r, 0, OCC_DTYPE_INT32, 2, (int64_t[]){2, 3},
               (int32_t[]){1, 2, 3, 15, 26, 37});
    res_free(&r);
    const int64_t far[1] = {-3};
    tv scb[3] = {{OCC_DTYPE_INT32, 2, {2, 3}, d32, 0}, {OCC_DTYPE_INT64, 2, {1, 1}, far, 0},
                 {OCC_DTYPE_INT32, 2, {1, 3}, up, 0}};
    run_op(&r, "ScatterND", 3, scb, 1, 0, NULL);
    expect_fail("ScatterND out of range", &r, OCC_ERR_INVALID, 1, "index -3 (tuple 0) is out of range");
    res_free(&r);
}

/* A manifest is untrusted: declared types must be known and equal what
 * inference gives. */
static void test_engine_checks_types(void)
{
    for (int variant = 0; variant < 3; variant++) {
        tb b;
        occ_error e = {0};
        tb_init(&b);
        int x = tb_input(&b, "x", 1, (int64_t[]){4});
        int y = tb_act(&b, "y");
        tb_node(&b, "Relu", 1, &x, y, 0, NULL);
        tb_output(&b, y);
        CHECK(tb_finish(&b, &e) == OCC_OK);
        if (variant == 0) { /* output declared int32 (same bytes as float32) */
            b.t[y].dtype = OCC_DTYPE_INT32;
        } else if (variant == 1) { /* an unknown type on the input */
            b.t[x].dtype = 5;
        } else { /* the input's size does not follow its type */
            b.t[x].dtype = OCC_DTYPE_INT64;
        }
        occ_engine *eng = NULL;
        occ_engine_opts o = {.threads = 1};
        occ_status st = occ_engine_create(&b.m, &o, tb_read, &b, &eng, &e);
        CHECK_MSG(st != OCC_OK, "variant %d accepted", variant);
        const char *want[3] = {"tensor y is declared int32 [4] but inferred float32 [4]",
                               "tensor x has an invalid shape or size",
                               "tensor x has an invalid shape or size"};
        CHECK_MSG(strstr(e.msg, want[variant]) != NULL, "variant %d: %s", variant, e.msg);
        occ_engine_free(eng);
        tb_free(&b);
    }
}

int main(void)
{
    RUN(test_engine_checks_types);
    RUN(test_nd_indexing);
    RUN(test_gather);
    RUN(test_cast);
    RUN(test_compare_logic_where);
    RUN(test_int_arith);
    RUN(test_int_unary_variadic_pow);
    RUN(test_scatter_onehot_trilu);
    RUN(test_movement);
    RUN(test_arg_topk);
    TEST_DONE();
}
