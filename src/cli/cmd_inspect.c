/* occ inspect: model id, inputs/outputs, per-layer table, totals. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>

#include "cli/cli.h"
#include "cli/common.h"
#include "cli/keyfile.h"
#include "engine/engine_internal.h"
#include "occ/client.h"
#include "occ/engine.h"
#include "occ/model.h"
#include "occ/pack.h"
#include "occ/weights_crypt.h"
#include "ops/ops.h"

static void usage(FILE *f)
{
    fputs("usage: occ inspect MODEL.occ [--json]\n"
          "       occ inspect MODEL.occ --plan [--budget SIZE] [--batch N] [--threads N]\n"
          "                                    [--loader-threads N] [--key FILE] [--json]\n"
          "\n"
          "Prints the model id (SHA-256 of the manifest), inputs and outputs, the\n"
          "preprocessing and labels, and one line per layer: op, output shape,\n"
          "parameters and FLOPs, with totals.\n"
          "\n"
          "With --plan, prints the occlumency memory plan for the budget instead: per\n"
          "layer the live feature-map bytes, the working buffer, the pieces it runs\n"
          "in and its resident/streamed weight bytes; then the totals (arena, working\n"
          "buffer, streaming window, resident weights, operator state) and the peak.\n"
          "A model that does not fit exits 1 with the bytes needed, the bytes\n"
          "available and the bottleneck layer.\n"
          "\n"
          "  --json     one JSON object: model_id, name, inputs, outputs, params,\n"
          "             flops, weight_bytes, chunks, layers, preprocessing, labels\n"
          "             (with --plan: budget_bytes, peak_bytes, arena_bytes, ...,\n"
          "             layers)\n"
          "  --plan     the memory plan (occlumency mode)\n"
          "  --budget SIZE  enclave memory budget (93M default; 32M, 512K...)\n"
          "  --batch N, --threads N, --loader-threads N  as for occ run (they change\n"
          "             the plan: N images' feature maps, oneDNN's scratchpad, ring slots)\n"
          "  --key FILE the model key of a pack whose weights are encrypted (--plan\n"
          "             needs it: planning prepares the operators)\n"
          "  -h, --help this text\n",
          f);
}

static uint64_t node_params(const occ_model *m, const occ_node *n)
{
    uint64_t p = 0;
    for (uint32_t k = 0; k < n->n_inputs; k++) {
        int32_t t = n->inputs[k];
        if (t >= 0 && m->tensors[t].kind == OCC_TENSOR_WEIGHT)
            p += (uint64_t)occ_tensor_count(&m->tensors[t]);
    }
    return p;
}

static cJSON *json_shape(const occ_tensor *t)
{
    cJSON *a = cJSON_CreateArray();
    for (int d = 0; d < t->ndim; d++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber((double)t->dims[d]));
    return a;
}

static cJSON *json_io(const occ_model *m, const int32_t *idx, uint32_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (uint32_t i = 0; i < n; i++) {
        const occ_tensor *t = &m->tensors[idx[i]];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", t->name);
        uint32_t dt = occ_tensor_dtype(t);
        /* "type": occ's name; "datatype": the KServe v2 name of the same type */
        cJSON_AddStringToObject(o, "type", occ_dtype_name(dt) ? occ_dtype_name(dt) : "?");
        cJSON_AddItemToObject(o, "shape", json_shape(t));
        const char *kdt = occ_client_datatype(dt);
        cJSON_AddStringToObject(o, "datatype", kdt ? kdt : "?");
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

cJSON *occ_cli_preproc_json(const occ_preproc *p)
{
    if (!p->present)
        return cJSON_CreateNull();
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "height", p->height);
    cJSON_AddNumberToObject(o, "width", p->width);
    cJSON_AddNumberToObject(o, "channels", p->channels);
    cJSON_AddStringToObject(o, "channel_order", p->channel_order);
    cJSON_AddNumberToObject(o, "scale", p->scale);
    cJSON *mean = cJSON_CreateArray(), *std = cJSON_CreateArray();
    for (int c = 0; c < p->channels; c++) {
        cJSON_AddItemToArray(mean, cJSON_CreateNumber(p->mean[c]));
        cJSON_AddItemToArray(std, cJSON_CreateNumber(p->std[c]));
    }
    cJSON_AddItemToObject(o, "mean", mean);
    cJSON_AddItemToObject(o, "std", std);
    return o;
}

