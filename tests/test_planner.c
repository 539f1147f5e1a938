/* The memory planner: exact offsets on hand-made graphs, partitioning,
 * residency, over-budget errors, and the overlap checker on every plan
 * (including random graphs, and plans corrupted on purpose). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/planner.h"
#include "occ/model.h"
#include "occ/pack.h"
#include "occ/packer.h"
#include "test.h"

static occ_plan_input input(const occ_plan_buffer *b, uint32_t nb, const occ_plan_step *st, uint32_t ns,
                            const uint64_t *chunks, uint32_t nc, uint64_t budget, occ_plan_strategy strat)
{
    return (occ_plan_input){.n_buffers = nb, .buffers = b, .n_steps = ns, .steps = st, .n_chunks = nc,
                            .chunk_sizes = chunks, .budget = budget, .window_slots = 2, .alignment = 64,
                            .strategy = strat};
}

static void test_chain_exact_offsets(void)
{
    /* x -> s0 -> a -> s1 -> b -> s2 -> c */
    occ_plan_buffer b[4] = {{100, -1, 0}, {200, 0, 1}, {100, 1, 2}, {50, 2, 2}};
    occ_plan_step st[3] = {{0}, {0}, {0}};
    occ_plan_input in = input(b, 4, st, 3, NULL, 0, 1 << 20, OCC_PLAN_GREEDY_BY_SIZE);
    occ_plan p;
    occ_error e = {0};
    CHECK(occ_plan_make(&in, &p, NULL, &e) == OCC_OK);
    /* Largest first: b1 (256) at 0; b0 (128) alive with b1 -> 256; b2 (128)
     * alive with b1 but not b0 -> 256; b3 (64) alive with b2 only -> 0. */
    CHECK(p.offsets[1] == 0);
    CHECK(p.offsets[0] == 256);
    CHECK(p.offsets[2] == 256);
    CHECK(p.offsets[3] == 0);
    CHECK(p.arena_size == 384);
    CHECK(p.peak == 384 && p.window_size == 0 && p.work_size == 0);
    CHECK(occ_plan_check(&in, &p, &e) == OCC_OK);
    occ_plan_free(&p);

    in.strategy = OCC_PLAN_NAIVE;
    CHECK(occ_plan_make(&in, &p, NULL, &e) == OCC_OK);
    CHECK(p.offsets[0] == 0 && p.offsets[1] == 128 && p.offsets[2] == 384 && p.offsets[3] == 512);
    CHECK(p.arena_size == 576);
    CHECK(occ_plan_check(&in, &p, &e) == OCC_OK);
    occ_plan_free(&p);
}

static void test_residual_diamond(void)
{
    /* x -> conv a (s0); x -> conv b (s1); add(a, b) -> y (s2). x lives to s1. */
    occ_plan_buffer b[4] = {{4096, -1, 1}, {4096, 0, 2}, {4096, 1, 2}, {4096, 2, 2}};
    occ_plan_step st[3] = {{0}, {0}, {0}};
    occ_plan_input in = input(b, 4, st, 3, NULL, 0, 1 << 20, OCC_PLAN_GREEDY_BY_SIZE);
    occ_plan p;
    occ_error e = {0};
    CHECK(occ_plan_make(&in, &p, NULL, &e) == OCC_OK);
    /* x, a, b are alive together at s1; y can take x's place. */
    CHECK(p.arena_size == 3 * 4096);
    CHECK(p.offsets[3] == p.offsets[0]);
    CHECK(occ_plan_check(&in, &p, &e) == OCC_OK);
    occ_plan_free(&p);
}

