/* occ infer: attested inference against an `occ serve` server.
 * Exit status: 0 ok, 1 refused by the policy or the request failed, 2 usage
 * or unreadable input. */
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "cli/common.h"
#include "occ/attest.h"
#include "occ/client.h"

#define MAX_TENSOR_ARGS 256

static void usage(FILE *f)
{
    fputs("usage: occ infer https://HOST:PORT --model NAME (--tensor [NAME=]X.bin ... | --image FILE)\n"
          "                 --policy P.json --root ROOT [options]\n"
          "\n"
          "Verifies the server's enclave (RA-TLS certificate: quote, key binding, policy) inside the TLS\n"
          "handshake, sends nothing if it is refused, then runs one inference over the attested channel.\n"
          "Images are decoded and preprocessed here with the model's published preprocessing.\n"
          "\n"
          "  --model NAME       model name on the server\n"
          "  --tensor [NAME=]FILE  raw little-endian input NAME in its declared type and shape (repeat it,\n"
          "                     one per input; a bare FILE for a one-input model)\n"
          "  --image FILE       PNG/JPEG/BMP image\n"
          "  --policy FILE      policy JSON (docs/attestation.md): it must pin the enclave (mrenclave, or\n"
          "                     mrsigner with isv_prod_id) and the model (model_id, or models with an\n"
          "                     entry for NAME); emulated servers also need \"allow_emulated\": true\n"
          "  --insecure         accept a policy that pins no enclave or no model (or no --policy):\n"
          "                     any enclave the root vouches for\n"
          "  --root FILE        trust anchor (emulated servers: DIR/root.pem of their --emu-dir)\n"
          "  --output FILE      write the raw output tensor(s), back to back in output order\n"
          "  --output-dir DIR   write each output to DIR/<output name>.bin (characters outside\n"
          "                     [A-Za-z0-9_.-] become _)\n"
          "  --top K            print the K best classes of the first float32 output (default 5\n"
          "                     without --output/--output-dir)\n"
          "  --json             one JSON object (top, model_id, verdict facts, timings)\n"
          "  --json-tensors     send and receive JSON tensors instead of the binary extension\n"
          "  --repeat N         run N inferences on the connection, report median latency\n"
          "  --tensors FILE     many inputs back to back (raw float32): one request each; --output\n"
          "                     gets all outputs in order; prints throughput and p50/p99 latency\n"
          "                     (timed once every connection is attested; the handshake apart)\n"
          "  --connections N    with --tensors: N attested connections in parallel (default 1)\n"
          "  -h, --help         this text\n",
          f);
}

typedef struct bulk {
    const char *url, *model;
    const occ_client_opts *o;
    const occ_client_model_info *info;
    const float *in;
    float *out;
    size_t n, out_count;
    int binary, conns;
    double *lat, *hs;
    int failed;
    pthread_mutex_t mu;
    /* every connection attested and open before the clock starts: the
     * throughput is the steady state, the handshake is reported apart */
    pthread_cond_t cv;
    int arrived, go;
    char err[OCC_ERROR_MSG_SIZE];
} bulk;

typedef struct bulk_arg {
    bulk *b;
    int t;
} bulk_arg;

