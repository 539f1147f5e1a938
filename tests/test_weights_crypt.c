/* Encrypted packs (docs/pack-format.md "Encrypted packs", docs/streaming.md):
 *
 *  - the manifest's version-3 fields round-trip, plain manifests stay
 *    version 2 byte for byte, hostile encryption blocks are refused;
 *  - the bundled model packed plain holds its weights' 16-byte windows, packed
 *    encrypted none of them; both give the same outputs (native and
 *    occlumency); a missing, wrong or superfluous key is refused before a
 *    single chunk is read;
 *  - a flipped ciphertext byte, two swapped chunks (table entries swapped too),
 *    a chunk re-hashed after tampering (only the GCM tag can tell) and a chunk
 *    taken from another pack under the same key are all refused;
 *  - the stash of a streaming engine holds no 16-byte window of the weights or
 *    of the plain engine's kernel-ready segments (a plain engine's stash does
 *    hold the weights), a flipped stash byte fails the inference, and bytes
 *    decrypted per run are what the plan streams;
 *  - in the emulated enclave, the boundary recorder sees every byte that
 *    crosses while engines of all three modes are created and run: with an
 *    encrypted pack no 16-byte window of the weights or of the kernel-ready
 *    segments crosses, nor lies in the EPC's backing store (with a plain
 *    pack the weights do cross: the scan is not vacuous). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "occ/boundary_emu.h"
#include "occ/epc.h"
#include "occ/pack.h"
#include "occ/packer.h"
#include "occ/weights_crypt.h"
#include "test_ops_util.h"

#include "fixture_stream_cnn.h"

#define BUDGET (UINT64_C(3) << 20)

static const uint8_t KEY[32] = {0x6b, 0x65, 0x79, 0x21, 1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12,
                                13,   14,   15,   16,   17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28};
static const uint8_t KEY2[32] = {0x6b, 0x65, 0x79, 0x21, 1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12,
                                 13,   14,   15,   16,   17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 29};

/* ---- 16-byte windows of some plaintext, searched at every offset ----
 * Every 16-byte window [i, i+16) of the plaintext contains an 8-aligned
 * 8-byte block [a, a+8) (a - 8 <= i <= a). So the plaintext's aligned
 * blocks are indexed (a bitmap prefilter that stays in cache, then a hash
 * table), each 8 bytes of the haystack probed, and on a block match the
 * 16-byte windows around it compared exactly: every occurrence of every
 * window is found, at a fraction of the cost of hashing all windows.
 * Windows of four equal 32-bit words (zeros, a fill) say nothing about the
 * weights and may occur anywhere (padding): they are not counted, nor
 * indexed as blocks (two equal words). */

/* (optimised even in the -O0 sanitizer build: the scans probe every offset
 * of tens of MiB) */
#if defined(__clang__) /* no per-function optimize attribute (the fuzz build is clang) */
#define HOT
#else
#define HOT __attribute__((optimize("O2")))
#endif

#define WS_BITS 24

typedef struct winset {
    const uint8_t *src;
    size_t n;           /* bytes of src */
    uint64_t *bits;     /* prefilter: 2^WS_BITS bits */
    uint32_t *slot;     /* block offset + 1; 0 = empty */
    size_t cap;
    size_t count;       /* windows that can be found */
} winset;

