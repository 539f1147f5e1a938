/* occ inspect: model id, inputs/outputs, per-layer table, totals. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "cli/common.h"
#include "occ/model.h"
#include "ops/ops.h"

static void usage(FILE *f)
{
    fputs("usage: occ inspect MODEL.occ [--json]\n"
          "\n"
          "Prints the model id (SHA-256 of the manifest), inputs and outputs, the\n"
          "preprocessing and labels, and one line per layer: op, output shape,\n"
          "parameters and FLOPs, with totals.\n"
          "\n"
          "  --json     one JSON object: model_id, name, inputs, outputs, params,\n"
          "             flops, weight_bytes, chunks, layers, preprocessing, labels\n"
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
        cJSON_AddItemToObject(o, "shape", json_shape(t));
        cJSON_AddStringToObject(o, "datatype", "FP32");
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

int occ_cmd_inspect(int argc, char **argv)
{
    const char *path = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
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

    occ_error e = {0};
    occ_packfile *pf = NULL;
    occ_model *m = NULL;
    if (occ_cli_open_model(path, &pf, &m, &e))
        return occ_cli_error("inspect", "%s", e.msg);

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
        for (uint32_t i = 0; i < m->n_inputs; i++) {
            occ_cli_shape(&m->tensors[m->inputs[i]], shape, sizeof shape);
            printf("input     %s %s float32\n", m->tensors[m->inputs[i]].name, shape);
        }
        for (uint32_t i = 0; i < m->n_outputs; i++) {
            occ_cli_shape(&m->tensors[m->outputs[i]], shape, sizeof shape);
            printf("output    %s %s float32\n", m->tensors[m->outputs[i]].name, shape);
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
