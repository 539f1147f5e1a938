/* Subcommands of the `occ` CLI. Each returns the process exit code. */
#ifndef OCC_CLI_H
#define OCC_CLI_H

int occ_cmd_pack(int argc, char **argv);
int occ_cmd_inspect(int argc, char **argv);
int occ_cmd_run(int argc, char **argv);
int occ_cmd_bench(int argc, char **argv);
int occ_cmd_attest(int argc, char **argv);
int occ_cmd_serve(int argc, char **argv);
int occ_cmd_infer(int argc, char **argv);
int occ_cmd_keys(int argc, char **argv);

/* Prints "occ <cmd>: error: <msg>" on stderr; returns 1. */
int occ_cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