static HOT uint64_t ld8(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static HOT uint64_t mix(uint64_t k)
{
    k *= 0x9e3779b97f4a7c15ull;
    return k ^ k >> 31;
}

static HOT int flat8(const uint8_t *p)
{
    return !memcmp(p, p + 4, 4);
}

static HOT int flat16(const uint8_t *p)
{
    return flat8(p) && flat8(p + 8) && !memcmp(p, p + 8, 4);
}

static HOT void ws_init(winset *w, const uint8_t *src, size_t n)
{
    memset(w, 0, sizeof *w);
    w->src = src;
    w->n = n;
    size_t nb = n / 8;
    w->cap = 1;
    while (w->cap < 2 * nb + 2)
        w->cap <<= 1;
    w->slot = calloc(w->cap, sizeof *w->slot);
    w->bits = calloc((size_t)1 << (WS_BITS - 6), sizeof *w->bits);
    CHECK(w->slot && w->bits && n < UINT32_MAX);
    if (!w->slot || !w->bits)
        return;
    for (size_t a = 0; a + 8 <= n; a += 8) {
        if (flat8(src + a))
            continue;
        uint64_t h = mix(ld8(src + a));
        w->bits[(h >> (64 - WS_BITS)) >> 6] |= 1ull << ((h >> (64 - WS_BITS)) & 63);
        size_t j = h & (w->cap - 1);
        while (w->slot[j])
            j = (j + 1) & (w->cap - 1);
        w->slot[j] = (uint32_t)a + 1;
    }
    for (size_t i = 0; i + 16 <= n; i++) {
        size_t a = (i + 7) / 8 * 8; /* the first block inside the window */
        w->count += !flat16(src + i) && (!flat8(src + a) || (a + 16 <= i + 16 && !flat8(src + a + 8)));
    }
}

static void ws_free(winset *w)
{
    free(w->slot);
    free(w->bits);
    w->slot = NULL;
    w->bits = NULL;
}

/* Occurrences in hay of the set's windows (each window found through its
 * first non-flat block). */
static HOT size_t ws_hits(const winset *w, const uint8_t *hay, size_t n)
{
    size_t hits = 0;
    if (!w->slot || !w->bits)
        return (size_t)-1; /* could not build the set: never pass as "none" */
    for (size_t q = 0; q + 8 <= n; q++) {
        uint64_t k = ld8(hay + q), h = mix(k), bit = h >> (64 - WS_BITS);
        if (!(w->bits[bit >> 6] >> (bit & 63) & 1))
            continue;
        for (size_t j = h & (w->cap - 1); w->slot[j]; j = (j + 1) & (w->cap - 1)) {
            size_t a = w->slot[j] - 1;
            if (ld8(w->src + a) != k)
                continue;
            /* windows i with a - 8 <= i <= a; i = a - 8 only when its own
             * first block (a - 8) is flat, so that each is counted once */
            for (size_t i = a >= 8 ? a - 8 : 0; i <= a; i++) {
                if (i + 16 > w->n || q < a - i || q - (a - i) + 16 > n)
                    continue;
                if (i + 8 == a && !flat8(w->src + i))
                    continue;
                if (!flat16(w->src + i) && !memcmp(w->src + i, hay + q - (a - i), 16))
                    hits++;
            }
        }
    }
    return hits;
}

/* The weight tensors' bytes of a plain data section, back to back. */
static uint8_t *weights_of(const occ_model *m, const uint8_t *data, size_t *n)
{
    size_t total = 0;
    for (uint32_t t = 0; t < m->n_tensors; t++)
        if (m->tensors[t].kind == OCC_TENSOR_WEIGHT)
            total += m->tensors[t].size;
    uint8_t *w = malloc(total + 1);
    size_t at = 0;
    for (uint32_t t = 0; w && t < m->n_tensors; t++)
        if (m->tensors[t].kind == OCC_TENSOR_WEIGHT) {
            memcpy(w + at, data + m->tensors[t].data_offset, m->tensors[t].size);
            at += m->tensors[t].size;
        }
    *n = total;
    return w;
}

/* a || b, malloc'd */
static uint8_t *concat(const uint8_t *a, size_t na, const uint8_t *b, size_t nb, size_t *n)
{
    uint8_t *c = malloc(na + nb + 1);
    if (c) {
        memcpy(c, a, na);
        memcpy(c + na, b, nb);
    }
    *n = na + nb;
    return c;
}

/* ---- an in-memory pack: model + data section, served by read() ---- */

typedef struct mem_pack {
    const occ_model *m;
    uint8_t *data;
    uint64_t size;
    int reads;
} mem_pack;

static occ_status mp_read(void *ctx, uint64_t off, void *dst, uint64_t size, occ_error *e)
{
    mem_pack *p = ctx;
    p->reads++;
    if (off > p->size || size > p->size - off)
        return occ_fail(e, OCC_ERR_IO, "read out of range");
    memcpy(dst, p->data + off, size);
    return OCC_OK;
}

/* Encrypts a copy of the fixture's model and data: *enc gets the model
 * (chunks re-hashed over the ciphertext, as occ_pack_write does) and *data
 * the ciphertext. */
static void encrypt_copy(const tb *b, const uint8_t key[32], tb *enc, uint8_t **data)
{
    *enc = *b;
    enc->m.tensors = enc->t;
    enc->m.nodes = enc->n;
    enc->m.inputs = enc->gin;
    enc->m.outputs = enc->gout;
    enc->m.chunks = enc->chunks;
    for (uint32_t i = 0; i < enc->m.n_nodes; i++) {
        enc->n[i].inputs = enc->io[i][0];
        enc->n[i].outputs = enc->io[i][1];
        enc->n[i].attrs = enc->attrs[i];
    }
    *data = malloc(b->m.data_size + 1);
    memcpy(*data, b->data, b->m.data_size);
    enc->data = *data;
    occ_error e = {0};
    CHECK_MSG(occ_pack_encrypt(&enc->m, *data, key, &e) == OCC_OK, "%s", e.msg);
    for (uint32_t i = 0; i < enc->m.n_chunks; i++)
        CHECK(occ_sha256(*data + enc->chunks[i].offset, (size_t)enc->chunks[i].size,
                         enc->chunks[i].sha256) == OCC_OK);
    /* what identifies the model: encode it as the packer would */
    uint8_t *man = NULL;
    size_t ms = 0;
    CHECK(occ_manifest_encode(&enc->m, &man, &ms, &e) == OCC_OK);
    CHECK(man && occ_sha256(man, ms, enc->m.model_id) == OCC_OK);
    free(man);
}

/* The search itself: a window planted at any offset, from any offset of
 * the plaintext, is found exactly once; 15 bytes are not a window. */
static void test_window_search(void)
{
    size_t nn = 4099, nh = 1 << 16;
    uint8_t *needle = malloc(nn), *hay = malloc(nh);
    for (size_t i = 0; i < nn; i++)
        needle[i] = (uint8_t)(frand() * 127.0f + 128.0f);
    winset w;
    ws_init(&w, needle, nn);
    CHECK_MSG(w.count == nn - 15, "%zu windows", w.count);
    int bad = 0;
    for (size_t i = 0; i + 16 <= nn && bad < 3; i += (i < 64 ? 1 : 97)) {
        for (size_t k = 0; k < nh; k++)
            hay[k] = (uint8_t)(k * 131 + 7);
        size_t at = 1000 + i % 13;
        memcpy(hay + at, needle + i, 16);
        size_t h = ws_hits(&w, hay, nh);
        memcpy(hay + at, needle + i, 15);
        hay[at + 15] = (uint8_t)~needle[i + 15];
        size_t h15 = ws_hits(&w, hay, nh);
        if (h != 1 || h15 != 0) {
            bad++;
            CHECK_MSG(0, "window at %zu: %zu hits, %zu with 15 bytes", i, h, h15);
        }
    }
    CHECK(ws_hits(&w, needle, nn) == nn - 15); /* the plaintext holds itself */
    ws_free(&w);
    /* flat windows are not counted; a window with a flat first block is
     * found through the next one */
    memset(needle, 0, 64);
    ws_init(&w, needle, nn);
    CHECK(w.count < nn - 15 - 32);
    memcpy(hay, needle + 56, 16); /* 8 zeros then 8 random bytes: first block flat */
    CHECK(ws_hits(&w, hay, 64) >= 1);
    ws_free(&w);
    free(needle);
    free(hay);
}

/* ------------------------------------------------------------------ */

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void test_manifest_v3(void)
{
    tb b, enc;
    float *bufs[6];
    uint8_t *edata = NULL;
    occ_error e = {0};
    fix_stream_cnn(&b, bufs);
    uint8_t *plain = NULL, *crypt = NULL, *plain2 = NULL;
    size_t np = 0, nc = 0, np2 = 0;
    CHECK(occ_manifest_encode(&b.m, &plain, &np, &e) == OCC_OK);
    CHECK(plain && get32(plain + 8) == 2);
    /* the encryption fields do not touch a plain manifest */
    memset(b.m.pack_id, 0xa5, sizeof b.m.pack_id);
    memset(b.chunks[0].tag, 0x5a, 16);
    CHECK(occ_manifest_encode(&b.m, &plain2, &np2, &e) == OCC_OK);
    CHECK(np2 == np && plain2 && !memcmp(plain, plain2, np));
    memset(b.m.pack_id, 0, sizeof b.m.pack_id);
    memset(b.chunks[0].tag, 0, 16);

    encrypt_copy(&b, KEY, &enc, &edata);
    CHECK(enc.m.weights_crypt == OCC_WCRYPT_AES256GCM);
    CHECK(occ_manifest_encode(&enc.m, &crypt, &nc, &e) == OCC_OK);
    CHECK_MSG(crypt && get32(crypt + 8) == 3 && nc == np + 52 + 16 * enc.m.n_chunks, "%zu vs %zu", nc, np);
    occ_model *d = NULL;
    CHECK_MSG(occ_manifest_decode(crypt, nc, &d, &e) == OCC_OK, "%s", e.msg);
    if (d) {
        CHECK(d->weights_crypt == OCC_WCRYPT_AES256GCM);
        CHECK(!memcmp(d->pack_id, enc.m.pack_id, 16) && !memcmp(d->key_check, enc.m.key_check, 32));
        CHECK(d->n_chunks == enc.m.n_chunks);
        int same = 1;
        for (uint32_t i = 0; i < d->n_chunks && i < enc.m.n_chunks; i++)
            same &= !memcmp(d->chunks[i].tag, enc.chunks[i].tag, 16) &&
                    !memcmp(d->chunks[i].sha256, enc.chunks[i].sha256, 32) &&
                    d->chunks[i].offset == enc.chunks[i].offset;
        CHECK(same);
        CHECK(!memcmp(d->model_id, enc.m.model_id, 32));
        /* the key check is that of KEY: the right key is accepted, another refused */
        occ_wcrypt *c = NULL;
        CHECK(occ_wcrypt_for_model(d, KEY, &c, &e) == OCC_OK && c);
        occ_wcrypt_free(c);
        c = NULL;
        CHECK(occ_wcrypt_for_model(d, KEY2, &c, &e) == OCC_ERR_KEY && !c);
        CHECK(strstr(e.msg, "does not match") != NULL);
        CHECK(occ_wcrypt_for_model(d, NULL, &c, &e) == OCC_ERR_KEY && !c);
        CHECK(strstr(e.msg, "encrypted") != NULL);
        occ_model_free(d);
    }
    /* the model id changes with every pack id: a re-encryption is another model */
    tb enc2;
    uint8_t *edata2 = NULL;
    encrypt_copy(&b, KEY, &enc2, &edata2);
    CHECK(memcmp(enc2.m.pack_id, enc.m.pack_id, 16) != 0 && memcmp(enc2.m.model_id, enc.m.model_id, 32) != 0);
    free(edata2);

    /* every truncation is refused */
    int trunc_ok = 1;
    for (size_t k = 0; crypt && k < nc; k++) {
        occ_model *t = NULL;
        if (occ_manifest_decode(crypt, k, &t, &e) == OCC_OK) {
            trunc_ok = 0;
            occ_model_free(t);
        }
    }
    CHECK(trunc_ok);
    /* hostile encryption blocks: locate the scheme (just before the pack id) */
    uint8_t *pid = crypt ? memmem(crypt, nc, enc.m.pack_id, 16) : NULL;
    CHECK(pid != NULL && get32(pid - 4) == 1);
    if (pid) {
        uint8_t *mod = malloc(nc);
        const struct { uint32_t scheme; occ_status st; } cases[] = {
            {0, OCC_ERR_FORMAT}, {2, OCC_ERR_UNSUPPORTED}, {0xffffffffu, OCC_ERR_UNSUPPORTED}};
        for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
            memcpy(mod, crypt, nc);
            uint8_t *s = mod + (pid - crypt) - 4;
            for (int j = 0; j < 4; j++)
                s[j] = (uint8_t)(cases[k].scheme >> (8 * j));
            occ_model *t = NULL;
            occ_status st = occ_manifest_decode(mod, nc, &t, &e);
            CHECK_MSG(st == cases[k].st && strstr(e.msg, "scheme"), "scheme %u: %d %s", cases[k].scheme, st, e.msg);
            occ_model_free(t);
        }
        /* version 3 without the block, version 2 with it, version 4 */
        memcpy(mod, plain, np);
        mod[8] = 3;
        occ_model *t = NULL;
        CHECK(occ_manifest_decode(mod, np, &t, &e) != OCC_OK);
        occ_model_free(t);
        t = NULL;
        memcpy(mod, crypt, nc);
        mod[8] = 2;
        CHECK(occ_manifest_decode(mod, nc, &t, &e) != OCC_OK);
        occ_model_free(t);
        t = NULL;
        mod[8] = 4;
        CHECK(occ_manifest_decode(mod, nc, &t, &e) == OCC_ERR_UNSUPPORTED);
        occ_model_free(t);
        free(mod);
    }
    /* the encoder refuses a scheme it does not know */
    enc.m.weights_crypt = 7;
    uint8_t *bad = NULL;
    size_t nb = 0;
    CHECK(occ_manifest_encode(&enc.m, &bad, &nb, &e) == OCC_ERR_INVALID);
    free(bad);
    /* and occ_pack_encrypt does not encrypt twice */
    enc.m.weights_crypt = OCC_WCRYPT_AES256GCM;
    CHECK(occ_pack_encrypt(&enc.m, edata, KEY, &e) == OCC_ERR_INVALID);
    free(plain);
    free(plain2);
    free(crypt);
    free(edata);
    for (int i = 0; i < 6; i++)
        free(bufs[i]);
    tb_free(&b);
}

