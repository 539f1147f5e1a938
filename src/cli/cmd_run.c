#include "cli/cli.h"

int occ_cmd_run(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return occ_cli_error("run", "not implemented yet");
}
