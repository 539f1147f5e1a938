/* MaxPool / AveragePool (pads, strides, ceil_mode, count_include_pad both
 * ways, auto_pad, dilation), GlobalAveragePool and LRN against naive loops,
 * plain and blocked. Reference semantics: PyTorch / ONNX Runtime (an average
 * window is clipped to the padded input [-pad_begin, H + pad_end)). */
#include "test_ops_util.h"

typedef struct pspec {
    int64_t n, c, h, w, kh, kw, sh, sw, pt, pl, pb, pr, dh, dw;
    int ceil, cip;
} pspec;

static int64_t outsz(int64_t in, int64_t k, int64_t s, int64_t p0, int64_t p1, int64_t d, int ceil)
{
    int64_t ext = (k - 1) * d + 1, span = in + p0 + p1 - ext;
    int64_t o = (ceil ? (span + s - 1) / s : span / s) + 1;
    if (ceil && (o - 1) * s >= in + p0)
        o--;
    return o;
}

static void ref_pool(const pspec *p, int max, const float *x, float *y, int64_t *oh_, int64_t *ow_)
{
    int64_t OH = outsz(p->h, p->kh, p->sh, p->pt, p->pb, p->dh, p->ceil);
    int64_t OW = outsz(p->w, p->kw, p->sw, p->pl, p->pr, p->dw, p->ceil);
    *oh_ = OH;
    *ow_ = OW;
    for (int64_t pl = 0; pl < p->n * p->c; pl++)
        for (int64_t oh = 0; oh < OH; oh++)
            for (int64_t ow = 0; ow < OW; ow++) {
                double acc = max ? -INFINITY : 0;
                int64_t cnt = 0, h0 = oh * p->sh - p->pt, w0 = ow * p->sw - p->pl;
                for (int64_t i = 0; i < p->kh; i++)
                    for (int64_t j = 0; j < p->kw; j++) {
                        int64_t h = h0 + i * p->dh, w = w0 + j * p->dw;
                        if (h < 0 || h >= p->h || w < 0 || w >= p->w)
                            continue;
                        double v = x[(pl * p->h + h) * p->w + w];
                        acc = max ? (v > acc ? v : acc) : acc + v;
                        cnt++;
                    }
                if (!max) {
                    if (p->cip) {
                        int64_t he = h0 + p->kh, we = w0 + p->kw;
                        he = he < p->h + p->pb ? he : p->h + p->pb;
                        we = we < p->w + p->pr ? we : p->w + p->pr;
                        cnt = (he - h0) * (we - w0);
                    }
                    acc /= (double)cnt;
                }
                y[(pl * OH + oh) * OW + ow] = (float)acc;
            }
}

static void pool_case(const char *label, const pspec *p, int max)
{
    int64_t n = p->n * p->c * p->h * p->w, OH, OW;
    float *x = rand_buf(n), *r = malloc((size_t)(p->n * p->c * (p->h + 8) * (p->w + 8)) * 4);
    ref_pool(p, max, x, r, &OH, &OW);
    int64_t ks[2] = {p->kh, p->kw}, st[2] = {p->sh, p->sw}, pads[4] = {p->pt, p->pl, p->pb, p->pr};
    int64_t dil[2] = {p->dh, p->dw};
    occ_attr a[6];
    int na = 0;
    a[na++] = A_INTS("kernel_shape", ks, 2);
    a[na++] = A_INTS("strides", st, 2);
    a[na++] = A_INTS("pads", pads, 4);
    a[na++] = A_INT("ceil_mode", p->ceil);
    if (max)
        a[na++] = A_INTS("dilations", dil, 2);
    else
        a[na++] = A_INT("count_include_pad", p->cip);
    tin in[1] = {T4(p->n, p->c, p->h, p->w, x)};
    int64_t d[4] = {p->n, p->c, OH, OW};
    for (int vc = 0; vc < 2; vc++)
        run1(label, max ? "MaxPool" : "AveragePool", 1, in, na, a, 4, d, r, 1e-6, vc);
    free(x);
    free(r);
}

