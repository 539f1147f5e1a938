/* 1-D convolutions of speech models (wav2vec2's feature extractor and its
 * grouped positional convolution), issue 13:
 *  - a 1-D Conv whose output is read plain (a graph output) runs: its output
 *    was a blocked 4-D layout that could not be reordered to the rank-3
 *    plain shadow ("oneDNN reorder to plain failed (status 2)");
 *  - a grouped 1-D Conv with more weights than the budget allows in one
 *    segment is split at group boundaries and streamed: occlumency within
 *    its budget equals native, both equal a naive reference. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "occ/engine.h"
#include "test_ops_util.h"

/* y[o][t] = b[o] + sum_{c in o's group, k} w[o][c'][k] x[c][t*s + k - pad] */
static void conv1d_ref(const float *x, int C, int T, const float *w, const float *b, int M,
                       int K, int G, int S, int P, float *y, int TO)
{
    int cin = C / G, mper = M / G;
    for (int o = 0; o < M; o++)
        for (int t = 0; t < TO; t++) {
            double s = b ? b[o] : 0.0;
            int g = o / mper;
            for (int c = 0; c < cin; c++)
                for (int k = 0; k < K; k++) {
                    int ti = t * S + k - P;
                    if (ti >= 0 && ti < T)
                        s += (double)w[(o * cin + c) * K + k] * x[(g * cin + c) * T + ti];
                }
            y[o * TO + t] = (float)s;
        }
}

/* 128 KiB chunks, as a pack cuts them (the builder's one chunk per node
 * would need a 1 MiB load buffer) */
static void rechunk(tb *b)
{
    const uint64_t cs = 128u << 10;
    b->m.n_chunks = 0;
    for (uint64_t off = 0; off < b->m.data_size; off += cs) {
        occ_chunk *c = &b->chunks[b->m.n_chunks++];
        c->offset = off;
        c->size = b->m.data_size - off < cs ? b->m.data_size - off : cs;
        CHECK(occ_sha256(b->data + off, (size_t)c->size, c->sha256) == 0);
    }
}

static occ_status run(const tb *b, occ_mode mode, uint64_t budget, const float *x, float *y,
                      occ_engine_stats *st_out)
{
    occ_error e = {0};
    occ_engine_opts opts = {.threads = 1, .loader_threads = 1, .mode = mode, .budget = budget};
    occ_engine *eng = NULL;
    occ_status st = occ_engine_create(&b->m, &opts, tb_read, (void *)b, &eng, &e);
    CHECK_MSG(st == OCC_OK, "mode %d budget %llu: create: %s", (int)mode,
              (unsigned long long)budget, e.msg);
    if (st)
        return st;
    const void *ins[1] = {x};
    void *outs[1] = {y};
    st = occ_engine_run(eng, ins, outs, &e);
    CHECK_MSG(st == OCC_OK, "run: %s", e.msg);
    if (st_out)
        occ_engine_get_stats(eng, st_out);
    occ_engine_free(eng);
    return st;
}

static void test_conv1d_plain_output(void)
{
    enum { C = 1, T = 400, M = 64, K = 10, S = 5, TO = (T - K) / S + 1 };
    static tb b;
    tb_init(&b);
    int64_t dx[3] = {1, C, T}, dw[3] = {M, C, K}, db[1] = {M};
    float *x = rand_buf(C * T), *w = rand_buf(M * C * K), *bias = rand_buf(M);
    int ix = tb_input(&b, "x", 3, dx);
    int iw = tb_weight(&b, "w", 3, dw, w), ib = tb_weight(&b, "b", 1, db, bias);
    int y = tb_act(&b, "y");
    int in[3] = {ix, iw, ib};
    int64_t ks[1] = {K}, st[1] = {S};
    occ_attr at[2] = {A_INTS("kernel_shape", ks, 1), A_INTS("strides", st, 1)};
    tb_node(&b, "Conv", 3, in, y, 2, at);
    tb_output(&b, y);
    occ_error e = {0};
    CHECK_MSG(tb_finish(&b, &e) == OCC_OK, "%s", e.msg);
    static float ref[M * TO], out[M * TO];
    conv1d_ref(x, C, T, w, bias, M, K, 1, S, 0, ref, TO);
    if (run(&b, OCC_MODE_NATIVE, 0, x, out, NULL) == OCC_OK)
        CHECK_MSG(max_rel_err(out, ref, M * TO) < 1e-5, "conv1d: %g", max_rel_err(out, ref, M * TO));
    tb_free(&b);
    free(x), free(w), free(bias);
}

static void test_grouped_conv1d_streams(void)
{
    enum { C = 256, T = 50, M = 256, K = 65, G = 16, P = 32, TO = T };
    static tb b;
    tb_init(&b);
    int64_t dx[3] = {1, C, T}, dw[3] = {M, C / G, K}, db[1] = {M};
    float *x = rand_buf(C * T), *w = rand_buf(M * (C / G) * K), *bias = rand_buf(M);
    int ix = tb_input(&b, "x", 3, dx);
    int iw = tb_weight(&b, "w", 3, dw, w), ib = tb_weight(&b, "b", 1, db, bias);
    int y = tb_act(&b, "y");
    int in[3] = {ix, iw, ib};
    int64_t ks[1] = {K}, pads[2] = {P, P};
    occ_attr at[3] = {A_INTS("kernel_shape", ks, 1), A_INTS("pads", pads, 2), A_INT("group", G)};
    tb_node(&b, "Conv", 3, in, y, 3, at);
    tb_output(&b, y);
    occ_error e = {0};
    CHECK_MSG(tb_finish(&b, &e) == OCC_OK, "%s", e.msg);
    rechunk(&b);
    static float ref[M * TO], yn[M * TO], yo[M * TO];
    conv1d_ref(x, C, T, w, bias, M, K, G, 1, P, ref, TO);
    occ_engine_stats so;
    const uint64_t budget = 1280u << 10; /* 1.06 MiB of weights and 0.1 of maps: parts stream */
    if (run(&b, OCC_MODE_NATIVE, 0, x, yn, NULL) == OCC_OK)
        CHECK_MSG(max_rel_err(yn, ref, M * TO) < 1e-5, "native: %g", max_rel_err(yn, ref, M * TO));
    if (run(&b, OCC_MODE_OCCLUMENCY, budget, x, yo, &so) == OCC_OK) {
        CHECK_MSG(max_rel_err(yo, yn, M * TO) < 1e-5, "occlumency vs native: %g",
                  max_rel_err(yo, yn, M * TO));
        CHECK_MSG(so.peak_enclave_bytes <= budget, "peak %llu > budget %llu",
                  (unsigned long long)so.peak_enclave_bytes, (unsigned long long)budget);
        CHECK_MSG(so.plan_stream_bytes > 0, "expected streamed parts");
    }
    tb_free(&b);
    free(x), free(w), free(bias);
}

int main(void)
{
    RUN(test_conv1d_plain_output);
    RUN(test_grouped_conv1d_streams);
    TEST_DONE();
}
