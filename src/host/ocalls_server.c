/* The host's side of the ocall table for the server: TLS records out
 * through the network loop, closes, a monotonic clock, weight chunks read
 * from the pack files (untrusted bytes; the enclave verifies them). */
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

void occ_host_ocalls(occ_host_ctx *ctx, occ_ocalls *out)
{
    out->host = ctx;
    out->read_chunk = oc_read_chunk;
    out->send = oc_send;
    out->close = oc_close;
    out->now_ns = oc_now_ns;
    occ_host_key_ocalls(out); /* key fetch: src/host/ocalls_keys.c */
}