static void test_partition_and_residency(void)
{
    occ_plan_buffer b[2] = {{1000, -1, 0}, {1000, 0, 1}};
    /* step 0 needs 10 pieces of 1000 bytes when split finest (10000 whole). */
    occ_plan_step st[2] = {{.part_size = 1000, .parts_max = 10, .first_chunk = 0, .n_chunks = 2},
                           {.part_size = 0, .parts_max = 1, .first_chunk = 2, .n_chunks = 1}};
    uint64_t chunks[3] = {4000, 4000, 2000};
    occ_plan p;
    occ_error e = {0};

    /* Plenty: all resident, no window, unpartitioned. */
    occ_plan_input in = input(b, 2, st, 2, chunks, 3, 1 << 20, OCC_PLAN_GREEDY_BY_SIZE);
    CHECK(occ_plan_make(&in, &p, NULL, &e) == OCC_OK);
    CHECK(p.parts[0] == 1 && p.work_size == 10000);
    CHECK(p.window_size == 0 && p.resident_size == 10000);
    CHECK(occ_plan_check(&in, &p, &e) == OCC_OK);
    occ_plan_free(&p);

    /* All resident still fits if the working buffer is split: 14000 left,
     * 10000 of chunks, 4000 for work -> 3 groups of (at most) 4 pieces. */
    in.budget = 2048 + 14000;
    CHECK(occ_plan_make(&in, &p, NULL, &e) == OCC_OK);
    CHECK(p.window_size == 0 && p.resident_size == 10000);
    CHECK(p.parts[0] == 3 && p.work_size == 4000);
    CHECK(occ_plan_check(&in, &p, &e) == OCC_OK);
    occ_plan_free(&p);

    /* Streaming: 10500 left cannot hold all chunks plus a piece; the window
     * (2 x 4000) leaves 2500; work is capped at budget/8 = 1568 -> 10 pieces. */
    in.budget = 2048 + 10500;
    CHECK(occ_plan_make(&in, &p, NULL, &e) == OCC_OK);
    CHECK(p.window_size == 8000);
    CHECK(p.parts[0] == 10 && p.work_size == 1000);
    CHECK(p.resident_size == 0); /* 500 spare: no chunk fits */
    CHECK(p.peak <= in.budget);
    CHECK(occ_plan_check(&in, &p, &e) == OCC_OK);
    occ_plan_free(&p);

    /* One window slot: 4000 window, 6500 left, work 1000 -> 5500 spare:
     * chunk 0 (4000) stays resident; chunks 1 (4000) and 2 (2000) do not
     * fit the 1500 left. */
    in.window_slots = 1;
    in.budget = 2048 + 10500;
    CHECK(occ_plan_make(&in, &p, NULL, &e) == OCC_OK);
    CHECK(p.window_size == 4000);
    CHECK(p.parts[0] == 10 && p.work_size == 1000);
    CHECK(p.resident[0] == 1 && p.resident[1] == 0 && p.resident[2] == 0);
    CHECK(p.resident_size == 4000);
    CHECK(occ_plan_check(&in, &p, &e) == OCC_OK);
    occ_plan_free(&p);
    in.window_slots = 2;

    /* Tighter: one piece of 1000 bytes at a time. */
    in.budget = 2048 + 8000 + 1000;
    CHECK(occ_plan_make(&in, &p, NULL, &e) == OCC_OK);
    CHECK(p.parts[0] == 10 && p.work_size == 1000);
    CHECK(occ_plan_check(&in, &p, &e) == OCC_OK);
    occ_plan_free(&p);

    /* One byte less than the smallest plan: a clear error naming step 0. */
    in.budget = 2048 + 8000 + 999;
    int32_t bottleneck = -2;
    CHECK(occ_plan_make(&in, &p, &bottleneck, &e) == OCC_ERR_BUDGET);
    CHECK(bottleneck == 0);
    CHECK_MSG(strstr(e.msg, "11048") && strstr(e.msg, "11047") && strstr(e.msg, "step 0"), "%s", e.msg);

    /* Feature maps alone too big. */
    in.budget = 1500;
    CHECK(occ_plan_make(&in, &p, &bottleneck, &e) == OCC_ERR_BUDGET);
    CHECK_MSG(strstr(e.msg, "2048") && strstr(e.msg, "1500"), "%s", e.msg);
}

/* Priorities: resident chunks are picked highest priority first, and every
 * chunk size is tried as the window slot (bigger chunks then stay resident)
 * so that the fewest priority-weighted bytes stream. */
