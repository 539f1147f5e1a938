/* The float operators added for ONNX conformance, each against a naive
 * reference written from the ONNX operator spec: element-wise functions,
 * Pow/PRelu and the variadic Max/Min/Sum/Mean, the Reduce family, LogSoftmax
 * and Hardmax (both axis semantics), the normalisations, 1-D Conv and pools,
 * LpPool, GlobalMaxPool, ConvTranspose, Resize linear/cubic, DepthToSpace,
 * SpaceToDepth and RNN/GRU/LSTM. */
#include <math.h>

#include "test_ops_util.h"

typedef double (*fn1)(double);
static double d_elu(double v) { return v >= 0 ? v : expm1(v); }
static double d_selu(double v)
{
    return v > 0 ? 1.0507009873554805 * v : 1.0507009873554805 * 1.6732632423543772 * expm1(v);
}
static double d_softplus(double v) { return log1p(exp(v)); }
static double d_softsign(double v) { return v / (1 + fabs(v)); }
static double d_threlu(double v) { return v > 1.0 ? v : 0.0; }
static double d_mish(double v) { return v * tanh(log1p(exp(v))); }
static double d_gelu(double v) { return 0.5 * v * (1 + erf(v / sqrt(2.0))); }
static double d_neg(double v) { return -v; }
static double d_recip(double v) { return 1.0 / v; }
static double d_sign(double v) { return v > 0 ? 1 : v < 0 ? -1 : 0; }
static double d_round(double v) { return nearbyint(v); }
static double d_celu(double v) { return (v > 0 ? v : 0) + (v < 0 ? expm1(v) : 0); }
static double d_shrink(double v) { return v < -0.5 ? v : v > 0.5 ? v : 0; }

static void test_unary_more(void)
{
    static const struct {
        const char *op;
        fn1 f;
        int positive; /* domain: (0.1, 4] */
        int blocked;  /* f(0) = 0: also through the blocked layout */
    } cases[] = {
        {"Elu", d_elu, 0, 1},         {"Selu", d_selu, 0, 1},     {"Celu", d_celu, 0, 1},
        {"Softplus", d_softplus, 0, 0}, {"Softsign", d_softsign, 0, 1},
        {"ThresholdedRelu", d_threlu, 0, 1}, {"Mish", d_mish, 0, 1}, {"Gelu", d_gelu, 0, 1},
        {"Shrink", d_shrink, 0, 1},   {"Sqrt", sqrt, 1, 0},       {"Exp", exp, 0, 0},
        {"Log", log, 1, 0},           {"Erf", erf, 0, 1},         {"Reciprocal", d_recip, 1, 0},
        {"Neg", d_neg, 0, 1},         {"Abs", fabs, 0, 1},        {"Floor", floor, 0, 1},
        {"Ceil", ceil, 0, 1},         {"Round", d_round, 0, 1},   {"Sign", d_sign, 0, 1},
        {"Sin", sin, 0, 1},           {"Cos", cos, 0, 0},         {"Tan", tan, 0, 1},
        {"Atan", atan, 0, 1},         {"Sinh", sinh, 0, 1},       {"Cosh", cosh, 0, 0},
        {"Asinh", asinh, 0, 1},       {"Acosh", acosh, 2, 0},     {"Tanh", tanh, 0, 1},
    };
    int64_t n = 2 * 4 * 3 * 5;
    int64_t d[4] = {2, 4, 3, 5};
    float *x = rand_buf(n), *xp = malloc(n * 4), *r = malloc(n * 4);
    for (int64_t i = 0; i < n; i++) {
        x[i] *= 3.0f;
        xp[i] = fabsf(x[i]) + 0.1f;
    }
    x[0] = 0.5f; /* a tie for Round: to even */
    x[1] = -2.5f;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const float *in_data = cases[c].positive ? xp : x;
        float *tmp = NULL;
        if (cases[c].positive == 2) { /* acosh: [1, ...) */
            tmp = malloc(n * 4);
            for (int64_t i = 0; i < n; i++)
                tmp[i] = xp[i] + 1.0f;
            in_data = tmp;
        }
        for (int64_t i = 0; i < n; i++)
            r[i] = (float)cases[c].f(in_data[i]);
        tin in[1] = {T4(2, 4, 3, 5, in_data)};
        for (int vc = 0; vc <= cases[c].blocked; vc++)
            run1(cases[c].op, cases[c].op, 1, in, 0, NULL, 4, d, r, 2e-6, vc);
        free(tmp);
    }
    /* attributes: Elu alpha, ThresholdedRelu alpha, Shrink bias/lambd, Gelu tanh */
    occ_attr ea[1] = {A_FLOAT("alpha", 0.5f)};
    for (int64_t i = 0; i < n; i++)
        r[i] = x[i] >= 0 ? x[i] : 0.5f * expm1f(x[i]);
    tin in[1] = {T4(2, 4, 3, 5, x)};
    run1("Elu alpha", "Elu", 1, in, 1, ea, 4, d, r, 2e-6, 0);
    occ_attr sa[2] = {A_FLOAT("bias", 0.25f), A_FLOAT("lambd", 1.0f)};
    for (int64_t i = 0; i < n; i++)
        r[i] = x[i] < -1 ? x[i] + 0.25f : x[i] > 1 ? x[i] - 0.25f : 0;
    run1("Shrink bias", "Shrink", 1, in, 2, sa, 4, d, r, 2e-6, 0);
    occ_attr ga[1] = {A_STR("approximate", "tanh")};
    for (int64_t i = 0; i < n; i++) {
        double v = x[i];
        r[i] = (float)(0.5 * v * (1 + tanh(sqrt(2 / M_PI) * (v + 0.044715 * v * v * v))));
    }
    run1("Gelu tanh", "Gelu", 1, in, 1, ga, 4, d, r, 2e-6, 0);
    free(x);
    free(xp);
    free(r);
}

