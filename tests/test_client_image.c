/* Image preprocessing and top-k. Images are written by the test with
 * stb_image_write, so the expected tensor is known exactly. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <stb/stb_image_write.h>

#include "occ/client.h"
#include "test.h"

static void test_topk(void)
{
    float v[6] = {0.1f, 3.0f, -1.0f, 3.0f, 2.0f, 0.0f};
    size_t idx[6];
    CHECK(occ_topk(v, 6, 3, idx) == 3);
    CHECK(idx[0] == 1 && idx[1] == 3 && idx[2] == 4);
    CHECK(occ_topk(v, 6, 10, idx) == 6);
    CHECK(idx[5] == 2);
    CHECK(occ_topk(v, 6, 1, idx) == 1 && idx[0] == 1);
}

static void test_png_rgb_bgr_gray(void)
{
    unsigned char px[2 * 2 * 3] = {10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120};
    char path[] = "/tmp/occ-img-XXXXXX.png";
    int fd = mkstemps(path, 4);
    close(fd);
    CHECK(stbi_write_png(path, 2, 2, 3, px, 6) != 0);
    occ_error e = {0};
    occ_preproc pre = {.present = 1, .height = 2, .width = 2, .channels = 3, .channel_order = "RGB",
                       .scale = 1.0f, .mean = {0, 0, 0}, .std = {1, 1, 1}};
    float out[12];
    CHECK_MSG(occ_image_preprocess(path, &pre, out, 12, &e) == OCC_OK, "%s", e.msg);
    /* NCHW: plane R = 10,40,70,100 */
    CHECK(out[0] == 10 && out[1] == 40 && out[3] == 100 && out[4] == 20 && out[8] == 30);
    memcpy(pre.channel_order, "BGR", 4);
    pre.mean[0] = 30;
    pre.std[0] = 2;
    CHECK(occ_image_preprocess(path, &pre, out, 12, &e) == OCC_OK);
    CHECK(out[0] == 0 && out[1] == 15 && out[8] == 10);
    CHECK(occ_image_preprocess(path, &pre, out, 11, &e) == OCC_ERR_SHAPE);

    occ_preproc gray = {.present = 1, .height = 4, .width = 4, .channels = 1, .channel_order = "L",
                        .scale = 1.0f / 255, .mean = {0}, .std = {1}};
    float g[16];
    CHECK(occ_image_preprocess(path, &gray, g, 16, &e) == OCC_OK); /* resized 2x2 -> 4x4 */
    int in_range = 1;
    for (int i = 0; i < 16; i++)
        in_range &= g[i] >= 0.0f && g[i] <= 1.0f;
    CHECK(in_range);
    remove(path);
}

typedef struct {
    unsigned char buf[4096];
    int len;
} membuf;

static void to_mem(void *ctx, void *data, int size)
{
    membuf *m = ctx;
    if (m->len + size <= (int)sizeof m->buf) {
        memcpy(m->buf + m->len, data, (size_t)size);
        m->len += size;
    }
}

static void test_bad_images(void)
{
    occ_error e = {0};
    occ_preproc pre = {.present = 1, .height = 2, .width = 2, .channels = 3, .channel_order = "RGB",
                       .scale = 1.0f, .mean = {0, 0, 0}, .std = {1, 1, 1}};
    float out[12];
    unsigned char junk[64];
    for (int i = 0; i < 64; i++)
        junk[i] = (unsigned char)(i * 37);
    CHECK(occ_image_preprocess_mem(junk, sizeof junk, &pre, out, 12, &e) == OCC_ERR_FORMAT);
    CHECK(occ_image_preprocess_mem(junk, 0, &pre, out, 12, &e) == OCC_ERR_FORMAT);
    CHECK(occ_image_preprocess("/nonexistent.png", &pre, out, 12, &e) == OCC_ERR_IO);
    occ_preproc none = {0};
    CHECK(occ_image_preprocess_mem(junk, sizeof junk, &none, out, 12, &e) == OCC_ERR_INVALID);

    /* A valid PNG cut short at every length: an error, never a crash. */
    unsigned char px[8 * 8 * 3] = {0};
    static membuf mb;
    CHECK(stbi_write_png_to_func(to_mem, &mb, 8, 8, 3, px, 24) != 0);
    unsigned char *png = mb.buf;
    int len = mb.len;
    CHECK(len > 0);
    int all_failed = 1;
    for (int n = 0; png && n < len - 12; n++) /* the IEND chunk is optional to stb */
        all_failed &= occ_image_preprocess_mem(png, (size_t)n, &pre, out, 12, &e) != OCC_OK;
    CHECK(all_failed);
    CHECK(png && occ_image_preprocess_mem(png, (size_t)len, &pre, out, 12, &e) == OCC_OK);
}

int main(void)
{
    RUN(test_topk);
    RUN(test_png_rgb_bgr_gray);
    RUN(test_bad_images);
    TEST_DONE();
}
