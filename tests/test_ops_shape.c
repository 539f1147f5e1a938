/* Concat, Flatten, Reshape, Transpose, Squeeze, Unsqueeze, Pad, Resize,
 * Upsample and ReduceMean against straightforward references. */
#include "test_ops_util.h"

static void test_concat(void)
{
    /* channels concat of three 4-D inputs: plain and blocked (oneDNN concat) */
    int64_t c[3] = {16, 5, 32};
    float *x[3], *r = malloc(2 * 53 * 3 * 4 * 4);
    for (int i = 0; i < 3; i++)
        x[i] = rand_buf(2 * c[i] * 12);
    int64_t off = 0;
    for (int i = 0; i < 3; i++) {
        for (int64_t b = 0; b < 2; b++)
            memcpy(r + (b * 53 + off) * 12, x[i] + b * c[i] * 12, (size_t)(c[i] * 12) * 4);
        off += c[i];
    }
    tin in[3] = {T4(2, 16, 3, 4, x[0]), T4(2, 5, 3, 4, x[1]), T4(2, 32, 3, 4, x[2])};
    occ_attr a[1] = {A_INT("axis", 1)};
    int64_t d[4] = {2, 53, 3, 4};
    for (int vc = 0; vc < 2; vc++)
        run1("Concat axis 1", "Concat", 3, in, 1, a, 4, d, r, 0, vc);
    /* last axis, negative, with a weight input */
    tin in2[2] = {{2, {3, 2}, x[0], 0}, {2, {3, 4}, x[1], 1}};
    for (int i = 0; i < 3; i++) {
        memcpy(r + i * 6, x[0] + i * 2, 8);
        memcpy(r + i * 6 + 2, x[1] + i * 4, 16);
    }
    occ_attr a2[1] = {A_INT("axis", -1)};
    int64_t d2[2] = {3, 6};
    run1("Concat axis -1", "Concat", 2, in2, 1, a2, 2, d2, r, 0, 0);
    for (int i = 0; i < 3; i++)
        free(x[i]);
    free(r);
}

static void test_reshapes(void)
{
    float *x = rand_buf(120);
    tin in[1] = {T4(2, 3, 4, 5, x)};
    occ_attr fa[1] = {A_INT("axis", 2)};
    int64_t fd[2] = {6, 20};
    for (int vc = 0; vc < 2; vc++)
        run1("Flatten axis 2", "Flatten", 1, in, 1, fa, 2, fd, x, 0, vc);
    /* a negative axis counts from the rank: -1 keeps the last dim apart */
    occ_attr fneg[1] = {A_INT("axis", -1)};
    int64_t fdn[2] = {24, 5};
    run1("Flatten axis -1", "Flatten", 1, in, 1, fneg, 2, fdn, x, 0, 0);
    int64_t shape[3] = {0, -1, 10};
    occ_attr ra[1] = {A_INTS("shape", shape, 3)};
    int64_t rd[3] = {2, 6, 10};
    run1("Reshape 0,-1,10", "Reshape", 1, in, 1, ra, 3, rd, x, 0, 1);
    tin in1[1] = {{5, {2, 1, 3, 1, 20}, x, 0}};
    int64_t ax[2] = {1, -2};
    occ_attr sa[1] = {A_INTS("axes", ax, 2)};
    int64_t sd[3] = {2, 3, 20};
    run1("Squeeze", "Squeeze", 1, in1, 1, sa, 3, sd, x, 0, 0);
    run1("Squeeze all", "Squeeze", 1, in1, 0, NULL, 3, sd, x, 0, 0);
    tin in3[1] = {{3, {2, 3, 20}, x, 0}};
    int64_t ua[2] = {0, -1};
    occ_attr uat[1] = {A_INTS("axes", ua, 2)};
    int64_t ud[5] = {1, 2, 3, 20, 1};
    run1("Unsqueeze", "Unsqueeze", 1, in3, 1, uat, 5, ud, x, 0, 0);
    free(x);
}