static void test_variadic_pow_prelu(void)
{
    /* Max/Min/Sum/Mean of [2,3,4], [3,1], [4]: everything broadcast */
    float *a = rand_buf(24), *b = rand_buf(3), *c = rand_buf(4), *r = malloc(24 * 4);
    int64_t d[3] = {2, 3, 4};
    tin in[3] = {{3, {2, 3, 4}, a, 0}, {2, {3, 1}, b, 0}, {1, {4}, c, 1}};
    const char *ops[4] = {"Max", "Min", "Sum", "Mean"};
    for (int k = 0; k < 4; k++) {
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 3; j++)
                for (int l = 0; l < 4; l++) {
                    float va = a[(i * 3 + j) * 4 + l], vb = b[j], vc = c[l], v;
                    if (k == 0)
                        v = fmaxf(va, fmaxf(vb, vc));
                    else if (k == 1)
                        v = fminf(va, fminf(vb, vc));
                    else
                        v = (va + vb + vc) / (k == 3 ? 3.0f : 1.0f);
                    r[(i * 3 + j) * 4 + l] = v;
                }
        run1(ops[k], ops[k], 3, in, 0, NULL, 3, d, r, 1e-6, 0);
    }
    /* one input: a copy */
    run1("Sum of one", "Sum", 1, in, 0, NULL, 3, d, a, 0, 0);
    /* Pow with a broadcast exponent, PRelu with a per-channel slope */
    float *xp = malloc(24 * 4);
    for (int i = 0; i < 24; i++)
        xp[i] = fabsf(a[i]) + 0.5f;
    float ex[4] = {0.5f, 2.0f, -1.0f, 3.0f};
    for (int i = 0; i < 24; i++)
        r[i] = powf(xp[i], ex[i % 4]);
    tin pin[2] = {{3, {2, 3, 4}, xp, 0}, {1, {4}, ex, 1}};
    run1("Pow", "Pow", 2, pin, 0, NULL, 3, d, r, 1e-6, 0);
    float slope[3] = {0.1f, 0.2f, 0.3f};
    for (int i = 0; i < 24; i++)
        r[i] = a[i] < 0 ? a[i] * slope[(i / 4) % 3] : a[i];
    tin prin[2] = {{3, {2, 3, 4}, a, 0}, {2, {3, 1}, slope, 1}};
    run1("PRelu", "PRelu", 2, prin, 0, NULL, 3, d, r, 1e-6, 0);
    free(a);
    free(b);
    free(c);
    free(r);
    free(xp);
}

static void test_reduce_family(void)
{
    /* [2,3,4] over axes {0, 2}, keepdims 0 and 1 */
    float *x = rand_buf(24), *r = malloc(24 * 4);
    for (int i = 0; i < 24; i++)
        x[i] = x[i] * 2 + (i % 5 == 0 ? 0.0f : 0.1f);
    const char *ops[] = {"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd",
                         "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp",
                         "ReduceSumSquare"};
    int64_t axes[2] = {0, -1};
    tin in[1] = {{3, {2, 3, 4}, x, 0}};
    for (int k = 0; k < 10; k++) {
        for (int j = 0; j < 3; j++) {
            double acc = k == 2 ? -INFINITY : k == 3 ? INFINITY : k == 4 ? 1 : 0, mx = -INFINITY;
            for (int i = 0; i < 2; i++)
                for (int l = 0; l < 4; l++)
                    mx = fmax(mx, x[(i * 3 + j) * 4 + l]);
            for (int i = 0; i < 2; i++)
                for (int l = 0; l < 4; l++) {
                    double v = x[(i * 3 + j) * 4 + l];
                    switch (k) {
                    case 2: acc = fmax(acc, v); break;
                    case 3: acc = fmin(acc, v); break;
                    case 4: acc *= v; break;
                    case 5: acc += fabs(v); break;
                    case 6: case 9: acc += v * v; break;
                    case 7: acc += fabs(v); break; /* LogSum of |x|: positive below */
                    case 8: acc += exp(v - mx); break;
                    default: acc += v; break;
                    }
                }
            r[j] = (float)(k == 0 ? acc / 8 : k == 6 ? sqrt(acc) : k == 7 ? log(acc)
                           : k == 8 ? mx + log(acc) : acc);
        }
        float *xin = x, *xa = NULL;
        if (k == 7) { /* LogSum needs a positive sum: feed |x| */
            xa = malloc(24 * 4);
            for (int i = 0; i < 24; i++)
                xa[i] = fabsf(x[i]);
            xin = xa;
        }
        tin kin[1] = {{3, {2, 3, 4}, xin, 0}};
        for (int keep = 0; keep < 2; keep++) {
            occ_attr at[2] = {A_INTS("axes", axes, 2), A_INT("keepdims", keep)};
            int64_t dk[3] = {1, 3, 1}, dn[1] = {3};
            run1(ops[k], ops[k], 1, kin, 2, at, keep ? 3 : 1, keep ? dk : dn, r, 1e-5, 0);
        }
        free(xa);
    }
    /* noop_with_empty_axes: the input unchanged (even for L2) */
    occ_attr noop[1] = {A_INT("noop_with_empty_axes", 1)};
    int64_t d3[3] = {2, 3, 4};
    run1("ReduceL2 noop", "ReduceL2", 1, in, 1, noop, 3, d3, x, 0, 0);
    free(x);
    free(r);
}