/* ------------------------------------------------------------------ */

static uint8_t *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)sz + 1);
    if (buf && fread(buf, 1, (size_t)sz, f) != (size_t)sz) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *n = (size_t)sz;
    return buf;
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* A pack file in memory: its decoded manifest and its data section. */
typedef struct file_pack {
    uint8_t *file;
    size_t size;
    occ_model *m;
    mem_pack mp;
} file_pack;

static int open_pack(const char *path, file_pack *fp)
{
    memset(fp, 0, sizeof *fp);
    occ_error e = {0};
    fp->file = read_file(path, &fp->size);
    if (!fp->file || fp->size < 4096)
        return -1;
    uint64_t mo = get64(fp->file + 16), ms = get64(fp->file + 24), dofs = get64(fp->file + 32),
             ds = get64(fp->file + 40);
    if (mo + ms > fp->size || dofs + ds > fp->size)
        return -1;
    if (occ_manifest_decode(fp->file + mo, ms, &fp->m, &e) != OCC_OK) {
        fprintf(stderr, "%s: %s\n", path, e.msg);
        return -1;
    }
    fp->mp = (mem_pack){fp->m, fp->file + dofs, ds, 0};
    return 0;
}

static void close_pack(file_pack *fp)
{
    occ_model_free(fp->m);
    free(fp->file);
}

