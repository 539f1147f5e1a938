/* DFT, STFT, MelWeightMatrix, MaxUnpool and RoiAlign through the engine,
 * each against values worked out by hand from the operator's definition
 * (closed forms: the spectrum of an impulse, of a cosine, a round trip; the
 * bilinear average of a ramp), and their refusals (bad shapes, indices
 * outside the output, a batch index outside X). */
#include <math.h>

#include "test_ops_util.h"

typedef struct tv {
    uint32_t dt;
    int ndim;
    int64_t dims[4];
    const void *data;
    int weight;
} tv;

typedef struct res {
    occ_status st;
    int at_run;
    char msg[OCC_ERROR_MSG_SIZE];
    occ_tensor t;
    float *out;
} res;

static const char *const tnames[] = {"in0", "in1", "in2", "in3", "in4"};

/* One node `op` (one output) over the inputs (NULL data: absent), run once. */
static void run_op(res *r, const char *op, int nin, const tv *in, int na, const occ_attr *a)
{
    tb b;
    occ_error e = {0};
    tb_init(&b);
    memset(r, 0, sizeof *r);
    int ids[8];
    const void *gin[8];
    int ngin = 0;
    for (int k = 0; k < nin; k++) {
        if (!in[k].data) {
            ids[k] = -1;
            continue;
        }
        ids[k] = in[k].weight ? tb_weight(&b, tnames[k], in[k].ndim, in[k].dims, in[k].data)
                              : tb_input(&b, tnames[k], in[k].ndim, in[k].dims);
        occ_tensor *t = &b.t[ids[k]];
        t->dtype = in[k].dt;
        t->size = (uint64_t)occ_tensor_count(t) * occ_dtype_size(in[k].dt);
        if (!in[k].weight)
            gin[ngin++] = in[k].data;
    }
    int out = tb_act(&b, "out0");
    tb_node(&b, op, nin, ids, out, na, a);
    tb_output(&b, out);
    occ_engine *eng = NULL;
    occ_engine_opts o = {.threads = 1};
    r->st = tb_finish(&b, &e);
    if (!r->st)
        r->st = occ_engine_create(&b.m, &o, tb_read, &b, &eng, &e);
    if (!r->st) {
        r->t = b.t[out];
        r->out = malloc((size_t)r->t.size + 8);
        memset(r->out, 0xA5, (size_t)r->t.size + 8);
        r->at_run = 1;
        void *outs[1] = {r->out};
        r->st = occ_engine_run(eng, gin, outs, &e);
    }
    snprintf(r->msg, sizeof r->msg, "%s", e.msg);
    occ_engine_free(eng);
    tb_free(&b);
}

static int same_shape(const res *r, int ndim, const int64_t *dims)
{
    if (r->st || r->t.ndim != ndim)
        return 0;
    for (int d = 0; d < ndim; d++)
        if (r->t.dims[d] != dims[d])
            return 0;
    return 1;
}

static double max_abs(const float *a, const float *b, int64_t n)
{
    double w = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= w))
            w = d;
    }
    return w;
}

static const double PI = 3.14159265358979323846;

