/* Weight streaming (docs/streaming.md): the segment MAC/AEAD context that
 * seals each streamed segment at load and checks it at run, and the
 * streaming ring its loader threads and the compute thread share. Split out
 * of exec.c; the types are in exec_int.h. */
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "engine/exec_int.h"
#include "engine/weights_crypt_int.h"
#include "occ/crypto.h"
#include <openssl/evp.h>
#include <openssl/crypto.h>

/* A plain pack's weights need integrity, not confidentiality
 * (docs/streaming.md); an encrypted pack's segments are sealed with
 * AES-256-GCM instead (segmac.gcm, weights_crypt_int.h). Segment
 * i's tag is Poly1305 under a one-time key derived from the engine's key,
 * otk_i = AES-256_K(i || 0) || AES-256_K(i || 1), over header || bytes, with
 * header = model id || i || size (48 bytes, so the weights start on a
 * Poly1305 block). Each one-time key authenticates exactly one message (the
 * tag is made once, at load); Poly1305 with OpenSSL's AVX-512 code runs at
 * ~12.6 GB/s here vs GHASH's 8.8 (copy + check: 6.3 vs 5.2 GB/s per core). */
typedef struct segmac {
    EVP_CIPHER_CTX *prf;     /* AES-256-ECB under the engine key */
    EVP_MAC_CTX *mac;        /* Poly1305 */
    occ_segcrypt *gcm;       /* encrypted packs instead: AES-256-GCM under the engine key */
} segmac;

void occ_eng_segmac_free(segmac *c)
{
    if (!c)
        return;
    EVP_CIPHER_CTX_free(c->prf);
    EVP_MAC_CTX_free(c->mac);
    occ_segcrypt_free(c->gcm);
    free(c);
}

/* A context for one thread, keyed with the engine's key. */
segmac *occ_eng_segmac_new(const occ_engine *eng)
{
    segmac *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    if (eng->encrypted) {
        if (!(c->gcm = occ_segcrypt_new(eng->key))) {
            free(c);
            return NULL;
        }
        return c;
    }
    c->prf = EVP_CIPHER_CTX_new();
    c->mac = eng->mac_alg ? EVP_MAC_CTX_new(eng->mac_alg) : NULL;
    if (!c->prf || !c->mac || EVP_EncryptInit_ex(c->prf, EVP_aes_256_ecb(), NULL, eng->key, NULL) != 1 ||
        EVP_CIPHER_CTX_set_padding(c->prf, 0) != 1) {
        occ_eng_segmac_free(c);
        return NULL;
    }
    return c;
}

static int mac_begin(const occ_engine *eng, segmac *c, uint32_t i, uint64_t size)
{
    uint8_t in[32], otk[32], hdr[48];
    int len = 0, ok;
    memset(in, 0, sizeof in);
    memcpy(in, &i, 4);
    memcpy(in + 16, &i, 4);
    in[20] = 1;
    ok = EVP_EncryptUpdate(c->prf, otk, &len, in, 32) == 1 && len == 32 &&
         EVP_MAC_init(c->mac, otk, 32, NULL) == 1;
    OPENSSL_cleanse(otk, sizeof otk);
    memset(hdr, 0, sizeof hdr);
    memcpy(hdr, eng->m->model_id, 32);
    memcpy(hdr + 32, &i, 4);
    memcpy(hdr + 36, &size, 8);
    return ok && EVP_MAC_update(c->mac, hdr, sizeof hdr) == 1;
}

static int mac_update(segmac *c, const uint8_t *p, uint64_t n)
{
    return EVP_MAC_update(c->mac, p, (size_t)n) == 1;
}

static int mac_end(segmac *c, uint8_t tag[16])
{
    size_t len = 0;
    return EVP_MAC_final(c->mac, tag, &len, 16) == 1 && len == 16;
}

/* At load: the tag of segment i's verified plaintext, which goes to the
 * untrusted stash as is; for an encrypted pack, pt is encrypted in place
 * (enclave memory) and the ciphertext goes to the stash. */
occ_status occ_eng_seal(occ_engine *eng, segmac *c, uint32_t i, uint8_t *pt,
                       uint64_t size, uint8_t *stash, uint8_t tag[16], occ_error *e)
{
    int ok = c && (c->gcm ? occ_segcrypt_seal(c->gcm, eng->m->model_id, i, pt, size, tag)
                          : mac_begin(eng, c, i, size) && mac_update(c, pt, size) && mac_end(c, tag));
    if (ok)
        memcpy(stash, pt, (size_t)size);
    return ok ? OCC_OK : occ_fail(e, OCC_ERR_INTERNAL, "segment MAC failed");
}

/* At run: copies segment i from the untrusted stash into an enclave slot
 * piece by piece and authenticates each piece from the enclave copy while it
 * is still in cache. The tag is compared (constant time) only when the whole
 * copy has been hashed; the kernels read the same enclave bytes, so the host
 * changing its copy at any time has no effect. */
