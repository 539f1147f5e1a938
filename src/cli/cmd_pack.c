/* occ pack IN.onnx -o OUT.occ [options] */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cli/cli.h"
#include "cli/keyfile.h"
#include "occ/packer.h"

static void pack_usage(FILE *f)
{
    fputs("usage: occ pack IN.onnx -o OUT.occ [options]\n"
          "\n"
          "Converts an ONNX model into a .occ pack: folds constants and batch norm,\n"
          "infers shapes, orders the nodes, and writes the manifest and the weight\n"
          "chunks (page-aligned, each with its SHA-256). Prints the model id.\n"
          "\n"
          "options:\n"
          "  -o, --output FILE        the pack to write (required)\n"
          "  --name NAME              model name (default: the ONNX graph name)\n"
          "  --labels FILE            class labels, one per line\n"
          "  --input-shape NAME=D0,D1,...\n"
          "                           pin the shape of a graph input with symbolic dims\n"
          "                           (may be repeated)\n"
          "  --bind NAME=FILE         fix graph input NAME to the value in FILE (raw\n"
          "                           little-endian, the input's declared type and shape):\n"
          "                           it becomes a constant and folds; needed for inputs\n"
          "                           that steer shapes (may be repeated)\n"
          "  --chunk-size SIZE        largest weight chunk, e.g. 1M (default 1M)\n"
          "  --encrypt-key KEY        encrypt the weights (AES-256-GCM) with the model key\n"
          "                           in file KEY (32 raw bytes; made, mode 0600, when it\n"
          "                           does not exist); the pack then runs only with it\n"
          "                           (occ run --key KEY)\n"
          "  -q, --quiet              print only the model id\n"
          "  -h, --help               this help\n"
          "\n"
          "image preprocessing stored in the pack (any of these turns it on):\n"
          "  --input-size HxW         image size (default: from the model input)\n"
          "  --channel-order RGB|BGR|L  (default RGB)\n"
          "  --scale F                pixel scale (default 1/255)\n"
          "  --mean A,B,C             per-channel mean (default 0)\n"
          "  --std A,B,C              per-channel std (default 1)\n"
          "  the model input is (pixel * scale - mean[c]) / std[c]\n",
          f);
}

typedef struct progress {
    int tty;
    int quiet;
    int last;
    uint64_t min_total;
} progress;

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
    progress *p = ctx;
    if (p->quiet || total < p->min_total || total == 0)
        return;
    int pct = (int)(done * 100 / total);
    if (p->tty) {
        if (pct != p->last) {
            fprintf(stderr, "\rhashing and writing weights: %3d%%", pct);
            if (done >= total)
                fputc('\n', stderr);
            fflush(stderr);
        }
    } else if (pct / 25 != p->last / 25 || (p->last < 0 && pct == 0)) {
        fprintf(stderr, "hashing and writing weights: %d%%\n", pct / 25 * 25);
    }
    p->last = pct;
}

static int parse_floats(const char *s, float *out, int max)
{
    int n = 0;
    const char *p = s;
    while (*p) {
        if (n == max)
            return -1;
        char *end;
        errno = 0;
        float v = strtof(p, &end);
        if (end == p || errno)
            return -1;
        out[n++] = v;
        p = end;
        if (*p == ',')
            p++;
        else if (*p)
            return -1;
    }
    return n;
}

static int read_labels(const char *path, char ***labels, uint32_t *n)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return occ_cli_error("pack", "cannot open labels file '%s': %s", path, strerror(errno));
    char **v = NULL;
    uint32_t cnt = 0, cap = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    while ((len = getline(&line, &lcap, f)) >= 0) {
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (cnt == cap) {
            cap = cap ? cap * 2 : 256;
            char **nv = realloc(v, cap * sizeof *nv);
            if (!nv)
                break;
            v = nv;
        }
        if (!(v[cnt] = strdup(line)))
            break;
        cnt++;
    }
    free(line);
    int bad = ferror(f) || !feof(f);
    fclose(f);
    /* a trailing empty line is not a label */
    while (cnt && !v[cnt - 1][0])
        free(v[--cnt]);
    if (bad) {
        for (uint32_t k = 0; k < cnt; k++)
            free(v[k]);
        free(v);
        return occ_cli_error("pack", "cannot read labels file '%s'", path);
    }
    *labels = v;
    *n = cnt;
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void human(uint64_t b, char *out, size_t n)
{
    if (b >= (1ull << 20))
        snprintf(out, n, "%.1f MiB", (double)b / (1 << 20));
    else if (b >= 1024)
        snprintf(out, n, "%.1f KiB", (double)b / 1024);
    else
        snprintf(out, n, "%llu B", (unsigned long long)b);
}