static void test_dft(void)
{
    /* an impulse at 0 has the flat spectrum 1 + 0i; a cosine at bin 2 of
     * n = 8 has n/2 at bins 2 and 6 */
    float x[2][8] = {{0}}, want[2][8][2] = {{{0}}};
    x[0][0] = 1;
    for (int j = 0; j < 8; j++) {
        x[1][j] = (float)cos(2 * PI * 2 * j / 8);
        want[0][j][0] = 1;
    }
    want[1][2][0] = want[1][6][0] = 4;
    res r;
    tv in[1] = {{OCC_DTYPE_FLOAT, 3, {2, 8, 1}, x, 0}};
    occ_attr a[1] = {A_INT("axis", 1)};
    run_op(&r, "DFT", 1, in, 1, a);
    CHECK_MSG(same_shape(&r, 3, (int64_t[]){2, 8, 2}), "%s", r.msg);
    if (!r.st)
        CHECK_MSG(max_abs(r.out, &want[0][0][0], 32) < 1e-5, "err %g", max_abs(r.out, &want[0][0][0], 32));
    free(r.out);

    /* onesided: n/2 + 1 bins; dft_length 16 zero-pads the impulse (still flat) */
    occ_attr a2[3] = {A_INT("axis", 1), A_INT("onesided", 1), A_INTS("dft_length", (int64_t[]){16}, 1)};
    run_op(&r, "DFT", 1, in, 3, a2);
    CHECK_MSG(same_shape(&r, 3, (int64_t[]){2, 9, 2}), "%s", r.msg);
    if (!r.st) {
        int ok = 1;
        for (int k = 0; k < 9; k++)
            ok &= fabsf(r.out[2 * k] - 1) < 1e-6f && fabsf(r.out[2 * k + 1]) < 1e-6f;
        CHECK(ok);
    }
    free(r.out);

    /* inverse(forward(z)) = z, complex input on axis 2 */
    float z[1][3][5][2], f[1][3][5][2];
    for (int i = 0; i < 30; i++)
        (&z[0][0][0][0])[i] = frand();
    tv zin[1] = {{OCC_DTYPE_FLOAT, 4, {1, 3, 5, 2}, z, 0}};
    occ_attr fa[1] = {A_INT("axis", 2)};
    run_op(&r, "DFT", 1, zin, 1, fa);
    CHECK_MSG(same_shape(&r, 4, (int64_t[]){1, 3, 5, 2}), "%s", r.msg);
    if (!r.st) {
        memcpy(f, r.out, sizeof f);
        /* bin 0 is the sum of the row */
        double s0 = 0;
        for (int j = 0; j < 5; j++)
            s0 += z[0][1][j][0];
        CHECK(fabs(f[0][1][0][0] - s0) < 1e-5);
    }
    free(r.out);
    tv fin[1] = {{OCC_DTYPE_FLOAT, 4, {1, 3, 5, 2}, f, 0}};
    occ_attr ia[2] = {A_INT("axis", -2), A_INT("inverse", 1)};
    run_op(&r, "DFT", 1, fin, 2, ia);
    CHECK_MSG(r.st == OCC_OK, "%s", r.msg);
    if (!r.st)
        CHECK_MSG(max_abs(r.out, &z[0][0][0][0], 30) < 1e-5, "round trip err %g",
                  max_abs(r.out, &z[0][0][0][0], 30));
    free(r.out);

    /* refusals: the last axis, a last dim of 3 */
    occ_attr bad[1] = {A_INT("axis", 2)};
    run_op(&r, "DFT", 1, in, 1, bad);
    CHECK_MSG(r.st == OCC_ERR_INVALID && strstr(r.msg, "axis"), "%s", r.msg);
    free(r.out);
    float y3[6] = {0};
    tv in3[1] = {{OCC_DTYPE_FLOAT, 3, {1, 2, 3}, y3, 0}};
    run_op(&r, "DFT", 1, in3, 0, NULL);
    CHECK_MSG(r.st == OCC_ERR_SHAPE, "%s", r.msg);
    free(r.out);
}