static void test_softmax_family(void)
{
    int64_t d[3] = {2, 3, 4};
    float *x = rand_buf(24), *r = malloc(24 * 4);
    x[5] = x[6]; /* a tie for Hardmax: the first wins */
    tin in[1] = {{3, {2, 3, 4}, x, 0}};
    /* opset 13: axis 1 alone (inner stride 4) */
    for (int o = 0; o < 2; o++)
        for (int j = 0; j < 4; j++) {
            double m = -INFINITY, s = 0;
            int arg = 0;
            for (int i = 0; i < 3; i++) {
                double v = x[(o * 3 + i) * 4 + j];
                if (v > m) {
                    m = v;
                    arg = i;
                }
            }
            for (int i = 0; i < 3; i++)
                s += exp(x[(o * 3 + i) * 4 + j] - m);
            for (int i = 0; i < 3; i++)
                r[(o * 3 + i) * 4 + j] = (float)(x[(o * 3 + i) * 4 + j] - m - log(s));
            (void)arg;
        }
    occ_attr a1[1] = {A_INT("axis", 1)};
    run1("LogSoftmax axis 1", "LogSoftmax", 1, in, 1, a1, 3, d, r, 1e-6, 0);
    /* opset < 13 (coerce_2d): axis 1 normalises the 12 trailing values */
    occ_attr c2[2] = {A_INT("axis", 1), A_INT("coerce_2d", 1)};
    for (int o = 0; o < 2; o++) {
        int arg = 0;
        for (int i = 1; i < 12; i++)
            if (x[o * 12 + i] > x[o * 12 + arg])
                arg = i;
        for (int i = 0; i < 12; i++)
            r[o * 12 + i] = i == arg ? 1.0f : 0.0f;
    }
    run1("Hardmax coerce_2d", "Hardmax", 1, in, 2, c2, 3, d, r, 0, 0);
    for (int o = 0; o < 2; o++) {
        double s = 0;
        for (int i = 0; i < 12; i++)
            s += exp(x[o * 12 + i]);
        for (int i = 0; i < 12; i++)
            r[o * 12 + i] = (float)(exp(x[o * 12 + i]) / s);
    }
    run1("Softmax coerce_2d", "Softmax", 1, in, 2, c2, 3, d, r, 1e-6, 0);
    free(x);
    free(r);
}

static void test_norms(void)
{
    /* LayerNormalization over the last two dims of [2,3,4] */
    float *x = rand_buf(24), *r = malloc(24 * 4), *sc = rand_buf(12), *bi = rand_buf(12);
    int64_t d[3] = {2, 3, 4};
    for (int o = 0; o < 2; o++) {
        double m = 0, v = 0;
        for (int i = 0; i < 12; i++)
            m += x[o * 12 + i] / 12.0;
        for (int i = 0; i < 12; i++)
            v += (x[o * 12 + i] - m) * (x[o * 12 + i] - m) / 12.0;
        for (int i = 0; i < 12; i++)
            r[o * 12 + i] = (float)((x[o * 12 + i] - m) / sqrt(v + 1e-3) * sc[i] + bi[i]);
    }
    tin ln[3] = {{3, {2, 3, 4}, x, 0}, {2, {3, 4}, sc, 1}, {2, {3, 4}, bi, 1}};
    occ_attr la[2] = {A_INT("axis", 1), A_FLOAT("epsilon", 1e-3f)};
    run1("LayerNormalization", "LayerNormalization", 3, ln, 2, la, 3, d, r, 1e-5, 0);
    /* InstanceNormalization on [2,3,2,2] */
    int64_t d4[4] = {2, 3, 2, 2};
    for (int nc = 0; nc < 6; nc++) {
        double m = 0, v = 0;
        for (int i = 0; i < 4; i++)
            m += x[nc * 4 + i] / 4.0;
        for (int i = 0; i < 4; i++)
            v += (x[nc * 4 + i] - m) * (x[nc * 4 + i] - m) / 4.0;
        for (int i = 0; i < 4; i++)
            r[nc * 4 + i] = (float)((x[nc * 4 + i] - m) / sqrt(v + 1e-5) * sc[nc % 3] + bi[nc % 3]);
    }
    tin inn[3] = {T4(2, 3, 2, 2, x), {1, {3}, sc, 1}, {1, {3}, bi, 1}};
    run1("InstanceNormalization", "InstanceNormalization", 3, inn, 0, NULL, 4, d4, r, 1e-5, 0);
    /* GroupNormalization: [2,4,3] in 2 groups; scale/bias per group (opset
     * 18) and per channel (opset 21) */
    for (int pc = 0; pc < 2; pc++) {
        int64_t dg[3] = {2, 4, 3};
        for (int row = 0; row < 4; row++) { /* (n, group): 6 values each */
            double m = 0, v = 0;
            for (int i = 0; i < 6; i++)
                m += x[row * 6 + i] / 6.0;
            for (int i = 0; i < 6; i++)
                v += (x[row * 6 + i] - m) * (x[row * 6 + i] - m) / 6.0;
            for (int i = 0; i < 6; i++) {
                int c = pc ? (row % 2) * 2 + i / 3 : row % 2;
                r[row * 6 + i] = (float)((x[row * 6 + i] - m) / sqrt(v + 1e-5) * sc[c] + bi[c]);
            }
        }
        tin gn[3] = {{3, {2, 4, 3}, x, 0}, {1, {pc ? 4 : 2}, sc, 1}, {1, {pc ? 4 : 2}, bi, 1}};
        occ_attr ga[1] = {A_INT("num_groups", 2)};
        run1(pc ? "GroupNormalization per channel" : "GroupNormalization", "GroupNormalization",
             3, gn, 1, ga, 3, dg, r, 1e-5, 0);
    }
    /* LpNormalization p = 1 along axis 1 */
    for (int o = 0; o < 2; o++)
        for (int j = 0; j < 4; j++) {
            double s = 0;
            for (int i = 0; i < 3; i++)
                s += fabs(x[(o * 3 + i) * 4 + j]);
            for (int i = 0; i < 3; i++)
                r[(o * 3 + i) * 4 + j] = (float)(x[(o * 3 + i) * 4 + j] / s);
        }
    tin lp[1] = {{3, {2, 3, 4}, x, 0}};
    occ_attr pa[2] = {A_INT("axis", 1), A_INT("p", 1)};
    run1("LpNormalization", "LpNormalization", 1, lp, 2, pa, 3, d, r, 1e-6, 0);
    free(x);
    free(r);
    free(sc);
    free(bi);
}

