/* The emulated boundary (src/sgxemu/boundary_emu.c): every crossing is
 * counted and charged, NULL entries stay NULL, the recorder logs exactly the
 * bytes that cross; and the confidentiality test: record every byte that
 * crosses the boundary during a whole inference in the emulated enclave and
 * prove the plaintext input tensor never appears in it (nor any 16-byte
 * window of it), while a planted leak through the same boundary is found. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/ocalls_file.h"
#include "occ/boundary_emu.h"
#include "occ/engine.h"
#include "occ/epc.h"
#include "occ/pack.h"
#include "occ/packer.h"
#include "test.h"

/* ---- a fake host and enclave ---- */
typedef struct {
    int reads, sends, closes, nows, opens, datas, cclose, workers, stops;
    uint8_t last_sent[64];
    size_t last_sent_size;
} fake;

static occ_status f_read(void *h, uint32_t pack, uint64_t off, void *dst, uint64_t size, occ_error *e)
{
    fake *f = h;
    f->reads++;
    if (pack == 7)
        return occ_fail(e, OCC_ERR_IO, "no such pack");
    for (uint64_t i = 0; i < size; i++)
        ((uint8_t *)dst)[i] = (uint8_t)(off + i);
    return OCC_OK;
}
static occ_status f_send(void *h, uint64_t conn, const void *buf, size_t size, occ_error *e)
{
    fake *f = h;
    f->sends++;
    f->last_sent_size = size < sizeof f->last_sent ? size : sizeof f->last_sent;
    memcpy(f->last_sent, buf, f->last_sent_size);
    return OCC_OK;
}
static void f_close(void *h, uint64_t conn) { ((fake *)h)->closes++; }
static uint64_t f_now(void *h) { return (uint64_t)++((fake *)h)->nows * 1000; }
static occ_status f_open(void *x, uint64_t conn, occ_error *e) { ((fake *)x)->opens++; return OCC_OK; }
static occ_status f_data(void *x, uint64_t conn, const void *b, size_t n, occ_error *e)
{
    ((fake *)x)->datas++;
    return OCC_OK;
}
static void f_cclose(void *x, uint64_t conn) { ((fake *)x)->cclose++; }
static occ_status f_worker(void *x, int i, occ_error *e) { ((fake *)x)->workers++; return OCC_OK; }
static void f_stop(void *x) { ((fake *)x)->stops++; }

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void test_counts_and_records(void)
{
    fake host = {0}, encl = {0};
    occ_ocalls o = {&host, f_read, f_send, f_close, f_now};
    occ_ecalls ec = {&encl, f_open, f_data, f_cclose, f_worker, f_stop};
    occ_epc_opts eo;
    occ_epc_opts_default(&eo);
    eo.cap_size = 1 << 20;
    eo.region_size = 1 << 20; /* nothing pages: only transitions */
    eo.cost = OCC_EPC_COST_SGX1;
    occ_epc *epc = NULL;
    occ_error e = {0};
    CHECK(occ_epc_create(&eo, &epc, &e) == OCC_OK);
    if (!epc)
        return;
    occ_boundary_opts bo = {.epc = epc, .record_memory = 1};
    occ_boundary *b = NULL;
    CHECK(occ_boundary_create(&bo, &o, &ec, &b, &e) == OCC_OK);
    const occ_ocalls *wo = occ_boundary_ocalls(b);
    const occ_ecalls *we = occ_boundary_ecalls(b);
    CHECK(wo && we && wo->host != &host && we->enclave != &encl);

    uint8_t buf[100];
    CHECK(wo->read_chunk(wo->host, 0, 1000, buf, sizeof buf, &e) == OCC_OK);
    CHECK(buf[0] == (uint8_t)1000 && buf[99] == (uint8_t)1099);
    CHECK(wo->read_chunk(wo->host, 7, 0, buf, sizeof buf, &e) == OCC_ERR_IO); /* failed: counted, not recorded */
    const char msg[] = "ciphertext record";
    CHECK(wo->send(wo->host, 42, msg, sizeof msg, &e) == OCC_OK);
    CHECK(host.last_sent_size == sizeof msg && !memcmp(host.last_sent, msg, sizeof msg));
    wo->close(wo->host, 42);
    CHECK(wo->now_ns(wo->host) == 1000);
    CHECK(we->conn_open(we->enclave, 5, &e) == OCC_OK);
    const uint8_t rec[3] = {0x17, 0x03, 0x03};
    CHECK(we->conn_data(we->enclave, 5, rec, sizeof rec, &e) == OCC_OK);
    we->conn_close(we->enclave, 5);
    CHECK(we->run_worker(we->enclave, 0, &e) == OCC_OK);
    we->stop(we->enclave);
    CHECK(host.reads == 2 && host.sends == 1 && host.closes == 1 && host.nows == 1);
    CHECK(encl.opens == 1 && encl.datas == 1 && encl.cclose == 1 && encl.workers == 1 && encl.stops == 1);

    occ_boundary_stats bs;
    occ_boundary_get_stats(b, &bs);
    CHECK(bs.ocalls == 5 && bs.ecalls == 5 && bs.transitions == 10);
    CHECK(bs.calls[OCC_BCALL_READ_CHUNK] == 2 && bs.calls[OCC_BCALL_CONN_DATA] == 1);
    CHECK(bs.bytes_in == sizeof buf + sizeof rec && bs.bytes_out == sizeof msg);
    occ_epc_stats es;
    occ_epc_get_stats(epc, &es);
    CHECK_MSG(es.transitions == 10, "epc transitions %llu", (unsigned long long)es.transitions);
    /* each transition busy-waits 10k cycles */
    CHECK(es.charged_cycles == 10 * OCC_EPC_SGX1_TRANSITION_CYCLES);
    CHECK(es.charged_ns >= (uint64_t)(10 * OCC_EPC_SGX1_TRANSITION_CYCLES / es.ghz) - 10);

    /* The recording: 9 records (the failed read is not one), each exactly
     * what crossed. */
    uint8_t *r = NULL;
    size_t n = 0;
    CHECK(occ_boundary_record_take(b, &r, &n, &e) == OCC_OK);
    size_t pos = 0;
    int count = 0, saw_read = 0, saw_send = 0, saw_data = 0;
    while (r && pos + OCC_BOUNDARY_RECORD_HEADER <= n) {
        const uint8_t *h = r + pos;
        CHECK(h[0] == 0x42 && h[1] == 0x43 && h[2] == 0x43 && h[3] == 0x4f);
        uint64_t size = get_u64(h + 24);
        const uint8_t *d = h + OCC_BOUNDARY_RECORD_HEADER;
        if (h[5] == OCC_BCALL_READ_CHUNK) {
            saw_read = h[4] == 0 && get_u64(h + 16) == 1000 && size == sizeof buf && !memcmp(d, buf, sizeof buf);
        } else if (h[5] == OCC_BCALL_SEND) {
            saw_send = h[4] == 1 && get_u64(h + 8) == 42 && size == sizeof msg && !memcmp(d, msg, sizeof msg);
        } else if (h[5] == OCC_BCALL_CONN_DATA) {
            saw_data = h[4] == 0 && size == sizeof rec && !memcmp(d, rec, sizeof rec);
        }
        pos += OCC_BOUNDARY_RECORD_HEADER + size;
        count++;
    }
    CHECK(pos == n);
    CHECK_MSG(count == 9, "%d records", count);
    CHECK(saw_read && saw_send && saw_data);
    free(r);
    occ_boundary_get_stats(b, &bs);
    CHECK(bs.recorded_size == n);

    /* Stopped: nothing more is recorded, but still counted. */
    occ_boundary_record_stop(b);
    CHECK(wo->send(wo->host, 1, msg, 3, &e) == OCC_OK);
    CHECK(occ_boundary_record_take(b, &r, &n, &e) == OCC_OK);
    CHECK(n == 0);
    free(r);
    occ_boundary_get_stats(b, &bs);
    CHECK(bs.transitions == 11);
    occ_boundary_free(b);

    /* NULL entries stay NULL; no EPC: count only; one table only. */
    occ_ocalls partial = {&host, f_read, NULL, NULL, NULL};
    CHECK(occ_boundary_create(NULL, &partial, NULL, &b, &e) == OCC_OK);
    CHECK(occ_boundary_ecalls(b) == NULL);
    CHECK(occ_boundary_ocalls(b)->send == NULL && occ_boundary_ocalls(b)->read_chunk != NULL);
    occ_ocall_reader rd = {occ_boundary_ocalls(b), 0};
    CHECK(occ_ocall_read(&rd, 5, buf, 4, &e) == OCC_OK && buf[0] == 5);
    occ_boundary_get_stats(b, &bs);
    CHECK(bs.transitions == 1);
    occ_boundary_free(b);
    occ_ocall_reader none = {NULL, 0};
    CHECK(occ_ocall_read(&none, 0, buf, 4, &e) == OCC_ERR_INVALID);
    occ_epc_destroy(epc);
}

