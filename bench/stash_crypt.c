/* The stash paths in isolation (docs/benchmarks.md "Encrypted packs"): one
 * thread copies TOTAL bytes of sealed 1 MiB segments from host memory into
 * a 1 MiB enclave slot, 64 KiB pieces at a time, and checks them as the
 * engine does:
 *   memcpy          the copy alone (the floor of any check)
 *   copy+Poly1305   plain packs: one-time key per segment, MAC of the copy
 *   copy+AES-GCM    encrypted packs: decrypt the copy in place, check the tag
 *                   (the engine's own occ_segcrypt_copy_in)
 * and prints GB/s (best of ROUNDS) for each. Not built by CMake:
 *   cc -O2 -D_GNU_SOURCE -Iinclude -Isrc bench/stash_crypt.c \
 *      build/release/libocc_trusted.a build/release/libocc_common.a -lcrypto -o build/stash_crypt
 *   build/stash_crypt [MiB] [rounds] [piece KiB] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "engine/weights_crypt_int.h"

#define SEG (1u << 20)
static size_t PIECE = 64u << 10;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    size_t mib = argc > 1 ? (size_t)atoi(argv[1]) : 256;
    int rounds = argc > 2 ? atoi(argv[2]) : 5;
    if (argc > 3)
        PIECE = (size_t)atoi(argv[3]) << 10;
    size_t total = mib << 20, nseg = total / SEG;
    uint8_t *host = malloc(total), *slot = malloc(SEG), key[32], id[32] = {0};
    uint8_t(*tags)[16] = malloc(nseg * 16);
    RAND_bytes(key, 32);
    RAND_bytes(host, (int)(total > (1u << 30) ? 1u << 30 : total));
    occ_segcrypt *gcm = occ_segcrypt_new(key);
    for (size_t i = 0; i < nseg; i++)
        occ_segcrypt_seal(gcm, id, (uint32_t)i, host + i * SEG, SEG, tags[i]);
    EVP_MAC *alg = EVP_MAC_fetch(NULL, "POLY1305", NULL);
    EVP_MAC_CTX *mac = EVP_MAC_CTX_new(alg);
    double best[3] = {1e9, 1e9, 1e9};
    int failed = 0;
    for (int r = 0; r < rounds; r++) {
        double t = now();
        for (size_t i = 0; i < nseg; i++)
            for (size_t at = 0; at < SEG; at += PIECE)
                memcpy(slot + at, host + i * SEG + at, PIECE);
        t = now() - t;
        best[0] = t < best[0] ? t : best[0];
        t = now();
        for (size_t i = 0; i < nseg; i++) {
            uint8_t otk[32], tag[16];
            size_t len = 0;
            memset(otk, (int)i, 32); /* (the engine derives it with AES; same cost class) */
            EVP_MAC_init(mac, otk, 32, NULL);
            for (size_t at = 0; at < SEG; at += PIECE) {
                memcpy(slot + at, host + i * SEG + at, PIECE);
                EVP_MAC_update(mac, slot + at, PIECE);
            }
            EVP_MAC_final(mac, tag, &len, 16);
        }
        t = now() - t;
        best[1] = t < best[1] ? t : best[1];
        t = now();
        for (size_t i = 0; i < nseg; i++)
            failed += !occ_segcrypt_copy_in(gcm, id, (uint32_t)i, slot, host + i * SEG, SEG, tags[i], PIECE);
        t = now() - t;
        best[2] = t < best[2] ? t : best[2];
    }
    printf("%zu MiB in 1 MiB segments, %zu KiB pieces, 1 thread, best of %d:\n", mib, PIECE >> 10, rounds);
    printf("  memcpy           %6.2f GB/s\n", total / best[0] / 1e9);
    printf("  copy + Poly1305  %6.2f GB/s\n", total / best[1] / 1e9);
    printf("  copy + AES-GCM   %6.2f GB/s%s\n", total / best[2] / 1e9, failed ? "  (TAG FAILURES)" : "");
    EVP_MAC_CTX_free(mac);
    EVP_MAC_free(alg);
    occ_segcrypt_free(gcm);
    free(host);
    free(slot);
    free(tags);
    return failed != 0;
}