static void test_pools(void)
{
    for (int max = 0; max < 2; max++) {
        pspec a = {1, 3, 8, 8, 2, 2, 2, 2, 0, 0, 0, 0, 1, 1, 0, 0};
        pool_case("2x2 s2", &a, max);
        pspec b = {2, 5, 9, 7, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0, 0};
        pool_case("3x3 s2 p1", &b, max);
        b.cip = 1;
        pool_case("3x3 s2 p1 include pad", &b, max);
        pspec c = {1, 4, 10, 11, 3, 3, 2, 2, 0, 1, 1, 0, 1, 1, 1, 0};
        pool_case("ceil_mode asym pads", &c, max);
        c.cip = 1;
        pool_case("ceil_mode asym pads include pad", &c, max);
        pspec g = {1, 17, 14, 14, 3, 3, 2, 2, 0, 0, 0, 0, 1, 1, 1, 0};
        pool_case("googlenet-style 3x3 s2 ceil", &g, max);
        pspec e = {1, 2, 7, 7, 7, 7, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0};
        pool_case("global-sized window", &e, max);
    }
    pspec d = {1, 3, 11, 11, 2, 3, 1, 2, 1, 0, 1, 2, 2, 2, 0, 0};
    pool_case("max dilated", &d, 1);
}

static void test_pool_auto_pad(void)
{
    float *x = rand_buf(1 * 2 * 7 * 7), *r = malloc(2 * 4 * 4 * 4);
    /* SAME_UPPER, k3 s2 on 7: out 4, total pad 2 -> 1,1 */
    pspec p = {1, 2, 7, 7, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 0, 0};
    int64_t OH, OW;
    ref_pool(&p, 1, x, r, &OH, &OW);
    int64_t ks[2] = {3, 3}, st[2] = {2, 2};
    occ_attr a[3] = {A_INTS("kernel_shape", ks, 2), A_INTS("strides", st, 2),
                     A_STR("auto_pad", "SAME_UPPER")};
    tin in[1] = {T4(1, 2, 7, 7, x)};
    int64_t d[4] = {1, 2, 4, 4};
    run1("MaxPool SAME_UPPER", "MaxPool", 1, in, 3, a, 4, d, r, 0, 0);
    free(x);
    free(r);
}

static void test_gap_lrn(void)
{
    int64_t N = 2, C = 5, H = 6, W = 7, n = N * C * H * W;
    float *x = rand_buf(n), *r = malloc(n * 4);
    for (int64_t p = 0; p < N * C; p++) {
        double s = 0;
        for (int64_t i = 0; i < H * W; i++)
            s += x[p * H * W + i];
        r[p] = (float)(s / (H * W));
    }
    tin in[1] = {T4(N, C, H, W, x)};
    int64_t d1[4] = {N, C, 1, 1};
    for (int vc = 0; vc < 2; vc++)
        run1("GlobalAveragePool", "GlobalAveragePool", 1, in, 0, NULL, 4, d1, r, 1e-6, vc);

    int64_t size = 4; /* even size: window [c-1, c+2] */
    float alpha = 0.3f, beta = 0.75f, bias = 2.0f;
    for (int64_t b = 0; b < N; b++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t i = 0; i < H * W; i++) {
                double s = 0;
                for (int64_t j = c - 1; j <= c + 2; j++)
                    if (j >= 0 && j < C) {
                        double v = x[((b * C + j) * H * W) + i];
                        s += v * v;
                    }
                r[(b * C + c) * H * W + i] =
                    (float)(x[(b * C + c) * H * W + i] / pow(bias + alpha / size * s, beta));
            }
    occ_attr a[4] = {A_INT("size", size), A_FLOAT("alpha", alpha), A_FLOAT("beta", beta),
                     A_FLOAT("bias", bias)};
    int64_t d[4] = {N, C, H, W};
    for (int vc = 0; vc < 2; vc++)
        run1("LRN", "LRN", 1, in, 4, a, 4, d, r, 1e-5, vc);
    free(x);
    free(r);
}

int main(void)
{
    RUN(test_pools);
    RUN(test_pool_auto_pad);
    RUN(test_gap_lrn);
    TEST_DONE();
}