/* ---- the confidentiality test ---- */

static int contains(const uint8_t *hay, size_t n, const uint8_t *needle, size_t k)
{
    if (k == 0 || n < k)
        return 0;
    return memmem(hay, n, needle, k) != NULL;
}

/* Does any 16-byte window of x (at any byte offset) occur anywhere in the
 * recording? A hash set of x's windows, probed at every recording offset. */
static uint64_t win_hash(const uint8_t *p)
{
    uint64_t a, b;
    memcpy(&a, p, 8);
    memcpy(&b, p + 8, 8);
    uint64_t h = a * 0x9e3779b97f4a7c15ull ^ (b + 0x632be59bd9b4e019ull) * 0xc2b2ae3d27d4eb4full;
    return h ^ h >> 29;
}

static int find_input_in(const uint8_t *rec, size_t n, const uint8_t *x, size_t size)
{
    if (contains(rec, n, x, size))
        return 1;
    if (size < 16 || n < 16)
        return 0;
    size_t nw = size - 15, cap = 1;
    while (cap < 2 * nw)
        cap <<= 1;
    uint32_t *slot = calloc(cap, sizeof *slot); /* window offset + 1; 0 = empty */
    if (!slot)
        return 1; /* cannot prove absence: fail the test */
    for (size_t i = 0; i < nw; i++) {
        size_t j = win_hash(x + i) & (cap - 1);
        while (slot[j])
            j = (j + 1) & (cap - 1);
        slot[j] = (uint32_t)i + 1;
    }
    int found = 0;
    for (size_t p = 0; !found && p + 16 <= n; p++) {
        for (size_t j = win_hash(rec + p) & (cap - 1); slot[j]; j = (j + 1) & (cap - 1))
            if (!memcmp(x + slot[j] - 1, rec + p, 16)) {
                found = 1;
                break;
            }
    }
    free(slot);
    return found;
}

