/* Manifest encode/decode, pack layout/write/read: round trips, every
 * truncation, bit flips and hostile fields. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "occ/crypto.h"
#include "occ/model.h"
#include "occ/pack.h"
#include "test.h"

/* A small graph: x[1,2,4,4] -> Conv(W[3,2,3,3], B[3]) -> Relu -> y. */
typedef struct {
    occ_model m;
    occ_tensor t[5];
    occ_node n[2];
    int32_t conv_in[3], conv_out[1], relu_in[1], relu_out[1], gin[1], gout[1];
    occ_attr conv_attrs[2];
    int64_t pads[4], kshape[2];
    const char *labels[3];
} small_model;

static void tensor(occ_tensor *t, const char *name, uint32_t kind, int ndim, const int64_t *dims)
{
    memset(t, 0, sizeof *t);
    t->name = name;
    t->kind = kind;
    t->ndim = ndim;
    int64_t c = 1;
    for (int i = 0; i < ndim; i++) {
        t->dims[i] = dims[i];
        c *= dims[i];
    }
    t->size = (uint64_t)c * 4;
}

static void build_small(small_model *s)
{
    memset(s, 0, sizeof *s);
    tensor(&s->t[0], "x", OCC_TENSOR_INPUT, 4, (int64_t[]){1, 2, 4, 4});
    tensor(&s->t[1], "W", OCC_TENSOR_WEIGHT, 4, (int64_t[]){3, 2, 3, 3});
    tensor(&s->t[2], "B", OCC_TENSOR_WEIGHT, 1, (int64_t[]){3});
    tensor(&s->t[3], "c", OCC_TENSOR_ACT, 4, (int64_t[]){1, 3, 4, 4});
    tensor(&s->t[4], "y", OCC_TENSOR_ACT, 4, (int64_t[]){1, 3, 4, 4});
    s->conv_in[0] = 0, s->conv_in[1] = 1, s->conv_in[2] = 2;
    s->conv_out[0] = 3;
    s->relu_in[0] = 3;
    s->relu_out[0] = 4;
    for (int i = 0; i < 4; i++)
        s->pads[i] = 1;
    s->kshape[0] = s->kshape[1] = 3;
    s->conv_attrs[0] = (occ_attr){.name = "pads", .type = OCC_ATTR_INTS, .count = 4, .ints = s->pads};
    s->conv_attrs[1] = (occ_attr){.name = "kernel_shape", .type = OCC_ATTR_INTS, .count = 2, .ints = s->kshape};
    s->n[0] = (occ_node){.name = "conv1", .op = "Conv", .n_inputs = 3, .n_outputs = 1, .inputs = s->conv_in,
                         .outputs = s->conv_out, .n_attrs = 2, .attrs = s->conv_attrs};
    s->n[1] = (occ_node){.name = "relu1", .op = "Relu", .n_inputs = 1, .n_outputs = 1, .inputs = s->relu_in,
                         .outputs = s->relu_out};
    s->gin[0] = 0;
    s->gout[0] = 4;
    s->labels[0] = "cat", s->labels[1] = "dog", s->labels[2] = "emu";
    s->m.name = "small";
    s->m.n_tensors = 5;
    s->m.tensors = s->t;
    s->m.n_nodes = 2;
    s->m.nodes = s->n;
    s->m.n_inputs = 1;
    s->m.inputs = s->gin;
    s->m.n_outputs = 1;
    s->m.outputs = s->gout;
    s->m.n_labels = 3;
    s->m.labels = s->labels;
    s->m.pre = (occ_preproc){.present = 1, .height = 4, .width = 4, .channels = 3, .channel_order = "RGB",
                             .scale = 1.0f / 255, .mean = {0.5f, 0.5f, 0.5f}, .std = {0.25f, 0.25f, 0.25f}};
}

static uint8_t *fill_data(const occ_model *m)
{
    uint8_t *data = calloc(1, m->data_size ? m->data_size : 1);
    for (uint32_t i = 0; i < m->n_tensors; i++) {
        const occ_tensor *t = &m->tensors[i];
        if (t->kind != OCC_TENSOR_WEIGHT)
            continue;
        float *f = (float *)(data + t->data_offset);
        for (uint64_t k = 0; k < t->size / 4; k++)
            f[k] = (float)(i * 100 + k) * 0.01f;
    }
    return data;
}

