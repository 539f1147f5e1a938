/* occ_pack_onnx end to end on a model built here: the pack reads back with the
 * host reader and the trusted manifest decoder, weights land at their
 * offsets, page-aligned, and chunks cover them. Also the file-level errors. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "occ/pack.h"
#include "occ/packer.h"
#include "test.h"
#include "test_pack_onnx.h"

static char tmpdir[256];

static void write_file(const char *path, const void *buf, size_t size)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f)
        return;
    CHECK(fwrite(buf, 1, size, f) == size);
    fclose(f);
}

static void build_model(tb *b, float *w1, float *w2)
{
    tb_init(b, 13);
    int64_t xd[] = {1, 3, 16, 16}, wd[] = {64, 3, 3, 3}, bd[] = {64}, fd[] = {10, 64};
    for (int k = 0; k < 64 * 27; k++)
        w1[k] = (float)k * 0.001f;
    for (int k = 0; k < 640; k++)
        w2[k] = (float)(k % 17) - 8.0f;
    float bias[64], fb[10];
    for (int k = 0; k < 64; k++)
        bias[k] = (float)k;
    for (int k = 0; k < 10; k++)
        fb[k] = -(float)k;
    tb_input(b, "image", 4, xd);
    tb_init_f(b, "conv.w", 4, wd, w1);
    tb_init_f(b, "conv.b", 1, bd, bias);
    tb_init_f(b, "fc.w", 2, fd, w2);
    tb_init_f(b, "fc.b", 1, (int64_t[]){10}, fb);
    Onnx__NodeProto *c = tb_node(b, "Conv", "conv", (const char *[]){"image", "conv.w", "conv.b", NULL},
                                 (const char *[]){"c", NULL});
    tb_attr_ints(b, c, "kernel_shape", 2, (int64_t[]){3, 3});
    tb_node(b, "Relu", "relu", (const char *[]){"c", NULL}, (const char *[]){"r", NULL});
    tb_node(b, "GlobalAveragePool", "gap", (const char *[]){"r", NULL}, (const char *[]){"g", NULL});
    tb_node(b, "Flatten", "flat", (const char *[]){"g", NULL}, (const char *[]){"f", NULL});
    Onnx__NodeProto *gm = tb_node(b, "Gemm", "fc", (const char *[]){"f", "fc.w", "fc.b", NULL},
                                  (const char *[]){"logits", NULL});
    tb_attr_i(b, gm, "transB", 1);
    tb_output(b, "logits");
}

static uint64_t progress_last, progress_calls;
static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
    (void)ctx;
    CHECK(done <= total);
    CHECK(done >= progress_last);
    progress_last = done;
    progress_calls++;
}

static void test_roundtrip(void)
{
    static float w1[64 * 27], w2[640];
    tb b;
    build_model(&b, w1, w2);
    uint8_t *buf;
    size_t size;
    tb_pack(&b, &buf, &size);
    char in[300], out[300];
    snprintf(in, sizeof in, "%s/m.onnx", tmpdir);
    snprintf(out, sizeof out, "%s/m.occ", tmpdir);
    write_file(in, buf, size);
    free(buf);

    occ_pack_options o = {0};
    o.name = "roundtrip";
    o.chunk_size = 4096; /* conv.w is 6912 bytes: two chunks */
    o.progress = on_progress;
    occ_pack_stats st;
    occ_error e = {0};
    occ_status s = occ_pack_onnx(in, out, &o, &st, &e);
    CHECK_MSG(s == OCC_OK, "%s", e.msg);
    if (s) {
        tb_free(&b);
        return;
    }
    CHECK(st.nodes == 5 && st.onnx_nodes == 5);
    CHECK(st.n_weights == 4);
    CHECK(st.weight_size == 4u * (64 * 27 + 64 + 640 + 10));
    CHECK(st.file_size > st.data_size);
    CHECK(progress_calls > 0);

    occ_packfile *p = NULL;
    s = occ_packfile_open(out, &p, &e);
    CHECK_MSG(s == OCC_OK, "%s", e.msg);
    occ_model *m = NULL;
    if (!s) {
        size_t msize = 0;
        const uint8_t *man = occ_packfile_manifest(p, &msize);
        s = occ_manifest_decode(man, msize, &m, &e);
        CHECK_MSG(s == OCC_OK, "%s", e.msg);
    }
    if (m) {
        CHECK(!memcmp(m->model_id, st.model_id, 32));
        CHECK(!strcmp(m->name, "roundtrip"));
        CHECK(m->n_nodes == 5 && !strcmp(m->nodes[0].op, "Conv") && !strcmp(m->nodes[4].op, "Gemm"));
        CHECK(m->n_inputs == 1 && !strcmp(m->tensors[m->inputs[0]].name, "image"));
        CHECK(m->n_outputs == 1 && !strcmp(m->tensors[m->outputs[0]].name, "logits"));
        const occ_tensor *lo = &m->tensors[m->outputs[0]];
        CHECK(lo->ndim == 2 && lo->dims[0] == 1 && lo->dims[1] == 10);
        CHECK(m->n_chunks >= 3);
        for (uint32_t k = 0; k < m->n_tensors; k++) {
            const occ_tensor *t = &m->tensors[k];
            if (t->kind != OCC_TENSOR_WEIGHT)
                continue;
            const float *want = NULL;
            if (!strcmp(t->name, "conv.w"))
                want = w1;
            else if (!strcmp(t->name, "fc.w"))
                want = w2;
            if (!want)
                continue;
            CHECK(t->data_offset % OCC_PAGE_SIZE == 0);
            float *got = malloc(t->size);
            CHECK(occ_packfile_read(p, t->data_offset, got, t->size, &e) == OCC_OK);
            CHECK(!memcmp(got, want, t->size));
            free(got);
        }
        occ_model_free(m);
    }
    occ_packfile_close(p);

    /* same input, same pack: the model id is deterministic */
    o.progress = NULL;
    occ_pack_stats st2;
    s = occ_pack_onnx(in, out, &o, &st2, &e);
    CHECK(s == OCC_OK && !memcmp(st.model_id, st2.model_id, 32));
    o.name = "other";
    s = occ_pack_onnx(in, out, &o, &st2, &e);
    CHECK(s == OCC_OK && memcmp(st.model_id, st2.model_id, 32) != 0);
    unlink(in);
    unlink(out);
    tb_free(&b);
}

static void test_file_errors(void)
{
    occ_error e = {0};
    char in[300], out[300];
    snprintf(in, sizeof in, "%s/none.onnx", tmpdir);
    snprintf(out, sizeof out, "%s/none.occ", tmpdir);
    CHECK(occ_pack_onnx(in, out, NULL, NULL, &e) == OCC_ERR_IO);
    CHECK(strstr(e.msg, "none.onnx") != NULL);
    write_file(in, "", 0);
    CHECK(occ_pack_onnx(in, out, NULL, NULL, &e) == OCC_ERR_FORMAT);
    write_file(in, "\x08\x07garbage\xff\xff\xff", 12);
    CHECK(occ_pack_onnx(in, out, NULL, NULL, &e) == OCC_ERR_FORMAT);
    CHECK(access(out, F_OK) != 0);
    CHECK(occ_pack_onnx(tmpdir, out, NULL, NULL, &e) == OCC_ERR_IO);
    unlink(in);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/occ-test-pack-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_roundtrip);
    RUN(test_file_errors);
    rmdir(tmpdir);
    TEST_DONE();
}
