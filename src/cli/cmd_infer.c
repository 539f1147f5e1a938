/* occ infer: attested inference against an `occ serve` server.
 * Exit status: 0 ok, 1 refused by the policy or the request failed, 2 usage
 * or unreadable input. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "cli/common.h"
#include "occ/attest.h"
#include "occ/client.h"

static void usage(FILE *f)
{
    fputs("usage: occ infer https://HOST:PORT --model NAME (--tensor X.bin | --image FILE)\n"
          "                 --policy P.json --root ROOT [options]\n"
          "\n"
          "Verifies the server's enclave (RA-TLS certificate: quote, key binding, policy) inside the TLS\n"
          "handshake, sends nothing if it is refused, then runs one inference over the attested channel.\n"
          "Images are decoded and preprocessed here with the model's published preprocessing.\n"
          "\n"
          "  --model NAME       model name on the server\n"
          "  --tensor FILE      raw little-endian float32 input (the model's input shape)\n"
          "  --image FILE       PNG/JPEG/BMP image\n"
          "  --policy FILE      policy JSON (docs/attestation.md): pin mrenclave and model_id\n"
          "  --root FILE        trust anchor (emulated servers: DIR/root.pem of their --emu-dir)\n"
          "  --output FILE      write the raw float32 output tensor(s), in output order\n"
          "  --top K            print the K best classes (default 5 without --output)\n"
          "  --json             one JSON object (top, model_id, verdict facts, timings)\n"
          "  --json-tensors     send and receive JSON tensors instead of the binary extension\n"
          "  --repeat N         run N inferences on the connection, report median latency\n"
          "  -h, --help         this text\n",
          f);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int occ_cmd_infer(int argc, char **argv)
{
    const char *url = NULL, *model = NULL, *tensor = NULL, *image = NULL, *policy_path = NULL, *root_path = NULL,
               *output = NULL;
    int top = -1, json = 0, binary = 1, repeat = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "--json-tensors")) {
            binary = 0;
        } else if (!strncmp(a, "https://", 8)) {
            url = a;
        } else if (a[0] == '-') {
            const char *v = i + 1 < argc ? argv[++i] : NULL;
            const char **slot = !strcmp(a, "--model")    ? &model
                                : !strcmp(a, "--tensor") ? &tensor
                                : !strcmp(a, "--image")  ? &image
                                : !strcmp(a, "--policy") ? &policy_path
                                : !strcmp(a, "--root")   ? &root_path
                                : !strcmp(a, "--output") ? &output
                                                         : NULL;
            if (!v) {
                occ_cli_error("infer", "%s needs a value", a);
                return 2;
            }
            if (slot) {
                *slot = v;
            } else if (!strcmp(a, "--top") || !strcmp(a, "--repeat")) {
                char *end = NULL;
                long x = strtol(v, &end, 10);
                if (!*v || *end || x < (a[2] == 't' ? 0 : 1) || x > 1000000) {
                    occ_cli_error("infer", "%s needs a count, got '%s'", a, v);
                    return 2;
                }
                *(a[2] == 't' ? &top : &repeat) = (int)x;
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
    if (!url || !model) {
        usage(stderr);
        occ_cli_error("infer", "give the server (https://HOST:PORT) and --model NAME");
        return 2;
    }
    if (!tensor == !image) {
        occ_cli_error("infer", "give exactly one of --tensor FILE or --image FILE");
        return 2;
    }
    if (!policy_path)
        fprintf(stderr, "occ infer: warning: no --policy: any enclave and any model the root vouches for is "
                        "accepted\n");
    if (top < 0)
        top = output ? 0 : 5;

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
    if (!root)
        fprintf(stderr, "occ infer: no --root given: the server's evidence cannot be trusted and will be refused\n");

    int rc = 1;
    occ_client *c = NULL;
    occ_client_model_info info = {0};
    occ_client_tensor *outs = NULL;
    size_t n_outs = 0;
    float *in = NULL;
    double *times = NULL;
    cJSON *root_json = NULL;
    occ_attest_verdict v;
    occ_client_opts o = {&policy, root, OCC_ATTEST_NOW, 30000};
    occ_status st = occ_client_connect(url, &o, &v, &c, &e);
    if (st) {
        occ_cli_error("infer", "%s", e.msg);
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
    in = malloc(info.input_count * 4 + 4);
    times = calloc((size_t)repeat, sizeof *times);
    if (!in || !times) {
        occ_cli_error("infer", "out of memory");
        goto done;
    }
    if (tensor) {
        char what[300];
        snprintf(what, sizeof what, "input '%s' (%zu floats)", info.input_name, info.input_count);
        if (occ_cli_read_exact(tensor, in, info.input_count * 4, what, &e)) {
            occ_cli_error("infer", "%s", e.msg);
            rc = 2;
            goto done;
        }
    } else {
        if (!info.pre.present) {
            occ_cli_error("infer", "model '%s' publishes no image preprocessing; use --tensor", model);
            goto done;
        }
        if (occ_image_preprocess(image, &info.pre, in, info.input_count, &e)) {
            occ_cli_error("infer", "%s", e.msg);
            rc = 2;
            goto done;
        }
    }
    for (int r = 0; r < repeat; r++) {
        occ_client_tensors_free(outs, n_outs);
        outs = NULL;
        double t0 = occ_cli_now_ms();
        if (occ_client_infer(c, model, info.input_name, info.dims, info.ndim, in, binary, &outs, &n_outs, &e)) {
            occ_cli_error("infer", "%s", e.msg);
            goto done;
        }
        times[r] = occ_cli_now_ms() - t0;
    }
    qsort(times, (size_t)repeat, sizeof *times, cmp_double);
    double median = repeat % 2 ? times[repeat / 2] : 0.5 * (times[repeat / 2 - 1] + times[repeat / 2]);
    if (output) {
        FILE *f = fopen(output, "wb");
        int ok = f != NULL;
        for (size_t i = 0; ok && i < n_outs; i++)
            ok = fwrite(outs[i].data, 4, outs[i].count, f) == outs[i].count;
        if (f && fclose(f))
            ok = 0;
        if (!ok) {
            occ_cli_error("infer", "cannot write %s", output);
            goto done;
        }
    }
    size_t count = outs[0].count, k = (size_t)top;
    size_t *idx = k ? calloc(k, sizeof *idx) : NULL;
    k = idx ? occ_topk(outs[0].data, count, k, idx) : 0;
    double maxv = -INFINITY, sum = 0;
    for (size_t i = 0; i < count; i++)
        maxv = outs[0].data[i] > maxv ? outs[0].data[i] : maxv;
    for (size_t i = 0; i < count; i++)
        sum += exp(outs[0].data[i] - maxv);
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
            cJSON_AddNumberToObject(t, "score", outs[0].data[idx[i]]);
            cJSON_AddNumberToObject(t, "probability", exp(outs[0].data[idx[i]] - maxv) / sum);
            cJSON_AddItemToArray(arr, t);
        }
        cJSON_AddNumberToObject(root_json, "handshake_ms", occ_client_handshake_ms(c));
        cJSON_AddNumberToObject(root_json, "median_ms", median);
        cJSON_AddNumberToObject(root_json, "runs", repeat);
        occ_cli_print_json(root_json);
    } else {
        for (size_t i = 0; i < k; i++) {
            const char *label = idx[i] < info.n_labels ? info.labels[idx[i]] : "";
            printf("%2zu. %-24s (class %zu)  score %.6g  p=%.4f\n", i + 1, label, idx[i], outs[0].data[idx[i]],
                   exp(outs[0].data[idx[i]] - maxv) / sum);
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
    occ_client_model_info_free(&info);
    occ_client_close(c);
    X509_free(root);
    free(in);
    free(times);
    return rc;
}