static void test_conv_pool_1d(void)
{
    /* Conv 1-D: x [1,4,10], w [6,2,3] (group 2), stride 2, pads 1/2, dilation 2 */
    float *x = rand_buf(40), *w = rand_buf(36), *b = rand_buf(6), *r = calloc(64, 4);
    int64_t st = 2, dl = 2, pb = 1, pe = 2, L = 10, K = 3;
    int64_t OL = (L + pb + pe - ((K - 1) * dl + 1)) / st + 1;
    for (int m = 0; m < 6; m++)
        for (int64_t o = 0; o < OL; o++) {
            double acc = b[m];
            int g = m / 3;
            for (int c = 0; c < 2; c++)
                for (int64_t k = 0; k < K; k++) {
                    int64_t i = o * st - pb + k * dl;
                    if (i >= 0 && i < L)
                        acc += (double)x[(g * 2 + c) * L + i] * w[(m * 2 + c) * K + k];
                }
            r[m * OL + o] = (float)acc;
        }
    tin in[3] = {{3, {1, 4, 10}, x, 0}, {3, {6, 2, 3}, w, 1}, {1, {6}, b, 1}};
    int64_t sv[1] = {st}, dv[1] = {dl}, pv[2] = {pb, pe};
    occ_attr ca[4] = {A_INTS("strides", sv, 1), A_INTS("dilations", dv, 1), A_INTS("pads", pv, 2),
                      A_INT("group", 2)};
    int64_t od[3] = {1, 6, OL};
    run1("Conv 1-D", "Conv", 3, in, 4, ca, 3, od, r, 1e-5, 0);
    /* MaxPool 1-D kernel 3 stride 2 pads 1/1, ceil_mode; LpPool p 2; GlobalMaxPool */
    int64_t k3[1] = {3}, s2[1] = {2}, p11[2] = {1, 1};
    int64_t OM = (10 + 2 - 3 + 1) / 2 + 1; /* ceil */
    if ((OM - 1) * 2 >= 10 + 1)
        OM--;
    for (int c = 0; c < 4; c++)
        for (int64_t o = 0; o < OM; o++) {
            float mx = -INFINITY;
            for (int64_t k = 0; k < 3; k++) {
                int64_t i = o * 2 - 1 + k;
                if (i >= 0 && i < 10)
                    mx = fmaxf(mx, x[c * 10 + i]);
            }
            r[c * OM + o] = mx;
        }
    tin pin[1] = {{3, {1, 4, 10}, x, 0}};
    occ_attr ma[4] = {A_INTS("kernel_shape", k3, 1), A_INTS("strides", s2, 1),
                      A_INTS("pads", p11, 2), A_INT("ceil_mode", 1)};
    int64_t pd[3] = {1, 4, OM};
    run1("MaxPool 1-D ceil", "MaxPool", 1, pin, 4, ma, 3, pd, r, 0, 0);
    int64_t OP = (10 + 2 - 3) / 2 + 1;
    for (int c = 0; c < 4; c++)
        for (int64_t o = 0; o < OP; o++) {
            double lp = 0;
            for (int64_t k = 0; k < 3; k++) {
                int64_t i = o * 2 - 1 + k;
                if (i >= 0 && i < 10)
                    lp += (double)x[c * 10 + i] * x[c * 10 + i];
            }
            r[c * OP + o] = (float)sqrt(lp);
        }
    int64_t lpd[3] = {1, 4, OP};
    run1("LpPool 1-D", "LpPool", 1, pin, 3, ma, 3, lpd, r, 1e-6, 0);
    for (int c = 0; c < 4; c++) {
        float mx = -INFINITY;
        for (int i = 0; i < 10; i++)
            mx = fmaxf(mx, x[c * 10 + i]);
        r[c] = mx;
    }
    int64_t gd[3] = {1, 4, 1};
    run1("GlobalMaxPool", "GlobalMaxPool", 1, pin, 0, NULL, 3, gd, r, 0, 0);
    free(x);
    free(w);
    free(b);
    free(r);
}