static void test_transpose(void)
{
    float *x = rand_buf(120), *r = malloc(120 * 4);
    int64_t perm[4] = {0, 2, 3, 1};
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 3; b++)
            for (int c = 0; c < 4; c++)
                for (int d = 0; d < 5; d++)
                    r[((a * 4 + c) * 5 + d) * 3 + b] = x[((a * 3 + b) * 4 + c) * 5 + d];
    tin in[1] = {T4(2, 3, 4, 5, x)};
    occ_attr at[1] = {A_INTS("perm", perm, 4)};
    int64_t od[4] = {2, 4, 5, 3};
    for (int vc = 0; vc < 2; vc++)
        run1("Transpose NCHW->NHWC", "Transpose", 1, in, 1, at, 4, od, r, 0, vc);
    tin in2[1] = {{2, {6, 20}, x, 0}};
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 20; j++)
            r[j * 6 + i] = x[i * 20 + j];
    int64_t od2[2] = {20, 6};
    run1("Transpose default", "Transpose", 1, in2, 0, NULL, 2, od2, r, 0, 0);
    free(x);
    free(r);
}

static void test_pad(void)
{
    int64_t H = 3, W = 4;
    float *x = rand_buf(2 * H * W), *r = malloc(2 * 6 * 9 * 4);
    int64_t pads[8] = {0, 0, 1, 2, 0, 0, 2, 3}; /* H: 1,2  W: 2,3 */
    const char *modes[3] = {"constant", "edge", "reflect"};
    for (int m = 0; m < 3; m++) {
        for (int c = 0; c < 2; c++)
            for (int oh = 0; oh < 6; oh++)
                for (int ow = 0; ow < 9; ow++) {
                    int64_t h = oh - 1, w = ow - 2;
                    float v;
                    if (m == 0) {
                        v = (h < 0 || h >= H || w < 0 || w >= W) ? 1.5f : x[(c * H + h) * W + w];
                    } else {
                        if (m == 1) {
                            h = h < 0 ? 0 : (h >= H ? H - 1 : h);
                            w = w < 0 ? 0 : (w >= W ? W - 1 : w);
                        } else {
                            h = h < 0 ? -h : (h >= H ? 2 * (H - 1) - h : h);
                            w = w < 0 ? -w : (w >= W ? 2 * (W - 1) - w : w);
                        }
                        v = x[(c * H + h) * W + w];
                    }
                    r[(c * 6 + oh) * 9 + ow] = v;
                }
        occ_attr a[3] = {A_INTS("pads", pads, 8), A_STR("mode", modes[m]), A_FLOAT("value", 1.5f)};
        tin in[1] = {T4(1, 2, H, W, x)};
        int64_t d[4] = {1, 2, 6, 9};
        run1(modes[m], "Pad", 1, in, 3, a, 4, d, r, 0, m == 0);
    }
    free(x);
    free(r);
}