static void test_layout_and_roundtrip(void)
{
    small_model s;
    build_small(&s);
    occ_error e = {0};
    CHECK(occ_pack_layout(&s.m, 64 * 1024, &e) == OCC_OK);
    CHECK(s.t[1].data_offset == 0);
    CHECK(s.t[2].data_offset % 64 == 0 && s.t[2].data_offset >= s.t[1].size);
    CHECK(s.m.n_chunks == 1);
    CHECK(s.m.data_size % OCC_PAGE_SIZE == 0);

    uint8_t *buf = NULL;
    size_t size = 0;
    CHECK(occ_manifest_encode(&s.m, &buf, &size, &e) == OCC_OK);
    occ_model *d = NULL;
    CHECK_MSG(occ_manifest_decode(buf, size, &d, &e) == OCC_OK, "%s", e.msg);
    if (d) {
        CHECK(!strcmp(d->name, "small"));
        CHECK(d->n_tensors == 5 && d->n_nodes == 2);
        CHECK(!strcmp(d->nodes[0].op, "Conv") && !strcmp(d->nodes[0].name, "conv1"));
        const occ_attr *p = occ_node_attr(&d->nodes[0], "pads");
        CHECK(p && p->type == OCC_ATTR_INTS && p->count == 4 && p->ints[3] == 1);
        CHECK(occ_node_attr(&d->nodes[0], "strides") == NULL);
        CHECK(d->tensors[1].dims[0] == 3 && d->tensors[1].size == 3 * 2 * 3 * 3 * 4);
        CHECK(d->n_labels == 3 && !strcmp(d->labels[2], "emu"));
        CHECK(d->pre.present && d->pre.channels == 3 && !strcmp(d->pre.channel_order, "RGB"));
        uint8_t id[32];
        CHECK(occ_sha256(buf, size, id) == OCC_OK && !memcmp(id, d->model_id, 32));
        /* Re-encoding the decoded model gives the same bytes. */
        uint8_t *buf2 = NULL;
        size_t size2 = 0;
        CHECK(occ_manifest_encode(d, &buf2, &size2, &e) == OCC_OK);
        CHECK(size2 == size && buf2 && !memcmp(buf, buf2, size));
        free(buf2);
        occ_model_free(d);
    }

    /* Every strict prefix fails cleanly. */
    int all_failed = 1;
    for (size_t n = 0; n < size; n++) {
        occ_model *t = NULL;
        uint8_t *copy = malloc(n ? n : 1);
        memcpy(copy, buf, n);
        if (occ_manifest_decode(copy, n, &t, &e) == OCC_OK) {
            all_failed = 0;
            occ_model_free(t);
        }
        free(copy);
    }
    CHECK(all_failed);

    /* Every single-byte flip either fails cleanly or decodes to something
     * with a different model id; never crashes (ASan watches). */
    int same_id = 0;
    for (size_t i = 0; i < size; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            buf[i] ^= (uint8_t)(1u << bit);
            occ_model *t = NULL;
            if (occ_manifest_decode(buf, size, &t, &e) == OCC_OK) {
                uint8_t id[32];
                buf[i] ^= (uint8_t)(1u << bit);
                CHECK(occ_sha256(buf, size, id) == OCC_OK);
                if (!memcmp(id, t->model_id, 32))
                    same_id++;
                buf[i] ^= (uint8_t)(1u << bit);
                occ_model_free(t);
            }
            buf[i] ^= (uint8_t)(1u << bit);
        }
    }
    CHECK(same_id == 0);
    free(buf);
    free(s.m.chunks);
}

static occ_status decode_of(small_model *s, occ_error *e)
{
    uint8_t *buf = NULL;
    size_t size = 0;
    occ_status st = occ_manifest_encode(&s->m, &buf, &size, e);
    if (st)
        return st;
    occ_model *d = NULL;
    st = occ_manifest_decode(buf, size, &d, e);
    occ_model_free(d);
    free(buf);
    return st;
}

static void test_hostile_fields(void)
{
    occ_error e = {0};
    small_model s;

    build_small(&s);
    CHECK(occ_pack_layout(&s.m, 1 << 20, &e) == OCC_OK);
    CHECK(decode_of(&s, &e) == OCC_OK);

    s.conv_in[1] = 99; /* index out of range */
    CHECK(decode_of(&s, &e) == OCC_ERR_FORMAT);
    s.conv_in[1] = 1;

    s.relu_out[0] = 3; /* produced twice */
    CHECK(decode_of(&s, &e) == OCC_ERR_FORMAT);
    s.relu_out[0] = 4;

    s.relu_in[0] = 4; /* reads before produced (own output) */
    CHECK(decode_of(&s, &e) == OCC_ERR_FORMAT);
    s.relu_in[0] = 3;

    s.t[3].dims[1] = -3; /* negative dim */
    s.t[3].size = (uint64_t)(-3 * 16 * 4);
    CHECK(decode_of(&s, &e) == OCC_ERR_SHAPE);
    s.t[3].dims[1] = 3;
    s.t[3].size = 3 * 16 * 4;

    s.t[3].dims[2] = 1ll << 39; /* absurd size */
    s.t[3].dims[3] = 1ll << 39;
    CHECK(decode_of(&s, &e) == OCC_ERR_SHAPE);
    s.t[3].dims[2] = s.t[3].dims[3] = 4;

    s.t[2].data_offset = s.m.data_size; /* weight outside the data */
    CHECK(decode_of(&s, &e) == OCC_ERR_FORMAT);
    s.t[2].data_offset = 1024;

    s.m.chunks[0].size = 8; /* weight not covered by chunks */
    CHECK(decode_of(&s, &e) == OCC_ERR_FORMAT);

    free(s.m.chunks);
}

