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

#include "occ/boundary_emu.h"
#include "occ/engine.h"
#include "occ/epc.h"
#include "test_ops_util.h"

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
    occ_ocalls o = {.host = &host, .read_chunk = f_read, .send = f_send, .close = f_close, .now_ns = f_now};
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
    occ_ocalls partial = {.host = &host, .read_chunk = f_read};
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

/* The host side: serves the model's data section from its memory. */
static occ_status host_read(void *host, uint32_t pack, uint64_t off, void *dst, uint64_t size,
                            occ_error *e)
{
    return tb_read(host, off, dst, size, e);
}

/* x[1,16,8,8] -> Conv(64,3x3)+Relu -> Flatten -> Gemm(100): 1.6 MiB of
 * weights in 64 KiB chunks. */
static void build(tb *b)
{
    tb_init(b);
    int64_t xd[4] = {1, 16, 8, 8}, w1d[4] = {64, 16, 3, 3}, b1d[1] = {64};
    int64_t gd[2] = {100, 64 * 64}, gcd[1] = {100};
    float *bufs[4] = {rand_buf(64 * 16 * 9), rand_buf(64), rand_buf(100 * 64 * 64), rand_buf(100)};
    int x = tb_input(b, "x", 4, xd);
    int w1 = tb_weight(b, "w1", 4, w1d, bufs[0]), b1 = tb_weight(b, "b1", 1, b1d, bufs[1]);
    int gw = tb_weight(b, "gw", 2, gd, bufs[2]), gc = tb_weight(b, "gc", 1, gcd, bufs[3]);
    int c1 = tb_act(b, "c1"), r1 = tb_act(b, "r1"), f = tb_act(b, "f"), y = tb_act(b, "y");
    static int64_t pads[4] = {1, 1, 1, 1};
    occ_attr pa[1] = {A_INTS("pads", pads, 4)};
    int i1[3] = {x, w1, b1}, i2[1] = {c1}, i3[1] = {r1};
    tb_node(b, "Conv", 3, i1, c1, 1, pa)->name = "conv1";
    tb_node(b, "Relu", 1, i2, r1, 0, NULL);
    tb_node(b, "Flatten", 1, i3, f, 0, NULL);
    occ_attr ga[1] = {A_INT("transB", 1)};
    int i4[3] = {f, gw, gc};
    tb_node(b, "Gemm", 3, i4, y, 1, ga)->name = "fc";
    tb_output(b, y);
    occ_error e = {0};
    CHECK_MSG(tb_finish(b, &e) == OCC_OK, "finish: %s", e.msg);
    occ_chunk old[TB_MAX];
    uint32_t n = b->m.n_chunks, k = 0;
    memcpy(old, b->chunks, n * sizeof *old);
    for (uint32_t i = 0; i < n; i++)
        for (uint64_t at = 0; at < old[i].size && k < TB_MAX; at += 64 << 10) {
            occ_chunk *c = &b->chunks[k++];
            c->offset = old[i].offset + at;
            c->size = old[i].size - at < (64 << 10) ? old[i].size - at : (64 << 10);
            CHECK(occ_sha256(b->data + c->offset, (size_t)c->size, c->sha256) == OCC_OK);
        }
    b->m.n_chunks = k;
    for (int i = 0; i < 4; i++)
        free(bufs[i]);
}

static void test_input_never_crosses(void)
{
    static tb net;
    build(&net);
    const occ_model *m = &net.m;
    occ_error e = {0};
    occ_status s;
    occ_epc_opts eo;
    occ_epc_opts_default(&eo);
    eo.cap_size = 1 << 20; /* small: the baseline pages, so feature maps get sealed out */
    eo.region_size = 32 << 20;
    eo.cost = OCC_EPC_COST_NONE;
    occ_epc *epc = NULL;
    CHECK(occ_epc_create(&eo, &epc, &e) == OCC_OK);
    if (!epc) {
        tb_free(&net);
        return;
    }
    occ_ocalls host = {.host = &net, .read_chunk = host_read};
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
    uint64_t backing_pages = 0;
    for (int mi = 0; mi < 3; mi++) {
        /* 1.5 MiB: the engine counts whole EPC pages (occ_mem_provider.granularity). */
        occ_engine_opts opts = {.threads = 1, .mode = modes[mi], .mem = &mem, .budget = 3 << 19};
        occ_engine *eng = NULL;
        s = occ_engine_create(m, &opts, occ_ocall_read, &rd, &eng, &e);
        CHECK_MSG(s == OCC_OK, "mode %d: %s", mi, e.msg);
        if (s)
            continue;
        const float *ins[1] = {x};
        float *outs[1] = {y};
        CHECK(occ_engine_run(eng, (const void *const *)ins, (void *const *)outs, &e) == OCC_OK);
        CHECK(occ_engine_run(eng, (const void *const *)ins, (void *const *)outs, &e) == OCC_OK);
        CHECK(occ_epc_check(epc, &e) == OCC_OK);
        occ_epc_stats es;
        occ_epc_get_stats(epc, &es);
        if (es.peak_allocated_size / OCC_EPC_PAGE_SIZE > backing_pages)
            backing_pages = es.peak_allocated_size / OCC_EPC_PAGE_SIZE;
        occ_engine_free(eng);
    }
    occ_epc_stats es;
    occ_epc_get_stats(epc, &es);
    CHECK_MSG(es.evictions > 100, "only %llu evictions: the backing store scan would prove little",
              (unsigned long long)es.evictions);

    uint8_t *rec = NULL;
    size_t n = 0;
    CHECK(occ_boundary_record_take(b, &rec, &n, &e) == OCC_OK);
    occ_boundary_stats bs;
    occ_boundary_get_stats(b, &bs);
    /* The recorder saw the traffic: all the weights came in through it. */
    CHECK_MSG(bs.calls[OCC_BCALL_READ_CHUNK] >= m->n_chunks, "%llu reads, %u chunks",
              (unsigned long long)bs.calls[OCC_BCALL_READ_CHUNK], m->n_chunks);
    CHECK(n >= m->data_size);
    CHECK(contains(rec, n, net.data, 64)); /* public weights do cross */
    /* The plaintext input never crosses; nor the output. */
    CHECK(!find_input_in(rec, n, (const uint8_t *)x, it->size));
    CHECK(!contains(rec, n, (const uint8_t *)y, ot->size));
    free(rec);

    /* Nor does it appear in what the host holds of the EPC: the sealed
     * backing copies of every evicted page (ciphertext, nonce, tag). */
    int leaked = 0;
    for (uint64_t p = 0; p < backing_pages + 16 && !leaked; p++) {
        occ_epc_backing bk;
        if (occ_epc_debug_backing(epc, p, &bk) != OCC_OK)
            break;
        leaked = find_input_in(bk.ciphertext, OCC_EPC_PAGE_SIZE, (const uint8_t *)x, it->size) ||
                 find_input_in(bk.meta, bk.meta_size, (const uint8_t *)x, it->size);
    }
    CHECK_MSG(!leaked, "input bytes in the EPC backing store");

    /* Control: a planted leak (the enclave sends 16 bytes of its input out,
     * at an odd offset) is found. */
    occ_boundary *b2 = NULL;
    fake sink = {0};
    occ_ocalls with_send = {.host = &sink, .send = f_send};
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
    tb_free(&net);
}

int main(void)
{
    RUN(test_counts_and_records);
    RUN(test_input_never_crosses);
    TEST_DONE();
}