static void test_resize(void)
{
    int64_t H = 3, W = 5;
    float *x = rand_buf(2 * H * W), *r = malloc(2 * 6 * 12 * 4);
    /* Upsample x2 nearest (asymmetric, floor) */
    float sc[4] = {1, 1, 2, 2};
    for (int c = 0; c < 2; c++)
        for (int oh = 0; oh < 6; oh++)
            for (int ow = 0; ow < 10; ow++)
                r[(c * 6 + oh) * 10 + ow] = x[(c * H + oh / 2) * W + ow / 2];
    tin in[1] = {T4(1, 2, H, W, x)};
    occ_attr ua[2] = {A_FLOATS("scales", sc, 4), A_STR("mode", "nearest")};
    int64_t d[4] = {1, 2, 6, 10};
    run1("Upsample x2", "Upsample", 1, in, 2, ua, 4, d, r, 0, 0);
    occ_attr ra[4] = {A_FLOATS("scales", sc, 4), A_STR("mode", "nearest"),
                      A_STR("coordinate_transformation_mode", "asymmetric"),
                      A_STR("nearest_mode", "floor")};
    run1("Resize x2 asymmetric floor", "Resize", 1, in, 4, ra, 4, d, r, 0, 0);
    /* half_pixel + round_prefer_floor to sizes 5 x 12 (non-integer scales) */
    int64_t sizes[4] = {1, 2, 5, 12};
    for (int c = 0; c < 2; c++)
        for (int oh = 0; oh < 5; oh++)
            for (int ow = 0; ow < 12; ow++) {
                double sh = 5.0 / H, sw = 12.0 / W;
                double fh = (oh + 0.5) / sh - 0.5, fw = (ow + 0.5) / sw - 0.5;
                double ih = (fh == floor(fh) + 0.5) ? floor(fh) : round(fh);
                double iw = (fw == floor(fw) + 0.5) ? floor(fw) : round(fw);
                ih = ih < 0 ? 0 : (ih > H - 1 ? H - 1 : ih);
                iw = iw < 0 ? 0 : (iw > W - 1 ? W - 1 : iw);
                r[(c * 5 + oh) * 12 + ow] = x[(c * H + (int64_t)ih) * W + (int64_t)iw];
            }
    occ_attr rb[2] = {A_INTS("sizes", sizes, 4),
                      A_STR("coordinate_transformation_mode", "half_pixel")};
    int64_t d2[4] = {1, 2, 5, 12};
    run1("Resize half_pixel sizes", "Resize", 1, in, 2, rb, 4, d2, r, 0, 0);
    free(x);
    free(r);
}

/* 1-D linear taps of half_pixel resizing n_in -> n_out at index o. */
static void lin_taps(int64_t n_in, int64_t n_out, int64_t o, int64_t *i0, int64_t *i1, double *w)
{
    double f = (o + 0.5) * (double)n_in / (double)n_out - 0.5;
    if (f < 0)
        f = 0;
    *i0 = (int64_t)floor(f);
    if (*i0 > n_in - 1)
        *i0 = n_in - 1;
    *i1 = *i0 + 1 < n_in ? *i0 + 1 : n_in - 1;
    *w = f - (double)*i0;
}

/* Linear Resize runs one pass per resized dim, the last straight into the
 * output: its held buffers are sized by the earlier passes (fcn_resnet50's
 * 21x256x256 upsampling held two output-sized buffers, 11 MB). Values against
 * a separable reference, with two and with three passes. */
