/* occ run: inference on a tensor file or an image, in any engine mode. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>

#include "cli/cli.h"
#include "cli/common.h"
#include "cli/enclave_opts.h"
#include "cli/keyfile.h"
#include "engine/engine_internal.h"
#include "occ/client.h"
#include "occ/engine.h"
#include "occ/model.h"

static void usage(FILE *f)
{
    fputs("usage: occ run MODEL.occ (--input [NAME=]X.bin ... | --image FILE) [options]\n"
          "\n"
          "Runs the model: natively (the speed reference), as a framework naively run in\n"
          "an enclave would (baseline), or planned to an enclave memory budget with\n"
          "streamed, verified weights (occlumency).\n"
          "\n"
          "  --mode M        native (default) | baseline | occlumency\n"
          "  --budget SIZE   enclave memory budget for occlumency (93M default; 32M, 512K...)\n"
          "  --batch N       run N inputs at once (weights streamed once for all): --input\n"
          "                  holds N tensors back to back, or one tensor used N times;\n"
          "                  --output gets N outputs back to back\n"
          "  --loader-threads N  weight loading/verifying threads (default 1)\n"
          "  --key FILE      the model key (32 raw bytes) of a pack whose weights are\n"
          "                  encrypted (occ pack --encrypt-key)\n"
          "  --input NAME=FILE  graph input NAME from FILE: raw little-endian data of the\n"
          "                  input's type and shape (occ inspect lists them); repeat it\n"
          "                  for every input\n"
          "  --input FILE    the same for a model with one input\n"
          "  --image FILE    PNG/JPEG/BMP image, preprocessed with the pack's metadata\n"
          "  --output FILE   write all output tensors here, raw little-endian in their\n"
          "                  types, back to back in output order\n"
          "  --output-dir DIR  write each output to DIR/<output name>.bin (characters\n"
          "                  outside [A-Za-z0-9_.-] become _)\n"
          "  --top K         print the K best classes of the first float32 output\n"
          "                  (default 5 when no --output/--output-dir)\n"
          "  --threads N     compute threads (default: all cores)\n"
          "  --repeat N      after one warm-up run, time N runs and report the median\n"
          "  --lockstep      (bench/paired.py) after one warm-up run print 'ready'; then\n"
          "                  for each line 'N [W]' read on stdin run W untimed and N\n"
          "                  timed runs back to back and print the timed runs' median\n"
          "                  milliseconds, until end of input\n"
          "  --stats         report timings and memory (measured peak enclave bytes, weights\n"
          "                  loaded and verified)\n"
          "  --json          print one JSON object (top, median_ms, ...)\n"
          "  -h, --help      this text\n",
          f);
    fputs(occ_cli_enclave_usage, f);
}

#define OCC_MAX_CLI_INPUTS 256

/* Matches the --input options to the model's inputs: NAME=FILE, or a bare
 * FILE for a model with one input. Reports unknown, repeated and missing
 * inputs. */