static occ_status run_once(const occ_model *m, mem_pack *mp, occ_mode mode, const uint8_t *key,
                           const float *x, float *y, occ_engine_stats *st, occ_error *e)
{
    occ_engine_opts o = {.threads = 1, .mode = mode, .weights_key = key};
    occ_engine *eng = NULL;
    occ_status s = occ_engine_create(m, &o, mp_read, mp, &eng, e);
    if (s)
        return s;
    const float *ins[1] = {x};
    float *outs[1] = {y};
    s = occ_engine_run(eng, (const void *const *)ins, (void *const *)outs, e);
    if (st)
        occ_engine_get_stats(eng, st);
    occ_engine_free(eng);
    return s;
}

static void test_bundled_model(void)
{
    const char *src = getenv("OCC_SRC");
    char onnx[4096], dir[] = "/tmp/occ_wcrypt_XXXXXX", pplain[4200], penc[4200];
    snprintf(onnx, sizeof onnx, "%s/models/fmnist.onnx", src ? src : "../..");
    CHECK(mkdtemp(dir) != NULL);
    snprintf(pplain, sizeof pplain, "%s/plain.occ", dir);
    snprintf(penc, sizeof penc, "%s/enc.occ", dir);
    occ_error e = {0};
    occ_pack_options o;
    memset(&o, 0, sizeof o);
    occ_pack_stats sp, se;
    CHECK_MSG(occ_pack_onnx(onnx, pplain, &o, &sp, &e) == OCC_OK, "%s", e.msg);
    o.encrypt_key = KEY;
    CHECK_MSG(occ_pack_onnx(onnx, penc, &o, &se, &e) == OCC_OK, "%s", e.msg);
    file_pack P, E;
    int okp = open_pack(pplain, &P) == 0, oke = open_pack(penc, &E) == 0;
    CHECK(okp && oke);
    if (!okp || !oke)
        goto out;
    CHECK(P.m->weights_crypt == 0 && E.m->weights_crypt == OCC_WCRYPT_AES256GCM);
    CHECK(P.size == E.size && P.m->n_chunks == E.m->n_chunks);
    CHECK(memcmp(P.m->model_id, E.m->model_id, 32) != 0);
    CHECK(!memcmp(E.m->model_id, se.model_id, 32));

    /* the weights' 16-byte windows: in the plain pack, none in the encrypted one */
    size_t nw = 0;
    uint8_t *w = weights_of(P.m, P.mp.data, &nw);
    winset ws;
    ws_init(&ws, w, nw);
    CHECK_MSG(nw > 100000 && ws.count > nw * 9 / 10, "%zu windows of %zu bytes", ws.count, nw);
    size_t hp = ws_hits(&ws, P.file, P.size), he = ws_hits(&ws, E.file, E.size);
    /* (windows across two tensors are not in the pack: padding separates them) */
    CHECK_MSG(hp >= ws.count / 100 * 99, "plain pack: %zu hits of %zu windows", hp, ws.count);
    CHECK_MSG(he == 0, "encrypted pack: %zu windows of the plaintext weights", he);
    /* the encrypted data section is not the plain one under another name:
     * the manifests agree on every tensor, the data differs everywhere */
    size_t same = 0;
    for (size_t i = 0; i < P.mp.size; i++)
        same += P.mp.data[i] == E.mp.data[i] && P.mp.data[i] != 0;
    CHECK_MSG(same < P.mp.size / 64, "%zu equal non-zero data bytes", same);

    /* same answers, native and occlumency */
    const occ_tensor *it = &P.m->tensors[P.m->inputs[0]], *ot = &P.m->tensors[P.m->outputs[0]];
    float *x = rand_buf((int64_t)(it->size / 4)), *y0 = calloc(1, ot->size), *y1 = calloc(1, ot->size);
    occ_mode modes[2] = {OCC_MODE_NATIVE, OCC_MODE_OCCLUMENCY};
    for (int mi = 0; mi < 2; mi++) {
        occ_engine_stats st;
        memset(y1, 0xff, ot->size);
        CHECK_MSG(run_once(P.m, &P.mp, modes[mi], NULL, x, y0, NULL, &e) == OCC_OK, "%s", e.msg);
        CHECK_MSG(run_once(E.m, &E.mp, modes[mi], KEY, x, y1, &st, &e) == OCC_OK, "%s", e.msg);
        CHECK_MSG(!memcmp(y0, y1, ot->size), "mode %d: outputs differ", modes[mi]);
        uint64_t all = 0;
        for (uint32_t i = 0; i < E.m->n_chunks; i++)
            all += E.m->chunks[i].size;
        CHECK_MSG(st.bytes_decrypted >= all, "decrypted %llu of %llu", (unsigned long long)st.bytes_decrypted,
                  (unsigned long long)all);
    }
    /* refusals before a single chunk is read */
    E.mp.reads = 0;
    CHECK(run_once(E.m, &E.mp, OCC_MODE_NATIVE, NULL, x, y1, NULL, &e) == OCC_ERR_KEY);
    CHECK(strstr(e.msg, "encrypted") && strstr(e.msg, "key"));
    CHECK(run_once(E.m, &E.mp, OCC_MODE_OCCLUMENCY, KEY2, x, y1, NULL, &e) == OCC_ERR_KEY);
    CHECK(strstr(e.msg, "does not match"));
    CHECK(E.mp.reads == 0);
    P.mp.reads = 0;
    CHECK(run_once(P.m, &P.mp, OCC_MODE_NATIVE, KEY, x, y1, NULL, &e) == OCC_ERR_INVALID);
    CHECK(strstr(e.msg, "not encrypted") && P.mp.reads == 0);
    /* a flipped ciphertext byte: refused at load */
    E.mp.data[E.m->chunks[0].offset + 100] ^= 1;
    CHECK(run_once(E.m, &E.mp, OCC_MODE_NATIVE, KEY, x, y1, NULL, &e) == OCC_ERR_INTEGRITY);
    E.mp.data[E.m->chunks[0].offset + 100] ^= 1;
    CHECK_MSG(run_once(E.m, &E.mp, OCC_MODE_NATIVE, KEY, x, y1, NULL, &e) == OCC_OK, "%s", e.msg);
    free(x);
    free(y0);
    free(y1);
    ws_free(&ws);
    free(w);
out:
    close_pack(&P);
    close_pack(&E);
    unlink(pplain);
    unlink(penc);
    rmdir(dir);
}

