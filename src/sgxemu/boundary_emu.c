/* The emulated enclave boundary: counted, charged and (for tests) recorded
 * ecall/ocall tables. See include/occ/boundary_emu.h. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "occ/boundary_emu.h"
#include "occ/fault.h"

struct occ_boundary {
    occ_ocalls inner_o, outer_o;
    occ_ecalls inner_e, outer_e;
    int has_o, has_e;
    occ_epc *epc;

    _Atomic uint64_t calls[OCC_BCALL_COUNT];
    _Atomic uint64_t bytes_in, bytes_out;

    /* recorder */
    pthread_mutex_t lock;
    _Atomic int recording; /* fast check without the lock */
    FILE *rec_file;
    int rec_memory;
    uint8_t *rec;
    size_t rec_len, rec_cap;
    int rec_failed;
    uint64_t recorded_size;
};

static const char *const call_names[OCC_BCALL_COUNT] = {
    "read_chunk", "send", "close", "now_ns", "conn_open", "conn_data", "conn_close", "run_worker", "stop",
    "get_quote", "metrics", "alloc_untrusted", "free_untrusted", "key_connect", "key_send", "key_recv",
    "key_close", "seal_store", "seal_load",
};

const char *occ_boundary_call_name(occ_boundary_call c)
{
    return (unsigned)c < OCC_BCALL_COUNT ? call_names[c] : "?";
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Appends len bytes to the memory recording (lock held). */
static void rec_append(occ_boundary *b, const void *p, size_t len)
{
    if (b->rec_failed || !len)
        return;
    if (b->rec_len + len > b->rec_cap) {
        size_t cap = b->rec_cap ? b->rec_cap : 1u << 16;
        while (cap < b->rec_len + len) {
            if (cap > SIZE_MAX / 2) {
                b->rec_failed = 1;
                return;
            }
            cap *= 2;
        }
        uint8_t *n = realloc(b->rec, cap);
        if (!n) {
            b->rec_failed = 1;
            return;
        }
        b->rec = n;
        b->rec_cap = cap;
    }
    memcpy(b->rec + b->rec_len, p, len);
    b->rec_len += len;
}

static void record(occ_boundary *b, int dir, occ_boundary_call call, uint64_t a0, uint64_t a1,
                   const void *data, uint64_t size)
{
    if (!atomic_load_explicit(&b->recording, memory_order_acquire))
        return;
    uint8_t h[OCC_BOUNDARY_RECORD_HEADER] = {0};
    h[0] = (uint8_t)(OCC_BOUNDARY_RECORD_MAGIC & 0xff);
    h[1] = (uint8_t)(OCC_BOUNDARY_RECORD_MAGIC >> 8 & 0xff);
    h[2] = (uint8_t)(OCC_BOUNDARY_RECORD_MAGIC >> 16 & 0xff);
    h[3] = (uint8_t)(OCC_BOUNDARY_RECORD_MAGIC >> 24 & 0xff);
    h[4] = (uint8_t)dir;
    h[5] = (uint8_t)call;
    put_u64(h + 8, a0);
    put_u64(h + 16, a1);
    put_u64(h + 24, data ? size : 0);
    pthread_mutex_lock(&b->lock);
    if (b->rec_file) {
        if (fwrite(h, 1, sizeof h, b->rec_file) != sizeof h ||
            (data && size && fwrite(data, 1, (size_t)size, b->rec_file) != size))
            b->rec_failed = 1;
    }
    if (b->rec_memory) {
        rec_append(b, h, sizeof h);
        if (data)
            rec_append(b, data, (size_t)size);
    }
    b->recorded_size += sizeof h + (data ? size : 0);
    pthread_mutex_unlock(&b->lock);
}

/* One crossing: count it and charge the transition on the calling thread. */
static void cross(occ_boundary *b, occ_boundary_call c)
{
    atomic_fetch_add_explicit(&b->calls[c], 1, memory_order_relaxed);
    if (b->epc)
        occ_epc_transition(b->epc);
    occ_fault_crossing(); /* test-only: a host that delays crossings (occ/fault.h) */
}

/* ---- ocalls: the enclave calls out; `host` is the boundary ---- */

static occ_status w_read_chunk(void *host, uint32_t pack_id, uint64_t offset, void *dst,
                               uint64_t size, occ_error *e)
{
    occ_boundary *b = host;
    cross(b, OCC_BCALL_READ_CHUNK);
    occ_status s = b->inner_o.read_chunk(b->inner_o.host, pack_id, offset, dst, size, e);
    if (!s) {
        /* The bytes the host wrote into enclave memory cross inwards. */
        atomic_fetch_add_explicit(&b->bytes_in, size, memory_order_relaxed);
        record(b, 0, OCC_BCALL_READ_CHUNK, pack_id, offset, dst, size);
    }
    return s;
}

/* A lost enclave (an EPC reload failed authentication) runs no more: on SGX
 * the CPU would not resume it. Its threads may still be unwinding with a
 * page of zeros, so nothing they hand out may leave, and nothing new goes
 * in. */
static int lost(occ_boundary *b)
{
    return b->epc && occ_epc_lost(b->epc);
}

static occ_status w_send(void *host, uint64_t conn, const void *buf, size_t size, occ_error *e)
{
    occ_boundary *b = host;
    if (lost(b))
        return occ_fail(e, OCC_ERR_INTEGRITY, "the enclave is lost (EPC integrity failure): nothing leaves it");
    cross(b, OCC_BCALL_SEND);
    atomic_fetch_add_explicit(&b->bytes_out, size, memory_order_relaxed);
    record(b, 1, OCC_BCALL_SEND, conn, 0, buf, size);
    return b->inner_o.send(b->inner_o.host, conn, buf, size, e);
}

static void w_close(void *host, uint64_t conn)
{
    occ_boundary *b = host;
    cross(b, OCC_BCALL_CLOSE);
    record(b, 1, OCC_BCALL_CLOSE, conn, 0, NULL, 0);
    b->inner_o.close(b->inner_o.host, conn);
}

static uint64_t w_now_ns(void *host)
{
    occ_boundary *b = host;
    cross(b, OCC_BCALL_NOW_NS);
    uint64_t t = b->inner_o.now_ns(b->inner_o.host);
    record(b, 0, OCC_BCALL_NOW_NS, t, 0, NULL, 0);
    return t;
}

static occ_status w_get_quote(void *host, const uint8_t report_data[64], uint8_t *dst, size_t cap, size_t *size,
                              occ_error *e)
{
    occ_boundary *b = host;
    cross(b, OCC_BCALL_GET_QUOTE);
    record(b, 1, OCC_BCALL_GET_QUOTE, 0, 0, report_data, 64);
    occ_status s = b->inner_o.get_quote(b->inner_o.host, report_data, dst, cap, size, e);
    if (!s && *size <= cap) {
        atomic_fetch_add_explicit(&b->bytes_in, *size, memory_order_relaxed);
        record(b, 0, OCC_BCALL_GET_QUOTE, 0, 0, dst, *size);
    }
    return s;
}

static size_t w_metrics(void *host, char *dst, size_t cap)
{
    occ_boundary *b = host;
    cross(b, OCC_BCALL_METRICS);
    size_t n = b->inner_o.metrics(b->inner_o.host, dst, cap);
    if (n > cap)
        n = cap;
    atomic_fetch_add_explicit(&b->bytes_in, n, memory_order_relaxed);
    record(b, 0, OCC_BCALL_METRICS, 0, 0, dst, n);
    return n;
}

static void *w_alloc_untrusted(void *host, size_t size)
{
    occ_boundary *b = host;
    cross(b, OCC_BCALL_ALLOC_UNTRUSTED);
    void *p = b->inner_o.alloc_untrusted(b->inner_o.host, size);
    record(b, 0, OCC_BCALL_ALLOC_UNTRUSTED, (uint64_t)(uintptr_t)p, size, NULL, 0);
    return p;
}

static void w_free_untrusted(void *host, void *p)
{
    occ_boundary *b = host;
    cross(b, OCC_BCALL_FREE_UNTRUSTED);
    record(b, 1, OCC_BCALL_FREE_UNTRUSTED, (uint64_t)(uintptr_t)p, 0, NULL, 0);
    b->inner_o.free_untrusted(b->inner_o.host, p);
}

/* Key fetch: the target (public) goes out, TLS records both ways. */
static occ_status w_key_connect(void *host, const char *target, uint64_t *handle, occ_error *e)
{
    occ_boundary *b = host;
    if (lost(b))
        return occ_fail(e, OCC_ERR_INTEGRITY, "the enclave is lost (EPC integrity failure): nothing leaves it");
    cross(b, OCC_BCALL_KEY_CONNECT);
    size_t n = strlen(target);
    atomic_fetch_add_explicit(&b->bytes_out, n, memory_order_relaxed);
    record(b, 1, OCC_BCALL_KEY_CONNECT, 0, 0, target, n);
    uint64_t h = 0;
    occ_status s = b->inner_o.key_connect(b->inner_o.host, target, &h, e);
    *handle = h;
    return s;
}

static occ_status w_key_send(void *host, uint64_t handle, const void *buf, size_t size, occ_error *e)
{
    occ_boundary *b = host;
    if (lost(b))
        return occ_fail(e, OCC_ERR_INTEGRITY, "the enclave is lost (EPC integrity failure): nothing leaves it");
    cross(b, OCC_BCALL_KEY_SEND);
    atomic_fetch_add_explicit(&b->bytes_out, size, memory_order_relaxed);
    record(b, 1, OCC_BCALL_KEY_SEND, handle, 0, buf, size);
    return b->inner_o.key_send(b->inner_o.host, handle, buf, size, e);
}

/* What a host call that fills an enclave buffer (key_recv, seal_load)
 * claims to have written: checked against the buffer, then counted and
 * recorded as coming in; *got = 0 on failure. */
static occ_status took_in(occ_boundary *b, occ_boundary_call c, uint64_t handle, occ_status s, size_t n,
                          const void *dst, size_t cap, size_t *got, occ_error *e)
{
    if (!s && n > cap)
        s = occ_fail(e, OCC_ERR_IO, "%s: the host claims %zu bytes in a %zu-byte buffer", call_names[c], n, cap);
    if (!s) {
        atomic_fetch_add_explicit(&b->bytes_in, n, memory_order_relaxed);
        record(b, 0, c, handle, 0, dst, n);
    }
    *got = s ? 0 : n;
    return s;
}

static occ_status w_key_recv(void *host, uint64_t handle, void *dst, size_t cap, size_t *got, occ_error *e)
{
    occ_boundary *b = host;
    if (lost(b))
        return occ_fail(e, OCC_ERR_INTEGRITY, "the enclave is lost (EPC integrity failure): it takes no data");
    cross(b, OCC_BCALL_KEY_RECV);
    size_t n = 0;
    occ_status s = b->inner_o.key_recv(b->inner_o.host, handle, dst, cap, &n, e);
    return took_in(b, OCC_BCALL_KEY_RECV, handle, s, n, dst, cap, got, e);
}

static void w_key_close(void *host, uint64_t handle)
{
    occ_boundary *b = host;
    cross(b, OCC_BCALL_KEY_CLOSE);
    record(b, 1, OCC_BCALL_KEY_CLOSE, handle, 0, NULL, 0);
    b->inner_o.key_close(b->inner_o.host, handle);
}

static occ_status w_seal_store(void *host, const uint8_t id[32], const void *blob, size_t size, occ_error *e)
{
    occ_boundary *b = host;
    if (lost(b))
        return occ_fail(e, OCC_ERR_INTEGRITY, "the enclave is lost (EPC integrity failure): nothing leaves it");
    cross(b, OCC_BCALL_SEAL_STORE);
    atomic_fetch_add_explicit(&b->bytes_out, size, memory_order_relaxed);
    record(b, 1, OCC_BCALL_SEAL_STORE, 0, 0, blob, size);
    return b->inner_o.seal_store(b->inner_o.host, id, blob, size, e);
}

static occ_status w_seal_load(void *host, const uint8_t id[32], void *dst, size_t cap, size_t *got, occ_error *e)
{
    occ_boundary *b = host;
    if (lost(b))
        return occ_fail(e, OCC_ERR_INTEGRITY, "the enclave is lost (EPC integrity failure): it takes no data");
    cross(b, OCC_BCALL_SEAL_LOAD);
    size_t n = 0;
    occ_status s = b->inner_o.seal_load(b->inner_o.host, id, dst, cap, &n, e);
    return took_in(b, OCC_BCALL_SEAL_LOAD, 0, s, n, dst, cap, got, e);
}

/* ---- ecalls: the host calls in; `enclave` is the boundary ---- */

static occ_status w_conn_open(void *enclave, uint64_t conn, occ_error *e)
{
    occ_boundary *b = enclave;
    if (lost(b))
        return occ_fail(e, OCC_ERR_INTEGRITY, "the enclave is lost (EPC integrity failure): it takes no connection");
    cross(b, OCC_BCALL_CONN_OPEN);
    record(b, 0, OCC_BCALL_CONN_OPEN, conn, 0, NULL, 0);
    return b->inner_e.conn_open(b->inner_e.enclave, conn, e);
}

static occ_status w_conn_data(void *enclave, uint64_t conn, const void *buf, size_t size,
                              occ_error *e)
{
    occ_boundary *b = enclave;
    if (lost(b))
        return occ_fail(e, OCC_ERR_INTEGRITY, "the enclave is lost (EPC integrity failure): it takes no data");
    cross(b, OCC_BCALL_CONN_DATA);
    atomic_fetch_add_explicit(&b->bytes_in, size, memory_order_relaxed);
    record(b, 0, OCC_BCALL_CONN_DATA, conn, 0, buf, size);
    return b->inner_e.conn_data(b->inner_e.enclave, conn, buf, size, e);
}

static void w_conn_close(void *enclave, uint64_t conn)
{
    occ_boundary *b = enclave;
    cross(b, OCC_BCALL_CONN_CLOSE);
    record(b, 0, OCC_BCALL_CONN_CLOSE, conn, 0, NULL, 0);
    b->inner_e.conn_close(b->inner_e.enclave, conn);
}

static occ_status w_run_worker(void *enclave, int worker_index, occ_error *e)
{
    occ_boundary *b = enclave;
    cross(b, OCC_BCALL_RUN_WORKER);
    record(b, 0, OCC_BCALL_RUN_WORKER, (uint64_t)(int64_t)worker_index, 0, NULL, 0);
    return b->inner_e.run_worker(b->inner_e.enclave, worker_index, e);
}

static void w_stop(void *enclave)
{
    occ_boundary *b = enclave;
    cross(b, OCC_BCALL_STOP);
    record(b, 0, OCC_BCALL_STOP, 0, 0, NULL, 0);
    b->inner_e.stop(b->inner_e.enclave);
}

occ_status occ_boundary_create(const occ_boundary_opts *opts, const occ_ocalls *inner_ocalls,
                               const occ_ecalls *inner_ecalls, occ_boundary **out, occ_error *e)
{
    *out = NULL;
    occ_boundary *b = calloc(1, sizeof *b);
    if (!b)
        return occ_fail(e, OCC_ERR_NOMEM, "boundary: out of memory");
    if (pthread_mutex_init(&b->lock, NULL)) {
        free(b);
        return occ_fail(e, OCC_ERR_INTERNAL, "boundary: cannot create a mutex");
    }
    if (opts)
        b->epc = opts->epc;
    if (b->epc) { /* the emulated CPU tells the enclave its own range */
        occ_epc_stats st;
        occ_epc_get_stats(b->epc, &st);
        occ_enclave_range_set(occ_epc_base(b->epc), (size_t)st.region_size);
    }
    if (inner_ocalls) {
        b->has_o = 1;
        b->inner_o = *inner_ocalls;
        b->outer_o.host = b;
        b->outer_o.read_chunk = inner_ocalls->read_chunk ? w_read_chunk : NULL;
        b->outer_o.send = inner_ocalls->send ? w_send : NULL;
        b->outer_o.close = inner_ocalls->close ? w_close : NULL;
        b->outer_o.now_ns = inner_ocalls->now_ns ? w_now_ns : NULL;
        b->outer_o.get_quote = inner_ocalls->get_quote ? w_get_quote : NULL;
        b->outer_o.metrics = inner_ocalls->metrics ? w_metrics : NULL;
        b->outer_o.alloc_untrusted = inner_ocalls->alloc_untrusted ? w_alloc_untrusted : NULL;
        b->outer_o.free_untrusted = inner_ocalls->free_untrusted ? w_free_untrusted : NULL;
        int keys = inner_ocalls->key_connect && inner_ocalls->key_send && inner_ocalls->key_recv &&
                   inner_ocalls->key_close;
        b->outer_o.key_connect = keys ? w_key_connect : NULL;
        b->outer_o.key_send = keys ? w_key_send : NULL;
        b->outer_o.key_recv = keys ? w_key_recv : NULL;
        b->outer_o.key_close = keys ? w_key_close : NULL;
        int seal = inner_ocalls->seal_store && inner_ocalls->seal_load;
        b->outer_o.seal_store = seal ? w_seal_store : NULL;
        b->outer_o.seal_load = seal ? w_seal_load : NULL;
    }
    if (inner_ecalls) {
        b->has_e = 1;
        b->inner_e = *inner_ecalls;
        b->outer_e.enclave = b;
        b->outer_e.conn_open = inner_ecalls->conn_open ? w_conn_open : NULL;
        b->outer_e.conn_data = inner_ecalls->conn_data ? w_conn_data : NULL;
        b->outer_e.conn_close = inner_ecalls->conn_close ? w_conn_close : NULL;
        b->outer_e.run_worker = inner_ecalls->run_worker ? w_run_worker : NULL;
        b->outer_e.stop = inner_ecalls->stop ? w_stop : NULL;
    }
    if (opts && (opts->record_file || opts->record_memory))
        occ_boundary_record_start(b, opts->record_file, opts->record_memory);
    *out = b;
    return OCC_OK;
}

void occ_boundary_free(occ_boundary *b)
{
    if (!b)
        return;
    pthread_mutex_destroy(&b->lock);
    free(b->rec);
    free(b);
}

const occ_ocalls *occ_boundary_ocalls(occ_boundary *b)
{
    return b && b->has_o ? &b->outer_o : NULL;
}

const occ_ecalls *occ_boundary_ecalls(occ_boundary *b)
{
    return b && b->has_e ? &b->outer_e : NULL;
}

void occ_boundary_get_stats(occ_boundary *b, occ_boundary_stats *out)
{
    memset(out, 0, sizeof *out);
    for (int i = 0; i < OCC_BCALL_COUNT; i++) {
        out->calls[i] = atomic_load_explicit(&b->calls[i], memory_order_relaxed);
        if (i < OCC_BCALL_CONN_OPEN || i > OCC_BCALL_STOP) /* ocalls are numbered around the ecalls */
            out->ocalls += out->calls[i];
        else
            out->ecalls += out->calls[i];
    }
    out->transitions = out->ocalls + out->ecalls;
    out->bytes_in = atomic_load_explicit(&b->bytes_in, memory_order_relaxed);
    out->bytes_out = atomic_load_explicit(&b->bytes_out, memory_order_relaxed);
    pthread_mutex_lock(&b->lock);
    out->recorded_size = b->recorded_size;
    pthread_mutex_unlock(&b->lock);
}

void occ_boundary_record_start(occ_boundary *b, FILE *file, int memory)
{
    pthread_mutex_lock(&b->lock);
    b->rec_file = file;
    b->rec_memory = memory != 0;
    atomic_store_explicit(&b->recording, file || memory, memory_order_release);
    pthread_mutex_unlock(&b->lock);
}

void occ_boundary_record_stop(occ_boundary *b)
{
    pthread_mutex_lock(&b->lock);
    atomic_store_explicit(&b->recording, 0, memory_order_release);
    if (b->rec_file)
        fflush(b->rec_file);
    b->rec_file = NULL;
    b->rec_memory = 0;
    pthread_mutex_unlock(&b->lock);
}

occ_status occ_boundary_record_take(occ_boundary *b, uint8_t **out, size_t *size, occ_error *e)
{
    pthread_mutex_lock(&b->lock);
    int failed = b->rec_failed;
    *out = b->rec;
    *size = b->rec_len;
    b->rec = NULL;
    b->rec_len = b->rec_cap = 0;
    b->rec_failed = 0;
    pthread_mutex_unlock(&b->lock);
    if (failed)
        return occ_fail(e, OCC_ERR_NOMEM, "boundary: the recording is incomplete (out of memory or write error)");
    return OCC_OK;
}

/* ---- trusted side: the engine's read callback as an ocall ---- */

occ_status occ_ocall_read(void *reader, uint64_t offset, void *dst, uint64_t size, occ_error *e)
{
    const occ_ocall_reader *r = reader;
    if (!r || !r->ocalls || !r->ocalls->read_chunk)
        return occ_fail(e, OCC_ERR_INVALID, "no read_chunk ocall");
    return r->ocalls->read_chunk(r->ocalls->host, r->pack_id, offset, dst, size, e);
}