static void test_input_never_crosses(void)
{
    const char *src = getenv("OCC_SRC");
    char onnx[4096], pack[] = "/tmp/occ_test_boundary_XXXXXX";
    snprintf(onnx, sizeof onnx, "%s/models/fmnist.onnx", src ? src : "..");
    int fd = mkstemp(pack);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    close(fd);
    occ_error e = {0};
    occ_pack_options po = {0};
    po.chunk_size = 64 << 10; /* several chunks: several read_chunk ocalls */
    occ_status s = occ_pack_onnx(onnx, pack, &po, NULL, &e);
    CHECK_MSG(s == OCC_OK, "%s", e.msg);
    occ_packfile *pf = NULL;
    occ_model *m = NULL;
    if (s || occ_packfile_open(pack, &pf, &e)) {
        unlink(pack);
        return;
    }
    size_t msize;
    const uint8_t *man = occ_packfile_manifest(pf, &msize);
    CHECK(occ_manifest_decode(man, msize, &m, &e) == OCC_OK);

    occ_epc_opts eo;
    occ_epc_opts_default(&eo);
    eo.cap_size = 4 << 20;
    eo.region_size = 256 << 20;
    eo.cost = OCC_EPC_COST_NONE;
    occ_epc *epc = NULL;
    CHECK(occ_epc_create(&eo, &epc, &e) == OCC_OK);
    occ_host_files files = {&pf, 1};
    occ_ocalls host;
    occ_host_files_ocalls(&files, &host);
    occ_boundary_opts bo = {.epc = epc, .record_memory = 1};
    occ_boundary *b = NULL;
    CHECK(occ_boundary_create(&bo, &host, NULL, &b, &e) == OCC_OK);
    occ_mem_provider mem;
    occ_epc_provider(epc, &mem);
    occ_ocall_reader rd = {occ_boundary_ocalls(b), 0};

    const occ_tensor *it = &m->tensors[m->inputs[0]];
    const occ_tensor *ot = &m->tensors[m->outputs[0]];
    float *x = malloc(it->size), *y = malloc(ot->size);
    /* A pseudo-random input (a fixed LCG): no repeated 16-byte windows. */
    uint64_t st = 0x243f6a8885a308d3ull;
    for (uint64_t i = 0; i < it->size / 4; i++) {
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((double)(st >> 11) / 9007199254740992.0 * 4.0 - 2.0);
    }

    occ_mode modes[] = {OCC_MODE_NATIVE, OCC_MODE_BASELINE, OCC_MODE_OCCLUMENCY};
    for (int mi = 0; mi < 3; mi++) {
        occ_engine_opts opts = {.threads = 1, .mode = modes[mi], .mem = &mem, .budget = 3 << 20};
        occ_engine *eng = NULL;
        s = occ_engine_create(m, &opts, occ_ocall_read, &rd, &eng, &e);
        CHECK_MSG(s == OCC_OK, "mode %d: %s", mi, e.msg);
        if (s)
            continue;
        const float *ins[1] = {x};
        float *outs[1] = {y};
        CHECK(occ_engine_run(eng, ins, outs, &e) == OCC_OK);
        CHECK(occ_engine_run(eng, ins, outs, &e) == OCC_OK);
        CHECK(occ_epc_check(epc, &e) == OCC_OK);
        occ_engine_free(eng);
    }

    uint8_t *rec = NULL;
    size_t n = 0;
    CHECK(occ_boundary_record_take(b, &rec, &n, &e) == OCC_OK);
    occ_boundary_stats bs;
    occ_boundary_get_stats(b, &bs);
    /* The recorder saw the traffic: all the weights came in through it. */
    CHECK_MSG(bs.calls[OCC_BCALL_READ_CHUNK] >= m->n_chunks, "%llu reads, %u chunks",
              (unsigned long long)bs.calls[OCC_BCALL_READ_CHUNK], m->n_chunks);
    CHECK(n >= m->data_size);
    uint8_t first[64];
    CHECK(occ_packfile_read(pf, 0, first, sizeof first, &e) == OCC_OK);
    CHECK(contains(rec, n, first, sizeof first)); /* public weights do cross */
    /* The plaintext input never crosses. */
    CHECK(!find_input_in(rec, n, (const uint8_t *)x, it->size));
    /* Nor the output. */
    CHECK(!contains(rec, n, (const uint8_t *)y, ot->size));
    free(rec);

    /* Control: a planted leak (the enclave sends 16 bytes of its input out,
     * at an odd offset) is found. */
    occ_boundary *b2 = NULL;
    fake sink = {0};
    occ_ocalls with_send = {&sink, NULL, f_send, NULL, NULL};
    CHECK(occ_boundary_create(&(occ_boundary_opts){.record_memory = 1}, &with_send, NULL, &b2, &e) == OCC_OK);
    const occ_ocalls *w2 = occ_boundary_ocalls(b2);
    CHECK(w2->send(w2->host, 1, (const uint8_t *)x + 101, 16, &e) == OCC_OK);
    CHECK(occ_boundary_record_take(b2, &rec, &n, &e) == OCC_OK);
    CHECK(find_input_in(rec, n, (const uint8_t *)x, it->size));
    free(rec);
    occ_boundary_free(b2);

    free(x);
    free(y);
    occ_boundary_free(b);
    occ_epc_destroy(epc);
    occ_model_free(m);
    occ_packfile_close(pf);
    unlink(pack);
}

int main(void)
{
    RUN(test_counts_and_records);
    RUN(test_input_never_crosses);
    TEST_DONE();
}