enum {
    OPT_NAME = 256, OPT_LABELS, OPT_INPUT_SIZE, OPT_CHANNEL_ORDER, OPT_SCALE, OPT_MEAN, OPT_STD,
    OPT_CHUNK, OPT_INPUT_SHAPE, OPT_BIND, OPT_ENCRYPT_KEY,
};

#define MAX_BINDS 64
#define MAX_BIND_SIZE (UINT64_C(1) << 30)

/* Reads a --bind file whole (the importer checks its size against the input). */
static int read_bind(const char *path, void **data, uint64_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return occ_cli_error("pack", "--bind: cannot open %s: %s", path, strerror(errno));
    uint8_t *buf = NULL;
    uint64_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            uint8_t *nb = cap <= MAX_BIND_SIZE ? realloc(buf, (size_t)cap) : NULL;
            if (!nb) {
                free(buf);
                fclose(f);
                return occ_cli_error("pack", "--bind: %s is too large", path);
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, (size_t)(cap - n), f);
        n += got;
        if (got == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return occ_cli_error("pack", "--bind: cannot read %s", path);
    }
    *data = buf;
    *size = n;
    return 0;
}

int occ_cmd_pack(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"output", required_argument, NULL, 'o'},
        {"name", required_argument, NULL, OPT_NAME},
        {"labels", required_argument, NULL, OPT_LABELS},
        {"input-size", required_argument, NULL, OPT_INPUT_SIZE},
        {"channel-order", required_argument, NULL, OPT_CHANNEL_ORDER},
        {"scale", required_argument, NULL, OPT_SCALE},
        {"mean", required_argument, NULL, OPT_MEAN},
        {"std", required_argument, NULL, OPT_STD},
        {"chunk-size", required_argument, NULL, OPT_CHUNK},
        {"input-shape", required_argument, NULL, OPT_INPUT_SHAPE},
        {"bind", required_argument, NULL, OPT_BIND},
        {"encrypt-key", required_argument, NULL, OPT_ENCRYPT_KEY},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    occ_pack_options o;
    memset(&o, 0, sizeof o);
    o.pre.scale = 1.0f / 255.0f;
    for (int k = 0; k < 4; k++)
        o.pre.std[k] = 1.0f;
    const char *out = NULL, *labels_path = NULL, *key_path = NULL;
    uint8_t key[32];
    int key_created = 0;
    occ_input_shape shapes[16];
    uint32_t n_shapes = 0;
    occ_input_bind binds[MAX_BINDS];
    uint32_t n_binds = 0;
    int quiet = 0, rc = 1;
    char **labels = NULL;
    uint32_t n_labels = 0;
    occ_error e = {0};

    optind = 0; /* full reinitialisation (GNU): options may follow IN.onnx */
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "o:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case OPT_ENCRYPT_KEY: key_path = optarg; break;
        case 'q': quiet = 1; break;
        case 'h': pack_usage(stdout); rc = 0; goto done;
        case OPT_NAME: o.name = optarg; break;
        case OPT_LABELS: labels_path = optarg; break;
        case OPT_INPUT_SIZE: {
            int h, w;
            char tail;
            if (sscanf(optarg, "%dx%d%c", &h, &w, &tail) != 2 || h <= 0 || w <= 0 || h > 65536 ||
                w > 65536)
                { rc = occ_cli_error("pack", "--input-size wants HxW, e.g. 224x224 (got '%s')",
                                     optarg); goto done; }
            o.pre.height = h;
            o.pre.width = w;
            o.pre.present = 1;
            break;
        }
        case OPT_CHANNEL_ORDER:
            if (strcmp(optarg, "RGB") && strcmp(optarg, "BGR") && strcmp(optarg, "L"))
                { rc = occ_cli_error("pack", "--channel-order must be RGB, BGR or L"); goto done; }
            memcpy(o.pre.channel_order, optarg, strlen(optarg) + 1);
            o.pre.present = 1;
            break;
        case OPT_SCALE: {
            float v[1];
            if (parse_floats(optarg, v, 1) != 1 || !(v[0] > 0))
                { rc = occ_cli_error("pack", "--scale wants a positive number (got '%s')", optarg); goto done; }
            o.pre.scale = v[0];
            o.pre.present = 1;
            break;
        }
        case OPT_MEAN:
        case OPT_STD: {
            float v[4];
            int n = parse_floats(optarg, v, 3);
            if (n != 1 && n != 3)
                { rc = occ_cli_error("pack", "--%s wants 1 or 3 comma-separated numbers (got '%s')",
                                     c == OPT_MEAN ? "mean" : "std", optarg); goto done; }
            float *dst = c == OPT_MEAN ? o.pre.mean : o.pre.std;
            for (int k = 0; k < 3; k++)
                dst[k] = v[n == 1 ? 0 : k];
            o.pre.present = 1;
            break;
        }
        case OPT_CHUNK: {
            unsigned long long v;
            if (occ_parse_size(optarg, &v) || v < 4096 || v > (1ull << 32))
                { rc = occ_cli_error("pack", "--chunk-size wants a size from 4K to 4G, e.g. 1M "
                                     "(got '%s')", optarg); goto done; }
            o.chunk_size = v;
            break;
        }
        case OPT_BIND: {
            char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg || !eq[1]) {
                rc = occ_cli_error("pack", "--bind wants NAME=FILE (got '%s')", optarg);
                goto done;
            }
            if (n_binds == MAX_BINDS) {
                rc = occ_cli_error("pack", "more than %d --bind options", MAX_BINDS);
                goto done;
            }
            *eq = '\0';
            void *d = NULL;
            uint64_t sz = 0;
            if (read_bind(eq + 1, &d, &sz)) {
                rc = 1;
                goto done;
            }
            binds[n_binds++] = (occ_input_bind){optarg, d, sz};
            break;
        }
        case OPT_INPUT_SHAPE:
            if (n_shapes == sizeof shapes / sizeof shapes[0])
                { rc = occ_cli_error("pack", "too many --input-shape options"); goto done; }
            if (occ_parse_input_shape(optarg, &shapes[n_shapes], &e))
                { rc = occ_cli_error("pack", "%s", e.msg); goto done; }
            n_shapes++;
            break;
        case '?':
        default:
            if (optopt)
                occ_cli_error("pack", "option '-%c' is unknown or lacks its value", optopt);
            else
                occ_cli_error("pack", "unknown option '%s'", argv[optind - 1]);
            fputs("run `occ pack --help` for the options\n", stderr);
            { rc = 2; goto done; }
        }
    }
    if (optind != argc - 1) {
        occ_cli_error("pack", optind >= argc ? "no input model given" : "more than one input model");
        fputs("run `occ pack --help` for the options\n", stderr);
        { rc = 2; goto done; }
    }
    const char *in = argv[optind];
    if (!out) {
        occ_cli_error("pack", "no output given (-o OUT.occ)");
        fputs("run `occ pack --help` for the options\n", stderr);
        { rc = 2; goto done; }
    }
    if (labels_path) {
        if (read_labels(labels_path, &labels, &n_labels))
            { rc = 1; goto done; }
        o.labels = (const char *const *)labels;
        o.n_labels = n_labels;
    }
    if (key_path) {
        if (occ_cli_read_key(key_path, key, 1, &key_created, &e))
            { rc = occ_cli_error("pack", "--encrypt-key: %s", e.msg); goto done; }
        o.encrypt_key = key;
    }
    o.n_input_shapes = n_shapes;
    o.input_shapes = shapes;
    o.n_binds = n_binds;
    o.binds = binds;
    progress prog = {.tty = isatty(2), .quiet = quiet, .last = -1, .min_total = 16u << 20};
    o.progress = on_progress;
    o.progress_ctx = &prog;

    occ_pack_stats st;
    double t0 = now_s();
    occ_status s = occ_pack_onnx(in, out, &o, &st, &e);
    double dt = now_s() - t0;
    if (s) {
        if (prog.tty && prog.last >= 0 && prog.last < 100)
            fputc('\n', stderr);
        occ_cli_error("pack", "%s", e.msg);
    } else {
        char hex[65], wsz[32], fsz[32];
        occ_hex(st.model_id, sizeof st.model_id, hex);
        human(st.weight_size, wsz, sizeof wsz);
        human(st.file_size, fsz, sizeof fsz);
        if (quiet) {
            printf("%s\n", hex);
            if (key_created)
                fprintf(stderr, "occ pack: made a new model key in %s (mode 0600)\n", key_path);
        } else {
            printf("packed %s -> %s in %.2f s\n", in, out, dt);
            printf("  model id  %s\n", hex);
            printf("  nodes     %u (ONNX: %u; %u evaluated at pack time, %u Identity/Dropout "
                   "removed, %u BatchNormalization folded into Conv, %u unused)\n",
                   st.nodes, st.onnx_nodes, st.folded, st.removed, st.bn_folded, st.dead);
            printf("  tensors   %u, of which %u weights (%s in %u chunks)\n", st.n_tensors,
                   st.n_weights, wsz, st.n_chunks);
            printf("  file      %s (%llu bytes)\n", fsz, (unsigned long long)st.file_size);
            if (key_path)
                printf("  weights   encrypted (AES-256-GCM) with the key in %s%s\n", key_path,
                       key_created ? " (new: made now, mode 0600; the pack runs only with it)" : "");
        }
        rc = 0;
    }
done:
    OPENSSL_cleanse(key, sizeof key);
    for (uint32_t k = 0; k < n_labels; k++)
        free(labels[k]);
    free(labels);
    for (uint32_t k = 0; k < n_binds; k++)
        free((void *)binds[k].data);
    return rc;
}