static void *bulk_thread(void *p)
{
    bulk_arg *a = p;
    bulk *b = a->b;
    occ_error e = {0};
    occ_client *c = NULL;
    occ_status cs = occ_client_connect(b->url, b->o, NULL, &c, &e);
    pthread_mutex_lock(&b->mu);
    b->arrived++;
    pthread_cond_broadcast(&b->cv);
    while (!b->go)
        pthread_cond_wait(&b->cv, &b->mu);
    pthread_mutex_unlock(&b->mu);
    if (cs)
        goto fail;
    b->hs[a->t] = occ_client_handshake_ms(c);
    size_t ic = b->info->input_count;
    for (size_t i = (size_t)a->t; i < b->n; i += (size_t)b->conns) {
        occ_client_tensor *outs = NULL;
        size_t n_outs = 0;
        double t0 = occ_cli_now_ms();
        if (occ_client_infer(c, b->model, b->info->input_name, b->info->dims, b->info->ndim, b->in + i * ic,
                             b->binary, &outs, &n_outs, &e))
            goto fail;
        b->lat[i] = occ_cli_now_ms() - t0;
        size_t off = 0;
        for (size_t k = 0; k < n_outs && off + outs[k].count <= b->out_count; k++) {
            memcpy(b->out + i * b->out_count + off, outs[k].data, outs[k].size);
            off += outs[k].count;
        }
        occ_client_tensors_free(outs, n_outs);
        if (off != b->out_count) {
            occ_fail(&e, OCC_ERR_FORMAT, "answer %zu has %zu output values, the first had %zu", i, off,
                     b->out_count);
            goto fail;
        }
    }
    occ_client_close(c);
    return NULL;
fail:
    occ_client_close(c);
    pthread_mutex_lock(&b->mu);
    if (!b->failed)
        snprintf(b->err, sizeof b->err, "%s", e.msg);
    b->failed = 1;
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

/* --tensors: every input of FILE, over `conns` attested connections. */
static int run_bulk(occ_client *c, const char *url, const char *model, const occ_client_opts *o,
                    const occ_client_model_info *info, const char *path, const char *output, int conns, int binary,
                    int json)
{
    occ_error e = {0};
    uint8_t *raw = NULL;
    size_t size = 0;
    if (occ_attest_read_file(path, (size_t)1 << 34, &raw, &size, &e)) {
        occ_cli_error("infer", "%s", e.msg);
        return 2;
    }
    size_t one = info->input_count * 4;
    if (!one || !size || size % one) {
        free(raw);
        occ_cli_error("infer", "%s: %zu bytes is not a whole number of %zu-byte inputs", path, size, one);
        return 2;
    }
    bulk b = {0};
    b.url = url;
    b.model = model;
    b.o = o;
    b.info = info;
    b.in = (const float *)raw;
    b.n = size / one;
    b.binary = binary;
    b.conns = conns;
    pthread_mutex_init(&b.mu, NULL);
    pthread_cond_init(&b.cv, NULL);
    /* the output size: from one answer on the first connection */
    occ_client_tensor *outs = NULL;
    size_t n_outs = 0;
    if (occ_client_infer(c, model, info->input_name, info->dims, info->ndim, b.in, binary, &outs, &n_outs, &e)) {
        free(raw);
        occ_cli_error("infer", "%s", e.msg);
        return 1;
    }
    for (size_t k = 0; k < n_outs; k++)
        b.out_count += outs[k].count;
    occ_client_tensors_free(outs, n_outs);
    b.out = malloc(b.n * b.out_count * 4);
    b.lat = calloc(b.n, sizeof *b.lat);
    b.hs = calloc((size_t)conns, sizeof *b.hs);
    pthread_t *th = calloc((size_t)conns, sizeof *th);
    bulk_arg *args = calloc((size_t)conns, sizeof *args);
    int rc = 1;
    if (!b.out || !b.lat || !b.hs || !th || !args) {
        occ_cli_error("infer", "out of memory");
        goto done;
    }
    int started = 0;
    for (int t = 0; t < conns; t++) {
        args[t].b = &b;
        args[t].t = t;
        if (pthread_create(&th[t], NULL, bulk_thread, &args[t]))
            break;
        started++;
    }
    pthread_mutex_lock(&b.mu);
    while (b.arrived < started)
        pthread_cond_wait(&b.cv, &b.mu);
    b.go = 1;
    pthread_cond_broadcast(&b.cv);
    pthread_mutex_unlock(&b.mu);
    double t0 = occ_cli_now_ms();
    for (int t = 0; t < started; t++)
        pthread_join(th[t], NULL);
    double wall = occ_cli_now_ms() - t0;
    if (started < conns || b.failed) {
        occ_cli_error("infer", "%s", b.failed ? b.err : "cannot start threads");
        goto done;
    }
    if (output) {
        FILE *f = fopen(output, "wb");
        int ok = f && fwrite(b.out, 4, b.n * b.out_count, f) == b.n * b.out_count;
        if (f && fclose(f))
            ok = 0;
        if (!ok) {
            occ_cli_error("infer", "cannot write %s", output);
            goto done;
        }
    }
    qsort(b.lat, b.n, sizeof *b.lat, occ_cli_cmp_double);
    double hs = 0;
    for (int t = 0; t < conns; t++)
        hs += b.hs[t] / conns;
    double p50 = b.lat[b.n / 2], p99 = b.lat[(size_t)((double)b.n * 0.99) < b.n ? (size_t)((double)b.n * 0.99) : b.n - 1];
    if (json) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "model", model);
        cJSON_AddStringToObject(r, "model_id", info->model_id);
        cJSON_AddNumberToObject(r, "requests", (double)b.n);
        cJSON_AddNumberToObject(r, "connections", conns);
        cJSON_AddNumberToObject(r, "seconds", wall / 1e3);
        cJSON_AddNumberToObject(r, "throughput_per_s", (double)b.n / (wall / 1e3));
        cJSON_AddNumberToObject(r, "p50_ms", p50);
        cJSON_AddNumberToObject(r, "p99_ms", p99);
        cJSON_AddNumberToObject(r, "handshake_ms", hs);
        occ_cli_print_json(r);
        cJSON_Delete(r);
    } else {
        printf("%zu requests over %d connection(s) in %.2f s: %.1f/s, latency p50 %.2f ms, p99 %.2f ms; "
               "handshake + attestation %.1f ms\n",
               b.n, conns, wall / 1e3, (double)b.n / (wall / 1e3), p50, p99, hs);
    }
    rc = 0;
