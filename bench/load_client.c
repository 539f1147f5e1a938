/* occ-load: the attested load client of `make scale-demo` (docs/keys.md).
 *
 *   occ-load URL MODEL POLICY ROOT INPUTS.bin WANT.bin THREADS SECONDS
 *
 * THREADS loops, each on its own attested connection (the client library
 * verifies the server's RA-TLS quote against POLICY and ROOT in every
 * handshake, before a byte is sent), send the inputs of INPUTS.bin in turn
 * until SECONDS have passed, each connection replaced by a fresh one every
 * 25 requests (so the balancer spreads them). A request whose answer does
 * not arrive (reset, closed, timed out) is sent again on a fresh attested
 * connection, up to 5 attempts. Prints
 *   answered N lost L retried R wrong W
 * answered: an answer arrived and equals WANT.bin's (to 1e-5 relative); retried:
 * requests that needed more than one attempt; lost: requests never
 * answered; wrong: answers that differ (counted in lost by the demo). */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "occ/attest.h"
#include "occ/client.h"

static const char *g_url, *g_model;
static occ_attest_policy g_pol;
static X509 *g_root;
static float *g_in, *g_want;
static size_t g_n, g_in_count, g_out_count;
static double g_deadline;
static _Atomic long g_answered, g_lost, g_retried, g_wrong;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static float *read_all(const char *path, size_t *count)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    float *p = n > 0 ? malloc((size_t)n) : NULL;
    if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    fclose(f);
    *count = p ? (size_t)n / 4 : 0;
    return p;
}

/* equal up to float rounding: the server batches concurrent requests */
static int same(const float *a, const float *b)
{
    for (size_t j = 0; j < g_out_count; j++) {
        float d = fabsf(a[j] - b[j]), m = fabsf(b[j]) > 1.0f ? fabsf(b[j]) : 1.0f;
        if (!(d <= 1e-5f * m))
            return 0;
    }
    return 1;
}

static void *loop(void *arg)
{
    size_t k = (size_t)(uintptr_t)arg;
    occ_client *c = NULL;
    occ_client_opts o = {&g_pol, g_root, OCC_ATTEST_NOW, 5000, g_model, 0};
    int64_t dims[4] = {1, 1, 28, 28};
    int on_conn = 0;
    char input_name[256] = "";
    while (now_s() < g_deadline) {
        size_t i = k++ % g_n;
        int attempts = 0, done = 0;
        while (attempts < 5 && !done) {
            attempts++;
            occ_error e = {0};
            if (!c || on_conn >= 25) {
                occ_client_close(c);
                c = NULL;
                on_conn = 0;
                if (occ_client_connect(g_url, &o, NULL, &c, &e)) {
                    c = NULL;
                    usleep(50000);
                    continue;
                }
                if (!input_name[0]) {
                    occ_client_model_info info;
                    if (occ_client_model_info_get(c, g_model, &info, &e)) {
                        occ_client_close(c);
                        c = NULL;
                        continue;
                    }
                    snprintf(input_name, sizeof input_name, "%s", info.input_name);
                    occ_client_model_info_free(&info);
                }
            }
            occ_client_tensor *outs = NULL;
            size_t n_outs = 0;
            if (occ_client_infer(c, g_model, input_name, dims, 4, g_in + i * g_in_count, 1, &outs, &n_outs, &e)) {
                occ_client_close(c); /* not answered: a fresh attested connection for the retry */
                c = NULL;
                continue;
            }
            on_conn++;
            done = 1;
            if (n_outs != 1 || outs[0].count != g_out_count || !same(outs[0].data, g_want + i * g_out_count))
                atomic_fetch_add(&g_wrong, 1);
            else
                atomic_fetch_add(&g_answered, 1);
            occ_client_tensors_free(outs, n_outs);
        }
        if (!done)
            atomic_fetch_add(&g_lost, 1);
        if (attempts > 1)
            atomic_fetch_add(&g_retried, 1);
    }
    occ_client_close(c);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 9) {
        fprintf(stderr, "usage: occ-load URL MODEL POLICY ROOT INPUTS.bin WANT.bin THREADS SECONDS\n");
        return 2;
    }
    occ_error e = {0};
    g_url = argv[1];
    g_model = argv[2];
    if (occ_attest_policy_load(argv[3], &g_pol, &e) || occ_attest_root_load(argv[4], &g_root, &e)) {
        fprintf(stderr, "occ-load: %s\n", e.msg);
        return 2;
    }
    size_t in_total = 0, want_total = 0;
    g_in = read_all(argv[5], &in_total);
    g_want = read_all(argv[6], &want_total);
    g_in_count = 28 * 28;
    int threads = atoi(argv[7]);
    if (!g_in || !g_want || in_total % g_in_count || threads < 1 || threads > 256) {
        fprintf(stderr, "occ-load: bad inputs or thread count\n");
        return 2;
    }
    g_n = in_total / g_in_count;
    g_out_count = want_total / g_n;
    g_deadline = now_s() + atof(argv[8]);
    pthread_t th[256];
    for (int t = 0; t < threads; t++)
        pthread_create(&th[t], NULL, loop, (void *)(uintptr_t)((size_t)t * 7));
    for (int t = 0; t < threads; t++)
        pthread_join(th[t], NULL);
    printf("answered %ld lost %ld retried %ld wrong %ld\n", (long)g_answered, (long)g_lost, (long)g_retried,
           (long)g_wrong);
    X509_free(g_root);
    free(g_in);
    free(g_want);
    return 0;
}