static void test_stft(void)
{
    /* signal 1 everywhere, frames of 8 every 4 over 20 samples: 4 frames;
     * without a window bin 0 is 8, the rest 0; with a Hann-like window w bin 0
     * is sum(w). A cosine at bin 1 of the frame gives 8/2 at bin 1. */
    float sig[1][20], cosig[1][20], win[8];
    double wsum = 0;
    for (int j = 0; j < 20; j++) {
        sig[0][j] = 1;
        cosig[0][j] = (float)cos(2 * PI * j / 8);
    }
    for (int j = 0; j < 8; j++) {
        win[j] = (float)(0.5 - 0.5 * cos(2 * PI * j / 8));
        wsum += win[j];
    }
    res r;
    tv in[3] = {{OCC_DTYPE_FLOAT, 3, {1, 20, 1}, sig, 0}, {0}, {0}};
    occ_attr a[2] = {A_INTS("frame_step", (int64_t[]){4}, 1), A_INTS("frame_length", (int64_t[]){8}, 1)};
    run_op(&r, "STFT", 1, in, 2, a);
    CHECK_MSG(same_shape(&r, 4, (int64_t[]){1, 4, 5, 2}), "%s", r.msg);
    if (!r.st) {
        int ok = 1;
        for (int f = 0; f < 4; f++)
            for (int k = 0; k < 5; k++)
                ok &= fabsf(r.out[(f * 5 + k) * 2] - (k ? 0.0f : 8.0f)) < 1e-5f &&
                      fabsf(r.out[(f * 5 + k) * 2 + 1]) < 1e-5f;
        CHECK(ok);
    }
    free(r.out);

    tv cin[1] = {{OCC_DTYPE_FLOAT, 3, {1, 20, 1}, cosig, 0}};
    run_op(&r, "STFT", 1, cin, 2, a);
    if (!r.st) /* frame starts 0, 4, 8, 12: a phase of pi every frame */
        for (int f = 0; f < 4; f++)
            CHECK_MSG(fabsf(r.out[(f * 5 + 1) * 2] - (f % 2 ? -4.0f : 4.0f)) < 1e-5f &&
                          fabsf(r.out[(f * 5 + 2) * 2]) < 1e-5f,
                      "frame %d bin 1 %g", f, (double)r.out[(f * 5 + 1) * 2]);
    else
        CHECK_MSG(0, "%s", r.msg);
    free(r.out);

    /* with a window (a run-time input), frame_length from it */
    tv win_in[3] = {{OCC_DTYPE_FLOAT, 3, {1, 20, 1}, sig, 0}, {0}, {OCC_DTYPE_FLOAT, 1, {8}, win, 0}};
    occ_attr a1[1] = {A_INTS("frame_step", (int64_t[]){4}, 1)};
    run_op(&r, "STFT", 3, win_in, 1, a1);
    CHECK_MSG(same_shape(&r, 4, (int64_t[]){1, 4, 5, 2}), "%s", r.msg);
    if (!r.st)
        CHECK(fabs(r.out[0] - wsum) < 1e-5 && fabsf(r.out[4 * 5 * 2 - 2]) < 1e-5f);
    free(r.out);

    /* refusals: frame longer than the signal; window and frame_length disagree */
    occ_attr big[2] = {A_INTS("frame_step", (int64_t[]){4}, 1), A_INTS("frame_length", (int64_t[]){21}, 1)};
    run_op(&r, "STFT", 1, in, 2, big);
    CHECK_MSG(r.st == OCC_ERR_SHAPE && strstr(r.msg, "frame_length"), "%s", r.msg);
    free(r.out);
    occ_attr dis[2] = {A_INTS("frame_step", (int64_t[]){4}, 1), A_INTS("frame_length", (int64_t[]){6}, 1)};
    run_op(&r, "STFT", 3, win_in, 2, dis);
    CHECK_MSG(r.st == OCC_ERR_SHAPE && strstr(r.msg, "window"), "%s", r.msg);
    free(r.out);
}

static void test_melweight(void)
{
    /* num_mel_bins 8, dft_length 16, 8192 Hz, 0..4096 Hz: the ten filter
     * edges, mel-spaced by 2168.8/10 and mapped to floor(17 f / 8192), are
     * bins 0 0 0 1 1 2 3 4 5 6 (worked out by hand), so every filter is a
     * step of 1s: filter i is 1 at bins [edge(i+1) .. edge(i+2)) and at
     * edge(i+1) itself. */
    static const int edge[10] = {0, 0, 0, 1, 1, 2, 3, 4, 5, 6};
    float want[9][8] = {{0}};
    for (int i = 0; i < 8; i++) {
        int l = edge[i], c = edge[i + 1], h = edge[i + 2];
        if (c == l)
            want[c][i] = 1;
        else
            for (int j = l; j <= c; j++)
                want[j][i] = (float)(j - l) / (float)(c - l);
        for (int j = c; j < h; j++)
            want[j][i] = (float)(h - j) / (float)(h - c);
    }
    res r;
    occ_attr a[5] = {A_INTS("num_mel_bins", (int64_t[]){8}, 1), A_INTS("dft_length", (int64_t[]){16}, 1),
                     A_INTS("sample_rate", (int64_t[]){8192}, 1), A_FLOAT("lower_edge_hertz", 0),
                     A_FLOAT("upper_edge_hertz", 4096)};
    run_op(&r, "MelWeightMatrix", 0, NULL, 5, a);
    CHECK_MSG(same_shape(&r, 2, (int64_t[]){9, 8}), "%s", r.msg);
    if (!r.st)
        CHECK_MSG(!memcmp(r.out, want, sizeof want), "matrix differs");
    free(r.out);

    /* fractional slopes: 2 mels over 0..4000 Hz of a 64-point DFT at 8000 Hz;
     * every filter peaks at exactly 1 and stays in [0, 1] */
    occ_attr b[5] = {A_INTS("num_mel_bins", (int64_t[]){2}, 1), A_INTS("dft_length", (int64_t[]){64}, 1),
                     A_INTS("sample_rate", (int64_t[]){8000}, 1), A_FLOAT("lower_edge_hertz", 0),
                     A_FLOAT("upper_edge_hertz", 4000)};
    run_op(&r, "MelWeightMatrix", 0, NULL, 5, b);
    CHECK_MSG(same_shape(&r, 2, (int64_t[]){33, 2}), "%s", r.msg);
    if (!r.st)
        for (int i = 0; i < 2; i++) {
            float mx = 0;
            int in01 = 1;
            for (int j = 0; j < 33; j++) {
                float v = r.out[j * 2 + i];
                mx = v > mx ? v : mx;
                in01 &= v >= 0 && v <= 1;
            }
            CHECK(mx == 1.0f && in01);
        }
    free(r.out);

    /* an upper edge past the Nyquist bin: refused at create, not written out of bounds */
    occ_attr c[5] = {A_INTS("num_mel_bins", (int64_t[]){4}, 1), A_INTS("dft_length", (int64_t[]){16}, 1),
                     A_INTS("sample_rate", (int64_t[]){8000}, 1), A_FLOAT("lower_edge_hertz", 0),
                     A_FLOAT("upper_edge_hertz", 20000)};
    run_op(&r, "MelWeightMatrix", 0, NULL, 5, c);
    CHECK_MSG(r.st == OCC_ERR_INVALID && !r.at_run && strstr(r.msg, "outside"), "%s", r.msg);
    free(r.out);
}