done:
    free(raw);
    free(b.out);
    free(b.lat);
    free(b.hs);
    free(th);
    free(args);
    pthread_mutex_destroy(&b.mu);
    pthread_cond_destroy(&b.cv);
    return rc;
}

/* --output-dir: DIR/<safe name>.bin per output, as `occ run --output-dir`
 * (characters outside [A-Za-z0-9_.-] become '_'; two outputs that map to
 * one file are an error, not an overwrite). */
static int write_output_dir(const occ_client_tensor *outs, size_t n, const char *dir)
{
    char **names = calloc(n + 1, sizeof *names);
    int rc = names ? 0 : occ_cli_error("infer", "out of memory");
    for (size_t i = 0; !rc && i < n; i++) {
        const char *nm = *outs[i].name ? outs[i].name : "output";
        size_t len = strlen(nm);
        if (!(names[i] = malloc(len + 1))) {
            rc = occ_cli_error("infer", "out of memory");
            break;
        }
        for (size_t c = 0; c <= len; c++) {
            char ch = nm[c];
            int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
                     ch == '.' || ch == '-' || ch == '\0';
            names[i][c] = ok ? ch : '_';
        }
        for (size_t k = 0; !rc && k < i; k++)
            if (!strcmp(names[k], names[i]))
                rc = occ_cli_error("infer", "--output-dir: outputs '%s' and '%s' would both be written to %s.bin "
                                   "(use --output)", outs[k].name, outs[i].name, names[i]);
    }
    for (size_t i = 0; !rc && i < n; i++) {
        char *file = malloc(strlen(dir) + strlen(names[i]) + 8);
        if (!file) {
            rc = occ_cli_error("infer", "out of memory");
            break;
        }
        sprintf(file, "%s/%s.bin", dir, names[i]);
        occ_error e = {0};
        if (occ_cli_write_file(file, outs[i].data, outs[i].size, &e))
            rc = occ_cli_error("infer", "output '%s': %s", outs[i].name, e.msg);
        free(file);
    }
    for (size_t i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

int occ_cmd_infer(int argc, char **argv)
{
    const char *url = NULL, *model = NULL, *tensor = NULL, *image = NULL, *policy_path = NULL, *root_path = NULL,
               *output = NULL, *tensors = NULL, *output_dir = NULL;
    const char *tensor_args[MAX_TENSOR_ARGS];
    int n_tensor = 0;
    int top = -1, json = 0, binary = 1, repeat = 1, conns = 1, insecure = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "--json-tensors")) {
            binary = 0;
        } else if (!strcmp(a, "--insecure")) {
            insecure = 1;
        } else if (!strncmp(a, "https://", 8)) {
            url = a;
        } else if (a[0] == '-') {
            const char *v = i + 1 < argc ? argv[++i] : NULL;
            const char **slot = !strcmp(a, "--model")    ? &model
                                : !strcmp(a, "--image")  ? &image
                                : !strcmp(a, "--policy") ? &policy_path
                                : !strcmp(a, "--root")   ? &root_path
                                : !strcmp(a, "--output") ? &output
                                : !strcmp(a, "--tensors") ? &tensors
                                                         : NULL;
            if (!v) {
                occ_cli_error("infer", "%s needs a value", a);
                return 2;
            }
            if (!strcmp(a, "--tensor")) {
                if (n_tensor == MAX_TENSOR_ARGS) {
                    occ_cli_error("infer", "more than %d --tensor options", MAX_TENSOR_ARGS);
                    return 2;
                }
                tensor_args[n_tensor++] = v;
            } else if (!strcmp(a, "--output-dir")) {
                output_dir = v;
            } else if (slot) {
                *slot = v;
            } else if (!strcmp(a, "--top") || !strcmp(a, "--repeat") || !strcmp(a, "--connections")) {
                char *end = NULL;
                long x = strtol(v, &end, 10);
                if (!*v || *end || x < (a[2] == 't' ? 0 : 1) || x > (a[2] == 'c' ? 256 : 1000000)) {
                    occ_cli_error("infer", "%s needs a count, got '%s'", a, v);
                    return 2;
                }
                *(a[2] == 't' ? &top : a[2] == 'r' ? &repeat : &conns) = (int)x;
            } else {
                usage(stderr);
                occ_cli_error("infer", "unknown option '%s'", a);
                return 2;
            }
        } else {
            occ_cli_error("infer", "unexpected argument '%s' (the server is https://HOST:PORT)", a);
            return 2;
        }
    }
    tensor = n_tensor ? tensor_args[0] : NULL;
    if (!url || !model) {
        usage(stderr);
        occ_cli_error("infer", "give the server (https://HOST:PORT) and --model NAME");
        return 2;
    }
    if (!!tensor + !!image + !!tensors != 1) {
        occ_cli_error("infer", "give --tensor [NAME=]FILE (one per input), --image FILE or --tensors FILE");
        return 2;
    }
    if (top < 0)
        top = output || output_dir ? 0 : 5;

    signal(SIGPIPE, SIG_IGN); /* a server that closes gives an error, not a signal */
    occ_error e = {0};
    X509 *root = NULL;
    occ_attest_policy policy;
    occ_attest_policy_default(&policy);
    if ((root_path && occ_attest_root_load(root_path, &root, &e)) ||
        (policy_path && occ_attest_policy_load(policy_path, &policy, &e))) {
        occ_cli_error("infer", "%s", e.msg);
        X509_free(root);
        return 2;
    }
    char why[200];
    if (!occ_attest_policy_pinned(&policy, why, sizeof why)) {
        if (!insecure) {
            occ_cli_error("infer", "%s%s; refusing to send anything (pin them, see docs/attestation.md, or pass "
                                   "--insecure)",
                          policy_path ? "" : "no --policy: ", why);
            X509_free(root);
            return 2;
        }
        fprintf(stderr, "occ infer: --insecure: %s: any enclave the root vouches for is accepted\n", why);
    }
    if (!root)
        fprintf(stderr, "occ infer: no --root given: the server's evidence cannot be trusted and will be refused\n");

    int rc = 1;
    occ_client *c = NULL;
    occ_client_model_info info = {0};
    occ_client_tensor *outs = NULL;
    size_t n_outs = 0;
    occ_client_tensor *in_t = NULL;
    double *times = NULL;
    cJSON *root_json = NULL;
    occ_attest_verdict v;
    occ_client_opts o = {&policy, root, OCC_ATTEST_NOW, 30000, model, insecure};
    occ_status st = occ_client_connect(url, &o, &v, &c, &e);
    if (st) {
        occ_cli_error("infer", "%s", e.msg);
        if (st == OCC_ERR_INVALID)
            rc = 2;
        if (st == OCC_ERR_ATTEST)
            for (size_t i = 1; i < v.reason_count; i++)
                fprintf(stderr, "  also: %s\n", v.reasons[i]);
        goto done;
    }
    if (v.emulated)
        fprintf(stderr, "occ infer: !!! EMULATED enclave: the quote is NOT hardware-backed\n");
    if (occ_client_model_info_get(c, model, &info, &e)) {
        occ_cli_error("infer", "%s", e.msg);
        goto done;
    }
    if ((tensors || image) && (info.n_inputs != 1 || info.input_dtype != OCC_DTYPE_FLOAT)) {
        occ_cli_error("infer", "%s takes a model with one FP32 input; '%s' has %zu input(s) (first %s): use "
                      "--tensor NAME=FILE", tensors ? "--tensors" : "--image", model, info.n_inputs,
                      occ_client_datatype(info.input_dtype));
        rc = 2;
        goto done;
    }
    if (tensors) {
        rc = run_bulk(c, url, model, &o, &info, tensors, output, conns, binary, json);
        goto done;
    }
    times = calloc((size_t)repeat, sizeof *times);
    in_t = calloc(info.n_inputs, sizeof *in_t);
    if (!times || !in_t) {
        occ_cli_error("infer", "out of memory");
        goto done;
    }
    for (size_t i = 0; i < info.n_inputs; i++) {
        in_t[i] = info.inputs[i];
        in_t[i].data = NULL;
    }
    if (tensor) {
        /* NAME=FILE per input, or a bare FILE for a one-input model */
        const char *files[MAX_TENSOR_ARGS] = {0};
        for (int a = 0; a < n_tensor; a++) {
            const char *eq = strchr(tensor_args[a], '=');
            size_t hit = SIZE_MAX;
            for (size_t i = 0; eq && i < info.n_inputs; i++)
                if (strlen(info.inputs[i].name) == (size_t)(eq - tensor_args[a]) &&
                    !strncmp(info.inputs[i].name, tensor_args[a], (size_t)(eq - tensor_args[a])))
                    hit = i;
            if (hit == SIZE_MAX && info.n_inputs != 1) {
                char list[512];
                size_t lo = 0;
                list[0] = '\0';
                for (size_t i = 0; i < info.n_inputs && lo < sizeof list; i++)
                    lo += (size_t)snprintf(list + lo, sizeof list - lo, "%s%s", i ? ", " : "", info.inputs[i].name);
                occ_cli_error("infer", "--tensor %s: name the input as NAME=FILE (model '%s' takes %s)",
                              tensor_args[a], model, list);
                rc = 2;
                goto done;
            }
            if (hit == SIZE_MAX)
                hit = 0; /* a bare FILE (which may itself contain '=') */
            else
                tensor_args[a] = eq + 1;
            if (hit >= MAX_TENSOR_ARGS || files[hit]) {
                occ_cli_error("infer", "input '%s' is given twice", info.inputs[hit < info.n_inputs ? hit : 0].name);
                rc = 2;
                goto done;
            }
            files[hit] = tensor_args[a];
        }
        for (size_t i = 0; i < info.n_inputs; i++) {
            occ_client_tensor *t = &in_t[i];
            char what[400];
            snprintf(what, sizeof what, "input '%s' (%zu %s values)", t->name, t->count,
                     occ_client_datatype(t->dtype));
            if (i >= MAX_TENSOR_ARGS || !files[i]) {
                occ_cli_error("infer", "missing input '%s' (%s, %zu values): give --tensor %s=FILE", t->name,
                              occ_client_datatype(t->dtype), t->count, t->name);
                rc = 2;
                goto done;
            }
            if (!(t->data = malloc(t->size ? t->size : 1))) {
                occ_cli_error("infer", "out of memory");
                goto done;
            }
            if (occ_cli_read_exact(files[i], t->data, t->size, what, &e)) {
                occ_cli_error("infer", "%s", e.msg);
                rc = 2;
                goto done;
            }
        }
    } else {
        if (!info.pre.present) {
            occ_cli_error("infer", "model '%s' publishes no image preprocessing; use --tensor", model);
            goto done;
        }
        if (!(in_t[0].data = malloc(in_t[0].size + 4))) {
            occ_cli_error("infer", "out of memory");
            goto done;
        }
        if (occ_image_preprocess(image, &info.pre, in_t[0].data, info.input_count, &e)) {
            occ_cli_error("infer", "%s", e.msg);
            rc = 2;
            goto done;
        }
    }
    for (int r = 0; r < repeat; r++) {
        occ_client_tensors_free(outs, n_outs);
        outs = NULL;
        double t0 = occ_cli_now_ms();
        if (occ_client_infer_tensors(c, model, in_t, info.n_inputs, binary, &outs, &n_outs, &e)) {
            occ_cli_error("infer", "%s", e.msg);
            goto done;
        }
        times[r] = occ_cli_now_ms() - t0;
    }
    qsort(times, (size_t)repeat, sizeof *times, occ_cli_cmp_double);
    double median = repeat % 2 ? times[repeat / 2] : 0.5 * (times[repeat / 2 - 1] + times[repeat / 2]);
    if (output) {
        FILE *f = fopen(output, "wb");
        int ok = f != NULL;
        for (size_t i = 0; ok && i < n_outs; i++)
            ok = fwrite(outs[i].data, 1, outs[i].size, f) == outs[i].size;
        if (f && fclose(f))
            ok = 0;
        if (!ok) {
            occ_cli_error("infer", "cannot write %s", output);
            goto done;
        }
    }
    if (output_dir && write_output_dir(outs, n_outs, output_dir))
        goto done;
    /* --top ranks the first FP32 output */
    size_t ti = 0;
    while (ti < n_outs && outs[ti].dtype != OCC_DTYPE_FLOAT)
        ti++;
    if (ti == n_outs) {
        if (top && !output && !output_dir && !json)
            for (size_t i = 0; i < n_outs; i++)
                printf("output %s: %s, %zu values (use --output-dir)\n", outs[i].name,
                       occ_client_datatype(outs[i].dtype), outs[i].count);
        top = 0;
        ti = 0;
    }
    const float *top_data = (const float *)outs[ti].data;
    size_t count = top ? outs[ti].count : 0, k = (size_t)top;
    size_t *idx = k ? calloc(k, sizeof *idx) : NULL;
    k = idx ? occ_topk(top_data, count, k, idx) : 0;
    double maxv = -INFINITY, sum = 0;
    for (size_t i = 0; i < count; i++)
        maxv = top_data[i] > maxv ? top_data[i] : maxv;
    for (size_t i = 0; i < count; i++)
        sum += exp(top_data[i] - maxv);
    char mre[65];
    occ_hex(v.mrenclave, 32, mre);
    if (json) {
        root_json = cJSON_CreateObject();
        cJSON_AddStringToObject(root_json, "model", model);
        cJSON_AddStringToObject(root_json, "model_id", info.model_id);
        cJSON_AddStringToObject(root_json, "mrenclave", mre);
        cJSON_AddBoolToObject(root_json, "emulated", v.emulated);
        cJSON_AddBoolToObject(root_json, "hardware_backed", !v.emulated);
        cJSON *arr = cJSON_AddArrayToObject(root_json, "top");
        for (size_t i = 0; i < k; i++) {
            cJSON *t = cJSON_CreateObject();
            cJSON_AddNumberToObject(t, "index", (double)idx[i]);
            if (idx[i] < info.n_labels)
                cJSON_AddStringToObject(t, "label", info.labels[idx[i]]);
            else
                cJSON_AddNullToObject(t, "label");
            cJSON_AddNumberToObject(t, "score", top_data[idx[i]]);
            cJSON_AddNumberToObject(t, "probability", exp(top_data[idx[i]] - maxv) / sum);
            cJSON_AddItemToArray(arr, t);
        }
        cJSON_AddNumberToObject(root_json, "handshake_ms", occ_client_handshake_ms(c));
        cJSON_AddNumberToObject(root_json, "median_ms", median);
        cJSON_AddNumberToObject(root_json, "runs", repeat);
        occ_cli_print_json(root_json);
    } else {
        for (size_t i = 0; i < k; i++) {
            const char *label = idx[i] < info.n_labels ? info.labels[idx[i]] : "";
            printf("%2zu. %-24s (class %zu)  score %.6g  p=%.4f\n", i + 1, label, idx[i], top_data[idx[i]],
                   exp(top_data[idx[i]] - maxv) / sum);
        }
        if (repeat > 1)
            printf("latency: median %.3f ms over %d request(s); handshake + attestation %.1f ms\n", median, repeat,
                   occ_client_handshake_ms(c));
    }
    free(idx);
    rc = 0;
done:
    cJSON_Delete(root_json);
    occ_client_tensors_free(outs, n_outs);
    occ_client_close(c);
    X509_free(root);
    for (size_t i = 0; in_t && i < info.n_inputs; i++)
        free(in_t[i].data);
    free(in_t);
    occ_client_model_info_free(&info);
    free(times);
    return rc;
}