#define COPY_PIECE (64u << 10)
static int copy_in_verified(const occ_engine *eng, segmac *c, uint32_t i, uint8_t *dst,
                            const uint8_t *src, uint64_t size, const uint8_t tag[16])
{
    uint8_t t[16];
    if (c && c->gcm)
        return occ_segcrypt_copy_in(c->gcm, eng->m->model_id, i, dst, src, size, tag, COPY_PIECE);
    if (!c || !mac_begin(eng, c, i, size))
        return 0;
    for (uint64_t at = 0; at < size; at += COPY_PIECE) {
        uint64_t n = size - at < COPY_PIECE ? size - at : COPY_PIECE;
        memcpy(dst + at, src + at, (size_t)n);
        if (!mac_update(c, dst + at, n))
            return 0;
    }
    int ok = mac_end(c, t) && CRYPTO_memcmp(t, tag, 16) == 0;
    OPENSSL_cleanse(t, sizeof t);
    return ok;
}

/* Segment i piece by piece (src/engine/fcfuse.c): begin, pieces in order -
 * each copied from the host's src into enclave dst, then authenticated (or
 * decrypted) from dst - and end, which compares the tag in constant time.
 * Whatever the caller computes from a piece stays unreleased until end
 * returns 1. */
int occ_eng_seg_begin(const occ_engine *eng, segmac *c, uint32_t i, uint64_t size)
{
    if (c && c->gcm)
        return occ_segcrypt_open_begin(c->gcm, eng->m->model_id, i, size);
    return c && mac_begin(eng, c, i, size);
}

int occ_eng_seg_piece(segmac *c, uint8_t *dst, const uint8_t *src, uint64_t n)
{
    if (c->gcm)
        return occ_segcrypt_open_piece(c->gcm, dst, src, n);
    memcpy(dst, src, (size_t)n);
    return mac_update(c, dst, n);
}

int occ_eng_seg_end(segmac *c, const uint8_t tag[16])
{
    if (c->gcm)
        return occ_segcrypt_open_end(c->gcm, tag);
    uint8_t t[16];
    int ok = mac_end(c, t) && CRYPTO_memcmp(t, tag, 16) == 0;
    OPENSSL_cleanse(t, sizeof t);
    return ok;
}

/* ---- the streaming ring ---- */

/* The streamed sequence's index of ring position pos (see ring.skip). */
static uint32_t ring_seq(const ring *r, uint32_t pos)
{
    return pos >= r->skip_from ? pos + r->skip : pos;
}

/* Copies and authenticates position pos (claimed by the caller) into its
 * slot, then publishes it. Called without the ring lock; returns with it
 * held. on_chunk hooks are called in position order whoever loaded what. */
static void ring_load(ring *r, segmac *c, uint32_t pos)
{
    occ_engine *eng = r->eng;
    uint32_t gi = eng->streamed[ring_seq(r, pos)];
    const seg *g = &eng->segs[gi];
    uint8_t *slot = r->slot[pos % r->slots];
    /* copy in, then authenticate inside enclave memory: the host cannot
     * change what is checked after the check */
    int ok = copy_in_verified(eng, c, gi, slot, eng->stash + g->ct_off, g->size, g->tag);
    __atomic_add_fetch(&eng->chunks_loaded, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&eng->bytes_loaded, g->size, __ATOMIC_RELAXED);
    __atomic_add_fetch(&eng->bytes_verified, g->size, __ATOMIC_RELAXED);
    if (eng->encrypted)
        __atomic_add_fetch(&eng->bytes_decrypted, g->size, __ATOMIC_RELAXED);
    pthread_mutex_lock(&r->mu);
    if (ok) {
        r->ready[pos % r->slots] = pos;
        while (r->hooked < r->next && r->ready[r->hooked % r->slots] == (int64_t)r->hooked) {
            if (eng->on_chunk)
                eng->on_chunk(eng->hook_ctx, eng->streamed[ring_seq(r, r->hooked)]);
            r->hooked++;
        }
    } else if (!r->failed) {
        r->failed = 1;
        r->fail_seg = gi;
        r->stop = 1;
    }
    pthread_cond_broadcast(&r->cv);
}

/* May a position be claimed now (ring lock held)? */
static int ring_claimable(const ring *r)
{
    return !r->stop && r->next < r->n && r->next < r->released + r->slots;
}

typedef struct loader_arg {
    ring *r;
    segmac *c;
} loader_arg;

/* A loader thread: sleeps while no run is on (stop) or the ring is full,
 * otherwise claims the next position and loads it. It lives as long as the
 * engine: a run only wakes it (occ_eng_ring_begin), so no thread is created
 * or joined on the per-run path. */
int occ_engine_loader_idle = 1;