static void test_pool_3d(void)
{
    /* AveragePool 3-D: [1,2,3,4,5], kernel 2x3x2, strides 2x1x2, pads 1 on
     * every side, count_include_pad: divide by the padded window */
    enum { C = 2, Z = 3, Hh = 4, Ww = 5 };
    const int64_t k[3] = {2, 3, 2}, s[3] = {2, 1, 2}, p = 1;
    int64_t o[3];
    const int64_t in[3] = {Z, Hh, Ww};
    for (int i = 0; i < 3; i++)
        o[i] = (in[i] + 2 * p - k[i]) / s[i] + 1;
    float *x = rand_buf(C * Z * Hh * Ww), *r = malloc((size_t)(C * o[0] * o[1] * o[2]) * 4);
    for (int c = 0; c < C; c++)
        for (int64_t a = 0; a < o[0]; a++)
            for (int64_t b = 0; b < o[1]; b++)
                for (int64_t d = 0; d < o[2]; d++) {
                    double acc = 0;
                    for (int64_t i = 0; i < k[0]; i++)
                        for (int64_t j = 0; j < k[1]; j++)
                            for (int64_t l = 0; l < k[2]; l++) {
                                int64_t z = a * s[0] - p + i, h = b * s[1] - p + j,
                                        w = d * s[2] - p + l;
                                if (z >= 0 && z < Z && h >= 0 && h < Hh && w >= 0 && w < Ww)
                                    acc += x[((c * Z + z) * Hh + h) * Ww + w];
                            }
                    r[((c * o[0] + a) * o[1] + b) * o[2] + d] = (float)(acc / 12.0);
                }
    int64_t pads[6] = {1, 1, 1, 1, 1, 1};
    occ_attr at[4] = {A_INTS("kernel_shape", k, 3), A_INTS("strides", s, 3),
                      A_INTS("pads", pads, 6), A_INT("count_include_pad", 1)};
    tin tx[1] = {{5, {1, C, Z, Hh, Ww}, x, 0}};
    int64_t od[5] = {1, C, o[0], o[1], o[2]};
    run1("AveragePool 3-D", "AveragePool", 1, tx, 4, at, 5, od, r, 1e-6, 0);
    free(x);
    free(r);
}

static void test_convtranspose(void)
{
    /* x [1,4,3,3], W [4, 3, 3, 2] group 2 (M = 6), strides 2x1, pads 1,0,0,1,
     * output_padding 1,0, dilation 1x2 */
    const int64_t C = 4, G = 2, Mg = 3, M = 6, IH = 3, IW = 3, KH = 3, KW = 2;
    const int64_t s[2] = {2, 1}, dl[2] = {1, 2}, pb[2] = {1, 0}, pe[2] = {0, 1}, op[2] = {1, 0};
    int64_t OH = s[0] * (IH - 1) + op[0] + (KH - 1) * dl[0] + 1 - pb[0] - pe[0];
    int64_t OW = s[1] * (IW - 1) + op[1] + (KW - 1) * dl[1] + 1 - pb[1] - pe[1];
    float *x = rand_buf(C * IH * IW), *w = rand_buf(C * Mg * KH * KW), *b = rand_buf(M);
    double *acc = calloc((size_t)(M * OH * OW), sizeof(double));
    float *r = malloc((size_t)(M * OH * OW) * 4);
    for (int64_t c = 0; c < C; c++)
        for (int64_t ih = 0; ih < IH; ih++)
            for (int64_t iw = 0; iw < IW; iw++)
                for (int64_t mm = 0; mm < Mg; mm++)
                    for (int64_t kh = 0; kh < KH; kh++)
                        for (int64_t kw = 0; kw < KW; kw++) {
                            int64_t oh = ih * s[0] - pb[0] + kh * dl[0];
                            int64_t ow = iw * s[1] - pb[1] + kw * dl[1];
                            if (oh < 0 || oh >= OH || ow < 0 || ow >= OW)
                                continue;
                            int64_t m = (c / (C / G)) * Mg + mm;
                            acc[(m * OH + oh) * OW + ow] +=
                                (double)x[(c * IH + ih) * IW + iw] *
                                w[((c * Mg + mm) * KH + kh) * KW + kw];
                        }
    for (int64_t i = 0; i < M * OH * OW; i++)
        r[i] = (float)(acc[i] + b[i / (OH * OW)]);
    tin in[3] = {T4(1, C, IH, IW, x), {4, {C, Mg, KH, KW}, w, 1}, {1, {M}, b, 1}};
    int64_t sv[2] = {2, 1}, dv[2] = {1, 2}, pv[4] = {1, 0, 0, 1}, ov[2] = {1, 0};
    occ_attr a[5] = {A_INTS("strides", sv, 2), A_INTS("dilations", dv, 2), A_INTS("pads", pv, 4),
                     A_INTS("output_padding", ov, 2), A_INT("group", 2)};
    int64_t od[4] = {1, M, OH, OW};
    run1("ConvTranspose", "ConvTranspose", 3, in, 5, a, 4, od, r, 1e-5, 0);
    free(x);
    free(w);
    free(b);
    free(acc);
    free(r);
}