/* ------------------------------------------------------------------ */

static occ_status create_tb(tb *b, const uint8_t *key, occ_mode mode, occ_engine **eng, occ_error *e)
{
    occ_engine_opts o = {.threads = 1, .mode = mode, .budget = BUDGET, .weights_key = key};
    return occ_engine_create(&b->m, &o, tb_read, b, eng, e);
}

/* What binds a chunk to its place and its pack (the GCM nonce, associated
 * data and per-pack key), each case caught by the tag alone. */
static void test_chunk_binding(void)
{
    tb b, A, B;
    float *bufs[6];
    uint8_t *da = NULL, *db = NULL;
    occ_error e = {0};
    occ_engine *eng = NULL;
    fix_stream_cnn(&b, bufs);
    encrypt_copy(&b, KEY, &A, &da);
    encrypt_copy(&b, KEY, &B, &db); /* same key, another pack id */
    CHECK_MSG(create_tb(&A, KEY, OCC_MODE_NATIVE, &eng, &e) == OCC_OK, "%s", e.msg);
    occ_engine_free(eng);
    eng = NULL;

    /* two chunks of one size swapped, with their table entries: each hash
     * matches its bytes, the tags do not (chunk index and offset are bound) */
    uint32_t i = 1, j = 0;
    for (uint32_t k = 2; k < A.m.n_chunks && !j; k++)
        if (A.chunks[k].size == A.chunks[i].size)
            j = k;
    CHECK(j > i);
    if (j > i) {
        occ_chunk ci = A.chunks[i], cj = A.chunks[j];
        uint8_t *tmp = malloc(ci.size);
        memcpy(tmp, da + ci.offset, ci.size);
        memcpy(da + ci.offset, da + cj.offset, ci.size);
        memcpy(da + cj.offset, tmp, ci.size);
        memcpy(A.chunks[i].sha256, cj.sha256, 32);
        memcpy(A.chunks[i].tag, cj.tag, 16);
        memcpy(A.chunks[j].sha256, ci.sha256, 32);
        memcpy(A.chunks[j].tag, ci.tag, 16);
        CHECK(create_tb(&A, KEY, OCC_MODE_NATIVE, &eng, &e) == OCC_ERR_INTEGRITY && !eng);
        CHECK_MSG(strstr(e.msg, "authentication") != NULL, "%s", e.msg);
        memcpy(da + cj.offset, da + ci.offset, ci.size); /* restore */
        memcpy(da + ci.offset, tmp, ci.size);
        A.chunks[i] = ci;
        A.chunks[j] = cj;
        free(tmp);
    }
    /* a ciphertext byte flipped and the chunk re-hashed: only the tag can tell */
    const occ_chunk c3 = A.chunks[3];
    da[c3.offset + 77] ^= 0x80;
    CHECK(occ_sha256(da + c3.offset, (size_t)c3.size, A.chunks[3].sha256) == OCC_OK);
    CHECK(create_tb(&A, KEY, OCC_MODE_NATIVE, &eng, &e) == OCC_ERR_INTEGRITY && !eng);
    CHECK_MSG(strstr(e.msg, "chunk 3 failed authentication") != NULL, "%s", e.msg);
    da[c3.offset + 77] ^= 0x80;
    A.chunks[3] = c3;
    /* a tag flipped (a manifest the attested model id does not name): refused */
    A.chunks[5].tag[0] ^= 1;
    CHECK(create_tb(&A, KEY, OCC_MODE_NATIVE, &eng, &e) == OCC_ERR_INTEGRITY && !eng);
    A.chunks[5].tag[0] ^= 1;
    /* the same chunk from another pack under the same key (hash and tag with it) */
    const occ_chunk c4 = A.chunks[4];
    uint8_t *keep = malloc(c4.size);
    memcpy(keep, da + c4.offset, c4.size);
    memcpy(da + c4.offset, db + c4.offset, c4.size);
    memcpy(A.chunks[4].sha256, B.chunks[4].sha256, 32);
    memcpy(A.chunks[4].tag, B.chunks[4].tag, 16);
    CHECK(create_tb(&A, KEY, OCC_MODE_NATIVE, &eng, &e) == OCC_ERR_INTEGRITY && !eng);
    CHECK_MSG(strstr(e.msg, "chunk 4 failed authentication") != NULL, "%s", e.msg);
    memcpy(da + c4.offset, keep, c4.size);
    A.chunks[4] = c4;
    free(keep);
    /* restored: accepted again */
    CHECK_MSG(create_tb(&A, KEY, OCC_MODE_NATIVE, &eng, &e) == OCC_OK, "%s", e.msg);
    occ_engine_free(eng);
    free(da);
    free(db);
    for (int k = 0; k < 6; k++)
        free(bufs[k]);
    tb_free(&b);
}

