/* The host's side of the ocall table for the server: TLS records out
 * through the network loop, closes, a monotonic clock, weight chunks read
 * from the pack files (untrusted bytes; the enclave verifies them). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "occ/fault.h"
#include "occ/net.h"

static occ_status oc_read_chunk(void *host, uint32_t pack_id, uint64_t offset, void *dst, uint64_t size,
                                occ_error *e)
{
    occ_host_ctx *h = host;
    if (pack_id >= h->n_packs || !h->packs[pack_id])
        return occ_fail(e, OCC_ERR_INVALID, "no pack %u", pack_id);
    occ_status st = occ_fault_read(&size, e); /* test-only: short read or error */
    return st ? st : occ_packfile_read(h->packs[pack_id], offset, dst, size, e);
}

static occ_status oc_send(void *host, uint64_t conn, const void *buf, size_t size, occ_error *e)
{
    occ_host_ctx *h = host;
    if (!h->net)
        return occ_fail(e, OCC_ERR_IO, "no network");
    return occ_net_send(h->net, conn, buf, size, e);
}

static void oc_close(void *host, uint64_t conn)
{
    occ_host_ctx *h = host;
    if (h->net)
        occ_net_close(h->net, conn);
}

static uint64_t oc_now_ns(void *host)
{
    (void)host;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static occ_status oc_get_quote(void *host, const uint8_t report_data[64], uint8_t *dst, size_t cap, size_t *size,
                               occ_error *e)
{
    occ_host_ctx *h = host;
    *size = 0;
    if (!h->quote)
        return occ_fail(e, OCC_ERR_UNSUPPORTED, "no quoting service");
    uint8_t *q = NULL;
    size_t qs = 0;
    occ_status st = h->quote(h->quote_ctx, report_data, &q, &qs, e);
    if (!st && qs > cap)
        st = occ_fail(e, OCC_ERR_FORMAT, "the quote (%zu bytes) is larger than the enclave's %zu-byte buffer", qs, cap);
    if (!st) {
        memcpy(dst, q, qs);
        *size = qs;
    }
    free(q);
    return st;
}

static size_t oc_metrics(void *host, char *dst, size_t cap)
{
    occ_host_ctx *h = host;
    return h->metrics ? h->metrics(h->metrics_ctx, dst, cap) : 0;
}

static void *oc_alloc_untrusted(void *host, size_t size)
{
    (void)host;
    return malloc(size);
}

static void oc_free_untrusted(void *host, void *p)
{
    (void)host;
    free(p);
}

void occ_host_ocalls(occ_host_ctx *ctx, occ_ocalls *out)
{
    out->host = ctx;
    out->read_chunk = oc_read_chunk;
    out->send = oc_send;
    out->close = oc_close;
    out->now_ns = oc_now_ns;
    out->get_quote = oc_get_quote;
    out->metrics = oc_metrics;
    out->alloc_untrusted = oc_alloc_untrusted;
    out->free_untrusted = oc_free_untrusted;
    occ_host_key_ocalls(out); /* key fetch: src/host/ocalls_keys.c */
}