static void test_priority_and_slot_search(void)
{
    occ_plan_buffer b[2] = {{1024, -1, 0}, {1024, 0, 1}};
    /* step 0: a conv with one big chunk (cheap to stream: low priority);
     * step 1: an FC layer of four small chunks (priority 100). */
    occ_plan_step st[2] = {{.part_size = 0, .parts_max = 1, .first_chunk = 0, .n_chunks = 1},
                           {.part_size = 0, .parts_max = 1, .first_chunk = 1, .n_chunks = 4}};
    uint64_t chunks[5] = {8192, 1024, 1024, 1024, 1024};
    uint64_t prio[5] = {1, 100, 100, 100, 100};
    occ_plan p;
    occ_error e = {0};
    occ_plan_input in = input(b, 2, st, 2, chunks, 5, 0, OCC_PLAN_GREEDY_BY_SIZE);

    /* all 12288 bytes fit: no window */
    in.budget = 2048 + 12288;
    CHECK(occ_plan_make(&in, &p, NULL, &e) == OCC_OK);
    CHECK(p.window_size == 0 && p.resident_size == 12288);
    occ_plan_free(&p);

    /* 2048 + 11000 without priorities: slot 8192 x 2 = 16384 does not fit:
     * the window for the largest chunk is the bottleneck */
    in.budget = 2048 + 11000;
    CHECK(occ_plan_make(&in, &p, NULL, &e) == OCC_ERR_BUDGET);
    /* with priorities: slot 1024 (window 2048), the 8192 chunk resident,
     * 11000 - 2048 - 8192 = 760 spare: all four FC chunks stream */
    in.chunk_priority = prio;
    CHECK(occ_plan_make(&in, &p, NULL, &e) == OCC_OK);
    CHECK(p.window_size == 2048 && p.resident[0] == 1 && p.resident_size == 8192);
    CHECK(occ_plan_check(&in, &p, &e) == OCC_OK);
    occ_plan_free(&p);

    in.budget = 2048 + 12288 - 1; /* one byte short of all resident */
    CHECK(occ_plan_make(&in, &p, NULL, &e) == OCC_OK);
    /* slot 8192: 16384 window > left (12287): infeasible; slot 1024: window
     * 2048, conv resident (8192), 2047 spare: one FC chunk resident, three
     * stream */
    CHECK(p.window_size == 2048 && p.resident[0] == 1);
    CHECK(p.resident[1] == 1 && p.resident[2] == 0 && p.resident_size == 8192 + 1024);
    CHECK(occ_plan_check(&in, &p, &e) == OCC_OK);
    occ_plan_free(&p);

    /* Priorities pick which small chunks stay: the last FC chunk first */
    uint64_t prio2[5] = {1, 100, 100, 100, 200};
    in.chunk_priority = prio2;
    CHECK(occ_plan_make(&in, &p, NULL, &e) == OCC_OK);
    CHECK(p.resident[4] == 1 && p.resident[1] == 0);
    CHECK(occ_plan_check(&in, &p, &e) == OCC_OK);
    occ_plan_free(&p);

    /* Chunks of one size: the slot is that size, priorities alone decide */
    uint64_t same[5] = {1024, 1024, 1024, 1024, 1024};
    uint64_t prio3[5] = {1, 5, 4, 3, 2};
    in.chunk_sizes = same;
    in.chunk_priority = prio3;
    in.budget = 2048 + 2048 + 2048; /* window 2048, 2048 spare: two resident */
    CHECK(occ_plan_make(&in, &p, NULL, &e) == OCC_OK);
    CHECK(p.window_size == 2048 && p.resident[1] && p.resident[2] && !p.resident[0] &&
          !p.resident[3] && !p.resident[4]);
    CHECK(occ_plan_check(&in, &p, &e) == OCC_OK);
    occ_plan_free(&p);
}

static void test_bad_input(void)
{
    occ_plan_buffer b[1] = {{100, 0, 5}}; /* lives past the last step */
    occ_plan_step st[1] = {{0}};
    occ_plan_input in = input(b, 1, st, 1, NULL, 0, 1 << 20, OCC_PLAN_GREEDY_BY_SIZE);
    occ_plan p;
    occ_error e = {0};
    CHECK(occ_plan_make(&in, &p, NULL, &e) == OCC_ERR_INVALID);
    b[0].last = 0;
    st[0].n_chunks = 3; /* chunks outside the table */
    CHECK(occ_plan_make(&in, &p, NULL, &e) == OCC_ERR_INVALID);
    st[0].n_chunks = 0;
    in.alignment = 48;
    CHECK(occ_plan_make(&in, &p, NULL, &e) == OCC_ERR_INVALID);
}