/* ------------------------------------------------------------------ */

static void test_stash_is_ciphertext(void)
{
    tb b, E;
    float *bufs[6];
    uint8_t *de = NULL;
    occ_error e = {0};
    fix_stream_cnn(&b, bufs);
    encrypt_copy(&b, KEY, &E, &de);
    occ_engine *pe = NULL, *ee = NULL;
    CHECK_MSG(create_tb(&b, NULL, OCC_MODE_OCCLUMENCY, &pe, &e) == OCC_OK, "%s", e.msg);
    CHECK_MSG(create_tb(&E, KEY, OCC_MODE_OCCLUMENCY, &ee, &e) == OCC_OK, "%s", e.msg);
    if (!pe || !ee)
        goto out;
    uint64_t np = 0, ne = 0;
    uint8_t *sp = occ_engine_debug_stash(pe, &np), *se = occ_engine_debug_stash(ee, &ne);
    CHECK_MSG(sp && se && np == ne && np > (1u << 20), "stash %llu / %llu", (unsigned long long)np,
              (unsigned long long)ne);

    float *x = rand_buf(16 * 64), y0[FIX_NY], y1[FIX_NY];
    const float *ins[1] = {x};
    float *o0[1] = {y0}, *o1[1] = {y1};
    CHECK(occ_engine_run(pe, (const void *const *)ins, (void *const *)o0, &e) == OCC_OK);
    occ_engine_stats s0, s1;
    occ_engine_get_stats(ee, &s0);
    CHECK(occ_engine_run(ee, (const void *const *)ins, (void *const *)o1, &e) == OCC_OK);
    occ_engine_get_stats(ee, &s1);
    CHECK_MSG(!memcmp(y0, y1, sizeof y0), "encrypted vs plain: %g", max_rel_err(y1, y0, FIX_NY));
    CHECK_MSG(s1.bytes_decrypted - s0.bytes_decrypted == s1.plan_stream_bytes && s1.plan_stream_bytes > 0,
              "decrypted %llu per run, plan streams %llu",
              (unsigned long long)(s1.bytes_decrypted - s0.bytes_decrypted),
              (unsigned long long)s1.plan_stream_bytes);

    /* the weights, and the kernel-ready segments (the plain engine's stash) */
    size_t nw = 0, nwk = 0;
    uint8_t *w = weights_of(&b.m, b.data, &nw), *wk = concat(w, nw, sp, (size_t)np, &nwk);
    winset ws;
    ws_init(&ws, wk, nwk);
    size_t plain_hits = ws_hits(&ws, sp, (size_t)np);
    CHECK_MSG(plain_hits >= np / 2, "the plain stash holds only %zu windows", plain_hits);
    CHECK_MSG(ws_hits(&ws, se, (size_t)ne) == 0,
              "encrypted stash holds windows of the weights or of the kernel-ready segments");

    /* a flipped stash byte fails that inference and leaves the output alone */
    int bad = 0;
    for (int k = 0; k < 60 && bad < 3; k++) {
        uint64_t at = (uint64_t)rand() % ne;
        se[at] ^= (uint8_t)(1u << (k % 8));
        for (int q = 0; q < FIX_NY; q++)
            y1[q] = -7.0f;
        occ_status st = occ_engine_run(ee, (const void *const *)ins, (void *const *)o1, &e);
        int untouched = 1;
        for (int q = 0; q < FIX_NY; q++)
            untouched &= y1[q] == -7.0f;
        if (st != OCC_ERR_INTEGRITY || !untouched || !strstr(e.msg, "authentication")) {
            bad++;
            CHECK_MSG(0, "flip at %llu: %d %s", (unsigned long long)at, st, e.msg);
        }
        se[at] ^= (uint8_t)(1u << (k % 8));
    }
    CHECK(occ_engine_run(ee, (const void *const *)ins, (void *const *)o1, &e) == OCC_OK);
    CHECK(!memcmp(y0, y1, sizeof y0));
    ws_free(&ws);
    free(w);
    free(wk);
    free(x);
out:
    occ_engine_free(pe);
    occ_engine_free(ee);
    free(de);
    for (int k = 0; k < 6; k++)
        free(bufs[k]);
    tb_free(&b);
}

