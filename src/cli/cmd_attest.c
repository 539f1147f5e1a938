/* occ attest (being written) */
#include <stdio.h>
#include "cli/cli.h"
int occ_cmd_attest(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return occ_cli_error("attest", "not implemented yet");
}