static void test_checker_catches_corruption(void)
{
    occ_plan_buffer b[3] = {{256, -1, 0}, {256, 0, 1}, {256, 1, 1}};
    occ_plan_step st[2] = {{0}, {0}};
    occ_plan_input in = input(b, 3, st, 2, NULL, 0, 1 << 20, OCC_PLAN_GREEDY_BY_SIZE);
    occ_plan p;
    occ_error e = {0};
    CHECK(occ_plan_make(&in, &p, NULL, &e) == OCC_OK);
    CHECK(occ_plan_check(&in, &p, &e) == OCC_OK);
    uint64_t saved = p.offsets[2];
    p.offsets[2] = p.offsets[1] + 64; /* overlaps a buffer alive at step 1 */
    CHECK(occ_plan_check(&in, &p, &e) == OCC_ERR_INTERNAL);
    p.offsets[2] = saved + 8; /* misaligned */
    CHECK(occ_plan_check(&in, &p, &e) == OCC_ERR_INTERNAL);
    p.offsets[2] = saved;
    p.peak += 1;
    CHECK(occ_plan_check(&in, &p, &e) == OCC_ERR_INTERNAL);
    occ_plan_free(&p);
}

static uint64_t rnd_state = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

static void test_random_graphs(void)
{
    enum { NB = 120, NS = 60, NC = 40 };
    occ_plan_buffer b[NB];
    occ_plan_step st[NS];
    uint64_t chunks[NC];
    int ok_all = 1, greedy_not_worse = 1, above_bound = 1;
    for (int trial = 0; trial < 200; trial++) {
        for (int i = 0; i < NB; i++) {
            int32_t f = (int32_t)(rnd() % (NS + 1)) - 1;
            int32_t l = f + (int32_t)(rnd() % 6);
            if (l < 0)
                l = 0;
            if (l >= NS)
                l = NS - 1;
            if (f > l)
                f = l;
            b[i] = (occ_plan_buffer){(rnd() % 5 == 0) ? 0 : 1 + rnd() % 100000, f, l};
        }
        for (int s = 0; s < NS; s++)
            st[s] = (occ_plan_step){.part_size = rnd() % 5000, .parts_max = 1 + (uint32_t)(rnd() % 64),
                                    .first_chunk = (uint32_t)(s * NC / NS), .n_chunks = 0};
        for (int c = 0; c < NC; c++)
            chunks[c] = 1 + rnd() % 200000;
        uint64_t budget = 1 + rnd() % 8000000;
        for (int strat = 0; strat < 2; strat++) {
            occ_plan_input in = input(b, NB, st, NS, chunks, NC, budget, (occ_plan_strategy)strat);
            occ_plan p;
            occ_error e = {0};
            occ_status s = occ_plan_make(&in, &p, NULL, &e);
            if (s == OCC_OK) {
                if (occ_plan_check(&in, &p, &e) != OCC_OK) {
                    ok_all = 0;
                    fprintf(stderr, "trial %d strategy %d: %s\n", trial, strat, e.msg);
                }
                occ_plan_free(&p);
            } else if (s != OCC_ERR_BUDGET) {
                ok_all = 0;
            }
        }
        /* Greedy never uses a bigger arena than naive, and never less than
         * the bytes alive at the busiest step. */
        occ_plan_input in = input(b, NB, st, NS, chunks, NC, UINT64_MAX >> 4, OCC_PLAN_GREEDY_BY_SIZE);
        occ_plan g, n;
        occ_error e = {0};
        if (occ_plan_make(&in, &g, NULL, &e) == OCC_OK) {
            in.strategy = OCC_PLAN_NAIVE;
            if (occ_plan_make(&in, &n, NULL, &e) == OCC_OK) {
                greedy_not_worse &= g.arena_size <= n.arena_size;
                occ_plan_free(&n);
            }
            for (int s = -1; s < NS; s++) {
                uint64_t live = 0;
                for (int i = 0; i < NB; i++)
                    if (b[i].first <= s && s <= b[i].last)
                        live += b[i].size;
                above_bound &= g.arena_size >= live;
            }
            occ_plan_free(&g);
        }
    }
    CHECK(ok_all);
    CHECK(greedy_not_worse);
    CHECK(above_bound);
}

/* Lifetimes from a real model: the bundled Fashion-MNIST CNN, packed here.
 * Every activation lives from the step that writes it to the last step that
 * reads it (graph outputs to the end); for this chain that is [i, i+1]. Both
 * strategies give checked plans, greedy reuses memory, and no plan can be
 * smaller than the bytes alive at the busiest step. */