static void test_maxunpool(void)
{
    /* 2x2 values at flat positions 5, 7, 13, 15 of the 4x4 unpooled plane */
    float x[4] = {1, 2, 3, 4};
    int64_t ix[4] = {5, 7, 13, 15};
    float want4[16] = {0}, want5[25] = {0};
    want4[5] = 1, want4[7] = 2, want4[13] = 3, want4[15] = 4;
    /* output_shape 5x5: the 4x4 plane in its top-left corner */
    want5[1 * 5 + 1] = 1, want5[1 * 5 + 3] = 2, want5[3 * 5 + 1] = 3, want5[3 * 5 + 3] = 4;
    res r;
    tv in[2] = {{OCC_DTYPE_FLOAT, 4, {1, 1, 2, 2}, x, 0}, {OCC_DTYPE_INT64, 4, {1, 1, 2, 2}, ix, 0}};
    occ_attr a[3] = {A_INTS("kernel_shape", (int64_t[]){2, 2}, 2), A_INTS("strides", (int64_t[]){2, 2}, 2),
                     A_INTS("output_shape", (int64_t[]){1, 1, 5, 5}, 4)};
    run_op(&r, "MaxUnpool", 2, in, 2, a);
    CHECK_MSG(same_shape(&r, 4, (int64_t[]){1, 1, 4, 4}), "%s", r.msg);
    if (!r.st)
        CHECK(!memcmp(r.out, want4, sizeof want4));
    free(r.out);
    run_op(&r, "MaxUnpool", 2, in, 3, a);
    CHECK_MSG(same_shape(&r, 4, (int64_t[]){1, 1, 5, 5}), "%s", r.msg);
    if (!r.st)
        CHECK(!memcmp(r.out, want5, sizeof want5));
    free(r.out);

    /* an index outside the unpooled plane: an error at run, nothing written */
    int64_t bad[4] = {5, 7, 13, 16};
    tv bin[2] = {{OCC_DTYPE_FLOAT, 4, {1, 1, 2, 2}, x, 0}, {OCC_DTYPE_INT64, 4, {1, 1, 2, 2}, bad, 0}};
    run_op(&r, "MaxUnpool", 2, bin, 3, a);
    CHECK_MSG(r.st == OCC_ERR_INVALID && r.at_run && strstr(r.msg, "outside"), "%s", r.msg);
    free(r.out);
    /* output_shape smaller than the unpooled shape */
    occ_attr sm[3] = {A_INTS("kernel_shape", (int64_t[]){2, 2}, 2), A_INTS("strides", (int64_t[]){2, 2}, 2),
                      A_INTS("output_shape", (int64_t[]){1, 1, 3, 3}, 4)};
    run_op(&r, "MaxUnpool", 2, in, 3, sm);
    CHECK_MSG(r.st == OCC_ERR_SHAPE && !r.at_run, "%s", r.msg);
    free(r.out);
}