static occ_status pack_read(void *ctx, uint64_t off, void *dst, uint64_t size, occ_error *e)
{
    return occ_packfile_read(ctx, off, dst, size, e);
}

static double mib(uint64_t b)
{
    return (double)b / 1048576.0;
}

static int print_plan(const char *path, occ_packfile *pf, const occ_model *m, uint64_t budget,
                      int batch, int threads, int loaders, const uint8_t *key, int json)
{
    occ_engine_opts opts = {.weights_key = key,
                            .threads = threads,
                            .loader_threads = loaders,
                            .mode = OCC_MODE_OCCLUMENCY,
                            .budget = budget,
                            .batch = (uint32_t)batch};
    occ_engine *eng = NULL;
    occ_error e = {0};
    if (occ_engine_plan_only(m, &opts, pack_read, pf, &eng, &e))
        return occ_cli_error("inspect", "%s: %s", path, e.msg);
    occ_plan_summary s;
    const occ_plan_layer *L = NULL;
    uint32_t nl = 0;
    occ_engine_plan_summary(eng, &s, &L, &nl);
    char id[65];
    occ_hex(m->model_id, 32, id);
    if (json) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "model_id", id);
        cJSON_AddStringToObject(root, "name", m->name);
        cJSON_AddStringToObject(root, "mode", "occlumency");
        cJSON_AddNumberToObject(root, "batch", batch);
        cJSON_AddNumberToObject(root, "budget_bytes", (double)s.budget);
        cJSON_AddNumberToObject(root, "peak_bytes", (double)s.peak);
        cJSON_AddNumberToObject(root, "arena_bytes", (double)s.arena);
        cJSON_AddNumberToObject(root, "work_bytes", (double)s.work);
        cJSON_AddNumberToObject(root, "window_bytes", (double)s.window);
        cJSON_AddNumberToObject(root, "window_slots", s.window_slots);
        cJSON_AddNumberToObject(root, "resident_bytes", (double)s.resident);
        cJSON_AddNumberToObject(root, "streamed_bytes", (double)s.streamed); /* per run */
        cJSON_AddNumberToObject(root, "streamed_bytes_per_image", (double)s.streamed / s.batch);
        cJSON_AddNumberToObject(root, "batch_split_step", s.split_step);
        cJSON_AddNumberToObject(root, "operator_bytes", (double)s.fixed);
        cJSON_AddNumberToObject(root, "segments", s.n_segs);
        cJSON_AddNumberToObject(root, "segments_streamed", s.n_streamed);
        cJSON_AddNumberToObject(root, "segment_max_bytes", (double)s.seg_max);
        cJSON *layers = cJSON_CreateArray();
        for (uint32_t i = 0; i < nl; i++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "name", L[i].name);
            cJSON_AddStringToObject(o, "op", L[i].op);
            cJSON_AddNumberToObject(o, "activation_bytes", (double)L[i].act_live);
            cJSON_AddNumberToObject(o, "work_bytes", (double)L[i].work);
            cJSON_AddNumberToObject(o, "parts", L[i].parts);
            cJSON_AddNumberToObject(o, "resident_segments", L[i].seg_resident);
            cJSON_AddNumberToObject(o, "resident_bytes", (double)L[i].bytes_resident);
            cJSON_AddNumberToObject(o, "streamed_segments", L[i].seg_streamed);
            cJSON_AddNumberToObject(o, "streamed_bytes", (double)L[i].bytes_streamed);
            if (L[i].band_rows) { /* a strip chain's step (docs/streaming.md) */
                cJSON_AddNumberToObject(o, "strip_chain_first", L[i].chain_first);
                cJSON_AddNumberToObject(o, "strip_chain_last", L[i].chain_last);
                cJSON_AddNumberToObject(o, "band_rows", (double)L[i].band_rows);
                cJSON_AddNumberToObject(o, "bands", L[i].n_bands);
            }
            cJSON_AddItemToArray(layers, o);
        }
        cJSON_AddItemToObject(root, "layers", layers);
        occ_cli_print_json(root);
        cJSON_Delete(root);
    } else {
        printf("model     %s\n", m->name && *m->name ? m->name : "(unnamed)");
        printf("model id  %s\n", id);
        printf("plan      occlumency, budget %.2f MiB (%" PRIu64 " bytes), batch %d\n\n",
               mib(s.budget), s.budget, batch);
        printf("%5s  %-28s %-18s %10s %10s %5s %16s %16s\n", "step", "layer", "op",
               "act MiB", "work MiB", "parts", "resident MiB", "streamed MiB");
        for (uint32_t i = 0; i < nl; i++) {
            char res[32] = "-", str[32] = "-";
            if (L[i].seg_resident)
                snprintf(res, sizeof res, "%.2f (%u)", mib(L[i].bytes_resident), L[i].seg_resident);
            if (L[i].seg_streamed)
                snprintf(str, sizeof str, "%.2f (%u)", mib(L[i].bytes_streamed), L[i].seg_streamed);
            printf("%5u  %-28.28s %-18.18s %10.2f %10.2f %5u %16s %16s\n", i, L[i].name, L[i].op,
                   mib(L[i].act_live), mib(L[i].work), L[i].parts, res, str);
        }
        /* strip chains (docs/streaming.md): their bands */
        for (uint32_t i = 0, n_ch = 0; i < nl; i++)
            if (L[i].band_rows && L[i].chain_first == i)
                printf("%sstrip chain              steps %u..%u in %u bands of %lld output rows\n",
                       n_ch++ ? "" : "\n", L[i].chain_first, L[i].chain_last, L[i].n_bands,
                       (long long)L[i].band_rows);
        printf("\narena (feature maps)     %10.2f MiB\n", mib(s.arena));
        printf("working buffer           %10.2f MiB\n", mib(s.work));
        printf("streaming window         %10.2f MiB (%u slots)\n", mib(s.window), s.window_slots);
        printf("resident weights         %10.2f MiB\n", mib(s.resident));
        printf("operator state           %10.2f MiB\n", mib(s.fixed));
        printf("peak                     %10.2f MiB (%" PRIu64 " bytes) of %.2f MiB budget\n",
               mib(s.peak), s.peak, mib(s.budget));
        if (s.batch > 1) {
            printf("segments                 %u, %u streamed (%.2f MiB per batch, %.2f per image), max %.2f MiB\n",
                   s.n_segs, s.n_streamed, mib(s.streamed), mib(s.streamed) / s.batch, mib(s.seg_max));
            if (s.split_step)
                printf("batch order              steps 0..%u image by image, the rest for the whole batch\n",
                       s.split_step - 1);
            else
                printf("batch order              every step for the whole batch\n");
        } else {
            printf("segments                 %u, %u streamed (%.2f MiB per inference), max %.2f MiB\n",
                   s.n_segs, s.n_streamed, mib(s.streamed), mib(s.seg_max));
        }
    }
    occ_engine_free(eng);
    return 0;
}