/* ------------------------------------------------------------------ */

static occ_status host_read(void *host, uint32_t pack, uint64_t off, void *dst, uint64_t size, occ_error *e)
{
    (void)pack;
    return tb_read(host, off, dst, size, e);
}

/* Creates and runs engines of every mode on b in a fresh emulated enclave
 * (EPC capped below the model, so pages are evicted), recording every byte
 * that crosses the boundary. Returns the recording; *backing gets the EPC's
 * sealed backing store, concatenated. */
static uint8_t *record_all(tb *b, const uint8_t *key, size_t *n, uint8_t **backing, size_t *nb)
{
    occ_error e = {0};
    occ_epc_opts eo;
    occ_epc_opts_default(&eo);
    eo.cap_size = 3u << 20;
    eo.region_size = 64u << 20;
    eo.cost = OCC_EPC_COST_NONE;
    occ_epc *epc = NULL;
    *n = *nb = 0;
    *backing = NULL;
    CHECK(occ_epc_create(&eo, &epc, &e) == OCC_OK);
    if (!epc)
        return NULL;
    occ_ocalls host = {b, host_read, NULL, NULL, NULL};
    occ_boundary_opts bo = {.epc = epc, .record_memory = 1};
    occ_boundary *bd = NULL;
    CHECK(occ_boundary_create(&bo, &host, NULL, &bd, &e) == OCC_OK);
    occ_mem_provider mem;
    occ_epc_provider(epc, &mem);
    occ_ocall_reader rd = {occ_boundary_ocalls(bd), 0};
    float *x = rand_buf(16 * 64), y[FIX_NY];
    const float *ins[1] = {x};
    float *outs[1] = {y};
    occ_mode modes[3] = {OCC_MODE_NATIVE, OCC_MODE_BASELINE, OCC_MODE_OCCLUMENCY};
    uint64_t pages = 0;
    for (int mi = 0; mi < 3; mi++) {
        occ_engine_opts o = {.threads = 1, .mode = modes[mi], .budget = BUDGET, .mem = &mem, .weights_key = key};
        occ_engine *eng = NULL;
        CHECK_MSG(occ_engine_create(&b->m, &o, occ_ocall_read, &rd, &eng, &e) == OCC_OK, "mode %d: %s", mi, e.msg);
        if (!eng)
            continue;
        CHECK(occ_engine_run(eng, (const void *const *)ins, (void *const *)outs, &e) == OCC_OK);
        CHECK(occ_engine_run(eng, (const void *const *)ins, (void *const *)outs, &e) == OCC_OK);
        CHECK(occ_epc_check(epc, &e) == OCC_OK);
        occ_epc_stats es;
        occ_epc_get_stats(epc, &es);
        if (es.peak_allocated_size / OCC_EPC_PAGE_SIZE > pages)
            pages = es.peak_allocated_size / OCC_EPC_PAGE_SIZE;
        occ_engine_free(eng);
    }
    occ_epc_stats es;
    occ_epc_get_stats(epc, &es);
    CHECK_MSG(es.evictions > 100, "only %llu evictions", (unsigned long long)es.evictions);
    uint8_t *rec = NULL;
    CHECK(occ_boundary_record_take(bd, &rec, n, &e) == OCC_OK);
    CHECK(*n >= b->m.data_size);
    /* the backing store: every sealed page and its metadata */
    size_t cap = (size_t)(pages + 16) * (OCC_EPC_PAGE_SIZE + 256), at = 0;
    uint8_t *bk = malloc(cap);
    for (uint64_t p = 0; bk && p < pages + 16; p++) {
        occ_epc_backing k;
        if (occ_epc_debug_backing(epc, p, &k) != OCC_OK)
            break;
        memcpy(bk + at, k.ciphertext, OCC_EPC_PAGE_SIZE);
        at += OCC_EPC_PAGE_SIZE;
        size_t mm = k.meta_size < 256 ? k.meta_size : 256;
        memcpy(bk + at, k.meta, mm);
        at += mm;
    }
    *backing = bk;
    *nb = at;
    CHECK(at > 100 * OCC_EPC_PAGE_SIZE);
    free(x);
    occ_boundary_free(bd);
    occ_epc_destroy(epc);
    return rec;
}