static void test_roialign(void)
{
    /* X(y, x) = x on a 6x6 plane (channel 1: 10 y): bilinear interpolation
     * of a linear function is exact, so each bin's average is the function
     * at the bin's centre. roi (1, 1)-(5, 3) half_pixel: start x = 0.5,
     * width 4 in 2 bins -> centres x = 1.5, 3.5; y from 0.5, height 2 in 2
     * bins -> centres 1, 2 (sampling_ratio 2 keeps every sample inside). */
    float x[2][6][6];
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 6; j++) {
            x[0][i][j] = (float)j;
            x[1][i][j] = 10.0f * (float)i;
        }
    float rois[2][4] = {{1, 1, 5, 3}, {1, 1, 5, 3}};
    int64_t bi[2] = {0, 0};
    res r;
    tv in[3] = {{OCC_DTYPE_FLOAT, 4, {1, 2, 6, 6}, x, 0}, {OCC_DTYPE_FLOAT, 2, {2, 4}, rois, 0},
                {OCC_DTYPE_INT64, 1, {2}, bi, 0}};
    occ_attr a[3] = {A_INT("output_height", 2), A_INT("output_width", 2), A_INT("sampling_ratio", 2)};
    run_op(&r, "RoiAlign", 3, in, 3, a);
    CHECK_MSG(same_shape(&r, 4, (int64_t[]){2, 2, 2, 2}), "%s", r.msg);
    if (!r.st) {
        float want[2][2][2] = {{{1.5f, 3.5f}, {1.5f, 3.5f}}, {{10.0f, 10.0f}, {20.0f, 20.0f}}};
        CHECK_MSG(max_abs(r.out, &want[0][0][0], 8) < 1e-5, "roi 0 err %g", max_abs(r.out, &want[0][0][0], 8));
        CHECK(max_abs(r.out + 8, &want[0][0][0], 8) < 1e-5);
    }
    free(r.out);
    /* output_half_pixel: no shift, bin centres x = 2, 4 and y = 1.5, 2.5 */
    occ_attr o[4] = {A_INT("output_height", 2), A_INT("output_width", 2), A_INT("sampling_ratio", 2),
                     A_STR("coordinate_transformation_mode", "output_half_pixel")};
    run_op(&r, "RoiAlign", 3, in, 4, o);
    if (!r.st) {
        float want[2][2][2] = {{{2, 4}, {2, 4}}, {{15, 15}, {25, 25}}};
        CHECK_MSG(max_abs(r.out, &want[0][0][0], 8) < 1e-5, "err %g", max_abs(r.out, &want[0][0][0], 8));
    } else {
        CHECK_MSG(0, "%s", r.msg);
    }
    free(r.out);
    /* max mode: the largest weighted corner of a sample; at integer sample
     * points (roi 0..4 in 2x2 bins, 1 sample each, no shift) it is the value */
    float r2[1][4] = {{0, 0, 4, 4}};
    int64_t b1[1] = {0};
    tv in2[3] = {{OCC_DTYPE_FLOAT, 4, {1, 2, 6, 6}, x, 0}, {OCC_DTYPE_FLOAT, 2, {1, 4}, r2, 0},
                 {OCC_DTYPE_INT64, 1, {1}, b1, 0}};
    occ_attr mx[5] = {A_INT("output_height", 2), A_INT("output_width", 2), A_INT("sampling_ratio", 1),
                      A_STR("coordinate_transformation_mode", "output_half_pixel"), A_STR("mode", "max")};
    run_op(&r, "RoiAlign", 3, in2, 5, mx);
    if (!r.st) {
        float want[2][2][2] = {{{1, 3}, {1, 3}}, {{10, 10}, {30, 30}}};
        CHECK_MSG(max_abs(r.out, &want[0][0][0], 8) < 1e-5, "max err %g", max_abs(r.out, &want[0][0][0], 8));
    } else {
        CHECK_MSG(0, "%s", r.msg);
    }
    free(r.out);
    /* a batch index outside X: an error at run */
    int64_t bad[2] = {0, 1};
    tv inb[3] = {{OCC_DTYPE_FLOAT, 4, {1, 2, 6, 6}, x, 0}, {OCC_DTYPE_FLOAT, 2, {2, 4}, rois, 0},
                 {OCC_DTYPE_INT64, 1, {2}, bad, 0}};
    run_op(&r, "RoiAlign", 3, inb, 3, a);
    CHECK_MSG(r.st == OCC_ERR_INVALID && r.at_run && strstr(r.msg, "batch_indices[1]"), "%s", r.msg);
    free(r.out);
}

int main(void)
{
    RUN(test_dft);
    RUN(test_stft);
    RUN(test_melweight);
    RUN(test_maxunpool);
    RUN(test_roialign);
    TEST_DONE();
}