static void test_resize_interp(void)
{
    /* linear, half_pixel, [1,1,2,3] -> [1,1,4,6] (scales 2): separable */
    float x[6] = {1, 2, 4, 3, 5, 9};
    float r[24];
    for (int oh = 0; oh < 4; oh++)
        for (int ow = 0; ow < 6; ow++) {
            double fy = (oh + 0.5) / 2 - 0.5, fx = (ow + 0.5) / 2 - 0.5;
            int y0 = (int)floor(fy), x0 = (int)floor(fx);
            double ty = fy - y0, tx = fx - x0, v = 0;
            for (int a = 0; a < 2; a++)
                for (int c = 0; c < 2; c++) {
                    int yy = y0 + a < 0 ? 0 : y0 + a > 1 ? 1 : y0 + a;
                    int xx = x0 + c < 0 ? 0 : x0 + c > 2 ? 2 : x0 + c;
                    v += (a ? ty : 1 - ty) * (c ? tx : 1 - tx) * x[yy * 3 + xx];
                }
            r[oh * 6 + ow] = (float)v;
        }
    float sc[4] = {1, 1, 2, 2};
    occ_attr a[2] = {A_FLOATS("scales", sc, 4), A_STR("mode", "linear")};
    tin in[1] = {T4(1, 1, 2, 3, x)};
    int64_t od[4] = {1, 1, 4, 6};
    run1("Resize linear", "Resize", 1, in, 2, a, 4, od, r, 1e-6, 0);
    /* cubic, asymmetric, 1-D along W ([1,1,1,4] -> [1,1,1,8]), A = -0.5 */
    float x4[4] = {0, 1, 3, 2}, r8[8];
    for (int o = 0; o < 8; o++) {
        double f = o / 2.0, t = f - floor(f), A = -0.5, v = 0;
        int i0 = (int)floor(f) - 1;
        double t1 = t + 1, t2 = 1 - t, t3 = 2 - t;
        double c[4] = {((A * t1 - 5 * A) * t1 + 8 * A) * t1 - 4 * A,
                       ((A + 2) * t - (A + 3)) * t * t + 1,
                       ((A + 2) * t2 - (A + 3)) * t2 * t2 + 1,
                       ((A * t3 - 5 * A) * t3 + 8 * A) * t3 - 4 * A};
        for (int k = 0; k < 4; k++) {
            int i = i0 + k < 0 ? 0 : i0 + k > 3 ? 3 : i0 + k;
            v += c[k] * x4[i];
        }
        r8[o] = (float)v;
    }
    float sc2[4] = {1, 1, 1, 2};
    occ_attr ca[4] = {A_FLOATS("scales", sc2, 4), A_STR("mode", "cubic"),
                      A_STR("coordinate_transformation_mode", "asymmetric"),
                      A_FLOAT("cubic_coeff_a", -0.5f)};
    tin in2[1] = {T4(1, 1, 1, 4, x4)};
    int64_t od2[4] = {1, 1, 1, 8};
    run1("Resize cubic", "Resize", 1, in2, 4, ca, 4, od2, r8, 1e-6, 0);
}

static void test_depth_space(void)
{
    float *x = rand_buf(2 * 8 * 2 * 3), *r = malloc(96 * 4);
    /* DepthToSpace CRD, blocksize 2: [2,8,2,3] -> [2,2,4,6] */
    for (int n = 0; n < 2; n++)
        for (int c = 0; c < 2; c++)
            for (int oh = 0; oh < 4; oh++)
                for (int ow = 0; ow < 6; ow++) {
                    int ci = c * 4 + (oh % 2) * 2 + ow % 2;
                    r[((n * 2 + c) * 4 + oh) * 6 + ow] = x[((n * 8 + ci) * 2 + oh / 2) * 3 + ow / 2];
                }
    tin in[1] = {T4(2, 8, 2, 3, x)};
    occ_attr a[2] = {A_INT("blocksize", 2), A_STR("mode", "CRD")};
    int64_t od[4] = {2, 2, 4, 6};
    run1("DepthToSpace CRD", "DepthToSpace", 1, in, 2, a, 4, od, r, 0, 0);
    /* SpaceToDepth undoes DepthToSpace DCR */
    occ_attr ad[1] = {A_INT("blocksize", 2)};
    for (int n = 0; n < 2; n++)
        for (int c = 0; c < 2; c++)
            for (int oh = 0; oh < 4; oh++)
                for (int ow = 0; ow < 6; ow++) {
                    int ci = ((oh % 2) * 2 + ow % 2) * 2 + c;
                    r[((n * 2 + c) * 4 + oh) * 6 + ow] = x[((n * 8 + ci) * 2 + oh / 2) * 3 + ow / 2];
                }
    run1("DepthToSpace DCR", "DepthToSpace", 1, in, 1, ad, 4, od, r, 0, 0);
    tin back[1] = {T4(2, 2, 4, 6, r)};
    int64_t bd[4] = {2, 8, 2, 3};
    run1("SpaceToDepth", "SpaceToDepth", 1, back, 1, ad, 4, bd, x, 0, 0);
    free(x);
    free(r);
}

static double sig(double v) { return 1 / (1 + exp(-v)); }