static void test_chunking_rows(void)
{
    /* A [64, 1000] Gemm weight (4000-byte rows) with 16 KiB chunks: cuts at
     * 4 rows (16000 bytes), so every chunk holds whole rows. */
    occ_tensor t[3];
    tensor(&t[0], "x", OCC_TENSOR_INPUT, 2, (int64_t[]){1, 1000});
    tensor(&t[1], "W", OCC_TENSOR_WEIGHT, 2, (int64_t[]){64, 1000});
    tensor(&t[2], "y", OCC_TENSOR_ACT, 2, (int64_t[]){1, 64});
    int32_t in[2] = {0, 1}, out[1] = {2};
    occ_node n = {.name = "fc", .op = "MatMul", .n_inputs = 2, .n_outputs = 1, .inputs = in, .outputs = out};
    occ_model m = {.n_tensors = 3, .tensors = t, .n_nodes = 1, .nodes = &n};
    occ_error e = {0};
    CHECK(occ_pack_layout(&m, 16 * 1024, &e) == OCC_OK);
    CHECK(m.n_chunks == 16);
    for (uint32_t i = 0; i < m.n_chunks; i++)
        CHECK(m.chunks[i].size == 16000 && m.chunks[i].offset == i * 16000ull);
    free(m.chunks);
    CHECK(occ_pack_layout(&m, 100, &e) == OCC_ERR_INVALID);
}

static void test_pack_file(void)
{
    small_model s;
    build_small(&s);
    occ_error e = {0};
    CHECK(occ_pack_layout(&s.m, 1 << 20, &e) == OCC_OK);
    uint8_t *data = fill_data(&s.m);
    char path[] = "/tmp/occ-test-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    CHECK_MSG(occ_pack_write(path, &s.m, data, NULL, NULL, &e) == OCC_OK, "%s", e.msg);

    occ_packfile *p = NULL;
    CHECK_MSG(occ_packfile_open(path, &p, &e) == OCC_OK, "%s", e.msg);
    if (p) {
        size_t msize;
        const uint8_t *man = occ_packfile_manifest(p, &msize);
        occ_model *d = NULL;
        CHECK(occ_manifest_decode(man, msize, &d, &e) == OCC_OK);
        CHECK(d && !memcmp(d->model_id, s.m.model_id, 32));
        if (d) {
            CHECK(d->data_size == occ_packfile_data_size(p));
            uint8_t *chunk = malloc(d->chunks[0].size);
            CHECK(occ_packfile_read(p, d->chunks[0].offset, chunk, d->chunks[0].size, &e) == OCC_OK);
            uint8_t h[32];
            CHECK(occ_sha256(chunk, d->chunks[0].size, h) == OCC_OK && !memcmp(h, d->chunks[0].sha256, 32));
            CHECK(!memcmp(chunk, data + d->chunks[0].offset, d->chunks[0].size));
            free(chunk);
            uint8_t b;
            CHECK(occ_packfile_read(p, d->data_size, &b, 1, &e) == OCC_ERR_FORMAT);
            occ_model_free(d);
        }
        occ_packfile_close(p);
    }

    /* Truncated file: refused at open or at read, never a crash. */
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long full = ftell(f);
    fclose(f);
    CHECK(truncate(path, full - 100) == 0);
    CHECK(occ_packfile_open(path, &p, &e) == OCC_ERR_FORMAT);
    CHECK(truncate(path, 10) == 0);
    CHECK(occ_packfile_open(path, &p, &e) == OCC_ERR_FORMAT);
    CHECK(occ_packfile_open("/nonexistent/x.occ", &p, &e) == OCC_ERR_IO);
    CHECK(strstr(e.msg, "/nonexistent/x.occ") != NULL);
    remove(path);
    free(data);
    free(s.m.chunks);
}