static void *loader_main(void *arg)
{
    ring *r = ((loader_arg *)arg)->r;
    segmac *c = ((loader_arg *)arg)->c;
    free(arg);
    if (occ_engine_loader_idle) { /* best effort: a host may refuse it */
        struct sched_param sp = {0};
        (void)pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp);
    }
    pthread_mutex_lock(&r->mu);
    while (!r->quit) {
        if (!ring_claimable(r)) {
            pthread_cond_wait(&r->cv, &r->mu);
            continue;
        }
        uint32_t pos = r->next++;
        r->working++;
        pthread_mutex_unlock(&r->mu);
        ring_load(r, c, pos);
        if (--r->working == 0 && r->stop)
            pthread_cond_broadcast(&r->cv); /* occ_eng_ring_end may wait for us */
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* Starts the engine's n loader threads (at create, when it streams), each
 * with its own MAC/AEAD context; they sleep until a run begins. */
occ_status occ_eng_loaders_start(occ_engine *eng, uint32_t n, occ_error *e)
{
    ring *r = &eng->ring;
    r->stop = 1; /* no run yet */
    if (!n)
        return OCC_OK;
    r->th = calloc(n, sizeof *r->th);
    r->th_ctx = calloc(n + 1u, sizeof *r->th_ctx); /* + 1: NULL-terminated */
    if (!r->th || !r->th_ctx)
        return occ_fail(e, OCC_ERR_NOMEM, "out of memory");
    for (uint32_t i = 0; i < n; i++) {
        loader_arg *a = malloc(sizeof *a);
        if (!a || !(r->th_ctx[i] = occ_eng_segmac_new(eng))) {
            free(a);
            return occ_fail(e, OCC_ERR_INTERNAL, "segment MAC setup failed");
        }
        a->r = r;
        a->c = r->th_ctx[i];
        if (pthread_create(&r->th[i], NULL, loader_main, a) != 0) {
            free(a);
            return occ_fail(e, OCC_ERR_INTERNAL, "cannot start a weight loader thread");
        }
        r->n_th = i + 1;
    }
    return OCC_OK;
}

/* Ends the loader threads (engine free). */
void occ_eng_loaders_quit(occ_engine *eng)
{
    ring *r = &eng->ring;
    pthread_mutex_lock(&r->mu);
    r->quit = r->stop = 1;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    for (uint32_t i = 0; i < r->n_th; i++)
        pthread_join(r->th[i], NULL);
    /* every context made, also that of a thread that failed to start */
    for (uint32_t i = 0; r->th_ctx && r->th_ctx[i]; i++)
        occ_eng_segmac_free(r->th_ctx[i]);
    free(r->th);
    free(r->th_ctx);
    r->th = NULL;
    r->th_ctx = NULL;
    r->n_th = 0;
}

/* A run begins: n positions (of which those from skip_from on are the
 * sequence's + skip); wakes the loaders. */
void occ_eng_ring_begin(occ_engine *eng, uint32_t n, uint32_t skip_from, uint32_t skip)
{
    ring *r = &eng->ring;
    pthread_mutex_lock(&r->mu);
    r->skip_from = skip_from;
    r->skip = skip;
    r->n = n;
    r->next = r->released = r->hooked = 0;
    r->failed = 0;
    for (uint32_t i = 0; i < r->slots; i++)
        r->ready[i] = -1;
    r->stop = 0;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

/* The compute thread's wait for position pos: rather than sleep while the
 * loaders are behind, it copies and authenticates the next free position
 * itself (so during fully connected layers both cores stream). */
const uint8_t *occ_eng_ring_get(occ_engine *eng, uint32_t pos, occ_error *e)
{
    ring *r = &eng->ring;
    pthread_mutex_lock(&r->mu);
    while (r->ready[pos % r->slots] != (int64_t)pos && !r->failed) {
        if (eng->help_ctx && ring_claimable(r)) {
            uint32_t q = r->next++;
            pthread_mutex_unlock(&r->mu);
            ring_load(r, eng->help_ctx, q);
            continue;
        }
        pthread_cond_wait(&r->cv, &r->mu);
    }
    int failed = r->ready[pos % r->slots] != (int64_t)pos;
    uint32_t fs = r->fail_seg;
    pthread_mutex_unlock(&r->mu);
    if (failed) {
        __atomic_add_fetch(&eng->integrity_failures, 1, __ATOMIC_RELAXED);
        const seg *g = &eng->segs[fs];
        const occ_node *nd = &eng->m->nodes[eng->steps[g->step].node];
        occ_fail(e, OCC_ERR_INTEGRITY,
                 "weight segment %u (node %s, part %u) failed authentication: the host's copy "
                 "was altered",
                 fs, nm(nd->name), g->part);
        return NULL;
    }
    return r->slot[pos % r->slots];
}

void occ_eng_ring_release(occ_engine *eng, uint32_t pos)
{
    ring *r = &eng->ring;
    pthread_mutex_lock(&r->mu);
    r->released = pos + 1;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

/* A run ends (done or failed): the loaders stop claiming, and the run
 * returns only once none is still filling a slot, so the next run's reset
 * of the ring cannot race a late load. */
void occ_eng_ring_end(occ_engine *eng)
{
    ring *r = &eng->ring;
    pthread_mutex_lock(&r->mu);
    r->stop = 1;
    while (r->working)
        pthread_cond_wait(&r->cv, &r->mu);
    pthread_mutex_unlock(&r->mu);
}
