#include "cli/cli.h"

int occ_cmd_inspect(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return occ_cli_error("inspect", "not implemented yet");
}