static void test_resize_linear_buffers(void)
{
    for (int three = 0; three < 2; three++) {
        int64_t id[4] = {1, 4, 8, 8}, od[4] = {1, three ? 8 : 4, 64, 64};
        int64_t on = od[1] * od[2] * od[3];
        float *x = rand_buf(4 * 8 * 8), *r = malloc((size_t)on * 4);
        for (int64_t c = 0; c < od[1]; c++)
            for (int64_t h = 0; h < 64; h++)
                for (int64_t w = 0; w < 64; w++) {
                    int64_t c0, c1, h0, h1, w0, w1;
                    double a, bb, g;
                    lin_taps(id[1], od[1], c, &c0, &c1, &a);
                    lin_taps(8, 64, h, &h0, &h1, &bb);
                    lin_taps(8, 64, w, &w0, &w1, &g);
                    double v = 0;
                    for (int k = 0; k < 8; k++) {
                        int64_t cc = k & 4 ? c1 : c0, hh = k & 2 ? h1 : h0, ww = k & 1 ? w1 : w0;
                        double wt = (k & 4 ? a : 1 - a) * (k & 2 ? bb : 1 - bb) * (k & 1 ? g : 1 - g);
                        v += wt * x[(cc * 8 + hh) * 8 + ww];
                    }
                    r[(c * 64 + h) * 64 + w] = (float)v;
                }
        tin in[1] = {T4(1, 4, 8, 8, x)};
        occ_attr ra[3] = {A_INTS("sizes", od, 4), A_STR("mode", "linear"),
                          A_STR("coordinate_transformation_mode", "half_pixel")};
        run1(three ? "Resize linear C,H,W" : "Resize linear H,W", "Resize", 1, in, 3, ra, 4, od, r,
             1e-5, 0);
        /* what the engine holds for it, besides tables: the passes before the last */
        tb b;
        tb_init(&b);
        int xi = tb_input(&b, "x", 4, id), y = tb_act(&b, "y");
        tb_node(&b, "Resize", 1, &xi, y, 3, ra);
        tb_output(&b, y);
        occ_error e = {0};
        occ_engine *eng = NULL;
        occ_engine_opts o = {.threads = 1};
        CHECK_MSG(tb_finish(&b, &e) == OCC_OK, "%s", e.msg);
        CHECK_MSG(occ_engine_create(&b.m, &o, tb_read, &b, &eng, &e) == OCC_OK, "%s", e.msg);
        if (eng) {
            occ_plan_summary sum = {0};
            const occ_plan_layer *layers = NULL;
            uint32_t nl = 0;
            occ_engine_plan_summary(eng, &sum, &layers, &nl);
            /* H pass: [1,4,64,8] (and C first: [1,8,8,8], [1,8,64,8] twice) */
            uint64_t want = three ? 2 * 8 * 64 * 8 * 4 : 4 * 64 * 8 * 4;
            CHECK_MSG(sum.fixed >= want && sum.fixed < want + 16384 && sum.fixed < (uint64_t)on * 4,
                      "held %llu bytes (want %llu + tables)", (unsigned long long)sum.fixed,
                      (unsigned long long)want);
            occ_engine_free(eng);
        }
        tb_free(&b);
        free(x);
        free(r);
    }
}

/* Attention's Einsums ("bhid,bhjd->bhij", then "bhij,bhjd->bhid") read their
 * operands and write the result in place, B multiplied transposed where it is
 * [.., n, k]: no copies held (maxvit_t's 44 held 84 MB). A permuted form
 * ("bhdi,bhjd->bihj") still goes through the copies. Values against loops. */
