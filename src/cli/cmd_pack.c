#include "cli/cli.h"

int occ_cmd_pack(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return occ_cli_error("pack", "not implemented yet");
}