static void test_recurrent(void)
{
    /* forward GRU (linear_before_reset 0) and LSTM, 3 steps, batch 2, input 3,
     * hidden 2, with biases and an initial hidden state */
    enum { S = 3, B = 2, I = 3, H = 2 };
    float *x = rand_buf(S * B * I), *h0 = rand_buf(B * H);
    for (int kind = 0; kind < 2; kind++) {
        const int G = kind ? 4 : 3;
        float *w = rand_buf(G * H * I), *rr = rand_buf(G * H * H), *bb = rand_buf(2 * G * H);
        float y[S * B * H];
        double h[B][H], c[B][H] = {{0}};
        for (int b = 0; b < B; b++)
            for (int j = 0; j < H; j++)
                h[b][j] = h0[b * H + j];
        for (int t = 0; t < S; t++) {
            double hn[B][H];
            for (int b = 0; b < B; b++) {
                double gx[4][H], gh[4][H];
                for (int g = 0; g < G; g++)
                    for (int j = 0; j < H; j++) {
                        double ax = bb[g * H + j], ah = bb[G * H + g * H + j];
                        for (int i = 0; i < I; i++)
                            ax += (double)x[(t * B + b) * I + i] * w[(g * H + j) * I + i];
                        for (int i = 0; i < H; i++)
                            ah += h[b][i] * rr[(g * H + j) * H + i];
                        gx[g][j] = ax;
                        gh[g][j] = ah;
                    }
                for (int j = 0; j < H; j++) {
                    if (!kind) {
                        double z = sig(gx[0][j] + gh[0][j]);
                        double rh = bb[G * H + 2 * H + j];
                        /* linear_before_reset = 0: (r . h) Rh, the reset first */
                        double rs = 0;
                        for (int i = 0; i < H; i++)
                            rs += sig(gx[1][i] + gh[1][i]) * h[b][i] * rr[(2 * H + j) * H + i];
                        double hh = tanh(gx[2][j] + rs + rh);
                        hn[b][j] = (1 - z) * hh + z * h[b][j];
                    } else {
                        double ig = sig(gx[0][j] + gh[0][j]), og = sig(gx[1][j] + gh[1][j]);
                        double fg = sig(gx[2][j] + gh[2][j]), cg = tanh(gx[3][j] + gh[3][j]);
                        c[b][j] = fg * c[b][j] + ig * cg;
                        hn[b][j] = og * tanh(c[b][j]);
                    }
                }
            }
            for (int b = 0; b < B; b++)
                for (int j = 0; j < H; j++) {
                    h[b][j] = hn[b][j];
                    y[(t * B + b) * H + j] = (float)hn[b][j];
                }
        }
        tin in[6] = {{3, {S, B, I}, x, 0},        {3, {1, G * H, I}, w, 1},
                     {3, {1, G * H, H}, rr, 1},   {2, {1, 2 * G * H}, bb, 1},
                     {-1, {0}, NULL, 0},          {3, {1, B, H}, h0, 0}};
        occ_attr a[1] = {A_INT("hidden_size", H)};
        int64_t yd[4] = {S, 1, B, H};
        run1(kind ? "LSTM" : "GRU", kind ? "LSTM" : "GRU", 6, in, 1, a, 4, yd, y, 1e-5, 0);
        free(w);
        free(rr);
        free(bb);
    }
    free(x);
    free(h0);
}

/* RNN with activations = Relu (the packer's form of torch's
 * nonlinearity='relu'), bidirectional, against a double reference. */
static void test_rnn_relu(void)
{
    enum { S = 3, B = 2, I = 3, H = 2, D = 2 };
    float *x = rand_buf(S * B * I), *h0 = rand_buf(D * B * H);
    float *w = rand_buf(D * H * I), *rr = rand_buf(D * H * H), *bb = rand_buf(D * 2 * H);
    float y[S * D * B * H];
    for (int d = 0; d < D; d++) {
        double h[B][H];
        for (int b = 0; b < B; b++)
            for (int j = 0; j < H; j++)
                h[b][j] = h0[(d * B + b) * H + j];
        for (int step = 0; step < S; step++) {
            const int t = d ? S - 1 - step : step;
            double hn[B][H];
            for (int b = 0; b < B; b++)
                for (int j = 0; j < H; j++) {
                    double a = (double)bb[d * 2 * H + j] + bb[d * 2 * H + H + j];
                    for (int i = 0; i < I; i++)
                        a += (double)x[(t * B + b) * I + i] * w[(d * H + j) * I + i];
                    for (int i = 0; i < H; i++)
                        a += h[b][i] * rr[(d * H + j) * H + i];
                    hn[b][j] = a > 0 ? a : 0;
                }
            for (int b = 0; b < B; b++)
                for (int j = 0; j < H; j++) {
                    h[b][j] = hn[b][j];
                    y[((t * D + d) * B + b) * H + j] = (float)hn[b][j];
                }
        }
    }
    tin in[6] = {{3, {S, B, I}, x, 0},      {3, {D, H, I}, w, 1},
                 {3, {D, H, H}, rr, 1},     {2, {D, 2 * H}, bb, 1},
                 {-1, {0}, NULL, 0},        {3, {D, B, H}, h0, 0}};
    occ_attr a[3] = {A_INT("hidden_size", H), A_STR("direction", "bidirectional"),
                     A_STR("activations", "Relu")};
    int64_t yd[4] = {S, D, B, H};
    run1("RNN relu", "RNN", 6, in, 3, a, 4, yd, y, 1e-5, 0);
    free(x);
    free(h0);
    free(w);
    free(rr);
    free(bb);
}