static void test_boundary_sees_ciphertext(void)
{
    tb b, E;
    float *bufs[6];
    uint8_t *de = NULL;
    occ_error e = {0};
    fix_stream_cnn(&b, bufs);
    encrypt_copy(&b, KEY, &E, &de);
    /* the kernel-ready segments, as a plain engine stashes them */
    occ_engine *pe = NULL;
    CHECK_MSG(create_tb(&b, NULL, OCC_MODE_OCCLUMENCY, &pe, &e) == OCC_OK, "%s", e.msg);
    uint64_t np = 0;
    uint8_t *sp = occ_engine_debug_stash(pe, &np);
    size_t nw = 0, nwk = 0;
    uint8_t *w = weights_of(&b.m, b.data, &nw), *wk = concat(w, nw, sp, (size_t)np, &nwk);
    winset ws;
    ws_init(&ws, wk, nwk);

    /* everything the host sees: the recording and the EPC's backing store */
    size_t n = 0, nb = 0, nall = 0;
    uint8_t *bk = NULL;
    uint8_t *rec = record_all(&E, KEY, &n, &bk, &nb), *all = concat(rec, n, bk, nb, &nall);
    CHECK(rec != NULL);
    size_t h = ws_hits(&ws, all, nall);
    CHECK_MSG(h == 0, "%zu windows of the weights or the kernel-ready segments crossed the boundary "
                      "or lie in the EPC backing store", h);
    free(rec);
    free(bk);
    free(all);

    /* control: with the plain pack, the (public) weights do cross */
    rec = record_all(&b, NULL, &n, &bk, &nb);
    size_t hp = ws_hits(&ws, rec, n);
    CHECK_MSG(hp > nw / 2, "plain pack: only %zu windows of the weights crossed", hp);
    free(rec);
    free(bk);
    ws_free(&ws);
    free(w);
    free(wk);
    occ_engine_free(pe);
    free(de);
    for (int k = 0; k < 6; k++)
        free(bufs[k]);
    tb_free(&b);
}

int main(void)
{
    RUN(test_window_search);
    RUN(test_manifest_v3);
    RUN(test_bundled_model);
    RUN(test_chunk_binding);
    RUN(test_stash_is_ciphertext);
    RUN(test_boundary_sees_ciphertext);
    TEST_DONE();
}