/* Encodes s, overwrites the u32 at byte `at` with v, decodes. */
static occ_status decode_patched(small_model *s, size_t at, uint32_t v, occ_error *e)
{
    uint8_t *buf = NULL;
    size_t size = 0;
    occ_status st = occ_manifest_encode(&s->m, &buf, &size, e);
    if (st)
        return st;
    for (int i = 0; i < 4; i++)
        buf[at + (size_t)i] = (uint8_t)(v >> (8 * i));
    occ_model *d = NULL;
    st = occ_manifest_decode(buf, size, &d, e);
    occ_model_free(d);
    free(buf);
    return st;
}

static void test_dtypes(void)
{
    occ_error e = {0};
    small_model s;
    build_small(&s);
    /* a typed weight (int64) and an int32 input survive the round trip */
    s.t[2].dtype = OCC_DTYPE_INT64;
    s.t[2].size = 3 * 8;
    s.t[0].dtype = OCC_DTYPE_INT32; /* (the graph is not checked by ops here) */
    CHECK(occ_pack_layout(&s.m, 1 << 20, &e) == OCC_OK);
    uint8_t *buf = NULL;
    size_t size = 0;
    CHECK(occ_manifest_encode(&s.m, &buf, &size, &e) == OCC_OK);
    occ_model *d = NULL;
    CHECK_MSG(occ_manifest_decode(buf, size, &d, &e) == OCC_OK, "%s", e.msg);
    if (d) {
        CHECK(d->tensors[2].dtype == OCC_DTYPE_INT64 && d->tensors[2].size == 24);
        CHECK(d->tensors[0].dtype == OCC_DTYPE_INT32);
        CHECK(d->tensors[1].dtype == OCC_DTYPE_FLOAT); /* 0 in memory is stored as float32 */
    }
    occ_model_free(d);
    free(buf);

    /* the first tensor's dtype sits after magic, version, name "small",
     * n_tensors, and its name "x" and kind: 8 + 4 + (4 + 5) + 4 + (4 + 1) + 4 */
    const size_t at = 34;
    CHECK(decode_patched(&s, at, OCC_DTYPE_INT32, &e) == OCC_OK);
    /* 8 string, 14/15 complex, 17+ (float8...): no element type here */
    static const uint32_t hostile[] = {0, 8, 14, 15, 17, 255, 0x80000001u, 0xffffffffu};
    for (size_t i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
        CHECK_MSG(decode_patched(&s, at, hostile[i], &e) == OCC_ERR_FORMAT, "dtype %u accepted",
                  hostile[i]);
        CHECK_MSG(strstr(e.msg, "unknown dtype") && strstr(e.msg, "'x'"), "%s", e.msg);
    }
    /* a version-1 manifest (no dtypes) is refused, not misread */
    CHECK(decode_patched(&s, 8, 1, &e) == OCC_ERR_UNSUPPORTED);
    CHECK(strstr(e.msg, "version 1") != NULL);
    /* the size must follow the dtype */
    s.t[2].size = 3 * 4;
    CHECK(decode_of(&s, &e) == OCC_ERR_FORMAT);
    CHECK_MSG(strstr(e.msg, "shape and type need 24") != NULL, "%s", e.msg);
    s.t[2].size = 3 * 8;
    /* an int64 weight at an offset that is not a multiple of 8 */
    s.t[2].data_offset += 4;
    CHECK(decode_of(&s, &e) == OCC_ERR_FORMAT);
    CHECK_MSG(strstr(e.msg, "misaligned") != NULL, "%s", e.msg);
    s.t[2].data_offset -= 4;
    /* the encoder refuses what the decoder would */
    s.t[3].dtype = 14;
    CHECK(occ_manifest_encode(&s.m, &buf, &size, &e) == OCC_ERR_INVALID);
    free(s.m.chunks);

    CHECK(occ_dtype_size(OCC_DTYPE_INT64) == 8 && occ_dtype_size(OCC_DTYPE_BOOL) == 1 &&
          occ_dtype_size(OCC_DTYPE_INT32) == 4 && occ_dtype_size(7u + 100u) == 0);
    CHECK(!strcmp(occ_dtype_name(OCC_DTYPE_FLOAT), "float32") && occ_dtype_name(8) == NULL);
    CHECK(!strcmp(occ_dtype_name(11), "float64") && occ_dtype_size(OCC_DTYPE_UINT64) == 8);
    CHECK(!strcmp(occ_dtype_name(OCC_DTYPE_FLOAT16), "float16") && occ_dtype_size(OCC_DTYPE_FLOAT16) == 2);
    CHECK(occ_dtype_from_name("uint8") == OCC_DTYPE_UINT8 && occ_dtype_from_name("fp32") == 0);
}

int main(void)
{
    RUN(test_dtypes);
    RUN(test_layout_and_roundtrip);
    RUN(test_hostile_fields);
    RUN(test_chunking_rows);
    RUN(test_pack_file);
    TEST_DONE();
}