static void test_einsum_attention(void)
{
    enum { H = 3, I = 5, J = 4, D = 6 };
    float *q = rand_buf(H * I * D), *k = rand_buf(H * J * D), *r = malloc(H * I * J * 4);
    for (int h = 0; h < H; h++)
        for (int i = 0; i < I; i++)
            for (int j = 0; j < J; j++) {
                double acc = 0;
                for (int d = 0; d < D; d++)
                    acc += (double)q[(h * I + i) * D + d] * k[(h * J + j) * D + d];
                r[(h * I + i) * J + j] = (float)acc;
            }
    tin in[2] = {T4(1, H, I, D, q), T4(1, H, J, D, k)};
    occ_attr a1[1] = {A_STR("equation", "bhid,bhjd->bhij")};
    int64_t d1[4] = {1, H, I, J};
    run1("Einsum bhid,bhjd->bhij", "Einsum", 2, in, 1, a1, 4, d1, r, 1e-5, 0);
    float *v = rand_buf(H * J * D), *r2 = malloc(H * I * D * 4), *r3 = malloc(H * I * J * 4);
    for (int h = 0; h < H; h++)
        for (int i = 0; i < I; i++)
            for (int d = 0; d < D; d++) {
                double acc = 0;
                for (int j = 0; j < J; j++)
                    acc += (double)r[(h * I + i) * J + j] * v[(h * J + j) * D + d];
                r2[(h * I + i) * D + d] = (float)acc;
            }
    tin in2[2] = {T4(1, H, I, J, r), T4(1, H, J, D, v)};
    occ_attr a2[1] = {A_STR("equation", "bhij,bhjd->bhid")};
    int64_t d2[4] = {1, H, I, D};
    run1("Einsum bhij,bhjd->bhid", "Einsum", 2, in2, 1, a2, 4, d2, r2, 1e-5, 0);
    /* q read as [b,h,d,i] (its data reinterpreted), output permuted: the copying path */
    for (int h = 0; h < H; h++)
        for (int i = 0; i < I; i++)
            for (int j = 0; j < J; j++) {
                double acc = 0;
                for (int d = 0; d < D; d++)
                    acc += (double)q[(h * D + d) * I + i] * k[(h * J + j) * D + d];
                r3[(i * H + h) * J + j] = (float)acc;
            }
    tin in3[2] = {T4(1, H, D, I, q), T4(1, H, J, D, k)};
    occ_attr a3[1] = {A_STR("equation", "bhdi,bhjd->bihj")};
    int64_t d3[4] = {1, I, H, J};
    run1("Einsum bhdi,bhjd->bihj", "Einsum", 2, in3, 1, a3, 4, d3, r3, 1e-5, 0);
    /* what the engine holds for the in-place forms: nothing */
    for (int f = 0; f < 2; f++) {
        tb b;
        tb_init(&b);
        int64_t da[4] = {1, H, I, f ? J : D}, db[4] = {1, H, J, D};
        int ins[2] = {tb_input(&b, "a", 4, da), tb_input(&b, "b", 4, db)}, y = tb_act(&b, "y");
        tb_node(&b, "Einsum", 2, ins, y, 1, f ? a2 : a1);
        tb_output(&b, y);
        occ_error e = {0};
        occ_engine *eng = NULL;
        occ_engine_opts o = {.threads = 1};
        CHECK_MSG(tb_finish(&b, &e) == OCC_OK, "%s", e.msg);
        CHECK_MSG(occ_engine_create(&b.m, &o, tb_read, &b, &eng, &e) == OCC_OK, "%s", e.msg);
        if (eng) {
            occ_plan_summary sum = {0};
            const occ_plan_layer *layers = NULL;
            uint32_t nl = 0;
            occ_engine_plan_summary(eng, &sum, &layers, &nl);
            CHECK_MSG(sum.fixed == 0, "form %d holds %llu bytes", f, (unsigned long long)sum.fixed);
            occ_engine_free(eng);
        }
        tb_free(&b);
    }
    free(q);
    free(k);
    free(v);
    free(r);
    free(r2);
    free(r3);
}

static void test_reducemean(void)
{
    float *x = rand_buf(120), *r = malloc(120 * 4);
    tin in[1] = {T4(2, 3, 4, 5, x)};
    /* over H, W keepdims */
    for (int p = 0; p < 6; p++) {
        double s = 0;
        for (int i = 0; i < 20; i++)
            s += x[p * 20 + i];
        r[p] = (float)(s / 20);
    }
    int64_t ax[2] = {2, 3};
    occ_attr a[2] = {A_INTS("axes", ax, 2), A_INT("keepdims", 1)};
    int64_t d[4] = {2, 3, 1, 1};
    run1("ReduceMean HW", "ReduceMean", 1, in, 2, a, 4, d, r, 1e-6, 0);
    /* over C, no keepdims */
    for (int b = 0; b < 2; b++)
        for (int i = 0; i < 20; i++) {
            double s = 0;
            for (int c = 0; c < 3; c++)
                s += x[(b * 3 + c) * 20 + i];
            r[b * 20 + i] = (float)(s / 3);
        }
    int64_t ax1[1] = {1};
    occ_attr a1[2] = {A_INTS("axes", ax1, 1), A_INT("keepdims", 0)};
    int64_t d1[3] = {2, 4, 5};
    run1("ReduceMean C", "ReduceMean", 1, in, 2, a1, 3, d1, r, 1e-6, 0);
    free(x);
    free(r);
}

int main(void)
{
    RUN(test_concat);
    RUN(test_reshapes);
    RUN(test_transpose);
    RUN(test_pad);
    RUN(test_resize);
    RUN(test_resize_linear_buffers);
    RUN(test_einsum_attention);
    RUN(test_reducemean);
    TEST_DONE();
}