int occ_cmd_inspect(int argc, char **argv)
{
    const char *path = NULL, *key_path = NULL;
    int json = 0, plan = 0, batch = 1, threads = 0, loaders = 0;
    unsigned long long budget = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--json"))
            json = 1;
        else if (!strcmp(a, "--plan"))
            plan = 1;
        else if (!strcmp(a, "--key")) {
            if (i + 1 >= argc)
                return occ_cli_error("inspect", "%s needs a value", a);
            key_path = argv[++i];
        }
        else if (!strcmp(a, "--budget") || !strcmp(a, "--batch") || !strcmp(a, "--threads") ||
                 !strcmp(a, "--loader-threads")) {
            if (i + 1 >= argc)
                return occ_cli_error("inspect", "%s needs a value", a);
            const char *v = argv[++i];
            char *end = NULL;
            long n = 0;
            if (!strcmp(a, "--budget")) {
                if (occ_parse_size(v, &budget) || budget == 0)
                    return occ_cli_error("inspect",
                                         "--budget needs a size such as 93M, 32M or 512K, got '%s'", v);
                continue;
            }
            n = strtol(v, &end, 10);
            int lo = !strcmp(a, "--threads") ? 0 : 1;
            int hi = !strcmp(a, "--batch") ? 4096 : !strcmp(a, "--threads") ? 1024 : 64;
            if (!*v || *end || n < lo || n > hi)
                return occ_cli_error("inspect", "%s needs %d..%d, got '%s'", a, lo, hi, v);
            if (!strcmp(a, "--batch"))
                batch = (int)n;
            else if (!strcmp(a, "--threads"))
                threads = (int)n;
            else
                loaders = (int)n;
        } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (argv[i][0] == '-') {
            usage(stderr);
            return occ_cli_error("inspect", "unknown option '%s'", argv[i]);
        } else if (!path)
            path = argv[i];
        else
            return occ_cli_error("inspect", "more than one model given");
    }
    if (!path) {
        usage(stderr);
        return occ_cli_error("inspect", "no model given");
    }
    if (!plan && (budget || batch != 1 || threads || loaders || key_path))
        return occ_cli_error("inspect", "--budget, --batch, --threads, --loader-threads and --key need --plan");

    occ_error e = {0};
    occ_packfile *pf = NULL;
    occ_model *m = NULL;
    if (occ_cli_open_model(path, &pf, &m, &e))
        return occ_cli_error("inspect", "%s", e.msg);

    if (plan) {
        uint8_t key[32];
        int rc = 0;
        if (key_path && occ_cli_read_key(key_path, key, 0, NULL, &e))
            rc = occ_cli_error("inspect", "--key: %s", e.msg);
        if (!rc)
            rc = print_plan(path, pf, m, budget, batch, threads, loaders, key_path ? key : NULL, json);
        OPENSSL_cleanse(key, sizeof key);
        occ_model_free(m);
        occ_packfile_close(pf);
        return rc;
    }
    char id[65];
    occ_hex(m->model_id, 32, id);
    uint64_t total_params = 0, total_flops = 0, weight_bytes = 0;
    for (uint32_t i = 0; i < m->n_tensors; i++)
        if (m->tensors[i].kind == OCC_TENSOR_WEIGHT)
            weight_bytes += m->tensors[i].size;

    if (json) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "model_id", id);
        cJSON_AddStringToObject(root, "name", m->name);
        cJSON_AddBoolToObject(root, "encrypted", m->weights_crypt != OCC_WCRYPT_NONE);
        if (m->weights_crypt != OCC_WCRYPT_NONE) {
            char pid[2 * OCC_PACK_ID_SIZE + 1];
            occ_hex(m->pack_id, OCC_PACK_ID_SIZE, pid);
            cJSON_AddStringToObject(root, "encryption", "AES-256-GCM");
            cJSON_AddStringToObject(root, "pack_id", pid);
        }
        cJSON_AddItemToObject(root, "inputs", json_io(m, m->inputs, m->n_inputs));
        cJSON_AddItemToObject(root, "outputs", json_io(m, m->outputs, m->n_outputs));
        cJSON *layers = cJSON_CreateArray();
        for (uint32_t i = 0; i < m->n_nodes; i++) {
            const occ_node *n = &m->nodes[i];
            uint64_t p = node_params(m, n), f = occ_op_flops(m, n);
            total_params += p;
            total_flops += f;
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "name", n->name);
            cJSON_AddStringToObject(o, "op", n->op);
            cJSON_AddItemToObject(o, "output_shape", json_shape(&m->tensors[n->outputs[0]]));
            cJSON_AddNumberToObject(o, "params", (double)p);
            cJSON_AddNumberToObject(o, "flops", (double)f);
            cJSON_AddItemToArray(layers, o);
        }
        cJSON_AddNumberToObject(root, "params", (double)total_params);
        cJSON_AddNumberToObject(root, "flops", (double)total_flops);
        cJSON_AddNumberToObject(root, "weight_bytes", (double)weight_bytes);
        cJSON_AddNumberToObject(root, "data_bytes", (double)m->data_size);
        cJSON_AddNumberToObject(root, "chunks", m->n_chunks);
        cJSON_AddNumberToObject(root, "nodes", m->n_nodes);
        cJSON_AddItemToObject(root, "preprocessing", occ_cli_preproc_json(&m->pre));
        cJSON *labels = cJSON_CreateArray();
        for (uint32_t i = 0; i < m->n_labels; i++)
            cJSON_AddItemToArray(labels, cJSON_CreateString(m->labels[i]));
        cJSON_AddItemToObject(root, "labels", labels);
        cJSON_AddItemToObject(root, "layers", layers);
        occ_cli_print_json(root);
        cJSON_Delete(root);
    } else {
        char shape[128];
        printf("model     %s\n", m->name && *m->name ? m->name : "(unnamed)");
        printf("model id  %s\n", id);
        if (m->weights_crypt != OCC_WCRYPT_NONE) {
            char pid[2 * OCC_PACK_ID_SIZE + 1];
            occ_hex(m->pack_id, OCC_PACK_ID_SIZE, pid);
            printf("encrypted: yes (weights under AES-256-GCM, pack id %s; runs only with its key)\n", pid);
        } else {
            printf("encrypted: no\n");
        }
        for (uint32_t i = 0; i < m->n_inputs; i++) {
            occ_cli_shape(&m->tensors[m->inputs[i]], shape, sizeof shape);
            printf("input     %s %s %s\n", m->tensors[m->inputs[i]].name, shape,
                   occ_dtype_name(occ_tensor_dtype(&m->tensors[m->inputs[i]])));
        }
        for (uint32_t i = 0; i < m->n_outputs; i++) {
            occ_cli_shape(&m->tensors[m->outputs[i]], shape, sizeof shape);
            printf("output    %s %s %s\n", m->tensors[m->outputs[i]].name, shape,
                   occ_dtype_name(occ_tensor_dtype(&m->tensors[m->outputs[i]])));
        }
        if (m->pre.present) {
            printf("image     %dx%d %s, x*%g then (x-mean)/std, mean", m->pre.height, m->pre.width,
                   m->pre.channel_order, m->pre.scale);
            for (int c = 0; c < m->pre.channels; c++)
                printf("%s%g", c ? "," : " ", m->pre.mean[c]);
            printf(" std");
            for (int c = 0; c < m->pre.channels; c++)
                printf("%s%g", c ? "," : " ", m->pre.std[c]);
            printf("\n");
        }
        if (m->n_labels)
            printf("labels    %u (%s, ...)\n", m->n_labels, m->labels[0]);
        printf("\n%5s  %-28s %-20s %-20s %14s %16s\n", "#", "name", "op", "output", "params", "FLOPs");
        for (uint32_t i = 0; i < m->n_nodes; i++) {
            const occ_node *n = &m->nodes[i];
            uint64_t p = node_params(m, n), f = occ_op_flops(m, n);
            total_params += p;
            total_flops += f;
            occ_cli_shape(&m->tensors[n->outputs[0]], shape, sizeof shape);
            printf("%5u  %-28.28s %-20.20s %-20s %14" PRIu64 " %16" PRIu64 "\n", i, n->name, n->op, shape, p, f);
        }
        printf("\ntotal: %u layers, %" PRIu64 " parameters (%.1f MiB of weights in %u chunks), %.3f GFLOPs\n",
               m->n_nodes, total_params, (double)weight_bytes / (1 << 20), m->n_chunks, (double)total_flops / 1e9);
    }
    occ_model_free(m);
    occ_packfile_close(pf);
    return 0;
}