/* sequence_lens shorter than the sequence (ONNX): entry b runs its first
 * len[b] steps, a reverse direction starting at len[b] - 1, and Y is zero
 * past them. A bidirectional LSTM (the fast path) and a Relu RNN (the
 * generic one) against double references. */
static double sigmd(double v)
{
    return 1.0 / (1.0 + exp(-v));
}

static void rnn_lens_case(int lstm)
{
    enum { S = 4, B = 2, I = 3, H = 2, D = 2 };
    const int G = lstm ? 4 : 1;
    const int64_t lens[B] = {S, 2};
    float *x = rand_buf(S * B * I), *w = rand_buf(D * G * H * I), *rr = rand_buf(D * G * H * H);
    float *bb = rand_buf(D * 2 * G * H);
    float y[S * D * B * H];
    memset(y, 0, sizeof y);
    for (int d = 0; d < D; d++)
        for (int b = 0; b < B; b++) {
            double h[H] = {0}, c[H] = {0};
            for (int step = 0; step < lens[b]; step++) {
                const int t = d ? (int)lens[b] - 1 - step : step;
                double g[4][H], hn[H];
                for (int k = 0; k < G; k++)
                    for (int j = 0; j < H; j++) {
                        const int row = k * H + j;
                        double a = (double)bb[d * 2 * G * H + row] + bb[d * 2 * G * H + G * H + row];
                        for (int i = 0; i < I; i++)
                            a += (double)x[(t * B + b) * I + i] * w[(d * G * H + row) * I + i];
                        for (int i = 0; i < H; i++)
                            a += h[i] * rr[(d * G * H + row) * H + i];
                        g[k][j] = a;
                    }
                for (int j = 0; j < H; j++) {
                    if (lstm) { /* gates i, o, f, c */
                        c[j] = sigmd(g[2][j]) * c[j] + sigmd(g[0][j]) * tanh(g[3][j]);
                        hn[j] = sigmd(g[1][j]) * tanh(c[j]);
                    } else {
                        hn[j] = g[0][j] > 0 ? g[0][j] : 0;
                    }
                }
                for (int j = 0; j < H; j++) {
                    h[j] = hn[j];
                    y[((t * D + d) * B + b) * H + j] = (float)hn[j];
                }
            }
        }
    tin in[3] = {{3, {S, B, I}, x, 0}, {3, {D, G * H, I}, w, 1}, {3, {D, G * H, H}, rr, 1}};
    tin in4[4] = {in[0], in[1], in[2], {2, {D, 2 * G * H}, bb, 1}};
    occ_attr a[4] = {A_INT("hidden_size", H), A_STR("direction", "bidirectional"),
                     A_INTS("sequence_lens", lens, B), A_STR("activations", "Relu")};
    int64_t yd[4] = {S, D, B, H};
    run1(lstm ? "LSTM sequence_lens" : "RNN sequence_lens", lstm ? "LSTM" : "RNN", 4, in4,
         lstm ? 3 : 4, a, 4, yd, y, 1e-5, 0);
    free(x);
    free(w);
    free(rr);
    free(bb);
}

static void test_rnn_sequence_lens(void)
{
    rnn_lens_case(1);
    rnn_lens_case(0);
}

static void test_einsum(void)
{
    /* attention scores: bhid,bhjd->bhij with a weight as the second operand */
    enum { Bn = 2, Hn = 2, I = 3, J = 4, D = 5 };
    float *q = rand_buf(Bn * Hn * I * D), *k = rand_buf(Bn * Hn * J * D);
    float r[Bn * Hn * I * J];
    for (int b = 0; b < Bn * Hn; b++)
        for (int i = 0; i < I; i++)
            for (int j = 0; j < J; j++) {
                double acc = 0;
                for (int d = 0; d < D; d++)
                    acc += (double)q[(b * I + i) * D + d] * k[(b * J + j) * D + d];
                r[(b * I + i) * J + j] = (float)acc;
            }
    tin in[2] = {T4(Bn, Hn, I, D, q), {4, {Bn, Hn, J, D}, k, 1}};
    occ_attr a[1] = {A_STR("equation", "bhid, bhjd -> bhij")};
    int64_t od[4] = {Bn, Hn, I, J};
    run1("Einsum bhid,bhjd->bhij", "Einsum", 2, in, 1, a, 4, od, r, 1e-5, 0);
    /* transpose with an implicit output: "ji" -> letters sorted: "ij" */
    float t[12];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++)
            t[j * 3 + i] = q[i * 4 + j];
    tin tin1[1] = {{2, {3, 4}, q, 0}};
    occ_attr ta[1] = {A_STR("equation", "ij->ji")};
    int64_t td[2] = {4, 3};
    run1("Einsum ij->ji", "Einsum", 1, tin1, 1, ta, 2, td, t, 0, 0);
    free(q);
    free(k);
}

int main(void)
{
    RUN(test_unary_more);
    RUN(test_variadic_pow_prelu);
    RUN(test_reduce_family);
    RUN(test_softmax_family);
    RUN(test_norms);
    RUN(test_conv_pool_1d);
    RUN(test_pool_3d);
    RUN(test_convtranspose);
    RUN(test_resize_interp);
    RUN(test_depth_space);
    RUN(test_recurrent);
    RUN(test_rnn_relu);
    RUN(test_rnn_sequence_lens);
    RUN(test_einsum);
    TEST_DONE();
}