static int assign_inputs(const occ_model *m, const char *const *args, int n, const char **files)
{
    for (int a = 0; a < n; a++) {
        const char *eq = strchr(args[a], '=');
        int32_t hit = -1;
        for (uint32_t i = 0; eq && i < m->n_inputs; i++) {
            const char *nm = m->tensors[m->inputs[i]].name;
            if (nm && strlen(nm) == (size_t)(eq - args[a]) && !strncmp(nm, args[a], (size_t)(eq - args[a])))
                hit = (int32_t)i;
        }
        if (hit >= 0) {
            if (files[hit])
                return occ_cli_error("run", "input '%s' is given twice", m->tensors[m->inputs[hit]].name);
            files[hit] = eq + 1;
            continue;
        }
        if (eq && m->n_inputs != 1) {
            char list[512];
            size_t o = 0;
            list[0] = '\0';
            for (uint32_t i = 0; i < m->n_inputs && o < sizeof list; i++)
                o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", i ? ", " : "",
                                      m->tensors[m->inputs[i]].name);
            return occ_cli_error("run", "--input %.*s=...: the model has no input named '%.*s' "
                                 "(its inputs: %s)", (int)(eq - args[a]), args[a],
                                 (int)(eq - args[a]), args[a], list);
        }
        if (m->n_inputs != 1)
            return occ_cli_error("run", "--input %s: this model has %u inputs; name each one "
                                 "with --input NAME=FILE", args[a], m->n_inputs);
        if (files[0])
            return occ_cli_error("run", "input '%s' is given twice", m->tensors[m->inputs[0]].name);
        files[0] = args[a]; /* a bare FILE (which may itself contain '=') */
    }
    for (uint32_t i = 0; i < m->n_inputs; i++)
        if (!files[i]) {
            const occ_tensor *t = &m->tensors[m->inputs[i]];
            char shape[128];
            occ_cli_shape(t, shape, sizeof shape);
            return occ_cli_error("run", "missing input '%s' (%s %s): give --input %s=FILE", t->name,
                                 occ_dtype_name(occ_tensor_dtype(t)), shape, t->name);
        }
    return 0;
}

/* An output name as a file name: characters outside [A-Za-z0-9_.-] become
 * '_' so that a model's output name cannot reach outside the directory (no
 * '/'; ".bin" is appended). Caller frees. */
static char *safe_name(const occ_tensor *t)
{
    const char *nm = t->name && *t->name ? t->name : "output";
    size_t len = strlen(nm);
    char *safe = malloc(len + 1);
    for (size_t c = 0; safe && c <= len; c++) {
        char ch = nm[c];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '_' || ch == '.' || ch == '-' || ch == '\0';
        safe[c] = ok ? ch : '_';
    }
    return safe;
}

/* --output-dir: DIR/<safe name>.bin per output (all images of a batch back
 * to back); two outputs whose names map to one file are an error, not an
 * overwrite. */
static int write_output_dir(const occ_model *m, const char *dir, void *const *outs, int batch)
{
    char **names = calloc(m->n_outputs + 1u, sizeof *names);
    int rc = names ? 0 : occ_cli_error("run", "out of memory");
    for (uint32_t i = 0; !rc && i < m->n_outputs; i++) {
        if (!(names[i] = safe_name(&m->tensors[m->outputs[i]])))
            rc = occ_cli_error("run", "out of memory");
        for (uint32_t k = 0; !rc && k < i; k++)
            if (!strcmp(names[k], names[i]))
                rc = occ_cli_error("run", "--output-dir: outputs '%s' and '%s' would both be "
                                   "written to %s.bin (use --output)",
                                   m->tensors[m->outputs[k]].name, m->tensors[m->outputs[i]].name,
                                   names[i]);
    }
    for (uint32_t i = 0; !rc && i < m->n_outputs; i++) {
        const occ_tensor *t = &m->tensors[m->outputs[i]];
        char *file = malloc(strlen(dir) + strlen(names[i]) + 8);
        if (!file) {
            rc = occ_cli_error("run", "out of memory");
            break;
        }
        sprintf(file, "%s/%s.bin", dir, names[i]);
        occ_error e = {0};
        if (occ_cli_write_file(file, outs[i], (size_t)t->size * (size_t)batch, &e))
            rc = occ_cli_error("run", "output '%s': %s", t->name, e.msg);
        free(file);
    }
    for (uint32_t i = 0; names && i < m->n_outputs; i++)
        free(names[i]);
    free(names);
    return rc;
}

/* One timed run inside the enclave's measurement window (integrity of
 * paged enclave memory: a failure discards the result). */