static void test_lifetimes_from_real_model(void)
{
    const char *src = getenv("OCC_SRC");
    char onnx[1024], out[] = "/tmp/occ-planner-XXXXXX";
    snprintf(onnx, sizeof onnx, "%s/models/fmnist.onnx", src ? src : "..");
    int fd = mkstemp(out);
    CHECK(fd >= 0);
    close(fd);
    occ_error e = {0};
    occ_pack_options po = {0};
    CHECK_MSG(occ_pack_onnx(onnx, out, &po, NULL, &e) == OCC_OK, "%s", e.msg);
    occ_packfile *pf = NULL;
    occ_model *m = NULL;
    CHECK(occ_packfile_open(out, &pf, &e) == OCC_OK);
    if (pf) {
        size_t size;
        const uint8_t *man = occ_packfile_manifest(pf, &size);
        CHECK(occ_manifest_decode(man, size, &m, &e) == OCC_OK);
    }
    remove(out);
    if (!m) {
        occ_packfile_close(pf);
        return;
    }
    /* one buffer per activation or input tensor */
    occ_plan_buffer *b = calloc(m->n_tensors, sizeof *b);
    int32_t *idx = calloc(m->n_tensors, sizeof *idx);
    uint32_t nb = 0;
    for (uint32_t t = 0; t < m->n_tensors; t++) {
        idx[t] = -1;
        if (m->tensors[t].kind == OCC_TENSOR_WEIGHT)
            continue;
        idx[t] = (int32_t)nb;
        b[nb++] = (occ_plan_buffer){m->tensors[t].size, -1, -1};
    }
    for (uint32_t i = 0; i < m->n_nodes; i++) {
        const occ_node *n = &m->nodes[i];
        for (uint32_t k = 0; k < n->n_outputs; k++)
            b[idx[n->outputs[k]]].first = b[idx[n->outputs[k]]].last = (int32_t)i;
        for (uint32_t k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] >= 0 && idx[n->inputs[k]] >= 0)
                b[idx[n->inputs[k]]].last = (int32_t)i;
    }
    for (uint32_t k = 0; k < m->n_outputs; k++)
        b[idx[m->outputs[k]]].last = (int32_t)m->n_nodes - 1;
    /* the input is read by node 0 only; node i's output is read by node i+1 */
    CHECK(b[idx[m->inputs[0]]].first == -1 && b[idx[m->inputs[0]]].last == 0);
    int chain = 1;
    for (uint32_t i = 0; i + 1 < m->n_nodes; i++) {
        const occ_plan_buffer *o = &b[idx[m->nodes[i].outputs[0]]];
        chain &= o->first == (int32_t)i && o->last == (int32_t)i + 1;
    }
    CHECK(chain);

    occ_plan_step *st = calloc(m->n_nodes, sizeof *st);
    uint64_t busiest = 0;
    for (int32_t s = -1; s < (int32_t)m->n_nodes; s++) {
        uint64_t live = 0;
        for (uint32_t i = 0; i < nb; i++)
            if (b[i].first <= s && s <= b[i].last)
                live += (b[i].size + 63) & ~(uint64_t)63;
        busiest = live > busiest ? live : busiest;
    }
    occ_plan pg, pn;
    occ_plan_input in = input(b, nb, st, m->n_nodes, NULL, 0, 1 << 30, OCC_PLAN_GREEDY_BY_SIZE);
    CHECK(occ_plan_make(&in, &pg, NULL, &e) == OCC_OK);
    CHECK(occ_plan_check(&in, &pg, &e) == OCC_OK);
    in.strategy = OCC_PLAN_NAIVE;
    CHECK(occ_plan_make(&in, &pn, NULL, &e) == OCC_OK);
    CHECK(occ_plan_check(&in, &pn, &e) == OCC_OK);
    CHECK_MSG(pg.arena_size >= busiest && pg.arena_size < pn.arena_size,
              "greedy %llu, naive %llu, busiest step %llu", (unsigned long long)pg.arena_size,
              (unsigned long long)pn.arena_size, (unsigned long long)busiest);
    /* a chain is planned optimally: the busiest step's bytes exactly */
    CHECK(pg.arena_size == busiest);
    occ_plan_free(&pg);
    occ_plan_free(&pn);
    free(st);
    free(b);
    free(idx);
    occ_model_free(m);
    occ_packfile_close(pf);
}

int main(void)
{
    RUN(test_chain_exact_offsets);
    RUN(test_residual_diamond);
    RUN(test_partition_and_residency);
    RUN(test_priority_and_slot_search);
    RUN(test_bad_input);
    RUN(test_checker_catches_corruption);
    RUN(test_random_graphs);
    RUN(test_lifetimes_from_real_model);
    TEST_DONE();
}