static occ_status timed_run(occ_cli_enclave *enc, occ_engine *eng, void **ins, void **outs,
                            int trace, double *ms, occ_error *e)
{
    occ_cli_enclave_begin(enc, 1, trace);
    double s0 = occ_cli_now_ms();
    occ_status st = occ_engine_run(eng, (const void *const *)ins, outs, e);
    *ms = occ_cli_now_ms() - s0;
    occ_status se = st ? st : occ_cli_enclave_end(enc, e);
    return st ? st : se;
}

/* --lockstep: the driver (bench/paired.py) alternates several processes'
 * runs so that each ratio compares moments of the host seconds apart. After
 * a warm-up run, prints "ready"; each line read, "N [W]" (N = 1 when empty,
 * W = 0 when absent), gets W untimed runs, then N timed runs back to back,
 * and one line: the N runs' median in milliseconds. */
static occ_status lockstep_loop(occ_cli_enclave *enc, occ_engine *eng, void **ins, void **outs,
                                occ_error *e)
{
    double t[64], ms;
    char line[32];
    occ_status st = timed_run(enc, eng, ins, outs, 0, &ms, e);
    if (st)
        return st;
    printf("ready\n");
    fflush(stdout);
    while (fgets(line, sizeof line, stdin)) {
        int n = 1, w = 0;
        (void)sscanf(line, "%d %d", &n, &w);
        n = n < 1 ? 1 : n > 64 ? 64 : n;
        w = w < 0 ? 0 : w > 64 ? 64 : w;
        for (int r = 0; r < w; r++) /* untimed: threads and the host's vCPUs awake */
            if ((st = timed_run(enc, eng, ins, outs, 0, &ms, e)))
                return st;
        for (int r = 0; r < n; r++)
            if ((st = timed_run(enc, eng, ins, outs, 0, &t[r], e)))
                return st;
        qsort(t, (size_t)n, sizeof *t, occ_cli_cmp_double);
        printf("%.4f\n", n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]));
        fflush(stdout);
    }
    return OCC_OK;
}

int occ_cmd_run(int argc, char **argv)
{
    const char *path = NULL, *image = NULL, *output = NULL, *output_dir = NULL, *key_path = NULL;
    const char *inputs[OCC_MAX_CLI_INPUTS];
    int n_inputs = 0;
    int top = -1, threads = 0, repeat = 0, stats = 0, json = 0, er, batch = 1, loaders = 0;
    int lockstep = 0;
    occ_mode mode = OCC_MODE_NATIVE;
    unsigned long long budget = 0;
    occ_cli_enclave_opts eo;
    occ_cli_enclave_opts_default(&eo);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if ((er = occ_cli_enclave_arg(&eo, "run", argc, argv, &i)) != 0) {
            if (er < 0)
                return 1;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "--stats")) {
            stats = 1;
        } else if (!strcmp(a, "--lockstep")) {
            lockstep = 1;
        } else if (!strcmp(a, "--input") || !strcmp(a, "--image") || !strcmp(a, "--output") ||
                   !strcmp(a, "--output-dir") ||
                   !strcmp(a, "--top") || !strcmp(a, "--threads") || !strcmp(a, "--repeat") ||
                   !strcmp(a, "--mode") || !strcmp(a, "--budget") || !strcmp(a, "--batch") ||
                   !strcmp(a, "--loader-threads") || !strcmp(a, "--key")) {
            if (!v)
                return occ_cli_error("run", "%s needs a value", a);
            i++;
            if (!strcmp(a, "--input")) {
                if (n_inputs == OCC_MAX_CLI_INPUTS)
                    return occ_cli_error("run", "more than %d --input options", OCC_MAX_CLI_INPUTS);
                inputs[n_inputs++] = v;
            } else if (!strcmp(a, "--output-dir"))
                output_dir = v;
            else if (!strcmp(a, "--key"))
                key_path = v;
            else if (!strcmp(a, "--image"))
                image = v;
            else if (!strcmp(a, "--output"))
                output = v;
            else if (!strcmp(a, "--top") && occ_cli_parse_int(v, 0, 1 << 20, &top))
                return occ_cli_error("run", "--top needs a count, got '%s'", v);
            else if (!strcmp(a, "--threads") && occ_cli_parse_int(v, 0, 1024, &threads))
                return occ_cli_error("run", "--threads needs 0..1024, got '%s'", v);
            else if (!strcmp(a, "--repeat") && occ_cli_parse_int(v, 1, 1000000, &repeat))
                return occ_cli_error("run", "--repeat needs a count >= 1, got '%s'", v);
            else if (!strcmp(a, "--batch") && occ_cli_parse_int(v, 1, 4096, &batch))
                return occ_cli_error("run", "--batch needs 1..4096, got '%s'", v);
            else if (!strcmp(a, "--loader-threads") && occ_cli_parse_int(v, 1, 64, &loaders))
                return occ_cli_error("run", "--loader-threads needs 1..64, got '%s'", v);
            else if (!strcmp(a, "--budget") && (occ_parse_size(v, &budget) || budget == 0))
                return occ_cli_error("run", "--budget needs a size such as 93M, 32M or 512K, got '%s'", v);
            else if (!strcmp(a, "--mode")) {
                if (!strcmp(v, "native"))
                    mode = OCC_MODE_NATIVE;
                else if (!strcmp(v, "baseline"))
                    mode = OCC_MODE_BASELINE;
                else if (!strcmp(v, "occlumency"))
                    mode = OCC_MODE_OCCLUMENCY;
                else
                    return occ_cli_error("run", "--mode is native, baseline or occlumency, got '%s'", v);
            }
        } else if (a[0] == '-') {
            usage(stderr);
            return occ_cli_error("run", "unknown option '%s'", a);
        } else if (!path) {
            path = a;
        } else {
            return occ_cli_error("run", "more than one model given ('%s' and '%s')", path, a);
        }
    }
    if (!path) {
        usage(stderr);
        return occ_cli_error("run", "no model given");
    }
    if (n_inputs && image)
        return occ_cli_error("run", "give --input [NAME=]FILE (once per input) or --image FILE");
    int top_given = top >= 0;
    if (top < 0)
        top = output || output_dir ? 0 : 5;

    occ_error e = {0};
    occ_packfile *pf = NULL;
    occ_model *m = NULL;
    occ_engine *eng = NULL;
    occ_cli_enclave *enc = NULL;
    void **ins = NULL, **outs = NULL;
    const char **in_files = NULL;
    double *times = NULL;
    cJSON *root = NULL;
    int rc = 1;
    uint8_t key[32];
    memset(key, 0, sizeof key);

    if (occ_cli_open_model(path, &pf, &m, &e)) {
        occ_cli_error("run", "%s", e.msg);
        goto done;
    }
    ins = calloc(m->n_inputs + 1u, sizeof *ins);
    outs = calloc(m->n_outputs + 1u, sizeof *outs);
    in_files = calloc(m->n_inputs + 1u, sizeof *in_files);
    if (!ins || !outs || !in_files) {
        occ_cli_error("run", "out of memory");
        goto done;
    }
    if (m->n_inputs != 1 && image) {
        occ_cli_error("run", "--image needs a model with one input; this one has %u", m->n_inputs);
        goto done;
    }
    if (image && occ_tensor_dtype(&m->tensors[m->inputs[0]]) != OCC_DTYPE_FLOAT) {
        occ_cli_error("run", "--image needs a float32 input; '%s' is %s",
                      m->tensors[m->inputs[0]].name,
                      occ_dtype_name(occ_tensor_dtype(&m->tensors[m->inputs[0]])));
        goto done;
    }
    if (!image && assign_inputs(m, inputs, n_inputs, in_files))
        goto done;
    for (uint32_t i = 0; i < m->n_inputs; i++) {
        const occ_tensor *t = &m->tensors[m->inputs[i]];
        ins[i] = malloc(t->size * (size_t)batch + 1); /* + 1: an empty input is legal */
        if (!ins[i]) {
            occ_cli_error("run", "out of memory for input '%s'", t->name);
            goto done;
        }
        char what[256], shape[128];
        occ_cli_shape(t, shape, sizeof shape);
        snprintf(what, sizeof what, "input '%s' (%s %s)", t->name,
                 occ_dtype_name(occ_tensor_dtype(t)), shape);
        const char *input = in_files[i];
        occ_status s;
        if (input && batch > 1 &&
            occ_cli_read_exact(input, ins[i], t->size * (size_t)batch, what, &e) == OCC_OK) {
            s = OCC_OK; /* N tensors back to back */
        } else {
            s = input ? occ_cli_read_exact(input, ins[i], t->size, what, &e)
                      : occ_image_preprocess(image, &m->pre, ins[i], (size_t)(t->size / 4), &e);
            for (int b = 1; !s && b < batch; b++) /* one tensor, used N times */
                memcpy((char *)ins[i] + (size_t)b * t->size, ins[i], t->size);
        }
        if (s) {
            occ_cli_error("run", "%s", e.msg);
            goto done;
        }
    }
    for (uint32_t i = 0; i < m->n_outputs; i++) {
        outs[i] = malloc(m->tensors[m->outputs[i]].size * (size_t)batch + 1); /* (empty) */
        if (!outs[i]) {
            occ_cli_error("run", "out of memory for output");
            goto done;
        }
    }

    occ_engine_opts opts = {.threads = threads,
                            .loader_threads = loaders,
                            .mode = mode,
                            .budget = budget,
                            .batch = (uint32_t)batch};
    occ_read_fn read_fn;
    void *read_arg;
    if (occ_cli_enclave_open(&eo, pf, &enc, &e)) {
        occ_cli_error("run", "%s", e.msg);
        goto done;
    }
    if (key_path) {
        if (occ_cli_read_key(key_path, key, 0, NULL, &e)) {
            occ_cli_error("run", "--key: %s", e.msg);
            goto done;
        }
        opts.weights_key = key;
    }
    occ_cli_enclave_engine(enc, &opts, &read_fn, &read_arg);
    double t0 = occ_cli_now_ms();
    if (occ_engine_create(m, &opts, read_fn, read_arg, &eng, &e)) {
        occ_cli_error("run", "%s: %s", path, e.msg);
        goto done;
    }
    double load_ms = occ_cli_now_ms() - t0;
    OPENSSL_cleanse(key, sizeof key); /* the engine keeps no copy */
    occ_cli_enclave_created(enc, eng);

    if (lockstep) {
        if (lockstep_loop(enc, eng, ins, outs, &e)) {
            occ_cli_error("run", "%s", e.msg);
            goto done;
        }
        rc = 0;
        goto done;
    }
    int runs = repeat > 0 ? repeat : 1;
    times = calloc((size_t)runs, sizeof *times);
    if (!times) {
        occ_cli_error("run", "out of memory");
        goto done;
    }
    if (repeat > 0) {
        occ_cli_enclave_begin(enc, 0, 0);
        if (occ_engine_run(eng, (const void *const *)ins, outs, &e) || occ_cli_enclave_end(enc, &e)) {
            occ_cli_error("run", "%s", e.msg);
            goto done;
        }
    }
    /* OCC_PROFILE=1: per-layer times of the last run and the compute
     * thread's wait for streamed weights, on stderr (for tuning) */
    const char *prof = getenv("OCC_PROFILE");
    occ_engine_set_profiling(eng, prof && *prof && *prof != '0');
    for (int r = 0; r < runs; r++)
        if (timed_run(enc, eng, ins, outs, r == 0, &times[r], &e)) {
            occ_cli_error("run", "%s", e.msg);
            goto done;
        }
    if (prof && *prof && *prof != '0') {
        const uint64_t *nt = occ_engine_node_times(eng);
        for (uint32_t i = 0; nt && i < m->n_nodes; i++)
            if (nt[i])
                fprintf(stderr, "profile %-40s %-14s %8.3f ms\n",
                        m->nodes[i].name ? m->nodes[i].name : "?", m->nodes[i].op,
                        nt[i] / 1e6);
        fprintf(stderr, "profile stall (waiting for streamed weights) %.3f ms\n",
                occ_engine_stall_ns(eng) / 1e6);
    }
    double sorted_min = times[0], mean = 0;
    for (int r = 0; r < runs; r++)
        mean += times[r] / runs;
    qsort(times, (size_t)runs, sizeof *times, occ_cli_cmp_double);
    sorted_min = times[0];
    double median = runs % 2 ? times[runs / 2] : 0.5 * (times[runs / 2 - 1] + times[runs / 2]);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double peak_rss = (double)ru.ru_maxrss * 1024.0;

    if (output) {
        /* All outputs, concatenated in the model's output order. */
        FILE *f = fopen(output, "wb");
        int ok = f != NULL;
        for (int b = 0; ok && b < batch; b++)
            for (uint32_t i = 0; ok && i < m->n_outputs; i++) {
                size_t sz = m->tensors[m->outputs[i]].size;
                ok = fwrite((char *)outs[i] + (size_t)b * sz, 1, sz, f) == sz;
            }
        if (f && fclose(f))
            ok = 0;
        if (!ok) {
            occ_cli_error("run", "cannot write %s", output);
            goto done;
        }
    }

    if (output_dir && write_output_dir(m, output_dir, outs, batch))
        goto done;

    /* --top ranks the first float32 output */
    uint32_t oi = 0;
    while (oi < m->n_outputs && occ_tensor_dtype(&m->tensors[m->outputs[oi]]) != OCC_DTYPE_FLOAT)
        oi++;
    if (oi == m->n_outputs) {
        if (top_given && top > 0) {
            occ_cli_error("run", "--top needs a float32 output; this model's outputs are all "
                          "integer or bool (use --output-dir)");
            goto done;
        }
        top = 0;
        oi = 0;
    }
    const occ_tensor *ot = &m->tensors[m->outputs[oi]];
    const float *o0 = top ? outs[oi] : NULL;
    size_t count = top ? (size_t)(ot->size / 4) : 0;
    size_t k = (size_t)top;
    size_t *idx = k ? calloc(k, sizeof *idx) : NULL;
    if (k && !idx) {
        occ_cli_error("run", "out of memory");
        goto done;
    }
    k = k ? occ_topk(o0, count, k, idx) : 0;
    /* Softmax over that output, for a probability next to the raw score. */
    double maxv = -INFINITY, sum = 0;
    for (size_t i = 0; i < count; i++)
        maxv = o0[i] > maxv ? o0[i] : maxv;
    for (size_t i = 0; i < count; i++)
        sum += exp(o0[i] - maxv);

    char id[65];
    occ_hex(m->model_id, 32, id);
    const char *mode_name = mode == OCC_MODE_BASELINE     ? "baseline"
                            : mode == OCC_MODE_OCCLUMENCY ? "occlumency"
                                                          : "native";
    occ_engine_stats es;
    occ_engine_get_stats(eng, &es);
    if (json) {
        root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "model_id", id);
        cJSON_AddStringToObject(root, "mode", mode_name);
        if (batch > 1)
            cJSON_AddNumberToObject(root, "batch", batch);
        cJSON *arr = cJSON_AddArrayToObject(root, "top");
        for (size_t i = 0; i < k; i++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "index", (double)idx[i]);
            if (idx[i] < m->n_labels)
                cJSON_AddStringToObject(o, "label", m->labels[idx[i]]);
            else
                cJSON_AddNullToObject(o, "label");
            cJSON_AddNumberToObject(o, "score", o0[idx[i]]);
            cJSON_AddNumberToObject(o, "probability", exp(o0[idx[i]] - maxv) / sum);
            cJSON_AddItemToArray(arr, o);
        }
        if (stats || repeat > 0) {
            cJSON_AddNumberToObject(root, "median_ms", median);
            cJSON_AddNumberToObject(root, "min_ms", sorted_min);
            cJSON_AddNumberToObject(root, "mean_ms", mean);
            cJSON_AddNumberToObject(root, "runs", runs);
            cJSON_AddNumberToObject(root, "threads", threads);
            cJSON_AddNumberToObject(root, "load_ms", load_ms);
            cJSON_AddNumberToObject(root, "peak_rss_bytes", peak_rss);
            if (stats) {
                cJSON_AddNumberToObject(root, "peak_enclave_bytes", (double)es.peak_enclave_bytes);
                cJSON_AddNumberToObject(root, "budget_bytes", (double)es.budget_bytes);
                cJSON_AddNumberToObject(root, "plan_peak_bytes", (double)es.plan_peak_bytes);
                cJSON_AddNumberToObject(root, "bytes_loaded", (double)es.bytes_loaded);
                cJSON_AddNumberToObject(root, "bytes_verified", (double)es.bytes_verified);
                cJSON_AddNumberToObject(root, "bytes_decrypted", (double)es.bytes_decrypted);
                cJSON_AddBoolToObject(root, "encrypted", m->weights_crypt != 0);
                cJSON_AddNumberToObject(root, "chunks_loaded", (double)es.chunks_loaded);
                cJSON_AddNumberToObject(root, "loader_threads", loaders ? loaders : 1);
            }
            occ_cli_enclave_json(enc, eng, root);
        }
        occ_cli_print_json(root);
    } else {
        for (size_t i = 0; i < k; i++) {
            const char *label = idx[i] < m->n_labels ? m->labels[idx[i]] : "";
            printf("%2zu. %-24s (class %zu)  score %.6g  p=%.4f\n", i + 1, label, idx[i], o0[idx[i]],
                   exp(o0[idx[i]] - maxv) / sum);
        }
        if (stats || repeat > 0)
            printf("latency: median %.3f ms, min %.3f ms over %d run(s); load %.1f ms; peak RSS %.1f MiB\n",
                   median, sorted_min, runs, load_ms, peak_rss / (1 << 20));
        if (stats) {
            printf("mode %s: peak enclave memory %.2f MiB (measured; plan %.2f MiB)", mode_name,
                   es.peak_enclave_bytes / 1048576.0, es.plan_peak_bytes / 1048576.0);
            if (es.budget_bytes)
                printf(", budget %.2f MiB", es.budget_bytes / 1048576.0);
            printf("\nweights: %llu chunks/segments, %.1f MiB loaded, %.1f MiB verified (load and runs)",
                   (unsigned long long)es.chunks_loaded, es.bytes_loaded / 1048576.0,
                   es.bytes_verified / 1048576.0);
            if (m->weights_crypt)
                printf(", %.1f MiB decrypted (AES-256-GCM)", es.bytes_decrypted / 1048576.0);
            printf("\n");
        }
        if (stats || repeat > 0)
            occ_cli_enclave_print(enc, eng, stdout);
    }
    free(idx);
    rc = 0;

done:
    OPENSSL_cleanse(key, sizeof key);
    cJSON_Delete(root);
    occ_engine_free(eng);
    occ_cli_enclave_close(enc);
    if (ins)
        for (uint32_t i = 0; m && i < m->n_inputs; i++)
            free(ins[i]);
    if (outs)
        for (uint32_t i = 0; m && i < m->n_outputs; i++)
            free(outs[i]);
    free(ins);
    free(outs);
    free(in_files);
    free(times);
    occ_model_free(m);
    occ_packfile_close(pf);
    return rc;
}
